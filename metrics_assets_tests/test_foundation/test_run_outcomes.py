"""``ended_runs`` tells apart runs still going from runs over, with the reason for each."""

import dagster as dg
from dagster import DagsterInstance

from metrics_assets.resources.run_outcomes import MISSING, ended_runs


@dg.asset
def fine() -> int:
    return 1


@dg.asset
def broken() -> int:
    raise RuntimeError("boom")


def test_every_terminal_status_and_only_those():
    defs = dg.Definitions(assets=[fine, broken])
    with DagsterInstance.ephemeral() as instance:
        ok = dg.materialize([fine], instance=instance).run_id
        failed = dg.materialize([broken], instance=instance, raise_on_error=False).run_id
        job = defs.resolve_implicit_global_asset_job_def()
        queued = instance.create_run_for_job(job_def=job).run_id
        cancelled = instance.create_run_for_job(job_def=job)
        instance.report_run_canceled(cancelled)

        outcomes = ended_runs(instance, [ok, failed, queued, cancelled.run_id, "no-such-run", ""])

    assert set(outcomes) == {ok, failed, cancelled.run_id, "no-such-run"}  # the queued run is not over
    assert outcomes[ok].status == "SUCCESS"
    assert outcomes[failed].status == "FAILURE"
    assert "broken" in outcomes[failed].reason
    assert outcomes[cancelled.run_id].status == "CANCELED"
    assert "cancelled" in outcomes[cancelled.run_id].reason
    assert outcomes["no-such-run"].status == MISSING
