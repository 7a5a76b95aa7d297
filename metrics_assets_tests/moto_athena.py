"""Queue Athena query results in moto's server, for the engine's Athena path.

moto's Athena runs no SQL: it returns whatever result was queued through its
``/moto-api/static/athena/query-results`` endpoint. The shape is what Athena's
``GetQueryResults`` sends: a header row of column names, then one row per record, every value
a ``VarCharValue`` string (a NULL is an empty datum), and ``ColumnInfo`` with each column's type.
"""

from __future__ import annotations

import requests


def seed_athena_result(endpoint: str, columns: list[tuple[str, str]], rows: list[list]) -> None:
    """Queue one result in moto: a header row, then the rows (None = NULL), as Athena sends them."""
    def row(values):
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    body = {"results": [{
        "rows": [row([c for c, _ in columns])] + [row(r) for r in rows],
        "column_info": [{"Name": c, "Label": c, "Type": t, "Nullable": "NULLABLE", "CaseSensitive": True,
                         "CatalogName": "hive", "SchemaName": "lake", "TableName": "", "Precision": 0, "Scale": 0}
                        for c, t in columns],
    }]}
    requests.post(f"{endpoint}/moto-api/static/athena/query-results", json=body, timeout=10).raise_for_status()
