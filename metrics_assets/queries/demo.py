"""Demo of the queries domain: two queries submitted over the events demo's lake, then one
step that materializes ``historical_query_results`` with no query id, which runs every QUEUED
query (what the sensor would do one run per query, without needing the daemon).

If the event tables are missing (events domain absent) the queries end FAILED with the
engine's "table does not exist"; if the lake files are absent they finish with zero rows.
Either way the demo does not fail.
"""

from __future__ import annotations

from pathlib import Path

from metrics_assets.demo import DemoStep

DEMO_QUERIES = (
    "SELECT servicename, count(*) AS events FROM events_v0 GROUP BY servicename ORDER BY events DESC, servicename",
    (
        "SELECT envelope.service.name AS service, eventType, count(*) AS events FROM events_v1 "
        "GROUP BY envelope.service.name, eventType ORDER BY events DESC, service, eventType"
    ),
)


def generate(home: Path) -> list[DemoStep]:
    from metrics_assets.queries.client import QueryClient

    client = QueryClient()
    ids = [client.submit(sql, retention_minutes=24 * 60) for sql in DEMO_QUERIES]
    for query_id, sql in zip(ids, DEMO_QUERIES, strict=True):
        print(f"  [queries] submitted {query_id}: {sql[:70]}...", flush=True)
    print("  [queries] page through them afterwards with: metrics-query next <query_id>", flush=True)
    return [DemoStep("run the submitted lake queries", assets=["historical_query_results"])]
