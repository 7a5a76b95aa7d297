"""When the storage assets run: the S3 notifications sensor and the daily schedules."""


import json

import dagster as dg

from metrics_assets.resources import NotificationQueue, Warehouse
from metrics_assets.storage.ingest import (
    MAX_MESSAGES_PER_TICK,
    MAX_SECONDS_PER_TICK,
    ingest,
)

usage_snapshot_job = dg.define_asset_job(
    "storage_usage_snapshot_job", selection=["usage_snapshot"],
    description="The daily listing of the metered buckets.",
)
storage_billing_job = dg.define_asset_job(
    "storage_billing_job", selection=["storage_billing_monthly"],
    description="GB-days per owner for one month.",
)

# Late in the day, so the snapshot is of the day it is labelled with (today's partition).
usage_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    usage_snapshot_job, name="storage_usage_snapshot_daily", hour_of_day=23, minute_of_hour=45,
    description="Lists the metered buckets at 23:45 UTC: today's usage_snapshot.",
)


@dg.schedule(
    name="storage_billing_daily", cron_schedule="55 23 * * *", job=storage_billing_job, execution_timezone="UTC",
    description="Recomputes the month in progress after each day's snapshot.",
)
def storage_billing_daily(context: dg.ScheduleEvaluationContext):
    month = context.scheduled_execution_time.date().replace(day=1).isoformat()
    return dg.RunRequest(run_key=f"{month}@{context.scheduled_execution_time:%Y-%m-%d}", partition_key=month)


@dg.sensor(
    name="s3_notifications_sensor",
    asset_selection=["usage_live"],
    minimum_interval_seconds=30,
    description=(
        "Reads S3 event notifications (SQS in production, the spool folder locally; SNS envelopes "
        "unwrapped), records them in storage_object_events, deletes them from the queue once committed, "
        f"and requests usage_live. At most {MAX_MESSAGES_PER_TICK:,} messages or {MAX_SECONDS_PER_TICK:.0f} s "
        "a tick; the rest waits in the queue for the next tick."
    ),
)
def s3_notifications_sensor(context: dg.SensorEvaluationContext, notification_queue: NotificationQueue,
                            warehouse: Warehouse):
    stats = ingest(notification_queue, warehouse, log=context.log.info)
    previous = json.loads(context.cursor) if context.cursor else {}
    totals = previous.get("totals", {})
    for name in ("messages", "events_new", "duplicates", "test_events", "dead_letters"):
        totals[name] = int(totals.get(name, 0)) + int(getattr(stats, name))
    context.update_cursor(json.dumps({"last_tick": stats.as_dict(), "more_waiting": stats.budget_exhausted,
                                      "totals": totals}))
    summary = (f"{stats.messages} messages: {stats.events_new} new events, {stats.duplicates} duplicates, "
               f"{stats.test_events} test events, {stats.dead_letters} dead letters in {stats.seconds:.1f}s"
               + ("; budget reached, the rest waits for the next tick" if stats.budget_exhausted else ""))
    context.log.info(summary)
    if stats.events_new:
        return dg.SensorResult(run_requests=[dg.RunRequest(asset_selection=[dg.AssetKey("usage_live")])])
    return dg.SensorResult(skip_reason=dg.SkipReason(summary))
