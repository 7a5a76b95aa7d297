"""Monthly storage billing: GB-days per owner, from the daily snapshots. No Dagster here.

An owner's GB-days for a month are the bytes it held in each daily snapshot of the month
(``usage_data``, ``usage_type = 'STORAGE'``) / 10^9, summed over the days that have a snapshot
(``storage_snapshot_runs``). Unattributed bytes (owner NULL) are not billed; their byte-days
are reported apart. Days of the month (up to today) without a snapshot are named, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from metrics_assets.sql_access import DATE, INTEGER
from metrics_assets.storage.rules import USAGE_TYPE

if TYPE_CHECKING:
    import pandas as pd

    from metrics_assets.resources import Warehouse

OWNER_BYTE_DAYS_SQL = (
    "SELECT owner, sum(usage_amount) AS byte_days FROM usage_data "
    "WHERE usage_type = :t AND owner IS NOT NULL AND snapshot_date >= :start AND snapshot_date < :end "
    "GROUP BY owner ORDER BY owner"
)
SNAPSHOT_DAYS_SQL = (
    "SELECT snapshot_date FROM storage_snapshot_runs WHERE snapshot_date >= :start AND snapshot_date < :end "
    "ORDER BY snapshot_date"
)
UNATTRIBUTED_SQL = (
    "SELECT coalesce(sum(usage_amount), 0) FROM usage_data WHERE usage_type = :t AND owner IS NULL "
    "AND snapshot_date >= :start AND snapshot_date < :end"
)
OWNER_BYTE_DAYS_SCHEMA = pa.schema([("owner", pa.string()), ("byte_days", pa.int64())])


@dataclass
class MonthlyBill:
    rows: pd.DataFrame  # the storage_billing_monthly rows of the month
    days: list[str]  # snapshot days measured
    missing: list[str]  # days of the month up to today without a snapshot
    unattributed_byte_days: int


def monthly_bill(warehouse: Warehouse, month: date, end: date, now: datetime) -> MonthlyBill:
    """The month [month, end)'s bill as of ``now`` (aware UTC)."""
    params = {"start": month, "end": end, "t": USAGE_TYPE}
    frame = warehouse.read_arrow(OWNER_BYTE_DAYS_SQL, params, schema=OWNER_BYTE_DAYS_SCHEMA).to_pandas()
    days = [
        r["snapshot_date"].isoformat()
        for r in warehouse.fetch_all(SNAPSHOT_DAYS_SQL, params, types={"snapshot_date": DATE})
    ]
    unattributed = warehouse.scalar(UNATTRIBUTED_SQL, params, type_=INTEGER)
    frame["gb_days"] = frame["byte_days"] / 1e9
    frame["month"] = month
    frame["days_measured"] = len(days)
    frame["computed_at"] = now
    last_day = min(end, (now + timedelta(days=1)).date())
    expected = [(month + timedelta(days=i)).isoformat() for i in range((last_day - month).days)]
    measured = set(days)
    return MonthlyBill(frame, days, [d for d in expected if d not in measured], unattributed)
