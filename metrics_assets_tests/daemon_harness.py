"""A real ``dagster-daemon`` on a temporary Dagster instance, for tests and benchmarks.

    with DaemonHarness(tmp_path, env={"METRICS_WAREHOUSE_URL": url}) as daemon:
        daemon.wait_until_ready()
        ... submit work; daemon.instance() reads the same instance (runs, ticks, events)

It starts ``dagster-daemon run -w workspace.yaml`` as its own process group, from a fresh
``DAGSTER_HOME`` whose ``dagster.yaml`` is this repository's (the queued run coordinator, run
monitoring, the ``EnvStorage`` that picks SQLite here since ``DAGSTER_PG_HOST`` is unset) with
the overrides given, and a ``workspace.yaml`` that loads ``metrics_assets.definitions``. The
daemon starts the code server, which starts one run worker process per run, exactly as in
production with the default run launcher. Leaving the block stops the whole process group
(SIGTERM, then SIGKILL), so nothing outlives a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import yaml

REPO = Path(__file__).resolve().parents[1]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class DaemonHarness:
    def __init__(
        self,
        root: Path,
        env: dict[str, str] | None = None,
        instance_overrides: dict[str, Any] | None = None,
    ):
        self.root = Path(root)
        self.home = self.root / "dagster_home"
        self.env_extra = dict(env or {})
        self.instance_overrides = instance_overrides or {}
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "dagster-daemon.log"
        self._instance = None

    # -- set-up ------------------------------------------------------------------------
    def _write_files(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load((REPO / "dagster.yaml").read_text())
        config = _merge(config, self.instance_overrides)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        workspace = {
            "load_from": [
                {"python_module": {"module_name": "metrics_assets.definitions", "location_name": "metrics_assets",
                                   "working_directory": str(REPO)}}
            ]
        }
        (self.home / "workspace.yaml").write_text(yaml.safe_dump(workspace, sort_keys=False))

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PG_")}
        env.update({"DAGSTER_HOME": str(self.home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
        env.update(self.env_extra)
        return env

    def __enter__(self) -> Self:
        self._write_files()
        daemon = Path(sys.executable).with_name("dagster-daemon")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(daemon), "run", "-w", str(self.home / "workspace.yaml")],
            cwd=self.home, env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        # Run workers are children of the code server, in the daemon's process group; anything
        # left of the group goes too.
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None
        if getattr(self, "_log", None):
            self._log.close()

    # -- reading the instance ----------------------------------------------------------
    def instance(self):
        """The daemon's Dagster instance, read from this process (SQLite under DAGSTER_HOME)."""
        if self._instance is None:
            from dagster import DagsterInstance

            previous = os.environ.get("DAGSTER_HOME")
            os.environ["DAGSTER_HOME"] = str(self.home)
            try:
                self._instance = DagsterInstance.get()
            finally:
                if previous is None:
                    os.environ.pop("DAGSTER_HOME", None)
                else:
                    os.environ["DAGSTER_HOME"] = previous
        return self._instance

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_until_ready(self, timeout_s: float = 180, sensor: str = "historical_queries_sensor") -> None:
        """Until the sensor daemon has evaluated ``sensor`` once (the code location is loaded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            if f"Checking for new runs for sensor: {sensor}" in self.log():
                return
            time.sleep(0.5)
        raise TimeoutError(f"dagster-daemon not ready after {timeout_s} s:\n{self.log()[-4000:]}")

    def run_worker_pid(self, run_id: str) -> int | None:
        """The pid of the process executing ``run_id`` (from its RUN_START event)."""
        from dagster import DagsterEventType

        records = self.instance().get_records_for_run(run_id, of_type=DagsterEventType.RUN_START).records
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.pid:
                return int(event.pid)
        return None
