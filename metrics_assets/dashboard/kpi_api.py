"""The offspot box's own KPI read API, served from the warehouse's ``offspot_kpis``.

The box runs a small FastAPI backend (offspot/metrics, ``backend/src/offspot_metrics_backend/
routes/``) that its Vue dashboard reads through ``VITE_BACKEND_ROOT_API``. This module serves
the same three routes, with the same parameters and the same JSON, under a root per scope:

    <root>/aggregations                                  -> {"aggregations": [{"kind", "value"}]}
    <root>/aggregations/{agg_kind}                       -> {"aggKind", "valuesAvailable",
                                                             "valuesAll", "kpis": [{"kpiId",
                                                             "values": [{"aggValue", "kpiValue"}]}]}
    <root>/kpis/{kpi_id}/values?agg_kind=&agg_value=     -> {"kpiId", "value"}

    roots: /offspot/api (box "default"), /offspot/boxes/{box_id}/api, /offspot/fleet/api

so a box dashboard built with ``VITE_BACKEND_ROOT_API=<dashboard>/offspot/api`` works against
it unchanged. ``kpiValue`` is the stored KPI JSON as is (``{"items": [{"package", "visits"}],
"totalVisits"}``, ``{"items": [{"package", "minutesActivity"}], "totalMinutesActivity"}``,
``{"nbMinutesOn"}``, ``{"filesCreated", "filesDeleted"}``).

Errors are FastAPI's, as on the box: 422 ``{"detail": [...]}`` for an ``agg_kind`` other than
D, W, M, Y or a missing ``agg_value``; 404 ``{"detail": "KPI not found"}``. An unknown box is
404 ``{"detail": "Box not found"}``.

Two deliberate differences, both where the box's code is wrong:

* ``agg_kind`` must be exactly one of D, W, M, Y. The box's pattern ``^D|W|M|Y$`` lets
  ``"xWx"`` through, which then fails with a 500.
* ``valuesAll`` for W lists the 4 ISO weeks ending on the newest week available. The box
  parses ``"2026 W02"`` with ``%Y W%W`` (not ISO), so in years whose 1 January is a Tuesday to
  Thursday (2025, 2026) its list is one week late. Its own tests (2023, where both agree)
  give the same lists as this code.

Which rows a scope reads is decided in one place, :func:`scope_source`: a box's rows of
``offspot_kpis`` (by ``box_id``), or ``offspot_fleet_kpis`` for the fleet, whose ``kpiValue``
has the box's shapes (uptime in box-minutes, popularity and usage by package title over every
box).
"""

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from metrics_assets.resources.warehouse import Warehouse
from metrics_assets.sql_access import INTEGER

AGG_KINDS = ("D", "W", "M", "Y")
AGG_KIND_PATTERN = "^(D|W|M|Y)$"
DEFAULT_BOX = "default"
KPI_NAMES = {2001: "package_popularity", 2003: "total_usage", 2004: "uptime", 2005: "shared_files"}


# -- which rows a scope reads ----------------------------------------------------------------
@dataclass(frozen=True)
class KpiScope:
    """One box (``box_id``) or the whole fleet (``box_id`` None)."""

    box_id: str | None

    @property
    def is_fleet(self) -> bool:
        return self.box_id is None

    @property
    def label(self) -> str:
        return "the fleet" if self.is_fleet else f"box {self.box_id}"


FLEET = KpiScope(None)


def scope_source(scope: KpiScope) -> tuple[str, dict[str, Any]]:
    """``FROM ... WHERE ...`` text (with parameters) selecting the KPI rows of ``scope``.

    The only place that knows how boxes and the fleet are stored: a box's rows are its
    ``box_id`` in ``offspot_kpis`` (the single-box configuration is the box ``default``), the
    fleet's are ``offspot_fleet_kpis`` (the same KPIs summed over every box, plus ``boxes`` and,
    on uptime rows, ``per_box_uptime``).
    """
    if scope.is_fleet:
        return "offspot_fleet_kpis WHERE 1 = 1", {}
    return "offspot_kpis WHERE box_id = :box_id", {"box_id": scope.box_id}


def known_boxes(warehouse: Warehouse) -> list[str]:
    """Box ids with KPI rows, sorted."""
    return [r["box_id"] for r in warehouse.fetch_all("SELECT DISTINCT box_id FROM offspot_kpis ORDER BY box_id")]


def kpi_rows(
    warehouse: Warehouse,
    scope: KpiScope,
    agg_kind: str | None = None,
    kpi_id: int | None = None,
    agg_value: str | None = None,
) -> list[dict[str, Any]]:
    """The scope's KPI rows (``kpi_id, agg_kind, agg_value, kpi_value`` with the value parsed;
    for the fleet also ``boxes`` and ``per_box_uptime``, parsed), ordered by kpi_id, agg_kind,
    agg_value."""
    source, params = scope_source(scope)
    extra = ", boxes, per_box_uptime" if scope.is_fleet else ""
    sql = f"SELECT kpi_id, agg_kind, agg_value, kpi_value{extra} FROM {source}"
    for column, value in (("agg_kind", agg_kind), ("kpi_id", kpi_id), ("agg_value", agg_value)):
        if value is not None:
            sql += f" AND {column} = :{column}"
            params = {**params, column: value}
    rows = warehouse.fetch_all(sql, params, types={"kpi_id": INTEGER, "boxes": INTEGER})
    for row in rows:
        row["kpi_value"] = json.loads(row["kpi_value"])
        if scope.is_fleet:
            row["per_box_uptime"] = json.loads(row["per_box_uptime"]) if row["per_box_uptime"] else None
    rows.sort(key=lambda r: (r["kpi_id"], r["agg_kind"], r["agg_value"]))
    return rows


# -- period labels ---------------------------------------------------------------------------
def period_start(agg_kind: str, agg_value: str) -> date:
    """First day of a period label: ``2026-01-05``, ``2026 W02`` (ISO), ``2026-01``, ``2026``."""
    if agg_kind == "D":
        return date.fromisoformat(agg_value)
    if agg_kind == "W":
        year, week = agg_value.split(" W")
        return date.fromisocalendar(int(year), int(week), 1)
    if agg_kind == "M":
        return date.fromisoformat(f"{agg_value}-01")
    return date(int(agg_value), 1, 1)


def period_label(agg_kind: str, day: date) -> str:
    if agg_kind == "D":
        return day.isoformat()
    if agg_kind == "W":
        iso = day.isocalendar()
        return f"{iso.year:04d} W{iso.week:02d}"
    if agg_kind == "M":
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.year:04d}"


def period_minutes(agg_kind: str, agg_value: str) -> int:
    """Minutes in the period (for uptime as a share of it)."""
    start = period_start(agg_kind, agg_value)
    if agg_kind == "D":
        end = start + timedelta(days=1)
    elif agg_kind == "W":
        end = start + timedelta(days=7)
    elif agg_kind == "M":
        end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    else:
        end = date(start.year + 1, 1, 1)
    return (end - start).days * 1440


def all_values(agg_kind: str, available: list[str]) -> list[str]:
    """``valuesAll``: the 7 days, 4 weeks or 3 months ending on the newest value available, or
    every year from the first to the newest; empty when nothing is available."""
    if not available:
        return []
    newest = period_start(agg_kind, available[-1])
    if agg_kind == "Y":
        return [str(y) for y in range(int(available[0]), int(available[-1]) + 1)]
    if agg_kind == "M":
        months = []
        year, month = newest.year, newest.month
        for _ in range(3):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return months[::-1]
    step, count = (timedelta(weeks=1), 4) if agg_kind == "W" else (timedelta(days=1), 7)
    return [period_label(agg_kind, newest - step * i) for i in range(count - 1, -1, -1)]


# -- response shapes (the box's routes/schemas.py: camelCase JSON) ---------------------------
class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class KpiValueById(_Camel):
    kpi_id: int
    value: Any


class Aggregation(_Camel):
    kind: str
    value: str


class Aggregations(_Camel):
    aggregations: list[Aggregation]


class KpiValueByAggregation(_Camel):
    agg_value: str
    kpi_value: Any


class KpiValues(_Camel):
    kpi_id: int
    values: list[KpiValueByAggregation]


class AggregationsByKind(_Camel):
    agg_kind: str
    values_available: list[str]
    values_all: list[str]
    kpis: list[KpiValues]


# -- routes ----------------------------------------------------------------------------------
def _warehouse(request: Request) -> Warehouse:
    return request.app.state.warehouse


def resolve_scope(warehouse: Warehouse, box_id: str | None) -> KpiScope:
    """The scope of a request: the fleet (``box_id`` None) or a known box (404 otherwise)."""
    if box_id is None:
        return FLEET
    if box_id != DEFAULT_BOX and box_id not in known_boxes(warehouse):
        raise HTTPException(status_code=404, detail="Box not found")
    return KpiScope(box_id)


def kpi_router(kind: str) -> APIRouter:
    """The three routes for one kind of root: ``box`` (``/offspot/api`` or
    ``/offspot/boxes/{box_id}/api``) or ``fleet``."""
    router = APIRouter(tags=["offspot KPIs"])

    def scope(request: Request, warehouse: Annotated[Warehouse, Depends(_warehouse)]) -> KpiScope:
        box_id = None if kind == "fleet" else request.path_params.get("box_id", DEFAULT_BOX)
        return resolve_scope(warehouse, box_id)

    Scope = Annotated[KpiScope, Depends(scope)]
    WarehouseDep = Annotated[Warehouse, Depends(_warehouse)]

    @router.get("/aggregations", summary="The aggregations (kind and value) that have KPI values")
    def aggregations(scope: Scope, warehouse: WarehouseDep) -> Aggregations:
        pairs = sorted({(r["agg_kind"], r["agg_value"]) for r in kpi_rows(warehouse, scope)})
        return Aggregations(aggregations=[Aggregation(kind=k, value=v) for k, v in pairs])

    @router.get("/aggregations/{agg_kind}", summary="Every KPI value of one kind of aggregation")
    def aggregation_by_kind(
        agg_kind: Annotated[str, Path(pattern=AGG_KIND_PATTERN)],
        scope: Scope,
        warehouse: WarehouseDep,
    ) -> AggregationsByKind:
        rows = kpi_rows(warehouse, scope, agg_kind=agg_kind)
        available = sorted({r["agg_value"] for r in rows})
        kpis = []
        for kpi_id in sorted({r["kpi_id"] for r in rows}):
            values = [
                KpiValueByAggregation(agg_value=r["agg_value"], kpi_value=r["kpi_value"])
                for r in rows
                if r["kpi_id"] == kpi_id
            ]
            kpis.append(KpiValues(kpi_id=kpi_id, values=sorted(values, key=lambda v: v.agg_value)))
        return AggregationsByKind(
            agg_kind=agg_kind, values_available=available, values_all=all_values(agg_kind, available), kpis=kpis
        )

    @router.get(
        "/kpis/{kpi_id}/values",
        summary="One KPI's value for one aggregation",
        responses={404: {"description": "KPI not found"}},
    )
    def kpi_values(
        kpi_id: str,
        agg_kind: Annotated[str, Query(pattern=AGG_KIND_PATTERN)],
        agg_value: Annotated[str, Query()],
        scope: Scope,
        warehouse: WarehouseDep,
    ) -> KpiValueById:
        try:
            wanted = int(kpi_id)
        except ValueError:
            raise HTTPException(status_code=404, detail="KPI not found") from None
        rows = kpi_rows(warehouse, scope, agg_kind=agg_kind, kpi_id=wanted, agg_value=agg_value)
        if not rows:
            raise HTTPException(status_code=404, detail="KPI not found")
        return KpiValueById(kpi_id=rows[0]["kpi_id"], value=rows[0]["kpi_value"])

    return router


#: (prefix, kind) of every root the dashboard serves the API under.
KPI_API_ROOTS = (
    ("/offspot/api", "box"),
    ("/offspot/boxes/{box_id}/api", "box"),
    ("/offspot/fleet/api", "fleet"),
)
