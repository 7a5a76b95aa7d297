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
from datetime import date, datetime

import duckdb
import pyarrow as pa

from metrics_assets.resources import ObjectInfo, Warehouse
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import literal
from metrics_assets.sql_access import DATE, UTC_DATETIME
from metrics_assets.storage.config import Scope
from metrics_assets.storage.notifications import SEQUENCER_WIDTH
from metrics_assets.storage.rules import (
    UNATTRIBUTED,
    USAGE_TYPE,
    Rule,
    attribution_select,
    parts_from_location,
    rule_location_select,
)

INSERT_CHUNK_ROWS = 100_000
LISTING_SCHEMA = pa.schema(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("size", pa.int64()),
        ("last_modified", pa.timestamp("us", tz="UTC")),
        # '' for a bucket without versioning; S3's version id (or 'null') otherwise
        ("version_id", pa.string()),
        ("is_latest", pa.bool_()),
        ("is_delete_marker", pa.bool_()),
    ]
)
LISTING_DDL = (
    "bucket VARCHAR, key VARCHAR, size BIGINT, last_modified TIMESTAMPTZ, version_id VARCHAR, "
    "is_latest BOOLEAN, is_delete_marker BOOLEAN"
)
# Events that change what an object holds. Tagging, ACL, restore... events are kept in the
# event table but do not change usage.
SIZE_EVENTS = "(event_name LIKE 'ObjectCreated:%' OR event_name LIKE 'ObjectRemoved:%' OR event_name LIKE 'LifecycleExpiration:%')"


# -- listing ---------------------------------------------------------------------------------
def list_into_duckdb(
    con: duckdb.DuckDBPyConnection,
    pages: Iterable[list[ObjectInfo]],
    table: str = "listing",
    log: Callable[[str], None] | None = None,
) -> int:
    """Stream pages into ``table`` (LISTING_DDL: one row per object version, delete markers
    included); at most ``INSERT_CHUNK_ROWS`` rows are in Python at once. Returns the rows listed."""
    con.execute(f"CREATE OR REPLACE TABLE {table} ({LISTING_DDL})")
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
            chunk["version_id"].append(info.version_id)
            chunk["is_latest"].append(info.is_latest)
            chunk["is_delete_marker"].append(info.is_delete_marker)
        total += len(page)
        if len(chunk["key"]) >= INSERT_CHUNK_ROWS:
            flush()
            if log:
                log(f"listed {total:,} keys so far")
    flush()
    return total


def scope_condition(scopes: list[Scope]) -> str:
    """SQL (DuckDB and the warehouse) keeping only keys in the metered buckets/prefixes."""
    parts = []
    for s in scopes:
        if s.prefix:
            parts.append(f"(bucket = {literal(s.bucket)} AND substr(key, 1, {len(s.prefix)}) = {literal(s.prefix)})")
        else:
            parts.append(f"bucket = {literal(s.bucket)}")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


@dataclass
class SnapshotStats:
    keys_listed: int  # rows listed: object versions and delete markers
    keys_metered: int  # object versions metered (delete markers hold no bytes)
    bytes_metered: int
    modified_after_day: int
    unattributed_keys: int
    conflicting_objects: int  # object ids claimed by more than one owner
    noncurrent_versions: int = 0
    noncurrent_bytes: int = 0
    delete_markers: int = 0


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()
    if kind:
        con.execute(f"DROP {'VIEW' if kind[0][0] == 'VIEW' else 'TABLE'} {name}")


def snapshot_tables(
    con: duckdb.DuckDBPyConnection,
    rules: list[Rule],
    snapshot_date: date,
    cutoff: datetime,
    created_at: datetime,
    listing: str = "listing",
    extra_parts: str | None = None,
) -> SnapshotStats:
    """From ``listing`` (LISTING_DDL; a table, or a view over inventory files): ``snapshot_keys``
    (per stored version, for the warehouse), ``snapshot_usage`` (per metered object and owner:
    the ``usage_data`` rows) and ``snapshot_conflicts`` (object ids two owners claim).

    Versions (and delete markers) created at or after ``cutoff`` (the end of the snapshot's day)
    did not exist on the day: they are left out and counted. A version is *current* when it is
    the newest of its key before the cutoff and not a delete marker; every other version is
    noncurrent, and its bytes are counted in ``noncurrent_bytes`` too. For today's snapshot that
    is S3's own ``IsLatest``, and ``snapshot_keys`` is a view (no copy of the listing); only keys
    with versions after the cutoff (a past day) are ranked, in a table.

    ``extra_parts`` (optional): a relation of rows already attributed and grouped elsewhere, in
    ``snapshot_parts``' columns (Athena's, :mod:`metrics_assets.storage.inventory_athena`); they
    join the usage and the conflicts, not the per-key tables or the listing counts."""
    listed, late, markers = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE last_modified >= ?),
                   count(*) FILTER (WHERE is_delete_marker AND last_modified < ?) FROM {listing}""",
        [cutoff, cutoff],
    ).fetchall()[0]
    _drop(con, "snapshot_keys")
    if not late:
        con.execute(f"""CREATE VIEW snapshot_keys AS
            SELECT bucket, key, version_id, size, NOT is_latest AS noncurrent FROM {listing} WHERE NOT is_delete_marker""")
    else:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE snapshot_versions AS
            SELECT bucket, key, version_id, size, is_delete_marker, is_latest AS is_current, last_modified
            FROM {listing} WHERE last_modified < ?""",
            [cutoff],
        )
        # Keys changed after the cutoff: their current version on the day is the newest before it.
        con.execute(
            f"""
            UPDATE snapshot_versions v SET is_current = r.rn = 1
            FROM (SELECT bucket, key, version_id,
                         row_number() OVER (PARTITION BY bucket, key ORDER BY last_modified DESC, is_current DESC) AS rn
                  FROM snapshot_versions
                  SEMI JOIN (SELECT DISTINCT bucket, key FROM {listing} WHERE last_modified >= ?) late USING (bucket, key)) r
            WHERE v.bucket = r.bucket AND v.key = r.key AND v.version_id = r.version_id""",
            [cutoff],
        )
        con.execute("""CREATE TABLE snapshot_keys AS
            SELECT bucket, key, version_id, size, NOT is_current AS noncurrent
            FROM snapshot_versions WHERE NOT is_delete_marker""")
    # Group keys by (bucket, rule, location) first, with one regex per key; owner and object_id
    # are functions of the location, so they are extracted from the (far fewer) groups.
    located = rule_location_select(rules, "snapshot_keys", "bucket, size, noncurrent")
    con.execute(f"""CREATE OR REPLACE TABLE snapshot_groups AS
        SELECT bucket, rule, location, CAST(sum(size) AS BIGINT) AS usage_amount, count(*) AS object_count,
               CAST(coalesce(sum(size) FILTER (WHERE noncurrent), 0) AS BIGINT) AS noncurrent_bytes,
               count(*) FILTER (WHERE noncurrent) AS noncurrent_versions
        FROM ({located}) GROUP BY bucket, rule, location""")
    con.execute(f"CREATE OR REPLACE TABLE snapshot_parts AS {parts_from_location(rules, 'snapshot_groups')}")
    if extra_parts is not None:
        con.execute(f"INSERT INTO snapshot_parts BY NAME SELECT * FROM {extra_parts}")
    con.execute(
        """CREATE OR REPLACE TABLE snapshot_usage AS
           SELECT CAST(? AS DATE) AS snapshot_date, ? AS usage_type, metered_object_type, object_id, owner,
                  min(object_location) AS object_location,
                  CAST(sum(usage_amount) AS BIGINT) AS usage_amount, CAST(sum(object_count) AS BIGINT) AS object_count,
                  CAST(sum(noncurrent_bytes) AS BIGINT) AS noncurrent_bytes,
                  CAST(? AS TIMESTAMPTZ) AS created_at
           FROM snapshot_parts
           GROUP BY metered_object_type, object_id, owner""",
        [snapshot_date, USAGE_TYPE, created_at],
    )
    # One object id, several owners: each owner is billed its own bytes above, and the check
    # fails, naming the places.
    con.execute("""CREATE OR REPLACE TABLE snapshot_conflicts AS
        SELECT metered_object_type, object_id, owner, object_location, CAST(usage_amount AS BIGINT) AS usage_amount
        FROM snapshot_parts
        SEMI JOIN (SELECT metered_object_type, object_id FROM snapshot_parts WHERE owner IS NOT NULL
                   GROUP BY ALL HAVING count(DISTINCT owner) > 1) c USING (metered_object_type, object_id)
        ORDER BY metered_object_type, object_id, owner, object_location""")
    row = con.execute(
        f"""SELECT coalesce(sum(object_count), 0), coalesce(sum(usage_amount), 0),
                   coalesce(sum(object_count) FILTER (WHERE metered_object_type = '{UNATTRIBUTED}'), 0),
                   (SELECT count(*) FROM (SELECT DISTINCT metered_object_type, object_id FROM snapshot_conflicts)),
                   coalesce(sum(noncurrent_versions), 0), coalesce(sum(noncurrent_bytes), 0)
            FROM snapshot_parts"""
    ).fetchall()[0]
    metered, metered_bytes, unattributed, conflicts, noncurrent_versions, noncurrent_bytes = (int(v) for v in row)
    return SnapshotStats(
        int(listed),
        metered,
        metered_bytes,
        int(late),
        unattributed,
        conflicts,
        noncurrent_versions,
        noncurrent_bytes,
        int(markers),
    )


def conflicting_keys(con: duckdb.DuckDBPyConnection, rules: list[Rule], limit: int = 50) -> list[dict]:
    """The keys behind ``snapshot_conflicts`` (at most ``limit``): bucket, key, owner, object id."""
    if not con.execute("SELECT count(*) FROM snapshot_conflicts").fetchall()[0][0]:
        return []
    attributed = attribution_select(rules, "snapshot_keys", "version_id, size")
    return [
        dict(zip(("metered_object_type", "object_id", "owner", "key", "version_id", "size"), r, strict=False))
        for r in con.execute(f"""
        SELECT a.metered_object_type, a.object_id, a.owner, 's3://' || a.bucket || '/' || a.key, a.version_id, a.size
        FROM ({attributed}) a
        JOIN (SELECT DISTINCT metered_object_type, object_id FROM snapshot_conflicts) c USING (metered_object_type, object_id)
        ORDER BY 1, 2, 3, 4 LIMIT {int(limit)}""").fetchall()
    ]


# -- live usage ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotRef:
    snapshot_date: date
    as_of: datetime


def latest_snapshot(warehouse: Warehouse, before: date | None = None) -> SnapshotRef | None:
    """The latest snapshot (strictly before ``before`` when given) whose per-key listing is kept."""
    sql = (
        "SELECT r.snapshot_date, r.as_of FROM storage_snapshot_runs r WHERE "
        "(r.keys_listed = 0 OR EXISTS (SELECT 1 FROM storage_snapshot_objects o WHERE o.snapshot_date = r.snapshot_date)) "
        # a snapshot of inventories scanned on Athena keeps no per-key baseline for them
        "AND r.source NOT LIKE 'athena-%'"
    )
    params = {}
    if before is not None:
        sql += " AND r.snapshot_date < :before"
        params["before"] = before
    rows = warehouse.fetch_all(
        sql + " ORDER BY r.snapshot_date DESC LIMIT 1", params, types={"snapshot_date": DATE, "as_of": UTC_DATETIME}
    )
    return SnapshotRef(**rows[0]) if rows else None


def winning_events_sql(byte_order: Callable[[str], str], since: bool, until: bool) -> str:
    """Per (bucket, key, version id), the event with the highest sequencer among those after
    the base snapshot, next to that version's size in the snapshot. Sequencers compare
    right-padded with zeros to a fixed width, so '0A' = '0A00' < '0A01'.

    A version's bytes after its winning event: the event's size for a create, none for a
    removal. So deleting one version (``ObjectRemoved:Delete`` with its versionId, what
    lifecycle rules on noncurrent versions do) takes away exactly that version's bytes, and a
    delete marker (``ObjectRemoved:DeleteMarkerCreated``, its own new version id) takes away
    nothing. Without versioning every event has version id '' and this is per key.

    ``byte_order`` is the warehouse's (:meth:`~metrics_assets.sql_access.SqlAccess.byte_order`):
    sequencers are hexadecimal text and compare by bytes, whatever the database's collation."""
    zeros = "0" * SEQUENCER_WIDTH
    where = [SIZE_EVENTS]
    if since:
        where.append("event_time > :since")
    if until:
        where.append("event_time <= :until")
    return f"""
        WITH ranked AS (
            SELECT bucket, key, version_id, event_name, size,
                   ROW_NUMBER() OVER (PARTITION BY bucket, key, version_id
                                      ORDER BY {byte_order(f"substr(sequencer || '{zeros}', 1, {SEQUENCER_WIDTH})")} DESC) AS rn
            FROM storage_object_events
            WHERE {" AND ".join(where)}
        )
        SELECT e.bucket, e.key, e.version_id,
               CASE WHEN e.event_name LIKE 'ObjectCreated:%' THEN e.size END AS new_size,
               s.size AS old_size
        FROM ranked e
        LEFT JOIN storage_snapshot_objects s
               ON s.snapshot_date = :base_date AND s.bucket = e.bucket AND s.key = e.key AND s.version_id = e.version_id
        WHERE e.rn = 1
    """


WINNERS_SCHEMA = pa.schema(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("version_id", pa.string()),
        ("new_size", pa.int64()),
        ("old_size", pa.int64()),
    ]
)
BASE_SCHEMA = pa.schema(
    [
        ("metered_object_type", pa.string()),
        ("object_id", pa.string()),
        ("owner", pa.string()),
        ("usage_amount", pa.int64()),
        ("object_count", pa.int64()),
    ]
)


@dataclass
class LiveStats:
    base: SnapshotRef | None
    keys_changed: int
    keys_out_of_scope: int


def live_usage(
    warehouse: Warehouse,
    scopes: list[Scope],
    rules: list[Rule],
    base: SnapshotRef | None,
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
    winners = warehouse.read_arrow(
        winning_events_sql(warehouse.byte_order, base is not None, until is not None), params, schema=WINNERS_SCHEMA
    )
    if base:
        base_rows = warehouse.read_arrow(
            "SELECT metered_object_type, object_id, owner, usage_amount, object_count FROM usage_data "
            "WHERE snapshot_date = :d AND usage_type = :t",
            {"d": base.snapshot_date, "t": USAGE_TYPE},
            schema=BASE_SCHEMA,
        )
    else:
        base_rows = BASE_SCHEMA.empty_table()
    con = open_session()
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
        SELECT '{USAGE_TYPE}' AS usage_type, metered_object_type, object_id, owner,
               CAST(sum(usage_amount) AS BIGINT) AS usage_amount, CAST(sum(object_count) AS BIGINT) AS object_count
        FROM (SELECT * FROM base_rows UNION ALL BY NAME SELECT * FROM deltas)
        GROUP BY metered_object_type, object_id, owner
        HAVING sum(usage_amount) <> 0 OR sum(object_count) <> 0
        ORDER BY metered_object_type, object_id, owner
    """).to_arrow_table()
    out_of_scope = con.execute("SELECT (SELECT count(*) FROM winners_all) - (SELECT count(*) FROM winners)").fetchall()[
        0
    ][0]
    stats = LiveStats(base, winners.num_rows - out_of_scope, out_of_scope)
    con.close()
    return result, stats


# -- reconciliation --------------------------------------------------------------------------
WARN_DRIFT = 0.001
FAIL_DRIFT = 0.01


def reconcile(snapshot: pa.Table, live: pa.Table) -> list[dict]:
    """Per owner (UNATTRIBUTED:<bucket> for unattributed bytes): snapshot bytes, live bytes,
    difference and drift = |difference| / snapshot bytes (1.0 when the snapshot has none)."""
    con = open_session()
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
        out.append(
            {"owner": owner, "snapshot_bytes": snap_bytes, "live_bytes": live_bytes, "difference": diff, "drift": drift}
        )
    return out


def drift_severity(rows: list[dict]) -> tuple[float, str]:
    worst = max((r["drift"] for r in rows), default=0.0)
    if math.isnan(worst):
        worst = 1.0
    level = "fail" if worst > FAIL_DRIFT else "warn" if worst > WARN_DRIFT else "ok"
    return worst, level
