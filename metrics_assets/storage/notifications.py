"""Parsing S3 event notifications, as delivered to SQS directly or wrapped by SNS.

Pure functions, no Dagster. :func:`parse_message` turns one queue message body into the
events it carries, the records that could not be read (with the reason), or the verdict that
it is an ``s3:TestEvent`` to acknowledge and ignore. It never raises on bad input.

S3's record format: https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html

* Keys arrive URL-encoded with ``+`` for a space: ``unquote_plus`` decodes them.
* ``sequencer`` is a hexadecimal string, comparable between events of the same key after
  right-padding the shorter with zeros. It is stored upper-cased. S3 always sends it; some
  S3-compatible servers (moto) do not, and then it is derived from ``eventTime``
  (milliseconds, 16 hex digits, then 8 hex digits of a hash of the record), which orders
  events at millisecond resolution. Such records are counted as ``sequencer_derived``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote_plus

SEQUENCER_WIDTH = 64  # sequencers are compared right-padded with zeros to this width
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")


@dataclass
class Parsed:
    events: list[dict] = field(default_factory=list)
    #: (record index or -1 for the whole message, reason)
    dead: list[tuple[int, str]] = field(default_factory=list)
    test_event: bool = False
    sequencer_derived: int = 0


def parse_event_time(value: object) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("eventTime missing")
    text = value.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def derived_sequencer(event_time: datetime, record: dict) -> str:
    millis = int(event_time.timestamp() * 1000)
    digest = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
    return f"{millis:016X}{digest.upper()}"


def _unwrap(document: object) -> object:
    """SNS envelope -> the S3 document it carries (its ``Message`` is a JSON string)."""
    if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
        message = document["Message"]
        return json.loads(message) if isinstance(message, str) else message
    return document


def parse_record(record: object) -> tuple[dict, bool]:
    """One S3 record -> (event row, sequencer was derived). Raises ValueError or TypeError with the reason."""
    if not isinstance(record, dict):
        raise TypeError("record is not an object")
    if record.get("eventSource") != "aws:s3":
        raise ValueError(f"not an S3 record (eventSource={record.get('eventSource')!r})")
    name = record.get("eventName")
    if not isinstance(name, str) or not name:
        raise ValueError("eventName missing")
    name = name.removeprefix("s3:")
    s3 = record.get("s3")
    if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict) or not isinstance(s3.get("object"), dict):
        raise TypeError("s3.bucket / s3.object missing")
    bucket = s3["bucket"].get("name")
    raw_key = s3["object"].get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        raise ValueError("bucket name or object key missing")
    event_time = parse_event_time(record.get("eventTime"))
    size = s3["object"].get("size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int | float) or size < 0 or int(size) != size:
            raise ValueError(f"size {size!r} is not a byte count")
        size = int(size)
    if name.startswith("ObjectCreated:") and size is None:
        raise ValueError("ObjectCreated event without size")
    sequencer = s3["object"].get("sequencer")
    derived = False
    if sequencer is None:
        sequencer = derived_sequencer(event_time, record)
        derived = True
    elif not isinstance(sequencer, str) or not _HEX.match(sequencer):
        raise ValueError(f"sequencer {sequencer!r} is not hexadecimal (at most 64 digits)")
    return (
        {
            "bucket": bucket,
            "key": unquote_plus(raw_key),
            "event_name": name,
            "size": size,
            "sequencer": sequencer.upper(),
            "event_time": event_time,
        },
        derived,
    )


def parse_message(body: str) -> Parsed:
    out = Parsed()
    try:
        document = _unwrap(json.loads(body))
    except (ValueError, TypeError) as error:
        out.dead.append((-1, f"not JSON ({type(error).__name__}: {error})"[:500]))
        return out
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        out.test_event = True
        return out
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list) or not records:
        out.dead.append((-1, "not an S3 event notification (no Records)"))
        return out
    for index, record in enumerate(records):
        try:
            event, derived = parse_record(record)
        except (ValueError, TypeError, OverflowError) as error:
            out.dead.append((index, str(error)[:500] or type(error).__name__))
            continue
        out.events.append(event)
        out.sequencer_derived += derived
    return out
