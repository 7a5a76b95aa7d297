"""The assets end to end on SQLite and PostgreSQL: exact rows against the plain-Python
reference, idempotent reruns, a backfill range as one run, the checks, the schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from metrics_assets import settings
from metrics_assets.events.assets import (
    event_rollups_hourly,
    hourly_rollups_sum_to_day_count,
    metrics,
)
from metrics_assets.events.automation import (
    event_rollups_hourly_schedule,
    rollup_run_request,
    rollups_job,
)
from metrics_assets.resources import DuckDBQueryEngine, LocalObjectStore
from metrics_assets_tests.test_events.conftest import (
    START,
    reference_metrics,
    reference_rollups,
    reference_skips,
)


def _resources(warehouse):
    return {
        "warehouse": warehouse,
        "query_engine": DuckDBQueryEngine(object_store_dir=str(settings.object_store_dir())),
        "object_store": LocalObjectStore(root_dir=str(settings.object_store_dir())),
    }


def _ts(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rollups(warehouse) -> dict:
    rows = warehouse.fetch_all("SELECT * FROM event_rollups_hourly")
    return {
        (_ts(r["period_start"]), r["customer_id"], r["service"], r["event_type"], r["schema_version"]): (
            r["event_count"],
            r["distinct_resources"],
            round(r["min_lag_s"], 3),
            round(r["max_lag_s"], 3),
        )
        for r in rows
    }


def _metrics(warehouse) -> dict:
    rows = warehouse.fetch_all("SELECT * FROM metrics")
    for r in rows:
        assert _ts(r["period_end"]) - _ts(r["period_start"]) == timedelta(days=1)
    return {
        (_ts(r["period_start"]), r["metric_name"], tuple(json.loads(r["metric_event"]).items()), r["requester"]): r[
            "metric_value"
        ]
        for r in rows
    }


def _materialization(result, key: str):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return event.materialization.metadata


def test_hourly_rollup_partition_and_rerun(lake_lines, warehouse):
    hour = START + timedelta(hours=7)
    key = hour.strftime("%Y-%m-%d-%H:%M")
    result = dg.materialize([event_rollups_hourly], partition_key=key, resources=_resources(warehouse))
    assert result.success
    expected = dict(reference_rollups(lake_lines, hour, hour + timedelta(hours=1)).items())
    assert _rollups(warehouse) == expected
    meta = _materialization(result, "event_rollups_hourly")
    assert meta["dagster/row_count"].value == len(expected)
    skips = reference_skips(lake_lines, hour, hour + timedelta(hours=1))
    assert meta["skipped_malformed_json"].value == skips["malformed_json"]
    assert meta["skipped_missing_created_time"].value == skips["missing_created_time"]
    assert meta["bytes_scanned"].value > 0
    assert "preview" in meta
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"no_duplicate_keys", "events_within_lateness_bounds"}
    assert all(c.passed for c in checks.values())

    before = warehouse.fetch_all("SELECT * FROM event_rollups_hourly ORDER BY 1, 2, 3, 4, 5")
    assert dg.materialize([event_rollups_hourly], partition_key=key, resources=_resources(warehouse)).success
    assert warehouse.fetch_all("SELECT * FROM event_rollups_hourly ORDER BY 1, 2, 3, 4, 5") == before


def test_backfill_range_runs_once_and_day_sums_match(lake_lines, warehouse):
    job = rollups_job
    day = START
    tags = {
        "dagster/asset_partition_range_start": day.strftime("%Y-%m-%d-%H:%M"),
        "dagster/asset_partition_range_end": (day + timedelta(hours=23)).strftime("%Y-%m-%d-%H:%M"),
    }
    defs = dg.Definitions(
        assets=[event_rollups_hourly],
        asset_checks=[hourly_rollups_sum_to_day_count],
        jobs=[job],
        resources=_resources(warehouse),
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("event_rollups_hourly_job").execute_in_process(instance=instance, tags=tags)
        assert result.success
        assert len(instance.get_runs()) == 1
    assert _rollups(warehouse) == reference_rollups(lake_lines, day, day + timedelta(days=1))

    check = dg.materialize(
        [event_rollups_hourly, hourly_rollups_sum_to_day_count],
        selection=dg.AssetSelection.checks(hourly_rollups_sum_to_day_count),
        resources=_resources(warehouse),
    )
    (evaluation,) = check.get_asset_check_evaluations()
    assert evaluation.passed
    expected_total = sum(v[0] for v in reference_rollups(lake_lines, day, day + timedelta(days=1)).values())
    assert evaluation.metadata["rollup_sum"].value == expected_total == evaluation.metadata["direct_count"].value
    assert evaluation.metadata["bytes_scanned"].value > 0  # its cost, stated

    # A missing hour makes the check fail.
    warehouse.execute(
        "DELETE FROM event_rollups_hourly WHERE period_start >= :s AND period_start < :e",
        {"s": day + timedelta(hours=5), "e": day + timedelta(hours=6)},
    )
    check = dg.materialize(
        [event_rollups_hourly, hourly_rollups_sum_to_day_count],
        selection=dg.AssetSelection.checks(hourly_rollups_sum_to_day_count),
        resources=_resources(warehouse),
        raise_on_error=False,
    )
    (evaluation,) = check.get_asset_check_evaluations()
    assert not evaluation.passed


def test_metrics_day_and_rerun(lake_lines, warehouse):
    day = START
    result = dg.materialize([metrics], partition_key=day.strftime("%Y-%m-%d"), resources=_resources(warehouse))
    assert result.success
    expected = {(day, *k): v for k, v in reference_metrics(lake_lines, day).items()}
    assert _metrics(warehouse) == expected
    meta = _materialization(result, "metrics")
    assert meta["dagster/row_count"].value == len(expected)
    assert set(meta["rows_per_metric"].value) == {"logins", "project_tile_requests", "analysis_tile_requests"}
    before = warehouse.fetch_all("SELECT * FROM metrics ORDER BY 1, 3, 4, 5")
    assert dg.materialize([metrics], partition_key=day.strftime("%Y-%m-%d"), resources=_resources(warehouse)).success
    assert warehouse.fetch_all("SELECT * FROM metrics ORDER BY 1, 3, 4, 5") == before


def test_missing_lake_fails_naming_the_settings(sqlite_warehouse):
    result = dg.materialize(
        [event_rollups_hourly],
        partition_key="2026-01-05-10:00",
        resources=_resources(sqlite_warehouse),
        raise_on_error=False,
    )
    assert not result.success
    failure = str(result.all_events)
    assert "EVENT_LAKE_BUCKET" in failure and "EVENT_LAKE_PREFIX" in failure and "EVENT_LAKE_LAYOUT" in failure


@pytest.mark.parametrize("lookback", [None, "4"])
def test_schedule_reruns_the_lookback_in_one_run(monkeypatch, lookback):
    if lookback:
        monkeypatch.setenv("EVENT_SCHEDULE_LOOKBACK_HOURS", lookback)
    now = datetime(2026, 1, 5, 10, 15, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=now)
    request = event_rollups_hourly_schedule(context)
    expected_first = "2026-01-05-05:00" if lookback == "4" else "2026-01-05-07:00"
    assert request.tags["dagster/asset_partition_range_start"] == expected_first
    assert request.tags["dagster/asset_partition_range_end"] == "2026-01-05-09:00"


def test_schedule_before_partitions_start_skips():
    assert isinstance(rollup_run_request(datetime(2020, 1, 1, tzinfo=UTC), 2), dg.SkipReason)


def test_bad_lateness_setting_names_the_variable(lake_lines, sqlite_warehouse, monkeypatch):
    monkeypatch.setenv("EVENT_LATENESS_HOURS", "soon")
    result = dg.materialize(
        [event_rollups_hourly],
        partition_key="2026-01-05-10:00",
        resources=_resources(sqlite_warehouse),
        raise_on_error=False,
    )
    assert not result.success
    assert "EVENT_LATENESS_HOURS" in str(result.all_events)


def test_metric_events_without_a_requester_are_counted_not_lost(lake_lines, metrics_home, sqlite_warehouse):
    """A successful login with no user_id and a tile request with no requester cannot be
    attributed: they are left out of `metrics` and counted in the materialization's skips."""
    import gzip

    from metrics_assets.events.demo import flush_minute, make_line
    from metrics_assets_tests.test_events.conftest import in_window, read_lines

    created = START + timedelta(hours=3, minutes=7, seconds=1)
    arrived = created + timedelta(seconds=5)
    extra = [
        make_line("v0", 11001, "auth0", "login", {"type": "s"}, created, arrived),
        make_line("v1", 11001, "auth0", "login", {"type": "s", "user_id": None}, created, arrived),
        make_line(
            "v0",
            11002,
            "tiles",
            "tile_request",
            {"projectId": "p1", "layerId": "l1", "z": 1, "x": 1, "y": 1},
            created,
            arrived,
        ),
    ]
    from metrics_assets.events import config, demo

    layout = config.lake_layout()
    for version, lines in (("v0", [extra[0], extra[2]]), ("v1", [extra[1]])):
        folder = metrics_home / "objects" / "lake" / "events" / version / layout.folder(flush_minute(arrived))
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / demo.secor_name(7, 900_000), "wt") as f:
            f.write("\n".join(lines) + "\n")

    lines = read_lines(metrics_home / "objects")
    assert len(lines) == len(lake_lines) + 3
    day = START
    # Independent count of the day's metric events that name no requester.
    unattributed = {"logins": 0, "project_tile_requests": 0, "analysis_tile_requests": 0}
    for e in in_window(lines, day, day + timedelta(days=1)):
        d = e["data"]
        if e["service"] == "auth0" and e["event_type"] == "login" and d.get("type") == "s" and not d.get("user_id"):
            unattributed["logins"] += 1
        if e["service"] == "tiles" and e["event_type"] == "tile_request" and not d.get("requester"):
            unattributed["analysis_tile_requests" if d.get("analysisId") else "project_tile_requests"] += 1
    assert unattributed["logins"] >= 2 and unattributed["project_tile_requests"] >= 1

    result = dg.materialize([metrics], partition_key=day.strftime("%Y-%m-%d"), resources=_resources(sqlite_warehouse))
    assert result.success
    assert _metrics(sqlite_warehouse) == {(day, *k): v for k, v in reference_metrics(lines, day).items()}
    meta = _materialization(result, "metrics")
    skipped = {name: meta[f"skipped_no_requester_{name}"].value for name, n in unattributed.items() if n}
    assert skipped == {name: n for name, n in unattributed.items() if n}
    assert meta["skipped_total"].value == sum(unattributed.values())


def test_day_check_runs_on_its_own_schedule_not_with_the_hourly_job():
    from metrics_assets import definitions

    defs = definitions.defs
    key = dg.AssetKey("event_rollups_hourly")
    hourly = defs.resolve_job_def("event_rollups_hourly_job").asset_layer.asset_graph.asset_check_keys
    day = defs.resolve_job_def("events_day_check_job").asset_layer.asset_graph.asset_check_keys
    assert set(hourly) == {
        dg.AssetCheckKey(key, "no_duplicate_keys"),
        dg.AssetCheckKey(key, "events_within_lateness_bounds"),
    }
    assert set(day) == {dg.AssetCheckKey(key, "hourly_rollups_sum_to_day_count")}
    schedule = defs.resolve_schedule_def("events_day_check_schedule")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.job_name == "events_day_check_job"
