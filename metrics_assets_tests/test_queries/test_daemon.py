"""Under the real code server and ``dagster-daemon`` (``metrics_assets_tests/daemon_harness.py``): a query
finishes; the run worker killed with SIGKILL mid-query leaves no stuck query (FAILED, with
the reason, within a sensor tick of the run being marked failed), and a new query still
finishes."""

from __future__ import annotations

import os
import signal
import time

from metrics_assets.queries import store
from metrics_assets.queries.client import QueryClient
from metrics_assets_tests.daemon_harness import DagsterServices
from metrics_assets_tests.test_queries.test_bounds import RUNAWAYS, SMALL


def test_sigkill_of_the_run_worker_mid_query(pg_warehouse, events, metrics_home, tmp_path):
    client = QueryClient(pg_warehouse)
    env = {
        "METRICS_HOME": str(metrics_home),
        "METRICS_WAREHOUSE_URL": pg_warehouse.url,
        "METRICS_QUERY_SENSOR_INTERVAL_S": "1",
        "METRICS_QUERY_TIMEOUT_S": "240",
        "METRICS_QUERY_THREADS": "1",
        # The stand-in lake (test_queries/lake.py) writes the year=/month=/... folders.
        "EVENT_LAKE_LAYOUT": "year=/month=/day=/hour=/minute=",
    }
    with DagsterServices(
        tmp_path / "daemon", env=env, instance_overrides={"run_monitoring": {"poll_interval_seconds": 5}}
    ) as daemon:
        daemon.start()
        # A query that runs for minutes.
        slow = client.submit(RUNAWAYS["cross_join"])
        deadline = time.monotonic() + 180
        while (status := client.status(slow)).status != store.RUNNING:
            assert status.status == store.QUEUED, (status.status, status.error)
            assert time.monotonic() < deadline, daemon.log_tail("daemon")
            time.sleep(0.2)
        run_id = pg_warehouse.scalar("SELECT run_id FROM historical_queries WHERE query_id = :q", {"q": slow})
        pid = None
        while pid is None:
            pid = _executing_pid(daemon.instance(), run_id)
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)  # mid-query
        assert client.status(slow).status == store.RUNNING
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while (status := client.status(slow)).status == store.RUNNING:
            assert time.monotonic() - killed < 60, daemon.log_tail("daemon")
            time.sleep(0.2)
        assert status.status == store.FAILED
        assert run_id in status.error and "failed" in status.error, status.error
        # And the queue still works.
        fresh = client.submit(SMALL)
        final = client.wait(fresh, timeout_s=120, poll_s=0.2)
        assert (final.status, final.row_count) == (store.FINISHED, 3), (final.status, final.error)


def _executing_pid(instance, run_id: str) -> int | None:
    """The pid of the process executing the run's step (the run worker: the job runs in
    process), from the STEP_START event."""
    from dagster import DagsterEventType

    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid:
            return int(event.pid)
    return None
