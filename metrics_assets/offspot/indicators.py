"""Hourly indicators from Caddy access logs, in one DuckDB pass for every box.

No Dagster here: :func:`compute_indicators` takes each box's files, heartbeat and packages and
a window, and returns the indicator records (with ``box_id``) and what was read and skipped.
All boxes' files are scanned together; ``read_json(filename = true)`` tells each line's box.

How it stays fast on big logs: DuckDB's ``read_json`` scans the files (in parallel, gzip
included) projecting only the fields used, and each line is reduced at once to a few cheap
keys (minute, level, msg, logger, host, method, status, zim segment, document operation,
file-manager headers) that are aggregated with ``count(*)``. A million-line hour becomes a few
thousand rows; everything else (classification, the window, host normalisation, home visits)
is SQL over those rows, and the indicators are SQL over the resulting *features* joined to the
small packages table. Lines are never held in Python, and memory is bounded by DuckDB's
``memory_limit``.

Bad lines come out of ``read_json(ignore_errors=true)`` as all-NULL rows and are counted:

* ``not_json``: not a JSON object (or none of the access-log fields);
* ``truncated_last_line``: the last line of a file, cut mid-write (see ``logfiles``);
* ``other_logger``: a line of another Caddy logger (tls, admin, reverse proxy...), or a line
  with neither ``logger`` nor any request field. A line without ``logger`` that is otherwise an
  access line counts (the box's converter never reads ``logger``; its tests write none);
* ``bad_timestamp``: an access-log line without a numeric ``ts``;
* ``not_handled_request``: an access-log line that is not level "info" with msg "handled
  request" (Caddy logs 4xx and 5xx responses at level "error": they do not count, as on the box).

Only ``request.host``, ``request.uri``, ``request.method``, ``status``, ``ts`` and two response
headers are read: IP addresses and User-Agents never leave the log files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from metrics_assets.offspot.packages import EDUPI, FILE_MANAGER, Package, packages_table
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import literal

INDICATORS = {
    1001: "package_home_visits",
    1003: "shared_files_operations",
    1004: "uptime",
    1005: "total_usage",
    1006: "total_usage_by_package",
}
SKIP_REASONS = ("not_json", "truncated_last_line", "other_logger", "bad_timestamp", "not_handled_request")
DUCKDB_MEMORY_LIMIT = "512MB"

_COLUMNS = (
    "{level: 'VARCHAR', msg: 'VARCHAR', logger: 'VARCHAR', ts: 'DOUBLE', status: 'INTEGER', "
    "request: 'STRUCT(host VARCHAR, uri VARCHAR, method VARCHAR)', "
    'resp_headers: \'STRUCT("X-Tfm-Files-Added" VARCHAR[], "X-Tfm-Files-Deleted" VARCHAR[])\'}'
)

FEATURES_SQL = """
WITH scanned AS (
    -- per line: only cheap expressions; the aggregate keeps every distinct combination
    SELECT
        CAST(floor(ts / 60) AS BIGINT) AS minute, level, msg, logger, request.host AS host,
        request.method AS method, status,
        CASE WHEN starts_with(request.uri, '/content/') THEN split_part(request.uri, '/', 3) END AS zim_segment,
        -- the box's zim home: /content/<zim> or /content/<zim>/ (not /content/<zim>//), query ignored
        starts_with(request.uri, '/content/')
            AND regexp_full_match(request.uri, '/content/[^/?#]+/?([?#].*)?') AS zim_home,
        request.uri = '/' OR starts_with(request.uri, '/?') OR starts_with(request.uri, '/#') AS is_root,
        CASE
            WHEN request.method = 'POST' AND status = 201
                 AND split_part(request.uri, '?', 1) = '/api/documents/' THEN 'created'
            WHEN request.method = 'DELETE' AND status = 204
                 AND regexp_full_match(split_part(request.uri, '?', 1), '/api/documents/[^/]+/?') THEN 'deleted'
        END AS document_op,
        resp_headers."X-Tfm-Files-Added"[1] AS added,
        resp_headers."X-Tfm-Files-Deleted"[1] AS deleted,
        filename,
        count(*) AS n
    FROM read_json({files}, format = 'newline_delimited', ignore_errors = {ignore_errors}, columns = {columns},
                   filename = true)
    GROUP BY ALL
), classified AS (
    SELECT *,
        CASE
            WHEN level IS NULL AND msg IS NULL AND logger IS NULL AND minute IS NULL
                 AND status IS NULL AND host IS NULL THEN 'not_json'
            WHEN logger IS NULL AND host IS NULL AND status IS NULL THEN 'other_logger'
            WHEN logger IS NOT NULL AND NOT (logger = 'http.log.access' OR starts_with(logger, 'http.log.access.'))
                THEN 'other_logger'
            WHEN minute IS NULL THEN 'bad_timestamp'
            WHEN level IS DISTINCT FROM 'info' OR msg IS DISTINCT FROM 'handled request'
                THEN 'not_handled_request'
            ELSE 'request'
        END AS category,
        coalesce(minute >= {start_minute} AND minute < {end_minute}, false) AS in_window
    FROM scanned
), windowed AS (
    SELECT f.box_id, category,
        CASE WHEN category IN ('request', 'not_handled_request') THEN minute END AS any_minute,
        CASE WHEN in_window AND category IN ('request', 'not_handled_request') THEN minute END AS minute,
        CASE WHEN in_window AND category = 'request' THEN lower(split_part(host, ':', 1)) END AS host,
        CASE WHEN in_window AND category = 'request' THEN
            split_part(split_part(zim_segment, '?', 1), '#', 1) END AS zim,
        in_window AND category = 'request' AND zim_home AS zim_home,
        in_window AND category = 'request' AND is_root AS is_root,
        CASE WHEN in_window AND category = 'request' THEN document_op END AS document_op,
        CASE WHEN in_window AND category = 'request' AND TRY_CAST(added AS BIGINT) >= 0
             THEN TRY_CAST(added AS BIGINT) ELSE 0 END AS added,
        CASE WHEN in_window AND category = 'request' AND TRY_CAST(deleted AS BIGINT) >= 0
             THEN TRY_CAST(deleted AS BIGINT) ELSE 0 END AS deleted,
        n
    FROM classified JOIN files f ON classified.filename = f.path
)
SELECT box_id, category, minute, host, zim, coalesce(zim_home, false) AS zim_home, coalesce(is_root, false) AS is_root,
    sum(n)::BIGINT AS n,
    coalesce(sum(n) FILTER (WHERE document_op = 'created'), 0)::BIGINT AS edupi_created,
    coalesce(sum(n) FILTER (WHERE document_op = 'deleted'), 0)::BIGINT AS edupi_deleted,
    sum(n * added)::BIGINT AS tfm_added,
    sum(n * deleted)::BIGINT AS tfm_deleted,
    min(any_minute) AS first_minute
FROM windowed
GROUP BY ALL
"""

HEARTBEAT_SQL = """
SELECT f.box_id, TRY_CAST(trim(v) AS DOUBLE) AS ts
FROM read_csv({file}, columns = {{'v': 'VARCHAR'}}, header = false, delim = '\\x01', quote = '',
              escape = '', auto_detect = false, strict_mode = false, ignore_errors = true, filename = true) h
JOIN heartbeat_files f ON h.filename = f.path
WHERE trim(v) <> ''
"""

INDICATORS_SQL = f"""
WITH matched AS (
    SELECT f.box_id, f.minute, f.minute // 60 * 60 AS hour, p.kind, p.title, p.ident, f.n,
        CASE WHEN (p.kind = 'zim' AND f.zim_home) OR (p.kind = 'files' AND f.is_root) THEN f.n ELSE 0 END
            AS home_visits,
        CASE WHEN p.ident = '{EDUPI}' THEN f.edupi_created
             WHEN p.ident = '{FILE_MANAGER}' THEN f.tfm_added ELSE 0 END AS created,
        CASE WHEN p.ident = '{EDUPI}' THEN f.edupi_deleted
             WHEN p.ident = '{FILE_MANAGER}' THEN f.tfm_deleted ELSE 0 END AS deleted
    FROM features f
    JOIN pkgs p ON f.box_id = p.box_id AND f.host = p.host AND (p.kind <> 'zim' OR f.zim = p.zim)
    WHERE f.category = 'request' AND f.minute IS NOT NULL
), slots_overall AS (
    SELECT box_id, hour, minute, min(minute) OVER (PARTITION BY box_id, hour) AS first_minute
    FROM (SELECT DISTINCT box_id, hour, minute FROM matched)
), slots_package AS (
    SELECT box_id, hour, title, minute, min(minute) OVER (PARTITION BY box_id, hour, title) AS first_minute
    FROM (SELECT DISTINCT box_id, hour, title, minute FROM matched)
), access_minutes AS (
    SELECT DISTINCT box_id, minute FROM features WHERE minute IS NOT NULL
), heartbeat_minutes AS (
    SELECT DISTINCT box_id, CAST(floor(ts / 60) AS BIGINT) AS minute
    FROM heartbeat WHERE ts >= $start AND ts < $end
), heartbeat_hours AS (
    SELECT box_id, minute // 60 * 60 AS hour, count(*) AS minutes FROM heartbeat_minutes GROUP BY ALL
), uptime AS (
    SELECT box_id, hour, minutes FROM heartbeat_hours
    UNION ALL
    SELECT box_id, minute // 60 * 60 AS hour, count(*) FROM access_minutes a
    WHERE NOT EXISTS (SELECT 1 FROM heartbeat_hours h WHERE h.box_id = a.box_id AND h.hour = a.minute // 60 * 60)
    GROUP BY ALL
), records AS (
    SELECT box_id, 1001 AS indicator_id, hour, title AS dimension, sum(home_visits) AS value
    FROM matched GROUP BY ALL
    UNION ALL
    SELECT box_id, 1003, hour, 'FILE_CREATED', sum(created) FROM matched GROUP BY ALL
    UNION ALL
    SELECT box_id, 1003, hour, 'FILE_DELETED', sum(deleted) FROM matched GROUP BY ALL
    UNION ALL
    SELECT box_id, 1004, hour, '', minutes FROM uptime
    UNION ALL
    SELECT box_id, 1005, hour, '', 10 * count(DISTINCT (minute - first_minute) // 10) FROM slots_overall GROUP BY ALL
    UNION ALL
    SELECT box_id, 1006, hour, title, 10 * count(DISTINCT (minute - first_minute) // 10)
    FROM slots_package GROUP BY ALL
)
SELECT box_id, CAST(indicator_id AS INTEGER) AS indicator_id, names.indicator_name,
       to_timestamp(hour * 60) AS period_start, dimension, CAST(value AS BIGINT) AS value
FROM records JOIN names USING (indicator_id)
WHERE value > 0
ORDER BY box_id, indicator_id, period_start, dimension
"""

#: Hours of the window where a box's heartbeat says it was on but no log line of that time can
#: be read: no readable log file, or hours before the one where its files start holding every
#: line (that hour counts as covered, as in the write: a new box's first hour is complete).
UNCOVERED_SQL = """
SELECT h.box_id, to_timestamp(h.minute // 60 * 3600) AS period_start, count(*)::BIGINT AS heartbeat_minutes
FROM (SELECT DISTINCT box_id, CAST(floor(ts / 60) AS BIGINT) AS minute FROM heartbeat
      WHERE ts >= $start AND ts < $end) h
LEFT JOIN coverage c USING (box_id)
WHERE c.from_minute IS NULL OR h.minute // 60 < c.from_minute // 60
GROUP BY ALL ORDER BY ALL
"""


@dataclass
class AccessFile:
    """One access log to read: its local path, the name shown in metadata, and whether its
    last line was found cut mid-write."""

    path: Path
    name: str
    truncated: bool = False


@dataclass
class BoxInput:
    """One box's inputs for the window. ``covered_from``: the time from which its files hold
    every line (the roll time of a rotated file older than those read), or None when only the
    oldest line read tells."""

    box_id: str
    files: list[AccessFile]
    heartbeat: Path | None
    packages: list[Package]
    covered_from: datetime | None = None


@dataclass
class Computation:
    records: pa.Table
    lines_read: int = 0
    requests_in_window: int = 0
    requests_matched: int = 0
    skipped_lines: dict[str, int] = field(default_factory=dict)
    skipped_files: dict[str, str] = field(default_factory=dict)
    uptime_source_hours: dict[str, int] = field(default_factory=dict)
    #: (box_id, period_start, heartbeat minutes) of hours on by the heartbeat without logs
    uncovered_hours: list[tuple[str, datetime, int]] = field(default_factory=list)
    #: per box, the minute (epoch minutes) from which its files hold every line, or None when
    #: nothing was read: a rotation older than the files read, else their oldest line
    covered_from_minute: dict[str, int | None] = field(default_factory=dict)


def _features(con, files: list[AccessFile], start: float, end: float, skipped_files: dict[str, str]) -> None:
    """Fill the ``features`` table; a file DuckDB cannot read is skipped, not fatal.

    Tolerant parsing (``ignore_errors``) costs about a quarter more than strict parsing, and
    most files are clean: files without a cut last line are first read strictly in one scan,
    and only if one of their lines is bad are they read again tolerantly."""

    def sql(paths: list[AccessFile], tolerant: bool) -> str:
        listed = "[" + ", ".join(literal(f.path) for f in paths) + "]"
        return FEATURES_SQL.format(
            files=listed,
            columns=_COLUMNS,
            start_minute=int(start // 60),
            end_minute=int(end // 60),
            ignore_errors="true" if tolerant else "false",
        )

    con.execute(
        "CREATE OR REPLACE TEMP TABLE features (box_id VARCHAR, category VARCHAR, minute BIGINT, "
        "host VARCHAR, zim VARCHAR, zim_home BOOLEAN, is_root BOOLEAN, n BIGINT, edupi_created BIGINT, "
        "edupi_deleted BIGINT, tfm_added BIGINT, tfm_deleted BIGINT, first_minute BIGINT)"
    )
    clean = [f for f in files if not f.truncated]
    tolerant = [f for f in files if f.truncated]
    if clean:
        try:
            con.execute(f"INSERT INTO features {sql(clean, tolerant=False)}")
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error:
            tolerant = clean + tolerant  # a bad line somewhere: read them all tolerantly
    if not tolerant:
        return
    try:
        con.execute(f"INSERT INTO features {sql(tolerant, tolerant=True)}")
        return
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error:
        pass
    # One file spoils the whole scan: read them one by one to find and skip it.
    for f in tolerant:
        try:
            con.execute(f"INSERT INTO features {sql([f], tolerant=True)}")
        except duckdb.OutOfMemoryException:
            raise  # not the file's fault: fail rather than write an empty slice
        except duckdb.Error as error:
            skipped_files[f.name] = f"unreadable: {str(error).splitlines()[0][:200]}"


def _heartbeats(con, boxes: list[BoxInput], skipped_files: dict[str, str]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE heartbeat (box_id VARCHAR, ts DOUBLE)")
    beats = [b for b in boxes if b.heartbeat is not None]
    if not beats:
        return

    def insert(chosen: list[BoxInput]) -> None:
        listed = "[" + ", ".join(literal(b.heartbeat) for b in chosen) + "]"
        con.execute(f"INSERT INTO heartbeat {HEARTBEAT_SQL.format(file=listed)}")

    try:
        insert(beats)
        return
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error:
        pass
    for box in beats:
        try:
            insert([box])
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as error:
            skipped_files[_shown(box, Path(str(box.heartbeat)).name)] = (
                f"unreadable: {str(error).splitlines()[0][:200]}"
            )


def _shown(box: BoxInput, name: str) -> str:
    return name if box.box_id == "default" else f"{box.box_id}/{name}"


def compute_indicators(boxes: list[BoxInput], start: datetime, end: datetime) -> Computation:
    """Indicator records of every box for every hour in [start, end) (UTC, whole hours)."""
    # the rows' order is set by the SQL's ORDER BY: DuckDB need not keep the files' order
    con = open_session(memory_limit=DUCKDB_MEMORY_LIMIT, config={"preserve_insertion_order": False})
    try:
        skipped_files: dict[str, str] = {}
        start_s, end_s = start.timestamp(), end.timestamp()
        files = [f for b in boxes for f in b.files]
        con.register(
            "files",
            pa.table(
                {
                    "path": pa.array([str(f.path) for b in boxes for f in b.files], pa.string()),
                    "box_id": pa.array([b.box_id for b in boxes for _ in b.files], pa.string()),
                }
            ),
        )
        con.register(
            "heartbeat_files",
            pa.table(
                {
                    "path": pa.array([str(b.heartbeat) for b in boxes if b.heartbeat is not None], pa.string()),
                    "box_id": pa.array([b.box_id for b in boxes if b.heartbeat is not None], pa.string()),
                }
            ),
        )
        _features(con, files, start_s, end_s, skipped_files)
        con.register("pkgs", packages_table([(b.box_id, p) for b in boxes for p in b.packages]))
        con.register(
            "names",
            pa.table(
                {
                    "indicator_id": pa.array(list(INDICATORS), pa.int32()),
                    "indicator_name": pa.array(list(INDICATORS.values())),
                }
            ),
        )
        _heartbeats(con, boxes, skipped_files)

        records = con.sql(INDICATORS_SQL, params={"start": start_s, "end": end_s}).to_arrow_table()

        first_minutes = dict(con.execute("SELECT box_id, min(first_minute) FROM features GROUP BY ALL").fetchall())
        coverage: list[tuple[str, int | None]] = []
        for b in boxes:
            if b.covered_from is not None:
                coverage.append((b.box_id, int(b.covered_from.timestamp() // 60)))
            else:
                coverage.append((b.box_id, first_minutes.get(b.box_id)))
        con.register(
            "coverage",
            pa.table(
                {
                    "box_id": pa.array([c[0] for c in coverage], pa.string()),
                    "from_minute": pa.array([c[1] for c in coverage], pa.int64()),
                }
            ),
        )
        uncovered = [
            (r[0], r[1], r[2]) for r in con.execute(UNCOVERED_SQL, {"start": start_s, "end": end_s}).fetchall()
        ]

        by_category = dict(con.execute("SELECT category, sum(n)::BIGINT FROM features GROUP BY ALL").fetchall())
        requests_in_window = con.execute(
            "SELECT coalesce(sum(n), 0)::BIGINT FROM features WHERE category = 'request' AND minute IS NOT NULL"
        ).fetchall()[0][0]
        requests_matched = con.execute(
            "SELECT coalesce(sum(n), 0)::BIGINT FROM features f WHERE category = 'request' AND minute IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM pkgs p WHERE p.box_id = f.box_id AND p.host = f.host "
            "AND (p.kind <> 'zim' OR p.zim = f.zim))"
        ).fetchall()[0][0]
        bad_heartbeats = con.execute("SELECT count(*) FROM heartbeat WHERE ts IS NULL OR NOT isfinite(ts)").fetchall()[
            0
        ][0]
        sources = dict(
            con.execute(
                """WITH hb AS (SELECT DISTINCT box_id, CAST(floor(ts / 60) AS BIGINT) // 60 AS h FROM heartbeat
                           WHERE ts >= $start AND ts < $end)
               SELECT source, count(*) FROM (
                   SELECT box_id, h, 'heartbeat' AS source FROM hb
                   UNION
                   SELECT DISTINCT box_id, minute // 60, 'access_log' FROM features f WHERE minute IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM hb WHERE hb.box_id = f.box_id AND hb.h = f.minute // 60))
               GROUP BY ALL""",
                {"start": start_s, "end": end_s},
            ).fetchall()
        )
    finally:
        con.close()

    skipped: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))
    for category, n in by_category.items():
        if category != "request":
            skipped[category] += n
    # A cut last line reads as a not-JSON line: move those to their own reason.
    cut = min(skipped["not_json"], sum(1 for f in files if f.truncated and f.name not in skipped_files))
    skipped["truncated_last_line"] += cut
    skipped["not_json"] -= cut
    if bad_heartbeats:
        skipped["heartbeat_not_a_timestamp"] += bad_heartbeats

    return Computation(
        records=records,
        lines_read=sum(by_category.values()),
        requests_in_window=requests_in_window,
        requests_matched=requests_matched,
        skipped_lines=dict(skipped),
        skipped_files=skipped_files,
        uptime_source_hours={"heartbeat": sources.get("heartbeat", 0), "access_log": sources.get("access_log", 0)},
        uncovered_hours=uncovered,
        covered_from_minute=dict(coverage),
    )
