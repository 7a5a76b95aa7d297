"""``metrics-query``: ad hoc SQL over the event lake.

    metrics-query submit "SELECT ..." [--retention-minutes 60] [--wait]   prints the query id
    metrics-query status <query_id>                                      prints the status (JSON)
    metrics-query next <query_id> [--paging-token T] [--results-per-page N]
                                                                         prints a page (JSON) and its next token
    metrics-query cancel <query_id>                                      stops a QUEUED or RUNNING query (CANCELLED)
    metrics-query serve [--host 127.0.0.1] [--port 8080]                 the REST API (needs METRICS_API_TOKEN)

It uses the warehouse of ``METRICS_WAREHOUSE_URL`` (default: SQLite under METRICS_HOME). Queries
run when the ``historical_queries_sensor`` launches them (``dagster dev`` / the daemon), or
with ``dagster asset materialize -m metrics_assets.definitions --select historical_query_results``.
Exit codes: 0 ok, 1 the request was refused (message on stderr), 2 bad configuration.

``status``, ``next`` and ``cancel`` import neither Dagster nor DuckDB (``light.py``): they
answer in well under a second. Non-finite floats print as ``null``, as over REST.
"""

from __future__ import annotations

import argparse
import json
import sys

from metrics_assets.settings import ConfigurationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metrics-query", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    submit = sub.add_parser("submit", help="validate and queue a query; prints its id")
    submit.add_argument("sql")
    submit.add_argument("--retention-minutes", type=int, default=60, help="1..10080 (7 days); default 60")
    submit.add_argument("--wait", action="store_true", help="then wait until it finishes and print the status")
    status = sub.add_parser("status", help="print a query's status as JSON")
    status.add_argument("query_id")
    nxt = sub.add_parser("next", help="print a page of rows as JSON, with next_paging_token")
    nxt.add_argument("query_id")
    nxt.add_argument("--paging-token", default=None)
    nxt.add_argument("--results-per-page", type=int, default=100, help="1..1000; default 100")
    cancel = sub.add_parser("cancel", help="stop a QUEUED or RUNNING query; prints its status")
    cancel.add_argument("query_id")
    serve = sub.add_parser("serve", help="run the REST API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from metrics_assets.queries import store

    try:
        if args.command in ("status", "next", "cancel"):
            from metrics_assets.queries.light import LightWarehouse

            warehouse = LightWarehouse()
            if args.command == "status":
                print(json.dumps(store.get(warehouse, args.query_id).to_json(), indent=2))
            elif args.command == "cancel":
                print(json.dumps(store.cancel(warehouse, args.query_id).to_json(), indent=2))
            else:
                page = store.next_page(warehouse, args.query_id, args.paging_token, args.results_per_page)
                print(json.dumps(page, indent=2, default=str, allow_nan=False))
            return 0
        if args.command == "serve":
            import uvicorn

            from metrics_assets.queries.api import create_app

            app = create_app()
            uvicorn.run(app, host=args.host, port=args.port, log_level="info", h11_max_incomplete_event_size=16 * 1024)
            return 0
        from metrics_assets.queries.client import QueryClient

        client = QueryClient()
        if args.command == "submit":
            query_id = client.submit(args.sql, args.retention_minutes)
            print(query_id, flush=True)
            if args.wait:
                print(json.dumps(client.wait(query_id).to_json(), indent=2))
            return 0
    except ConfigurationError as error:
        print(f"metrics-query: {error}", file=sys.stderr)
        return 2
    except store.QueryError as error:
        print(f"metrics-query: {error.code}: {error}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
