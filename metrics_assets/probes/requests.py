"""On-demand probe builds: the ``probe_build_requests`` table, asynchronous request-reply.

Life of a request (the app only inserts and polls):

    PENDING --(sensor claims it: RUNNING, run_id = claim key)--> RUNNING
            --(the run starts: run_id = the Dagster run id)-----> RUNNING
            --(the run ends)----------------------------------> SUCCEEDED | FAILED (error)

* A claim is one atomic statement: ``UPDATE ... WHERE status = 'PENDING' ... RETURNING``; on
  PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so two overlapping sensor
  ticks (or two daemons) never claim the same row; SQLite serialises writers.
* Requests for the same probe claimed together share one claim key, hence one run.
* Unknown probes (not in ``glam_probes``) fail at claim time, with an error naming the probe.
* The claim key is the run's ``run_key``: until the run starts, ``run_id`` holds it, and the
  sensor re-requests the run each tick (Dagster skips a run key already launched).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
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
    now = now or datetime.now(UTC)
    lock = " FOR UPDATE SKIP LOCKED" if conn.dialect.name == "postgresql" else ""
    rows = conn.execute(
        sa.text(
            f"""UPDATE probe_build_requests SET status = '{RUNNING}', updated_at = :now
                WHERE status = '{PENDING}' AND request_id IN (
                    SELECT request_id FROM probe_build_requests WHERE status = '{PENDING}'
                    ORDER BY request_id LIMIT :limit{lock})
                RETURNING request_id, product, probe_name"""
        ),
        {"now": now, "limit": limit},
    ).fetchall()
    return sorted((dict(r._mapping) for r in rows), key=lambda r: r["request_id"])


def assign_claim(conn: Connection, request_ids: list[int], claim_key: str, now: datetime) -> None:
    conn.execute(
        sa.text("UPDATE probe_build_requests SET run_id = :claim, updated_at = :now WHERE request_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        ),
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


def mark_finished(conn: Connection, run_ids: list[str], error: str | None, now: datetime | None = None) -> int:
    """SUCCEEDED (error None) or FAILED with the error, for the RUNNING rows of these runs/claims."""
    status = SUCCEEDED if error is None else FAILED
    return conn.execute(
        sa.text(
            f"UPDATE probe_build_requests SET status = '{status}', error = :error, updated_at = :now "
            f"WHERE status = '{RUNNING}' AND run_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"error": None if error is None else error[:4000], "now": now or datetime.now(UTC), "ids": list(run_ids)},
    ).rowcount
