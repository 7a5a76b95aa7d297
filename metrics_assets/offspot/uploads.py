"""Which hours a newly uploaded (or grown) log or heartbeat file touches, for the uploads
sensor. No Dagster here.

A file is read whole by DuckDB for its timestamps only (a stock box's files are 1 MiB); a file
that only grew since the sensor last saw it counts from the last hour seen in it, which is
read again (it may have more lines now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import literal


def hours_touched(path: Path, heartbeat: bool, since_hour: int | None = None) -> set[int]:
    """The hours (epoch hour numbers) of the file's lines, at or after ``since_hour``."""
    if heartbeat:
        source = (
            f"(SELECT TRY_CAST(trim(v) AS DOUBLE) AS ts FROM read_csv({literal(path)}, "
            "columns = {'v': 'VARCHAR'}, header = false, delim = '\\x01', quote = '', escape = '', "
            "auto_detect = false, strict_mode = false, ignore_errors = true))"
        )
    else:
        source = (
            f"read_json({literal(path)}, format = 'newline_delimited', ignore_errors = true, "
            "columns = {ts: 'DOUBLE'})"
        )
    con = open_session()
    try:
        rows = con.execute(
            f"SELECT DISTINCT CAST(floor(ts / 3600) AS BIGINT) FROM {source} "
            "WHERE ts IS NOT NULL AND isfinite(ts) AND ts > 0"
        ).fetchall()
    except duckdb.Error:
        return set()  # unreadable: the run that reads it will say so
    finally:
        con.close()
    hours = {int(r[0]) for r in rows}
    return {h for h in hours if since_hour is None or h >= since_hour}


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def ranges(hours: set[int]) -> list[tuple[int, int]]:
    """Consecutive hours as inclusive (first, last) ranges, oldest first."""
    out: list[tuple[int, int]] = []
    for h in sorted(hours):
        if out and h == out[-1][1] + 1:
            out[-1] = (out[-1][0], h)
        else:
            out.append((h, h))
    return out


def closed_hours(hours: set[int], now: datetime, first: datetime) -> set[int]:
    """The hours that have ended by ``now`` and are not before the first partition."""
    first_hour = int(first.timestamp() // 3600)
    last_closed = int((now - timedelta(hours=1)).timestamp() // 3600)
    return {h for h in hours if first_hour <= h <= last_closed}
