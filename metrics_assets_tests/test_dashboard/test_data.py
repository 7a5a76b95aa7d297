"""What each page charts, on SQLite and PostgreSQL, against figures worked out by hand from
``seed.py``."""

from __future__ import annotations

import pytest

from metrics_assets.dashboard import data, kpi_api
from metrics_assets_tests.test_dashboard.seed import seed


@pytest.fixture
def seeded(warehouse):
    seed(warehouse)
    return warehouse


def _records(frame, columns):
    return [tuple(row) for row in frame[columns].itertuples(index=False)]


def test_offspot(seeded):
    frames = data.offspot_kpis(seeded, kpi_api.KpiScope("default"), "D")
    # 720 of 1440 minutes = 50 %, 12 hours
    assert _records(frames["uptime"], ["period", "minutes_on", "hours_on", "uptime_pct"]) == [
        ("2026-01-04", 720, 12.0, 50.0),
        ("2026-01-05", 1440, 24.0, 100.0),
    ]
    assert _records(frames["popularity"], ["period", "total_visits"]) == [("2026-01-04", 4), ("2026-01-05", 5)]
    assert _records(frames["shared_files"], ["period", "created", "deleted"]) == [
        ("2026-01-04", 2, 1),
        ("2026-01-05", 2, 1),
    ]
    assert _records(frames["usage_items"], ["period", "package", "minutes"]) == [
        ("2026-01-04", "Wikipedia", 30),
        ("2026-01-05", "Wikipedia", 30),
    ]
    assert data.offspot_kpis(seeded, kpi_api.KpiScope("another-box"), "D")["uptime"].empty
    assert kpi_api.known_boxes(seeded) == ["box-2", "default"]
    box2 = data.offspot_kpis(seeded, kpi_api.KpiScope("box-2"), "D")
    assert _records(box2["uptime"], ["period", "minutes_on", "uptime_pct"]) == [("2026-01-05", 360, 25.0)]
    # the fleet: uptime in box-minutes, as a share of boxes x the day: 1800 / (2 x 1440) = 62.5 %
    fleet = data.offspot_kpis(seeded, kpi_api.FLEET, "D")
    assert _records(fleet["uptime"], ["period", "minutes_on", "boxes", "uptime_pct"]) == [
        ("2026-01-04", 720, 1, 50.0),
        ("2026-01-05", 1800, 2, 62.5),
    ]
    assert _records(fleet["per_box"], ["period", "box", "minutes_on", "uptime_pct"]) == [
        ("2026-01-04", "default", 720, 50.0),
        ("2026-01-05", "box-2", 360, 25.0),
        ("2026-01-05", "default", 1440, 100.0),
    ]
    assert _records(fleet["popularity"], ["period", "total_visits"]) == [("2026-01-04", 4), ("2026-01-05", 6)]


def test_period_minutes():
    assert kpi_api.period_minutes("D", "2026-01-05") == 1440
    assert kpi_api.period_minutes("W", "2026 W02") == 7 * 1440
    assert kpi_api.period_minutes("M", "2024-02") == 29 * 1440
    assert kpi_api.period_minutes("M", "2026-12") == 31 * 1440
    assert kpi_api.period_minutes("Y", "2024") == 366 * 1440


def test_storage(seeded):
    owners = data.storage_bytes_per_owner(seeded)
    assert _records(owners, ["snapshot_date", "owner", "bytes"]) == [
        ("2026-01-01", "(unattributed)", 1_000),
        ("2026-01-01", "alice", 1_500_000_000),
        ("2026-01-01", "bob", 500_000_000),
        ("2026-01-02", "alice", 2_250_000_000),
        ("2026-01-02", "bob", 500_000_000),
    ]
    assert list(owners["gb"]) == [1e-6, 1.5, 0.5, 2.25, 0.5]

    billing = data.storage_billing_latest_month(seeded)
    assert _records(billing, ["month", "owner", "gb_days", "days_measured"]) == [
        ("2026-01", "alice", 3.75, 2),
        ("2026-01", "bob", 1.0, 2),
    ]

    drift = data.storage_drift(seeded)
    assert _records(drift, ["owner", "snapshot_bytes", "live_bytes"]) == [
        ("alice", 2_250_000_000, 2_500_000_000),
        ("bob", 500_000_000, 400_000_000),
    ]
    assert list(drift["drift_gb"]) == pytest.approx([0.25, -0.1])
    assert list(drift["drift_pct"]) == pytest.approx([100 * 0.25 / 2.25, -20.0])
    assert data.storage_snapshot_date(seeded) == "2026-01-02"


def test_probes(seeded, monkeypatch):
    assert data.probe_products(seeded) == ["fenix"]
    assert data.probe_windows(seeded) == [7]
    pop = data.probe_popularity(seeded, "fenix", 7)
    assert list(pop["probe_name"]) == ["gc_ms", "dom_ms", "never_seen"]
    assert list(pop["is_most_viewed"]) == [True, True, False]
    # views are the actions of PROBES_VIEW_ACTIONS: by default GLAM's PROBE_SEARCH and PROBE_VIEW
    assert _records(data.probe_daily_views(seeded, "fenix"), ["day", "views"]) == [
        ("2026-01-01", 5),
        ("2026-01-02", 13),
    ]
    monkeypatch.setenv("PROBES_VIEW_ACTIONS", "PROBE_VIEW")
    assert _records(data.probe_daily_views(seeded, "fenix"), ["day", "views"]) == [("2026-01-01", 5), ("2026-01-02", 4)]
    releases = data.probe_releases(seeded, "fenix")
    assert _records(releases, ["version", "release_date", "views_before", "views_after"]) == [
        ("130", "2026-01-02", 5, 4)
    ]


def test_events(seeded):
    assert _records(data.events_per_day(seeded), ["day", "service", "event_type", "events"]) == [
        ("2026-01-05", "auth0", "login", 5),
        ("2026-01-06", "tiles", "tile_request", 7),
    ]
    assert sorted(data.events_lag(seeded)["max_lag_min"]) == [0.5, 2.0, 10.0]
    assert _records(data.metrics_per_day(seeded), ["day", "metric_name", "value"]) == [
        ("2026-01-05", "logins", 3),
        ("2026-01-06", "logins", 4),
    ]
