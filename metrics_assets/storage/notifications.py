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
* ``versionId`` is present for buckets with versioning enabled or suspended (``"null"`` for
  the null version of a suspended bucket) and absent otherwise (stored as ``''``). A delete
  marker arrives as ``ObjectRemoved:DeleteMarkerCreated`` with the marker's own version id.

Every field that will be stored is validated here, so that one bad message can never make a
whole batch fail at insert: text must be valid UTF-8 that PostgreSQL can hold (no NUL, no lone
surrogate), keys at most 1,024 UTF-8 bytes (S3's limit), event names ``Word:Word``,
sequencers 1-64 hex digits (and nothing after: no trailing newline), sizes integers in
0..2^63-1 (a BIGINT), event times within PostgreSQL's and Arrow's range.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote_plus

SEQUENCER_WIDTH = 64  # sequencers are compared right-padded with zeros to this width
_HEX = re.compile(r"[0-9A-Fa-f]{1,64}")  # used with fullmatch: '$' would accept a trailing newline
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}(?::[A-Za-z][A-Za-z0-9]{0,63})?")
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens today; legacy us-east-1
# buckets may also have capitals and underscores, up to 255 characters.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}")
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes
MAX_VERSION_ID_CHARS = 1024
MAX_BIGINT = 2**63 - 1
MAX_EXACT_FLOAT = 2**53  # a JSON number with a fraction or exponent is exact only up to this


@dataclass
class Parsed:
    events: list[dict] = field(default_factory=list)
    #: (record index or -1 for the whole message, reason)
    dead: list[tuple[int, str]] = field(default_factory=list)
    test_event: bool = False
    sequencer_derived: int = 0


def storable_text(value: str, what: str) -> str:
    """``value`` if PostgreSQL can store it as text: valid UTF-8 (no lone surrogate) without NUL."""
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{what} is not valid Unicode ({error.reason} at {error.start})") from None
    return value


def quarantine_text(value: str, limit: int | None = None) -> str:
    """Any text made storable, for dead letters: NUL and lone surrogates become escapes."""
    value = value[:limit] if limit else value
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


def parse_event_time(value: object) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("eventTime missing")
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"eventTime {value[:40]!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"eventTime {value[:40]!r} is out of range") from None
    if not 1970 <= parsed.year <= 9999:
        raise ValueError(f"eventTime {value[:40]!r} is out of range")
    return parsed


def parse_size(size: object) -> int:
    """A byte count that fits a BIGINT. S3 sends an integer; an integral JSON float is accepted
    only where it is exact (1e20 or 2^63 are not byte counts anyone stores)."""
    if isinstance(size, bool) or not isinstance(size, int | float):
        raise TypeError(f"size {str(size)[:40]!r} is not a byte count")
    if isinstance(size, float):
        if not (math.isfinite(size) and abs(size) <= MAX_EXACT_FLOAT and size == int(size)):
            raise ValueError(f"size {size!r} is not an exact byte count")
        size = int(size)
    if not 0 <= size <= MAX_BIGINT:
        raise ValueError(f"size {size} is out of range (0 .. 2^63-1)")
    return size


def parse_key(raw_key: str) -> str:
    """S3 sends keys URL-encoded with '+' for a space; the decoded bytes must be UTF-8."""
    try:
        key = unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("object key does not decode to UTF-8") from None
    storable_text(key, "object key")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"object key longer than {MAX_KEY_BYTES} bytes")
    return key


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
    if not _EVENT_NAME.fullmatch(name):
        raise ValueError(f"eventName {quarantine_text(name, 80)!r} is not an S3 event name")
    s3 = record.get("s3")
    if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict) or not isinstance(s3.get("object"), dict):
        raise TypeError("s3.bucket / s3.object missing")
    bucket = s3["bucket"].get("name")
    raw_key = s3["object"].get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        raise ValueError("bucket name or object key missing")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"bucket name {quarantine_text(bucket, 80)!r} is not an S3 bucket name")
    key = parse_key(raw_key)
    event_time = parse_event_time(record.get("eventTime"))
    size = s3["object"].get("size")
    if size is not None:
        size = parse_size(size)
    if name.startswith("ObjectCreated:") and size is None:
        raise ValueError("ObjectCreated event without size")
    version_id = s3["object"].get("versionId")
    if version_id is None:
        version_id = ""
    elif not isinstance(version_id, str) or not 0 < len(version_id) <= MAX_VERSION_ID_CHARS:
        raise ValueError("versionId is not a version id")
    else:
        storable_text(version_id, "versionId")
    sequencer = s3["object"].get("sequencer")
    derived = False
    if sequencer is None:
        sequencer = derived_sequencer(event_time, record)
        derived = True
    elif not isinstance(sequencer, str) or not _HEX.fullmatch(sequencer):
        raise ValueError(f"sequencer {quarantine_text(str(sequencer), 80)!r} is not 1-64 hexadecimal digits")
    return (
        {
            "bucket": bucket,
            "key": key,
            "version_id": version_id,
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
        out.dead.append((-1, quarantine_text(f"not JSON ({type(error).__name__}: {error})", 500)))
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
            out.dead.append((index, quarantine_text(str(error), 500) or type(error).__name__))
            continue
        out.events.append(event)
        out.sequencer_derived += derived
    return out
