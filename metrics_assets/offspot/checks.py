"""The rules the offspot asset checks hold, computed independently of the code they check.

No Dagster here: each function returns what it found (violations, disagreements, stale boxes);
``assets.py`` turns that into ``AssetCheckResult``s.

* On each written slice of ``offspot_indicator_records``: :data:`SLICE_RULES`, SQL conditions a
  record must not meet.
* ``logs_readable``: :func:`unreadable_logs`, the boxes without a recognised log file and the
  hours the heartbeat says a box was on while no log line of that time can be read.
* ``kpis_agree_with_indicators`` / ``fleet_kpis_agree_with_indicators``: :func:`disagreements`
  sums the records per box and period in pandas (not with the KPI SQL of ``kpis.py``) and
  compares every stored KPI total of a period whose hours are all still recorded.
* ``no_stale_box``: :func:`last_seen` and :func:`stale_boxes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.offspot.kpis import KPIS
from metrics_assets.offspot.records import RECORDS_TABLE, WINDOW
from metrics_assets.resources.sqltext import as_utc

if TYPE_CHECKING:
    from metrics_assets.offspot.sources import Gathered


#: check name -> the condition a record of the slice just written must not meet
SLICE_RULES = {
    "uptime_at_most_60": "indicator_id = 1004 AND value > 60",
    "total_usage_at_most_60": "indicator_id IN (1005, 1006) AND value > 60",
    "no_negative_counts": "value < 0",
}


def slice_violations_sql(condition: str) -> str:
    """The records of the window (``:start``, ``:end``) that meet ``condition``."""
    return (
        f"SELECT box_id, indicator_id, period_start, dimension, value FROM {RECORDS_TABLE} "
        f"WHERE {WINDOW} AND ({condition}) ORDER BY box_id, period_start, indicator_id, dimension"
    )


@dataclass
class UnreadableLogs:
    boxes_without_logs: list[str]
    #: ``{"box_id", "hour" (YYYY-MM-DD HH:00 UTC), "heartbeat_minutes"}``
    hours: list[dict[str, Any]]

    def problems(self) -> list[str]:
        out = []
        if self.boxes_without_logs:
            out.append(f"no recognised log file for box(es) {', '.join(self.boxes_without_logs)}")
        if self.hours:
            out.append(
                f"{len(self.hours)} hour(s) with a heartbeat but no readable log line of that time "
                "(not synced, deleted by the box's 48 h roll, or unreadable)"
            )
        return out


def unreadable_logs(boxes: list[Gathered], uncovered: list[tuple]) -> UnreadableLogs:
    """A box folder without any recognised log file, and every hour the box's heartbeat says it
    was on while no log line of that time can be read (``Computation.uncovered_hours``)."""
    return UnreadableLogs(
        boxes_without_logs=sorted(b.box_id for b in boxes if not b.recognised),
        hours=[
            {"box_id": box, "hour": f"{as_utc(hour):%Y-%m-%d %H:00}", "heartbeat_minutes": int(minutes)}
            for box, hour, minutes in uncovered
        ],
    )


def labels(starts: pd.Series) -> dict[str, pd.Series]:
    """Each day's period label per kind (D/W/M/Y), as the KPI tables write them."""
    iso = starts.dt.isocalendar()
    return {
        "D": starts.dt.strftime("%Y-%m-%d"),
        "W": iso["year"].astype(str) + " W" + iso["week"].astype(str).str.zfill(2),
        "M": starts.dt.strftime("%Y-%m"),
        "Y": starts.dt.strftime("%Y"),
    }


def period_start(kind: str, label: str) -> datetime:
    """The first moment (UTC) of the period ``label`` of ``kind``: ``2026 W02`` -> 2026-01-05."""
    if kind == "W":
        year, week = label.split(" W")
        return datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
    fmt = {"D": "%Y-%m-%d", "M": "%Y-%m", "Y": "%Y"}[kind]
    return datetime.strptime(label, fmt).replace(tzinfo=UTC)


def expected_sums(daily: pd.DataFrame, box_column: str | None) -> dict[tuple, dict[str, int]]:
    """Per (box, kind, label): sums of the records by indicator and by indicator:dimension,
    in pandas, independently of the KPI SQL. ``box_column`` None: every box as one fleet."""
    frame = pd.DataFrame(
        {
            "box": daily[box_column].to_numpy() if box_column else "",
            "indicator_id": daily["indicator_id"].to_numpy(),
            "dimension": daily["dimension"].to_numpy(),
            "value": daily["value"].to_numpy(),
        }
    )
    starts = pd.to_datetime(daily["period_start"], utc=True)
    days = pd.Series(starts.unique())
    sums: dict[tuple, dict[str, int]] = {}
    for kind, day_labels in labels(days).items():
        label_of = dict(zip(days, day_labels, strict=True))  # labels of the few distinct days, mapped
        grouped = (
            frame.assign(label=starts.map(label_of).to_numpy())
            .groupby(["box", "label", "indicator_id", "dimension"])["value"]
            .sum()
        )
        for (box, label, indicator_id, dimension), value in grouped.items():
            entry = sums.setdefault((box, kind, label), {})
            entry[str(indicator_id)] = entry.get(str(indicator_id), 0) + int(value)
            entry[f"{indicator_id}:{dimension}"] = int(value)
    return sums


def disagreements(
    kpis: pd.DataFrame, records: pd.DataFrame, cutoff_of: Callable[[str], datetime | None], box_column: str | None
) -> list[dict]:
    """Every stored KPI field that differs from the records' sum over its period (or is
    negative). ``records``: as the KPIs read them (per box and day, less those just purged);
    a period starting before its box's cutoff (``cutoff_of(box)``) has hours purged: its
    stored value stands. ``box_column`` None: the fleet's KPIs, every box summed."""
    sums = expected_sums(records, box_column)
    problems = []
    for row in kpis.itertuples(index=False):  # one row per KPI and period: a few hundred
        box = getattr(row, box_column) if box_column else ""
        cutoff = cutoff_of(box)
        if cutoff is not None and period_start(row.agg_kind, row.agg_value) < cutoff:
            continue
        got = json.loads(row.kpi_value)
        want = sums.get((box, row.agg_kind, row.agg_value), {})
        expected = {
            2001: {"totalVisits": want.get("1001", 0)},
            2003: {"totalMinutesActivity": want.get("1005", 0)},
            2004: {"nbMinutesOn": want.get("1004", 0)},
            2005: {"filesCreated": want.get("1003:FILE_CREATED", 0), "filesDeleted": want.get("1003:FILE_DELETED", 0)},
        }[int(row.kpi_id)]
        for field_name, value in expected.items():
            if got.get(field_name) != value or value < 0:
                problems.append(
                    {
                        "box_id": box,
                        "kpi": KPIS[int(row.kpi_id)],
                        "period": f"{row.agg_kind} {row.agg_value}",
                        "field": field_name,
                        "stored": got.get(field_name),
                        "expected": value,
                    }
                )
    return problems


def last_seen(records: pd.DataFrame) -> dict[str, datetime]:
    """Each box's end of its newest recorded hour (``records`` as the KPIs read them)."""
    if records.empty:
        return {}
    newest = pd.to_datetime(records["last_start"], utc=True).groupby(records["box_id"]).max()
    return {box: as_utc(ts) + timedelta(hours=1) for box, ts in newest.items()}


def stale_boxes(seen: dict[str, datetime], stale_after: timedelta) -> dict[str, datetime]:
    """The boxes last seen more than ``stale_after`` before the fleet's newest record (the
    fleet's clock, not the wall clock: a fleet whose uploads all stop is not all stale)."""
    if not seen:
        return {}
    fleet_end = max(seen.values())
    return {box: when for box, when in seen.items() if fleet_end - when > stale_after}
