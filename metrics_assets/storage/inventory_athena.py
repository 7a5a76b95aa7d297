"""S3 Inventory scanned where it lies, on Athena (production).

In production the inventory's data files stay in S3: ``usage_snapshot`` creates an external
table over the report (AWS, "Querying Amazon S3 Inventory with Amazon Athena",
storage-inventory-athena-query.html) and runs the attribution there, fetching only one row per
(bucket, rule, location) - one per metered object and owner - never the keys themselves.

* S3 writes, next to each report's ``manifest.json``, a Hive-compatible manifest
  ``<destination-prefix>/<source-bucket>/<config-ID>/hive/dt=YYYY-MM-DD-HH-MM/symlink.txt``
  listing the report's data files (storage-inventory-location.html). The table reads it with
  ``SymlinkTextInputFormat``, partitioned by ``dt`` with partition projection
  (``projection.dt.type = date``, format ``yyyy-MM-dd-HH-mm``), as AWS's example does.
* Parquet reports: ``ParquetHiveSerDe``, columns read by name (only the ones the snapshot
  needs are declared). CSV reports: ``OpenCSVSerde``, every column of ``fileSchema`` declared
  as a string, in order, and cast in the query (keys URL-encoded, '+' for a space).
* One table per report (its name carries the source bucket, the configuration and ``dt``),
  with the projection's range that one ``dt``: two runs of different days never replace each
  other's table while one of them queries it. The asset drops it afterwards.

The attribution is :mod:`metrics_assets.storage.rules` written in Trino SQL: per key, the first
rule whose bucket, literal prefix and regex match gives the location (the regex's group 1);
keys are grouped by (bucket, rule, location), and owner and object id are extracted from the
location of each group, as :func:`~metrics_assets.storage.rules.parts_from_location` does
locally. The version rules are :func:`~metrics_assets.storage.usage.snapshot_tables`': versions
and delete markers at or after the cutoff are left out; a key with one is ranked again (its
newest version before the cutoff is current); every other version is current when S3's
``is_latest`` says so.

No Dagster here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from metrics_assets.resources.sqltext import literal
from metrics_assets.storage.inventory import Manifest
from metrics_assets.storage.rules import UNATTRIBUTED, Rule, compile_pattern

SERDE = {
    "Parquet": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "ORC": "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
    "CSV": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
}
SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
IGNORE_KEY_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
# Parquet/ORC types of the columns the snapshot reads (storage-inventory-athena-query.html).
COLUMN_TYPES = {
    "bucket": "string",
    "key": "string",
    "version_id": "string",
    "is_latest": "boolean",
    "is_delete_marker": "boolean",
    "size": "bigint",
    "last_modified_date": "timestamp",
}
#: Most conflicting keys fetched for the one-owner check.
CONFLICT_KEYS_LIMIT = 50


def dt_of(manifest: Manifest) -> str:
    """The report's ``dt`` partition value: folder ``2026-11-29T01-00Z`` -> ``2026-11-29-01-00``."""
    folder = manifest.key[len(manifest.location.prefix) + 1 :].split("/")[0]
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})Z", folder)
    if match is None:
        raise ValueError(f"inventory report folder {folder!r} is not YYYY-MM-DDTHH-MMZ")
    day, hour, minute = match.groups()
    return f"{day}-{hour}-{minute}"


def hive_location(manifest: Manifest) -> str:
    """``s3://<destination-bucket>/<prefix>/<source-bucket>/<config-ID>/hive/``."""
    return f"s3://{manifest.destination_bucket}/{manifest.location.prefix}/hive/"


def table_name(manifest: Manifest) -> str:
    """An Athena table name (lower case, digits, '_') for this report."""
    parts = [*manifest.location.prefix.split("/")[-2:], dt_of(manifest)]
    raw = "storage_inventory_" + "_".join(parts)
    return re.sub(r"[^a-z0-9_]", "_", raw.lower())


def ddl(manifest: Manifest) -> list[str]:
    """DROP then CREATE EXTERNAL TABLE over the report's ``hive/dt=.../symlink.txt``."""
    name = table_name(manifest)
    if manifest.file_format == "CSV":
        columns = ", ".join(f"{c} string" for c in manifest.columns)
        serde = (
            f"ROW FORMAT SERDE {literal(SERDE['CSV'])} "
            "WITH SERDEPROPERTIES ('separatorChar' = ',', 'quoteChar' = '\"', 'escapeChar' = '\\\\')"
        )
    else:
        columns = ", ".join(f"{c} {t}" for c, t in COLUMN_TYPES.items() if c in manifest.columns)
        serde = f"ROW FORMAT SERDE {literal(SERDE[manifest.file_format])}"
    dt = dt_of(manifest)
    location = hive_location(manifest)
    create = (
        f"CREATE EXTERNAL TABLE {name} ({columns}) PARTITIONED BY (dt string) {serde} "
        f"STORED AS INPUTFORMAT {literal(SYMLINK_INPUT)} OUTPUTFORMAT {literal(IGNORE_KEY_OUTPUT)} "
        f"LOCATION {literal(location)} TBLPROPERTIES ("
        "'projection.enabled' = 'true', 'projection.dt.type' = 'date', "
        f"'projection.dt.format' = 'yyyy-MM-dd-HH-mm', 'projection.dt.range' = {literal(dt + ',' + dt)}, "
        "'projection.dt.interval' = '1', 'projection.dt.interval.unit' = 'MINUTES', "
        f"'storage.location.template' = {literal(location + 'dt=${dt}/')})"
    )
    return [f"DROP TABLE IF EXISTS {name}", create]


def drop(manifest: Manifest) -> str:
    return f"DROP TABLE IF EXISTS {table_name(manifest)}"


def _cutoff(cutoff: datetime) -> str:
    return f"TIMESTAMP {literal(cutoff.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3])}"


def rows_sql(manifest: Manifest, prefix: str, versioned: bool) -> str:
    """Trino SELECT of the listing columns (bucket, key, size, last_modified, version_id,
    is_latest, is_delete_marker) from the report's table, only under ``prefix``."""
    cols = set(manifest.columns)
    csv = manifest.file_format == "CSV"
    key = "url_decode(replace(key, '+', '%20'))" if csv else "key"
    size = "CAST(NULLIF(size, '') AS BIGINT)" if csv else "size"

    def flag(name: str, default: str) -> str:
        if name not in cols:
            return default
        return f"coalesce(lower({name}) = 'true', {default})" if csv else f"coalesce({name}, {default})"

    if "last_modified_date" not in cols:
        modified = "TIMESTAMP '1970-01-01 00:00:00.000'"
    elif csv:
        modified = (
            "coalesce(CAST(from_iso8601_timestamp(NULLIF(last_modified_date, '')) AS TIMESTAMP), "
            "TIMESTAMP '1970-01-01 00:00:00.000')"
        )
    else:
        modified = "coalesce(last_modified_date, TIMESTAMP '1970-01-01 00:00:00.000')"
    version = (
        f"coalesce(NULLIF(version_id, ''), {literal('null' if versioned else '')})" if "version_id" in cols else "''"
    )
    where = f"dt = {literal(dt_of(manifest))}"
    if prefix:
        where += f" AND starts_with({key}, {literal(prefix)})"
    return (
        f"SELECT bucket, {key} AS key, coalesce({size}, 0) AS size, {modified} AS last_modified, "
        f"{version} AS version_id, {flag('is_latest', 'true')} AS is_latest, "
        f"{flag('is_delete_marker', 'false')} AS is_delete_marker "
        f"FROM {table_name(manifest)} WHERE {where}"
    )


def stats_sql(manifest: Manifest, prefix: str, versioned: bool, cutoff: datetime) -> str:
    """One row: rows in scope, rows at/after the cutoff, delete markers before it."""
    c = _cutoff(cutoff)
    return (
        f"SELECT count(*) AS rows_listed, count_if(last_modified >= {c}) AS modified_after_day, "
        f"count_if(is_delete_marker AND last_modified < {c}) AS delete_markers "
        f"FROM ({rows_sql(manifest, prefix, versioned)}) AS inventory"
    )


def _keys_sql(manifest: Manifest, prefix: str, versioned: bool, cutoff: datetime) -> str:
    """Stored versions on the day (bucket, key, version_id, size, noncurrent), delete markers
    left out: snapshot_tables' rules."""
    c = _cutoff(cutoff)
    return f"""
        WITH inventory AS ({rows_sql(manifest, prefix, versioned)}),
        late AS (SELECT DISTINCT bucket, key FROM inventory WHERE last_modified >= {c}),
        day AS (SELECT i.*, l.key IS NOT NULL AS changed FROM inventory i
                LEFT JOIN late l ON l.bucket = i.bucket AND l.key = i.key
                WHERE i.last_modified < {c}),
        current AS (
            SELECT bucket, key, version_id, size, is_delete_marker, is_latest AS is_current FROM day WHERE NOT changed
            UNION ALL
            SELECT bucket, key, version_id, size, is_delete_marker,
                   row_number() OVER (PARTITION BY bucket, key ORDER BY last_modified DESC, is_latest DESC) = 1
            FROM day WHERE changed)
        SELECT bucket, key, version_id, size, NOT is_current AS noncurrent FROM current WHERE NOT is_delete_marker"""


def _rule_arms(rules: list[Rule]) -> tuple[str, str]:
    """(rule number, location) CASE expressions over ``bucket``/``key`` for Trino."""
    whens, locations = [], []
    for n, rule in enumerate(rules):
        regex = compile_pattern(rule.pattern)[0]
        guards = []
        if rule.bucket:
            guards.append(f"bucket = {literal(rule.bucket)}")
        if rule.literal_prefix:
            guards.append(f"starts_with(key, {literal(rule.literal_prefix)})")
        guards.append(f"regexp_like(key, {literal(regex)})")
        whens.append(f"WHEN {' AND '.join(guards)} THEN {n}")
        locations.append(f"WHEN {n} THEN regexp_extract(key, {literal(regex)}, 1)")
    if not rules:
        return "CAST(NULL AS INTEGER)", "CAST(NULL AS VARCHAR)"
    return "CASE " + " ".join(whens) + " END", "CASE rule " + " ".join(locations) + " END"


def groups_sql(manifest: Manifest, prefix: str, versioned: bool, cutoff: datetime, rules: list[Rule]) -> str:
    """Trino SQL: per (bucket, rule, location), the bytes, versions and noncurrent ones, with
    metered_object_type, object_id, owner and object_location - the rows
    ``snapshot_tables`` calls ``snapshot_parts``. One row per metered object and owner (one per
    bucket for unattributed keys): what is fetched from Athena."""
    which, location = _rule_arms(rules)
    types = " ".join(f"WHEN {n} THEN {literal(r.metered_object_type)}" for n, r in enumerate(rules))

    def part(group_of: int) -> str:
        if not rules:
            return "CAST(NULL AS VARCHAR)"
        arms = []
        for n, r in enumerate(rules):
            regex, g_owner, g_object, _ = compile_pattern(r.pattern)
            arms.append(f"WHEN {n} THEN regexp_extract(location, {literal(regex)}, {(g_owner, g_object)[group_of]})")
        return "CASE rule " + " ".join(arms) + " END"

    type_case = f"CASE rule {types} END" if rules else "CAST(NULL AS VARCHAR)"
    return f"""
        WITH stored AS ({_keys_sql(manifest, prefix, versioned, cutoff)}),
        ruled AS (SELECT bucket, key, size, noncurrent, {which} AS rule FROM stored),
        located AS (SELECT bucket, size, noncurrent, rule, {location} AS location FROM ruled),
        grouped AS (
            SELECT bucket, rule, location, CAST(sum(size) AS BIGINT) AS usage_amount,
                   CAST(count(*) AS BIGINT) AS object_count,
                   CAST(coalesce(sum(CASE WHEN noncurrent THEN size END), 0) AS BIGINT) AS noncurrent_bytes,
                   CAST(count_if(noncurrent) AS BIGINT) AS noncurrent_versions
            FROM located GROUP BY bucket, rule, location)
        SELECT bucket, rule, location, usage_amount, object_count, noncurrent_bytes, noncurrent_versions,
               CASE WHEN rule IS NULL THEN {literal(UNATTRIBUTED)} ELSE {type_case} END AS metered_object_type,
               CASE WHEN rule IS NULL THEN bucket ELSE {part(1)} END AS object_id,
               CASE WHEN rule IS NULL THEN CAST(NULL AS VARCHAR) ELSE {part(0)} END AS owner,
               's3://' || bucket || '/' || coalesce(location, '') AS object_location
        FROM grouped
        ORDER BY bucket, rule, location"""


def conflict_keys_sql(
    manifest: Manifest,
    prefix: str,
    versioned: bool,
    cutoff: datetime,
    rules: list[Rule],
    places: list[tuple[str, int, str]],
    limit: int = CONFLICT_KEYS_LIMIT,
) -> str:
    """Trino SQL: the stored keys (at most ``limit``) of the groups ``places`` ((bucket, rule,
    location) of object ids two owners claim), for the one-owner check."""
    which, location = _rule_arms(rules)
    wanted = (
        " OR ".join(
            f"(bucket = {literal(b)} AND rule = {int(r)} AND location = {literal(loc)})" for b, r, loc in places
        )
        or "FALSE"
    )
    return f"""
        WITH stored AS ({_keys_sql(manifest, prefix, versioned, cutoff)}),
        ruled AS (SELECT bucket, key, version_id, size, {which} AS rule FROM stored),
        located AS (SELECT bucket, key, version_id, size, rule, {location} AS location FROM ruled)
        SELECT bucket, rule, location, key, version_id, size FROM located
        WHERE {wanted}
        ORDER BY bucket, key, version_id
        LIMIT {int(limit)}"""


PARTS_COLUMNS = (
    "bucket VARCHAR, rule INTEGER, location VARCHAR, usage_amount BIGINT, object_count BIGINT, "
    "noncurrent_bytes BIGINT, noncurrent_versions BIGINT, metered_object_type VARCHAR, object_id VARCHAR, "
    "owner VARCHAR, object_location VARCHAR"
)


@dataclass
class AthenaScan:
    """The Athena side of one snapshot: per report, the table, its counts and its groups.
    ``engine`` is the ``query_engine`` resource (its ``execute`` runs one statement)."""

    log: Callable[[str], None] = print
    parts: list = field(default_factory=list)
    rows_listed: int = 0
    modified_after_day: int = 0
    delete_markers: int = 0
    bytes_scanned: int = 0
    cost_usd: float = 0.0
    queries: int = 0
    _scans: list = field(default_factory=list)  # (manifest, prefix, versioned) per report used

    def _run(self, engine, sql: str):
        result = engine.execute(sql)
        self.bytes_scanned += int(result.bytes_scanned or 0)
        self.cost_usd += result.cost_usd or 0.0
        self.queries += 1
        return result.table

    def scan(
        self, engine, manifest: Manifest, prefix: str, versioned: bool, cutoff: datetime, rules: list[Rule]
    ) -> int:
        """Create the report's table, count its rows and fetch its groups; returns the rows in scope."""
        for statement in ddl(manifest):
            self._run(engine, statement)
        try:
            return self._scan(engine, manifest, prefix, versioned, cutoff, rules)
        except BaseException:
            try:  # leave no table behind a failed scan (the failure is what the run reports)
                engine.execute(drop(manifest))
            except Exception as error:
                self.log(f"Athena: could not drop {table_name(manifest)} after the failure: {error}")
            raise

    def _scan(
        self, engine, manifest: Manifest, prefix: str, versioned: bool, cutoff: datetime, rules: list[Rule]
    ) -> int:
        self._scans.append((manifest, prefix, versioned))
        counts = self._run(engine, stats_sql(manifest, prefix, versioned, cutoff)).to_pylist()[0]
        listed, late, markers = (int(counts[c] or 0) for c in ("rows_listed", "modified_after_day", "delete_markers"))
        self.rows_listed += listed
        self.modified_after_day += late
        self.delete_markers += markers
        groups = self._run(engine, groups_sql(manifest, prefix, versioned, cutoff, rules))
        self.parts.append(groups)
        self.log(
            f"Athena: {table_name(manifest)}: {listed:,} rows under '{prefix}', {groups.num_rows:,} groups fetched"
        )
        return listed

    def load_parts(self, con, table: str) -> None:
        """The fetched groups as a DuckDB table in ``snapshot_parts``' columns and types."""
        con.execute(f"CREATE OR REPLACE TABLE {table} ({PARTS_COLUMNS})")
        names = [c.split()[0] for c in PARTS_COLUMNS.split(", ")]
        for part in self.parts:
            if part.num_rows:
                batch = part.select(names)  # noqa: F841 - read by DuckDB below
                con.execute(f"INSERT INTO {table} SELECT * FROM batch")

    def conflicting_keys(self, engine, con, rules: list[Rule], cutoff: datetime) -> list[dict]:
        """The keys (at most CONFLICT_KEYS_LIMIT) behind the conflicts among Athena's groups,
        shaped as :func:`~metrics_assets.storage.usage.conflicting_keys`' rows."""
        out: list[dict] = []
        for manifest, prefix, versioned in self._scans:
            places = con.execute(
                """SELECT p.bucket, p.rule, p.location, p.metered_object_type, p.object_id, p.owner
                   FROM athena_parts p
                   SEMI JOIN (SELECT DISTINCT metered_object_type, object_id FROM snapshot_conflicts) c
                        USING (metered_object_type, object_id)
                   WHERE p.bucket = ? AND p.rule IS NOT NULL
                   ORDER BY 4, 5, 6 LIMIT 200""",
                [manifest.source_bucket],
            ).fetchall()
            if not places:
                continue
            named = {(b, r, loc): (t, o, w) for b, r, loc, t, o, w in places}
            keys = self._run(
                engine, conflict_keys_sql(manifest, prefix, versioned, cutoff, rules, [p[:3] for p in places])
            )
            for row in keys.to_pylist():
                kind, object_id, owner = named[(row["bucket"], int(row["rule"]), row["location"])]
                out.append(
                    {
                        "metered_object_type": kind,
                        "object_id": object_id,
                        "owner": owner,
                        "key": f"s3://{row['bucket']}/{row['key']}",
                        "version_id": row["version_id"],
                        "size": int(row["size"]),
                    }
                )
        return sorted(out, key=lambda r: (r["metered_object_type"], r["object_id"], r["owner"], r["key"]))

    def drop_tables(self, engine) -> None:
        """Drop the reports' tables (external: the files stay)."""
        for manifest, _, _ in self._scans:
            self._run(engine, drop(manifest))
