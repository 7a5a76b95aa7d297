"""Poison messages: each one mixed into a batch of good ones, on SQLite and PostgreSQL (spool
queue) and over moto's SQS on PostgreSQL. Every good event is stored, every poison message is
a dead letter with its body and reason, and the whole batch is acknowledged.

The good messages are shaped like S3's documented records (notification-content-structure.html,
via ``s3_record``). The poisons are those same records with one field made hostile, as a
broken or malicious producer could send them; S3 itself never sends them, and moto neither.
"""

from __future__ import annotations

import json

import boto3
import pytest
import sqlalchemy as sa

from metrics_assets.resources import SQSNotificationQueue
from metrics_assets.storage.ingest import ingest
from metrics_assets.storage.notifications import parse_message

from .conftest import run_sensor, s3_message, s3_record

B = "platform-uploads"


def _with(record: dict, **object_fields) -> dict:
    record = json.loads(json.dumps(record))
    record["s3"]["object"].update(object_fields)
    return record


def good(i: int) -> str:
    return s3_message(s3_record(B, f"uploads/alice/u{i}/f.bin", "ObjectCreated:Put", 100 + i, f"{i + 1:04X}"))


BASE = s3_record(B, "uploads/bob/b1/x.bin", "ObjectCreated:Put", 5, "0A")
POISONS = {
    # name: (body, start of the reason stored with it)
    "key decoding to NUL": (s3_message(_with(BASE, key="uploads/bob/b1/%00x.bin")), "object key contains a NUL"),
    "event name with NUL": (s3_message(BASE | {"eventName": "ObjectCreated:Put\u0000"}), "eventName"),
    "lone surrogate in key": (
        s3_message(_with(BASE, key="uploads/bob/b1/\ud800.bin")),
        "object key is not valid Unicode",
    ),
    "key not UTF-8 once decoded": (
        s3_message(_with(BASE, key="uploads/bob/b1/%ED%A0%80.bin")),
        "object key does not decode",
    ),
    "size 2^63": (s3_message(_with(BASE, size=2**63)), "size 9223372036854775808 is out of range"),
    "size 1e20": (s3_message(_with(BASE, size=1e20)), "size 1e+20 is not an exact byte count"),
    "negative size": (s3_message(_with(BASE, size=-1)), "size -1 is out of range"),
    "size NaN": (s3_message(_with(BASE, size=float("nan"))), "size nan is not an exact byte count"),
    "size as text": (s3_message(_with(BASE, size="100")), "size '100' is not a byte count"),
    "sequencer with trailing newline": (s3_message(_with(BASE, sequencer="0A\n")), "sequencer '0A\\n' is not"),
    "version id with NUL": (s3_message(_with(BASE, versionId="v\u00001")), "versionId contains a NUL"),
    "event time out of range": (s3_message(BASE | {"eventTime": "0001-01-01T00:00:00.000Z"}), "eventTime"),
}


def test_each_poison_is_refused_by_the_parser_naming_the_field():
    for name, (body, reason) in POISONS.items():
        parsed = parse_message(body)
        assert parsed.events == [], name
        assert [index for index, _ in parsed.dead] == [0], name
        assert parsed.dead[0][1].startswith(reason), (name, parsed.dead[0][1])
        json.dumps(parsed.dead[0][1]).encode("utf-8")  # the reason itself is storable text
        assert "\x00" not in parsed.dead[0][1]


def _send_mixed(queue) -> list[str]:
    bodies = []
    for i, (poison, _) in enumerate(POISONS.values()):
        bodies += [good(2 * i), poison, good(2 * i + 1)]
    for body in bodies:
        queue.send(body)
    return bodies


def _assert_outcome(warehouse, n_good: int) -> None:
    assert warehouse.scalar("SELECT count(*) FROM storage_object_events") == n_good
    assert warehouse.scalar("SELECT sum(size) FROM storage_object_events") == sum(100 + i for i in range(n_good))
    dead = warehouse.fetch_all("SELECT body, reason, record_index FROM storage_dead_letters")
    assert sorted((d["body"], d["reason"].split(" ")[0]) for d in dead) == sorted(
        (body, reason.split(" ")[0]) for body, reason in POISONS.values()
    )
    for d in dead:
        expected = next(r for b, r in POISONS.values() if b == d["body"])
        assert d["reason"].startswith(expected) and d["record_index"] == 0


def test_poison_mixed_into_good_messages_spool(local_resources):
    queue, warehouse = local_resources["notification_queue"], local_resources["warehouse"]
    _send_mixed(queue)
    result, cursor = run_sensor(local_resources)
    tick = cursor["last_tick"]
    assert (tick["messages"], tick["events_new"], tick["dead_letters"], tick["insert_failures"]) == (
        3 * len(POISONS),
        2 * len(POISONS),
        len(POISONS),
        0,
    )
    assert result.run_requests and queue.receive(100) == []  # everything acknowledged
    _assert_outcome(warehouse, 2 * len(POISONS))


def test_poison_mixed_into_good_messages_over_moto_sqs(moto_server, pg_warehouse):
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    url = sqs.create_queue(QueueName="s3-events")["QueueUrl"]
    queue = SQSNotificationQueue(queue_url=url, endpoint_url=moto_server)
    _send_mixed(queue)
    # A preview first (what the sensor does under `dagster sensor preview`): on SQS it peeks with a
    # visibility timeout of 0, so nothing is hidden from the next receive, nothing written.
    preview = ingest(queue, pg_warehouse, dry_run=True)
    # SQS hands the same visible messages to the next receive, so a preview sees a sample of
    # the head of the queue (moto: the first 10 sent, 7 good events and 3 poisons among them).
    assert (preview.messages, preview.events_received, preview.dead_letters) == (10, 7, 3)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        str(3 * len(POISONS)),
        "0",
    )
    assert pg_warehouse.scalar("SELECT count(*) FROM storage_object_events") == 0
    stats = ingest(queue, pg_warehouse, batch_messages=7)  # poisons in several batches
    assert (stats.messages, stats.events_new, stats.dead_letters) == (3 * len(POISONS), 2 * len(POISONS), len(POISONS))
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
    _assert_outcome(pg_warehouse, 2 * len(POISONS))


def _refuse_at_insert(warehouse) -> None:
    """Make the database itself refuse one key, as a value the parser could not foresee would:
    a CHECK constraint on PostgreSQL, a trigger raising ABORT on SQLite (both IntegrityError)."""
    if warehouse.is_postgres:
        warehouse.execute(
            "ALTER TABLE storage_object_events ADD CONSTRAINT test_refuse CHECK (key NOT LIKE '%refused%')"
        )
    else:
        warehouse.execute(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON storage_object_events WHEN NEW.key LIKE '%refused%' "
            "BEGIN SELECT RAISE(ABORT, 'refused key'); END"
        )


def _unrefuse(warehouse) -> None:
    if warehouse.is_postgres:
        warehouse.execute("ALTER TABLE storage_object_events DROP CONSTRAINT test_refuse")
    else:
        warehouse.execute("DROP TRIGGER test_refuse")


def test_a_message_the_database_refuses_at_insert_is_isolated(local_resources):
    queue, warehouse = local_resources["notification_queue"], local_resources["warehouse"]
    _refuse_at_insert(warehouse)
    try:
        refused = s3_message(
            s3_record(B, "uploads/carol/c1/refused.bin", "ObjectCreated:Put", 7, "01"),
            s3_record(B, "uploads/carol/c1/fine.bin", "ObjectCreated:Put", 8, "02"),
        )
        bodies = [good(i) for i in range(20)]
        bodies[13:13] = [refused]
        bodies.insert(5, "not json")  # a parse-time dead letter in the same batch
        for body in bodies:
            queue.send(body)
        stats = ingest(queue, warehouse)
    finally:
        _unrefuse(warehouse)
    # The refused message's events are all left out (its good record too: a message is the
    # unit S3 delivers and the unit we quarantine); the 20 good messages are stored.
    assert (stats.messages, stats.events_new, stats.dead_letters, stats.insert_failures) == (22, 20, 2, 1)
    assert queue.receive(100) == []
    assert warehouse.scalar("SELECT count(*) FROM storage_object_events") == 20
    dead = warehouse.fetch_all("SELECT body, reason, record_index FROM storage_dead_letters ORDER BY reason")
    assert [(d["body"], d["record_index"]) for d in dead] == [("not json", -1), (refused, -1)]
    assert dead[1]["reason"].startswith("not storable: ") and "refuse" in dead[1]["reason"]


def test_a_database_that_is_unusable_still_leaves_everything_in_the_queue(pg_warehouse, metrics_home):
    """Not the data's fault: no message is quarantined, none acknowledged."""
    from metrics_assets.resources import SpoolNotificationQueue

    queue = SpoolNotificationQueue(spool_dir=str(metrics_home / "spool"))
    for i in range(3):
        queue.send(good(i))
    pg_warehouse.execute("ALTER TABLE storage_object_events RENAME TO storage_object_events_away")
    try:
        with pytest.raises(sa.exc.ProgrammingError):
            ingest(queue, pg_warehouse)
    finally:
        pg_warehouse.execute("ALTER TABLE storage_object_events_away RENAME TO storage_object_events")
    assert len(queue.receive(10)) == 3
    assert pg_warehouse.scalar("SELECT count(*) FROM storage_dead_letters") == 0


def test_dagster_sensor_preview_records_and_deletes_nothing(pg_warehouse, metrics_home, tmp_path):
    """The real CLI, ``dagster sensor preview``, in its own process (a code location loaded by
    Dagster, as the webserver's "Test sensor" does): it reports, and leaves the queue alone."""
    import os
    import subprocess
    from pathlib import Path

    from metrics_assets.resources import SpoolNotificationQueue

    queue = SpoolNotificationQueue(spool_dir=str(metrics_home / "spool"))
    for body in (good(1), good(2), POISONS["size 1e20"][0]):
        queue.send(body)
    home = tmp_path / "dagster_home"
    home.mkdir()
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "METRICS_HOME": str(metrics_home),
        "METRICS_WAREHOUSE_URL": pg_warehouse.url,
        "PYTHONPATH": str(repo),
    }
    done = subprocess.run(
        [
            str(Path(os.sys.executable).with_name("dagster")),
            "sensor",
            "preview",
            "s3_notifications_sensor",
            "-w",
            str(repo / "workspace.yaml"),
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "preview: 3 message(s)" in done.stdout and "2 event(s)" in done.stdout and "1 dead letter(s)" in done.stdout
    assert len(queue.receive(10)) == 3  # nothing deleted
    assert pg_warehouse.scalar("SELECT count(*) FROM storage_object_events") == 0
    assert pg_warehouse.scalar("SELECT count(*) FROM storage_dead_letters") == 0
    # A real tick afterwards takes them.
    stats = ingest(queue, pg_warehouse)
    assert (stats.events_new, stats.dead_letters, len(queue.receive(10))) == (2, 1, 0)
