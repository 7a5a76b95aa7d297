"""GLAM_DATABASE_URL pointing at another database than the warehouse: the usage-log queries run
in the GLAM database (PostgreSQL), the results land in the warehouse (SQLite here), and the
catalogue travels through temporary tables."""

from __future__ import annotations

import dagster as dg

from metrics_assets.probes.assets import probe_popularity, probe_views_daily
from metrics_assets.probes.source import GlamDatabase
from metrics_assets_tests.test_probes.conftest import add_catalogue, add_usage, event


def test_glam_on_postgres_warehouse_on_sqlite(pg_warehouse, sqlite_warehouse, monkeypatch):
    glam = pg_warehouse  # the app's database: only its three source tables are used
    add_usage(glam, [
        event("2026-03-10 10:00:00", "p1", "a"), event("2026-03-10 10:45:00", "p1", "a"),
        event("2026-03-10 11:00:00", "p2", "b"),
    ])
    add_catalogue(glam, "firefox_desktop", ["p1", "p2", "p3"])
    resources = {"warehouse": sqlite_warehouse, "probes_glam": GlamDatabase(url=glam.url)}
    assert dg.materialize([probe_views_daily], partition_key="2026-03-10", resources=resources).success
    assert glam.scalar("SELECT count(*) FROM probe_views_daily") == 0  # nothing written to the app's database
    assert {(r["probe_name"], r["events"], r["sessions"]) for r in sqlite_warehouse.fetch_all(
        "SELECT * FROM probe_views_daily")} == {("p1", 2, 2), ("p2", 1, 1)}
    monkeypatch.setenv("PROBES_TOP_N", "1")
    assert dg.materialize([probe_popularity], resources=resources).success
    rows = {r["probe_name"]: (r["views"], r["rank"], bool(r["is_least_viewed"])) for r in sqlite_warehouse.fetch_all(
        "SELECT * FROM probe_popularity WHERE window_days = 7")}
    assert rows == {"p1": (2, 1, False), "p2": (1, 2, False), "p3": (0, 3, True)}
