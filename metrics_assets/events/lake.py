"""The event lake's two tables, as the rest of the code location sees them, and the files of a slice.

This module is the one place that names them and their columns. Other domains (``queries``)
rely on these names and columns: change them only together with the Athena DDL in
``sql/ddl/`` and the README.

* ``events_v0`` over ``<bucket>/<prefix>/v0/<layout folders>/<Secor file>`` (topic ``v0``)
* ``events_v1`` over ``<bucket>/<prefix>/v1/...`` (same folders)
* ``events_normalized``: both versions in one shape (a view in Athena, see
  ``sql/events_normalized.sql``), which every query of this domain reads.

Each table has the JSON columns and ONE partition column, ``arrival_minute``: the folder path
after its first ``key=`` (``2026-01-05/hr=10/min=07`` in Secor's default layout; see
:mod:`metrics_assets.events.layout`).

Locally each table is a DuckDB view over the files. A file is recognised by its content, not by
its name (Secor names files ``<generation>_<kafka partition>_<20-digit offset>`` plus the codec's
extension): gzip and zstd by their magic bytes, known binary formats (Parquet, ORC, Avro, Hadoop
sequence files) are foreign and skipped (counted), anything else is read as text. Like Hadoop's
input formats, names starting with ``.`` or ``_`` (Secor's ``.crc`` files, ``_SUCCESS``) are
hidden. An asset reads a slice through :func:`slice_tables`, whose views list only the folders of
the slice: the local cost grows with the slice, not with the lake. Each line is read as Athena's
OpenX SerDe reads it (:func:`duckdb_select`, ``parity.openx_line``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from metrics_assets.events import config, parity
from metrics_assets.events.layout import PARTITION_COLUMN, Layout
from metrics_assets.resources import lake
from metrics_assets.resources.query_engine import render
from metrics_assets.resources.sqltext import ident, literal

EVENTS_V0 = "events_v0"
EVENTS_V1 = "events_v1"
EVENTS_NORMALIZED = "events_normalized"
VERSIONS = {EVENTS_V0: "v0", EVENTS_V1: "v1"}

#: The tables' partition column (one, projected as a date in Athena).
PARTITION_COLUMNS = (PARTITION_COLUMN,)
HOUR_MS = 3_600_000

#: (column, DuckDB type, Athena type): the order is the tables' column order.
V0_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("resourceid", "VARCHAR", "string"),
    ("customerid", "BIGINT", "bigint"),
    ("operationid", "VARCHAR", "string"),
    ("servicename", "VARCHAR", "string"),
    ("service", "VARCHAR", "string"),
    ("createdtimestamp", "BIGINT", "bigint"),  # epoch milliseconds
    ("arrivaltimestamp", "BIGINT", "bigint"),  # epoch milliseconds
    ("tags", "VARCHAR[]", "array<string>"),
    ("data", "JSON", "string"),  # the JSON object; Athena keeps it as its text
)
V1_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (
        "envelope",
        (
            "STRUCT(resourceId VARCHAR, customerId BIGINT, operationId VARCHAR, service STRUCT(name VARCHAR), "
            "createdAt VARCHAR, arrivedAt VARCHAR, tags VARCHAR[])"
        ),
        (
            "struct<resourceId:string,customerId:bigint,operationId:string,service:struct<name:string>,"
            "createdAt:string,arrivedAt:string,tags:array<string>>"
        ),
    ),
    ("eventType", "VARCHAR", "string"),
    ("data", "JSON", "string"),
)
COLUMNS = {EVENTS_V0: V0_COLUMNS, EVENTS_V1: V1_COLUMNS}

SQL_DIR = Path(__file__).parent / "sql"


# -- recognising files by content ----------------------------------------------------------
GZIP, ZSTD, TEXT, FOREIGN = "gzip", "zstd", "none", "foreign"
_FOREIGN_MAGIC = (b"PAR1", b"ORC", b"Obj\x01", b"SEQ")


def file_kind(path: Path) -> str:
    """``gzip``/``zstd``/``none`` (plain text) by the file's first bytes, or ``foreign``."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        return GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return ZSTD
    if any(head.startswith(m) for m in _FOREIGN_MAGIC):
        return FOREIGN
    return TEXT


#: Files a query found not to be UTF-8 (path -> (size, mtime_ns) when found). The views read
#: them as Latin-1 and decode each line's bytes as Java does (Athena's reader: ``new
#: String(bytes, UTF_8)``, every invalid sequence a U+FFFD). Other files are read as UTF-8: a
#: file of this record needs one failed query per process to be found (:func:`reread_after`).
_NOT_UTF8: dict[str, tuple[int, int]] = {}
_FILE_IN_ERROR = re.compile(r"^\s*file = (.+?)\s*$", re.MULTILINE)
log = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def not_utf8(path: Path) -> bool:
    """Whether a query found ``path``, as it is now, not to be UTF-8."""
    known = _NOT_UTF8.get(str(path))
    return known is not None and path.is_file() and known == _signature(path)


def reread_after(error: Exception) -> bool:
    """After DuckDB's CSV reader refused a lake file as not UTF-8, record it (the views then
    read it as Athena does) and say that the query should run again."""
    text = str(error)
    match = _FILE_IN_ERROR.search(text)
    if "Invalid unicode" not in text or match is None:
        return False
    path = Path(match.group(1))
    if not path.is_file() or not_utf8(path):
        return False
    _NOT_UTF8[str(path)] = _signature(path)
    log.warning("event lake file %s is not UTF-8: its invalid bytes are read as U+FFFD, as Athena does", path)
    return True


def utf8_as_java(line: str | None) -> str | None:
    """A line read as Latin-1 (each byte one character), decoded as UTF-8 the way Java's
    ``new String(bytes, UTF_8)`` does: every invalid sequence becomes U+FFFD. Any other text
    (the function can be called from SQL) is returned as it is."""
    if line is None:
        return None
    try:
        return line.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return line


UTF8_FUNCTION = "athena_utf8_line"


def hidden(name: str) -> bool:
    """Hadoop's hidden-file rule (FileInputFormat): Athena never reads these either."""
    return name.startswith((".", "_"))


@dataclass
class Files:
    """The readable files of some folders, by compression, and the foreign ones."""

    by_kind: dict[str, list[Path]] = field(default_factory=lambda: {GZIP: [], ZSTD: [], TEXT: []})
    foreign: list[Path] = field(default_factory=list)

    def add(self, path: Path) -> None:
        kind = file_kind(path)
        (self.foreign if kind == FOREIGN else self.by_kind[kind]).append(path)

    @property
    def readable(self) -> list[Path]:
        return [p for paths in self.by_kind.values() for p in paths]

    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.readable)


def _walk(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if hidden(entry.name) or entry.name.endswith(".tmp-upload"):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def local_files(topic: Path, layout: Layout, hours: list[datetime] | None) -> Files:
    """The files of a topic folder in ``layout``: of the given hours, or all of them (None)."""
    files = Files()
    folders = [topic] if hours is None else [topic / layout.hour_folder(h) for h in hours]
    for folder in folders:
        for path in _walk(folder):
            if layout.parse(path.relative_to(topic).as_posix()) is not None:
                files.add(path)
    return files


# -- the DuckDB views ----------------------------------------------------------------------
def _spec(dtype: exp.DataType) -> Any:
    if dtype.this == exp.DataType.Type.STRUCT:
        return {c.name: _spec(c.args["kind"]) for c in dtype.expressions}
    if dtype.this == exp.DataType.Type.ARRAY:
        return [_spec(dtype.expressions[0])]
    return "JSON" if dtype.this == exp.DataType.Type.JSON else dtype.sql("duckdb")


@functools.cache
def line_spec(name: str) -> parity.Spec:
    """A table's columns as ``json_transform``'s structure (the view's reading of a line)."""
    return {c: _spec(exp.DataType.build(t, dialect="duckdb")) for c, t, _ in COLUMNS[name]}


def _paths(spec: parity.Spec, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, sub in spec.items():
        yield (*prefix, key)
        if isinstance(sub, dict):
            yield from _paths(sub, (*prefix, key))


@functools.cache
def other_spellings(key: str) -> str:
    """A regular expression (RE2) matching ``key`` quoted and spelt in another case
    (``"CustomerID"`` for ``customerid``), never in its own spelling: for each letter, the exact
    prefix before it, that letter in the other case, then the rest in any case."""
    variants = []
    for i, char in enumerate(key):
        if char.lower() == char.upper():
            continue
        rest = key[i + 1 :]
        variants.append(re.escape(key[:i]) + re.escape(char.swapcase()) + (f"(?i:{re.escape(rest)})" if rest else ""))
    return '"(?:' + "|".join(variants) + ')"'


def reader_function(name: str) -> str:
    """The name of the Python function that reads a raw line of ``name`` as Athena does."""
    return f"athena_openx_{name}"


#: Read every line whole: no quoting, no header, a separator JSON text never holds (a control
#: character must be escaped in JSON), every line a row (a blank line is a NULL). The line end is
#: detected per file (LF or CRLF), as Hadoop's line reader takes both.
_LINES = (
    "columns = {'line': 'VARCHAR'}, sep = chr(31), quote = '', escape = '', header = false, "
    "auto_detect = false, strict_mode = false, max_line_size = 16777216, buffer_size = 33554432"
)


def duckdb_select(name: str, files: Files, layout: Layout) -> str:
    """The DuckDB SELECT of table ``name`` over ``files``; zero rows (same columns) when there is none.

    Athena reads the lines with the OpenX JSON SerDe (see ``parity.openx_line`` for its rules).
    Each line is read whole (``read_csv``: blank lines included) and parsed once by
    ``json_transform``. That fast path is exact for a line that starts with ``{``, parses, and
    whose every absent or NULL field is also absent in another case. Any other line (blank, not
    an object, text after the object, a key in another case) goes to the Python function
    ``reader_function(name)``, which reads it as Athena would; producers never write such lines,
    so it runs on almost none. A file found not to be UTF-8 (:func:`reread_after`) is read as
    Latin-1 and each line decoded as Java decodes it (:func:`utf8_as_java`) first.
    """
    columns = COLUMNS[name]
    spec = literal(json.dumps(line_spec(name)))
    # A field is NULL when its key is absent, JSON null, or spelt in another case. Only for the
    # last is the fast path wrong: a NULL field's key is looked for in its other spellings (a
    # CASE condition runs its second test only on the rows that pass its first).
    absent = " ".join(
        f"WHEN j0.{'.'.join(ident(p) for p in path)} IS NULL AND regexp_matches(line, {literal(other_spellings(path[-1]))}) "
        "THEN false"
        for path in _paths(line_spec(name))
    )
    exact = f"CASE WHEN j0 IS NULL OR NOT starts_with(line, '{{') THEN false {absent} ELSE true END"
    # Athena's `data` is a string column: an object is its JSON text, a JSON string its content
    # (the SerDe unwraps it), so json_extract_scalar reads into both. json_transform hands a JSON
    # field over as compact JSON text, so a string is the value that starts with a quote.
    names = ", ".join(
        (
            f"CASE WHEN starts_with(CAST(j.{ident(c)} AS VARCHAR), '\"') THEN json_extract_string(j.{ident(c)}, '$') "
            f"ELSE CAST(j.{ident(c)} AS VARCHAR) END AS {ident(c)}"
        )
        if t == "JSON"
        else f"j.{ident(c)} AS {ident(c)}"
        for c, t, _ in columns
    )
    keys = ", ".join(ident(k) for k in layout.keys)
    hive_types = ", ".join(f"{literal(k)}: 'VARCHAR'" for k in layout.keys)
    parts = []
    for kind, kind_paths in files.by_kind.items():
        bad = [p for p in kind_paths if not_utf8(p)]
        for paths_, encoding, line in (
            ([p for p in kind_paths if p not in bad], "utf-8", "line"),
            (bad, "latin-1", f"{UTF8_FUNCTION}(line) AS line"),
        ):
            if not paths_:
                continue
            listing = "[" + ", ".join(literal(str(p)) for p in paths_) + "]"
            lines = (
                f"SELECT {line}, {keys} FROM read_csv({listing}, {_LINES}, compression = '{kind}', "
                f"encoding = '{encoding}', hive_partitioning = true, hive_types = {{{hive_types}}})"
            )
            parts.append(
                f"SELECT {names}, {layout.duckdb_value} AS {ident(PARTITION_COLUMN)} FROM ("
                f"SELECT CASE WHEN {exact} THEN j0 ELSE TRY(json_transform({reader_function(name)}(line), {spec})) END AS j, "
                f"{keys} FROM (SELECT line, TRY(json_transform(line, {spec})) AS j0, {keys} FROM ({lines})))"
            )
    if not parts:
        typed = [f"CAST(NULL AS {'VARCHAR' if t == 'JSON' else t}) AS {ident(c)}" for c, t, _ in columns]
        return f"SELECT {', '.join(typed)}, CAST(NULL AS VARCHAR) AS {ident(PARTITION_COLUMN)} WHERE false"
    return " UNION ALL ".join(parts)


def normalized_select(layout: Layout | None = None) -> str:
    """Both versions in one shape, in Athena SQL (the body of the ``events_normalized`` view),
    with the layout's hour format filled in."""
    layout = layout or config.lake_layout()
    return (
        (SQL_DIR / "events_normalized.sql")
        .read_text()
        .replace("{hour_length}", str(layout.hour_length))
        .replace("{hour_format}", layout.hour_format)
    )


@functools.lru_cache(maxsize=8)
def _normalized_duckdb_for(text: str) -> str:
    """The view's DuckDB SQL: the foundation's translation, with Athena's semantics (parity.py)."""
    return render(text, None, "duckdb", parity.transform)


#: The folders the local views read: None (every folder) or a slice's hours, with the files
#: each topic's view read (see :func:`slice_tables`).
_scope: contextvars.ContextVar[tuple[list[datetime] | None, dict[str, Files] | None]] = contextvars.ContextVar(
    "events_lake_scope", default=(None, None)
)


def _topic_prefix(version: str) -> str:
    prefix = config.lake_prefix()
    return f"{prefix}/{version}" if prefix else version


def _topic_view(name: str, version: str):
    def view(folder: Path) -> str:
        hours, seen = _scope.get()
        layout = config.lake_layout()
        files = local_files(folder, layout, hours)
        if seen is not None:
            seen[version] = files
        return duckdb_select(name, files, layout)

    return view


def _normalized_view(_folder: Path) -> str:
    return _normalized_duckdb_for(normalized_select(config.lake_layout()))


#: This domain's lake tables (the code location's catalog is built from them, see
#: metrics_assets/lake_catalog.py). Placed by EVENT_LAKE_BUCKET/PREFIX/LAYOUT, read when used.
LAKE_TABLES: tuple[lake.LakeTable, ...] = (
    *(
        lake.LakeTable(
            name=name,
            bucket=config.lake_bucket,
            prefix=functools.partial(_topic_prefix, version),
            duckdb_view=_topic_view(name, version),
            ad_hoc=True,
            duckdb_functions=(
                lake.ScalarFunction(reader_function(name), parity.openx_line(line_spec(name)), ("VARCHAR",), "VARCHAR"),
                lake.ScalarFunction(UTF8_FUNCTION, utf8_as_java, ("VARCHAR",), "VARCHAR"),
            ),
            reread_after=reread_after,
            description=f"Event lake, topic {version}: Secor's JSON lines in EVENT_LAKE_LAYOUT folders.",
        )
        for name, version in VERSIONS.items()
    ),
    lake.LakeTable(
        name=EVENTS_NORMALIZED,
        bucket=config.lake_bucket,
        # A view over the two tables: it has no files of its own. The folder named here never
        # exists, so the engine's generic "bytes of the whole table" walk is skipped for it;
        # the assets report the bytes of the files they actually read.
        prefix=functools.partial(_topic_prefix, f"_view_{EVENTS_NORMALIZED}"),
        duckdb_view=_normalized_view,
        description="events_v0 and events_v1 in one shape (a view).",
    ),
)


@contextlib.contextmanager
def slice_tables(hours: list[datetime]) -> Iterator[dict[str, Files]]:
    """Within the block, the local lake tables read only the folders of ``hours``. Yields, per
    topic, the files the last query read (filled when the engine builds its views)."""
    seen: dict[str, Files] = {}
    token = _scope.set((hours, seen))
    try:
        yield seen
    finally:
        _scope.reset(token)


# -- the slice's folders -------------------------------------------------------------------
def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours_between(first: datetime, last: datetime) -> list[datetime]:
    hours, hour = [], floor_hour(first)
    while hour <= last:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def own_hours(start: datetime, end: datetime) -> list[datetime]:
    """The folder hours a slice [start, end) owns (for lines counted by folder: skips, late events)."""
    return hours_between(start, floor_hour(end - timedelta(microseconds=1)))


def folder_hours(start: datetime, end: datetime, lateness_hours: int, early_hours: int = 0) -> list[datetime]:
    """The folder hours a slice [start, end) reads: every folder that may hold an event created in
    it within the bounds (``early_hours`` before it to ``lateness_hours`` after its last hour)."""
    last = floor_hour(end - timedelta(microseconds=1)) + timedelta(hours=lateness_hours)
    return hours_between(floor_hour(start) - timedelta(hours=early_hours), last)


def slice_params(
    start: datetime, end: datetime, lateness_hours: int, early_hours: int = 0, layout: Layout | None = None
) -> dict[str, object]:
    """The query parameters that restrict a query to a slice.

    ``start_ms``/``end_ms`` bound the created time (and, for lines counted by folder, the
    folder's hour). ``folder_lo``/``folder_hi`` bound the one partition column (one interval:
    Athena's projection prunes to exactly these folders). ``late_ms``/``early_ms`` are the
    bounds on ``folder_lag_ms`` (folder hour minus created hour) within which an event counts
    for its created hour.
    """
    layout = layout or config.lake_layout()
    hours = folder_hours(start, end, lateness_hours, early_hours)
    folder_lo, folder_hi = layout.hour_value_bounds(hours[0], hours[-1])
    return {
        "start_ms": int(start.timestamp() * 1000),
        "end_ms": int(end.timestamp() * 1000),
        "late_ms": lateness_hours * HOUR_MS,
        "early_ms": -early_hours * HOUR_MS,
        "folder_lo": folder_lo,
        "folder_hi": folder_hi,
    }


# -- never silently empty --------------------------------------------------------------------
class LakeNotFound(RuntimeError):
    """The lake, or the folders of a slice, are not where the settings say. Nothing is written."""


SETTINGS_HINT = "check EVENT_LAKE_BUCKET, EVENT_LAKE_PREFIX and EVENT_LAKE_LAYOUT"
#: A missing hour folder is a truly empty hour when the lake holds a folder this many hours after it.
LOOKAHEAD_HOURS = 24


@dataclass
class SliceCheck:
    """What the lake holds for a slice's own hours."""

    hours_with_files: list[datetime]
    empty_hours: list[datetime]


def _has_objects(object_store, bucket: str, key_prefix: str) -> bool:
    """Whether any (non-hidden) object sits under ``key_prefix``: one listing page at most."""
    local = object_store.local_path(bucket, key_prefix)
    if local is not None:
        return any(True for _ in _walk(local)) if local.is_dir() else False
    for page in object_store.list_pages(bucket, key_prefix, page_size=100):
        for info in page:
            name = info.key.rsplit("/", 1)[-1]
            if not hidden(name):
                return True
    return False


def _topic_prefixes() -> dict[str, str]:
    prefix = config.lake_prefix()
    return {v: (f"{prefix}/{v}" if prefix else v) for v in VERSIONS.values()}


def _sample_keys(object_store, bucket: str, topic: str, limit: int = 50) -> list[str]:
    local = object_store.local_path(bucket, topic)
    if local is not None:
        out = []
        for path in _walk(local):
            out.append(path.relative_to(local).as_posix())
            if len(out) >= limit:
                break
        return out
    for page in object_store.list_pages(bucket, topic + "/", page_size=limit):
        return [i.key[len(topic) + 1 :] for i in page if not hidden(i.key.rsplit("/", 1)[-1])]
    return []


def check_slice(object_store, start: datetime, end: datetime) -> SliceCheck:
    """Fail (:class:`LakeNotFound`, naming the settings) unless the lake is there and every hour
    the slice owns either has files or is followed by a folder within ``LOOKAHEAD_HOURS``
    (then it is truly empty, and said so). Called before any query, so a wrong setting never
    replaces good rows with nothing."""
    bucket, layout = config.lake_bucket(), config.lake_layout()
    topics = _topic_prefixes()
    where = f"s3://{bucket}/{config.lake_prefix()}"
    present = {v: t for v, t in topics.items() if _has_objects(object_store, bucket, t + "/")}
    if not present:
        raise LakeNotFound(
            f"No event lake at {where}: neither topic folder ({', '.join(t + '/' for t in topics.values())}) "
            f"holds a file; {SETTINGS_HINT}. Nothing was written."
        )
    samples = {v: _sample_keys(object_store, bucket, t) for v, t in present.items()}
    if not any(layout.parse(k) for keys in samples.values() for k in keys):
        example = next((k for keys in samples.values() for k in keys), "?")
        raise LakeNotFound(
            f"The event lake at {where} is not in the layout EVENT_LAKE_LAYOUT={layout.name!r}: e.g. "
            f"{example!r}; {SETTINGS_HINT} (layouts: see metrics_assets/events/layout.py). Nothing was written."
        )

    cache: dict[datetime, bool] = {}

    def hour_has_files(hour: datetime) -> bool:
        if hour not in cache:
            cache[hour] = any(
                _has_objects(object_store, bucket, f"{t}/{layout.hour_folder(hour)}/") for t in present.values()
            )
        return cache[hour]

    with_files, empty = [], []
    for hour in own_hours(start, end):
        if hour_has_files(hour):
            with_files.append(hour)
            continue
        later = [hour + timedelta(hours=k) for k in range(1, LOOKAHEAD_HOURS + 1)]
        if any(hour_has_files(h) for h in later):
            empty.append(hour)
            continue
        raise LakeNotFound(
            f"The event lake at {where} has no folder for {hour:%Y-%m-%d %H}:00 UTC "
            f"({layout.hour_folder(hour)}/ under {', '.join(t + '/' for t in present.values())}) nor for the "
            f"{LOOKAHEAD_HOURS} hours after it: Secor has not written this hour yet, or {SETTINGS_HINT}. "
            "Nothing was written; existing rows are kept."
        )
    return SliceCheck(with_files, empty)
