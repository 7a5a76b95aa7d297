"""The reconciliation of live usage against a snapshot (check ``live_matches_snapshot``'s
logic). No Dagster here: :func:`evaluate` gives a :class:`Verdict` the asset module turns into
the check's result.

Per owner, live usage as of the snapshot's time (the previous snapshot with a kept per-key
listing, plus the events with ``eventTime`` up to then) against the snapshot, once the sensor
has read the queue empty ``delay`` after the listing (every notification sent before it has
then been recorded); "pending" until then. The state is written to
``storage_snapshot_runs.reconciliation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from metrics_assets.resources import Warehouse
from metrics_assets.sql_access import DATE, UTC_DATETIME
from metrics_assets.storage.ingest import drained_at
from metrics_assets.storage.rules import USAGE_TYPE
from metrics_assets.storage.usage import (
    FAIL_DRIFT,
    WARN_DRIFT,
    drift_severity,
    latest_snapshot,
    live_usage,
    reconcile,
)

SNAPSHOT_USAGE_SCHEMA = pa.schema(
    [
        ("metered_object_type", pa.string()),
        ("object_id", pa.string()),
        ("owner", pa.string()),
        ("usage_amount", pa.int64()),
    ]
)


@dataclass(frozen=True)
class SnapshotRun:
    snapshot_date: date
    as_of: datetime
    listed_at: datetime


@dataclass
class Verdict:
    passed: bool
    severity: str  # "WARN" or "ERROR"
    metadata: dict[str, Any] = field(default_factory=dict)
    differences: list[dict] | None = None  # per owner that differs, when compared


def latest_listed_run(warehouse: Warehouse) -> SnapshotRun | None:
    """The snapshot listed last (the one the reconciliation check speaks about)."""
    rows = warehouse.fetch_all(
        "SELECT snapshot_date, as_of, listed_at FROM storage_snapshot_runs ORDER BY listed_at DESC, snapshot_date DESC LIMIT 1",
        types={"snapshot_date": DATE, "as_of": UTC_DATETIME, "listed_at": UTC_DATETIME},
    )
    return SnapshotRun(**rows[0]) if rows else None


def set_state(warehouse: Warehouse, run: SnapshotRun, state: str) -> None:
    warehouse.execute(
        "UPDATE storage_snapshot_runs SET reconciliation = :s WHERE snapshot_date = :d",
        {"s": state, "d": run.snapshot_date},
    )
    if state != "pending":
        # Older listings still waiting are not decided any more: a later one was.
        warehouse.execute(
            "UPDATE storage_snapshot_runs SET reconciliation = 'superseded' "
            "WHERE reconciliation = 'pending' AND listed_at < :t",
            {"t": run.listed_at},
        )


def evaluate(warehouse: Warehouse, scopes, rules, run: SnapshotRun | None, delay: timedelta) -> Verdict:
    if run is None:
        return Verdict(True, "WARN", {"status": "not compared", "reason": "no snapshot yet"})
    common = {
        "snapshot_date": str(run.snapshot_date),
        "listed_at": run.listed_at.isoformat(),
        "compared_as_of": run.as_of.isoformat(),
    }
    base = latest_snapshot(warehouse, before=run.snapshot_date)
    if base is None:
        set_state(warehouse, run, "not compared")
        return Verdict(
            True,
            "WARN",
            common
            | {
                "status": "not compared",
                "reason": "no earlier snapshot with a kept listing: nothing to start live usage from",
            },
        )
    drained = drained_at(warehouse)
    if drained is None or drained < run.listed_at + delay:
        set_state(warehouse, run, "pending")
        return Verdict(
            False,
            "WARN",
            common
            | {
                "status": "pending",
                "reason": (
                    f"s3_notifications_sensor has not yet read the queue empty {delay.total_seconds():.0f} s "
                    "(STORAGE_NOTIFICATION_DELAY_SECONDS) after the listing, so notifications of changes "
                    "before it may still be on their way; the sensor re-runs this check once it has"
                ),
                "queue_last_emptied_at": drained.isoformat() if drained else "never",
            },
        )
    live = live_usage(warehouse, scopes, rules, base, until=run.as_of)[0]
    snapshot_rows = warehouse.read_arrow(
        "SELECT metered_object_type, object_id, owner, usage_amount FROM usage_data "
        "WHERE snapshot_date = :d AND usage_type = :t",
        {"d": run.snapshot_date, "t": USAGE_TYPE},
        schema=SNAPSHOT_USAGE_SCHEMA,
    )
    rows = reconcile(snapshot_rows, live)
    worst, level = drift_severity(rows)
    set_state(warehouse, run, level)
    differing = [r | {"drift": f"{r['drift']:.4%}"} for r in rows if r["difference"] != 0]
    return Verdict(
        passed=level == "ok",
        severity="ERROR" if level == "fail" else "WARN",
        metadata=common
        | {
            "status": level,
            "live_from_snapshot": str(base.snapshot_date),
            "queue_last_emptied_at": drained.isoformat(),
            "owners_compared": len(rows),
            "owners_differing": len(differing),
            "max_drift": float(worst),
            "thresholds": f"warn above {WARN_DRIFT:.1%}, fail above {FAIL_DRIFT:.0%}",
        },
        differences=differing,
    )
