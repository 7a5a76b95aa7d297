"""The sensor and usage_live on the local deployment (spool queue, folder object store), on
SQLite and PostgreSQL: duplicates, reordering, sizeless deletes, sequencer padding, SNS
envelopes, test events, truncated and foreign messages, and the per-tick budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from metrics_assets.sql_access import UTC_DATETIME
from metrics_assets.storage.ingest import ingest

from .conftest import (
    TODAY,
    materialize_live,
    materialize_snapshot,
    metadata_of,
    run_sensor,
    s3_message,
    s3_record,
    sns_envelope,
    usage_rows,
)

B = "platform-uploads"
U = "uploads/alice/u1/"


def test_events_resolve_by_padded_sequencer_whatever_the_arrival_order(local_resources):
    queue, warehouse = local_resources["notification_queue"], local_resources["warehouse"]
    put_a = s3_message(s3_record(B, U + "a", "ObjectCreated:Put", 100, "0A"))
    for body in [
        put_a,
        s3_message(s3_record(B, U + "b", "ObjectCreated:Put", 50, "10")),
        s3_message(s3_record(B, U + "b", "ObjectRemoved:Delete", None, "1000001")),  # sizeless delete
        # c: the overwrite (21) arrives before the put it supersedes (20).
        s3_message(s3_record(B, U + "c", "ObjectCreated:Put", 30, "21")),
        s3_message(s3_record(B, U + "c", "ObjectCreated:Put", 70, "20")),
        # d: the delete (31) arrives before the put (30): the object is gone.
        s3_message(s3_record(B, U + "d", "ObjectRemoved:Delete", None, "31")),
        s3_message(s3_record(B, U + "d", "ObjectCreated:CompleteMultipartUpload", 40, "30")),
        # e: '0501' > '05' (= '0500'); f: '1' (= '10') > '0F', although 0x1 < 0x0F as numbers.
        s3_message(
            s3_record(B, U + "e", "ObjectCreated:Copy", 20, "0501"),
            s3_record(B, U + "e", "ObjectCreated:Put", 10, "05"),
        ),
        s3_message(s3_record(B, U + "f", "ObjectCreated:Put", 22, "1")),
        s3_message(s3_record(B, U + "f", "ObjectCreated:Put", 11, "0F")),
        put_a,  # a duplicate delivery
        sns_envelope(
            s3_message(s3_record("platform-scenes", "scenes/bob/s1/my file.tif", "ObjectCreated:Put", 300, "01"))
        ),
        s3_message(s3_record("other-bucket", "uploads/zed/z1/q", "ObjectCreated:Put", 999, "01")),  # not metered
        s3_message(s3_record(B, "misc/readme", "ObjectCreated:Put", 5, "01")),  # unattributed
        s3_message(s3_record(B, U + "a", "ObjectTagging:Put", None, "0B")),  # does not change size
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": B}),
        put_a[:40],  # truncated
        json.dumps({"detail-type": "EC2 Instance State-change Notification"}),  # foreign
    ]:
        queue.send(body)

    result, cursor = run_sensor(local_resources)
    assert [r.asset_selection for r in result.run_requests] == [[dg.AssetKey("usage_live")]]
    assert cursor["last_tick"] | {"seconds": 0} == {
        "messages": 18,
        "events_received": 16,
        "events_new": 15,
        "duplicates": 1,
        "test_events": 1,
        "dead_letters": 2,
        "sequencer_derived": 0,
        "batches": 1,
        "seconds": 0,
        "budget_exhausted": False,
        "insert_failures": 0,
        "queue_emptied": True,
    }
    assert queue.receive(100) == []  # everything acknowledged, dead letters included
    assert warehouse.scalar("SELECT count(*) FROM storage_object_events") == 15
    # The tables the tick wrote are reported as materializations of their external assets.
    reported = {e.asset_key.to_user_string(): e.metadata for e in result.asset_events}
    assert sorted(reported) == ["storage_dead_letters", "storage_ingest_state", "storage_object_events"]
    assert reported["storage_object_events"]["rows_added"].value == 15
    assert reported["storage_object_events"]["skipped_duplicates"].value == 1
    assert reported["storage_dead_letters"]["rows_added"].value == 2
    assert (
        reported["storage_ingest_state"]["queue_drained_at"].value
        == warehouse.scalar(
            "SELECT value FROM storage_ingest_state WHERE name = 'queue_drained_at'", type_=UTC_DATETIME
        ).isoformat()
    )
    assert (
        warehouse.scalar("SELECT key FROM storage_object_events WHERE bucket = 'platform-scenes'")
        == "scenes/bob/s1/my file.tif"
    )
    dead = warehouse.fetch_all("SELECT record_index, reason, body FROM storage_dead_letters ORDER BY reason")
    assert [(d["record_index"], d["reason"][:8]) for d in dead] == [(-1, "not JSON"), (-1, "not an S")]
    assert dead[0]["body"] == put_a[:40]

    live = materialize_live(local_resources)
    assert usage_rows(warehouse, "usage_live") == {
        ("UPLOAD", "u1", "alice", 100 + 30 + 20 + 22, 4),
        ("SCENE", "s1", "bob", 300, 1),
        ("UNATTRIBUTED", B, None, 5, 1),
    }
    meta = metadata_of(live, "usage_live")
    assert meta["dagster/row_count"] == 3 and meta["skipped_out_of_scope_keys"] == 1 and meta["dead_letters_total"] == 2

    # A second delivery of everything changes nothing; the next tick has nothing to do.
    queue.send(put_a)
    result, cursor = run_sensor(local_resources)
    assert result.run_requests == [] and cursor["last_tick"]["duplicates"] == 1
    materialize_live(local_resources)
    assert usage_rows(warehouse, "usage_live") == {
        ("UPLOAD", "u1", "alice", 172, 4),
        ("SCENE", "s1", "bob", 300, 1),
        ("UNATTRIBUTED", B, None, 5, 1),
    }


def test_live_starts_from_the_latest_snapshot_and_applies_only_later_events(local_resources, metrics_home):
    queue, warehouse = local_resources["notification_queue"], local_resources["warehouse"]
    folder = metrics_home / "objects" / B / U
    folder.mkdir(parents=True)
    (folder / "a").write_bytes(b"x" * 100)
    (folder / "old").write_bytes(b"x" * 60)
    assert materialize_snapshot(local_resources).success
    assert usage_rows(warehouse, "usage_data") == {("UPLOAD", "u1", "alice", 160, 2)}

    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    earlier = "2026-01-01T00:00:00.000Z"
    queue.send(s3_message(s3_record(B, U + "old", "ObjectRemoved:Delete", None, "05", later)))  # takes away 60
    queue.send(s3_message(s3_record(B, U + "a", "ObjectCreated:Put", 150, "07", later)))  # 100 -> 150
    queue.send(s3_message(s3_record(B, U + "g", "ObjectCreated:Put", 10, "01", later)))
    queue.send(s3_message(s3_record(B, U + "g", "ObjectRemoved:Delete", None, "02", later)))  # put, then gone
    queue.send(s3_message(s3_record(B, U + "h", "ObjectRemoved:Delete", None, "09", later)))  # never listed
    # Before the snapshot: already reflected in the listing, so not applied again.
    queue.send(s3_message(s3_record(B, U + "stale", "ObjectCreated:Put", 1000, "01", earlier)))
    run_sensor(local_resources)
    meta = metadata_of(materialize_live(local_resources), "usage_live")
    assert usage_rows(warehouse, "usage_live") == {("UPLOAD", "u1", "alice", 150, 1)}
    assert meta["base_snapshot"] == TODAY.isoformat() and meta["keys_changed_since_snapshot"] == 4


def test_ingest_budget_leaves_the_rest_for_the_next_tick(local_resources):
    queue, warehouse = local_resources["notification_queue"], local_resources["warehouse"]
    for i in range(25):
        queue.send(s3_message(s3_record(B, f"{U}k{i:02d}", "ObjectCreated:Put", i, f"{i + 1:02X}")))
    stats = ingest(queue, warehouse, max_messages=10, batch_messages=4)
    assert (stats.messages, stats.events_new, stats.batches, stats.budget_exhausted) == (10, 10, 3, True)
    assert len(queue.receive(100)) == 15
    stats = ingest(queue, warehouse, max_messages=10, max_seconds=0.0)  # out of time before the first batch
    assert (stats.messages, stats.budget_exhausted) == (0, True)
    _, cursor = run_sensor(local_resources)
    assert cursor["last_tick"]["messages"] == 15 and not cursor["more_waiting"]
    assert warehouse.scalar("SELECT sum(size) FROM storage_object_events") == sum(range(25))


def test_messages_stay_in_the_queue_when_the_commit_fails(sqlite_warehouse, metrics_home):
    from metrics_assets.resources import SpoolNotificationQueue

    queue = SpoolNotificationQueue(spool_dir=str(metrics_home / "spool"))
    queue.send(s3_message(s3_record(B, U + "a", "ObjectCreated:Put", 1, "01")))
    queue.send("not json")
    sqlite_warehouse.execute("ALTER TABLE storage_dead_letters RENAME TO storage_dead_letters_away")
    with pytest.raises(sa.exc.OperationalError):
        ingest(queue, sqlite_warehouse)
    assert len(queue.receive(10)) == 2  # nothing acknowledged
    assert sqlite_warehouse.scalar("SELECT count(*) FROM storage_object_events") == 0  # rolled back together
    sqlite_warehouse.execute("ALTER TABLE storage_dead_letters_away RENAME TO storage_dead_letters")
    stats = ingest(queue, sqlite_warehouse)
    assert (stats.events_new, stats.dead_letters, len(queue.receive(10))) == (1, 1, 0)


def test_every_table_the_domain_writes_is_named_by_an_asset():
    """The tables of the storage migrations (listed here by hand), each the ``dagster/table_name``
    of one asset of the domain's Definitions; the sensor's are external assets (plain specs, not
    materializable), upstream of usage_live. (The domain's own list: importing the code
    location's Definitions here would bind its resources to this test's environment.)"""
    from metrics_assets.storage import defs

    named, specs = {}, {}
    for item in defs.assets:
        computed = isinstance(item, dg.AssetsDefinition)
        for spec in item.specs if computed else [item]:
            named[spec.metadata.get("dagster/table_name")] = (spec.key.to_user_string(), computed)
            specs[spec.key.to_user_string()] = spec
    assert named == {
        "usage_data": ("usage_snapshot", True),
        "storage_snapshot_objects": ("storage_snapshot_objects", True),
        "storage_snapshot_runs": ("storage_snapshot_runs", True),
        "usage_live": ("usage_live", True),
        "storage_billing_monthly": ("storage_billing_monthly", True),
        "storage_object_events": ("storage_object_events", False),
        "storage_dead_letters": ("storage_dead_letters", False),
        "storage_ingest_state": ("storage_ingest_state", False),
    }
    assert dg.AssetKey("storage_object_events") in {d.asset_key for d in specs["usage_live"].deps}
