"""Materialization metadata shared by every domain: the small Markdown preview of a result.

Any tabular value the warehouse accepts (Arrow, pandas, a DuckDB relation, a list of dicts)
previews the same way: its first ``limit`` rows as a Markdown table, then how many more.
Only those first rows are ever turned into Python values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dagster as dg

from metrics_assets.lazy import is_loaded, lazy_import
from metrics_assets.resources.warehouse import to_arrow

pd = lazy_import("pandas")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def preview(data: Any, limit: int = 10, columns: Sequence[str] | None = None) -> dg.MetadataValue:
    """A Markdown table of the first ``limit`` rows of ``data`` (``columns`` picks and orders
    them), followed by the count of rows left out."""
    if is_loaded("pandas") and isinstance(data, pd.DataFrame):
        total, names = len(data), list(columns or data.columns)
        rows = data.head(limit).to_dict("records")
    elif isinstance(data, list):
        total, names = len(data), list(columns or (data[0].keys() if data else []))
        rows = data[:limit]
    else:
        table = to_arrow(data)
        total, names = table.num_rows, list(columns or table.column_names)
        rows = table.slice(0, limit).to_pylist()
    if total == 0:
        return dg.MetadataValue.md("_no rows_")
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(row.get(name)) for name in names) + " |" for row in rows]
    if total > limit:
        lines.append(f"\n_{total - limit:,} more rows_")
    return dg.MetadataValue.md("\n".join(lines))
