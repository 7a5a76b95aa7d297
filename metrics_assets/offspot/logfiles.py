"""Finding the box's log files and checking their ends, before DuckDB reads them.

The log folder holds Caddy's live ``access.log``, its rotated siblings
(``access-2026-01-02T15-04-05.000.log`` or ``.log.gz``, named by the UTC time of the roll),
and ``heartbeat.log``. Anything else is skipped and counted as "not an access log".

A rotated file named for time T holds the lines written after the previous roll and up to T,
so a window only needs the files whose span meets it (plus the live file): an hourly run on
a year of logs reads one or two files.

Each file's end is checked here: a last line cut by a crash mid-write (no final newline, not
valid JSON) is counted as ``truncated_last_line`` rather than ``not_json``, and a gzip file
that cannot be decompressed to its end is skipped whole (DuckDB would fail the query on it).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ACCESS_RE = re.compile(
    r"^access(?:-(?P<rolled>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?))?\.log(?P<gz>\.gz)?$"
)
HEARTBEAT_NAME = "heartbeat.log"
#: Slack around rotation times, for clocks and roll timing that are a little off.
ROTATION_MARGIN = timedelta(hours=1)
TAIL_BYTES = 1 << 20


@dataclass(frozen=True)
class LogFile:
    name: str
    rolled_at: datetime | None  # None for the live file
    gzipped: bool


@dataclass
class Inventory:
    """The folder's files, sorted into what is read and what is skipped (with why)."""

    access: list[LogFile] = field(default_factory=list)
    heartbeat: str | None = None
    skipped_files: dict[str, str] = field(default_factory=dict)  # name -> reason


def classify(names: list[str]) -> Inventory:
    inventory = Inventory()
    for name in sorted(names):
        match = ACCESS_RE.match(name)
        if name == HEARTBEAT_NAME:
            inventory.heartbeat = name
        elif match:
            rolled = match.group("rolled")
            rolled_at = None
            if rolled:
                stamp = rolled.split(".")[0]
                rolled_at = datetime.strptime(stamp, "%Y-%m-%dT%H-%M-%S").replace(tzinfo=UTC)
            inventory.access.append(LogFile(name, rolled_at, bool(match.group("gz"))))
        else:
            inventory.skipped_files[name] = "not an access log"
    return inventory


def files_for_window(files: list[LogFile], start: datetime, end: datetime) -> list[LogFile]:
    """The access logs whose lines may fall in [start, end): each rotated file covers
    (previous roll, its roll]; the live file covers everything after the last roll."""
    rolled = sorted((f for f in files if f.rolled_at is not None), key=lambda f: f.rolled_at)
    chosen: list[LogFile] = []
    previous: datetime | None = None
    for f in rolled:
        covers_from = previous
        if f.rolled_at >= start - ROTATION_MARGIN and (covers_from is None or covers_from < end + ROTATION_MARGIN):
            chosen.append(f)
        previous = f.rolled_at
    chosen.extend(f for f in files if f.rolled_at is None)
    return chosen


class CorruptFile(Exception):
    """The file cannot be read to its end (e.g. a gzip stream cut short)."""


def _tail_of_gzip(path: Path) -> bytes:
    tail = b""
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(8 << 20):
                tail = (tail + chunk)[-TAIL_BYTES:]
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptFile(f"corrupt gzip: {error}") from error
    return tail


def _tail_of_plain(path: Path) -> bytes:
    with path.open("rb") as stream:
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(max(0, size - TAIL_BYTES))
        return stream.read()


def truncated_last_line(path: Path, gzipped: bool) -> bool:
    """True when the file ends without a newline in a line that is not valid JSON."""
    tail = _tail_of_gzip(path) if gzipped else _tail_of_plain(path)
    if not tail or tail.endswith(b"\n"):
        return False
    fragment = tail.rsplit(b"\n", 1)[-1].strip()
    if not fragment:
        return False
    try:
        return not isinstance(json.loads(fragment), dict)
    except ValueError:
        return True
