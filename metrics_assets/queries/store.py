"""The request table and the results table, as plain functions over a Warehouse. No Dagster.

Status life cycle (column ``status`` of ``historical_queries``)::

    QUEUED --(run starts)--> RUNNING --> FINISHED   (rows in historical_query_results)
       |                        |   \\-> FAILED     (the engine's message, a timeout, too many
       |                        |                   rows, or the Dagster run ended without answer)
       \\--(cancel)--> CANCELLED <--(cancel: the engine query is interrupted)
    FINISHED | FAILED | CANCELLED --(expires_at passed; purge schedule)--> EXPIRED (rows deleted)

Final states are final: the writes of a run (:func:`store_result`, :func:`store_failure`)
only apply while the query is still RUNNING under that run, so a late run never overwrites a
cancel or the sensor's FAILED.

``expires_at`` = finish time + ``retention_minutes``. A result past ``expires_at`` reads as
EXPIRED at once, even before the purge has deleted its rows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from metrics_assets.queries import config, paging
from metrics_assets.sql_access import INTEGER, UTC_DATETIME, SqlAccess

if TYPE_CHECKING:  # the CLI's status/next import this module without Dagster or Arrow
    import pyarrow as pa

    from metrics_assets.resources.warehouse import Warehouse

QUEUED, RUNNING, FINISHED, FAILED, EXPIRED = "QUEUED", "RUNNING", "FINISHED", "FAILED", "EXPIRED"
CANCELLED = "CANCELLED"
FINAL = (FINISHED, FAILED, CANCELLED, EXPIRED)


class QueryError(Exception):
    """An error a caller made; ``code`` is machine-readable, ``http_status`` its 4xx."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, query_id: str | None = None):
        super().__init__(message)
        self.query_id = query_id


class InvalidQuery(QueryError):
    code, http_status = "invalid_query", 400

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class InvalidRequest(QueryError):
    code, http_status = "invalid_request", 400


class PageSizeTooLarge(QueryError):
    code, http_status = "page_size_too_large", 400


class InvalidPagingToken(QueryError):
    code, http_status = "invalid_paging_token", 400


class UnknownQuery(QueryError):
    code, http_status = "unknown_query_id", 404


class QueryNotFinished(QueryError):
    code, http_status = "query_not_finished", 409


class QueryFailedError(QueryError):
    code, http_status = "query_failed", 409


class QueryExpired(QueryError):
    code, http_status = "result_expired", 410


class QueryCancelledError(QueryError):
    code, http_status = "query_cancelled", 409


class AlreadyFinal(QueryError):
    code, http_status = "query_already_final", 409


def now() -> datetime:
    return datetime.now(UTC)


#: How the request table's columns read back, the same on SQLite and PostgreSQL.
STATUS_TYPES = {
    "submitted_at": UTC_DATETIME,
    "started_at": UTC_DATETIME,
    "finished_at": UTC_DATETIME,
    "expires_at": UTC_DATETIME,
    "requested_at": UTC_DATETIME,
    "retention_minutes": INTEGER,
    "row_count": INTEGER,
    "bytes_scanned": INTEGER,
}


@dataclass
class QueryStatus:
    query_id: str
    status: str
    sql: str
    retention_minutes: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    row_count: int | None
    bytes_scanned: int | None
    error: str | None
    expires_at: datetime | None
    columns: list[dict[str, str]] | None

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "query_id": self.query_id,
            "status": self.status,
            "sql": self.sql,
            "retention_minutes": self.retention_minutes,
            "submitted_at": iso(self.submitted_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "row_count": self.row_count,
            "bytes_scanned": self.bytes_scanned,
            "error": self.error,
            "expires_at": iso(self.expires_at),
            "columns": self.columns,
        }


def check_retention(retention_minutes: Any) -> int:  # strict: no bool, no "60", no 60.0
    if isinstance(retention_minutes, bool) or not isinstance(retention_minutes, int):
        raise InvalidRequest("retention_minutes must be a whole number of minutes")
    if not 1 <= retention_minutes <= config.MAX_RETENTION_MINUTES:
        raise InvalidRequest(
            f"retention_minutes must be between 1 and {config.MAX_RETENTION_MINUTES} (7 days), got {retention_minutes}"
        )
    return retention_minutes


def insert_query(warehouse: Warehouse, sql: str, retention_minutes: int) -> str:
    query_id = str(uuid.uuid4())
    warehouse.execute(
        "INSERT INTO historical_queries (query_id, sql, retention_minutes, status, submitted_at) "
        "VALUES (:query_id, :sql, :retention, :status, :now)",
        {"query_id": query_id, "sql": sql, "retention": retention_minutes, "status": QUEUED, "now": now()},
    )
    return query_id


def _valid_id(query_id: Any) -> str:
    try:
        return str(uuid.UUID(str(query_id)))
    except (ValueError, TypeError, AttributeError) as error:
        raise UnknownQuery(f"unknown query id {str(query_id)[:80]!r}", None) from error


def get(warehouse: SqlAccess, query_id: str) -> QueryStatus:
    """The query's status; a FINISHED/FAILED query past its expiry reads as EXPIRED."""
    qid = _valid_id(query_id)
    rows = warehouse.fetch_all(
        "SELECT query_id, sql, retention_minutes, status, submitted_at, started_at, finished_at, row_count, "
        "bytes_scanned, error, expires_at, result_columns FROM historical_queries WHERE query_id = :q",
        {"q": qid},
        types=STATUS_TYPES,
    )
    if not rows:
        raise UnknownQuery(f"unknown query id {qid!r}", qid)
    r = rows[0]
    expires_at = r["expires_at"]
    status = r["status"]
    if status in (FINISHED, FAILED, CANCELLED) and expires_at is not None and expires_at <= now():
        status = EXPIRED
    return QueryStatus(
        query_id=r["query_id"],
        status=status,
        sql=r["sql"],
        retention_minutes=r["retention_minutes"],
        submitted_at=r["submitted_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        row_count=r["row_count"],
        bytes_scanned=r["bytes_scanned"],
        error=r["error"],
        expires_at=expires_at,
        columns=json.loads(r["result_columns"]) if r["result_columns"] else None,
    )


def queued(warehouse: Warehouse, limit: int = 50) -> list[str]:
    """The oldest QUEUED query ids, first come first served."""
    rows = warehouse.fetch_all(
        "SELECT query_id FROM historical_queries WHERE status = :s ORDER BY submitted_at, query_id LIMIT :n",
        {"s": QUEUED, "n": int(limit)},
    )
    return [r["query_id"] for r in rows]


def to_request(warehouse: Warehouse, limit: int) -> list[str]:
    """The oldest QUEUED queries no run was requested for yet, marked requested (one
    statement: :meth:`~metrics_assets.sql_access.SqlAccess.claim_rows`, so two sensor ticks
    never take the same query). The sensor asks for each query's run once; however many
    queries were requested and never started, they are never selected again."""
    with warehouse.begin() as conn:
        rows = warehouse.claim_rows(
            conn,
            "historical_queries",
            key="query_id",
            where="status = :s AND requested_at IS NULL",
            set_values={"requested_at": now()},
            order_by=["submitted_at", "query_id"],
            limit=int(limit),
            returning=["query_id"],
            params={"s": QUEUED},
            types={"submitted_at": UTC_DATETIME},
        )
    return [r["query_id"] for r in rows]


def waiting_on_runs(warehouse: Warehouse, limit: int = 10_000) -> list[dict[str, Any]]:
    """Queries a run was requested for that are not final yet: ``query_id``, ``status``,
    ``run_id`` (None until the run started), ``requested_at``."""
    rows = warehouse.fetch_all(
        "SELECT query_id, status, run_id, requested_at FROM historical_queries "
        "WHERE (status = :r) OR (status = :q AND requested_at IS NOT NULL) ORDER BY submitted_at LIMIT :n",
        {"r": RUNNING, "q": QUEUED, "n": int(limit)},
        types=STATUS_TYPES,
    )
    return rows


def fail_orphan(warehouse: Warehouse, query_id: str, reason: str) -> bool:
    """FAILED with ``reason`` if the query is still QUEUED or RUNNING; True when it was."""
    import sqlalchemy as sa

    finished = now()
    with warehouse.begin() as conn:
        minutes = conn.execute(
            sa.text("SELECT retention_minutes FROM historical_queries WHERE query_id = :q"), {"q": query_id}
        ).scalar()
        if minutes is None:
            return False
        done = conn.execute(
            sa.text(
                "UPDATE historical_queries SET status = :f, finished_at = :fin, error = :err, expires_at = :exp "
                "WHERE query_id = :q AND status IN (:a, :b)"
            ),
            {
                "f": FAILED,
                "fin": finished,
                "err": reason[:10_000],
                "exp": finished + timedelta(minutes=int(minutes)),
                "q": query_id,
                "a": QUEUED,
                "b": RUNNING,
            },
        ).rowcount
    return bool(done)


def mark_running(warehouse: Warehouse, query_id: str, run_id: str | None) -> bool:
    """RUNNING under ``run_id``, unless the query is CANCELLED or EXPIRED (then False). A
    FINISHED or FAILED query may be run again (its rows are replaced)."""
    import sqlalchemy as sa

    with warehouse.begin() as conn:
        done = conn.execute(
            sa.text(
                "UPDATE historical_queries SET status = :s, started_at = :now, finished_at = NULL, run_id = :run, "
                "error = NULL, expires_at = NULL WHERE query_id = :q AND status NOT IN (:c, :e)"
            ),
            {"s": RUNNING, "now": now(), "run": run_id, "q": query_id, "c": CANCELLED, "e": EXPIRED},
        ).rowcount
    return bool(done)


def cancel(warehouse: SqlAccess, query_id: str) -> QueryStatus:
    """CANCELLED, if QUEUED or RUNNING (a running engine query is interrupted by its run within
    a second). Raises :class:`AlreadyFinal` for a query that already has its answer."""
    status = get(warehouse, query_id)
    finished = now()
    with warehouse.begin() as conn:
        import sqlalchemy as sa

        done = conn.execute(
            sa.text(
                "UPDATE historical_queries SET status = :c, finished_at = :fin, error = :err, expires_at = :exp "
                "WHERE query_id = :q AND status IN (:a, :b)"
            ),
            {
                "c": CANCELLED,
                "fin": finished,
                "err": "cancelled on request",
                "exp": finished + timedelta(minutes=status.retention_minutes),
                "q": status.query_id,
                "a": QUEUED,
                "b": RUNNING,
            },
        ).rowcount
    if not done:
        current = get(warehouse, query_id)
        raise AlreadyFinal(f"query {current.query_id} is already {current.status}: nothing to cancel", current.query_id)
    return get(warehouse, query_id)


def is_cancelled(warehouse: Warehouse, query_id: str) -> bool:
    return (
        warehouse.scalar(
            "SELECT count(*) FROM historical_queries WHERE query_id = :q AND status = :c",
            {"q": query_id, "c": CANCELLED},
        )
        > 0
    )


def store_result(
    warehouse: Warehouse,
    query_id: str,
    rows: pa.Table,
    columns: list[dict[str, str]],
    bytes_scanned: int,
    retention_minutes: int,
    run_id: str | None = None,
) -> bool:
    """Replace the query's result rows (COPY on PostgreSQL) and mark it FINISHED, in one
    transaction: a reader never sees FINISHED with half the rows. Only while the query is
    RUNNING under ``run_id``: otherwise (cancelled, failed by the sensor meanwhile) nothing is
    written and the answer is False."""
    finished = now()
    with warehouse.begin() as conn:
        import sqlalchemy as sa

        done = conn.execute(
            sa.text(
                "UPDATE historical_queries SET status = :s, finished_at = :fin, row_count = :n, "
                "bytes_scanned = :b, result_columns = :cols, error = NULL, expires_at = :exp "
                "WHERE query_id = :q AND status = :r AND (run_id = :run OR (run_id IS NULL AND :run IS NULL))"
            ),
            {
                "s": FINISHED,
                "fin": finished,
                "n": rows.num_rows,
                "b": int(bytes_scanned),
                "cols": json.dumps(columns),
                "exp": finished + timedelta(minutes=retention_minutes),
                "q": query_id,
                "r": RUNNING,
                "run": run_id,
            },
        ).rowcount
        if not done:
            return False
        conn.execute(sa.text("DELETE FROM historical_query_results WHERE query_id = :q"), {"q": query_id})
        warehouse.load(conn, "historical_query_results", rows)
    return True


def store_failure(
    warehouse: Warehouse, query_id: str, error: str, retention_minutes: int, run_id: str | None = None
) -> bool:
    """FAILED with ``error``, only while RUNNING under ``run_id`` (False otherwise)."""
    finished = now()
    with warehouse.begin() as conn:
        import sqlalchemy as sa

        done = conn.execute(
            sa.text(
                "UPDATE historical_queries SET status = :s, finished_at = :fin, row_count = NULL, "
                "bytes_scanned = NULL, result_columns = NULL, error = :err, expires_at = :exp "
                "WHERE query_id = :q AND status = :r AND (run_id = :run OR (run_id IS NULL AND :run IS NULL))"
            ),
            {
                "s": FAILED,
                "fin": finished,
                "err": error[:10_000],
                "exp": finished + timedelta(minutes=retention_minutes),
                "q": query_id,
                "r": RUNNING,
                "run": run_id,
            },
        ).rowcount
        if done:
            conn.execute(sa.text("DELETE FROM historical_query_results WHERE query_id = :q"), {"q": query_id})
    return bool(done)


def purge_expired(warehouse: Warehouse, at: datetime | None = None) -> list[str]:
    """Mark FINISHED/FAILED queries past ``expires_at`` EXPIRED and delete their rows, in one
    transaction. Returns the ids purged."""
    import sqlalchemy as sa

    at = at or now()
    with warehouse.begin() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT query_id FROM historical_queries WHERE status IN (:f, :x, :c) AND expires_at <= :at "
                    "ORDER BY query_id"
                ),
                {"f": FINISHED, "x": FAILED, "c": CANCELLED, "at": at},
            )
        ]
        if ids:
            conn.execute(
                sa.text(
                    "DELETE FROM historical_query_results WHERE query_id IN "
                    "(SELECT query_id FROM historical_queries WHERE status IN (:f, :x, :c) AND expires_at <= :at)"
                ),
                {"f": FINISHED, "x": FAILED, "c": CANCELLED, "at": at},
            )
            conn.execute(
                sa.text("UPDATE historical_queries SET status = :e WHERE status IN (:f, :x, :c) AND expires_at <= :at"),
                {"e": EXPIRED, "f": FINISHED, "x": FAILED, "c": CANCELLED, "at": at},
            )
    return ids


def expired_count(warehouse: Warehouse, at: datetime | None = None) -> int:
    """How many answered queries are past ``expires_at`` and not purged yet (the purge
    schedule starts a run only when this is above zero)."""
    return warehouse.scalar(
        "SELECT count(*) FROM historical_queries WHERE status IN (:f, :x, :c) AND expires_at <= :at",
        {"f": FINISHED, "x": FAILED, "c": CANCELLED, "at": at or now()},
        type_=INTEGER,
    )


def check_page_size(results_per_page: Any) -> int:
    if isinstance(results_per_page, bool) or not isinstance(results_per_page, int):
        raise InvalidRequest("results_per_page must be a whole number")
    if results_per_page > config.MAX_RESULTS_PER_PAGE:
        raise PageSizeTooLarge(
            f"results_per_page must be at most {config.MAX_RESULTS_PER_PAGE}, got {results_per_page}"
        )
    if results_per_page < 1:
        raise InvalidRequest(f"results_per_page must be at least 1, got {results_per_page}")
    return results_per_page


def next_page(
    warehouse: SqlAccess,
    query_id: str,
    paging_token: str | None = None,
    results_per_page: int = config.DEFAULT_RESULTS_PER_PAGE,
) -> dict[str, Any]:
    """One page of a FINISHED query's rows, by keyset on ``row_number``.

    Returns ``{query_id, columns, rows, row_count, next_paging_token}``; ``next_paging_token``
    is None on the last page."""
    size = check_page_size(results_per_page)
    status = get(warehouse, query_id)
    qid = status.query_id
    if status.status == EXPIRED:
        raise QueryExpired(
            f"the result of {qid} expired at {status.expires_at.isoformat() if status.expires_at else '?'}; "
            "submit the query again",
            qid,
        )
    if status.status == FAILED:
        raise QueryFailedError(f"query {qid} failed: {status.error}", qid)
    if status.status == CANCELLED:
        raise QueryCancelledError(f"query {qid} was cancelled", qid)
    if status.status != FINISHED:
        raise QueryNotFinished(f"query {qid} is {status.status}; poll its status until FINISHED", qid)
    after = 0
    if paging_token:
        try:
            after = paging.decode(paging_token, qid)
        except paging.BadPagingToken as error:
            raise InvalidPagingToken(str(error), qid) from error
        if after > (status.row_count or 0):
            raise InvalidPagingToken("paging_token points past the end of the result", qid)
    # One row more than asked tells whether there is a next page, without a count.
    found = warehouse.fetch_all(
        'SELECT row_number, "row" FROM historical_query_results WHERE query_id = :q AND row_number > :after '
        "ORDER BY row_number LIMIT :n",
        {"q": qid, "after": after, "n": size + 1},
        types={"row_number": INTEGER},
    )
    page = found[:size]
    token = paging.encode(qid, page[-1]["row_number"]) if len(found) > size else None
    return {
        "query_id": qid,
        "columns": status.columns or [],
        "rows": [json.loads(r["row"]) for r in page],
        "row_count": status.row_count,
        "next_paging_token": token,
    }
