"""On-demand probe builds: the ``probe_build_requests`` table, asynchronous request-reply.

The table lives in the GLAM database (``GLAM_DATABASE_URL``), next to the app that inserts
requests and polls them; it is created there on first use (:func:`ensure_requests_table`),
the one table this project adds to the app's database.

Life of a request (the app only inserts and polls):

    PENDING --(sensor claims it: RUNNING, run_id = claim key)--> RUNNING
            --(the run starts: run_id = the Dagster run id)-----> RUNNING
            --(the run ends)----------------------------------> SUCCEEDED | NO_DATA | FAILED (error)

* A request for a probe that is already being built joins that build: it takes the running
  claim's key (or run id) instead of a new claim, and is answered with it. A nightly build
  (no request of its own) is found among the instance's queued or running ``probe_build_job``
  runs of that partition; a request that joins one after it answered is given the outcome
  the run recorded on its materialization (``build_status``).
* Whatever happens to the run, the request gets an answer: the requests sensor reconciles
  every tick with the runs that are over (``resources/run_outcomes.ended_runs``: failed,
  cancelled while queued or mid-build, a worker killed and detected by run monitoring), and a
  claim whose run never started is answered FAILED after ``PROBES_CLAIM_TIMEOUT_MINUTES``.

* A claim is one atomic statement, the warehouse's portable ``claim_rows`` (``UPDATE ... WHERE
  status = 'PENDING' ... RETURNING``; on PostgreSQL the rows are picked with ``FOR UPDATE SKIP
  LOCKED``), so two overlapping sensor ticks (or two daemons) never claim the same row; SQLite
  serialises writers.
* Requests for the same probe claimed together share one claim key, hence one run.
* Unknown probes (not in ``glam_probe_catalogue``) fail at claim time, with an error naming the probe.
* The claim key is the run's ``run_key``: until the run starts, ``run_id`` holds it, and the
  sensor re-requests the run each tick (Dagster skips a run key already launched).
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from metrics_assets.sql_access import INTEGER, SqlAccess

_ensured: set[str] = set()
_ensure_lock = threading.Lock()


_METADATA = sa.MetaData()
#: ``probe_build_requests`` as the warehouse migrations make it (probes_0001, probes_0002);
#: SQLAlchemy renders it for the GLAM database's dialect (bigserial and timestamptz on PostgreSQL).
REQUESTS_TABLE = sa.Table(
    "probe_build_requests",
    _METADATA,
    sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("product", sa.Text, nullable=False),
    sa.Column("probe_name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("run_id", sa.Text),
    sa.Column("error", sa.Text),
    sa.CheckConstraint(
        "status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'NO_DATA')", name="ck_probe_build_requests_status"
    ),
    sa.Index("ix_probe_build_requests_status", "status", "request_id"),
)


def ensure_requests_table(engine: Engine) -> None:
    """Create ``probe_build_requests`` in the GLAM database if it is not there (once per
    process and URL). Nothing else of the app's database is touched. Concurrent first uses
    (two daemons) are serialised by a transaction lock (:meth:`SqlAccess.exclusive`)."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _ensured:
        return
    with _ensure_lock:
        if key in _ensured:
            return
        with engine.begin() as conn:
            _on(engine).exclusive(conn, REQUESTS_DDL_LOCK)
            conn.execute(CreateTable(REQUESTS_TABLE, if_not_exists=True))
            for index in REQUESTS_TABLE.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
        _ensured.add(key)


#: The transaction lock taken while the table is created.
REQUESTS_DDL_LOCK = 727275


class _EngineAccess(SqlAccess):
    """:class:`SqlAccess` over a given engine."""

    def __init__(self, engine: Engine):
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine


def _on(engine: Engine) -> SqlAccess:
    """The portable operations on the GLAM database (which may not be the warehouse)."""
    return _EngineAccess(engine)


PENDING, RUNNING, SUCCEEDED, FAILED, NO_DATA = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "NO_DATA"
FINAL = (SUCCEEDED, FAILED, NO_DATA)
CLAIM_PREFIX = "claim:"
CLAIM_TAG = "probes/build_claim"


def partition_key(product: str, probe_name: str) -> str:
    return f"{product}/{probe_name}"


def split_partition_key(key: str) -> tuple[str, str]:
    product, sep, probe = key.partition("/")
    if not sep or not product or not probe:
        raise ValueError(f"probe partition key {key!r} is not 'product/probe_name'")
    return product, probe


def new_claim_key() -> str:
    return f"{CLAIM_PREFIX}{uuid.uuid4().hex}"


def claim_pending(conn: Connection, limit: int, now: datetime | None = None) -> list[dict]:
    """Atomically move up to ``limit`` PENDING rows to RUNNING; returns them. Call inside a
    transaction; the rows are the caller's once it commits."""
    return _on(conn.engine).claim_rows(
        conn,
        "probe_build_requests",
        key="request_id",
        where=f"status = '{PENDING}'",
        set_values={"status": RUNNING, "updated_at": now or datetime.now(UTC)},
        order_by=["request_id"],
        limit=limit,
        returning=["request_id", "product", "probe_name"],
        types={"request_id": INTEGER},
    )


def assign_claim(conn: Connection, request_ids: list[int], claim_key: str, now: datetime) -> None:
    conn.execute(
        sa.text(
            "UPDATE probe_build_requests SET run_id = :claim, updated_at = :now WHERE request_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"claim": claim_key, "now": now, "ids": list(request_ids)},
    )


def fail_requests(conn: Connection, request_ids: list[int], error: str, now: datetime) -> None:
    conn.execute(
        sa.text(
            f"UPDATE probe_build_requests SET status = '{FAILED}', error = :error, updated_at = :now "
            "WHERE request_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"error": error, "now": now, "ids": list(request_ids)},
    )


def waiting_claims(conn: Connection) -> list[dict]:
    """Claims whose run has not started yet: (claim key, product, probe_name)."""
    rows = conn.execute(
        sa.text(
            f"SELECT DISTINCT run_id, product, probe_name FROM probe_build_requests "
            f"WHERE status = '{RUNNING}' AND run_id LIKE '{CLAIM_PREFIX}%' ORDER BY run_id"
        )
    ).fetchall()
    return [dict(r._mapping) for r in rows]


def mark_started(conn: Connection, claim_key: str, run_id: str, now: datetime | None = None) -> int:
    return conn.execute(
        sa.text(
            f"UPDATE probe_build_requests SET run_id = :run_id, updated_at = :now "
            f"WHERE status = '{RUNNING}' AND run_id = :claim"
        ),
        {"run_id": run_id, "claim": claim_key, "now": now or datetime.now(UTC)},
    ).rowcount


def in_flight(conn: Connection) -> dict[tuple[str, str], str]:
    """``(product, probe_name) -> run_id`` (a claim key or a Dagster run id) of the builds
    under way: a new request for one of these probes joins it."""
    rows = conn.execute(
        sa.text(
            f"SELECT product, probe_name, max(run_id) AS run_id FROM probe_build_requests "
            f"WHERE status = '{RUNNING}' AND run_id IS NOT NULL GROUP BY product, probe_name"
        )
    ).fetchall()
    return {(r.product, r.probe_name): r.run_id for r in rows}


def running_run_ids(conn: Connection) -> list[str]:
    """The run ids and claim keys that RUNNING requests wait on."""
    rows = conn.execute(
        sa.text(f"SELECT DISTINCT run_id FROM probe_build_requests WHERE status = '{RUNNING}' AND run_id IS NOT NULL")
    ).fetchall()
    return sorted(r.run_id for r in rows)


def answer_ended(
    conn: Connection,
    run_id: str,
    reason: str,
    succeeded: bool,
    now: datetime | None = None,
    *,
    recorded: tuple[str, str | None] | None = None,
) -> int:
    """Answer the RUNNING requests of a run that is over. When the run succeeded and answered
    other requests (this one joined too late for its final statement), they get the same
    answer; else, when the run recorded its outcome (``recorded``: status and reason, from its
    materialization; a nightly build answers no request of its own), that one; otherwise
    FAILED with ``reason``."""
    now = now or datetime.now(UTC)
    answered = 0
    if succeeded:
        answer = recorded if recorded is not None and recorded[0] in (SUCCEEDED, NO_DATA) else None
        if answer is None:
            sibling = conn.execute(
                sa.text(
                    "SELECT status, error FROM probe_build_requests WHERE run_id = :run AND status IN "
                    f"('{SUCCEEDED}', '{NO_DATA}') ORDER BY updated_at DESC LIMIT 1"
                ),
                {"run": run_id},
            ).first()
            answer = (sibling.status, sibling.error) if sibling is not None else None
        if answer is not None:
            answered = conn.execute(
                sa.text(
                    f"UPDATE probe_build_requests SET status = :status, error = :error, updated_at = :now "
                    f"WHERE status = '{RUNNING}' AND run_id = :run"
                ),
                {"status": answer[0], "error": answer[1], "now": now, "run": run_id},
            ).rowcount
    return (
        answered
        + conn.execute(
            sa.text(
                f"UPDATE probe_build_requests SET status = '{FAILED}', error = :error, updated_at = :now "
                f"WHERE status = '{RUNNING}' AND run_id = :run"
            ),
            {"error": reason[:4000], "now": now, "run": run_id},
        ).rowcount
    )


def reap_stale_claims(conn: Connection, timeout: timedelta, now: datetime | None = None) -> int:
    """Claims whose run never started (``run_id`` still a claim key) for longer than
    ``timeout``: answered FAILED, so that no request waits for ever."""
    now = now or datetime.now(UTC)
    minutes = int(timeout.total_seconds() // 60)
    return conn.execute(
        sa.text(
            f"UPDATE probe_build_requests SET status = '{FAILED}', updated_at = :now, error = :error "
            f"WHERE status = '{RUNNING}' AND run_id LIKE '{CLAIM_PREFIX}%' AND updated_at < :cutoff"
        ),
        {
            "now": now,
            "cutoff": now - timeout,
            "error": f"the build run was never started within {minutes} minutes of the claim "
            "(PROBES_CLAIM_TIMEOUT_MINUTES); request the probe again.",
        },
    ).rowcount


def mark_finished(
    conn: Connection, run_ids: list[str], error: str | None, now: datetime | None = None, *, status: str | None = None
) -> int:
    """SUCCEEDED (error None), FAILED with the error, or ``status`` (NO_DATA with its reason),
    for the RUNNING rows of these runs/claims."""
    status = status or (SUCCEEDED if error is None else FAILED)
    return conn.execute(
        sa.text(
            f"UPDATE probe_build_requests SET status = '{status}', error = :error, updated_at = :now "
            f"WHERE status = '{RUNNING}' AND run_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"error": None if error is None else error[:4000], "now": now or datetime.now(UTC), "ids": list(run_ids)},
    ).rowcount
