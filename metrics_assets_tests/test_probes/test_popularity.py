"""probe_popularity, release_correlation and probes_to_build over hand-made probe_views_daily
rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import dagster as dg
import pytest

from metrics_assets.probes.assets import (
    probe_popularity,
    probes_to_build,
    release_correlation,
)
from metrics_assets_tests.test_probes.conftest import add_catalogue, add_views, ts

FX = "firefox"


@pytest.fixture
def views(warehouse, monkeypatch):
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-31")
    # Only PROBE_VIEW counts here, so the PROBE_SEARCH row below proves the setting is honoured
    # (the default, PROBE_SEARCH,PROBE_VIEW, is tested in test_glam.py on GLAM's own rows).
    monkeypatch.setenv("PROBES_VIEW_ACTIONS", "PROBE_VIEW")
    add_catalogue(warehouse, FX, ["p1", "p2", "p3", "p4", "p5"])
    add_catalogue(warehouse, "fenix", ["q1"])
    add_views(
        warehouse,
        [
            ("2026-03-31", FX, "p1", 10, 7),
            ("2026-03-20", FX, "p1", 2),
            ("2026-03-25", FX, "p2", 5),
            ("2026-03-18", FX, "p2", 8),
            ("2026-03-17", FX, "p2", 50),
            ("2026-03-30", FX, "p3", 5),
            ("2026-03-01", FX, "p4", 3),
            ("2026-03-31", FX, "px", 1),  # viewed, but not in the catalogue
            ("2025-12-01", FX, "p5", 99),  # older than any window
        ],
    )
    warehouse.append(
        "probe_views_daily",
        [
            {  # searches are not views
                "period_start": ts("2026-03-31 00:00:00"),
                "product": FX,
                "probe_name": "p5",
                "action_type": "PROBE_SEARCH",
                "events": 100,
                "sessions": 1,
                "tracking_ids": 1,
            }
        ],
    )
    return warehouse


def run(asset, resources):
    result = dg.materialize([asset], resources=resources)
    assert result.success
    return result


def popularity(warehouse, window):
    return {
        (r["product"], r["probe_name"]): (
            r["views"],
            r["sessions"],
            r["rank"],
            r["previous_views"],
            r["previous_rank"],
            r["rank_change"],
            bool(r["is_most_viewed"]),
            bool(r["is_least_viewed"]),
            bool(r["in_catalogue"]),
        )
        for r in warehouse.fetch_all("SELECT * FROM probe_popularity WHERE window_days = :w", {"w": window})
    }


def test_popularity_windows_ranks_and_flags(views, resources, monkeypatch):
    monkeypatch.setenv("PROBES_TOP_N", "2")
    run(probe_popularity, resources)
    # 7 days: 03-25..03-31, previous 03-18..03-24.
    assert popularity(views, 7) == {
        (FX, "p1"): (10, 7, 1, 2, 2, 1, True, False, True),
        (FX, "p2"): (5, 5, 2, 8, 1, -1, True, False, True),
        (FX, "p3"): (5, 5, 2, 0, None, None, False, False, True),
        (FX, "px"): (1, 1, 4, 0, None, None, False, False, False),
        (FX, "p4"): (0, 0, 5, 0, None, None, False, True, True),
        (FX, "p5"): (0, 0, 5, 0, None, None, False, True, True),
        ("fenix", "q1"): (0, 0, 1, 0, None, None, False, True, True),
    }
    # 28 days: 03-04..03-31, previous 02-04..03-03 (p4's 3 views).
    p28 = popularity(views, 28)
    assert {k: v[:6] for k, v in p28.items() if k[0] == FX} == {
        (FX, "p2"): (63, 63, 1, 0, None, None),
        (FX, "p1"): (12, 9, 2, 0, None, None),
        (FX, "p3"): (5, 5, 3, 0, None, None),
        (FX, "px"): (1, 1, 4, 0, None, None),
        (FX, "p4"): (0, 0, 5, 3, 1, -4),
        (FX, "p5"): (0, 0, 5, 0, None, None),
    }
    p90 = popularity(views, 90)  # 2026-01-01..03-31
    assert {k[1]: v[0] for k, v in p90.items() if k[0] == FX} == {
        "p2": 63,
        "p1": 12,
        "p3": 5,
        "p4": 3,
        "px": 1,
        "p5": 0,
    }
    assert views.scalar("SELECT count(*) FROM probe_popularity") == 21
    window = views.fetch_all("SELECT window_start, window_end FROM probe_popularity WHERE window_days = 7 LIMIT 1")[0]
    assert str(window["window_start"])[:10] == "2026-03-25" and str(window["window_end"])[:10] == "2026-04-01"
    before = views.fetch_all("SELECT * FROM probe_popularity ORDER BY product, window_days, probe_name")
    run(probe_popularity, resources)
    assert views.fetch_all("SELECT * FROM probe_popularity ORDER BY product, window_days, probe_name") == before


def test_release_correlation(warehouse, resources, monkeypatch):
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-31")
    monkeypatch.setenv("PROBES_VIEW_ACTIONS", "PROBE_VIEW")
    warehouse.append(
        "product_releases",
        [
            {"product": FX, "version": "v1", "channel": "release", "release_date": "2026-03-20"},
            {"product": FX, "version": "v0", "channel": "release", "release_date": "2026-03-01"},
            {"product": FX, "version": "v2", "channel": "release", "release_date": "2026-04-10"},  # after the as-of day
            {"product": "fenix", "version": "f1", "channel": "beta", "release_date": "2026-03-10"},
        ],
    )
    add_views(
        warehouse,
        [
            ("2026-03-19", FX, "p1", 4),
            ("2026-03-20", FX, "p1", 6),
            ("2026-03-05", FX, "p1", 2),
            ("2026-03-06", FX, "p2", 3),
            ("2026-04-03", FX, "p2", 9),  # 04-03: past v1's window 03-20..04-02
            ("2026-04-01", FX, "p2", 70),  # inside v1's 14 days, but after PROBES_AS_OF: never counted
        ],
    )
    warehouse.append(
        "probe_views_daily",
        [
            {
                "period_start": ts("2026-03-21 00:00:00"),
                "product": FX,
                "probe_name": "p1",
                "action_type": "PROBE_SEARCH",
                "events": 50,
                "sessions": 1,
                "tracking_ids": 1,
            }
        ],
    )
    run(release_correlation, resources)
    rows = {
        (r["version"], r["probe_name"]): (
            r["views_before"],
            r["views_after"],
            r["daily_views_before"],
            r["daily_views_after"],
            r["after_before_ratio"],
            bool(r["complete"]),
        )
        for r in warehouse.fetch_all("SELECT * FROM release_correlation")
    }
    # v1: before 03-06..03-19; after 03-20..03-31, cut at the as-of day: 12 days elapsed, not 14.
    assert rows == {
        ("v1", "p1"): (4, 6, 4 / 14, 6 / 12, (6 / 12) / (4 / 14), False),
        ("v1", "p2"): (3, 0, 3 / 14, 0.0, 0.0, False),
        ("v1", "*"): (7, 6, 0.5, 0.5, 1.0, False),
        ("v0", "p1"): (0, 2, 0.0, 2 / 14, None, True),
        ("v0", "p2"): (0, 3, 0.0, 3 / 14, None, True),
        ("v0", "*"): (0, 5, 0.0, 5 / 14, None, True),
        ("f1", "*"): (0, 0, 0.0, 0.0, None, True),
    }


def test_probes_to_build_hot_list_with_reasons(views, resources, monkeypatch):
    monkeypatch.setenv("PROBES_HOT_MIN_VIEWS", "5")
    monkeypatch.setenv("PROBES_HOT_WINDOW_DAYS", "7")
    monkeypatch.setenv("PROBES_ALWAYS_BUILD", f"{FX}/p5, {FX}/p1,{FX}/nope")
    add_views(views, [("2026-03-30", FX, "px", 5)])  # px: 6 views, hot, but unknown to the catalogue
    # Requests (the GLAM database is the warehouse here): p4 asked on 03-28 (in the last 7 days),
    # p2 too (hot as well), p4 again long ago, and a probe the catalogue does not know.
    views.append(
        "probe_build_requests",
        [
            {"product": FX, "probe_name": "p4", "requested_at": ts("2026-03-28 12:00:00"), "status": "SUCCEEDED"},
            {"product": FX, "probe_name": "p2", "requested_at": ts("2026-03-25 00:00:00"), "status": "FAILED"},
            {"product": FX, "probe_name": "p3", "requested_at": ts("2026-03-01 00:00:00"), "status": "SUCCEEDED"},
            {"product": FX, "probe_name": "nope2", "requested_at": ts("2026-03-30 00:00:00"), "status": "FAILED"},
        ],
    )
    # New: first seen 03-18 (the first of the 14 days ending 03-31) is new; 03-17 is not.
    add_catalogue(views, FX, ["fresh"], first_seen="2026-03-18")
    add_catalogue(views, FX, ["stale"], first_seen="2026-03-17")
    result = run(probes_to_build, resources)
    rows = {
        (r["product"], r["probe_name"]): (r["reason"], r["views"], r["window_days"], r["min_views"])
        for r in views.fetch_all("SELECT * FROM probes_to_build")
    }
    assert rows == {
        (FX, "p1"): ("hot,always_build", 10, 7, 5),
        (FX, "p2"): ("hot,requested", 5, 7, 5),
        (FX, "p3"): ("hot", 5, 7, 5),
        (FX, "p4"): ("requested", 0, 7, 5),
        (FX, "p5"): ("always_build", 0, 7, 5),
        (FX, "fresh"): ("new", 0, 7, 5),
    }
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["skipped"].value == {
        "hot_not_in_catalogue": 1,
        "always_build_not_in_catalogue": 1,
        "requested_not_in_catalogue": 1,
    }
    assert metadata["hot_list_size"].value == 6
    assert (metadata["reason_hot"].value, metadata["reason_requested"].value, metadata["reason_new"].value) == (3, 2, 1)
    views.execute("DELETE FROM probe_build_requests")
    views.execute("DELETE FROM glam_probe_catalogue WHERE probe_name IN ('fresh', 'stale')")

    monkeypatch.setenv("PROBES_HOT_MIN_VIEWS", "6")
    monkeypatch.setenv("PROBES_ALWAYS_BUILD", "")
    run(probes_to_build, resources)
    assert views.fetch_all("SELECT probe_name, reason, views FROM probes_to_build") == [
        {"probe_name": "p1", "reason": "hot", "views": 10}
    ]


def test_broken_configuration_fails_naming_the_variable(views, resources, monkeypatch):
    monkeypatch.setenv("PROBES_ALWAYS_BUILD", "firefox-p1")
    with pytest.raises(Exception, match="PROBES_ALWAYS_BUILD entry 'firefox-p1'"):
        dg.materialize([probes_to_build], resources=resources)
    monkeypatch.setenv("PROBES_ALWAYS_BUILD", "")
    monkeypatch.setenv("PROBES_HOT_MIN_VIEWS", "lots")
    with pytest.raises(Exception, match="PROBES_HOT_MIN_VIEWS='lots' must be a whole number"):
        dg.materialize([probes_to_build], resources=resources)
