"""How the events domain is built (issue 15): each table it writes is named by its asset,
the assets are declared the house way, and only assets.py, automation.py and __init__.py use
Dagster. The tables are those the domain's migrations create, read back from a migrated
database."""

from __future__ import annotations

from pathlib import Path

from metrics_assets import events
from metrics_assets_tests.structure import declaration_problems, domain_tables, module_problems, table_owners


def test_every_events_table_is_named_by_its_asset(sqlite_warehouse):
    tables = domain_tables(sqlite_warehouse, {"event_rollups_hourly", "metrics"})
    assert tables == {"event_rollups_hourly", "metrics"}
    owners = table_owners(events.defs)
    assert {t: owners.get(t) for t in tables} == {"event_rollups_hourly": "event_rollups_hourly", "metrics": "metrics"}


def test_every_events_asset_is_declared_the_same_way():
    assert declaration_problems(events.defs, "events") == []


def test_events_modules_keep_dagster_in_the_declaring_modules():
    assert module_problems(Path(events.__file__).parent) == []
