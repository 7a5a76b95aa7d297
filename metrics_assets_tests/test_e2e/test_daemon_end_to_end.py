"""End to end, as an operator runs it: a ``dagster code-server start`` gRPC server,
``dagster-daemon run`` and ``dagster-webserver`` on a temporary instance (the repository's
dagster.yaml: queued run coordinator, run monitoring) and a fresh PostgreSQL warehouse.

Nothing is executed in process: sensors, schedules and the automation condition sensor tick in
the daemon, runs are launched by the code server, and this test only writes inputs (as the apps
would), reads the warehouse, and talks to the instance (cancel) or to a run worker (SIGKILL).

One set of services for the module (starting them is most of the cost); each test function is
one promise of issue 14, so a failure says which one broke. Every wait is bounded.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from metrics_assets_tests.conftest import PG_SERVER_URL
from metrics_assets_tests.daemon_harness import DagsterServices

pytestmark = pytest.mark.timeout(420)

PRODUCT = "firefox"  # GLAM's name for Firefox desktop
HOT, COLD, BUILT, HELD = "gc_hot_ms", "gc_cold_ms", "dns_built_ms", "tls_held_ms"
#: The partition of HELD: the instance's run queue never dequeues it (tag limit 0), so a run for
#: it stays QUEUED until the test cancels it.
HELD_PARTITION = f"{PRODUCT}/{HELD}"
WAIT = 120  # seconds: any single promise must be kept within this


def _yesterday() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def _glam_probe(name: str) -> dict:
    """A glam_probe row as GLAM's import_probes.transform() builds it (glam/api/management/
    commands/import_probes.py): the probe's name is ``info->>'name'``."""
    key = f"histogram/{name.upper()}"
    return {
        "key": key,
        "info": json.dumps(
            {
                "name": name,
                "apiName": key,
                "description": f"{name} description",
                "type": "histogram",
                "kind": "exponential",
                "versions": {"release": ["60", "136"]},
                "record_in_processes": ["main"],
                "optout": {"release": True},
                "bugs": [1],
                "active": True,
                "prerelease": False,
            }
        ),
    }


def _write_glam(warehouse) -> None:
    """A tiny GLAM app in the warehouse (GLAM_DATABASE_URL unset): four catalogue probes and a
    day of usage, each row as GLAM's ``_log_probe_query`` writes it (PROBE_SEARCH, the request's
    query as context, an empty tracking id)."""
    from metrics_assets.probes.glam_schema import log_probe_query

    day = _yesterday()
    query = {"product": PRODUCT, "channel": "release", "os": "Windows", "aggregationLevel": "version"}
    with warehouse.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO glam_probe (key, info) VALUES (:key, :info)"),
            [_glam_probe(p) for p in (HOT, COLD, BUILT, HELD)],
        )
        for hour in range(5):
            log_probe_query(conn, {**query, "probe": HOT}, day + timedelta(hours=hour))
        log_probe_query(conn, {**query, "probe": COLD}, day + timedelta(hours=9))


def _write_telemetry(objects: Path) -> None:
    from metrics_assets.probes import telemetry

    day = _yesterday().date().isoformat()
    frame = pd.DataFrame(
        {
            "product": PRODUCT,
            "probe_name": [p for p in (HOT, BUILT, HELD) for _ in range(30)],
            "channel": "release",
            "os": "Linux",
            "version": "131",
            "client_id": [f"c{i % 7}" for i in range(90)],
            "value": [float(i % 30) for i in range(90)],
        }
    )
    path = objects / telemetry.BUCKET / telemetry.sample_key(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _count_lines(folder: Path) -> int:
    """Independent reference: the JSON lines of every gzip file under ``folder``."""
    total = 0
    for path in folder.rglob("*"):
        # Secor's names carry no .json suffix: a file is read for what it is (gzip magic)
        if path.is_file() and path.read_bytes()[:2] == b"\x1f\x8b":
            with gzip.open(path, "rt") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    from metrics_assets.events.demo import write_lake
    from metrics_assets.resources.warehouse import (
        Warehouse,
        dispose_engine,
        engine_for,
        normalise_url,
    )

    root = tmp_path_factory.mktemp("e2e")
    home = root / "metrics_home"
    objects = home / "objects"
    objects.mkdir(parents=True)

    name = f"metrics_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(PG_SERVER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    engine_for(url)
    warehouse = Warehouse(url=url)
    _write_glam(warehouse)
    _write_telemetry(objects)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    write_lake(objects, start, hours=2, events_per_hour=40, bad_lines_per_hour=0)

    env = {
        "METRICS_HOME": str(home),
        "METRICS_DEPLOYMENT": "local",
        "METRICS_WAREHOUSE_URL": url,
        "METRICS_QUERY_SENSOR_INTERVAL_S": "2",
        "METRICS_AUTOMATION_INTERVAL_S": "5",
        "PROBES_HOT_MIN_VIEWS": "3",
    }
    overrides = {
        "run_coordinator": {
            "config": {
                "max_concurrent_runs": 4,
                "dequeue_interval_seconds": 1,
                "tag_concurrency_limits": [{"key": "dagster/partition", "value": HELD_PARTITION, "limit": 0}],
            }
        },
        "run_monitoring": {"poll_interval_seconds": 2, "start_timeout_seconds": 90, "cancel_timeout_seconds": 30},
        "sensors": {"use_threads": True, "num_workers": 4},
    }
    started = time.monotonic()
    harness = DagsterServices(
        root,
        env=env,
        instance_overrides=overrides,
        unset=("DAGSTER_PG_HOST", "METRICS_OBJECT_STORE_DIR", "METRICS_SPOOL_DIR", "GLAM_DATABASE_URL"),
    )
    try:
        _leave_a_cursor_as_the_demo_does(harness.instance())
        harness.start(webserver=True)
        harness.startup_s = time.monotonic() - started
        # As an operator sets up probes: the catalogue once from the CLI (then nightly, on_cron);
        # builds and popularity know only the probes it lists.
        _materialize(harness, "glam_probe_catalogue")
        harness.warehouse = warehouse
        harness.objects = objects
        yield harness
    finally:
        harness.stop()
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _materialize(services, asset: str, partition: str | None = None) -> None:
    """``dagster asset materialize`` as the README says, against the services' instance."""
    import subprocess

    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "metrics_assets.definitions",
        "--select",
        asset,
    ] + (["--partition", partition] if partition else [])
    done = subprocess.run(
        command, env=services.env, cwd=services.root, capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


#: A cursor the demo leaves for probes_nightly_build_sensor (a probes_to_build storage id no
#: materialization reaches here: the daemon must keep it and so build nothing nightly).
DEMO_CURSOR = "999999999"


def _leave_a_cursor_as_the_demo_does(instance) -> None:
    from metrics_assets.definitions import defs
    from metrics_assets.demo import save_sensor_cursor

    save_sensor_cursor(instance, defs.resolve_sensor_def("probes_nightly_build_sensor"), DEMO_CURSOR)


def _runs(instance, **tags):
    import dagster as dg

    return instance.get_runs(dg.RunsFilter(tags=tags))


def _request(warehouse, request_id: int) -> dict:
    return warehouse.fetch_all("SELECT * FROM probe_build_requests WHERE request_id = :id", {"id": request_id})[0]


def _new_request(warehouse, probe: str) -> int:
    warehouse.append("probe_build_requests", [{"product": PRODUCT, "probe_name": probe}])
    return int(warehouse.scalar("SELECT max(request_id) FROM probe_build_requests WHERE probe_name = :p", {"p": probe}))


def test_webserver_graphql_lists_every_asset(services):
    from metrics_assets.definitions import defs

    body = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{services.web_port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        nodes = json.load(response)["data"]["assetNodes"]
    served = {"/".join(n["assetKey"]["path"]) for n in nodes}
    expected = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert served == expected


def test_query_submitted_through_the_client_reaches_finished(services):
    from metrics_assets.queries.client import QueryClient

    expected = _count_lines(services.objects / "lake" / "events" / "v0")
    assert expected > 0
    client = QueryClient(services.warehouse)
    query_id = client.submit("SELECT count(*) AS n FROM events_v0")
    status = services.wait_for(
        lambda: (s := client.status(query_id)).status in ("FINISHED", "FAILED") and s, WAIT, f"query {query_id}"
    )
    assert status.status == "FINISHED", status.error
    assert client.next(query_id)["rows"] == [{"n": expected}]
    instance = services.instance()
    runs = services.wait_for(
        lambda: [r for r in _runs(instance, **{"metrics/query_id": query_id}) if r.is_finished], WAIT, "its run to end"
    )
    assert [r.status.value for r in runs] == ["SUCCESS"]


def test_probe_build_request_is_answered(services):
    request_id = _new_request(services.warehouse, BUILT)
    row = services.wait_for(
        lambda: (r := _request(services.warehouse, request_id))["status"] in ("SUCCEEDED", "FAILED", "NO_DATA") and r,
        WAIT,
        f"probe build request {request_id}",
    )
    assert row["status"] == "SUCCEEDED", row["error"]
    built = services.warehouse.scalar(
        "SELECT count(*) FROM probe_aggregates WHERE product = :p AND probe_name = :n", {"p": PRODUCT, "n": BUILT}
    )
    assert built > 0


def _automation_ticks(instance) -> int:
    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == "metrics_automation_sensor":
            return len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5))
    del dg
    return 0


def test_probe_views_daily_is_followed_by_probe_popularity_without_a_manual_step(services):
    import dagster as dg

    instance = services.instance()
    # The automation sensor is running by default: it has ticked before anything was asked.
    services.wait_for(lambda: _automation_ticks(instance) > 0, WAIT, "metrics_automation_sensor to tick")
    day = _yesterday().strftime("%Y-%m-%d")
    # The manual step of the story: one day of probe_views_daily, from the CLI as the README says.
    _materialize(services, "probe_views_daily", day)
    key = dg.AssetKey("probe_popularity")
    record = services.wait_for(
        lambda: instance.fetch_materializations(key, limit=1).records, WAIT, "probe_popularity to follow"
    )[0]
    run = instance.get_run_by_id(record.run_id)
    assert run.tags.get("dagster/from_automation_condition") == "true" or "dagster/sensor_name" in run.tags
    views = services.warehouse.scalar(
        "SELECT views FROM probe_popularity WHERE product = :p AND probe_name = :n AND window_days = 7",
        {"p": PRODUCT, "n": HOT},
    )
    assert views == 5


def test_run_cancelled_while_queued_answers_its_request_failed(services):
    import dagster as dg

    instance = services.instance()
    request_id = _new_request(services.warehouse, HELD)
    run = services.wait_for(
        lambda: [
            r
            for r in _runs(instance, **{"dagster/partition": HELD_PARTITION})
            if r.status == dg.DagsterRunStatus.QUEUED
        ],
        WAIT,
        "the held probe's run to be queued",
    )[0]
    instance.run_coordinator.cancel_run(run.run_id)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    row = services.wait_for(
        lambda: (r := _request(services.warehouse, request_id))["status"] in ("SUCCEEDED", "FAILED", "NO_DATA") and r,
        WAIT,
        f"the cancelled run's request {request_id} to be answered",
    )
    assert row["status"] == "FAILED"
    assert row["error"]  # the reason (run_outcomes names the run; the wording is the domain's)


def test_run_worker_killed_is_detected_and_its_query_answered(services):
    import dagster as dg

    from metrics_assets.queries.client import QueryClient

    instance = services.instance()
    client = QueryClient(services.warehouse)
    for _attempt in range(3):
        query_id = client.submit("SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename")
        run = services.wait_for(
            lambda qid=query_id: _runs(instance, **{"metrics/query_id": qid}), WAIT, f"a run for query {query_id}"
        )[0]
        pid = services.wait_for(
            lambda rid=run.run_id: services.run_worker_pid(rid) or instance.get_run_by_id(rid).is_finished,
            WAIT,
            "the run worker to start",
            poll=0.05,
        )
        if pid is True:
            continue  # finished before we saw its worker: try again
        os.kill(pid, signal.SIGKILL)
        final = services.wait_for(
            lambda rid=run.run_id: (r := instance.get_run_by_id(rid)).is_finished and r,
            WAIT,
            "the killed run to be detected",
        )
        if final.status == dg.DagsterRunStatus.SUCCESS:
            continue  # it won the race
        assert final.status == dg.DagsterRunStatus.FAILURE
        status = services.wait_for(
            lambda qid=query_id: (s := client.status(qid)).status in ("FINISHED", "FAILED") and s,
            WAIT,
            f"query {query_id} of the killed run to be answered",
        )
        assert status.status == "FAILED"
        assert status.error  # the reason (run_outcomes names the run; the wording is the domain's)
        return
    pytest.fail("three runs finished before their worker could be killed")


def test_daemon_resumes_the_sensor_cursor_the_demo_left(services):
    """The demo stores cursors where the daemon reads them: after its first ticks the daemon
    has one state for the sensor (ours, not a second one), with our cursor, and ticks on it."""
    from dagster._core.scheduler.instigation import InstigatorType

    instance = services.instance()

    def states():
        return [
            s
            for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
            if s.name == "probes_nightly_build_sensor"
        ]

    ticked = services.wait_for(
        lambda: [s for s in states() if s.instigator_data.last_tick_timestamp],
        WAIT,
        "the daemon to tick probes_nightly_build_sensor",
    )
    assert len(states()) == 1
    assert ticked[0].instigator_data.cursor == DEMO_CURSOR
    assert _runs(instance, **{"dagster/sensor_name": "probes_nightly_build_sensor"}) == []
