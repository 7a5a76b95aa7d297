"""What the offspot materializations show: business figures as plain numbers (for the Plots
tab), and the preview rows as a person reads them (``3 h 20 min``, ``412 visits (Wikipedia
200, ...)``).

No Dagster here: these return numbers, texts and frames; ``assets.py`` wraps them in metadata.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)

INDICATOR_UNITS = {1001: "visits", 1003: "files", 1004: "min", 1005: "min", 1006: "min"}
INDICATOR_PREVIEW_COLUMNS = ["box_id", "hour", "indicator_name", "dimension", "value"]
KPI_PREVIEW_COLUMNS = ["kpi_name", "agg_kind", "agg_value", "value"]


def minutes_text(minutes: int) -> str:
    """``200`` -> ``3 h 20 min``."""
    hours, rest = divmod(int(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def _hours(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["period_start"], utc=True).dt.strftime("%Y-%m-%d %H:00")


def indicator_preview_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Indicator records with ``hour`` and ``value`` as text (:data:`INDICATOR_PREVIEW_COLUMNS`)."""
    if frame.empty:
        return frame
    return frame.assign(
        hour=_hours(frame),
        value=[
            minutes_text(v) if INDICATOR_UNITS[i] == "min" else f"{v:,} {INDICATOR_UNITS[i]}"
            for i, v in zip(frame["indicator_id"], frame["value"], strict=True)
        ],
    )


def indicator_figures(frame: pd.DataFrame) -> dict[str, int]:
    """The written records' business figures: home visits, usage, uptime, shared files."""

    def total(indicator_id: int, dimension: str | None = None) -> int:
        rows = frame[frame["indicator_id"] == indicator_id] if not frame.empty else frame
        if dimension is not None and not rows.empty:
            rows = rows[rows["dimension"] == dimension]
        return int(rows["value"].sum()) if not rows.empty else 0

    return {
        "home_visits": total(1001),
        "usage_minutes": total(1005),
        "uptime_minutes": total(1004),
        "shared_files_created": total(1003, "FILE_CREATED"),
        "shared_files_deleted": total(1003, "FILE_DELETED"),
    }


def figures_by_hour(frame: pd.DataFrame, limit: int = 48) -> dict[str, dict[str, int]]:
    """Home visits, usage and uptime minutes per hour (the newest ``limit`` hours)."""
    if frame.empty:
        return {}
    names = {1001: "home_visits", 1005: "usage_minutes", 1004: "uptime_minutes"}
    picked = frame.assign(hour=_hours(frame))[frame["indicator_id"].isin(list(names))]
    sums = picked.groupby(["hour", "indicator_id"])["value"].sum()
    out: dict[str, dict[str, int]] = {}
    for (hour, indicator_id), value in sums.items():
        out.setdefault(hour, dict.fromkeys(names.values(), 0))[names[int(indicator_id)]] = int(value)
    return dict(sorted(out.items())[-limit:])


def kpi_text(kpi_id: int, value: str) -> str:
    """A KPI value as a person reads it: ``412 visits (Wikipedia 200, ...)``, ``3 h 20 min``."""
    data = json.loads(value)
    if kpi_id == 2001:
        top = ", ".join(f"{i['package']} {i['visits']:,}" for i in data["items"][:3])
        return f"{data['totalVisits']:,} visits" + (f" ({top})" if top else "")
    if kpi_id == 2003:
        return f"{minutes_text(data['totalMinutesActivity'])} of activity"
    if kpi_id == 2004:
        return f"{minutes_text(data['nbMinutesOn'])} on"
    return f"{data['filesCreated']:,} files created, {data['filesDeleted']:,} deleted"


def kpi_preview_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """KPI rows ordered by ``keys`` then period, with ``value`` as text."""
    if frame.empty:
        return frame
    ordered = frame.sort_values([*keys, "agg_kind", "agg_value", "kpi_id"])
    return ordered.assign(value=[kpi_text(k, v) for k, v in zip(ordered["kpi_id"], ordered["kpi_value"], strict=True)])


def newest_day_figures(frame: pd.DataFrame) -> tuple[str | None, dict[str, int]]:
    """The newest day's label and its KPI totals over the table's rows."""
    days = frame[frame["agg_kind"] == "D"] if not frame.empty else frame
    if days.empty:
        newest = None
        rows = days
    else:
        newest = days["agg_value"].max()
        rows = days[days["agg_value"] == newest]

    def field(kpi_id: int, name: str) -> int:
        return sum(json.loads(v)[name] for v in rows[rows["kpi_id"] == kpi_id]["kpi_value"]) if not rows.empty else 0

    return newest, {
        "latest_day_home_visits": field(2001, "totalVisits"),
        "latest_day_usage_minutes": field(2003, "totalMinutesActivity"),
        "latest_day_uptime_minutes": field(2004, "nbMinutesOn"),
        "latest_day_shared_files_created": field(2005, "filesCreated"),
        "latest_day_shared_files_deleted": field(2005, "filesDeleted"),
    }


def last_seen_rows(seen: dict[str, datetime]) -> list[dict[str, str]]:
    """One row per box: when it was last seen and how far behind the fleet's newest it is."""
    if not seen:
        return []
    fleet_end = max(seen.values())
    return [
        {
            "box_id": box,
            "last_seen": f"{when:%Y-%m-%d %H:%M} UTC",
            "behind": "" if when == fleet_end else f"{(fleet_end - when) / timedelta(hours=1):.0f} h behind",
        }
        for box, when in sorted(seen.items())
    ]
