"""Set-based SQL over the GLAM usage log, in PostgreSQL SQL that DuckDB runs unchanged.

Sessions: a tracking id's events ordered by (timestamp, id); a new session starts when the
gap to the previous event is longer than 30 minutes (exactly 30:00 stays in the session).
Events with an empty or missing tracking id are counted, never sessionized.

No ``::`` casts and no ``:`` inside literals: ``:name`` is a parameter on both engines.
``COLLATE "C"`` on the tracking-id partitions halves PostgreSQL's sort (byte order is all a
partition needs); the DuckDB path drops it (:data:`DUCKDB_DROPS`).
"""

from __future__ import annotations

from metrics_assets.probes.config import SESSION_GAP_MINUTES

DUCKDB_DROPS = ' COLLATE "C"'

_EVENTS = """
    SELECT id, action_type, "timestamp" AS ts,
           context ->> 'product' AS product,
           NULLIF(probe_name, '') AS probe_name,
           NULLIF(tracking_id, '') AS tracking_id
    FROM glam_usage_instrumentation
    WHERE "timestamp" >= :since AND "timestamp" < :until
"""

_SESSIONIZED = f"""
    tracked AS (
        SELECT *,
               CASE WHEN ts - lag(ts) OVER (PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id)
                         <= INTERVAL '{SESSION_GAP_MINUTES} minutes'
                    THEN 0 ELSE 1 END AS new_session
        FROM ev WHERE tracking_id IS NOT NULL
    ),
    numbered AS (
        SELECT *, sum(new_session) OVER (
                   PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS session_no
        FROM tracked
    )
"""

#: probe_views_daily for days in [:since, :until). A session that crosses midnight counts on
#: both days: "distinct sessions" is per day, so no look-back is needed and any range of days
#: gives the same rows as the days one by one.
#:
#: One pass: the events are sorted once per tracking id (untracked events share one partition
#: and get session 0), then three hash aggregations replace count(DISTINCT ...) sorts. Rows
#: whose product or probe_name is missing come out too, and are counted as skipped (never
#: written) by the caller: no second scan for the skip counts.
PROBE_VIEWS_DAILY = f"""
WITH ev AS ({_EVENTS}),
marked AS (
    SELECT id, ts, product, probe_name, action_type, tracking_id,
           CASE WHEN ts - lag(ts) OVER (PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id)
                     <= INTERVAL '{SESSION_GAP_MINUTES} minutes'
                THEN 0 ELSE 1 END AS new_session
    FROM ev
),
numbered AS (
    SELECT ts, product, probe_name, action_type, tracking_id,
           CASE WHEN tracking_id IS NULL THEN 0
                ELSE sum(new_session) OVER (PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id ROWS UNBOUNDED PRECEDING)
           END AS session_no
    FROM marked
),
per_session AS (
    SELECT date_trunc('day', ts) AS period_start, product, probe_name, action_type, tracking_id, session_no,
           count(*) AS events
    FROM numbered
    GROUP BY 1, 2, 3, 4, 5, 6
),
per_tracking AS (
    SELECT period_start, product, probe_name, action_type, tracking_id,
           sum(events) AS events, count(*) AS sessions
    FROM per_session
    GROUP BY 1, 2, 3, 4, 5
)
SELECT period_start, product, probe_name, action_type,
       CAST(sum(events) AS BIGINT) AS events,
       CAST(sum(CASE WHEN tracking_id IS NULL THEN 0 ELSE sessions END) AS BIGINT) AS sessions,
       CAST(count(tracking_id) AS BIGINT) AS tracking_ids
FROM per_tracking
GROUP BY 1, 2, 3, 4
"""

#: Sessions that START in [:start, :end). Read from :since = start - 30 min (so that a first
#: event continuing yesterday's session is recognised and left to yesterday) to :until =
#: end + 1 day (so that a session running past midnight keeps its tail).
USAGE_SESSIONS = f"""
WITH ev AS ({_EVENTS}),
{_SESSIONIZED},
ranked AS (
    SELECT tracking_id, session_no, ts, probe_name,
           first_value(probe_name) OVER (
               PARTITION BY tracking_id, session_no
               ORDER BY CASE WHEN probe_name IS NULL THEN 1 ELSE 0 END, ts, id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS entry_probe,
           first_value(probe_name) OVER (
               PARTITION BY tracking_id, session_no
               ORDER BY CASE WHEN probe_name IS NULL THEN 1 ELSE 0 END, ts DESC, id DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS exit_probe
    FROM numbered
)
SELECT date_trunc('day', min(ts)) AS period_start, tracking_id,
       min(ts) AS session_start, max(ts) AS session_end,
       CAST(extract(epoch FROM max(ts) - min(ts)) AS DOUBLE PRECISION) AS duration_s,
       count(*) AS events, count(DISTINCT probe_name) AS distinct_probes,
       min(entry_probe) AS entry_probe, min(exit_probe) AS exit_probe
FROM ranked
GROUP BY tracking_id, session_no
HAVING min(ts) >= :start AND min(ts) < :end
"""

#: Per day of [:since, :until): all events, and those without a tracking id.
UNTRACKED_DAILY = f"""
WITH ev AS ({_EVENTS})
SELECT date_trunc('day', ts) AS period_start, count(*) AS events,
       sum(CASE WHEN tracking_id IS NULL THEN 1 ELSE 0 END) AS untracked_events
FROM ev GROUP BY 1
"""
