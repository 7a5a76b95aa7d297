"""The storage computations, set-based, with no Dagster in them.

* :func:`list_into_duckdb` streams a listing, page by page, into a DuckDB table.
* :func:`snapshot_tables` attributes it (rules compiled to SQL) and aggregates per object.
* :func:`live_usage` computes usage from a base snapshot plus the object events after it.
* :func:`reconcile` compares two usage tables per owner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa

from metrics_assets.resources import ObjectInfo, Warehouse
from metrics_assets.storage.config import Scope
from metrics_assets.storage.notifications import SEQUENCER_WIDTH
from metrics_assets.storage.rules import (
    UNATTRIBUTED,
    USAGE_TYPE,
    Rule,
    attribution_select,
    parts_from_tag,
    tag_expression,
)

INSERT_CHUNK_ROWS = 100_000
LISTING_SCHEMA = pa.schema([
    ("bucket", pa.string()),
    ("key", pa.string()),
    ("size", pa.int64()),
    ("last_modified", pa.timestamp("us", tz="UTC")),
])
USAGE_COLUMNS = ["usage_type", "metered_object_type", "object_id", "owner", "usage_amount", "object_count"]
# Events that change what an object holds. Tagging, ACL, restore... events are kept in the
# event table but do not change usage.
SIZE_EVENTS = "(event_name LIKE 'ObjectCreated:%' OR event_name LIKE 'ObjectRemoved:%' OR event_name LIKE 'LifecycleExpiration:%')"


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    return con


# -- listing ---------------------------------------------------------------------------------
def list_into_duckdb(
    con: duckdb.DuckDBPyConnection,
    pages: Iterable[list[ObjectInfo]],
    table: str = "listing",
    log: Callable[[str], None] | None = None,
) -> int:
    """Stream pages into ``table(bucket, key, size, last_modified)``; at most
    ``INSERT_CHUNK_ROWS`` keys are in Python at once. Returns the keys listed."""
    con.execute(f"CREATE OR REPLACE TABLE {table} (bucket VARCHAR, key VARCHAR, size BIGINT, last_modified TIMESTAMPTZ)")
    chunk: dict[str, list] = {n: [] for n in LISTING_SCHEMA.names}
    total = 0

    def flush() -> None:
        nonlocal chunk
        if chunk["key"]:
            batch = pa.table(chunk, schema=LISTING_SCHEMA)  # noqa: F841 - read by DuckDB below
            con.execute(f"INSERT INTO {table} SELECT * FROM batch")
            chunk = {n: [] for n in LISTING_SCHEMA.names}

    for page in pages:
        for info in page:
            chunk["bucket"].append(info.bucket)
            chunk["key"].append(info.key)
            chunk["size"].append(info.size)
            chunk["last_modified"].append(info.last_modified)
        total += len(page)
        if len(chunk["key"]) >= INSERT_CHUNK_ROWS:
            flush()
            if log:
                log(f"listed {total:,} keys so far")
    flush()
    return total


def scope_condition(scopes: list[Scope]) -> str:
    """SQL (DuckDB and the warehouse) keeping only keys in the metered buckets/prefixes."""
    def lit(v: str) -> str:
        return "'" + v.replace("'", "''") + "'"

    parts = []
    for s in scopes:
        if s.prefix:
            parts.append(f"(bucket = {lit(s.bucket)} AND substr(key, 1, {len(s.prefix)}) = {lit(s.prefix)})")
        else:
            parts.append(f"bucket = {lit(s.bucket)}")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


@dataclass
class SnapshotStats:
    keys_listed: int
    keys_metered: int
    bytes_metered: int
    modified_after_day: int
    unattributed_keys: int
    conflicting_objects: int


def snapshot_tables(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], snapshot_date: date, cutoff: datetime,
    created_at: datetime, listing: str = "listing",
) -> SnapshotStats:
    """From ``listing``: ``snapshot_keys`` (per key, for the warehouse) and ``snapshot_usage``
    (per metered object: the ``usage_data`` rows). Keys modified at or after ``cutoff`` (the end
    of the snapshot's day) did not exist in that form on the day: they are left out and counted."""
    con.execute(f"CREATE OR REPLACE TABLE snapshot_keys AS SELECT bucket, key, size FROM {listing} "
                "WHERE last_modified < ?", [cutoff])
    # Group keys by (bucket, rule|location) first, with one regex per key; owner and object_id
    # are functions of the location, so they are extracted from the (far fewer) groups.
    con.execute(f"""CREATE OR REPLACE TABLE snapshot_groups AS
        SELECT bucket, tag, sum(size) AS usage_amount, count(*) AS object_count
        FROM (SELECT bucket, size, {tag_expression(rules)} AS tag FROM snapshot_keys) GROUP BY bucket, tag""")
    con.execute(
        f"""CREATE OR REPLACE TABLE snapshot_usage AS
           SELECT CAST(? AS DATE) AS snapshot_date, ? AS usage_type, metered_object_type, object_id,
                  min(owner) AS owner, min(object_location) AS object_location,
                  CAST(sum(usage_amount) AS BIGINT) AS usage_amount, CAST(sum(object_count) AS BIGINT) AS object_count,
                  CAST(? AS TIMESTAMPTZ) AS created_at,
                  count(*) > 1 AS conflicting  -- one object id at several locations (or owners)
           FROM ({parts_from_tag(rules, "snapshot_groups")})
           GROUP BY metered_object_type, object_id""",
        [snapshot_date, USAGE_TYPE, created_at],
    )
    row = con.execute(
        f"""SELECT (SELECT count(*) FROM {listing}),
                   (SELECT count(*) FROM snapshot_keys),
                   (SELECT coalesce(sum(size), 0) FROM snapshot_keys),
                   (SELECT count(*) FROM {listing} WHERE last_modified >= ?),
                   (SELECT coalesce(sum(object_count), 0) FROM snapshot_usage WHERE metered_object_type = '{UNATTRIBUTED}'),
                   (SELECT count(*) FROM snapshot_usage WHERE conflicting)""",
        [cutoff],
    ).fetchall()[0]
    return SnapshotStats(*(int(v) for v in row))


# -- live usage ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotRef:
    snapshot_date: date
    as_of: datetime


def _as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _as_utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def latest_snapshot(warehouse: Warehouse, before: date | None = None) -> SnapshotRef | None:
    """The latest snapshot (strictly before ``before`` when given) whose per-key listing is kept."""
    sql = ("SELECT r.snapshot_date, r.as_of FROM storage_snapshot_runs r WHERE "
           "(r.keys_listed = 0 OR EXISTS (SELECT 1 FROM storage_snapshot_objects o WHERE o.snapshot_date = r.snapshot_date))")
    params = {}
    if before is not None:
        sql += " AND r.snapshot_date < :before"
        params["before"] = before
    rows = warehouse.fetch_all(sql + " ORDER BY r.snapshot_date DESC LIMIT 1", params)
    if not rows:
        return None
    return SnapshotRef(_as_date(rows[0]["snapshot_date"]), _as_utc(rows[0]["as_of"]))


def winning_events_sql(postgres: bool, since: bool, until: bool) -> str:
    """Per (bucket, key), the event with the highest sequencer among those after the base
    snapshot, next to the key's size in that snapshot. Sequencers compare right-padded with
    zeros to a fixed width, so '0A' = '0A00' < '0A01'."""
    collate = ' COLLATE "C"' if postgres else ""
    zeros = "0" * SEQUENCER_WIDTH
    where = [SIZE_EVENTS]
    if since:
        where.append("event_time > :since")
    if until:
        where.append("event_time <= :until")
    return f"""
        WITH ranked AS (
            SELECT bucket, key, event_name, size,
                   ROW_NUMBER() OVER (PARTITION BY bucket, key
                                      ORDER BY substr(sequencer || '{zeros}', 1, {SEQUENCER_WIDTH}){collate} DESC) AS rn
            FROM storage_object_events
            WHERE {' AND '.join(where)}
        )
        SELECT e.bucket, e.key,
               CASE WHEN e.event_name LIKE 'ObjectCreated:%' THEN e.size END AS new_size,
               s.size AS old_size
        FROM ranked e
        LEFT JOIN storage_snapshot_objects s
               ON s.snapshot_date = :base_date AND s.bucket = e.bucket AND s.key = e.key
        WHERE e.rn = 1
    """


WINNERS_SCHEMA = pa.schema([("bucket", pa.string()), ("key", pa.string()), ("new_size", pa.int64()), ("old_size", pa.int64())])
BASE_SCHEMA = pa.schema([("metered_object_type", pa.string()), ("object_id", pa.string()), ("owner", pa.string()),
                         ("usage_amount", pa.int64()), ("object_count", pa.int64())])


def _arrow(warehouse: Warehouse, sql: str, params: dict, schema: pa.Schema) -> pa.Table:
    frame = warehouse.read_df(sql, params)
    if frame.empty:
        return schema.empty_table()
    frame = frame.astype({f.name: "Int64" for f in schema if pa.types.is_integer(f.type)})
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


@dataclass
class LiveStats:
    base: SnapshotRef | None
    keys_changed: int
    keys_out_of_scope: int


def live_usage(
    warehouse: Warehouse, scopes: list[Scope], rules: list[Rule], base: SnapshotRef | None,
    until: datetime | None = None,
) -> tuple[pa.Table, LiveStats]:
    """Usage per metered object: the base snapshot, with the winning event of every key
    changed after it applied on top (a create sets the key's size, a removal takes away the
    size it had). Without a base, from nothing. Returns the ``usage_live`` columns (no as_of)."""
    params: dict = {"base_date": base.snapshot_date if base else date(1, 1, 1)}
    if base:
        params["since"] = base.as_of
    if until:
        params["until"] = until
    winners = _arrow(warehouse, winning_events_sql(warehouse.is_postgres, base is not None, until is not None),
                     params, WINNERS_SCHEMA)
    if base:
        base_rows = _arrow(
            warehouse,
            "SELECT metered_object_type, object_id, owner, usage_amount, object_count FROM usage_data "
            "WHERE snapshot_date = :d AND usage_type = :t",
            {"d": base.snapshot_date, "t": USAGE_TYPE}, BASE_SCHEMA)
    else:
        base_rows = BASE_SCHEMA.empty_table()
    con = duckdb_connection()
    con.register("winners_all", winners)
    con.register("base_rows", base_rows)
    in_scope = scope_condition(scopes)
    con.execute(f"CREATE TABLE winners AS SELECT * FROM winners_all WHERE {in_scope}")
    attributed = attribution_select(rules, "winners", "new_size, old_size")
    result = con.sql(f"""
        WITH deltas AS (
            SELECT metered_object_type, object_id, owner,
                   sum(coalesce(new_size, 0) - coalesce(old_size, 0)) AS usage_amount,
                   sum(CAST(new_size IS NOT NULL AS BIGINT) - CAST(old_size IS NOT NULL AS BIGINT)) AS object_count
            FROM ({attributed}) a GROUP BY ALL
        )
        SELECT '{USAGE_TYPE}' AS usage_type, metered_object_type, object_id, min(owner) AS owner,
               CAST(sum(usage_amount) AS BIGINT) AS usage_amount, CAST(sum(object_count) AS BIGINT) AS object_count
        FROM (SELECT * FROM base_rows UNION ALL BY NAME SELECT * FROM deltas)
        GROUP BY metered_object_type, object_id
        HAVING sum(usage_amount) <> 0 OR sum(object_count) <> 0
        ORDER BY metered_object_type, object_id
    """).to_arrow_table()
    out_of_scope = con.execute("SELECT (SELECT count(*) FROM winners_all) - (SELECT count(*) FROM winners)").fetchall()[0][0]
    stats = LiveStats(base, winners.num_rows - out_of_scope, out_of_scope)
    con.close()
    return result, stats


# -- reconciliation --------------------------------------------------------------------------
WARN_DRIFT = 0.001
FAIL_DRIFT = 0.01


def owner_label(owner: str | None, metered_object_type: str, object_id: str) -> str:
    return owner if owner is not None else f"{UNATTRIBUTED}:{object_id}"


def reconcile(snapshot: pa.Table, live: pa.Table) -> list[dict]:
    """Per owner (UNATTRIBUTED:<bucket> for unattributed bytes): snapshot bytes, live bytes,
    difference and drift = |difference| / snapshot bytes (1.0 when the snapshot has none)."""
    con = duckdb_connection()
    con.register("snap", snapshot)
    con.register("live", live)
    label = f"coalesce(owner, '{UNATTRIBUTED}:' || object_id)"
    rows = con.execute(f"""
        WITH s AS (SELECT {label} AS owner, sum(usage_amount) AS b FROM snap GROUP BY 1),
             l AS (SELECT {label} AS owner, sum(usage_amount) AS b FROM live GROUP BY 1)
        SELECT coalesce(s.owner, l.owner) AS owner, CAST(coalesce(s.b, 0) AS BIGINT) AS snapshot_bytes,
               CAST(coalesce(l.b, 0) AS BIGINT) AS live_bytes
        FROM s FULL OUTER JOIN l ON s.owner = l.owner ORDER BY 1
    """).fetchall()
    con.close()
    out = []
    for owner, snap_bytes, live_bytes in rows:  # one row per owner: a short list
        diff = live_bytes - snap_bytes
        drift = abs(diff) / snap_bytes if snap_bytes else (0.0 if diff == 0 else 1.0)
        out.append({"owner": owner, "snapshot_bytes": snap_bytes, "live_bytes": live_bytes,
                    "difference": diff, "drift": drift})
    return out


def drift_severity(rows: list[dict]) -> tuple[float, str]:
    worst = max((r["drift"] for r in rows), default=0.0)
    if math.isnan(worst):
        worst = 1.0
    level = "fail" if worst > FAIL_DRIFT else "warn" if worst > WARN_DRIFT else "ok"
    return worst, level
