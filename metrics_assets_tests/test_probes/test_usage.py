"""probe_views_daily and usage_sessions from the usage log, on SQLite (via DuckDB) and in
PostgreSQL, against hand-computed figures."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from metrics_assets.probes.assets import probe_views_daily, usage_sessions
from metrics_assets_tests.test_probes.conftest import add_usage, event

DAY = "2026-03-10"


def materialize(assets, resources, key=DAY):
    result = dg.materialize(assets, partition_key=key, resources=resources)
    assert result.success
    return result


def views(warehouse):
    return {
        (r["probe_name"], r["action_type"]): (r["events"], r["sessions"], r["tracking_ids"])
        for r in warehouse.fetch_all("SELECT * FROM probe_views_daily WHERE product = 'firefox'")
    }


def test_session_gap_29_59_joins_and_30_01_splits(warehouse, resources):
    add_usage(
        warehouse,
        [
            # a: 29:59 apart -> one session
            event(f"{DAY} 10:00:00", "p1", "a"),
            event(f"{DAY} 10:29:59", "p2", "a"),
            # b: 30:01 apart -> two sessions
            event(f"{DAY} 10:00:00", "p1", "b"),
            event(f"{DAY} 10:30:01", "p1", "b"),
            # c: exactly 30:00 apart -> one session (only a gap LONGER than 30 minutes splits)
            event(f"{DAY} 12:00:00", "p3", "c"),
            event(f"{DAY} 12:30:00", "p3", "c"),
        ],
    )
    materialize([probe_views_daily, usage_sessions], resources)
    sessions = warehouse.fetch_all(
        "SELECT tracking_id, events, duration_s, entry_probe, exit_probe FROM usage_sessions ORDER BY tracking_id, session_start"
    )
    assert [(s["tracking_id"], s["events"], s["duration_s"], s["entry_probe"], s["exit_probe"]) for s in sessions] == [
        ("a", 2, 1799.0, "p1", "p2"),
        ("b", 1, 0.0, "p1", "p1"),
        ("b", 1, 0.0, "p1", "p1"),
        ("c", 2, 1800.0, "p3", "p3"),
    ]
    # p1: a's session, b's two sessions -> 3 events, 3 sessions, 2 tracking ids.
    assert views(warehouse) == {
        ("p1", "PROBE_VIEW"): (3, 3, 2),
        ("p2", "PROBE_VIEW"): (1, 1, 1),
        ("p3", "PROBE_VIEW"): (2, 1, 1),
    }


def test_views_sessions_untracked_and_summary(warehouse, resources):
    add_usage(
        warehouse,
        [
            event(f"{DAY} 08:00:00", "", "a", action="PROBE_SEARCH"),  # search without a probe (blank)
            event(f"{DAY} 08:01:00", "p1", "a"),
            event(f"{DAY} 08:05:00", "p2", "a"),
            event(f"{DAY} 08:20:00", "p1", "a"),
            event(f"{DAY} 09:00:00", "p2", "b"),
            event(f"{DAY} 09:10:00", "p2", "b", action="PROBE_SEARCH"),
            event(f"{DAY} 09:40:00", "p3", "b"),  # 30:00 later: same session
            event(f"{DAY} 11:00:00", "p1", ""),  # no tracking id: counted only
            event(f"{DAY} 11:00:00", "p1", ""),  # (GLAM: tracking_id NOT NULL, '' when unknown)
            event(f"{DAY} 13:00:00", "p9", "c", product=None),  # no product: GLAM's default, firefox
            event("2026-03-09 23:59:59", "p1", "z"),  # other days: not in the slice
            event("2026-03-11 00:00:00", "p1", "z"),
        ],
    )
    result = materialize([probe_views_daily, usage_sessions], resources)
    assert views(warehouse) == {
        ("p1", "PROBE_VIEW"): (4, 1, 1),  # a twice, two untracked
        ("p2", "PROBE_VIEW"): (2, 2, 2),
        ("p2", "PROBE_SEARCH"): (1, 1, 1),
        ("p3", "PROBE_VIEW"): (1, 1, 1),
        ("p9", "PROBE_VIEW"): (1, 1, 1),
    }
    assert warehouse.scalar("SELECT count(*) FROM probe_views_daily") == 5
    mats = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    assert mats["probe_views_daily"]["skipped_events"].value == {"missing_probe_name": 1, "missing_action_type": 0}
    assert mats["probe_views_daily"]["usage_events"].value == 10
    # 8 of the day's 10 events carry a tracking id; views (PROBE_SEARCH and PROBE_VIEW, with a
    # probe) 9, in sessions a (p1, p2), b (p2 view, p2 search, p3), c (p9): 6 (probe, session) pairs.
    figures = mats["probe_views_daily"]
    assert (
        figures["tracked_share"].value,
        figures["views"].value,
        figures["sessions"].value,
        figures["distinct_probes"].value,
    ) == (0.8, 9, 6, 4)
    assert mats["usage_sessions"]["tracked_share"].value == 0.8 and mats["usage_sessions"]["sessions"].value == 3

    sessions = warehouse.fetch_all("SELECT * FROM usage_sessions ORDER BY tracking_id")
    assert [
        (s["tracking_id"], s["events"], s["duration_s"], s["distinct_probes"], s["entry_probe"], s["exit_probe"])
        for s in sessions
    ] == [
        ("a", 4, 1200.0, 2, "p1", "p1"),  # the search opens it but has no probe: entry is p1
        ("b", 3, 2400.0, 2, "p2", "p3"),
        ("c", 1, 0.0, 1, "p9", "p9"),
    ]
    summary = warehouse.fetch_all("SELECT * FROM usage_sessions_daily")
    assert len(summary) == 1
    s = summary[0]
    # durations 0, 1200, 2400: median 1200, p90 = 1200 + 0.8 * 1200 = 2160
    assert (s["sessions"], s["median_duration_s"], s["p90_duration_s"]) == (3, 1200.0, 2160.0)
    assert s["avg_probes_per_session"] == pytest.approx(5 / 3)
    assert s["median_probes_per_session"] == 2.0
    assert (s["sessionized_events"], s["untracked_events"]) == (8, 2)
    assert json.loads(s["top_entry_probes"]) == [
        {"probe": "p1", "sessions": 1},
        {"probe": "p2", "sessions": 1},
        {"probe": "p9", "sessions": 1},
    ]


def test_session_across_midnight_belongs_to_its_start_day(warehouse, resources):
    add_usage(
        warehouse,
        [
            event("2026-03-10 23:50:00", "p1", "a"),
            event("2026-03-11 00:10:00", "p2", "a"),
            event("2026-03-11 00:12:00", "p1", "a"),
            event("2026-03-11 00:15:00", "p1", "b"),
        ],
    )
    materialize([usage_sessions, probe_views_daily], resources, "2026-03-10")
    materialize([usage_sessions, probe_views_daily], resources, "2026-03-11")
    rows = warehouse.fetch_all(
        "SELECT tracking_id, events, duration_s, exit_probe FROM usage_sessions ORDER BY tracking_id"
    )
    assert [(r["tracking_id"], r["events"], r["duration_s"], r["exit_probe"]) for r in rows] == [
        ("a", 3, 1320.0, "p1"),
        ("b", 1, 0.0, "p1"),
    ]
    daily = {
        str(r["period_start"])[:10]: r["sessions"] for r in warehouse.fetch_all("SELECT * FROM usage_sessions_daily")
    }
    assert daily == {"2026-03-10": 1, "2026-03-11": 1}
    # Events count on their own day; a session counts on the day it starts, for every probe it
    # touches, even after midnight: a's session touches p1 on both days and p2 after midnight.
    got = {
        (str(r["period_start"])[:10], r["probe_name"]): (r["events"], r["sessions"], r["tracking_ids"])
        for r in warehouse.fetch_all("SELECT * FROM probe_views_daily")
    }
    assert got == {
        ("2026-03-10", "p1"): (1, 1, 1),
        ("2026-03-10", "p2"): (0, 1, 0),
        ("2026-03-11", "p1"): (2, 1, 2),
        ("2026-03-11", "p2"): (1, 0, 1),
    }
    # So any window's sum counts each session once: p1 was in sessions a and b, p2 in a.
    per_probe = {
        r["probe_name"]: r["s"]
        for r in warehouse.fetch_all("SELECT probe_name, sum(sessions) AS s FROM probe_views_daily GROUP BY probe_name")
    }
    assert per_probe == {"p1": 2, "p2": 1}


def test_rerun_and_range_give_identical_tables(warehouse, resources):
    add_usage(
        warehouse,
        [
            event("2026-03-10 10:00:00", "p1", "a"),
            event("2026-03-10 10:40:00", "p2", "a"),
            event("2026-03-11 09:00:00", "p1", "b"),
            event("2026-03-11 09:05:00", "p1", ""),
            event("2026-03-12 23:45:00", "p3", "a"),
            event("2026-03-13 00:05:00", "p3", "a"),
        ],
    )

    def snapshot():
        return (
            warehouse.fetch_all("SELECT * FROM probe_views_daily ORDER BY period_start, probe_name, action_type"),
            warehouse.fetch_all("SELECT * FROM usage_sessions ORDER BY tracking_id, session_start"),
            warehouse.fetch_all("SELECT * FROM usage_sessions_daily ORDER BY period_start"),
        )

    for day in ("2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13"):
        materialize([probe_views_daily, usage_sessions], resources, day)
    first = snapshot()
    materialize([probe_views_daily, usage_sessions], resources, "2026-03-11")
    assert snapshot() == first
    job = dg.Definitions(
        assets=[probe_views_daily, usage_sessions], resources=resources
    ).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        tags={"dagster/asset_partition_range_start": "2026-03-10", "dagster/asset_partition_range_end": "2026-03-13"}
    )
    assert result.success
    assert snapshot() == first
    assert len(first[1]) == 4 and len(first[2]) == 4


def test_usage_sessions_daily_is_an_asset_and_materializes_alone(warehouse, resources):
    """usage_sessions_daily is its own asset in the lineage, written by the same computation as
    usage_sessions: selecting it alone writes both tables (one slice replace) and records
    usage_sessions as a runtime materialization of the run. Rows as GLAM's usage log holds them
    (conftest.event): a's events 10:00 and 10:10 are one session; two events without a tracking id."""
    add_usage(
        warehouse,
        [
            event(f"{DAY} 10:00:00", "p1", "a"),
            event(f"{DAY} 10:10:00", "p2", "a"),
            event(f"{DAY} 11:00:00", "p1", ""),
            event(f"{DAY} 12:00:00", "p3", ""),
        ],
    )
    defs = dg.Definitions(assets=[usage_sessions], resources=resources)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"usage_sessions", "usage_sessions_daily"}
    result = dg.materialize([usage_sessions], partition_key=DAY, resources=resources, selection="usage_sessions_daily")
    assert result.success
    planned = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert planned == {"usage_sessions_daily", "usage_sessions"}
    daily = result.asset_materializations_for_node("usage_sessions")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in daily}
    assert by_key["usage_sessions_daily"]["dagster/row_count"].value == 1
    assert by_key["usage_sessions_daily"]["sessions"].value == 1
    assert by_key["usage_sessions_daily"]["untracked_events"].value == 2
    assert by_key["usage_sessions"]["dagster/row_count"].value == 1
    assert by_key["usage_sessions"]["usage_events"].value == 4
    assert by_key["usage_sessions"]["tracked_share"].value == 0.5
    assert [
        (r["events"], r["duration_s"]) for r in warehouse.fetch_all("SELECT events, duration_s FROM usage_sessions")
    ] == [(2, 600.0)]
    assert [
        (r["sessions"], r["sessionized_events"], r["untracked_events"])
        for r in warehouse.fetch_all("SELECT * FROM usage_sessions_daily")
    ] == [(1, 2, 2)]
    # A rerun of the day replaces its slice: the same rows, not twice as many.
    assert dg.materialize([usage_sessions], partition_key=DAY, resources=resources).success
    assert warehouse.scalar("SELECT count(*) FROM usage_sessions") == 1
    assert warehouse.scalar("SELECT count(*) FROM usage_sessions_daily") == 1
    # A backfill range of two days run as one (single_run policy), usage_sessions alone selected:
    # usage_sessions_daily gets a row per day (no session on the 11th: 0) and a runtime
    # materialization per partition, as the selected usage_sessions gets one per partition.
    job = dg.Definitions(assets=[usage_sessions], resources=resources).resolve_implicit_global_asset_job_def()
    ranged = job.get_subset(asset_selection={dg.AssetKey("usage_sessions")}).execute_in_process(
        tags={"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": "2026-03-11"}
    )
    assert ranged.success
    recorded = sorted(
        (m.asset_key.to_user_string(), m.partition) for m in ranged.asset_materializations_for_node("usage_sessions")
    )
    assert recorded == [
        ("usage_sessions", DAY),
        ("usage_sessions", "2026-03-11"),
        ("usage_sessions_daily", DAY),
        ("usage_sessions_daily", "2026-03-11"),
    ]
    assert [
        (str(r["period_start"])[:10], r["sessions"])
        for r in warehouse.fetch_all("SELECT period_start, sessions FROM usage_sessions_daily ORDER BY period_start")
    ] == [(DAY, 1), ("2026-03-11", 0)]
