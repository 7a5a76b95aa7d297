"""The probes domain's frame shaping and small SQL, out of the assets (no Dagster here):
the usage_sessions daily summary and figures, the split of probe_views_daily's rows into
written and skipped, the desktop catalogue frame and the first day a probe was seen, the
popularity windows, the release windows and ratios, and the hot list with its reasons."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from metrics_assets.lazy import pandas as pd  # imported on first use
from metrics_assets.probes import catalogue as catalogue_sources
from metrics_assets.probes.glam_schema import DEFAULT_PRODUCT
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import as_utc

DAY = timedelta(days=1)
VIEWS_COLUMNS = [
    "period_start",
    "product",
    "probe_name",
    "action_type",
    "events",
    "sessions",
    "tracking_ids",
    "tracked_events",
]


def share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


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
    "period_start": pa.timestamp("us", tz="UTC"),
    "tracking_id": pa.string(),
    "session_start": pa.timestamp("us", tz="UTC"),
    "session_end": pa.timestamp("us", tz="UTC"),
    "duration_s": pa.float64(),
    "events": pa.int64(),
    "distinct_probes": pa.int64(),
    "entry_probe": pa.string(),
    "exit_probe": pa.string(),
}


def typed(table: pa.Table, columns: dict[str, pa.DataType]) -> pa.Table:
    if table.num_rows == 0:
        return pa.table({c: pa.array([], t) for c, t in columns.items()})
    return pa.table({c: table.column(c).cast(t) for c, t in columns.items()})


_EMPTY_UNTRACKED = pa.schema(
    [("period_start", pa.timestamp("us", tz="UTC")), ("events", pa.int64()), ("untracked_events", pa.int64())]
)


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
    """The desktop probes of GLAM's glam_probe (as catalogue.DESKTOP_CATALOGUE reads them) as catalogue
    rows; rows without a name are skipped and counted."""
    skipped = {"glam_probe_without_name": int(raw["probe_name"].isna().sum()) if len(raw) else 0}
    raw = raw[raw["probe_name"].notna()] if len(raw) else raw
    desktop = pd.DataFrame(
        {
            "product": DEFAULT_PRODUCT,
            "probe_name": raw["probe_name"].astype(str) if len(raw) else pd.Series([], dtype=str),
            "metric_type": [
                catalogue_sources.desktop_metric_type(t, k)
                for t, k in zip(raw.get("probe_type", []), raw.get("kind", []), strict=False)
            ],
            "description": raw["description"] if len(raw) else pd.Series([], dtype=object),
            "source": "glam_probe",
            "first_seen": None,
        },
        columns=catalogue_sources.CATALOGUE_COLUMNS,
    ).drop_duplicates(["product", "probe_name"])
    return desktop, skipped


def first_seen(frame: pd.DataFrame, previous: pd.DataFrame, today: date) -> list[date | None]:
    """Per catalogue row, the day it first appeared (``previous``: the catalogue stored,
    ``first_seen`` read as ``DATE``). Desktop probes carry no date: the first
    catalogue that lists one dates it. The very first catalogue of a product dates none (it
    would call every probe new)."""
    known_products = set(previous["product"]) if len(previous) else set()
    before = {(r.product, r.probe_name): r.first_seen for r in previous.itertuples()}
    firsts: list[date | None] = []
    for row in frame.itertuples():
        key = (row.product, row.probe_name)
        dated = row.first_seen if isinstance(row.first_seen, date) else None  # the sources' dates, or none
        if key in before and before[key] is not None:
            firsts.append(min(before[key], dated) if dated else before[key])
        elif dated is not None:
            firsts.append(dated)
        elif key not in before and row.product in known_products:
            firsts.append(today)
        else:
            firsts.append(None)
    return firsts


def session_figures(summary: pa.Table, untracked: pa.Table) -> dict[str, Any]:
    """usage_sessions' figures from the day's summary rows (usage_sessions_daily) and its
    untracked counts (``events``: every usage event of the day): sessions, usage events,
    untracked events and the share of events with a tracking id."""
    sessions = pc.sum(summary.column("sessions")).as_py() if summary.num_rows else 0
    untracked_events = pc.sum(summary.column("untracked_events")).as_py() if summary.num_rows else 0
    usage_events = pc.sum(untracked.column("events")).as_py() if untracked.num_rows else 0
    return {
        "sessions": sessions or 0,
        "usage_events": usage_events or 0,
        "untracked_events": untracked_events or 0,
        "tracked_share": share((usage_events or 0) - (untracked_events or 0), usage_events or 0),
    }


def catalogue_changes(
    frame: pd.DataFrame, previous: pd.DataFrame, today: date, new_days: int
) -> tuple[dict[str, int], list[str], int]:
    """The new catalogue against the one stored: probes per product, the products that had
    probes and have none now (sorted), and how many probes first appeared in the last
    ``new_days`` days (today included)."""
    counts = {str(p): int(n) for p, n in frame.groupby("product").size().items()} if len(frame) else {}
    before = previous.groupby("product").size().to_dict() if len(previous) else {}
    vanished = sorted(p for p, n in before.items() if n and not counts.get(p))
    recent = sum(1 for d in frame["first_seen"] if isinstance(d, date) and (today - d).days < new_days)
    return counts, vanished, recent


# -- probe_popularity ----------------------------------------------------------------------
def popularity_windows(as_of: date, windows: tuple[int, ...]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The windows ending on ``as_of`` (its UTC midnight + 1 day excluded): a frame
    (window_days, window_end, window_start) and popularity_sql's bounds (``since``, ``until``,
    ``current_<w>``, ``previous_<w>``)."""
    end = as_utc(as_of) + DAY
    frame = pd.DataFrame({"window_days": list(windows)})
    frame["window_end"] = end
    frame["window_start"] = [end - timedelta(days=w) for w in windows]
    params: dict[str, Any] = {"until": end, "since": end - timedelta(days=2 * max(windows))}
    for w in windows:
        params[f"current_{w}"] = end - timedelta(days=w)
        params[f"previous_{w}"] = end - timedelta(days=2 * w)
    return frame, params


def popularity_frame(ranked: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """probe_popularity's rows: popularity_sql's (read typed) with each window's bounds; the
    previous rank and its change are empty where the previous window had no view."""
    frame = ranked.merge(windows, on="window_days", how="left")
    # dtypes (an empty read is all object columns); the values were read typed
    for column in ("is_most_viewed", "is_least_viewed", "in_catalogue"):
        frame[column] = frame[column].astype(bool)
    for column in ("views", "sessions", "previous_views", "rank", "window_days"):
        frame[column] = frame[column].astype("int64")
    for column in ("previous_rank", "rank_change"):
        frame[column] = frame[column].astype("Int64")
    return frame


# -- release_correlation -------------------------------------------------------------------
RELEASE_COLUMNS = ["product", "version", "channel", "release_date"]


def release_windows(releases: pd.DataFrame, as_of: date, first_views: date | None, n: int) -> pd.DataFrame:
    """The releases whose windows say something (released by ``as_of``, and whose after window
    ends after the first day of views), each with its windows: ``before_start`` (n days before
    the release day), ``release_start``, ``after_end`` (n days after, cut at the end of the
    as-of day: no later view counts), ``complete`` (the after window has run its n days) and
    ``after_days`` (the days it has had). ``release_date`` is a ``date``."""
    if len(releases):
        keep = releases["release_date"] <= as_of
        if first_views is not None:
            keep &= releases["release_date"] + timedelta(days=n) > first_views
        releases = releases[keep].reset_index(drop=True)
    if releases.empty:
        releases = pd.DataFrame(columns=RELEASE_COLUMNS)
    releases = releases.copy()
    start = pd.Series([as_utc(d) for d in releases["release_date"]], dtype="datetime64[us, UTC]")
    limit = pd.Timestamp(as_utc(as_of) + DAY)
    full_end = start + pd.Timedelta(days=n)
    releases["release_start"] = start
    releases["before_start"] = start - pd.Timedelta(days=n)
    releases["after_end"] = full_end.where(full_end <= limit, limit)
    releases["complete"] = (full_end <= limit).astype(bool)
    releases["after_days"] = (releases["after_end"] - releases["release_start"]).dt.days.astype("int64")
    return releases


def correlation_frame(views: pd.DataFrame, releases: pd.DataFrame, n: int) -> pd.DataFrame:
    """release_correlation's rows: release_correlation_sql's views before and after (read
    typed), per day of each window (the after window's days actually elapsed), and their
    ratio (empty when there was no view before)."""
    frame = views.merge(
        releases[["product", "version", "channel", "release_date", "complete", "after_days"]],
        on=["product", "version", "channel"],
        how="left",
    )
    frame["views_before"] = frame["views_before"].astype("int64")
    frame["views_after"] = frame["views_after"].astype("int64")
    frame["daily_views_before"] = frame["views_before"] / n
    frame["daily_views_after"] = frame["views_after"] / frame["after_days"].astype("float64")
    frame["after_before_ratio"] = (
        frame["daily_views_after"] / frame["daily_views_before"].where(frame["views_before"] > 0)
    ).astype("float64")
    frame["complete"] = frame["complete"].astype(bool)
    return frame[
        [
            "product",
            "version",
            "channel",
            "release_date",
            "probe_name",
            "views_before",
            "views_after",
            "daily_views_before",
            "daily_views_after",
            "after_before_ratio",
            "complete",
        ]
    ]


# -- probes_to_build -----------------------------------------------------------------------
REASONS = ("hot", "always_build", "requested", "new")


def hot_list(
    candidates: pd.DataFrame, window_days: int, min_views: int, as_of: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """probes_to_build's rows from probes_to_build_sql's (read typed): the catalogue's
    candidates with the rule and the as-of day, most viewed first per product; and the
    candidates the catalogue does not know (left out)."""
    if candidates.empty:
        known = pd.DataFrame(columns=["product", "probe_name", "views", "reason"])
        unknown = pd.DataFrame(columns=["product", "probe_name", "views", "reason"])
    else:
        in_catalogue = candidates["in_catalogue"].astype(bool)
        known = candidates[in_catalogue].drop(columns=["in_catalogue"])
        unknown = candidates[~in_catalogue].drop(columns=["in_catalogue"])
    frame = known.assign(window_days=window_days, min_views=min_views, as_of=as_of)
    frame["views"] = frame["views"].astype("int64")
    return frame.sort_values(["product", "views", "probe_name"], ascending=[True, False, True]), unknown


def reason_counts(frame: pd.DataFrame, reasons: tuple[str, ...] = REASONS) -> dict[str, int]:
    """How many rows give each reason (a row ``'hot,requested'`` counts for both)."""
    given = [set(r.split(",")) for r in frame["reason"]] if len(frame) else []
    return {r: sum(1 for parts in given if r in parts) for r in reasons}
