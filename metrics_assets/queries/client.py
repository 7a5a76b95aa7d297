"""The Python client of ad hoc lake queries: submit, poll, page.

    from metrics_assets.queries.client import QueryClient

    client = QueryClient()                       # the warehouse of METRICS_WAREHOUSE_URL
    query_id = client.submit("SELECT servicename, count(*) AS n FROM events_v0 GROUP BY 1")
    client.wait(query_id)                        # QUEUED -> RUNNING -> FINISHED (the sensor runs it)
    page = client.next(query_id, results_per_page=1000)
    client.cancel(other_id)                      # QUEUED or RUNNING -> CANCELLED
    while page["next_paging_token"]:
        page = client.next(query_id, page["next_paging_token"], 1000)

It talks to the warehouse directly (the request table is the interface); the REST API and
the CLI are thin layers over it. Errors are :class:`store.QueryError` subclasses, each with a
``code`` and the 4xx the API answers with.
"""

from __future__ import annotations

import time
from typing import Any

from metrics_assets import settings
from metrics_assets.queries import config, store
from metrics_assets.queries.store import (  # noqa: F401 - re-exported for callers
    EXPIRED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    InvalidQuery,
    QueryError,
    QueryStatus,
)
from metrics_assets.queries.validation import QueryRejected, validate
from metrics_assets.resources.warehouse import Warehouse


class QueryClient:
    def __init__(self, warehouse: Warehouse | None = None):
        self.warehouse = warehouse or Warehouse(url=settings.warehouse_url())

    def submit(self, sql: str, retention_minutes: int = config.DEFAULT_RETENTION_MINUTES) -> str:
        """Validate and queue ``sql``; returns its query id. Raises :class:`InvalidQuery` (with
        the reason) when the query is refused: nothing is stored then."""
        retention = store.check_retention(retention_minutes)
        try:
            validated = validate(sql)
        except QueryRejected as error:
            raise InvalidQuery(f"invalid query: {error}", error.reason) from error
        return store.insert_query(self.warehouse, validated.sql, retention)

    def status(self, query_id: str) -> QueryStatus:
        return store.get(self.warehouse, query_id)

    def next(
        self,
        query_id: str,
        paging_token: str | None = None,
        results_per_page: int = config.DEFAULT_RESULTS_PER_PAGE,
    ) -> dict[str, Any]:
        return store.next_page(self.warehouse, query_id, paging_token, results_per_page)

    def cancel(self, query_id: str) -> QueryStatus:
        """Stop a QUEUED or RUNNING query (its engine query too): it ends CANCELLED. Raises
        :class:`store.AlreadyFinal` when it already has its answer."""
        return store.cancel(self.warehouse, query_id)

    def wait(self, query_id: str, timeout_s: float = 300, poll_s: float = 0.5) -> QueryStatus:
        """Poll until the query is FINISHED, FAILED, CANCELLED or EXPIRED (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(query_id)
            if status.status in store.FINAL or time.monotonic() >= deadline:
                return status
            time.sleep(poll_s)


def submit(sql: str, retention_minutes: int = config.DEFAULT_RETENTION_MINUTES) -> str:
    return QueryClient().submit(sql, retention_minutes)


def status(query_id: str) -> QueryStatus:
    return QueryClient().status(query_id)


def cancel(query_id: str) -> QueryStatus:
    return QueryClient().cancel(query_id)


def next_page(query_id: str, paging_token: str | None = None, results_per_page: int = 100) -> dict[str, Any]:
    return QueryClient().next(query_id, paging_token, results_per_page)
