"""Sample data for the storage domain: ``generate(home)`` for ``metrics-assets demo``.

Writes three local buckets under ``home/objects`` (platform-uploads and platform-scenes are
metered by default; other-team is not), with uploads and scenes of several owners added over
the last four days (sparse files: sizes are real, disk use is not), and the S3 notifications
those changes produced in ``home/spool``: puts, an overwrite, a put-then-delete, duplicates,
an SNS-wrapped message, an ``s3:TestEvent`` and one unreadable message. It then plays one tick
of ``s3_notifications_sensor`` (the demo runs assets, not the daemon), and returns the runs:
snapshots of the last days, live usage, today's snapshot (reconciled), and billing.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote_plus

from metrics_assets.demo import DemoStep

OWNERS = ["alice", "bob", "carol", "dave"]
DAYS = 4


def _write(root: Path, bucket: str, key: str, size: int, when: datetime) -> None:
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    os.utime(path, (when.timestamp(), when.timestamp()))


def _record(bucket: str, key: str, event: str, size: int | None, sequencer: int, when: datetime) -> dict:
    obj: dict[str, object] = {"key": quote_plus(key, safe="/"), "sequencer": f"{sequencer:018X}"}
    if size is not None:
        obj["size"] = size
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": event,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
    }


def generate(home: Path) -> list[DemoStep]:
    from metrics_assets.resources import SpoolNotificationQueue, Warehouse
    from metrics_assets.settings import warehouse_url
    from metrics_assets.storage.ingest import ingest

    # The demo plays S3 itself: its notifications are all sent already, so the reconciliation
    # need not wait S3's delivery delay (STORAGE_NOTIFICATION_DELAY_SECONDS, default 300 s).
    os.environ.setdefault("STORAGE_NOTIFICATION_DELAY_SECONDS", "0")
    rng = random.Random(5)
    objects, spool = home / "objects", home / "spool"
    queue = SpoolNotificationQueue(spool_dir=str(spool))
    now = datetime.now(UTC)
    today = now.date()
    first_day = today - timedelta(days=DAYS - 1)
    sequencer = 0x0055AED6DCD9000000
    messages: list[str] = []

    def notify(bucket: str, key: str, event: str, size: int | None, when: datetime) -> None:
        nonlocal sequencer
        sequencer += rng.randrange(1, 5000)
        messages.append(json.dumps({"Records": [_record(bucket, key, event, size, sequencer, when)]}))

    for offset in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=offset)
        start = datetime.combine(day, time(0), UTC)
        latest = now - timedelta(minutes=1) if offset == 0 else start + timedelta(hours=23)
        for owner in OWNERS:
            for n in range(rng.randrange(1, 4)):
                when = start + (max(latest, start) - start) * rng.random()
                bucket, kind, prefix = rng.choice(
                    [("platform-uploads", "u", "uploads"), ("platform-scenes", "s", "scenes")]
                )
                object_id = f"{kind}-{owner}-{day:%m%d}-{n}"
                for part in range(rng.randrange(1, 4)):
                    key = f"{prefix}/{owner}/{object_id}/part {part}.bin"
                    size = rng.randrange(1, 400) * 1_000_000
                    _write(objects, bucket, key, size, when)
                    if day > first_day:  # changes after the first snapshot were notified
                        notify(bucket, key, "ObjectCreated:Put", size, when)
        _write(objects, "other-team", f"backups/{day}.tar", 10**9, start + timedelta(hours=1))  # never metered
    _write(objects, "platform-uploads", "misc/README.txt", 1234, datetime.combine(first_day, time(1), UTC))

    # Today: an overwrite, and an upload that was deleted again (gone from the bucket).
    when = now - timedelta(seconds=30)
    key = "uploads/alice/u-alice-draft/report.pdf"
    notify("platform-uploads", key, "ObjectCreated:Put", 5_000_000, when)
    _write(objects, "platform-uploads", key, 7_000_000, when)
    notify("platform-uploads", key, "ObjectCreated:Put", 7_000_000, when)
    notify("platform-uploads", "uploads/bob/u-bob-tmp/scratch.bin", "ObjectCreated:Put", 50_000_000, when)
    notify("platform-uploads", "uploads/bob/u-bob-tmp/scratch.bin", "ObjectRemoved:Delete", None, when)

    messages += rng.sample(messages, 5)  # at-least-once delivery: duplicates
    rng.shuffle(messages)  # and no ordering guarantee
    messages[0] = json.dumps({"Type": "Notification", "Message": messages[0]})  # via SNS
    messages.append(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "platform-uploads"}))
    messages.append('{"Records": [{"eventSource": "aws:s3", "eventNa')  # truncated: a dead letter
    for body in messages:
        queue.send(body)

    stats = ingest(queue, Warehouse(url=warehouse_url()))
    print(
        f"[storage] one tick of s3_notifications_sensor: {stats.messages} messages, {stats.events_new} events, "
        f"{stats.duplicates} duplicates, {stats.dead_letters} dead letter(s)",
        flush=True,
    )

    days = [today - timedelta(days=o) for o in range(DAYS - 1, 0, -1)]
    steps = [DemoStep(f"usage_snapshot {d}", ["usage_snapshot"], partition_key=d.isoformat()) for d in days]
    steps.append(DemoStep("usage_live (last snapshot + today's events)", ["usage_live"]))
    steps.append(
        DemoStep(
            f"usage_snapshot {today} (its reconciliation pending: the queue was read before the listing)",
            ["usage_snapshot"],
            partition_key=today.isoformat(),
        )
    )
    steps.append(
        DemoStep(
            "s3_notifications_sensor: the queue read empty after the listing, reconciliation decided",
            [],
            sensor="s3_notifications_sensor",
        )
    )
    for month in sorted({d.replace(day=1) for d in [*days, today]}):
        steps.append(
            DemoStep(
                f"storage_billing_monthly {month:%Y-%m}", ["storage_billing_monthly"], partition_key=month.isoformat()
            )
        )
    return steps
