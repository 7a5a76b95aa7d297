"""How the offspot domain is built (issue 15): every table it writes is an asset's, the logic
modules hold the rules without Dagster, infrastructure comes from ``resources``, and the
rules moved out of ``assets.py`` give the values worked out by hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from metrics_assets import offspot
from metrics_assets.offspot import checks, report
from metrics_assets_tests.structure import declaration_problems, domain_tables, module_problems, table_owners

DOMAIN = Path(offspot.__file__).parent


def test_every_offspot_table_is_named_by_an_asset(sqlite_warehouse):
    # the tables are what the domain's migrations create, read back from a migrated database
    tables = domain_tables(sqlite_warehouse, {"offspot_indicator_records", "offspot_kpis", "offspot_fleet_kpis"})
    assert tables == {"offspot_indicator_records", "offspot_kpis", "offspot_fleet_kpis"}
    owners = table_owners(offspot.defs)
    assert {t: owners.get(t) for t in tables} == {
        "offspot_indicator_records": "offspot_indicators",
        "offspot_kpis": "offspot_kpis",
        "offspot_fleet_kpis": "offspot_fleet_kpis",
    }


def test_every_asset_is_declared_the_same_way():
    assert declaration_problems(offspot.defs, "offspot") == []


def test_logic_modules_have_no_dagster_and_no_hand_made_infrastructure():
    assert module_problems(DOMAIN) == []


def test_period_labels_and_starts():
    # 2024-12-30 is the Monday of ISO week 1 of 2025; 2026-01-05 the Monday of 2026 W02
    days = pd.Series(pd.to_datetime(["2024-12-30", "2026-01-05", "2026-01-04"], utc=True))
    labels = {kind: list(values) for kind, values in checks.labels(days).items()}
    assert labels == {
        "D": ["2024-12-30", "2026-01-05", "2026-01-04"],
        "W": ["2025 W01", "2026 W02", "2026 W01"],
        "M": ["2024-12", "2026-01", "2026-01"],
        "Y": ["2024", "2026", "2026"],
    }
    assert checks.period_start("W", "2025 W01") == datetime(2024, 12, 30, tzinfo=UTC)
    assert checks.period_start("W", "2026 W02") == datetime(2026, 1, 5, tzinfo=UTC)
    assert checks.period_start("M", "2026-02") == datetime(2026, 2, 1, tzinfo=UTC)
    assert checks.period_start("Y", "2026") == datetime(2026, 1, 1, tzinfo=UTC)


def test_disagreements_compare_each_field_with_the_hand_sum():
    day = pd.Timestamp("2026-01-05", tz="UTC")
    records = pd.DataFrame(
        {
            "box_id": ["a", "a", "a", "b"],
            "indicator_id": [1001, 1001, 1003, 1001],
            "dimension": ["Wikipedia", "Khan", "FILE_CREATED", "Wikipedia"],
            "period_start": [day] * 4,
            "value": [3, 4, 2, 5],
        }
    )
    kpis = pd.DataFrame(
        {
            "box_id": ["a", "a", "b"],
            "kpi_id": [2001, 2005, 2001],
            "agg_kind": ["D", "D", "W"],
            "agg_value": ["2026-01-05", "2026-01-05", "2026 W02"],
            # a: 3 + 4 visits right; files created 2 stored as 1; b: 5 visits right
            "kpi_value": [
                '{"items":[],"totalVisits":7}',
                '{"filesCreated":1,"filesDeleted":0}',
                '{"items":[],"totalVisits":5}',
            ],
        }
    )
    assert checks.disagreements(kpis, records, lambda _: None, "box_id") == [
        {
            "box_id": "a",
            "kpi": "shared_files",
            "period": "D 2026-01-05",
            "field": "filesCreated",
            "stored": 1,
            "expected": 2,
        }
    ]
    # a period starting before the box's purge cutoff keeps its stored value: not compared
    assert checks.disagreements(kpis, records, lambda _: datetime(2026, 1, 6, tzinfo=UTC), "box_id") == []
    # the fleet: every box summed (3 + 4 + 5 visits)
    fleet = kpis.drop(columns="box_id").iloc[[0]].assign(kpi_value='{"items":[],"totalVisits":12}')
    assert checks.disagreements(fleet, records, lambda _: None, None) == []


def test_last_seen_and_stale_boxes():
    records = pd.DataFrame(
        {
            "box_id": ["a", "a", "b"],
            "last_start": pd.to_datetime(["2026-01-05 09:00", "2026-01-05 10:00", "2026-01-04 08:00"], utc=True),
        }
    )
    seen = checks.last_seen(records)
    assert seen == {"a": datetime(2026, 1, 5, 11, tzinfo=UTC), "b": datetime(2026, 1, 4, 9, tzinfo=UTC)}
    # b is 26 h behind a
    assert checks.stale_boxes(seen, timedelta(hours=24)) == {"b": datetime(2026, 1, 4, 9, tzinfo=UTC)}
    assert checks.stale_boxes(seen, timedelta(hours=26)) == {}
    assert checks.stale_boxes({}, timedelta(hours=24)) == {}


def test_report_texts():
    assert [report.minutes_text(m) for m in (0, 45, 60, 200)] == ["0 min", "45 min", "1 h 00 min", "3 h 20 min"]
    assert (
        report.kpi_text(
            2001, '{"items":[{"package":"Wikipedia","visits":1200},{"package":"Khan","visits":3}],"totalVisits":1203}'
        )
        == "1,203 visits (Wikipedia 1,200, Khan 3)"
    )
    assert report.kpi_text(2004, '{"nbMinutesOn":200}') == "3 h 20 min on"


def test_last_seen_rows_say_how_far_behind_the_fleet_each_box_is():
    seen = {
        "b": datetime(2025, 3, 2, 10, tzinfo=UTC),
        "a": datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
    }
    assert report.last_seen_rows(seen) == [
        {"box_id": "a", "last_seen": "2025-03-01 08:30 UTC", "behind": "26 h behind"},  # 25.5 h, rounded half to even
        {"box_id": "b", "last_seen": "2025-03-02 10:00 UTC", "behind": ""},
    ]
    assert report.last_seen_rows({}) == []
