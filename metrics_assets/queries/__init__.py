"""The ``queries`` domain: ad hoc SQL over the event lake, as asynchronous request-reply.

A query is submitted (client, ``metrics-query`` CLI, REST API) into ``historical_queries``,
validated first (``validation.py``). The sensor launches one run per QUEUED query; the run
executes it on the query engine within bounds (``execution.py``) and stores its rows in
``historical_query_results``; callers page through them with keyset tokens. A schedule purges
expired results. See README, "Domain: queries".

``defs`` (the domain's Definitions) is built on first access, so that the CLI's ``status``
and ``next`` and the REST API import no Dagster at all.
"""

from __future__ import annotations

from typing import Any


def _build_defs():
    import dagster as dg

    from metrics_assets.queries.assets import (
        historical_queries,
        historical_query_job,
        historical_query_results,
    )
    from metrics_assets.queries.automation import (
        historical_queries_purge_job,
        historical_queries_purge_schedule,
        historical_queries_sensor,
    )

    return dg.Definitions(
        assets=[historical_queries, historical_query_results],
        jobs=[historical_query_job, historical_queries_purge_job],
        sensors=[historical_queries_sensor],
        schedules=[historical_queries_purge_schedule],
    )


def __getattr__(name: str) -> Any:
    if name == "defs":
        defs = _build_defs()
        globals()["defs"] = defs
        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
