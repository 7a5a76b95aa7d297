"""Day, week, month and year KPIs from the hourly indicator records, in DuckDB.

No Dagster here. :func:`compute_kpis` takes every retained indicator record and the KPI
rows already stored, and returns the whole new ``offspot_kpis`` table and the purge cutoff.

Rules (the box's own):

* A period holds exactly the hours in [start, start of the next period), in UTC. Labels:
  ``2026-01-05`` (D), ``2026 W02`` (ISO week, W), ``2026-01`` (M), ``2026`` (Y).
* The clock is the data's: *now* is the end of the newest hour recorded, so a result does not
  depend on when it is computed. Records older than one year before it are purged.
* A period starting at or after the cutoff has all its hours still recorded and is computed
  afresh. An older period (a past year, mostly) keeps the value stored while its records were
  complete; it is computed only when nothing is stored for it yet.
* Retention: the 7 latest D values, 4 latest W, 12 latest M, and every Y value.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from metrics_assets.lazy import lazy_import

pd = lazy_import("pandas")  # imported on first use (loading the definitions needs no pandas)

KPIS = {2001: "package_popularity", 2003: "total_usage", 2004: "uptime", 2005: "shared_files"}
RETENTION = {"D": 7, "W": 4, "M": 12, "Y": None}
TOP_ITEMS = 10
LABEL_FORMATS = {"D": ("day", "%Y-%m-%d"), "W": ("week", "%G W%V"), "M": ("month", "%Y-%m"), "Y": ("year", "%Y")}

_PERIODS = " UNION ALL ".join(
    f"SELECT '{kind}' AS agg_kind, date_trunc('{unit}', period_start) AS start, "
    f"strftime(period_start, '{fmt}') AS agg_value, indicator_id, dimension, value FROM records"
    for kind, (unit, fmt) in LABEL_FORMATS.items()
)

KPIS_SQL = f"""
WITH by_period AS ({_PERIODS}),
periods AS (SELECT DISTINCT agg_kind, start, agg_value FROM by_period),
package_sums AS (
    SELECT agg_kind, agg_value, indicator_id, dimension AS package, sum(value) AS total
    FROM by_period WHERE indicator_id IN (1001, 1006) GROUP BY ALL
),
popularity AS (
    SELECT agg_kind, agg_value,
        list({{'package': package, 'visits': total}} ORDER BY total DESC, package)[1:{TOP_ITEMS}] AS items
    FROM package_sums WHERE indicator_id = 1001 GROUP BY ALL
),
usage_items AS (
    SELECT agg_kind, agg_value,
        list({{'package': package, 'minutesActivity': total}} ORDER BY total DESC, package)[1:{TOP_ITEMS}] AS items
    FROM package_sums WHERE indicator_id = 1006 GROUP BY ALL
),
totals AS (
    SELECT agg_kind, agg_value,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1001), 0) AS visits,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1005), 0) AS minutes_activity,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1004), 0) AS minutes_on,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1003 AND dimension = 'FILE_CREATED'), 0) AS created,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1003 AND dimension = 'FILE_DELETED'), 0) AS deleted
    FROM by_period GROUP BY ALL
),
computed AS (
    SELECT p.agg_kind, p.agg_value, p.start, k.kpi_id,
        CASE k.kpi_id
            WHEN 2001 THEN json_object('items', coalesce(to_json(pop.items), '[]'::JSON),
                                       'totalVisits', t.visits::BIGINT)
            WHEN 2003 THEN json_object('items', coalesce(to_json(u.items), '[]'::JSON),
                                       'totalMinutesActivity', t.minutes_activity::BIGINT)
            WHEN 2004 THEN json_object('nbMinutesOn', t.minutes_on::BIGINT)
            WHEN 2005 THEN json_object('filesCreated', t.created::BIGINT, 'filesDeleted', t.deleted::BIGINT)
        END::VARCHAR AS kpi_value
    FROM periods p
    JOIN totals t USING (agg_kind, agg_value)
    LEFT JOIN popularity pop USING (agg_kind, agg_value)
    LEFT JOIN usage_items u USING (agg_kind, agg_value)
    CROSS JOIN (SELECT unnest([2001, 2003, 2004, 2005]) AS kpi_id) k
),
stored_periods AS (
    SELECT kpi_id, agg_kind, agg_value, kpi_value,
        CASE agg_kind
            WHEN 'D' THEN strptime(agg_value, '%Y-%m-%d')
            WHEN 'M' THEN strptime(agg_value || '-01', '%Y-%m-%d')
            WHEN 'Y' THEN strptime(agg_value || '-01-01', '%Y-%m-%d')
            ELSE strptime(split_part(agg_value, ' W', 1) || '-01-04', '%Y-%m-%d')
                 - INTERVAL 1 DAY * (isodow(strptime(split_part(agg_value, ' W', 1) || '-01-04', '%Y-%m-%d')) - 1)
                 + INTERVAL 7 DAY * (CAST(split_part(agg_value, ' W', 2) AS INTEGER) - 1)
        END::TIMESTAMPTZ AS start
    FROM stored
),
merged AS (
    -- complete periods: computed afresh
    SELECT kpi_id, agg_kind, agg_value, start, kpi_value FROM computed WHERE start >= $cutoff
    UNION ALL
    -- older periods: the stored value wins; computed only when none is stored
    SELECT kpi_id, agg_kind, agg_value, start, kpi_value FROM stored_periods WHERE start < $cutoff
    UNION ALL
    SELECT c.kpi_id, c.agg_kind, c.agg_value, c.start, c.kpi_value FROM computed c
    WHERE c.start < $cutoff AND NOT EXISTS (
        SELECT 1 FROM stored_periods s
        WHERE s.kpi_id = c.kpi_id AND s.agg_kind = c.agg_kind AND s.agg_value = c.agg_value)
),
ranked AS (
    SELECT *, dense_rank() OVER (PARTITION BY agg_kind ORDER BY start DESC) AS recency FROM merged
)
SELECT CAST(kpi_id AS INTEGER) AS kpi_id, n.kpi_name, agg_kind, agg_value, kpi_value
FROM ranked JOIN names n USING (kpi_id)
WHERE agg_kind = 'Y' OR (agg_kind = 'D' AND recency <= {RETENTION['D']})
   OR (agg_kind = 'W' AND recency <= {RETENTION['W']}) OR (agg_kind = 'M' AND recency <= {RETENTION['M']})
ORDER BY kpi_id, agg_kind, agg_value
"""


def purge_cutoff(newest_period_start: datetime) -> datetime:
    """Records starting before this are more than a year older than the newest hour's end."""
    end = newest_period_start + timedelta(hours=1)
    try:
        return end.replace(year=end.year - 1)
    except ValueError:  # 29 February
        return end.replace(year=end.year - 1, day=28)


def compute_kpis(records: pd.DataFrame, stored: pd.DataFrame) -> tuple[pa.Table, datetime | None]:
    """The new ``offspot_kpis`` table and the purge cutoff (None when there is no record).

    ``records``: indicator_id, period_start, dimension, value. ``stored``: the current KPI rows.
    """
    records = records.assign(period_start=pd.to_datetime(records["period_start"], utc=True))
    stored = stored[["kpi_id", "agg_kind", "agg_value", "kpi_value"]]
    if records.empty:
        return pa.Table.from_pandas(stored.assign(
            kpi_id=stored["kpi_id"].astype("int32"),
            kpi_name=stored["kpi_id"].map(KPIS),
        )[["kpi_id", "kpi_name", "agg_kind", "agg_value", "kpi_value"]], preserve_index=False), None
    cutoff = purge_cutoff(records["period_start"].max().to_pydatetime())
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("records", records)
        con.register("stored", stored)
        con.register("names", pa.table({
            "kpi_id": pa.array(list(KPIS), pa.int32()), "kpi_name": pa.array(list(KPIS.values())),
        }))
        table = con.sql(KPIS_SQL, params={"cutoff": cutoff}).to_arrow_table()
    finally:
        con.close()
    return table, cutoff
