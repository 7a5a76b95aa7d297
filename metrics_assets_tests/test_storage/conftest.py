"""Fixtures and helpers for the storage tests: resources on the test's METRICS_HOME, S3-shaped
notification messages, and runners for the sensor and the assets."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from urllib.parse import quote_plus

import dagster as dg
import pytest

from metrics_assets.resources import (
    DuckDBQueryEngine,
    LocalObjectStore,
    SpoolNotificationQueue,
    Warehouse,
)
from metrics_assets.storage.assets import (
    live_matches_snapshot,
    storage_billing_monthly,
    usage_live,
    usage_snapshot,
)
from metrics_assets.storage.automation import s3_notifications_sensor

TODAY = datetime.now(UTC).date()


@pytest.fixture(autouse=True)
def _no_notification_delay(monkeypatch):
    """S3's delivery delay is not played by these tests (they deliver when they choose): the
    reconciliation may decide as soon as the queue is read empty after the listing. One test
    sets the delay and shows the check waiting for it."""
    monkeypatch.setenv("STORAGE_NOTIFICATION_DELAY_SECONDS", "0")


@pytest.fixture
def local_resources(warehouse, metrics_home) -> dict:
    return {
        "warehouse": warehouse,
        "object_store": LocalObjectStore(root_dir=str(metrics_home / "objects")),
        "query_engine": DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects")),
        "notification_queue": SpoolNotificationQueue(spool_dir=str(metrics_home / "spool")),
    }


def s3_record(
    bucket: str,
    key: str,
    event: str,
    size: int | None,
    sequencer: str | None,
    event_time: str = "2026-11-20T10:00:00.000Z",
) -> dict:
    """A record shaped like S3's documented ones (notification-content-structure.html)."""
    obj = {"key": quote_plus(key, safe="/"), "eTag": "d41d8cd98f00b204e9800998ecf8427e"}
    if size is not None:
        obj["size"] = size
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time,
        "eventName": event,
        "userIdentity": {"principalId": "AWS:X"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "metrics",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def s3_message(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def sns_envelope(body: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:1:s3-events",
            "Subject": "Amazon S3 Notification",
            "Message": body,
            "Timestamp": "2026-11-20T10:00:00.000Z",
        }
    )


def run_sensor(resources: dict):
    """One tick of the sensor; returns (SensorResult, cursor dict)."""
    with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = s3_notifications_sensor(context)
        return result, json.loads(context.cursor)


def materialize_snapshot(resources: dict, day: date = TODAY, **kwargs) -> dg.ExecuteInProcessResult:
    """The snapshot and its checks, as storage_usage_snapshot_job runs them."""
    return dg.materialize(
        [usage_snapshot, live_matches_snapshot], partition_key=day.isoformat(), resources=resources, **kwargs
    )


def evaluate_reconciliation(resources: dict, **kwargs) -> dg.ExecuteInProcessResult:
    """live_matches_snapshot alone, as the sensor's re-run does."""
    return dg.materialize(
        [usage_snapshot, live_matches_snapshot],
        resources=resources,
        selection=dg.AssetSelection.checks(live_matches_snapshot),
        **kwargs,
    )


def materialize_live(resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize([usage_live], resources={"warehouse": resources["warehouse"]})


def materialize_billing(resources: dict, month: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [storage_billing_monthly], partition_key=month, resources={"warehouse": resources["warehouse"]}
    )


def usage_rows(warehouse: Warehouse, table: str, where: str = "1=1", params: dict | None = None) -> set[tuple]:
    return {
        (r["metered_object_type"], r["object_id"], r["owner"], int(r["usage_amount"]), int(r["object_count"]))
        for r in warehouse.fetch_all(
            f"SELECT metered_object_type, object_id, owner, usage_amount, object_count FROM {table} WHERE {where}",
            params or {},
        )
    }


def metadata_of(result: dg.ExecuteInProcessResult, key: str) -> dict:
    # usage_snapshot's node also materializes storage_snapshot_objects and storage_snapshot_runs
    [event] = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: v.value for k, v in event.metadata.items()}
