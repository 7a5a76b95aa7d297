"""``metrics-query``: submit, status, next in process; ``serve`` as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from metrics_assets.queries import cli, runner

REPO = Path(__file__).resolve().parents[2]
TOKEN = "cli-test-token-0123456789abcdefghij"


def test_submit_status_next(sqlite_warehouse, engine, events, capsys):
    assert (
        cli.main(["submit", "SELECT servicename FROM events_v0 ORDER BY createdtimestamp", "--retention-minutes", "15"])
        == 0
    )
    query_id = capsys.readouterr().out.strip()
    assert len(query_id) == 36
    assert cli.main(["status", query_id]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["status"], status["retention_minutes"]) == ("QUEUED", 15)

    runner.run_query(sqlite_warehouse, engine, query_id)
    assert cli.main(["next", query_id, "--results-per-page", "5"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["rows"] == [{"servicename": e["servicename"]} for e in events["v0"][:5]]
    assert cli.main(["next", query_id, "--paging-token", first["next_paging_token"], "--results-per-page", "5"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["rows"] == [{"servicename": e["servicename"]} for e in events["v0"][5:]]
    assert second["next_paging_token"] is None


def test_refusals_exit_1_with_the_reason(sqlite_warehouse, capsys):
    assert cli.main(["submit", "SELECT customerid FROM events_v0; DROP TABLE x"]) == 1
    assert "invalid_query: invalid query: stacked statements are not allowed" in capsys.readouterr().err
    assert cli.main(["next", "00000000-0000-0000-0000-000000000000", "--results-per-page", "2000"]) == 1
    assert "page_size_too_large" in capsys.readouterr().err
    assert cli.main(["submit", "SELECT customerid FROM events_v0", "--retention-minutes", "20000"]) == 1
    assert "retention_minutes must be between 1 and 10080" in capsys.readouterr().err


def _env(metrics_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "METRICS_API_TOKEN"}
    env.update({"PYTHONPATH": str(REPO), "METRICS_HOME": str(metrics_home), **extra})
    return env


def test_serve_refuses_to_start_without_a_token(metrics_home):
    done = subprocess.run(
        [sys.executable, "-m", "metrics_assets.queries.cli", "serve"],
        env=_env(metrics_home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "METRICS_API_TOKEN is not set" in done.stderr


def test_serve_refuses_a_short_token(metrics_home):
    done = subprocess.run(
        [sys.executable, "-m", "metrics_assets.queries.cli", "serve"],
        env=_env(metrics_home, METRICS_API_TOKEN="x" * 31),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "METRICS_API_TOKEN is 31 characters long; the query API needs at least 32" in done.stderr


def test_serve_answers_on_127_0_0_1(metrics_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "metrics_assets.queries.cli", "serve", "--port", str(port)],
        env=_env(metrics_home, METRICS_API_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v0/data_hist/status/00000000-0000-0000-0000-000000000000",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert response.status_code == 404
        assert response.json()["error"] == "unknown_query_id"
    finally:
        process.terminate()
        process.wait(20)


def test_cancel(sqlite_warehouse, capsys):
    assert cli.main(["submit", "SELECT customerid FROM events_v0"]) == 0
    query_id = capsys.readouterr().out.strip()
    assert cli.main(["cancel", query_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "CANCELLED"
    assert cli.main(["cancel", query_id]) == 1
    assert "query_already_final" in capsys.readouterr().err


def test_status_and_next_import_no_dagster(sqlite_warehouse, engine, events, metrics_home):
    """status, next and cancel run in a fresh process without importing Dagster, DuckDB or Arrow."""
    from metrics_assets.queries.client import QueryClient

    client = QueryClient(sqlite_warehouse)
    query_id = client.submit("SELECT customerid FROM events_v0 ORDER BY createdtimestamp LIMIT 2")
    runner.run_query(sqlite_warehouse, engine, query_id)
    probe = (
        "import sys, time; t = time.perf_counter(); from metrics_assets.queries import cli; "
        "rc = cli.main(sys.argv[1:]); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'duckdb', 'pyarrow', 'pandas', 'sqlglot'}); "
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc or (3 if heavy else 0))"
    )
    env = _env(metrics_home, METRICS_WAREHOUSE_URL=sqlite_warehouse.url)
    for args in (["status", query_id], ["next", query_id, "--results-per-page", "1"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "HEAVY []" in done.stderr
    page = json.loads(done.stdout)
    assert page["rows"] == [{"customerid": 11000}] and page["next_paging_token"]
