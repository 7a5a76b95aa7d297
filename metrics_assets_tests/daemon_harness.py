"""Dagster as an operator runs it, on a temporary instance: a ``dagster code-server start``
gRPC server, ``dagster-daemon run`` and (optionally) ``dagster-webserver``, each a real
process pointed at a workspace file that names the gRPC server.

Self-contained (nothing here imports the code location), so any test or benchmark can use it:

    with DagsterServices(tmp_path, env={...}) as services:
        services.start(webserver=True)
        instance = services.instance()
        services.wait_for(lambda: ..., timeout=60, what="...")

The instance is the repository's ``dagster.yaml`` (queued run coordinator, run monitoring,
``EnvStorage``: SQLite under the temporary ``DAGSTER_HOME`` unless ``DAGSTER_PG_*`` are set)
with ``instance_overrides`` merged over it (shorter intervals for tests, tag limits...).

Processes are started in their own session and stopped by process group, so run workers the
code server spawned go with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION_NAME = "metrics_assets"
MODULE = "metrics_assets.definitions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ServiceDied(RuntimeError):
    pass


class DagsterServices:
    def __init__(
        self,
        root: Path,
        env: Mapping[str, str] | None = None,
        instance_overrides: Mapping[str, Any] | None = None,
        unset: tuple[str, ...] = (),
    ):
        self.root = Path(root)
        self.home = self.root / "dagster_home"
        self.logs = self.root / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        base = yaml.safe_load((REPO / "dagster.yaml").read_text())
        config = _merge(base, instance_overrides or {})
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.grpc_port = free_port()
        self.web_port: int | None = None
        self.workspace = self.root / "workspace.yaml"
        self.workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": "127.0.0.1",
                                "port": self.grpc_port,
                                "location_name": LOCATION_NAME,
                            }
                        }
                    ]
                }
            )
        )
        inherited = {k: v for k, v in os.environ.items() if k not in unset}
        self.env = {**inherited, **(env or {}), "DAGSTER_HOME": str(self.home)}
        self.procs: dict[str, subprocess.Popen] = {}
        self._instance = None

    # -- processes -------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the process
        proc = subprocess.Popen(
            argv, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ServiceDied(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def start_code_server(self, timeout: float = 120) -> None:
        self._spawn(
            "code_server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.grpc_port),
                "-m",
                MODULE,
                "--location-name",
                LOCATION_NAME,
            ],
        )
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1")

        def ready() -> bool:
            try:
                client.ping("ready?")
                # The code server answers pings before its code is loaded; listing the
                # repositories only succeeds once the definitions are.
                client.list_repositories()
                return True
            except Exception:
                return False

        self.wait_for(ready, timeout, "the gRPC code server to serve the definitions")

    def start_daemon(self, timeout: float = 120) -> None:
        self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])

        def healthy() -> bool:
            from dagster._daemon.controller import all_daemons_healthy

            return all_daemons_healthy(self.instance(), heartbeat_tolerance_seconds=60)

        self.wait_for(healthy, timeout, "every daemon to heartbeat")

    def start_webserver(self, timeout: float = 120) -> str:
        import urllib.request

        self.web_port = free_port()
        self._spawn(
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.web_port)],
        )
        url = f"http://127.0.0.1:{self.web_port}"

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                    return response.status == 200
            except Exception:
                return False

        self.wait_for(up, timeout, "the webserver to answer")
        return url

    def start(self, webserver: bool = False) -> None:
        self.start_code_server()
        self.start_daemon()
        if webserver:
            self.start_webserver()

    def stop(self) -> None:
        for _name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (run workers)
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the instance ----------------------------------------------------------------
    def instance(self):
        """The same instance the services use (read from the temporary DAGSTER_HOME)."""
        if self._instance is None:
            from dagster import DagsterInstance
            from dagster._core.instance.ref import InstanceRef

            saved = os.environ.get("DAGSTER_HOME")
            os.environ["DAGSTER_HOME"] = str(self.home)  # EnvStorage reads it
            try:
                self._instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))
            finally:
                if saved is None:
                    os.environ.pop("DAGSTER_HOME", None)
                else:
                    os.environ["DAGSTER_HOME"] = saved
        return self._instance

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.5) -> Any:
        """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {n}\n{self.log_tail(n, 15)}" for n in self.procs)
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(poll)

    def run_worker_pid(self, run_id: str) -> int | None:
        """The pid of a run's worker, from its "Started process for run (pid: N)" event."""
        from dagster import DagsterEventType

        records = self.instance().get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        for record in records:
            message = record.event_log_entry.message or ""
            if message.startswith("Started process for run (pid: "):
                return int(message.split("pid: ", 1)[1].rstrip(")."))
        return None
