"""Day, week, month and year KPIs from the hourly indicator records, in DuckDB.

No Dagster here. :func:`compute_kpis` takes the indicator records (hourly, or already summed
per box, indicator, dimension and UTC day: every KPI is a sum over whole days, so both give
the same values), each box's newest hour, and the KPI rows already stored, and returns the
whole new KPI table and each box's purge cutoff. The same SQL computes ``offspot_kpis`` (one
set of KPIs per box) and ``offspot_fleet_kpis`` (every box's records as one fleet).

Rules (the box's own, offspot/metrics ``business/kpis/processor.py``):

* A period holds exactly the hours in [start, start of the next period), in UTC. Labels:
  ``2026-01-05`` (D), ``2026 W02`` (ISO week, W), ``2026-01`` (M), ``2026`` (Y).
* The clock is the data's: a box's *now* is its newest recorded hour (the box's
  ``period_to_compute``), so a result does not depend on when it is computed. Records older
  than one year before the end of that hour are purged.
* Retention as the box's ``get_aggregations_to_keep``: the days of now and of the 6 previous
  calendar days, the weeks of now and of now - 1, 2, 3 weeks, the months of now and of the 11
  previous months, and every year. A retained period without a record has no row (the box
  would show zeros).
* A period starting at or after the cutoff has all its hours still recorded and is computed
  afresh. An older period (a past year, mostly) keeps the value stored while its records were
  complete; it is computed only when nothing is stored for it yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.resources.duckdb_session import open_session

KPIS = {2001: "package_popularity", 2003: "total_usage", 2004: "uptime", 2005: "shared_files"}
RETENTION = {"D": 7, "W": 4, "M": 12, "Y": None}
TOP_ITEMS = 10
LABEL_FORMATS = {"D": ("day", "%Y-%m-%d"), "W": ("week", "%G W%V"), "M": ("month", "%Y-%m"), "Y": ("year", "%Y")}
FLEET = "fleet"

# each distinct day's period start and label, per kind: computed on a few hundred days, not on
# every record
_DAY_LABELS = " UNION ALL ".join(
    f"SELECT day, '{kind}' AS agg_kind, date_trunc('{unit}', day) AS start, strftime(day, '{fmt}') AS agg_value "
    "FROM days"
    for kind, (unit, fmt) in LABEL_FORMATS.items()
)


KPIS_SQL = f"""
WITH days AS (SELECT DISTINCT day FROM records),
day_labels AS ({_DAY_LABELS}),
by_period AS (
    SELECT r.box_id, r.origin, l.agg_kind, l.start, l.agg_value, r.indicator_id, r.dimension,
           sum(r.value) AS value, max(r.last_start) AS last_start
    FROM records r JOIN day_labels l USING (day)
    GROUP BY ALL
),
periods AS (
    SELECT box_id, agg_kind, start, agg_value, count(DISTINCT origin) AS boxes FROM by_period GROUP BY ALL
),
package_sums AS (
    SELECT box_id, agg_kind, agg_value, indicator_id, dimension AS package, sum(value) AS total
    FROM by_period WHERE indicator_id IN (1001, 1006) GROUP BY ALL
),
popularity AS (
    SELECT box_id, agg_kind, agg_value,
        list({{'package': package, 'visits': total}} ORDER BY total DESC, package)[1:{TOP_ITEMS}] AS items
    FROM package_sums WHERE indicator_id = 1001 GROUP BY ALL
),
usage_items AS (
    SELECT box_id, agg_kind, agg_value,
        list({{'package': package, 'minutesActivity': total}} ORDER BY total DESC, package)[1:{TOP_ITEMS}] AS items
    FROM package_sums WHERE indicator_id = 1006 GROUP BY ALL
),
box_uptime AS (
    SELECT box_id, agg_kind, agg_value,
        list({{'box': origin, 'nbMinutesOn': minutes::BIGINT,
               'lastSeen': strftime(last_seen, '%Y-%m-%dT%H:%M:%SZ')}} ORDER BY origin) AS items
    FROM (SELECT box_id, agg_kind, agg_value, origin,
                 coalesce(sum(value) FILTER (WHERE indicator_id = 1004), 0) AS minutes,
                 max(last_start) + INTERVAL 1 HOUR AS last_seen
          FROM by_period GROUP BY ALL)
    GROUP BY ALL
),
totals AS (
    SELECT box_id, agg_kind, agg_value,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1001), 0) AS visits,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1005), 0) AS minutes_activity,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1004), 0) AS minutes_on,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1003 AND dimension = 'FILE_CREATED'), 0) AS created,
        coalesce(sum(value) FILTER (WHERE indicator_id = 1003 AND dimension = 'FILE_DELETED'), 0) AS deleted
    FROM by_period GROUP BY ALL
),
computed AS (
    SELECT p.box_id, p.agg_kind, p.agg_value, p.start, k.kpi_id, p.boxes,
        CASE k.kpi_id
            WHEN 2001 THEN json_object('items', coalesce(to_json(pop.items), '[]'::JSON),
                                       'totalVisits', t.visits::BIGINT)
            WHEN 2003 THEN json_object('items', coalesce(to_json(u.items), '[]'::JSON),
                                       'totalMinutesActivity', t.minutes_activity::BIGINT)
            WHEN 2004 THEN json_object('nbMinutesOn', t.minutes_on::BIGINT)
            WHEN 2005 THEN json_object('filesCreated', t.created::BIGINT, 'filesDeleted', t.deleted::BIGINT)
        END::VARCHAR AS kpi_value,
        -- each box's uptime and the end of its last recorded hour in the period (uptime rows)
        CASE WHEN k.kpi_id = 2004 THEN coalesce(to_json(bu.items), '[]'::JSON)::VARCHAR END AS per_box_uptime
    FROM periods p
    JOIN totals t USING (box_id, agg_kind, agg_value)
    LEFT JOIN popularity pop USING (box_id, agg_kind, agg_value)
    LEFT JOIN usage_items u USING (box_id, agg_kind, agg_value)
    LEFT JOIN box_uptime bu USING (box_id, agg_kind, agg_value)
    CROSS JOIN (SELECT unnest([2001, 2003, 2004, 2005]) AS kpi_id) k
),
stored_periods AS (
    SELECT box_id, kpi_id, agg_kind, agg_value, kpi_value, boxes, per_box_uptime,
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
    SELECT c.box_id, kpi_id, agg_kind, agg_value, start, kpi_value, boxes, per_box_uptime
    FROM computed c JOIN clocks k USING (box_id) WHERE start >= k.cutoff
    UNION ALL
    -- older periods: the stored value wins; computed only when none is stored
    SELECT s.box_id, kpi_id, agg_kind, agg_value, start, kpi_value, boxes, per_box_uptime
    FROM stored_periods s JOIN clocks k USING (box_id) WHERE start < k.cutoff
    UNION ALL
    SELECT c.box_id, c.kpi_id, c.agg_kind, c.agg_value, c.start, c.kpi_value, c.boxes, c.per_box_uptime
    FROM computed c JOIN clocks k USING (box_id)
    WHERE c.start < k.cutoff AND NOT EXISTS (
        SELECT 1 FROM stored_periods s WHERE s.box_id = c.box_id
        AND s.kpi_id = c.kpi_id AND s.agg_kind = c.agg_kind AND s.agg_value = c.agg_value)
),
keep AS (
    -- the box's get_aggregations_to_keep, from each box's newest hour
    SELECT box_id, 'D' AS agg_kind, strftime(now - to_days(i::INTEGER), '%Y-%m-%d') AS agg_value
    FROM clocks, range(0, {RETENTION["D"]}) t(i)
    UNION ALL
    SELECT box_id, 'W', strftime(now - to_days(7 * i::INTEGER), '%G W%V') FROM clocks, range(0, {RETENTION["W"]}) t(i)
    UNION ALL
    SELECT box_id, 'M', strftime(now - to_months(i::INTEGER), '%Y-%m') FROM clocks, range(0, {RETENTION["M"]}) t(i)
)
SELECT m.box_id, CAST(kpi_id AS INTEGER) AS kpi_id, n.kpi_name, m.agg_kind, m.agg_value, kpi_value,
       CAST(boxes AS INTEGER) AS boxes, per_box_uptime
FROM merged m JOIN names n USING (kpi_id)
WHERE m.agg_kind = 'Y' OR EXISTS (
    SELECT 1 FROM keep WHERE keep.box_id = m.box_id AND keep.agg_kind = m.agg_kind AND keep.agg_value = m.agg_value)
ORDER BY m.box_id, kpi_id, m.agg_kind, m.agg_value
"""


def purge_cutoff(newest_period_start: datetime) -> datetime:
    """Records starting before this are more than a year older than the newest hour's end."""
    end = newest_period_start + timedelta(hours=1)
    try:
        return end.replace(year=end.year - 1)
    except ValueError:  # 29 February
        return end.replace(year=end.year - 1, day=28)


def compute_kpis(records: pd.DataFrame, stored: pd.DataFrame, *, fleet: bool = False) -> tuple[pa.Table, dict]:
    """The new KPI table and each box's purge cutoff (``{box_id: cutoff}``; empty when there is
    no record).

    ``records``: box_id, indicator_id, period_start, dimension, value, and optionally
    ``last_start`` (the newest hour summed into the row, when rows are summed per day); the
    times are UTC timestamps, as :func:`~metrics_assets.offspot.records.daily_records` gives them.
    ``stored``: the current KPI rows (box_id, kpi_id, agg_kind, agg_value, kpi_value[, boxes]).
    With ``fleet``, every box's records make one set of KPIs (values shaped as the box's), and
    the table has ``boxes`` (boxes with records in the period) and, on uptime rows,
    ``per_box_uptime``: ``[{"box", "nbMinutesOn", "lastSeen"}]``, lastSeen being the end of the
    box's newest recorded hour in the period.
    """
    records = records.copy()
    if "last_start" not in records:
        records["last_start"] = records["period_start"]
    stored = stored.copy()
    if "box_id" not in stored:
        stored["box_id"] = FLEET
    if "boxes" not in stored:
        stored["boxes"] = 1
    if "per_box_uptime" not in stored:
        stored["per_box_uptime"] = None
    stored["per_box_uptime"] = stored["per_box_uptime"].astype(object)
    stored = stored[["box_id", "kpi_id", "agg_kind", "agg_value", "kpi_value", "boxes", "per_box_uptime"]]
    records["origin"] = records["box_id"]
    if fleet:
        records["box_id"] = FLEET
    if records.empty:
        clocks = pd.DataFrame({"box_id": pd.Series(dtype=str), "now": pd.Series(dtype="datetime64[ns, UTC]")})
        cutoffs: dict = {}
    else:
        clocks = records.groupby("box_id", as_index=False)["last_start"].max().rename(columns={"last_start": "now"})
        cutoffs = {row.box_id: purge_cutoff(row.now.to_pydatetime()) for row in clocks.itertuples()}
    # typed even when there is no box (no record yet): DuckDB binds the SQL on the column types
    clocks["cutoff"] = pd.to_datetime(clocks["box_id"].map(cutoffs), utc=True)
    # boxes whose records are all purged keep their stored rows as they are
    orphans = stored[~stored["box_id"].isin(clocks["box_id"])]
    con = open_session()
    try:
        con.register(
            "records",
            records.rename(columns={"period_start": "day"})[
                ["box_id", "origin", "indicator_id", "day", "dimension", "value", "last_start"]
            ],
        )
        con.register("stored", stored)
        con.register("clocks", clocks)
        con.register(
            "names",
            pa.table(
                {
                    "kpi_id": pa.array(list(KPIS), pa.int32()),
                    "kpi_name": pa.array(list(KPIS.values())),
                }
            ),
        )
        table = con.sql(KPIS_SQL).to_arrow_table()
    finally:
        con.close()
    if len(orphans):
        extra = pa.Table.from_pandas(
            orphans.assign(
                kpi_id=orphans["kpi_id"].astype("int32"),
                kpi_name=orphans["kpi_id"].map(KPIS),
                boxes=orphans["boxes"].astype("int32"),
            )[table.column_names],
            schema=table.schema,
            preserve_index=False,
        )
        table = pa.concat_tables([table, extra])
    table = table.drop_columns(["box_id"]) if fleet else table.drop_columns(["boxes", "per_box_uptime"])
    return table, cutoffs
