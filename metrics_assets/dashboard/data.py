"""What each dashboard page shows, read from warehouse tables only (SQLite or PostgreSQL).

Grouping runs in the database; pandas only pivots the small results for the charts. Every
function returns plain DataFrames with units in the column names (``_gb``, ``_min``, ``_pct``).
"""

from __future__ import annotations

import pandas as pd

from metrics_assets.dashboard import kpi_api
from metrics_assets.resources.warehouse import Warehouse
from metrics_assets.sql_access import BOOLEAN, DATE, FLOAT, INTEGER, UTC_DATETIME

GB = 10**9  # storage bills in decimal GB (storage_billing_monthly.gb_days = byte_days / 10^9)
UNATTRIBUTED = "(unattributed)"


def _labels(frame: pd.DataFrame, column: str, fmt: str = "%Y-%m-%d") -> None:
    """``column`` (dates, read typed) as text labels for the charts, in place."""
    frame[column] = [d.strftime(fmt) for d in frame[column]]


# -- offspot ---------------------------------------------------------------------------------
def offspot_kpis(warehouse: Warehouse, scope: kpi_api.KpiScope, agg_kind: str) -> dict[str, pd.DataFrame]:
    """The four KPIs of ``scope`` for every retained period of ``agg_kind``, oldest first:
    ``uptime`` (period, minutes_on, hours_on, uptime_pct), ``usage`` (period,
    total_min), ``usage_items`` / ``popularity_items`` (period, package, minutes / visits),
    ``popularity`` (period, total_visits), ``shared_files`` (period, created, deleted), and for
    the fleet ``per_box`` (period, box, minutes_on, hours_on, uptime_pct, last_seen).

    The fleet's uptime is in box-minutes: its % is of ``boxes`` x the period's minutes."""
    rows = kpi_api.kpi_rows(warehouse, scope, agg_kind=agg_kind)
    uptime, usage, usage_items, popularity, popularity_items, shared, per_box = [], [], [], [], [], [], []
    for row in rows:
        period, value = row["agg_value"], row["kpi_value"]
        if row["kpi_id"] == 2004:
            minutes = value["nbMinutesOn"]
            span = kpi_api.period_minutes(agg_kind, period)
            boxes = row.get("boxes") or 1
            uptime.append(
                {
                    "period": period,
                    "minutes_on": minutes,
                    "hours_on": minutes / 60,
                    "boxes": boxes,
                    "uptime_pct": 100 * minutes / (boxes * span),
                }
            )
            per_box += [
                {
                    "period": period,
                    "box": b["box"],
                    "minutes_on": b["nbMinutesOn"],
                    "hours_on": b["nbMinutesOn"] / 60,
                    "uptime_pct": 100 * b["nbMinutesOn"] / span,
                    "last_seen": b.get("lastSeen"),
                }
                for b in row.get("per_box_uptime") or []
            ]
        elif row["kpi_id"] == 2003:
            usage.append({"period": period, "total_min": value["totalMinutesActivity"]})
            usage_items += [
                {"period": period, "package": i["package"], "minutes": i["minutesActivity"]} for i in value["items"]
            ]
        elif row["kpi_id"] == 2001:
            popularity.append({"period": period, "total_visits": value["totalVisits"]})
            popularity_items += [
                {"period": period, "package": i["package"], "visits": i["visits"]} for i in value["items"]
            ]
        elif row["kpi_id"] == 2005:
            shared.append({"period": period, "created": value["filesCreated"], "deleted": value["filesDeleted"]})
    frames = {
        "uptime": pd.DataFrame(uptime, columns=["period", "minutes_on", "hours_on", "boxes", "uptime_pct"]),
        "per_box": pd.DataFrame(
            per_box, columns=["period", "box", "minutes_on", "hours_on", "uptime_pct", "last_seen"]
        ),
        "usage": pd.DataFrame(usage, columns=["period", "total_min"]),
        "usage_items": pd.DataFrame(usage_items, columns=["period", "package", "minutes"]),
        "popularity": pd.DataFrame(popularity, columns=["period", "total_visits"]),
        "popularity_items": pd.DataFrame(popularity_items, columns=["period", "package", "visits"]),
        "shared_files": pd.DataFrame(shared, columns=["period", "created", "deleted"]),
    }
    return {name: frame.sort_values("period", kind="stable") for name, frame in frames.items()}


# -- storage ---------------------------------------------------------------------------------
def storage_bytes_per_owner(warehouse: Warehouse) -> pd.DataFrame:
    """Per snapshot day and owner: bytes and GB held (unattributed bytes as their own owner)."""
    df = warehouse.read_df(
        f"SELECT snapshot_date, coalesce(owner, '{UNATTRIBUTED}') AS owner, sum(usage_amount) AS bytes "
        "FROM usage_data GROUP BY snapshot_date, coalesce(owner, :u) ORDER BY snapshot_date, owner",
        {"u": UNATTRIBUTED},
        types={"snapshot_date": DATE, "bytes": INTEGER},
    )
    _labels(df, "snapshot_date")
    df["bytes"] = df["bytes"].astype("int64")
    df["gb"] = df["bytes"] / GB
    return df


def storage_billing_latest_month(warehouse: Warehouse) -> pd.DataFrame:
    """The newest month of ``storage_billing_monthly``: owner, gb_days, days_measured."""
    df = warehouse.read_df(
        "SELECT month, owner, byte_days, gb_days, days_measured FROM storage_billing_monthly "
        "WHERE month = (SELECT max(month) FROM storage_billing_monthly) ORDER BY gb_days DESC, owner",
        types={"month": DATE},
    )
    _labels(df, "month", "%Y-%m")
    return df


def storage_drift(warehouse: Warehouse) -> pd.DataFrame:
    """Per owner: bytes in the newest snapshot, bytes live now, and the drift (live - snapshot)
    in GB and in % of the snapshot (None when the snapshot has nothing)."""
    snapshot = warehouse.read_df(
        "SELECT coalesce(owner, :u) AS owner, sum(usage_amount) AS snapshot_bytes FROM usage_data "
        "WHERE snapshot_date = (SELECT max(snapshot_date) FROM usage_data) GROUP BY coalesce(owner, :u)",
        {"u": UNATTRIBUTED},
        types={"snapshot_bytes": INTEGER},
    )
    live = warehouse.read_df(
        "SELECT coalesce(owner, :u) AS owner, sum(usage_amount) AS live_bytes, max(as_of) AS as_of "
        "FROM usage_live GROUP BY coalesce(owner, :u)",
        {"u": UNATTRIBUTED},
        types={"live_bytes": INTEGER, "as_of": UTC_DATETIME},
    )
    df = snapshot.merge(live, on="owner", how="outer").fillna({"snapshot_bytes": 0, "live_bytes": 0})
    df["snapshot_bytes"] = df["snapshot_bytes"].astype("int64")
    df["live_bytes"] = df["live_bytes"].astype("int64")
    df["snapshot_gb"] = df["snapshot_bytes"] / GB
    df["live_gb"] = df["live_bytes"] / GB
    df["drift_gb"] = (df["live_bytes"] - df["snapshot_bytes"]) / GB
    df["drift_pct"] = [
        100 * (lv - sn) / sn if sn else None for lv, sn in zip(df["live_bytes"], df["snapshot_bytes"], strict=True)
    ]
    return df.sort_values("owner").reset_index(drop=True)


def storage_snapshot_date(warehouse: Warehouse) -> str | None:
    value = warehouse.scalar("SELECT max(snapshot_date) FROM usage_data", type_=DATE)
    return None if value is None else value.isoformat()


# -- probes ----------------------------------------------------------------------------------
def probe_products(warehouse: Warehouse) -> list[str]:
    return [r["product"] for r in warehouse.fetch_all("SELECT DISTINCT product FROM probe_popularity ORDER BY product")]


def probe_windows(warehouse: Warehouse) -> list[int]:
    return [
        r["window_days"]
        for r in warehouse.fetch_all(
            "SELECT DISTINCT window_days FROM probe_popularity ORDER BY window_days", types={"window_days": INTEGER}
        )
    ]


def probe_popularity(warehouse: Warehouse, product: str, window_days: int) -> pd.DataFrame:
    """The product's window of ``probe_popularity``, by rank."""
    df = warehouse.read_df(
        "SELECT probe_name, window_start, window_end, views, sessions, rank, previous_views, "
        "previous_rank, rank_change, is_most_viewed, is_least_viewed, in_catalogue "
        "FROM probe_popularity WHERE product = :p AND window_days = :w ORDER BY rank, probe_name",
        {"p": product, "w": window_days},
        types={
            "window_start": UTC_DATETIME,
            "window_end": UTC_DATETIME,
            "is_most_viewed": BOOLEAN,
            "is_least_viewed": BOOLEAN,
            "in_catalogue": BOOLEAN,
        },
    )
    return df


def probe_daily_views(warehouse: Warehouse, product: str) -> pd.DataFrame:
    """Views of every probe of the product per day: the events whose action is one of
    ``PROBES_VIEW_ACTIONS`` (GLAM's ``PROBE_SEARCH`` by default), as popularity counts them."""
    from metrics_assets.probes.config import view_actions

    actions = view_actions()
    names = {f"a{i}": a for i, a in enumerate(actions)}
    day = warehouse.utc_date("period_start")
    df = warehouse.read_df(
        f"SELECT {day} AS day, sum(events) AS views FROM probe_views_daily "
        f"WHERE product = :p AND action_type IN ({', '.join(':' + n for n in names)}) GROUP BY {day} ORDER BY 1",
        {"p": product, **names},
        types={"day": DATE, "views": INTEGER},
    )
    _labels(df, "day")
    df["views"] = df["views"].astype("int64")
    return df


def probe_releases(warehouse: Warehouse, product: str) -> pd.DataFrame:
    """The product's releases with their overall effect (``release_correlation``, probe '*')."""
    df = warehouse.read_df(
        "SELECT version, channel, release_date, views_before, views_after, daily_views_before, "
        "daily_views_after, after_before_ratio, complete FROM release_correlation "
        "WHERE product = :p AND probe_name = '*' ORDER BY release_date, version, channel",
        {"p": product},
        types={"release_date": DATE, "complete": BOOLEAN},
    )
    _labels(df, "release_date")
    return df


# -- events ----------------------------------------------------------------------------------
def events_per_day(warehouse: Warehouse) -> pd.DataFrame:
    """Events per UTC day, service and event type (from the hourly rollups)."""
    day = warehouse.utc_date("period_start")
    df = warehouse.read_df(
        f"SELECT {day} AS day, service, event_type, sum(event_count) AS events "
        f"FROM event_rollups_hourly GROUP BY {day}, service, event_type ORDER BY 1, 2, 3",
        types={"day": DATE, "events": INTEGER},
    )
    _labels(df, "day")
    df["events"] = df["events"].astype("int64")
    df["series"] = df["service"] + " / " + df["event_type"]
    return df


def events_lag(warehouse: Warehouse) -> pd.DataFrame:
    """Each hourly rollup group's maximum arrival lag, in minutes, with its event count."""
    df = warehouse.read_df(
        "SELECT max_lag_s, event_count FROM event_rollups_hourly WHERE max_lag_s IS NOT NULL",
        types={"max_lag_s": FLOAT, "event_count": INTEGER},
    )
    df["max_lag_min"] = df["max_lag_s"].astype(float) / 60
    return df


def metrics_per_day(warehouse: Warehouse) -> pd.DataFrame:
    """Each metric's total value per UTC day (over every requester and dimension)."""
    day = warehouse.utc_date("period_start")
    df = warehouse.read_df(
        f"SELECT {day} AS day, metric_name, sum(metric_value) AS value FROM metrics "
        f"GROUP BY {day}, metric_name ORDER BY 1, 2",
        types={"day": DATE, "value": INTEGER},
    )
    _labels(df, "day")
    df["value"] = df["value"].astype("int64")
    return df
