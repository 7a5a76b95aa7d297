"""Ingesting S3 event notifications from the queue into ``storage_object_events``.

One batch at a time: receive, parse, commit the events (and dead letters) in one
transaction, and only then delete the messages from the queue. A crash between commit and
delete re-delivers the batch; the unique key (bucket, key, sequencer) makes the replay a no-op.
Per call, at most ``max_messages`` are taken and no new batch starts after ``max_seconds``:
the rest stays in the queue for the next call (the next sensor tick).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow as pa
import sqlalchemy as sa

from metrics_assets.resources import NotificationQueue, QueueMessage, Warehouse
from metrics_assets.storage.notifications import parse_message

MAX_MESSAGES_PER_TICK = 10_000
MAX_SECONDS_PER_TICK = 30.0
BATCH_MESSAGES = 1_000

EVENT_SCHEMA = pa.schema([
    ("bucket", pa.string()),
    ("key", pa.string()),
    ("event_name", pa.string()),
    ("size", pa.int64()),
    ("sequencer", pa.string()),
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("received_at", pa.timestamp("us", tz="UTC")),
])
_COLUMNS = ", ".join(f'"{c}"' for c in EVENT_SCHEMA.names)


@dataclass
class IngestStats:
    messages: int = 0
    events_received: int = 0
    events_new: int = 0
    duplicates: int = 0
    test_events: int = 0
    dead_letters: int = 0
    sequencer_derived: int = 0
    batches: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _stage_table(conn) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "CREATE TEMP TABLE storage_events_stage (LIKE storage_object_events) ON COMMIT DROP"))
    else:
        conn.execute(sa.text(
            "CREATE TEMP TABLE IF NOT EXISTS storage_events_stage AS SELECT * FROM storage_object_events WHERE 0"))
        conn.execute(sa.text("DELETE FROM storage_events_stage"))


def record_events(warehouse: Warehouse, conn, events: pa.Table) -> int:
    """Insert events on an open transaction; duplicates of (bucket, key, sequencer), already
    stored or within the batch, collapse. Returns the rows actually added."""
    if events.num_rows == 0:
        return 0
    _stage_table(conn)
    warehouse.load(conn, "storage_events_stage", events)
    result = conn.execute(sa.text(
        f"INSERT INTO storage_object_events ({_COLUMNS}) SELECT {_COLUMNS} FROM storage_events_stage "
        "WHERE true ON CONFLICT (bucket, key, sequencer) DO NOTHING"))
    return max(result.rowcount, 0)


def record_dead_letters(conn, rows: list[dict]) -> None:
    if rows:
        conn.execute(sa.text(
            "INSERT INTO storage_dead_letters (message_id, record_index, body, reason, received_at) "
            "VALUES (:message_id, :record_index, :body, :reason, :received_at) "
            "ON CONFLICT (message_id, record_index) DO NOTHING"), rows)


def process_batch(warehouse: Warehouse, messages: list[QueueMessage], stats: IngestStats) -> None:
    received_at = datetime.now(UTC)
    columns: dict[str, list] = {name: [] for name in EVENT_SCHEMA.names}
    dead: list[dict] = []
    for message in messages:
        parsed = parse_message(message.body)
        stats.test_events += parsed.test_event
        stats.sequencer_derived += parsed.sequencer_derived
        for index, reason in parsed.dead:
            dead.append({"message_id": message.message_id, "record_index": index, "body": message.body,
                         "reason": reason, "received_at": received_at})
        for event in parsed.events:
            for name in ("bucket", "key", "event_name", "size", "sequencer", "event_time"):
                columns[name].append(event[name])
            columns["received_at"].append(received_at)
    events = pa.table(columns, schema=EVENT_SCHEMA)
    with warehouse.begin() as conn:
        new = record_events(warehouse, conn, events)
        record_dead_letters(conn, dead)
    stats.messages += len(messages)
    stats.events_received += events.num_rows
    stats.events_new += new
    stats.duplicates += events.num_rows - new
    stats.dead_letters += len(dead)
    stats.batches += 1


def ingest(
    queue: NotificationQueue,
    warehouse: Warehouse,
    *,
    max_messages: int = MAX_MESSAGES_PER_TICK,
    max_seconds: float = MAX_SECONDS_PER_TICK,
    batch_messages: int = BATCH_MESSAGES,
    log=None,
) -> IngestStats:
    """Drain up to ``max_messages`` from the queue into the warehouse; delete only what was
    committed."""
    stats = IngestStats()
    started = time.perf_counter()
    while stats.messages < max_messages:
        if time.perf_counter() - started > max_seconds:
            stats.budget_exhausted = True
            break
        messages = queue.receive(max_messages=min(batch_messages, max_messages - stats.messages), wait_seconds=0)
        if not messages:
            break
        process_batch(warehouse, messages, stats)  # commits
        queue.delete(messages)  # only after the commit
        if log is not None:
            log(f"s3 notifications: {stats.messages} messages, {stats.events_new} new events so far")
    else:
        stats.budget_exhausted = True
    stats.seconds = time.perf_counter() - started
    return stats
