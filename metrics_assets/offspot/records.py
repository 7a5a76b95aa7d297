"""The offspot tables in the warehouse: their names, which slice of ``offspot_indicator_records``
a run replaces for each box, and the records summed per box and day that the KPIs read.

No Dagster here (``assets.py`` reads, calls these, writes through ``Warehouse.replace_slices``
and reports).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.resources.sqltext import literal

if TYPE_CHECKING:
    from metrics_assets.offspot.indicators import Computation
    from metrics_assets.offspot.sources import Gathered


RECORDS_TABLE = "offspot_indicator_records"
KPIS_TABLE = "offspot_kpis"
FLEET_TABLE = "offspot_fleet_kpis"
#: the slice of a run's hours, in any of the tables keyed by ``period_start``
WINDOW = "period_start >= :start AND period_start < :end"
#: a box's records older than its purge cutoff (``kpis.purge_cutoff``)
PURGED = "box_id = :box_id AND period_start < :cutoff"
#: a year of a fleet is a few hundred thousand groups: hash them in memory, not on disk
KPI_WORK_MEM = "256MB"

STORED_KPIS_SQL = f"SELECT box_id, kpi_id, kpi_name, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}"
STORED_FLEET_SQL = f"SELECT kpi_id, kpi_name, agg_kind, agg_value, kpi_value, boxes, per_box_uptime FROM {FLEET_TABLE}"
CHECKED_KPIS_SQL = f"SELECT box_id, kpi_id, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}"
PURGED_COUNT_SQL = f"SELECT count(*) FROM {RECORDS_TABLE} WHERE {PURGED}"

# grouped on a date (cheap; epoch arithmetic is numeric in PostgreSQL), converted after
_DAILY_PG_SQL = (
    "SELECT box_id, indicator_id, dimension, (day - DATE '1970-01-01')::bigint * 86400 AS day_s, value, "
    "extract(epoch FROM last_start)::bigint AS last_s FROM ("
    "SELECT box_id, indicator_id, dimension, (period_start AT TIME ZONE 'UTC')::date AS day, "
    f"sum(value) AS value, max(period_start) AS last_start FROM {RECORDS_TABLE} GROUP BY 1, 2, 3, 4) d"
)
_DAILY_SQLITE_SQL = (
    "SELECT box_id, indicator_id, dimension, "
    "CAST(strftime('%s', substr(period_start, 1, 10)) AS INTEGER) AS day_s, sum(value) AS value, "
    "CAST(strftime('%s', max(period_start)) AS INTEGER) AS last_s "
    f"FROM {RECORDS_TABLE} GROUP BY 1, 2, 3, 4"
)
_DAILY_TYPES = {
    "box_id": pa.string(),
    "indicator_id": pa.int32(),
    "dimension": pa.string(),
    "day_s": pa.int64(),
    "value": pa.int64(),
    "last_s": pa.int64(),
}


@dataclass
class WritePlan:
    """What a run of ``offspot_indicators`` replaces: one ``replace_slices`` write per box whose
    files hold lines of the window, and the hours left as they were, per box."""

    #: ``(table, rows, where, params)`` for ``Warehouse.replace_slices``
    writes: list[tuple[str, pa.Table, str, dict[str, Any]]] = field(default_factory=list)
    boxes_written: list[str] = field(default_factory=list)
    #: box -> the part of the window left unwritten, ``[YYYY-MM-DD HH:MM, YYYY-MM-DD HH:MM)``
    left: dict[str, str] = field(default_factory=dict)
    #: every row written, as one table (its columns those of the records even when nothing is)
    #: every row written (set by plan_writes; empty until then)
    rows: pa.Table = field(default_factory=lambda: pa.table({}))


def plan_writes(boxes: list[Gathered], result: Computation, start: datetime, end: datetime) -> WritePlan:
    """A box's hours are replaced only from where its files hold every line: a rotation older
    than the files read, else their oldest line (whose hour counts as covered: a new box's
    first hour). Older hours of the window keep the rows they have (the box's 48 h roll may
    have deleted their logs since they were read); ``logs_readable`` says so when the box was on.
    A box without any readable file keeps the whole window."""
    plan = WritePlan()
    records = result.records
    for b in boxes:
        minute = result.covered_from_minute.get(b.box_id)
        readable = [f for f in b.access if f.name not in result.skipped_files]
        write_from = start if minute is not None and readable else None
        if minute is not None and write_from is not None and minute * 60 > start.timestamp():
            write_from = datetime.fromtimestamp(minute // 60 * 3600, UTC)
        if write_from is None or write_from >= end:
            plan.left[b.box_id] = f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
            continue
        if write_from > start:
            plan.left[b.box_id] = f"[{start:%Y-%m-%d %H:%M}, {write_from:%Y-%m-%d %H:%M})"
        mine = records.filter(
            pc.and_(
                pc.equal(records["box_id"], b.box_id),
                pc.greater_equal(records["period_start"], pa.scalar(write_from, records["period_start"].type)),
            )
        )
        plan.writes.append(
            (
                RECORDS_TABLE,
                mine,
                f"{WINDOW} AND box_id = :box_id",
                {"start": write_from, "end": end, "box_id": b.box_id},
            )
        )
        plan.boxes_written.append(b.box_id)
    plan.rows = pa.concat_tables([w[1] for w in plan.writes]) if plan.writes else records.slice(0, 0)
    return plan


def purge_writes(cutoffs: dict[str, datetime]) -> list[tuple[str, list, str, dict[str, Any]]]:
    """Empty slices of ``offspot_indicator_records``: each box's records older than its cutoff."""
    return [(RECORDS_TABLE, [], PURGED, {"box_id": box, "cutoff": cutoff}) for box, cutoff in sorted(cutoffs.items())]


def daily_records(warehouse) -> pd.DataFrame:
    """The indicator records summed per box, indicator, dimension and UTC day, in the database
    (every KPI is a sum over whole days), with the newest hour summed into each row. Days and
    hours travel as epoch seconds; on PostgreSQL the result comes out through COPY.

    The one dialect branch left in the domain, on purpose: this frame has a row per box,
    indicator, dimension and day of a year of records, and the typed reads
    (``warehouse.read_arrow(schema=...)``) convert it value by value in Python: about three
    times slower than COPY into Arrow's CSV reader (24,000 daily rows from 72,000 records:
    0.13 s through COPY, 0.36-0.50 s typed, query included). Both branches give epoch-second integers, so no
    value is coerced after the read.

    ``warehouse``: the ``Warehouse`` resource."""
    if warehouse.is_postgres:
        buffer = io.BytesIO()
        raw = warehouse.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(f"SET LOCAL work_mem = {literal(KPI_WORK_MEM)}")
            cursor.copy_expert(f"COPY ({_DAILY_PG_SQL}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
            cursor.close()
        finally:
            raw.close()
        buffer.seek(0)
        frame = pacsv.read_csv(
            buffer,
            convert_options=pacsv.ConvertOptions(
                column_types=_DAILY_TYPES, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        ).to_pandas()
    else:
        frame = warehouse.read_df(_DAILY_SQLITE_SQL)
    return pd.DataFrame(
        {
            "box_id": frame["box_id"].astype(str),
            "indicator_id": frame["indicator_id"].astype("int32"),
            "dimension": frame["dimension"].fillna("").astype(str),
            "period_start": pd.to_datetime(frame["day_s"].astype("int64"), unit="s", utc=True),
            "value": frame["value"].astype("int64"),
            "last_start": pd.to_datetime(frame["last_s"].astype("int64"), unit="s", utc=True),
        }
    )
