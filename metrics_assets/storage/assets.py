"""The storage domain's assets: the daily snapshot (with its reconciliation check), live usage,
and monthly billing."""


import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from metrics_assets.resources import ObjectStore, Warehouse
from metrics_assets.resources.metadata import preview
from metrics_assets.resources.warehouse import to_arrow
from metrics_assets.storage import config
from metrics_assets.storage.rules import UNATTRIBUTED, USAGE_TYPE
from metrics_assets.storage.usage import (
    FAIL_DRIFT,
    WARN_DRIFT,
    drift_severity,
    duckdb_connection,
    latest_snapshot,
    list_into_duckdb,
    live_usage,
    reconcile,
    snapshot_tables,
)

GROUP = "storage"
OWNERS = ["team:metrics"]
START_DATE = "2026-01-01"
#: Per-key listings are kept for this many days before the latest snapshot: enough to
#: reconcile recent days and to rebuild live usage; older ones are pruned.
KEEP_LISTINGS_DAYS = 7
RECONCILIATION_CHECK = "live_matches_snapshot"

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


def _check_result(snapshot_rows: pa.Table, live: pa.Table | None, base, as_of) -> dg.AssetCheckResult:
    if live is None:
        return dg.AssetCheckResult(
            check_name=RECONCILIATION_CHECK, passed=True,
            metadata={"compared": False, "reason": "no earlier snapshot with a kept listing: nothing to start live usage from"},
        )
    rows = reconcile(snapshot_rows, live)
    worst, level = drift_severity(rows)
    differing = [r | {"drift": f"{r['drift']:.4%}"} for r in rows if r["difference"] != 0]
    return dg.AssetCheckResult(
        check_name=RECONCILIATION_CHECK,
        passed=level == "ok",
        severity=dg.AssetCheckSeverity.ERROR if level == "fail" else dg.AssetCheckSeverity.WARN,
        metadata={
            "compared": True,
            "live_from_snapshot": str(base.snapshot_date),
            "live_as_of": as_of.isoformat(),
            "owners_compared": len(rows),
            "owners_differing": len(differing),
            "max_drift": float(worst),
            "warn_above": WARN_DRIFT,
            "fail_above": FAIL_DRIFT,
            "differences": preview(differing, limit=50, columns=["owner", "snapshot_bytes", "live_bytes", "difference", "drift"]),
        },
    )


@dg.asset(
    name="usage_snapshot",
    description=(
        "Bytes stored per metered object on a day, from a full listing of every configured bucket and "
        "prefix (STORAGE_BUCKETS), attributed by the rules (STORAGE_RULES_FILE). Writes usage_data, the "
        "per-key listing kept for live usage (storage_snapshot_objects) and storage_snapshot_runs. "
        "Materializing today's partition on a bucket never metered is its backfill."
    ),
    group_name=GROUP,
    kinds={"s3", "duckdb", "postgres"},
    owners=OWNERS,
    partitions_def=daily_partitions,
    check_specs=[dg.AssetCheckSpec(
        RECONCILIATION_CHECK, asset="usage_snapshot",
        description=("Per owner, live usage as of the snapshot's time (the previous snapshot plus the S3 events "
                     "since) against this snapshot: warns above 0.1% drift, fails above 1%."),
    )],
)
def usage_snapshot(context: dg.AssetExecutionContext, object_store: ObjectStore, warehouse: Warehouse):
    scopes, rules = _config(context)
    snapshot_date = date.fromisoformat(context.partition_key)
    day_end = datetime.combine(snapshot_date + timedelta(days=1), datetime.min.time(), UTC)
    listed_at = datetime.now(UTC)
    as_of = min(listed_at, day_end)
    con = duckdb_connection()

    def pages():
        for scope in scopes:
            context.log.info(f"listing s3://{scope.bucket}/{scope.prefix}")
            yield from object_store.list_pages(scope.bucket, scope.prefix)

    started = time.perf_counter()
    keys_listed = list_into_duckdb(con, pages(), log=context.log.info)
    listing_s = time.perf_counter() - started
    # created_at is the time the snapshot stands for: the listing time today, the end of the day
    # for a past day (so reruns of a past day are identical).
    stats = snapshot_tables(con, rules, snapshot_date, cutoff=day_end, created_at=as_of)
    usage = to_arrow(con.sql(
        "SELECT snapshot_date, usage_type, metered_object_type, object_id, owner, object_location, "
        "usage_amount, object_count, created_at FROM snapshot_usage ORDER BY metered_object_type, object_id"))
    context.log.info(f"{keys_listed:,} keys listed in {listing_s:.1f}s; {usage.num_rows:,} metered objects")

    with warehouse.begin() as conn:
        params = {"d": snapshot_date}
        conn.execute(sa.text("DELETE FROM usage_data WHERE snapshot_date = :d"), params)
        warehouse.load(conn, "usage_data", usage)
        conn.execute(sa.text("DELETE FROM storage_snapshot_objects WHERE snapshot_date = :d"), params)
        reader = con.sql("SELECT CAST(? AS DATE) AS snapshot_date, bucket, key, size FROM snapshot_keys",
                         params=[snapshot_date]).to_arrow_reader(200_000)
        for batch in reader:
            warehouse.load(conn, "storage_snapshot_objects", pa.Table.from_batches([batch]))
        conn.execute(sa.text("DELETE FROM storage_snapshot_runs WHERE snapshot_date = :d"), params)
        conn.execute(sa.text(
            "INSERT INTO storage_snapshot_runs (snapshot_date, as_of, listed_at, keys_listed, bytes_listed) "
            "VALUES (:d, :as_of, :listed_at, :keys, :bytes)"),
            params | {"as_of": as_of, "listed_at": listed_at, "keys": stats.keys_metered, "bytes": stats.bytes_metered})
        latest = conn.execute(sa.text("SELECT max(snapshot_date) FROM storage_snapshot_runs")).scalar()
        latest = latest if isinstance(latest, date) else date.fromisoformat(str(latest)[:10])
        pruned = conn.execute(sa.text("DELETE FROM storage_snapshot_objects WHERE snapshot_date < :keep"),
                              {"keep": latest - timedelta(days=KEEP_LISTINGS_DAYS)}).rowcount
    con.close()

    base = latest_snapshot(warehouse, before=snapshot_date)
    live = live_usage(warehouse, scopes, rules, base, until=as_of)[0] if base else None
    check = _check_result(usage.select(["metered_object_type", "object_id", "owner", "usage_amount"]), live, base, as_of)

    top = usage.sort_by([("usage_amount", "descending")]).slice(0, 10).to_pylist()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": usage.num_rows,
            "preview": preview(top, columns=["metered_object_type", "object_id", "owner", "object_location", "usage_amount", "object_count"]),
            "buckets": ", ".join(f"{s.bucket}/{s.prefix}" for s in scopes),
            "keys_listed": keys_listed,
            "keys_metered": stats.keys_metered,
            "bytes_metered": stats.bytes_metered,
            "listing_seconds": round(listing_s, 2),
            "listed_at": listed_at.isoformat(),
            "snapshot_as_of": as_of.isoformat(),
            "unattributed_keys": stats.unattributed_keys,
            "skipped_modified_after_day": stats.modified_after_day,
            "conflicting_objects": stats.conflicting_objects,
            "listings_pruned": pruned,
        },
        check_results=[check],
    )


@dg.asset(
    name="usage_live",
    description=(
        "The current bytes per metered object: the latest snapshot, with every S3 event recorded since "
        "(storage_object_events) applied on top; per key the highest sequencer wins. Requested by "
        "s3_notifications_sensor whenever new events are committed."
    ),
    group_name=GROUP,
    kinds={"duckdb", "postgres"},
    owners=OWNERS,
    deps=[dg.AssetDep("usage_snapshot", partition_mapping=dg.AllPartitionMapping())],
)
def usage_live(context: dg.AssetExecutionContext, warehouse: Warehouse):
    scopes, rules = _config(context)
    as_of = datetime.now(UTC)
    base = latest_snapshot(warehouse)
    context.log.info(f"starting from snapshot {base.snapshot_date if base else '(none)'}")
    live, stats = live_usage(warehouse, scopes, rules, base)
    live = live.append_column("as_of", pa.array([as_of] * live.num_rows, pa.timestamp("us", tz="UTC")))
    rows = warehouse.replace_slice("usage_live", live)
    dead = warehouse.scalar("SELECT count(*) FROM storage_dead_letters")
    top = live.sort_by([("usage_amount", "descending")]).slice(0, 10).to_pylist()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "preview": preview(top, columns=["metered_object_type", "object_id", "owner", "usage_amount", "object_count"]),
        "base_snapshot": str(base.snapshot_date) if base else "none",
        "base_as_of": base.as_of.isoformat() if base else "none",
        "keys_changed_since_snapshot": stats.keys_changed,
        "skipped_out_of_scope_keys": stats.keys_out_of_scope,
        "bytes_total": int(pc.sum(live["usage_amount"]).as_py() or 0),
        "bytes_unattributed": int(pc.sum(
            live.filter(pc.equal(live["metered_object_type"], UNATTRIBUTED))["usage_amount"]).as_py() or 0),
        "dead_letters_total": int(dead or 0),
    })


@dg.asset(
    name="storage_billing_monthly",
    description=(
        "GB-days per owner per calendar month (monthly partitions, the month in progress included): "
        "the bytes each owner held in each daily snapshot / 10^9, summed over the month's days. "
        "Unattributed bytes are not billed; they are reported in the metadata."
    ),
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    partitions_def=monthly_partitions,
    deps=[dg.AssetDep("usage_snapshot", partition_mapping=dg.TimeWindowPartitionMapping())],
)
def storage_billing_monthly(context: dg.AssetExecutionContext, warehouse: Warehouse):
    window = context.partition_time_window
    month = window.start.date()
    params = {"start": month, "end": window.end.date(), "t": USAGE_TYPE}
    frame = warehouse.read_df(
        "SELECT owner, sum(usage_amount) AS byte_days FROM usage_data "
        "WHERE usage_type = :t AND owner IS NOT NULL AND snapshot_date >= :start AND snapshot_date < :end "
        "GROUP BY owner ORDER BY owner", params)
    days = [str(d)[:10] for d in warehouse.read_df(
        "SELECT snapshot_date FROM storage_snapshot_runs WHERE snapshot_date >= :start AND snapshot_date < :end "
        "ORDER BY snapshot_date", params)["snapshot_date"]]
    unattributed = warehouse.scalar(
        "SELECT coalesce(sum(usage_amount), 0) FROM usage_data WHERE usage_type = :t AND owner IS NULL "
        "AND snapshot_date >= :start AND snapshot_date < :end", params)
    frame["byte_days"] = frame["byte_days"].astype("int64")
    frame["gb_days"] = frame["byte_days"] / 1e9
    frame["month"] = month
    frame["days_measured"] = len(days)
    frame["computed_at"] = datetime.now(UTC)
    rows = warehouse.replace_slice("storage_billing_monthly", frame, "month = :m", {"m": month})
    last_day = min(window.end, datetime.now(UTC) + timedelta(days=1)).date()
    expected = [str(month + timedelta(days=i)) for i in range((last_day - month).days)]
    missing = [d for d in expected if d not in set(days)]
    context.log.info(f"{month:%Y-%m}: {rows} owners billed over {len(days)} snapshot days")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "preview": preview(frame.sort_values("gb_days", ascending=False),
                           columns=["owner", "gb_days", "byte_days", "days_measured"]),
        "days_measured": len(days),
        "skipped_days_without_snapshot": dg.MetadataValue.json(missing),
        "unattributed_byte_days": int(unattributed or 0),
        "gb_days_total": float(frame["gb_days"].sum()),
    })
