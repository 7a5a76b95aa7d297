"""The storage domain's assets: the daily snapshot (with its reconciliation check), live usage,
and monthly billing."""

import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from metrics_assets.resources import ObjectStore, QueryEngine, Warehouse
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.metadata import preview
from metrics_assets.resources.warehouse import to_arrow
from metrics_assets.sql_access import DATE, INTEGER
from metrics_assets.storage import (
    billing,
    config,
    inventory,
    inventory_athena,
    reconciliation,
)
from metrics_assets.storage.rules import UNATTRIBUTED
from metrics_assets.storage.usage import (
    conflicting_keys,
    latest_snapshot,
    list_into_duckdb,
    live_usage,
    snapshot_tables,
)

GROUP = "storage"
OWNERS = ["team:metrics"]
START_DATE = "2026-01-01"
#: Per-key listings are kept for this many days before the latest snapshot: enough to
#: reconcile recent days and to rebuild live usage; older ones are pruned.
KEEP_LISTINGS_DAYS = 7
RECONCILIATION_CHECK = "live_matches_snapshot"
OWNER_CHECK = "one_owner_per_object"

# end_offset=1: today's partition exists, so the snapshot of today (the backfill of a bucket
# never metered) and the month in progress can be materialized.
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=START_DATE, end_offset=1)


def _config(context):
    """Scopes and rules, or a failed run naming what to fix."""
    try:
        return config.buckets(), config.rules()
    except config.ConfigurationError as error:
        raise dg.Failure(description=str(error)) from error


def _manifests(object_store: ObjectStore, scopes, snapshot_date: date) -> dict:
    """Source bucket -> the day's inventory manifest, for every STORAGE_INVENTORY entry; a run
    that cannot find or read one fails naming the setting and the place."""
    try:
        locations = config.inventories()
        manifests = {}
        for location in locations:
            found = inventory.latest_manifest(object_store, location, snapshot_date)
            if found is None:
                raise config.ConfigurationError(
                    f"{inventory.SETTING}: no inventory of {snapshot_date} under {location.url} "
                    f"(no {snapshot_date}THH-MMZ/manifest.json). S3 publishes it daily; wait for it, or remove "
                    "this entry to list the bucket instead."
                )
            manifests[found.source_bucket] = found
    except config.ConfigurationError as error:
        raise dg.Failure(description=str(error)) from error
    return manifests


def gb(value: float | None) -> str:
    """Bytes for people: '1.50 GB' (10^9 bytes, as billed)."""
    return f"{float(value or 0) / 1e9:,.2f} GB"


def _with_gb(rows: list[dict], *columns: str) -> list[dict]:
    return [r | {c: gb(r[c]) for c in columns if c in r} for r in rows]


def reconciliation_result(warehouse: Warehouse, scopes, rules, run) -> dg.AssetCheckResult:
    """live_matches_snapshot's result for ``run`` (see storage/reconciliation.py)."""
    try:
        delay = config.notification_delay()
    except config.ConfigurationError as error:
        raise dg.Failure(description=str(error)) from error
    verdict = reconciliation.evaluate(warehouse, scopes, rules, run, delay)
    metadata = dict(verdict.metadata)
    if verdict.differences is not None:
        metadata["differences"] = preview(
            verdict.differences, limit=50, columns=["owner", "snapshot_bytes", "live_bytes", "difference", "drift"]
        )
    return dg.AssetCheckResult(
        check_name=RECONCILIATION_CHECK,
        passed=verdict.passed,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR if verdict.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
    )


def _owner_check(conflicts: list[dict], keys: list[dict], n_conflicting: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=OWNER_CHECK,
        passed=n_conflicting == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "conflicting_objects": n_conflicting,
            "owners": preview(
                _with_gb(conflicts, "usage_amount"),
                limit=50,
                columns=["metered_object_type", "object_id", "owner", "object_location", "usage_amount"],
            ),
            "keys": preview(
                keys, limit=50, columns=["metered_object_type", "object_id", "owner", "key", "version_id", "size"]
            ),
            "what_was_done": "each owner is billed its own bytes (one usage_data row per owner); rename the ids or fix the rules",
        },
    )


SNAPSHOT_OBJECTS = "storage_snapshot_objects"
SNAPSHOT_RUNS = "storage_snapshot_runs"
OBJECT_EVENTS = "storage_object_events"
DEAD_LETTERS = "storage_dead_letters"
INGEST_STATE = "storage_ingest_state"
_NOT_A_RUN = (
    " Written by s3_notifications_sensor, not by a run: each tick commits what it read from the queue "
    "before deleting it there, and a run per tick (every 30 s) would only wrap that write; so this is an "
    "external asset (it cannot be materialized), and the sensor reports a materialization of it on each "
    "tick that changes it."
)

#: The tables s3_notifications_sensor writes, declared so the lineage shows them
#: (storage_object_events -> usage_live) and their history is the sensor's reported events.
notification_tables = [
    dg.AssetSpec(
        OBJECT_EVENTS,
        description=(
            "Every S3 event notification of the metered buckets, one row per (bucket, key, sequencer): "
            "what usage_live applies on top of the latest snapshot." + _NOT_A_RUN
        ),
        group_name=GROUP,
        kinds={"sqs", "postgres"},
        owners=OWNERS,
        metadata={"dagster/table_name": OBJECT_EVENTS},
    ),
    dg.AssetSpec(
        DEAD_LETTERS,
        description=(
            "Notification messages (or records) that could not be stored, with their body and the reason, "
            "acknowledged so they never block the queue." + _NOT_A_RUN
        ),
        group_name=GROUP,
        kinds={"sqs", "postgres"},
        owners=OWNERS,
        metadata={"dagster/table_name": DEAD_LETTERS},
    ),
    dg.AssetSpec(
        INGEST_STATE,
        description=(
            "The sensor's watermark queue_drained_at: when it last read the queue empty, which "
            "live_matches_snapshot waits for." + _NOT_A_RUN
        ),
        group_name=GROUP,
        kinds={"postgres"},
        owners=OWNERS,
        metadata={"dagster/table_name": INGEST_STATE},
    ),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "usage_snapshot",
            description=(
                "Bytes stored per metered object and owner on a day (the usage_data rows), from a full listing "
                "of every configured bucket and prefix (STORAGE_BUCKETS; every version of a bucket with "
                "versioning, noncurrent bytes counted apart), or from the day's S3 Inventory report where "
                "STORAGE_INVENTORY names one (scanned by DuckDB locally, by Athena in production), attributed "
                "by the rules (STORAGE_RULES_FILE). Materializing today's partition on a bucket never metered "
                "is its backfill."
            ),
            group_name=GROUP,
            kinds={"s3", "duckdb", "postgres"},
            owners=OWNERS,
            metadata={"dagster/table_name": "usage_data"},
        ),
        dg.AssetSpec(
            SNAPSHOT_OBJECTS,
            description=(
                "The snapshot's per-version listing (bucket, key, version id, size), kept for the last "
                f"{KEEP_LISTINGS_DAYS} days before the latest snapshot: the base live usage starts from. Not kept "
                "for inventories scanned on Athena (see README, S3 Inventory)."
            ),
            group_name=GROUP,
            kinds={"postgres"},
            owners=OWNERS,
            metadata={"dagster/table_name": SNAPSHOT_OBJECTS},
        ),
        dg.AssetSpec(
            SNAPSHOT_RUNS,
            description=(
                "One row per snapshot day: when it was listed, the time it stands for, its source "
                "(listing, inventory, athena-inventory...), its totals and its reconciliation state."
            ),
            group_name=GROUP,
            kinds={"postgres"},
            owners=OWNERS,
            metadata={"dagster/table_name": SNAPSHOT_RUNS},
        ),
    ],
    partitions_def=daily_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            OWNER_CHECK,
            asset="usage_snapshot",
            description="Every metered object id has one owner: an id claimed by two owners fails (ERROR), naming the keys.",
        )
    ],
    # One computation writes the three tables in one transaction: selecting any of them runs it
    # whole; the ones not selected are recorded as runtime materializations of the same run.
    can_subset=True,
)
def usage_snapshot(
    context: dg.AssetExecutionContext, object_store: ObjectStore, warehouse: Warehouse, query_engine: QueryEngine
):
    scopes, rules = _config(context)
    # Production (the query engine is Athena): inventories are scanned in S3 by Athena, and only
    # the per-object aggregates come back. Locally: DuckDB reads the data files in place.
    on_athena = query_engine.dialect == "athena"
    snapshot_date = date.fromisoformat(context.partition_key)
    day_end = datetime.combine(snapshot_date + timedelta(days=1), datetime.min.time(), UTC)
    listed_at = datetime.now(UTC)
    con = open_session()
    versioned: list[str] = []
    manifests = _manifests(object_store, scopes, snapshot_date)
    status = {scope.bucket: object_store.versioning(scope.bucket) for scope in scopes}

    def pages():
        for scope in scopes:
            if scope.bucket in manifests:
                continue
            if status[scope.bucket]:
                versioned.append(f"{scope.bucket} ({status[scope.bucket]})")
                context.log.info(
                    f"listing every version of s3://{scope.bucket}/{scope.prefix} (versioning {status[scope.bucket]})"
                )
                yield from object_store.list_version_pages(scope.bucket, scope.prefix)
            else:
                context.log.info(f"listing s3://{scope.bucket}/{scope.prefix}")
                yield from object_store.list_pages(scope.bucket, scope.prefix)

    started = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="storage_inventory_")  # copies of remote inventory files
    keys_listed = list_into_duckdb(con, pages(), table="listed", log=context.log.info)
    relations, inventories_used = ["SELECT * FROM listed"], []
    athena = inventory_athena.AthenaScan(log=context.log.info)
    for scope in scopes:
        manifest = manifests.get(scope.bucket)
        if manifest is None:
            continue
        if on_athena:
            rows = athena.scan(query_engine, manifest, scope.prefix, bool(status[scope.bucket]), day_end, rules)
        else:
            relation = inventory.scope_relation(
                object_store, manifest, scope.prefix, bool(status[scope.bucket]), Path(scratch.name)
            )
            relations.append(relation)
            rows = con.execute(f"SELECT count(*) FROM ({relation})").fetchall()[0][0]
        keys_listed += rows
        inventories_used.append(
            f"s3://{manifest.location.bucket}/{manifest.key} ({manifest.file_format}, "
            f"{len(manifest.files)} file(s), {rows:,} rows under '{scope.prefix}'"
            f"{', scanned on Athena' if on_athena else ''})"
        )
        context.log.info(f"inventory: {inventories_used[-1]}")
        # The snapshot stands for the time the inventory was taken, as a listing's for its start.
        listed_at = min(listed_at, manifest.created_at)
    con.execute("CREATE VIEW listing AS " + " UNION ALL ".join(relations))
    listing_s = time.perf_counter() - started
    source = (
        "inventory"
        if manifests and len(inventories_used) == len(scopes)
        else ("inventory+listing" if manifests else "listing")
    )
    if athena.queries:
        # No per-key baseline for the buckets Athena scanned (their keys never leave S3): this
        # snapshot is not a base for live usage (usage.latest_snapshot skips it).
        source = "athena-" + source
    extra_parts = None
    if athena.parts:
        athena.load_parts(con, "athena_parts")
        extra_parts = "athena_parts"
    as_of = min(listed_at, day_end)
    # created_at is the time the snapshot stands for: the listing time today, the end of the day
    # for a past day (so reruns of a past day are identical).
    stats = snapshot_tables(con, rules, snapshot_date, cutoff=day_end, created_at=as_of, extra_parts=extra_parts)
    stats.modified_after_day += athena.modified_after_day
    stats.delete_markers += athena.delete_markers
    usage = to_arrow(
        con.sql(
            "SELECT snapshot_date, usage_type, metered_object_type, object_id, owner, object_location, "
            "usage_amount, object_count, noncurrent_bytes, created_at FROM snapshot_usage "
            "ORDER BY metered_object_type, object_id, owner"
        )
    )
    conflicts = con.sql("SELECT * FROM snapshot_conflicts").to_arrow_table().to_pylist()
    keys = conflicting_keys(con, rules)
    if athena.parts and stats.conflicting_objects:
        keys = (keys + athena.conflicting_keys(query_engine, con, rules, day_end))[
            : inventory_athena.CONFLICT_KEYS_LIMIT
        ]
    athena.drop_tables(query_engine)
    context.log.info(f"{keys_listed:,} versions listed in {listing_s:.1f}s; {usage.num_rows:,} metered objects")

    # One transaction of slice replaces (Warehouse.replace_slices): the day's usage_data, its
    # per-version listing (streamed in batches: the first replaces the day's slice, the next
    # ones add to it), its run row, and the listings older than KEEP_LISTINGS_DAYS pruned.
    day = "snapshot_date = :d"
    params = {"d": snapshot_date}
    latest = max(
        snapshot_date,
        warehouse.scalar("SELECT max(snapshot_date) FROM storage_snapshot_runs", type_=DATE) or snapshot_date,
    )
    keep = latest - timedelta(days=KEEP_LISTINGS_DAYS)
    run_row = pa.Table.from_pylist(
        [
            {
                "snapshot_date": snapshot_date,
                "as_of": as_of,
                "listed_at": listed_at,
                "keys_listed": stats.keys_metered,
                "bytes_listed": stats.bytes_metered,
                "source": source,
                "conflicting_objects": stats.conflicting_objects,
                "reconciliation": "unchecked",
            }
        ]
    )

    def writes():
        yield "usage_data", usage, day, params
        where = day
        for batch in con.sql(
            "SELECT CAST(? AS DATE) AS snapshot_date, bucket, key, version_id, size FROM snapshot_keys",
            params=[snapshot_date],
        ).to_arrow_reader(200_000):
            yield "storage_snapshot_objects", pa.Table.from_batches([batch]), where, params
            where = "1 = 0"  # the day's slice is already cleared: the next batches only add
        if where == day:
            yield "storage_snapshot_objects", [], day, params
        yield "storage_snapshot_runs", run_row, day, params
        yield "storage_snapshot_objects", [], "snapshot_date < :keep", {"keep": keep}

    written = warehouse.replace_slices(writes())
    con.close()
    scratch.cleanup()

    owners = len({o for o in usage.column("owner").to_pylist() if o is not None})
    top = _with_gb(
        usage.sort_by([("usage_amount", "descending")]).slice(0, 10).to_pylist(), "usage_amount", "noncurrent_bytes"
    )
    results: dict[str, dict[str, Any]] = {
        SNAPSHOT_OBJECTS: {
            "dagster/row_count": written.get(SNAPSHOT_OBJECTS, 0),
            "per_key_baseline": ("not kept for the inventories scanned on Athena" if athena.queries else "kept"),
            "kept_from": keep.isoformat(),
        },
        SNAPSHOT_RUNS: {
            "dagster/row_count": 1,
            "source": source,
            "as_of": as_of.isoformat(),
            "listed_at": listed_at.isoformat(),
            "reconciliation": "unchecked",
        },
    }
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    for key, metadata in results.items():
        if key in selected:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
        else:
            context.log_event(
                dg.AssetMaterialization(asset_key=key, partition=context.partition_key, metadata=metadata)
            )
    if "usage_snapshot" not in selected:
        return
    yield dg.MaterializeResult(
        asset_key="usage_snapshot",
        metadata={
            "dagster/row_count": usage.num_rows,
            "preview": preview(
                top,
                columns=[
                    "metered_object_type",
                    "object_id",
                    "owner",
                    "object_location",
                    "usage_amount",
                    "noncurrent_bytes",
                    "object_count",
                ],
            ),
            "source": source,
            "inventories": dg.MetadataValue.md("\n".join(f"- {i}" for i in inventories_used) or "_none: listed_"),
            "buckets": ", ".join(f"{s.bucket}/{s.prefix}" for s in scopes),
            "versioned_buckets": ", ".join(versioned) or "none",
            # business figures, numeric and named the same on every run (the Plots tab charts them)
            "bytes_metered": dg.MetadataValue.int(stats.bytes_metered),
            "gb_metered": dg.MetadataValue.float(stats.bytes_metered / 1e9),
            "noncurrent_bytes": dg.MetadataValue.int(stats.noncurrent_bytes),
            "objects_metered": dg.MetadataValue.int(stats.keys_metered),
            "noncurrent_versions": dg.MetadataValue.int(stats.noncurrent_versions),
            "owners": dg.MetadataValue.int(owners),
            "keys_listed": keys_listed,
            "keys_metered": stats.keys_metered,
            "delete_markers": stats.delete_markers,
            "listing_seconds": round(listing_s, 2),
            "listed_at": listed_at.isoformat(),
            "snapshot_as_of": as_of.isoformat(),
            "unattributed_keys": stats.unattributed_keys,
            "skipped_modified_after_day": stats.modified_after_day,
            "conflicting_objects": stats.conflicting_objects,
            "listings_kept_from": keep.isoformat(),
            "snapshot_objects_rows": written.get("storage_snapshot_objects", 0),
            "query_engine": query_engine.dialect,
            "athena_queries": athena.queries,
            "athena_bytes_scanned": dg.MetadataValue.int(athena.bytes_scanned),
            **(
                {"athena_estimated_cost_usd": dg.MetadataValue.float(round(athena.cost_usd, 6))}
                if athena.queries
                else {}
            ),
            "per_key_baseline": (
                "not kept for the inventories scanned on Athena: not a base for usage_live"
                if athena.queries
                else "kept in storage_snapshot_objects"
            ),
            "human": f"{gb(stats.bytes_metered)} metered ({gb(stats.noncurrent_bytes)} noncurrent) for {owners} owners",
        },
        check_results=[_owner_check(conflicts, keys, stats.conflicting_objects)]
        if dg.AssetCheckKey(dg.AssetKey("usage_snapshot"), OWNER_CHECK) in context.selected_asset_check_keys
        else [],
    )


@dg.asset_check(
    asset="usage_snapshot",
    name=RECONCILIATION_CHECK,
    blocking=False,
    description=(
        "Per owner, live usage as of the latest snapshot's time (the previous snapshot plus the S3 events "
        "with eventTime up to then) against that snapshot: warns above 0.1% drift, fails above 1%. "
        "Pending (WARN, not a failure of the figures) until s3_notifications_sensor has read the queue "
        "empty after the listing; the sensor then re-runs it."
    ),
)
def live_matches_snapshot(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    scopes, rules = _config(context)
    return reconciliation_result(warehouse, scopes, rules, reconciliation.latest_listed_run(warehouse))


@dg.asset(
    description=(
        "The current bytes per metered object: the latest snapshot, with every S3 event recorded since "
        "(storage_object_events) applied on top; per key the highest sequencer wins. Requested by "
        "s3_notifications_sensor whenever new events are committed."
    ),
    group_name=GROUP,
    kinds={"duckdb", "postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "usage_live"},
    deps=[
        dg.AssetDep("usage_snapshot", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep(SNAPSHOT_OBJECTS, partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep(OBJECT_EVENTS),
    ],
)
def usage_live(context: dg.AssetExecutionContext, warehouse: Warehouse):
    scopes, rules = _config(context)
    as_of = datetime.now(UTC)
    base = latest_snapshot(warehouse)
    context.log.info(f"starting from snapshot {base.snapshot_date if base else '(none)'}")
    live, stats = live_usage(warehouse, scopes, rules, base)
    live = live.append_column("as_of", pa.array([as_of] * live.num_rows, pa.timestamp("us", tz="UTC")))
    rows = warehouse.replace_slice("usage_live", live)
    dead = warehouse.scalar("SELECT count(*) FROM storage_dead_letters", type_=INTEGER)
    top = _with_gb(live.sort_by([("usage_amount", "descending")]).slice(0, 10).to_pylist(), "usage_amount")
    total = int(pc.sum(live["usage_amount"]).as_py() or 0)
    owners = len({o for o in live.column("owner").to_pylist() if o is not None})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "preview": preview(
                top, columns=["metered_object_type", "object_id", "owner", "usage_amount", "object_count"]
            ),
            "base_snapshot": str(base.snapshot_date) if base else "none",
            "base_as_of": base.as_of.isoformat() if base else "none",
            "keys_changed_since_snapshot": stats.keys_changed,
            "skipped_out_of_scope_keys": stats.keys_out_of_scope,
            # business figures, numeric and stable (the Plots tab charts them)
            "bytes_total": dg.MetadataValue.int(total),
            "gb_total": dg.MetadataValue.float(total / 1e9),
            "objects_total": dg.MetadataValue.int(int(pc.sum(live["object_count"]).as_py() or 0)),
            "owners": dg.MetadataValue.int(owners),
            "bytes_unattributed": dg.MetadataValue.int(
                int(
                    pc.sum(live.filter(pc.equal(live["metered_object_type"], UNATTRIBUTED))["usage_amount"]).as_py()
                    or 0
                )
            ),
            "dead_letters_total": dead,
            "human": f"{gb(total)} live for {owners} owners",
        }
    )


@dg.asset(
    description=(
        "GB-days per owner per calendar month (monthly partitions, the month in progress included): "
        "the bytes each owner held in each daily snapshot / 10^9, summed over the month's days. "
        "Unattributed bytes are not billed; they are reported in the metadata."
    ),
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "storage_billing_monthly"},
    partitions_def=monthly_partitions,
    deps=[dg.AssetDep("usage_snapshot", partition_mapping=dg.TimeWindowPartitionMapping())],
)
def storage_billing_monthly(context: dg.AssetExecutionContext, warehouse: Warehouse):
    window = context.partition_time_window
    month = window.start.date()
    bill = billing.monthly_bill(warehouse, month, window.end.date(), datetime.now(UTC))
    frame, days, missing, unattributed = bill.rows, bill.days, bill.missing, bill.unattributed_byte_days
    rows = warehouse.replace_slice("storage_billing_monthly", frame, "month = :m", {"m": month})
    context.log.info(f"{month:%Y-%m}: {rows} owners billed over {len(days)} snapshot days")
    shown = frame.sort_values("gb_days", ascending=False).head(10).to_dict("records")
    shown = [r | {"gb_days": f"{r['gb_days']:,.3f} GB-days"} for r in shown]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "preview": preview(shown, columns=["owner", "gb_days", "days_measured"]),
            "days_measured": len(days),
            "skipped_days_without_snapshot": dg.MetadataValue.json(missing),
            # business figures, numeric and stable (the Plots tab charts them)
            "owners_billed": dg.MetadataValue.int(rows),
            "gb_days_total": dg.MetadataValue.float(float(frame["gb_days"].sum())),
            "unattributed_byte_days": dg.MetadataValue.int(unattributed),
        }
    )
