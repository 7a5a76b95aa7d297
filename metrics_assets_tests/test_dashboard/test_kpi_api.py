"""The offspot box's KPI API, served by the dashboard: the box's schemas, field by field, and
hand-computed values for a small box.

The shapes below restate, in test code, the box's own response models (offspot/metrics,
``backend/src/offspot_metrics_backend/routes/schemas.py``: ``Aggregations``,
``AggregationsByKind``, ``KpiValueById``, all ``CamelModel`` so JSON keys are camelCase) and KPI
values (``business/kpis/popularity.py`` ``PackagePopularityValue``, ``total_usage.py``
``TotalUsageValue``, ``uptime.py`` ``UptimeValue``, ``shared_files.py`` ``SharedFilesValue``),
and the routes' paths and parameters (``routes/aggregations.py``, ``routes/kpis.py``). The Vue
dashboard reads ``VITE_BACKEND_ROOT_API + '/aggregations/' + kind`` (``frontend/src/stores/
main.ts``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest

from metrics_assets.dashboard.kpi_api import KPI_API_ROOTS, all_values
from metrics_assets.offspot.assets import offspot_fleet_kpis, offspot_kpis
from metrics_assets.offspot.indicators import INDICATORS
from metrics_assets_tests.test_dashboard.conftest import live_dashboard

# -- the box's schemas, restated ------------------------------------------------------------
KPI_VALUE_SHAPES = {
    2001: {"items": [{"package": str, "visits": int}], "totalVisits": int},
    2003: {"items": [{"package": str, "minutesActivity": int}], "totalMinutesActivity": int},
    2004: {"nbMinutesOn": int},
    2005: {"filesCreated": int, "filesDeleted": int},
}


def conforms(value, shape, where: str = "$") -> None:
    """Assert ``value`` has exactly ``shape``: dicts with exactly these keys, lists of the one
    element shape, and Python types (bool is not an int)."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, sub in shape.items():
            conforms(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            conforms(item, shape[0], f"{where}[{i}]")
    elif shape is object:
        return
    else:
        assert isinstance(value, shape) and not isinstance(value, bool), f"{where}: {value!r} is not {shape.__name__}"


AGGREGATIONS = {"aggregations": [{"kind": str, "value": str}]}
AGGREGATIONS_BY_KIND = {
    "aggKind": str,
    "valuesAvailable": [str],
    "valuesAll": [str],
    "kpis": [{"kpiId": int, "values": [{"aggValue": str, "kpiValue": object}]}],
}
KPI_VALUE_BY_ID = {"kpiId": int, "value": object}


def conforms_by_kind(body: dict) -> None:
    conforms(body, AGGREGATIONS_BY_KIND)
    assert body["aggKind"] in ("D", "W", "M", "Y")
    for kpi in body["kpis"]:
        for value in kpi["values"]:
            conforms(value["kpiValue"], KPI_VALUE_SHAPES[kpi["kpiId"]], f"kpi {kpi['kpiId']} {value['aggValue']}")


# -- a small box, by hand -------------------------------------------------------------------
# Sunday 2026-01-04 is in ISO week 2026 W01, Monday 2026-01-05 in 2026 W02.
RECORDS = [
    (1001, "2026-01-04 10:00", "Wikipedia", 3),
    (1001, "2026-01-04 10:00", "Khan", 1),
    (1005, "2026-01-04 10:00", "", 25),
    (1006, "2026-01-04 10:00", "Wikipedia", 20),
    (1006, "2026-01-04 10:00", "Khan", 10),
    (1004, "2026-01-04 10:00", "", 60),
    (1003, "2026-01-04 10:00", "FILE_CREATED", 2),
    (1001, "2026-01-05 09:00", "Khan", 4),
    (1005, "2026-01-05 09:00", "", 15),
    (1006, "2026-01-05 09:00", "Khan", 15),
    (1004, "2026-01-05 09:00", "", 40),
    (1003, "2026-01-05 09:00", "FILE_DELETED", 1),
    (1004, "2026-01-05 10:00", "", 30),
    (1001, "2026-01-05 10:00", "Wikipedia", 1),
]
DAY_4 = {
    2001: {"items": [{"package": "Wikipedia", "visits": 3}, {"package": "Khan", "visits": 1}], "totalVisits": 4},
    2003: {
        "items": [{"package": "Wikipedia", "minutesActivity": 20}, {"package": "Khan", "minutesActivity": 10}],
        "totalMinutesActivity": 25,
    },
    2004: {"nbMinutesOn": 60},
    2005: {"filesCreated": 2, "filesDeleted": 0},
}
DAY_5 = {
    2001: {"items": [{"package": "Khan", "visits": 4}, {"package": "Wikipedia", "visits": 1}], "totalVisits": 5},
    2003: {"items": [{"package": "Khan", "minutesActivity": 15}], "totalMinutesActivity": 15},
    2004: {"nbMinutesOn": 70},
    2005: {"filesCreated": 0, "filesDeleted": 1},
}
MONTH = {  # also the year
    2001: {"items": [{"package": "Khan", "visits": 5}, {"package": "Wikipedia", "visits": 4}], "totalVisits": 9},
    2003: {
        "items": [{"package": "Khan", "minutesActivity": 25}, {"package": "Wikipedia", "minutesActivity": 20}],
        "totalMinutesActivity": 40,
    },
    2004: {"nbMinutesOn": 130},
    2005: {"filesCreated": 2, "filesDeleted": 1},
}


def _by_kind(kind: str, values: dict[str, dict], values_all: list[str]) -> dict:
    return {
        "aggKind": kind,
        "valuesAvailable": sorted(values),
        "valuesAll": values_all,
        "kpis": [
            {"kpiId": kpi, "values": [{"aggValue": v, "kpiValue": values[v][kpi]} for v in sorted(values)]}
            for kpi in (2001, 2003, 2004, 2005)
        ],
    }


EXPECTED = {
    "D": _by_kind(
        "D",
        {"2026-01-04": DAY_4, "2026-01-05": DAY_5},
        ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"],
    ),
    "W": _by_kind("W", {"2026 W01": DAY_4, "2026 W02": DAY_5}, ["2025 W51", "2025 W52", "2026 W01", "2026 W02"]),
    "M": _by_kind("M", {"2026-01": MONTH}, ["2025-11", "2025-12", "2026-01"]),
    "Y": _by_kind("Y", {"2026": MONTH}, ["2026"]),
}


def _write(warehouse, records, box_id: str = "default") -> None:
    warehouse.append(
        "offspot_indicator_records",
        [
            {
                "box_id": box_id,
                "indicator_id": i,
                "indicator_name": INDICATORS[i],
                "period_start": datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=UTC),
                "dimension": d,
                "value": v,
            }
            for i, when, d, v in records
        ],
    )


def _materialize(warehouse) -> None:
    """The real ``offspot_kpis`` and ``offspot_fleet_kpis`` assets."""
    assert dg.materialize([offspot_kpis, offspot_fleet_kpis], resources={"warehouse": warehouse}).success


@pytest.fixture
def small_box(warehouse, metrics_home):
    """The records above (the single box, ``default``), turned into KPIs by the real assets."""
    _write(warehouse, RECORDS)
    _materialize(warehouse)
    with live_dashboard(warehouse) as base:
        yield httpx.Client(base_url=base, timeout=30)


ROOTS = ["/offspot/api", "/offspot/boxes/default/api", "/offspot/fleet/api"]


def test_the_roots_are_the_issue_s():
    assert [prefix for prefix, _kind in KPI_API_ROOTS] == [
        "/offspot/api",
        "/offspot/boxes/{box_id}/api",
        "/offspot/fleet/api",
    ]


def test_aggregations(small_box):
    for root in ROOTS:
        response = small_box.get(f"{root}/aggregations")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        conforms(body, AGGREGATIONS)
        assert body == {
            "aggregations": [
                {"kind": "D", "value": "2026-01-04"},
                {"kind": "D", "value": "2026-01-05"},
                {"kind": "M", "value": "2026-01"},
                {"kind": "W", "value": "2026 W01"},
                {"kind": "W", "value": "2026 W02"},
                {"kind": "Y", "value": "2026"},
            ]
        }


def test_aggregation_by_kind_as_the_vue_app_calls_it(small_box):
    for root in ROOTS:
        for kind in ("D", "W", "M", "Y"):
            # VITE_BACKEND_ROOT_API + '/aggregations/' + this.aggregationKind
            response = small_box.get(root + "/aggregations/" + kind)
            assert response.status_code == 200
            body = response.json()
            conforms_by_kind(body)
            assert body == EXPECTED[kind], (root, kind)


def test_kpi_values(small_box):
    for root in ROOTS:
        cases = (
            [(kpi, "D", "2026-01-05", DAY_5[kpi]) for kpi in DAY_5]
            + [(kpi, "W", "2026 W01", DAY_4[kpi]) for kpi in DAY_4]
            + [(2003, "M", "2026-01", MONTH[2003]), (2004, "Y", "2026", MONTH[2004])]
        )
        for kpi, kind, value, expected in cases:
            response = small_box.get(f"{root}/kpis/{kpi}/values", params={"agg_kind": kind, "agg_value": value})
            assert response.status_code == 200, (kpi, kind, value)
            body = response.json()
            conforms(body, KPI_VALUE_BY_ID)
            conforms(body["value"], KPI_VALUE_SHAPES[kpi])
            assert body == {"kpiId": kpi, "value": expected}


def test_errors_as_the_box_gives_them(small_box):
    # routes/kpis.py: 404 {"detail": "KPI not found"}, also for a kpi_id that is not a number
    for path, params in [
        ("/offspot/api/kpis/2004/values", {"agg_kind": "D", "agg_value": "2026-01-06"}),
        ("/offspot/api/kpis/2004/values", {"agg_kind": "W", "agg_value": "2026-01-05"}),
        ("/offspot/api/kpis/9999/values", {"agg_kind": "D", "agg_value": "2026-01-05"}),
        ("/offspot/api/kpis/whatever/values", {"agg_kind": "W", "agg_value": "whatever"}),
    ]:
        response = small_box.get(path, params=params)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "KPI not found"}
    # FastAPI's validation errors: 422 {"detail": [{"loc": [...], ...}]}
    for path, params, loc in [
        ("/offspot/api/kpis/2004/values", {"agg_kind": "whatever", "agg_value": "x"}, ["query", "agg_kind"]),
        ("/offspot/api/kpis/2004/values", {"agg_kind": "xWx", "agg_value": "x"}, ["query", "agg_kind"]),
        ("/offspot/api/kpis/2004/values", {"agg_kind": "D"}, ["query", "agg_value"]),
        ("/offspot/api/aggregations/Q", {}, ["path", "agg_kind"]),
        ("/offspot/fleet/api/aggregations/DW", {}, ["path", "agg_kind"]),
    ]:
        response = small_box.get(path, params=params)
        assert response.status_code == 422, (path, params)
        [problem] = response.json()["detail"]
        assert problem["loc"] == loc
    # a box that does not exist
    response = small_box.get("/offspot/boxes/no-such-box/api/aggregations")
    assert response.status_code == 404
    assert response.json() == {"detail": "Box not found"}


def test_empty_warehouse_gives_empty_lists(warehouse):
    with live_dashboard(warehouse) as base:
        client = httpx.Client(base_url=base, timeout=30)
        assert client.get("/offspot/api/aggregations").json() == {"aggregations": []}
        assert client.get("/offspot/fleet/api/aggregations/W").json() == {
            "aggKind": "W",
            "valuesAvailable": [],
            "valuesAll": [],
            "kpis": [],
        }


@pytest.mark.parametrize(
    "kind, available, expected",
    [
        # the box's own cases (tests/unit/routes/test_aggregations_endpoints.py)
        ("M", [], []),
        ("Y", ["2023", "2026"], ["2023", "2024", "2025", "2026"]),
        ("M", ["2023-02"], ["2022-12", "2023-01", "2023-02"]),
        ("W", ["2023 W02"], ["2022 W51", "2022 W52", "2023 W01", "2023 W02"]),
        (
            "D",
            ["2024-03-01"],
            ["2024-02-24", "2024-02-25", "2024-02-26", "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"],
        ),
        # ISO weeks across a 53-week year (2020 W53), where %W parsing would be a week off
        ("W", ["2021 W01"], ["2020 W51", "2020 W52", "2020 W53", "2021 W01"]),
        ("W", ["2026 W02"], ["2025 W51", "2025 W52", "2026 W01", "2026 W02"]),
        ("M", ["2026-01"], ["2025-11", "2025-12", "2026-01"]),
    ],
)
def test_values_all(kind, available, expected):
    assert all_values(kind, available) == expected


def test_openapi_documents_the_three_routes_under_each_root(small_box):
    paths = small_box.get("/openapi.json").json()["paths"]
    for root in ("/offspot/api", "/offspot/boxes/{box_id}/api", "/offspot/fleet/api"):
        assert f"{root}/aggregations" in paths
        assert f"{root}/aggregations/{{agg_kind}}" in paths
        params = {p["name"] for p in paths[f"{root}/kpis/{{kpi_id}}/values"]["get"]["parameters"]}
        assert {"kpi_id", "agg_kind", "agg_value"} <= params


# A second box, "b2", on Monday 2026-01-05 only.
B2_RECORDS = [
    (1001, "2026-01-05 09:00", "Wikipedia", 2),
    (1005, "2026-01-05 09:00", "", 10),
    (1006, "2026-01-05 09:00", "Wikipedia", 10),
    (1004, "2026-01-05 09:00", "", 50),
]
B2_DAY_5 = {
    2001: {"items": [{"package": "Wikipedia", "visits": 2}], "totalVisits": 2},
    2003: {"items": [{"package": "Wikipedia", "minutesActivity": 10}], "totalMinutesActivity": 10},
    2004: {"nbMinutesOn": 50},
    2005: {"filesCreated": 0, "filesDeleted": 0},
}
FLEET_DAY_5 = {  # both boxes added up; uptime in box-minutes
    2001: {"items": [{"package": "Khan", "visits": 4}, {"package": "Wikipedia", "visits": 3}], "totalVisits": 7},
    2003: {
        "items": [{"package": "Khan", "minutesActivity": 15}, {"package": "Wikipedia", "minutesActivity": 10}],
        "totalMinutesActivity": 25,
    },
    2004: {"nbMinutesOn": 120},
    2005: {"filesCreated": 0, "filesDeleted": 1},
}


def test_a_fleet_of_two_boxes(warehouse, metrics_home):
    _write(warehouse, RECORDS)
    _write(warehouse, B2_RECORDS, box_id="b2")
    _materialize(warehouse)
    with live_dashboard(warehouse) as base:
        http = httpx.Client(base_url=base, timeout=30)
        # /offspot/api stays the box "default", whatever else is there
        for root in ("/offspot/api", "/offspot/boxes/default/api"):
            assert http.get(f"{root}/aggregations/D").json() == EXPECTED["D"], root
        b2 = http.get("/offspot/boxes/b2/api/aggregations/D").json()
        conforms_by_kind(b2)
        assert b2 == _by_kind(
            "D",
            {"2026-01-05": B2_DAY_5},
            ["2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"],
        )
        fleet = http.get("/offspot/fleet/api/aggregations/D").json()
        conforms_by_kind(fleet)  # the fleet's own columns (boxes, per_box_uptime) are not in the box's schema
        assert fleet == _by_kind("D", {"2026-01-04": DAY_4, "2026-01-05": FLEET_DAY_5}, EXPECTED["D"]["valuesAll"])
        for kpi, expected in FLEET_DAY_5.items():
            body = http.get(
                f"/offspot/fleet/api/kpis/{kpi}/values", params={"agg_kind": "W", "agg_value": "2026 W02"}
            ).json()
            assert body == {"kpiId": kpi, "value": expected}
        assert (
            http.get(
                "/offspot/boxes/b2/api/kpis/2004/values", params={"agg_kind": "D", "agg_value": "2026-01-04"}
            ).status_code
            == 404
        )
