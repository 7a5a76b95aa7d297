"""Every query of the domain, three ways: it parses as Athena (Trino) SQL; it runs on DuckDB
after translation; its result equals the plain-Python reference over the same files."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlglot

from metrics_assets.events import ddl, lake, rollups
from metrics_assets.events.metrics_registry import METRICS
from metrics_assets.resources.query_engine import render
from metrics_assets_tests.test_events.conftest import (
    HOURS,
    START,
    normalise,
    reference_metrics,
    reference_rollups,
    reference_skips,
)

QUERY_FILES = sorted(lake.SQL_DIR.glob("*.sql")) + sorted((lake.SQL_DIR / "metrics").glob("*.sql"))


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.name)
def test_query_parses_as_trino_and_renders_for_both_engines(path):
    tree = sqlglot.parse_one(path.read_text(), read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert tree.find(sqlglot.exp.Select) is not None
    params = lake.slice_params(START, START + timedelta(hours=1), 1)
    for dialect in ("athena", "duckdb"):
        rendered = sqlglot.parse_one(render(path.read_text(), params, dialect), read=dialect)
        assert not list(rendered.find_all(sqlglot.exp.Placeholder))


def test_view_ddl_parses_as_trino():
    ((_, view_sql),) = [s for s in ddl.statements() if s[0].startswith("events_normalized")]
    tree = sqlglot.parse_one(view_sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, sqlglot.exp.Create)


def test_table_ddl_has_projection_serde_and_location(monkeypatch):
    monkeypatch.setenv("EVENT_LAKE_BUCKET", "prod-lake")
    monkeypatch.setenv("EVENT_LAKE_PREFIX", "kafka/events")
    statements = dict(ddl.statements())
    v0, v1 = statements["01_events_v0.sql"], statements["02_events_v1.sql"]
    for text, version in ((v0, "v0"), (v1, "v1")):
        assert f"LOCATION 's3://prod-lake/kafka/events/{version}/'" in text
        assert "PARTITIONED BY (arrival_minute string)" in text
        assert "'projection.enabled' = 'true'" in text
        assert "'projection.arrival_minute.type' = 'date'" in text
        # the Java pattern, its quotes doubled inside the SQL literal
        assert "'projection.arrival_minute.format' = 'yyyy-MM-dd''/hr=''HH''/min=''mm'" in text
        assert "'projection.arrival_minute.interval.unit' = 'MINUTES'" in text
        assert f"'storage.location.template' = 's3://prod-lake/kafka/events/{version}/dt=${{arrival_minute}}/'" in text
        for prop, value in (
            ("ignore.malformed.json", "true"),
            ("case.insensitive", "true"),
            ("dots.in.keys", "false"),
            ("use.null.for.invalid.data", "true"),
        ):
            assert f"'{prop}' = '{value}'" in text
        assert "IF NOT EXISTS" not in text
        assert (
            statements[f"0{1 if version == 'v0' else 2}_events_{version}.sql (drop)"]
            == f"DROP TABLE IF EXISTS events_{version}"
        )
    for column, _, athena_type in lake.V0_COLUMNS:
        assert f"  {column} {athena_type}" in v0
    for column, _, athena_type in lake.V1_COLUMNS:
        assert f"  {column} {athena_type}" in v1


def test_views_work_on_a_missing_lake(duck_engine):
    con = duck_engine.connection()
    for name in (lake.EVENTS_V0, lake.EVENTS_V1, lake.EVENTS_NORMALIZED):
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)
    cols = [r[0] for r in con.execute("DESCRIBE events_v0").fetchall()]
    assert cols == [c for c, _, _ in lake.V0_COLUMNS] + ["arrival_minute"]
    types = {r[0]: r[1] for r in con.execute("DESCRIBE events_v1").fetchall()}
    assert types["envelope"].startswith("STRUCT(resourceId VARCHAR, customerId BIGINT")
    out = duck_engine.execute(rollups.ROLLUP_SQL.read_text(), lake.slice_params(START, START + timedelta(hours=1), 1))
    assert out.table.num_rows == 0


def test_views_have_the_contract_columns_over_files(lake_lines, duck_engine):
    con = duck_engine.connection()
    for name, columns in lake.COLUMNS.items():
        described = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        assert [c for c, _ in described] == [c for c, _, _ in columns] + list(lake.PARTITION_COLUMNS)
    v0 = {r[0]: r[1] for r in con.execute("DESCRIBE events_v0").fetchall()}
    # data: a string, as in Athena (the JSON text of the object, or the content of a JSON string)
    assert v0["customerid"] == "BIGINT" and v0["tags"] == "VARCHAR[]" and v0["data"] == "VARCHAR"
    assert v0["arrival_minute"] == "VARCHAR"
    total_lines = len(lake_lines)
    got = (
        con.execute("SELECT count(*) FROM events_v0").fetchone()[0]
        + con.execute("SELECT count(*) FROM events_v1").fetchone()[0]
    )
    assert got == total_lines


@pytest.mark.parametrize("hour", [0, 10, 23])
def test_rollup_query_equals_reference(lake_lines, duck_engine, hour):
    start = START + timedelta(hours=hour)
    end = start + timedelta(hours=1)
    out = rollups.rollup_slice(duck_engine, _local_store(), start, end, 1)
    got = {
        (r["period_start"], r["customer_id"], r["service"], r["event_type"], r["schema_version"]): (
            r["event_count"],
            r["distinct_resources"],
            round(r["min_lag_s"], 3),
            round(r["max_lag_s"], 3),
        )
        for r in out.rows.to_pylist()
    }
    expected = reference_rollups(lake_lines, start, end)
    assert got == expected
    assert sum(v[0] for v in expected.values()) > 30
    assert out.skipped == reference_skips(lake_lines, start, end)
    assert sum(out.skipped.values()) > 0


def test_rollup_of_a_range_is_the_union_of_its_hours(lake_lines, duck_engine):
    start, end = START, START + timedelta(hours=24)
    out = rollups.rollup_slice(duck_engine, _local_store(), start, end, 1)
    assert out.rows.num_rows == len(reference_rollups(lake_lines, start, end))
    assert sum(out.rows["event_count"].to_pylist()) == sum(
        v[0] for v in reference_rollups(lake_lines, start, end).values()
    )
    assert out.skipped == reference_skips(lake_lines, start, end)
    # Every bad line is counted once, by the slice whose own folders hold it: 4 per hour written.
    everything = rollups.rollup_slice(
        duck_engine, _local_store(), START, START + timedelta(hours=HOURS + 3), 1, check=False
    )
    assert everything.skipped["malformed_json"] == 2 * HOURS
    assert everything.skipped["missing_created_time"] == 2 * HOURS
    # ... and every dated line exactly once: in its created hour, or as out of bounds.
    dated = sum(1 for line in lake_lines if (e := normalise(line)) and e["created_ms"] is not None)
    assert (
        sum(everything.rows["event_count"].to_pylist()) + sum(everything.skipped[r] for r in rollups.OUT_OF_BOUNDS)
        == dated
    )
    assert rollups.direct_count(duck_engine, start, end, 1)[0] == sum(out.rows["event_count"].to_pylist())


def test_lateness_window_is_configurable(lake_lines, duck_engine):
    start = START + timedelta(hours=5)
    end = start + timedelta(hours=1)
    for lateness in (0, 1, 3):
        out = rollups.rollup_slice(duck_engine, _local_store(), start, end, lateness)
        assert sum(out.rows["event_count"].to_pylist()) == sum(
            v[0] for v in reference_rollups(lake_lines, start, end, lateness).values()
        )
    zero = sum(v[0] for v in reference_rollups(lake_lines, start, end, 0).values())
    three = sum(v[0] for v in reference_rollups(lake_lines, start, end, 3).values())
    assert zero < three  # the generated lake has late arrivals


def test_metric_queries_equal_reference(lake_lines, duck_engine):
    day = START
    out = rollups.metrics_slice(duck_engine, _local_store(), day, day + timedelta(days=1), 1)
    got = {}
    for r in out.rows.to_pylist():
        assert r["period_start"] == day and r["period_end"] == day + timedelta(days=1)
        got[(r["metric_name"], tuple(json.loads(r["metric_event"]).items()), r["requester"])] = r["metric_value"]
    expected = reference_metrics(lake_lines, day)
    assert got == expected
    assert {k[0] for k in expected} == {m.name for m in METRICS}


def test_bytes_scanned_are_the_pruned_folders(lake_lines, duck_engine, metrics_home):
    start = START + timedelta(hours=3)
    out = rollups.rollup_slice(duck_engine, _local_store(), start, start + timedelta(hours=1), 1)
    base = metrics_home / "objects" / "lake" / "events"
    expected = 0
    for version in ("v0", "v1"):
        for h in (2, 3, 4):  # the early bound, the hour, the lateness bound
            folder = base / version / f"dt=2026-01-05/hr={h:02d}"
            expected += sum(p.stat().st_size for p in folder.rglob("*.gz"))
    assert out.bytes_scanned == expected
    everything = sum(p.stat().st_size for p in base.rglob("*.gz"))
    assert 0 < expected < everything / 5


def test_slice_params_across_a_year_boundary():
    from datetime import UTC, datetime

    p = lake.slice_params(datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 1, 1, 0, tzinfo=UTC), 1, 1)
    assert (p["folder_lo"], p["folder_hi"]) == ("2025-12-31/hr=22/min=00", "2026-01-01/hr=00/min=59")
    assert (p["late_ms"], p["early_ms"]) == (3_600_000, -3_600_000)


def _local_store():
    from metrics_assets import settings
    from metrics_assets.resources import LocalObjectStore

    return LocalObjectStore(root_dir=str(settings.object_store_dir()))
