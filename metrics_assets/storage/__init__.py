"""The `storage` domain: bytes stored per owner, for billing.

Two independent measures, reconciled: a daily snapshot from listing the metered buckets
(``usage_snapshot`` -> ``usage_data``) and a live figure from S3 event notifications
(``s3_notifications_sensor`` -> ``storage_object_events`` -> ``usage_live``). Billing
(``storage_billing_monthly``) is GB-days from the daily snapshots.
"""

import dagster as dg

from metrics_assets.storage.assets import (
    live_matches_snapshot,
    notification_tables,
    storage_billing_monthly,
    usage_live,
    usage_snapshot,
)
from metrics_assets.storage.automation import (
    s3_notifications_sensor,
    storage_billing_daily,
    storage_billing_job,
    usage_snapshot_job,
    usage_snapshot_schedule,
)

defs = dg.Definitions(
    assets=[usage_snapshot, usage_live, storage_billing_monthly, *notification_tables],
    asset_checks=[live_matches_snapshot],
    jobs=[usage_snapshot_job, storage_billing_job],
    schedules=[usage_snapshot_schedule, storage_billing_daily],
    sensors=[s3_notifications_sensor],
)
