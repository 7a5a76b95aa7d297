"""Which tables a statement really reads: each reference resolved by scope, as Trino and DuckDB
resolve it (a CTE shadows a name only where its WITH is visible; a non-recursive CTE does not
see itself)."""

from __future__ import annotations

import pytest

from metrics_assets.resources.query_engine import table_names


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT count(*) FROM events_v0", {"events_v0"}),
        ("SELECT * FROM events_v0 UNION ALL SELECT * FROM events_v1", {"events_v0", "events_v1"}),
        # A CTE named like a table is the CTE where it is visible: nothing real is read.
        ("WITH events_v0 AS (SELECT 1 AS x) SELECT * FROM events_v0", set()),
        # Its body does not see itself: the inner reference is the real table.
        ("WITH events_v0 AS (SELECT * FROM events_v0) SELECT count(*) FROM events_v0", {"events_v0"}),
        ("WITH a AS (SELECT * FROM events_v1) SELECT * FROM a", {"events_v1"}),
        # A CTE of a subquery is not visible outside it.
        (
            "SELECT * FROM (WITH events_v0 AS (SELECT 1 AS x) SELECT * FROM events_v0) AS s, events_v0",
            {"events_v0"},
        ),
    ],
)
def test_table_names_resolve_ctes_by_scope(sql, expected):
    assert table_names(sql) == expected
