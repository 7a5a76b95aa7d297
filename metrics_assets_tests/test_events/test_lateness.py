"""Exactness under any run grouping and any lateness, on a hand-made lake.

The lake is written the way Secor writes it (pinterest/secor: the folder is the partition of the
message's timestamp field, here its arrival time, ``TimestampedMessageParser.generatePartitions``
with the default ``dt=``/``hr=``/``min=`` prefixes and formats of ``secor.common.properties``,
or the ``year=/month=/day=/hour=/minute=`` configuration; files named by
``LogFilePath.getLogFilePath``: ``<generation>_<kafka partition>_<20-digit offset>.gz``).
Every expected number below is counted by hand, event by event, in the table of EVENTS.

Bounds: EVENT_LATENESS_HOURS=1, EVENT_EARLY_HOURS=1 (the defaults): an event created in hour H
counts for H when its folder's hour is H-1, H or H+1; otherwise it is counted, by the run that
owns its folder's hour, as late_beyond_bound / early_beyond_bound.
"""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from metrics_assets import settings
from metrics_assets.events import config, demo, rollups
from metrics_assets.events import layout as layouts
from metrics_assets.events.assets import (
    event_rollups_hourly,
    hourly_rollups_sum_to_day_count,
)
from metrics_assets.events.automation import rollups_job
from metrics_assets.resources import DuckDBQueryEngine, LocalObjectStore

T = datetime(2025, 12, 31, 23, 50, tzinfo=UTC)  # ten minutes before the year ends
M = timedelta(minutes=1)

# (name, version, created, arrival): the hand count of each is in the comments.
EVENTS = [
    # created 2025-12-31 23:50 (hour 23 of the last day of the year)
    ("late5", "v0", T, T + 5 * M),  # folder 23:55 -> hour 23, counted in 23:00
    ("late65", "v1", T, T + 65 * M),  # folder 2026-01-01 00:55 -> H+1, counted in 23:00
    ("late130", "v0", T, T + 130 * M),  # folder 02:00 -> H+3: late_beyond_bound, owned by hour 02:00
    ("late270", "v1", T, T + 270 * M),  # folder 04:20 -> H+5: late_beyond_bound, owned by hour 04:00
    # created 2026-01-01 00:10, arrived BEFORE it was created (the producer's clock ahead)
    ("early12", "v0", T + 20 * M, T + 8 * M),  # folder 2025-12-31 23:58 -> H-1: counted in 00:00
    # created 2026-01-01 02:30, arrived 01:05 the same night? no: 00:40 -> H-2: early_beyond_bound, owned by 00:00
    ("early110", "v1", T + 160 * M, T + 50 * M),
    # created 2026-01-01 00:59:59.999 (v1 ISO with ms), arrived 01:00:00.500 -> counted in 00:00 (H+1 folder)
    (
        "edge",
        "v1",
        datetime(2026, 1, 1, 0, 59, 59, 999000, tzinfo=UTC),
        datetime(2026, 1, 1, 1, 0, 0, 500000, tzinfo=UTC),
    ),
    # created 2026-01-01 01:30, arrived 01:31 -> counted in 01:00
    ("plain", "v0", T + 100 * M, T + 101 * M),
    # a month end that is not a year end: created 2026-01-31 23:59, arrived 2026-02-01 00:20 -> counted in 23:00
    ("month", "v1", datetime(2026, 1, 31, 23, 59, tzinfo=UTC), datetime(2026, 2, 1, 0, 20, tzinfo=UTC)),
]
# Lines that are not events, all in the folder 2026-01-01 00:30 (owned by hour 00:00):
BAD_FOLDER = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
BAD_LINES = {
    # three malformed lines: "{not json", and the two blank ones, which Athena reads as rows of
    # NULLs (Trino's OpenXJsonDeserializer.deserialize: a trimmed line that does not start with
    # "{" or "[" is a row of NULLs), and so does the local reader
    "v0": [
        "{not json",
        "",
        "   ",
        '{"customerid": 11001, "servicename": "auth0", "arrivaltimestamp": 1767227400000, "data": {"event": "login"}}',
        # createdtimestamp in SECONDS (1767227400 = 2026-01-01 00:30:00): read as 1970 -> created_time_not_ms
        (
            '{"customerid": 11001, "servicename": "auth0", "createdtimestamp": 1767227400, '
            '"arrivaltimestamp": 1767227400000, "data": {"event": "login"}}'
        ),
    ],
    "v1": [
        (
            '{"envelope": {"customerId": 11002, "service": {"name": "tiles"}, "arrivedAt": "2026-01-01T00:30:00.000Z"}, '
            '"eventType": "tile_request", "data": {}}'
        )
    ],  # no createdAt -> missing_created_time
}

HOURS = {  # created hour -> events counted in it (by hand, from the comments above)
    datetime(2025, 12, 31, 23, tzinfo=UTC): {"late5", "late65"},
    datetime(2026, 1, 1, 0, tzinfo=UTC): {"early12", "edge"},
    datetime(2026, 1, 1, 1, tzinfo=UTC): {"plain"},
    datetime(2026, 1, 31, 23, tzinfo=UTC): {"month"},
}
SKIPS_BY_FOLDER_HOUR = {  # folder hour -> reasons counted there
    datetime(2026, 1, 1, 0, tzinfo=UTC): Counter(
        early_beyond_bound=1, malformed_json=3, missing_created_time=2, created_time_not_ms=1
    ),
    datetime(2026, 1, 1, 2, tzinfo=UTC): Counter(late_beyond_bound=1),
    datetime(2026, 1, 1, 4, tzinfo=UTC): Counter(late_beyond_bound=1),
}
FIRST_HOUR = datetime(2025, 12, 31, 22, tzinfo=UTC)
LAST_HOUR = datetime(2026, 1, 1, 4, tzinfo=UTC)


def write_hand_lake(objects, layout) -> None:
    files: dict[tuple[str, datetime], list[str]] = {}
    for i, (name, version, created, arrived) in enumerate(EVENTS):
        line = demo.make_line(
            version, 11000 + i, "tiles", "tile_request", {"name": name}, created, arrived, resource=f"res-{name}"
        )
        files.setdefault((version, demo.flush_minute(arrived)), []).append(line)
    for version, lines in BAD_LINES.items():
        files.setdefault((version, BAD_FOLDER), []).extend(lines)
    # The lake goes on after the last hour we materialize (so no hour of ours is "not written yet").
    files.setdefault(("v0", datetime(2026, 2, 1, 3, 0, tzinfo=UTC)), []).append(
        demo.make_line(
            "v0",
            1,
            "filebeat",
            "log_shipped",
            {},
            datetime(2026, 2, 1, 3, tzinfo=UTC),
            datetime(2026, 2, 1, 3, tzinfo=UTC),
        )
    )
    demo.write_files(objects, files, layout=layout)


@pytest.fixture(params=list(layouts.LAYOUTS))
def hand_lake(request, metrics_home, monkeypatch):
    monkeypatch.setenv("EVENT_LAKE_LAYOUT", request.param)
    write_hand_lake(metrics_home / "objects", config.lake_layout())
    return request.param


def _resources(warehouse):
    return {
        "warehouse": warehouse,
        "query_engine": DuckDBQueryEngine(object_store_dir=str(settings.object_store_dir())),
        "object_store": LocalObjectStore(root_dir=str(settings.object_store_dir())),
    }


def _key(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def _table(warehouse) -> list[dict]:
    return warehouse.fetch_all(
        "SELECT * FROM event_rollups_hourly ORDER BY period_start, customer_id, service, event_type, schema_version"
    )


def _run_range(warehouse, first: datetime, last: datetime):
    defs = dg.Definitions(
        assets=[event_rollups_hourly],
        asset_checks=[hourly_rollups_sum_to_day_count],
        jobs=[rollups_job],
        resources=_resources(warehouse),
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("event_rollups_hourly_job").execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": _key(first), "dagster/asset_partition_range_end": _key(last)},
        )
    assert result.success
    return result


def _hours(first: datetime, last: datetime) -> list[datetime]:
    return [first + timedelta(hours=h) for h in range(int((last - first) / timedelta(hours=1)) + 1)]


def test_each_event_is_counted_once_in_its_created_hour(hand_lake, sqlite_warehouse):
    engine = DuckDBQueryEngine(object_store_dir=str(settings.object_store_dir()))
    store = LocalObjectStore(root_dir=str(settings.object_store_dir()))
    for first, last in ((FIRST_HOUR, LAST_HOUR), (datetime(2026, 1, 31, 23, tzinfo=UTC),) * 2):
        out = rollups.rollup_slice(engine, store, first, last + timedelta(hours=1), rollups.Bounds(1, 1))
        by_hour: dict[datetime, int] = Counter()
        for row in out.rows.to_pylist():
            by_hour[row["period_start"]] += row["event_count"]
        expected = {h: len(names) for h, names in HOURS.items() if first <= h <= last}
        assert dict(by_hour) == expected
        skips = Counter()
        for hour, reasons in SKIPS_BY_FOLDER_HOUR.items():
            if first <= hour <= last:
                skips.update(reasons)
        assert {k: v for k, v in out.skipped.items() if v} == dict(skips)
    # late5 (300 s) and late65 (3900 s) in hour 23; early12 arrived 720 s before creation.
    out = rollups.rollup_slice(engine, store, FIRST_HOUR, LAST_HOUR + timedelta(hours=1), rollups.Bounds(1, 1))
    lags = {
        (r["period_start"].hour, r["customer_id"]): (r["min_lag_s"], r["max_lag_s"], r["distinct_resources"])
        for r in out.rows.to_pylist()
    }
    assert lags[(23, 11000)] == (300.0, 300.0, 1)
    assert lags[(23, 11001)] == (3900.0, 3900.0, 1)
    assert lags[(0, 11004)] == (-720.0, -720.0, 1)
    assert lags[(0, 11006)] == (0.501, 0.501, 1)  # .999 truncated to ms (Athena's timestamp(3))


def test_raising_the_bound_counts_the_late_events_in_their_hour(hand_lake):
    engine = DuckDBQueryEngine(object_store_dir=str(settings.object_store_dir()))
    store = LocalObjectStore(root_dir=str(settings.object_store_dir()))
    hour = datetime(2025, 12, 31, 23, tzinfo=UTC)
    for lateness, counted in ((1, 2), (3, 3), (5, 4)):  # + late130 (H+3), + late270 (H+5)
        out = rollups.rollup_slice(engine, store, hour, hour + timedelta(hours=1), rollups.Bounds(lateness, 1))
        assert sum(out.rows["event_count"].to_pylist()) == counted


@pytest.mark.parametrize("layout_name", [layouts.DEFAULT])
def test_every_grouping_gives_identical_tables(layout_name, metrics_home, monkeypatch, warehouse):
    monkeypatch.setenv("EVENT_LAKE_LAYOUT", layout_name)
    write_hand_lake(metrics_home / "objects", config.lake_layout())
    hours = _hours(FIRST_HOUR, LAST_HOUR)
    tables = {}

    def reset():
        warehouse.execute("DELETE FROM event_rollups_hourly")

    # 1. one hour at a time, in order
    for hour in hours:
        assert dg.materialize([event_rollups_hourly], partition_key=_key(hour), resources=_resources(warehouse)).success
    tables["single"] = _table(warehouse)
    # 2. one hour at a time, in reverse order
    reset()
    for hour in reversed(hours):
        assert dg.materialize([event_rollups_hourly], partition_key=_key(hour), resources=_resources(warehouse)).success
    tables["reversed"] = _table(warehouse)
    # 3. the whole range as one run (a backfill)
    reset()
    _run_range(warehouse, FIRST_HOUR, LAST_HOUR)
    tables["range"] = _table(warehouse)
    # 4. overlapping 3-hour runs, like the hourly schedule, then a rerun of a range in the middle
    reset()
    for last in hours:
        _run_range(warehouse, max(FIRST_HOUR, last - timedelta(hours=2)), last)
    _run_range(warehouse, hours[2], hours[4])
    tables["schedule"] = _table(warehouse)

    assert tables["single"] == tables["reversed"] == tables["range"] == tables["schedule"]
    counted = {
        (r["period_start"] if isinstance(r["period_start"], str) else r["period_start"].isoformat())
        for r in tables["single"]
    }
    assert len(tables["single"]) == sum(len(v) for h, v in HOURS.items() if FIRST_HOUR <= h <= LAST_HOUR) == 5
    assert len(counted) == 3


def test_out_of_bounds_events_fail_the_warning_check(hand_lake, sqlite_warehouse):
    result = dg.materialize(
        [event_rollups_hourly], partition_key="2026-01-01-02:00", resources=_resources(sqlite_warehouse)
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    bound = checks["events_within_lateness_bounds"]
    assert not bound.passed and bound.severity == dg.AssetCheckSeverity.WARN
    assert bound.metadata["late_beyond_bound"].value == 1
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["events_out_of_bounds"].value == 1 and meta["events"].value == 0


# -- never silently empty ----------------------------------------------------------------------
def test_wrong_prefix_fails_and_keeps_the_rows(hand_lake, sqlite_warehouse, monkeypatch):
    key = "2025-12-31-23:00"
    assert dg.materialize([event_rollups_hourly], partition_key=key, resources=_resources(sqlite_warehouse)).success
    before = _table(sqlite_warehouse)
    assert len(before) == 2
    monkeypatch.setenv("EVENT_LAKE_PREFIX", "evnts")
    result = dg.materialize(
        [event_rollups_hourly], partition_key=key, resources=_resources(sqlite_warehouse), raise_on_error=False
    )
    assert not result.success
    message = str(result.all_events)
    assert "EVENT_LAKE_BUCKET" in message and "EVENT_LAKE_PREFIX" in message and "s3://lake/evnts" in message
    assert _table(sqlite_warehouse) == before


def test_wrong_layout_fails_naming_it(hand_lake, sqlite_warehouse, monkeypatch):
    other = next(name for name in layouts.LAYOUTS if layouts.LAYOUTS[name].head != layouts.LAYOUTS[hand_lake].head)
    monkeypatch.setenv("EVENT_LAKE_LAYOUT", other)
    result = dg.materialize(
        [event_rollups_hourly],
        partition_key="2025-12-31-23:00",
        resources=_resources(sqlite_warehouse),
        raise_on_error=False,
    )
    assert not result.success
    assert "EVENT_LAKE_LAYOUT" in str(result.all_events)


def test_hour_not_written_yet_fails(hand_lake, sqlite_warehouse):
    # 2026-02-01 05:00: no folder for it, nor after it (the lake ends at 03:00).
    result = dg.materialize(
        [event_rollups_hourly],
        partition_key="2026-02-01-05:00",
        resources=_resources(sqlite_warehouse),
        raise_on_error=False,
    )
    assert not result.success
    assert "has not written this hour yet" in str(result.all_events)


def test_truly_empty_hour_is_written_empty_and_says_so(hand_lake, sqlite_warehouse):
    # 2026-01-01 03:00: no folder, but the 04:20 folder exists: Secor went past it.
    import pyarrow as pa

    hour = datetime(2026, 1, 1, 3, tzinfo=UTC)
    stale = pa.table(
        {
            "period_start": pa.array([hour], pa.timestamp("ms", tz="UTC")),
            "customer_id": [5],
            "service": ["s"],
            "event_type": ["e"],
            "schema_version": ["v0"],
            "event_count": [9],
            "distinct_resources": [0],
            "min_lag_s": [1.0],
            "max_lag_s": [1.0],
        }
    )
    sqlite_warehouse.replace_slice(
        "event_rollups_hourly",
        stale,
        "period_start >= :start AND period_start < :end",
        {"start": hour, "end": hour + timedelta(hours=1)},
    )
    assert sqlite_warehouse.scalar("SELECT count(*) FROM event_rollups_hourly") == 1
    result = dg.materialize(
        [event_rollups_hourly], partition_key="2026-01-01-03:00", resources=_resources(sqlite_warehouse)
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["dagster/row_count"].value == 0
    assert "2026-01-01 03:00" in meta["empty_hours"].value
    assert sqlite_warehouse.scalar("SELECT count(*) FROM event_rollups_hourly") == 0


def test_secor_file_names_and_foreign_files(metrics_home, sqlite_warehouse):
    """Files are read by content: Secor's gzip files have no .json; an uncompressed Secor file (no
    codec: no extension) is read as text; its .crc twin (hidden) and a Parquet file are not read."""
    layout = config.lake_layout()
    folder = (
        metrics_home / "objects" / "lake" / "events" / "v0" / layout.folder(datetime(2026, 1, 5, 10, 7, tzinfo=UTC))
    )
    folder.mkdir(parents=True)
    created = datetime(2026, 1, 5, 10, 6, tzinfo=UTC)
    line = demo.make_line("v0", 11000, "auth0", "login", {"type": "s", "user_id": "u"}, created, created + M)
    with gzip.open(folder / demo.secor_name(0, 0), "wt") as f:
        f.write(line + "\n" + line + "\n")
    (folder / demo.secor_name(1, 0, extension="")).write_text(line + "\n")
    (folder / ".1_0_00000000000000000000.crc").write_bytes(b"\x00crc")
    (folder / "1_2_00000000000000000000.parquet").write_bytes(b"PAR1\x00\x00PAR1")
    result = dg.materialize(
        [event_rollups_hourly], partition_key="2026-01-05-10:00", resources=_resources(sqlite_warehouse)
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["events"].value == 3
    assert meta["skipped_foreign_files"].value == 1


def test_metrics_are_the_same_by_day_or_by_range(metrics_home, sqlite_warehouse):
    """The daily metrics follow the same rule: two days one by one (in reverse order) and the two
    as one range give identical rows (a generated lake with late arrivals, 2 days and 2 hours)."""
    from metrics_assets.events.assets import metrics
    from metrics_assets.events.automation import metrics_job

    start = datetime(2026, 1, 5, tzinfo=UTC)
    demo.write_lake(metrics_home / "objects", start, hours=50, events_per_hour=40, seed=3)
    resources = _resources(sqlite_warehouse)
    order = "SELECT * FROM metrics ORDER BY period_start, metric_name, metric_event, requester"
    for day in ("2026-01-06", "2026-01-05"):
        assert dg.materialize([metrics], partition_key=day, resources=resources).success
    one_by_one = sqlite_warehouse.fetch_all(order)
    sqlite_warehouse.execute("DELETE FROM metrics")
    defs = dg.Definitions(assets=[metrics], jobs=[metrics_job], resources=resources)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def("events_metrics_job")
            .execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": "2026-01-05",
                    "dagster/asset_partition_range_end": "2026-01-06",
                },
            )
            .success
        )
    assert sqlite_warehouse.fetch_all(order) == one_by_one
    assert len({r["period_start"] for r in one_by_one}) == 2 and len(one_by_one) > 20


def test_unknown_layout_fails_the_run_not_the_code_location(hand_lake, sqlite_warehouse, monkeypatch):
    import importlib

    from metrics_assets.events import lake

    monkeypatch.setenv("EVENT_LAKE_LAYOUT", "hive")
    importlib.reload(lake)  # the code location still loads
    result = dg.materialize(
        [event_rollups_hourly],
        partition_key="2025-12-31-23:00",
        resources=_resources(sqlite_warehouse),
        raise_on_error=False,
    )
    assert not result.success
    assert "EVENT_LAKE_LAYOUT='hive' is not a known layout" in str(result.all_events)
