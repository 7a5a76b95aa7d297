"""Ingesting S3 event notifications from the queue into ``storage_object_events``.

One batch at a time: receive, parse, commit the events (and dead letters) in one
transaction, and only then delete the messages from the queue. A crash between commit and
delete re-delivers the batch; the unique key (bucket, key, sequencer) makes the replay a no-op.
Per call, at most ``max_messages`` are taken and no new batch starts after ``max_seconds``:
the rest stays in the queue for the next call (the next sensor tick).

Poison never blocks the queue. Every stored field is validated while parsing
(:mod:`notifications`), and a message that fails there is a dead letter. Should a batch
still fail to insert for a reason in its data (a value the database refuses), the batch is
split in halves, each tried in its own savepoint, down to the single messages that fail:
those become dead letters with the database's reason, the others are stored, and the whole
batch is acknowledged. Only a failure that is not about the data (the database unreachable,
a table missing) rolls everything back and leaves every message in the queue.

``dry_run`` (a sensor preview) parses and counts, writes nothing and deletes nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import sqlalchemy as sa

from metrics_assets.resources import NotificationQueue, QueueMessage, Warehouse
from metrics_assets.sql_access import UTC_DATETIME
from metrics_assets.storage.notifications import parse_message, quarantine_text

MAX_MESSAGES_PER_TICK = 10_000
MAX_SECONDS_PER_TICK = 30.0
BATCH_MESSAGES = 1_000

EVENT_SCHEMA = pa.schema(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("version_id", pa.string()),
        ("event_name", pa.string()),
        ("size", pa.int64()),
        ("sequencer", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass
class IngestStats:
    messages: int = 0
    events_received: int = 0
    events_new: int = 0
    duplicates: int = 0
    test_events: int = 0
    dead_letters: int = 0
    sequencer_derived: int = 0
    #: messages whose events the database refused (a subset of dead_letters)
    insert_failures: int = 0
    batches: int = 0
    #: the queue was read until empty (so everything sent before the call is recorded)
    queue_emptied: bool = False
    seconds: float = 0.0
    budget_exhausted: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


#: The unique key of ``storage_object_events``: a replayed or repeated event collapses on it.
EVENT_KEY = ("bucket", "key", "sequencer")
DEAD_LETTER_KEY = ("message_id", "record_index")
DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("record_index", pa.int64()),
        ("body", pa.string()),
        ("reason", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


def record_events(warehouse: Warehouse, conn, events: pa.Table) -> int:
    """Insert events on an open transaction; duplicates of (bucket, key, sequencer), already
    stored or within the batch, collapse. Returns the rows actually added."""
    return warehouse.insert_ignoring_duplicates(conn, "storage_object_events", events, key=EVENT_KEY)


DRAINED = "queue_drained_at"


def record_drained(warehouse: Warehouse, started_at: datetime) -> None:
    """Remember that every message sent before ``started_at`` has been ingested: the
    watermark :func:`drained_at` gives the reconciliation, which waits for it."""
    with warehouse.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO storage_ingest_state (name, value) VALUES (:n, :v) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value "
                "WHERE excluded.value > storage_ingest_state.value"
            ),
            {"n": DRAINED, "v": started_at},
        )


def drained_at(warehouse: Warehouse) -> datetime | None:
    return warehouse.scalar(
        "SELECT value FROM storage_ingest_state WHERE name = :n", {"n": DRAINED}, type_=UTC_DATETIME
    )


def record_dead_letters(warehouse: Warehouse, conn, rows: list[dict]) -> None:
    """Insert dead letters on an open transaction; a message already quarantined (a replay)
    is left as it is."""
    if rows:
        warehouse.insert_ignoring_duplicates(
            conn, "storage_dead_letters", pa.Table.from_pylist(rows, schema=DEAD_LETTER_SCHEMA), key=DEAD_LETTER_KEY
        )


def dead_letter(message: QueueMessage, index: int, reason: str, received_at: datetime) -> dict:
    """A dead-letter row; body and reason made storable whatever they hold."""
    return {
        "message_id": quarantine_text(message.message_id, 500),
        "record_index": index,
        "body": quarantine_text(message.body),
        "reason": quarantine_text(reason, 500) or "unknown",
        "received_at": received_at,
    }


#: Errors that say "this data cannot be stored" (as opposed to "the database is unusable"):
#: the values are refused by the database (DataError: NUL, encoding, out of range; Integrity),
#: by the driver before sending (a StatementError wrapping ValueError/UnicodeError), or by
#: Arrow while building the batch.
def _is_data_error(error: BaseException) -> bool:
    if isinstance(error, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        return False  # OperationalError, ProgrammingError...: not the data's fault
    if isinstance(error, sa.exc.StatementError):
        return isinstance(error.orig, ValueError | UnicodeError | OverflowError)
    return isinstance(error, ValueError | UnicodeError | OverflowError | pa.ArrowException)


@dataclass
class _Parsed:
    message: QueueMessage
    events: list[dict] = field(default_factory=list)


def _events_table(items: list[_Parsed], received_at: datetime) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in EVENT_SCHEMA.names}
    for item in items:
        for event in item.events:
            for name in EVENT_SCHEMA.names[:-1]:
                columns[name].append(event[name])
            columns["received_at"].append(received_at)
    return pa.table(columns, schema=EVENT_SCHEMA)


def _not_storable(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return f"not storable: {type(cause).__name__}: {text[0] if text else ''}"


def _store_isolating(
    warehouse: Warehouse, items: list[_Parsed], received_at: datetime, dead: list[dict], stats: IngestStats
) -> int:
    """Insert the events of ``items``, each piece in its own transaction; on a data error,
    split in halves and retry each, down to single messages, which become dead letters.
    (Separate transactions rather than savepoints: SQLite's Python driver does not nest them.
    Inserting an event twice is a no-op, so a crash half way only means a replay.)"""
    if not any(item.events for item in items):
        return 0
    try:
        with warehouse.begin() as conn:
            return record_events(warehouse, conn, _events_table(items, received_at))
    except Exception as error:
        if not _is_data_error(error):
            raise
        if len(items) == 1:
            dead.append(dead_letter(items[0].message, -1, _not_storable(error), received_at))
            stats.insert_failures += 1
            return 0
        middle = len(items) // 2
        return _store_isolating(warehouse, items[:middle], received_at, dead, stats) + _store_isolating(
            warehouse, items[middle:], received_at, dead, stats
        )


def process_batch(
    warehouse: Warehouse, messages: list[QueueMessage], stats: IngestStats, dry_run: bool = False
) -> None:
    received_at = datetime.now(UTC)
    items: list[_Parsed] = []
    dead: list[dict] = []
    for message in messages:
        parsed = parse_message(message.body)
        stats.test_events += parsed.test_event
        stats.sequencer_derived += parsed.sequencer_derived
        for index, reason in parsed.dead:
            dead.append(dead_letter(message, index, reason, received_at))
        if parsed.events:
            items.append(_Parsed(message, parsed.events))
    received = sum(len(item.events) for item in items)
    new = 0
    if not dry_run:
        try:  # the usual case: events and dead letters in one transaction
            with warehouse.begin() as conn:
                if items:
                    new = record_events(warehouse, conn, _events_table(items, received_at))
                record_dead_letters(warehouse, conn, dead)
        except Exception as error:
            if not _is_data_error(error):
                raise  # nothing committed: every message stays in the queue
            new = _store_isolating(warehouse, items, received_at, dead, stats)
            with warehouse.begin() as conn:
                record_dead_letters(warehouse, conn, dead)
    stats.messages += len(messages)
    stats.events_received += received
    stats.events_new += new
    stats.duplicates += received - new if not dry_run else 0
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
    dry_run: bool = False,
) -> IngestStats:
    """Drain up to ``max_messages`` from the queue into the warehouse; delete only what was
    committed. With ``dry_run``, read and parse only: nothing written, nothing deleted, and
    on SQS the messages are visible again at once (visibility timeout 0)."""
    stats = IngestStats()
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    while stats.messages < max_messages:
        if time.perf_counter() - started > max_seconds:
            stats.budget_exhausted = True
            break
        wanted = min(batch_messages, max_messages - stats.messages)
        if dry_run:
            messages = queue.peek(max_messages=wanted)
            process_batch(warehouse, messages, stats, dry_run=True)
            break  # a peek does not advance: one batch is the preview
        messages = queue.receive(max_messages=wanted, wait_seconds=0)
        if not messages:
            # The queue was found empty: everything sent before this call is now recorded.
            record_drained(warehouse, started_at)
            stats.queue_emptied = True
            break
        process_batch(warehouse, messages, stats)  # commits
        queue.delete(messages)  # only after the commit
        if log is not None:
            log(f"s3 notifications: {stats.messages} messages, {stats.events_new} new events so far")
    else:
        stats.budget_exhausted = True
    stats.seconds = time.perf_counter() - started
    return stats
