"""When the storage assets run: the S3 notifications sensor and the daily schedules."""

import json
import re

import dagster as dg

from metrics_assets.resources import NotificationQueue, Warehouse
from metrics_assets.sql_access import DATE, UTC_DATETIME
from metrics_assets.storage import config
from metrics_assets.storage.assets import (
    DEAD_LETTERS,
    INGEST_STATE,
    OBJECT_EVENTS,
    RECONCILIATION_CHECK,
    live_matches_snapshot,
)
from metrics_assets.storage.ingest import (
    MAX_MESSAGES_PER_TICK,
    MAX_SECONDS_PER_TICK,
    IngestStats,
    drained_at,
    ingest,
)

RECONCILIATION_KEY = dg.AssetCheckKey(dg.AssetKey("usage_snapshot"), RECONCILIATION_CHECK)


def pending_reconciliations(warehouse: Warehouse) -> list[dict]:
    """Snapshots whose reconciliation waited for the queue and can now be decided."""
    drained = drained_at(warehouse)
    if drained is None:
        return []
    try:
        delay = config.notification_delay()
    except config.ConfigurationError:
        return []  # the check itself fails naming the setting
    return warehouse.fetch_all(
        "SELECT snapshot_date, listed_at FROM storage_snapshot_runs WHERE reconciliation = 'pending' "
        "AND listed_at <= :drained ORDER BY listed_at",
        {"drained": drained - delay},
        types={"snapshot_date": DATE, "listed_at": UTC_DATETIME},
    )


def table_events(stats: IngestStats, drained) -> list[dg.AssetMaterialization]:
    """What a tick wrote, as materializations of the external assets naming the sensor's tables
    (assets.notification_tables): one per table the tick changed."""
    events = []
    if stats.events_new:
        events.append(
            dg.AssetMaterialization(
                OBJECT_EVENTS,
                metadata={
                    "rows_added": dg.MetadataValue.int(stats.events_new),
                    "messages": dg.MetadataValue.int(stats.messages),
                    "skipped_duplicates": dg.MetadataValue.int(stats.duplicates),
                    "skipped_test_events": dg.MetadataValue.int(stats.test_events),
                    "sequencer_derived": dg.MetadataValue.int(stats.sequencer_derived),
                },
            )
        )
    if stats.dead_letters:
        events.append(
            dg.AssetMaterialization(
                DEAD_LETTERS,
                metadata={
                    "rows_added": dg.MetadataValue.int(stats.dead_letters),
                    "refused_by_the_database": dg.MetadataValue.int(stats.insert_failures),
                },
            )
        )
    if stats.queue_emptied and drained is not None:
        events.append(dg.AssetMaterialization(INGEST_STATE, metadata={"queue_drained_at": drained.isoformat()}))
    return events


usage_snapshot_job = dg.define_asset_job(
    "storage_usage_snapshot_job",
    selection=["usage_snapshot", "storage_snapshot_objects", "storage_snapshot_runs"],
    description="The daily listing of the metered buckets.",
)
storage_billing_job = dg.define_asset_job(
    "storage_billing_job",
    selection=["storage_billing_monthly"],
    description="GB-days per owner for one month.",
)

# Late in the day, so the snapshot is of the day it is labelled with (today's partition).
usage_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    usage_snapshot_job,
    name="storage_usage_snapshot_daily",
    hour_of_day=23,
    minute_of_hour=45,
    description="Lists the metered buckets at 23:45 UTC: today's usage_snapshot.",
)


@dg.schedule(
    name="storage_billing_daily",
    cron_schedule="55 23 * * *",
    job=storage_billing_job,
    execution_timezone="UTC",
    description="Recomputes the month in progress after each day's snapshot.",
)
def storage_billing_daily(context: dg.ScheduleEvaluationContext):
    month = context.scheduled_execution_time.date().replace(day=1).isoformat()
    return dg.RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)


_PREVIEW_LOG_KEY = re.compile(r"\d{8}_\d{6}")


def is_preview(context: dg.SensorEvaluationContext) -> bool:
    """Whether this evaluation is a preview (``dagster sensor preview``, the UI's "Test
    sensor") rather than a daemon tick. The daemon passes the tick's log key, ending in the
    tick id; the preview passes none, and Dagster then makes one ending in a
    ``YYYYmmdd_HHMMSS`` timestamp (dagster/_core/definitions/sensor_definition.py). Direct
    calls (tests, ``build_sensor_context``) have no log key and are ticks."""
    log_key = context.log_key
    return log_key is not None and len(log_key) > 0 and bool(_PREVIEW_LOG_KEY.fullmatch(str(log_key[-1])))


@dg.sensor(
    name="s3_notifications_sensor",
    target=dg.AssetSelection.assets("usage_live") | dg.AssetSelection.checks(live_matches_snapshot),
    minimum_interval_seconds=30,
    description=(
        "Reads S3 event notifications (SQS in production, the spool folder locally; SNS envelopes "
        "unwrapped), records them in storage_object_events (storage_dead_letters for what cannot be stored, "
        "storage_ingest_state for when it read the queue empty: external assets, a materialization of each "
        "reported on the tick that changes it), deletes them from the queue once committed, "
        f"and requests usage_live; once it has read the queue empty after a snapshot's listing, it re-runs "
        f"that snapshot's pending live_matches_snapshot check. At most {MAX_MESSAGES_PER_TICK:,} messages or {MAX_SECONDS_PER_TICK:.0f} s "
        "a tick; the rest waits in the queue for the next tick."
    ),
)
def s3_notifications_sensor(
    context: dg.SensorEvaluationContext, notification_queue: NotificationQueue, warehouse: Warehouse
):
    if is_preview(context):
        # `dagster sensor preview` and the UI's "Test sensor": look, do not touch.
        stats = ingest(notification_queue, warehouse, dry_run=True)
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"preview: {stats.messages} message(s) waiting at the head of the queue would give "
                f"{stats.events_received} event(s), {stats.test_events} test event(s), {stats.dead_letters} dead "
                "letter(s); nothing was recorded or deleted"
            )
        )
    stats = ingest(notification_queue, warehouse, log=context.log.info)
    previous = json.loads(context.cursor) if context.cursor else {}
    totals = previous.get("totals", {})
    for name in ("messages", "events_new", "duplicates", "test_events", "dead_letters"):
        totals[name] = int(totals.get(name, 0)) + int(getattr(stats, name))
    context.update_cursor(
        json.dumps({"last_tick": stats.as_dict(), "more_waiting": stats.budget_exhausted, "totals": totals})
    )
    summary = (
        f"{stats.messages} messages: {stats.events_new} new events, {stats.duplicates} duplicates, "
        f"{stats.test_events} test events, {stats.dead_letters} dead letters in {stats.seconds:.1f}s"
        + ("; budget reached, the rest waits for the next tick" if stats.budget_exhausted else "")
    )
    context.log.info(summary)
    requests = []
    if stats.events_new:
        requests.append(dg.RunRequest(asset_selection=[dg.AssetKey("usage_live")], asset_check_keys=[]))
    asset_events = table_events(stats, drained_at(warehouse) if stats.queue_emptied else None)
    pending = pending_reconciliations(warehouse) if stats.queue_emptied else []
    if pending:
        last = pending[-1]
        context.log.info(
            f"{len(pending)} pending reconciliation(s) can now be decided; re-running {RECONCILIATION_CHECK}"
        )
        requests.append(
            dg.RunRequest(
                run_key=f"reconcile:{last['snapshot_date'].isoformat()}@{last['listed_at'].isoformat()}",
                asset_selection=[],
                asset_check_keys=[RECONCILIATION_KEY],
            )
        )
    if requests:
        return dg.SensorResult(run_requests=requests, asset_events=asset_events)
    return dg.SensorResult(skip_reason=dg.SkipReason(summary), asset_events=asset_events)
