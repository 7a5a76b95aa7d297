"""The asset that runs submitted queries: ``historical_query_results``.

One materialization = one run of one query (the sensor passes its id in the run config and
tags the run ``metrics/query_id``). Materialized with no query id, e.g. from the CLI
(``dagster asset materialize --select historical_query_results``), it runs every QUEUED query
in turn: a way to work the queue without the daemon.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from metrics_assets.queries import config as query_config
from metrics_assets.queries import runner, store
from metrics_assets.resources import QueryEngine, Warehouse

QUERY_ID_TAG = "metrics/query_id"


class QueryRunConfig(dg.Config):
    query_id: str = Field(
        default="",
        description="The query to run (historical_queries.query_id). Empty: every QUEUED query.",
    )


GROUP = "queries"
OWNERS = ["team:metrics"]

#: The request table. Its rows are written outside Dagster: submitted (and cancelled) by the
#: client, the ``metrics-query`` CLI and the REST API; a run, the sensor's reconciliation and the
#: purge job only move a row's status. So it is an external asset: declared for the lineage
#: (historical_queries -> historical_query_results), never materialized by Dagster.
historical_queries = dg.AssetSpec(
    "historical_queries",
    description=(
        "Ad hoc lake queries as submitted (client, metrics-query CLI, REST API), one row per query "
        "with its status (QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, EXPIRED), bounds and "
        "expiry. Written by those callers, not by a Dagster run: an external asset, shown so the "
        "lineage starts where the requests come from. Runs of historical_query_results, the "
        "historical_queries_sensor and historical_queries_purge_job only update statuses."
    ),
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "historical_queries"},
)


@dg.asset(
    description=(
        "Result rows of ad hoc lake queries submitted to historical_queries (CLI, client, REST API), "
        "one row per result row as JSON, keyed by (query_id, row_number) for keyset paging. "
        "Each run executes one QUEUED query on the query engine (Athena / DuckDB)."
    ),
    group_name=GROUP,
    kinds={"athena", "duckdb", "postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "historical_query_results"},
    deps=[historical_queries],
)
def historical_query_results(
    context: dg.AssetExecutionContext,
    config: QueryRunConfig,
    warehouse: Warehouse,
    query_engine: QueryEngine,
) -> dg.MaterializeResult:
    ids = [config.query_id] if config.query_id else store.queued(warehouse, limit=1000)
    context.log.info(f"running {len(ids)} quer{'y' if len(ids) == 1 else 'ies'}: {', '.join(ids[:10])}")
    outcomes: list[runner.RunOutcome] = []
    for query_id in ids:
        try:
            outcome = runner.run_query(warehouse, query_engine, query_id, run_id=context.run_id, log=context.log)
        except store.UnknownQuery as error:
            if config.query_id:
                raise dg.Failure(
                    f"query id {config.query_id!r} is not in historical_queries: fix the run config's query_id"
                ) from error
            continue
        context.log.info(f"query {query_id}: {outcome.status}, {outcome.row_count:,} rows")
        outcomes.append(outcome)
    by_status = runner.count_by_status(outcomes)
    # Business figures are numbers under the same keys in every materialization (the Plots tab
    # charts them); settings and bounds are text, so they are never plotted as if measured.
    metadata: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(sum(o.row_count for o in outcomes)),
        "bytes_scanned": dg.MetadataValue.int(sum(o.bytes_scanned for o in outcomes)),
        "duration_s": dg.MetadataValue.float(round(float(sum(o.duration_s for o in outcomes)), 3)),
        "queries_run": dg.MetadataValue.int(len(outcomes)),
        "queries_failed": dg.MetadataValue.int(by_status.get(store.FAILED, 0)),
        "queries_cancelled": dg.MetadataValue.int(by_status.get(store.CANCELLED, 0)),
        "query_ids": ", ".join(o.query_id for o in outcomes[:50]),
        "queries_by_status": dg.MetadataValue.json(by_status),
        "skipped_by_reason": dg.MetadataValue.json(
            {
                "failed_on_engine_or_rejected": by_status.get(store.FAILED, 0),
                "cancelled": by_status.get(store.CANCELLED, 0),
                "expired_before_run": by_status.get(store.EXPIRED, 0),
            }
        ),
        "bounds": dg.MetadataValue.text(
            f"timeout {query_config.timeout_s():g} s (METRICS_QUERY_TIMEOUT_S), at most {query_config.max_rows():,} rows "
            "(METRICS_QUERY_MAX_ROWS)"
        ),
        "preview": dg.MetadataValue.md(runner.preview_md(outcomes)),
    }
    if len(outcomes) == 1:
        o = outcomes[0]
        metadata["query_id"] = o.query_id
        metadata["status"] = o.status
        metadata["columns"] = dg.MetadataValue.json(o.columns)
        if o.error:
            metadata["error"] = o.error[:2000]
    return dg.MaterializeResult(metadata=metadata)


historical_query_job = dg.define_asset_job(
    "historical_query_job",
    selection=[historical_query_results],
    # One step: run it in the run worker's own process. The default multiprocess executor
    # would start a second Python process (and import the code location again) per query.
    executor_def=dg.in_process_executor,
    description="Runs one submitted query (run config ops.historical_query_results.config.query_id).",
)
