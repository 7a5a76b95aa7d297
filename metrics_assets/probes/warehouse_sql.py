"""Set-based SQL run in the warehouse (PostgreSQL, or SQLite locally) over
``probe_views_daily``, written once in the SQL both speak.

Everything that differs between the two (date arithmetic, time zones) is computed up front
into small temporary tables, ``tmp_probes_*``: the catalogue and the releases (read from the
GLAM database, which may be another server), the windows, the always-build list. Results are
read typed (``sql_access``), so no value is parsed after the read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.probes.config import view_actions_sql
from metrics_assets.resources.warehouse import Warehouse, to_arrow
from metrics_assets.sql_access import BOOLEAN, INTEGER, Types, typed


@contextmanager
def temp_tables(warehouse: Warehouse, tables: dict[str, tuple[dict[str, str], Any]]) -> Iterator[Connection]:
    """One transaction on the warehouse with ``{name: ({column: type}, data)}`` loaded as
    temporary tables (types: 'text', 'int', 'ts', 'date'). They are dropped at the end.
    (SQLite takes ``TIMESTAMPTZ`` as it takes ``TIMESTAMP``: a column of numeric affinity,
    holding the UTC text ``load`` writes.)"""
    types = {"text": "TEXT", "int": "BIGINT", "ts": "TIMESTAMPTZ", "date": "DATE"}
    with warehouse.begin() as conn:
        warehouse.for_analytics(conn)
        for name, (columns, data) in tables.items():
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            cols = ", ".join(f"{c} {types[t]}" for c, t in columns.items())
            conn.execute(sa.text(f"CREATE TEMPORARY TABLE {name} ({cols})"))
            arrow = to_arrow(data)
            if arrow.num_rows:
                warehouse.load(conn, name, arrow.select(list(columns)))
            conn.execute(sa.text(f"ANALYZE {name}"))  # temporary tables have no statistics otherwise
        try:
            yield conn
        finally:
            for name in tables:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def fetch_df(
    conn: Connection, sql: str, params: dict[str, Any] | None = None, *, types: Types | None = None
) -> pd.DataFrame:
    """The rows of ``sql`` on ``conn`` as a frame, the columns named in ``types`` read typed."""
    result = conn.execute(typed(sql, types), dict(params or {}))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


#: popularity_sql's columns, read typed.
POPULARITY_TYPES: Types = {
    "window_days": INTEGER,
    "views": INTEGER,
    "sessions": INTEGER,
    "rank": INTEGER,
    "previous_views": INTEGER,
    "previous_rank": INTEGER,
    "rank_change": INTEGER,
    "is_most_viewed": BOOLEAN,
    "is_least_viewed": BOOLEAN,
    "in_catalogue": BOOLEAN,
}
#: release_correlation_sql's and probes_to_build_sql's counts, read typed.
CORRELATION_TYPES: Types = {"views_before": INTEGER, "views_after": INTEGER}
HOT_LIST_TYPES: Types = {"views": INTEGER, "in_catalogue": BOOLEAN}


def popularity_sql(windows: tuple[int, ...]) -> str:
    """Views (events of the PROBES_VIEW_ACTIONS) and sessions of every probe in each window, with the previous
    window of the same length; catalogue probes never viewed are there with zeros.

    One scan of probe_views_daily (``:since`` to ``:until``) sums every window at once; the
    bounds are parameters ``:current_<w>`` and ``:previous_<w>`` (window starts), computed by
    the caller. The catalogue is the temporary table tmp_probes_catalogue."""
    sums = []
    for w in windows:
        sums += [
            f"sum(CASE WHEN period_start >= :current_{w} THEN events ELSE 0 END) AS views_{w}",
            f"sum(CASE WHEN period_start >= :current_{w} THEN sessions ELSE 0 END) AS sessions_{w}",
            f"sum(CASE WHEN period_start >= :previous_{w} AND period_start < :current_{w} THEN events ELSE 0 END) AS previous_{w}",
        ]
    windows_table = " UNION ALL ".join(f"SELECT {w} AS window_days" for w in windows)

    def pick(column: str) -> str:
        return "CASE w.window_days " + " ".join(f"WHEN {w} THEN {column}_{w}" for w in windows) + " END"

    return f"""
WITH wide AS (
    SELECT product, probe_name, {", ".join(sums)}
    FROM probe_views_daily
    WHERE action_type IN {view_actions_sql()} AND period_start >= :since AND period_start < :until
    GROUP BY product, probe_name
),
windows AS ({windows_table}),
windowed AS (
    SELECT w.window_days, v.product, v.probe_name,
           {pick("v.views")} AS views, {pick("v.sessions")} AS sessions, {pick("v.previous")} AS previous_views
    FROM wide v CROSS JOIN windows w
),
joined AS (
    SELECT coalesce(v.window_days, cw.window_days) AS window_days,
           coalesce(v.product, cw.product) AS product, coalesce(v.probe_name, cw.probe_name) AS probe_name,
           coalesce(v.views, 0) AS views, coalesce(v.sessions, 0) AS sessions,
           coalesce(v.previous_views, 0) AS previous_views,
           CASE WHEN cw.probe_name IS NULL THEN 0 ELSE 1 END AS in_catalogue
    FROM windowed v
    FULL OUTER JOIN (SELECT w.window_days, c.product, c.probe_name FROM tmp_probes_catalogue c CROSS JOIN windows w) cw
      ON cw.window_days = v.window_days AND cw.product = v.product AND cw.probe_name = v.probe_name
),
ranked AS (
    SELECT joined.*,
           rank() OVER (PARTITION BY product, window_days ORDER BY views DESC) AS rank,
           rank() OVER (PARTITION BY product, window_days ORDER BY previous_views DESC) AS previous_rank_all,
           row_number() OVER (PARTITION BY product, window_days ORDER BY views DESC, probe_name) AS top_order,
           row_number() OVER (PARTITION BY product, window_days ORDER BY views ASC, probe_name) AS bottom_order
    FROM joined
)
SELECT product, window_days, probe_name, views, sessions, rank, previous_views,
       CASE WHEN previous_views > 0 THEN previous_rank_all END AS previous_rank,
       CASE WHEN previous_views > 0 THEN previous_rank_all - rank END AS rank_change,
       CASE WHEN top_order <= :top_n AND views > 0 THEN 1 ELSE 0 END AS is_most_viewed,
       CASE WHEN bottom_order <= :top_n THEN 1 ELSE 0 END AS is_least_viewed,
       in_catalogue
FROM ranked
"""


def release_correlation_sql() -> str:
    """Views of every probe around each release, and the product's overall views ('*').
    tmp_probes_releases(product, version, channel, before_start, release_start, after_end):
    ``after_end`` is already cut at the as-of day, so no view after it counts."""
    return f"""
WITH per_probe AS (
    SELECT r.product, r.version, r.channel, v.probe_name,
           sum(CASE WHEN v.period_start < r.release_start THEN v.events ELSE 0 END) AS views_before,
           sum(CASE WHEN v.period_start >= r.release_start THEN v.events ELSE 0 END) AS views_after
    FROM tmp_probes_releases r
    JOIN probe_views_daily v
      ON v.product = r.product AND v.period_start >= r.before_start AND v.period_start < r.after_end
    WHERE v.action_type IN {view_actions_sql()}
    GROUP BY r.product, r.version, r.channel, v.probe_name
)
SELECT product, version, channel, probe_name, views_before, views_after FROM per_probe
UNION ALL
SELECT r.product, r.version, r.channel, '*' AS probe_name,
       coalesce(sum(p.views_before), 0) AS views_before, coalesce(sum(p.views_after), 0) AS views_after
FROM tmp_probes_releases r
LEFT JOIN per_probe p ON p.product = r.product AND p.version = r.version AND p.channel = r.channel
GROUP BY r.product, r.version, r.channel
"""


def probes_to_build_sql() -> str:
    """The hot list: probes viewed at least :min_views times in [:start, :end), the
    always-build list (tmp_probes_always), the probes requested lately (tmp_probes_requested)
    and the new ones (tmp_probes_new), each with its reasons and whether the catalogue knows it."""
    return f"""
WITH windowed AS (
    SELECT product, probe_name, sum(events) AS views
    FROM probe_views_daily
    WHERE action_type IN {view_actions_sql()} AND period_start >= :start AND period_start < :end
    GROUP BY product, probe_name
),
hot AS (SELECT product, probe_name FROM windowed WHERE views >= :min_views),
candidates AS (
    SELECT product, probe_name FROM hot
    UNION SELECT product, probe_name FROM tmp_probes_always
    UNION SELECT product, probe_name FROM tmp_probes_requested
    UNION SELECT product, probe_name FROM tmp_probes_new
)
SELECT c.product, c.probe_name, coalesce(w.views, 0) AS views,
       substr(CASE WHEN h.probe_name IS NOT NULL THEN ',hot' ELSE '' END
              || CASE WHEN a.probe_name IS NOT NULL THEN ',always_build' ELSE '' END
              || CASE WHEN r.probe_name IS NOT NULL THEN ',requested' ELSE '' END
              || CASE WHEN n.probe_name IS NOT NULL THEN ',new' ELSE '' END, 2) AS reason,
       CASE WHEN k.probe_name IS NULL THEN 0 ELSE 1 END AS in_catalogue
FROM candidates c
LEFT JOIN windowed w ON w.product = c.product AND w.probe_name = c.probe_name
LEFT JOIN hot h ON h.product = c.product AND h.probe_name = c.probe_name
LEFT JOIN (SELECT DISTINCT product, probe_name FROM tmp_probes_always) a ON a.product = c.product AND a.probe_name = c.probe_name
LEFT JOIN (SELECT DISTINCT product, probe_name FROM tmp_probes_requested) r ON r.product = c.product AND r.probe_name = c.probe_name
LEFT JOIN (SELECT DISTINCT product, probe_name FROM tmp_probes_new) n ON n.product = c.product AND n.probe_name = c.probe_name
LEFT JOIN tmp_probes_catalogue k ON k.product = c.product AND k.probe_name = c.probe_name
"""
