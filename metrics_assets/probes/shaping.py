"""The probes domain's frame shaping and small SQL, out of the assets (no Dagster here):
the usage_sessions daily summary, the split of probe_views_daily's rows into written and
skipped, the desktop catalogue frame and the first day a probe was seen."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from metrics_assets.lazy import lazy_import
from metrics_assets.probes import catalogue as catalogue_sources
from metrics_assets.probes.glam_schema import DEFAULT_PRODUCT
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import as_date

pd = lazy_import("pandas")

VIEWS_COLUMNS = ["period_start", "product", "probe_name", "action_type", "events", "sessions", "tracking_ids", "tracked_events"]


def share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def to_date(value: Any) -> date | None:
    """A date for a value read back from the warehouse (None, NaN/NaT included, stays None)."""
    if value is None or (not isinstance(value, (str, date)) and pd.isna(value)):
        return None
    return as_date(value)


# -- probe_views_daily ---------------------------------------------------------------------
def split_views(grouped: pd.DataFrame) -> tuple[pd.DataFrame, dict, int, int]:
    """probe_views_daily's rows to write; the events skipped, by reason; all events; tracked
    events. Rows with no probe name (or action) come back as their own groups: counted as
    skipped, never written. (A missing product is GLAM's default product, not a skip.)"""
    no_probe = grouped["probe_name"].isna()
    no_action = ~no_probe & grouped["action_type"].isna()
    skipped = {
        "missing_probe_name": int(grouped.loc[no_probe, "events"].sum()),
        "missing_action_type": int(grouped.loc[no_action, "events"].sum()),
    }
    total_events = int(grouped["events"].sum())
    tracked = int(grouped["tracked_events"].sum())
    return grouped[~(no_probe | no_action)][VIEWS_COLUMNS], skipped, total_events, tracked


# -- usage_sessions ------------------------------------------------------------------------
SUMMARY_SQL = """
WITH days AS (
    SELECT unnest(generate_series(CAST($start AS TIMESTAMPTZ), CAST($last AS TIMESTAMPTZ), INTERVAL 1 DAY)) AS period_start
),
agg AS (
    SELECT period_start, count(*) AS sessions,
           quantile_cont(duration_s, 0.5) AS median_duration_s, quantile_cont(duration_s, 0.9) AS p90_duration_s,
           avg(distinct_probes) AS avg_probes_per_session,
           quantile_cont(distinct_probes, 0.5) AS median_probes_per_session,
           sum(events) AS sessionized_events
    FROM sessions GROUP BY period_start
),
entries AS (
    SELECT period_start, entry_probe, count(*) AS n FROM sessions
    WHERE entry_probe IS NOT NULL GROUP BY period_start, entry_probe
),
top AS (
    SELECT period_start,
           CAST(to_json(list({'probe': entry_probe, 'sessions': n} ORDER BY n DESC, entry_probe)[1:5]) AS VARCHAR) AS top_entry_probes
    FROM entries GROUP BY period_start
)
SELECT d.period_start, CAST(coalesce(a.sessions, 0) AS BIGINT) AS sessions,
       a.median_duration_s, a.p90_duration_s, a.avg_probes_per_session, a.median_probes_per_session,
       coalesce(t.top_entry_probes, '[]') AS top_entry_probes,
       CAST(coalesce(a.sessionized_events, 0) AS BIGINT) AS sessionized_events,
       CAST(coalesce(u.untracked_events, 0) AS BIGINT) AS untracked_events
FROM days d
LEFT JOIN agg a ON a.period_start = d.period_start
LEFT JOIN top t ON t.period_start = d.period_start
LEFT JOIN untracked u ON u.period_start = d.period_start
ORDER BY d.period_start
"""

SESSION_COLUMNS = {
    "period_start": pa.timestamp("us", tz="UTC"), "tracking_id": pa.string(),
    "session_start": pa.timestamp("us", tz="UTC"), "session_end": pa.timestamp("us", tz="UTC"),
    "duration_s": pa.float64(), "events": pa.int64(), "distinct_probes": pa.int64(),
    "entry_probe": pa.string(), "exit_probe": pa.string(),
}


def typed(table: pa.Table, columns: dict[str, pa.DataType]) -> pa.Table:
    if table.num_rows == 0:
        return pa.table({c: pa.array([], t) for c, t in columns.items()})
    return pa.table({c: table.column(c).cast(t) for c, t in columns.items()})


_EMPTY_UNTRACKED = pa.schema([("period_start", pa.timestamp("us", tz="UTC")), ("events", pa.int64()),
                              ("untracked_events", pa.int64())])


def session_summary(sessions: pa.Table, untracked: pa.Table, start, last) -> pa.Table:
    """usage_sessions_daily for the days ``start`` .. ``last`` (DuckDB over the day's sessions
    and its untracked counts)."""
    duck = open_session()
    try:
        duck.register("sessions", sessions)
        duck.register("untracked", untracked if untracked.num_rows else _EMPTY_UNTRACKED.empty_table())
        return duck.sql(SUMMARY_SQL, params={"start": start, "last": last}).to_arrow_table()
    finally:
        duck.close()


# -- glam_probe_catalogue ------------------------------------------------------------------
def desktop_catalogue(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The desktop probes of GLAM's glam_probe (as DESKTOP_CATALOGUE_SQL reads them) as catalogue
    rows; rows without a name are skipped and counted."""
    skipped = {"glam_probe_without_name": int(raw["probe_name"].isna().sum()) if len(raw) else 0}
    raw = raw[raw["probe_name"].notna()] if len(raw) else raw
    desktop = pd.DataFrame({
        "product": DEFAULT_PRODUCT,
        "probe_name": raw["probe_name"].astype(str) if len(raw) else pd.Series([], dtype=str),
        "metric_type": [catalogue_sources.desktop_metric_type(t, k) for t, k in zip(raw.get("probe_type", []), raw.get("kind", []))],
        "description": raw["description"] if len(raw) else pd.Series([], dtype=object),
        "source": "glam_probe",
        "first_seen": None,
    }, columns=catalogue_sources.CATALOGUE_COLUMNS).drop_duplicates(["product", "probe_name"])
    return desktop, skipped


def first_seen(frame: pd.DataFrame, previous: pd.DataFrame, today: date) -> list[date | None]:
    """Per catalogue row, the day it first appeared. Desktop probes carry no date: the first
    catalogue that lists one dates it. The very first catalogue of a product dates none (it
    would call every probe new)."""
    known_products = set(previous["product"]) if len(previous) else set()
    before = {(r.product, r.probe_name): to_date(r.first_seen) for r in previous.itertuples()}
    firsts: list[date | None] = []
    for row in frame.itertuples():
        key = (row.product, row.probe_name)
        dated = to_date(row.first_seen)
        if key in before and before[key] is not None:
            firsts.append(min(before[key], dated) if dated else before[key])
        elif dated is not None:
            firsts.append(dated)
        elif key not in before and row.product in known_products:
            firsts.append(today)
        else:
            firsts.append(None)
    return firsts
