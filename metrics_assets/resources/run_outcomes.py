"""What became of the Dagster runs that a domain's request rows are waiting on.

Two domains keep request rows that an app or a person waits on: probe builds
(``probe_build_requests``) and ad hoc queries (``historical_queries``). Each row records the
Dagster run that serves it. Whatever happens to that run (success, a failure, a cancellation
while queued or mid-way, a run worker killed and detected by run monitoring), the row must
reach a final state.

Rather than trusting one run-status event per outcome (a sensor can miss one, and a
cancelled queued run never starts), each domain's sensor reconciles on every tick: it
collects the run ids of its rows that are not final yet and asks :func:`ended_runs` which of
those runs are over. A row whose run is over but which is not final is answered FAILED with
the :attr:`RunOutcome.reason` given here. This is one query on the instance per tick, and
it answers orphans within one tick however they came about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

#: Statuses after which a run will never write anything again.
TERMINAL_STATUSES = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})

#: ``status`` of a run id that the instance does not know (deleted, or another instance's).
MISSING = "MISSING"


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # a DagsterRunStatus value, or MISSING
    reason: str  # one sentence for the request row's error column


def _failure_message(instance: DagsterInstance, run_id: str) -> str | None:
    """The run-failure event's message (run monitoring says there that a worker died)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.RUN_FAILURE, limit=1, ascending=False
    ).records
    for record in records:
        message = record.event_log_entry.dagster_event.message if record.event_log_entry.dagster_event else None
        if message:
            return message
    return None


def ended_runs(instance: DagsterInstance, run_ids: Iterable[str]) -> dict[str, RunOutcome]:
    """The runs among ``run_ids`` that are over, with why; runs still going are left out.

    A run id the instance does not know counts as over (``MISSING``): nothing will ever
    answer a row that waits on it.
    """
    wanted = sorted({r for r in run_ids if r})
    if not wanted:
        return {}
    found = {run.run_id: run for run in instance.get_runs(RunsFilter(run_ids=wanted))}
    outcomes: dict[str, RunOutcome] = {}
    for run_id in wanted:
        run = found.get(run_id)
        if run is None:
            outcomes[run_id] = RunOutcome(run_id, MISSING, f"Dagster run {run_id} is unknown to this instance.")
            continue
        if run.status not in TERMINAL_STATUSES:
            continue
        if run.status == DagsterRunStatus.CANCELED:
            reason = f"Dagster run {run_id} was cancelled before it answered."
        elif run.status == DagsterRunStatus.FAILURE:
            detail = _failure_message(instance, run_id)
            reason = f"Dagster run {run_id} failed" + (f": {detail}" if detail else ".")
        else:
            reason = f"Dagster run {run_id} succeeded without answering this request."
        outcomes[run_id] = RunOutcome(run_id, run.status.value, reason)
    return outcomes
