"""End to end against moto in server mode (HTTP on 127.0.0.1): S3 buckets with S3 -> SQS event
notifications, the sensor reading SQS, usage_live from the events, usage_snapshot from
ListObjectsV2, on SQLite and PostgreSQL.

moto's server notifies put, overwrite, copy, complete-multipart-upload and delete (and sends
``s3:TestEvent`` when notifications are configured), but its records differ from S3's: they
carry no ``sequencer`` (the sensor derives one from eventTime, at millisecond resolution) and
its deletes carry a ``size``. The first test reads moto's own messages. The second publishes
messages shaped like S3's documented ones (with sequencers, sizeless deletes, some in SNS
envelopes) for a random mix of operations done on moto's S3, with notifications off so that
only those messages exist, then duplicates and shuffles them.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import boto3
import pytest
from dagster_aws.s3 import S3Resource

from metrics_assets.resources import (
    DuckDBQueryEngine,
    S3ObjectStore,
    SQSNotificationQueue,
)

from .conftest import (
    materialize_live,
    materialize_snapshot,
    metadata_of,
    run_sensor,
    s3_message,
    s3_record,
    sns_envelope,
    usage_rows,
)

UPLOADS, SCENES = "platform-uploads", "platform-scenes"


@pytest.fixture
def aws(moto_server, warehouse, monkeypatch, metrics_home):
    monkeypatch.setenv("STORAGE_BUCKETS", f"{UPLOADS},{SCENES}/scenes/")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="s3-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for bucket in (UPLOADS, SCENES, "someone-elses"):
        s3.create_bucket(Bucket=bucket)
    resources = {
        "warehouse": warehouse,
        "object_store": S3ObjectStore(s3=S3Resource(region_name="us-east-1", endpoint_url=moto_server)),
        "query_engine": DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects")),
        "notification_queue": SQSNotificationQueue(queue_url=queue_url, endpoint_url=moto_server),
    }

    def notify(bucket: str) -> None:
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
            },
        )

    return s3, sqs, queue_url, resources, notify


def _tick() -> None:
    time.sleep(0.003)  # moto stamps events to the millisecond: keep one key's events apart


def test_moto_notifications_put_overwrite_copy_multipart_delete(aws):
    s3, sqs, queue_url, resources, notify = aws
    notify(UPLOADS)
    notify(SCENES)
    s3.put_object(Bucket=UPLOADS, Key="uploads/alice/u1/a.bin", Body=b"x" * 100)
    _tick()
    s3.put_object(Bucket=UPLOADS, Key="uploads/alice/u1/a.bin", Body=b"x" * 250)  # overwrite
    _tick()
    s3.copy_object(
        Bucket=UPLOADS, Key="uploads/bob/b1/copy.bin", CopySource={"Bucket": UPLOADS, "Key": "uploads/alice/u1/a.bin"}
    )
    upload = s3.create_multipart_upload(Bucket=UPLOADS, Key="uploads/alice/u2/big.bin")
    parts = []
    for number, body in ((1, b"m" * (5 * 1024 * 1024)), (2, b"m" * 10)):
        etag = s3.upload_part(
            Bucket=UPLOADS, Key="uploads/alice/u2/big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=UPLOADS, Key="uploads/alice/u2/big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    s3.put_object(Bucket=UPLOADS, Key="uploads/alice/u1/tmp file+1.txt", Body=b"t" * 7)
    _tick()
    s3.delete_object(Bucket=UPLOADS, Key="uploads/alice/u1/tmp file+1.txt")
    s3.put_object(Bucket=SCENES, Key="scenes/carol/s9/band 1.tif", Body=b"s" * 30)
    s3.put_object(Bucket=SCENES, Key="thumbnails/carol/s9.png", Body=b"s" * 3)  # outside the metered prefix

    result, cursor = run_sensor(resources)
    tick = cursor["last_tick"]
    # Two test events (one per bucket configured), nine object events: moto notifies a completed
    # multipart upload twice (a Put, then the CompleteMultipartUpload S3 would send alone).
    assert (
        tick["messages"],
        tick["test_events"],
        tick["events_new"],
        tick["sequencer_derived"],
        tick["dead_letters"],
    ) == (11, 2, 9, 9, 0)
    assert result.run_requests
    assert (
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
    warehouse = resources["warehouse"]
    events = warehouse.fetch_all(
        "SELECT key, event_name, size FROM storage_object_events ORDER BY event_time, sequencer"
    )
    # Sorted: moto stamps at the millisecond, so events of one millisecond (the multipart upload's
    # two) order by the hash part of their derived sequencers.
    assert sorted((e["key"], e["event_name"]) for e in events) == sorted(
        [
            ("uploads/alice/u1/a.bin", "ObjectCreated:Put"),
            ("uploads/alice/u1/a.bin", "ObjectCreated:Put"),
            ("uploads/bob/b1/copy.bin", "ObjectCreated:Copy"),
            ("uploads/alice/u2/big.bin", "ObjectCreated:Put"),
            ("uploads/alice/u2/big.bin", "ObjectCreated:CompleteMultipartUpload"),
            ("uploads/alice/u1/tmp file+1.txt", "ObjectCreated:Put"),
            ("uploads/alice/u1/tmp file+1.txt", "ObjectRemoved:Delete"),
            ("scenes/carol/s9/band 1.tif", "ObjectCreated:Put"),
            ("thumbnails/carol/s9.png", "ObjectCreated:Put"),
        ]
    )

    materialize_live(resources)
    expected = {
        ("UPLOAD", "u1", "alice", 250, 1),
        ("UPLOAD", "b1", "bob", 250, 1),
        ("UPLOAD", "u2", "alice", 5 * 1024 * 1024 + 10, 1),
        ("SCENE", "s9", "carol", 30, 1),
    }
    assert usage_rows(warehouse, "usage_live") == expected
    assert materialize_snapshot(resources).success
    assert usage_rows(warehouse, "usage_data") == expected


class Model:
    """Plays S3 on moto and, for every operation, builds the notification S3 would send."""

    def __init__(self, s3, rng: random.Random):
        self.s3, self.rng = s3, rng
        self.objects: dict[tuple[str, str], int] = {}
        self.messages: list[str] = []
        self.clock = 0x0055AED6DCD90000

    def _sequencer(self) -> str:
        # Increasing; trailing zeros stripped as S3 may, so comparing needs the right-padding.
        self.clock += self.rng.choice([0x10, 0x100, 0x1000, 0x7])
        return f"{self.clock:018X}".rstrip("0") or "0"

    def _notify(self, bucket: str, key: str, event: str, size: int | None) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = s3_message(s3_record(bucket, key, event, size, self._sequencer(), now))
        self.messages.append(sns_envelope(body) if self.rng.random() < 0.3 else body)

    def new_key(self) -> tuple[str, str]:
        bucket = self.rng.choice([UPLOADS, UPLOADS, SCENES, "someone-elses"])
        owner = self.rng.choice(["alice", "bob", "carol d'Arc"])
        kind = "scenes" if bucket == SCENES and self.rng.random() < 0.8 else self.rng.choice(["uploads", "misc"])
        # object ids are unique across owners, as the unique key (type, object_id) requires
        object_id = f"{owner[:3]}-o{self.rng.randrange(6)}"
        return bucket, f"{kind}/{owner}/{object_id}/f {self.rng.randrange(10**6)}+é.bin"

    def put(self, bucket: str, key: str) -> None:
        size = self.rng.randrange(0, 5000)
        self.s3.put_object(Bucket=bucket, Key=key, Body=b"p" * size)
        self.objects[(bucket, key)] = size
        self._notify(bucket, key, "ObjectCreated:Put", size)

    def step(self) -> None:
        op = self.rng.choice(["put", "put", "overwrite", "copy", "multipart", "delete", "delete_many"])
        existing = sorted(self.objects)
        if op in ("overwrite", "copy", "delete", "delete_many") and not existing:
            op = "put"
        if op == "put":
            self.put(*self.new_key())
        elif op == "overwrite":
            self.put(*self.rng.choice(existing))
        elif op == "copy":
            (sb, sk), (tb, tk) = self.rng.choice(existing), self.new_key()
            self.s3.copy_object(Bucket=tb, Key=tk, CopySource={"Bucket": sb, "Key": sk})
            self.objects[(tb, tk)] = self.objects[(sb, sk)]
            self._notify(tb, tk, "ObjectCreated:Copy", self.objects[(tb, tk)])
        elif op == "multipart":
            bucket, key = self.new_key()
            body = b"m" * self.rng.randrange(1, 3000)
            upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key)
            etag = self.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=body)[
                "ETag"
            ]
            self.s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
            )
            self.objects[(bucket, key)] = len(body)
            self._notify(bucket, key, "ObjectCreated:CompleteMultipartUpload", len(body))
        elif op == "delete":
            bucket, key = self.rng.choice(existing)
            self.s3.delete_object(Bucket=bucket, Key=key)
            del self.objects[(bucket, key)]
            self._notify(bucket, key, "ObjectRemoved:Delete", None)  # S3's deletes carry no size
        else:  # DeleteObjects: one notification per key
            bucket = self.rng.choice(existing)[0]
            keys = [k for b, k in existing if b == bucket][:3]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
            for key in keys:
                del self.objects[(bucket, key)]
                self._notify(bucket, key, "ObjectRemoved:Delete", None)

    def reference(self) -> set[tuple]:
        """Independent reference: usage per metered object from the model, by hand-written parsing."""
        totals: dict[tuple, list] = {}
        for (bucket, key), size in self.objects.items():
            kind, owner, obj, _ = key.split("/", 3)
            if bucket == "someone-elses" or (bucket == SCENES and kind != "scenes"):
                continue
            if bucket == UPLOADS and kind == "uploads":
                ident = ("UPLOAD", obj, owner)
            elif bucket == SCENES:
                ident = ("SCENE", obj, owner)
            else:
                ident = ("UNATTRIBUTED", bucket, None)
            entry = totals.setdefault(ident, [0, 0])
            entry[0] += size
            entry[1] += 1
        return {(*ident, amount, count) for ident, (amount, count) in totals.items()}


def test_random_operations_then_duplicates_and_reordering_live_equals_snapshot(aws):
    s3, sqs, queue_url, resources, _ = aws
    rng = random.Random(20261122)
    model = Model(s3, rng)
    for _ in range(80):
        model.step()
    messages = model.messages + rng.sample(model.messages, k=len(model.messages) // 3)  # duplicates
    messages += [
        model.messages[0][: len(model.messages[0]) // 2],
        json.dumps({"foreign": True}),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
    ]
    rng.shuffle(messages)  # reordering
    for start in range(0, len(messages), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": m} for i, m in enumerate(messages[start : start + 10])],
        )

    _, cursor = run_sensor(resources)
    assert cursor["last_tick"]["messages"] == len(messages)
    assert cursor["last_tick"]["dead_letters"] == 2 and cursor["last_tick"]["test_events"] == 1
    warehouse = resources["warehouse"]
    assert warehouse.scalar("SELECT count(*) FROM storage_object_events") == len(model.messages)

    materialize_live(resources)
    live = usage_rows(warehouse, "usage_live")
    assert live == model.reference()
    assert len(live) >= 8 and {r[0] for r in live} == {"UPLOAD", "SCENE", "UNATTRIBUTED"}
    snapshot = materialize_snapshot(resources)
    assert usage_rows(warehouse, "usage_data") == live
    meta = metadata_of(snapshot, "usage_snapshot")
    assert meta["keys_metered"] == sum(r[4] for r in live)
    # And with that snapshot as the base, live usage is unchanged.
    materialize_live(resources)
    assert usage_rows(warehouse, "usage_live") == live
