"""Finding the box's log files and checking their ends, before DuckDB reads them.

The log folder holds Caddy's live log and its rotated siblings, and ``heartbeat.log``. A stock
offspot box (offspot/container-images, ``reverse-proxy/gen-caddyfile.py``) logs to
``metrics.json`` with ``roll_size 1MiB``, ``roll_keep 2``, ``roll_keep_for 48h`` and
``roll_uncompressed``: rotated files are ``metrics-2026-01-02T15-04-05.000.json``. Caddy's
roller (lumberjack) names a rotated file ``<stem>-<UTC time of the roll><.ext>`` and gzips it
to ``<...>.gz`` unless ``roll_uncompressed``. The names looked for come from
``OFFSPOT_LOG_PATTERN`` (default ``metrics.json,access.log``). ``packages.yaml`` is known (a
fleet's box folder holds it); anything else is skipped and counted as "not an access log".

The same rotated file can be there twice, plain and gzipped: Caddy leaves both while it
compresses, and a sync without ``--delete`` keeps both. It is read once; see :func:`twins`.

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

ROLLED_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
HEARTBEAT_NAME = "heartbeat.log"
PACKAGES_NAME = "packages.yaml"


def name_pattern(names: list[str]) -> re.Pattern:
    """The file names of the live logs ``names`` and of their rotated and gzipped siblings."""
    alternatives = []
    for i, name in enumerate(names):
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        else:
            ext = "." + ext
        alternatives.append(
            f"(?P<stem{i}>{re.escape(stem)})(?:-(?P<rolled{i}>{ROLLED_TIME}))?(?P<ext{i}>{re.escape(ext)})"
        )
    return re.compile(r"^(?:" + "|".join(alternatives) + r")(?P<gz>\.gz)?$")


#: Slack around rotation times, for clocks and roll timing that are a little off.
ROTATION_MARGIN = timedelta(hours=1)
TAIL_BYTES = 1 << 16  # a Caddy line is a few KB; a longer tail only costs reads


@dataclass(frozen=True)
class LogFile:
    name: str
    rolled_at: datetime | None  # None for the live file
    gzipped: bool
    family: str = ""  # the live name it belongs to (``metrics.json``)

    @property
    def plain_name(self) -> str:
        return self.name[:-3] if self.gzipped else self.name


@dataclass
class Inventory:
    """The folder's files, sorted into what is read and what is skipped (with why)."""

    access: list[LogFile] = field(default_factory=list)
    heartbeat: str | None = None
    skipped_files: dict[str, str] = field(default_factory=dict)  # name -> reason


def classify(names: list[str], log_names: list[str] | None = None) -> Inventory:
    """Sort a folder's file names; ``log_names`` defaults to ``OFFSPOT_LOG_PATTERN``'s."""
    if log_names is None:
        from metrics_assets.offspot.config import log_names as configured

        log_names = configured()
    pattern = name_pattern(log_names)
    inventory = Inventory()
    for name in sorted(names):
        match = pattern.match(name)
        if name == HEARTBEAT_NAME:
            inventory.heartbeat = name
        elif name == PACKAGES_NAME:
            continue
        elif match:
            i = next(int(k[len("stem") :]) for k, v in match.groupdict().items() if k.startswith("stem") and v)
            rolled = match.group(f"rolled{i}")
            rolled_at = None
            if rolled:
                stamp = rolled.split(".")[0]
                rolled_at = datetime.strptime(stamp, "%Y-%m-%dT%H-%M-%S").replace(tzinfo=UTC)
            inventory.access.append(LogFile(name, rolled_at, bool(match.group("gz")), log_names[i]))
        else:
            inventory.skipped_files[name] = "not an access log"
    return inventory


def twins(files: list[LogFile]) -> list[tuple[LogFile, LogFile]]:
    """Pairs (plain, gzipped) of the same file present both ways."""
    by_plain: dict[str, list[LogFile]] = {}
    for f in files:
        by_plain.setdefault(f.plain_name, []).append(f)
    pairs = []
    for group in by_plain.values():
        if len(group) == 2:
            plain, gz = sorted(group, key=lambda f: f.gzipped)
            pairs.append((plain, gz))
    return pairs


def content_length(path: Path, gzipped: bool) -> int:
    """Bytes of log text in the file; a gzip stream that ends early raises :class:`CorruptFile`."""
    if not gzipped:
        return path.stat().st_size
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(8 << 20):
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptFile(f"corrupt gzip: {error}") from error
    return total


def files_for_window(files: list[LogFile], start: datetime, end: datetime) -> list[LogFile]:
    """The access logs whose lines may fall in [start, end): each rotated file covers
    (previous roll of its family, its roll]; the live file covers everything after the last roll."""
    chosen: list[LogFile] = []
    for family in sorted({f.family for f in files}):
        rolled = sorted(
            ((f.rolled_at, f) for f in files if f.family == family and f.rolled_at is not None),
            key=lambda pair: pair[0],
        )
        previous: datetime | None = None
        for rolled_at, f in rolled:
            covers_from = previous
            if rolled_at >= start - ROTATION_MARGIN and (covers_from is None or covers_from < end + ROTATION_MARGIN):
                chosen.append(f)
            previous = rolled_at
        chosen.extend(f for f in files if f.family == family and f.rolled_at is None)
    return chosen


def covered_from(files: list[LogFile], chosen: list[LogFile]) -> datetime | None:
    """From when the chosen files hold every line: the latest roll, over the families, of a
    rotated file older than the family's oldest chosen one (its lines end there, the chosen
    ones start there). None when some family's chosen files start with the oldest file kept,
    whose first line is then the only clue (the box deletes older files after 48 h)."""
    starts = []
    for family in {f.family for f in chosen}:
        mine = [f for f in chosen if f.family == family]
        oldest = min((f.rolled_at for f in mine if f.rolled_at is not None), default=None)
        older = [
            f.rolled_at
            for f in files
            if f.family == family and f.rolled_at is not None and (oldest is None or f.rolled_at < oldest)
        ]
        if not older:
            return None
        starts.append(max(older))
    return min(starts) if starts else None


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
