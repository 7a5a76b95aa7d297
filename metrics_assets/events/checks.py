"""The events domain's check logic and metadata figures, with no Dagster in it: the assets in
``assets.py`` call these and report what they return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

import pyarrow as pa

from metrics_assets.events import rollups
from metrics_assets.events.metrics_registry import METRICS
from metrics_assets.sql_access import INTEGER, UTC_DATETIME

#: The natural keys: no two rows of a table may share one (blocking checks).
ROLLUP_KEY = ("period_start", "customer_id", "service", "event_type", "schema_version")
METRICS_KEY = ("period_start", "metric_name", "metric_event", "requester")


def duplicate_keys(warehouse, table: str, key: tuple[str, ...], start: datetime, end: datetime) -> int:
    """How many values of ``key`` occur more than once among ``table``'s rows of [start, end)."""
    cols = ", ".join(key)
    return warehouse.scalar(
        f"SELECT count(*) FROM (SELECT {cols} FROM {table} WHERE period_start >= :start AND period_start < :end "
        f"GROUP BY {cols} HAVING count(*) > 1) d",
        {"start": start, "end": end},
        type_=INTEGER,
    )


def bounds_text(bounds: rollups.Bounds) -> str:
    """The lateness bounds as a setting (text, so that the Plots tab charts only the figures)."""
    return f"created hour H counts folders H-{bounds.early_hours} h .. H+{bounds.lateness_hours} h"


def empty_hours_text(empty_hours: list[datetime]) -> str | None:
    """What to say about the slice's truly empty hours (None when there is none)."""
    if not empty_hours:
        return None
    hours = ", ".join(f"{h:%Y-%m-%d %H}:00" for h in empty_hours)
    return (
        f"{len(empty_hours)} hour(s) with no folder in the lake while later folders exist "
        f"(truly empty, written as empty): {hours}"
    )


def out_of_bounds(skipped: dict[str, int]) -> dict[str, int]:
    """The skips that are events outside the lateness bounds (check events_within_lateness_bounds)."""
    return {reason: skipped[reason] for reason in rollups.OUT_OF_BOUNDS}


class RollupFigures(TypedDict):
    events: int
    customers: int
    max_lag_s: float


def rollup_figures(rows: pa.Table) -> RollupFigures:
    """Events, customers and the largest arrival lag of a slice's rollup rows."""
    max_lags = [v for v in rows["max_lag_s"].to_pylist() if v is not None]
    return {
        "events": int(sum(rows["event_count"].to_pylist())),
        "customers": len(set(rows["customer_id"].to_pylist())),
        "max_lag_s": float(max(max_lags)) if max_lags else 0.0,
    }


def metric_figures(rows: pa.Table) -> tuple[dict[str, int], dict[str, int]]:
    """Per registered metric: the sum of its values and its number of distinct requesters."""
    names = rows["metric_name"].to_pylist()
    totals = {m.name: 0 for m in METRICS}
    requesters: dict[str, set] = {m.name: set() for m in METRICS}
    for name, value, requester in zip(
        names, rows["metric_value"].to_pylist(), rows["requester"].to_pylist(), strict=True
    ):
        totals[name] = totals.get(name, 0) + int(value)
        requesters.setdefault(name, set()).add(requester)
    return totals, {name: len(values) for name, values in requesters.items()}


def day_to_check(warehouse, day: str) -> datetime | None:
    """The UTC day the day check compares: ``day`` (YYYY-MM-DD), or else the latest day whose
    last hour has rollups; None when there are no rollups yet."""
    if day:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    latest = warehouse.scalar("SELECT max(period_start) FROM event_rollups_hourly", type_=UTC_DATETIME)
    if latest is None:
        return None
    first = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    return first if latest.hour == 23 else first - timedelta(days=1)


def rollup_sum(warehouse, day: datetime) -> int:
    """The events the hourly rollups hold for the UTC day starting at ``day``."""
    return warehouse.scalar(
        "SELECT COALESCE(sum(event_count), 0) FROM event_rollups_hourly WHERE period_start >= :start AND period_start < :end",
        {"start": day, "end": day + timedelta(days=1)},
        type_=INTEGER,
    )
