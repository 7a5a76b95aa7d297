"""Set-based SQL over the GLAM usage log, in PostgreSQL SQL that DuckDB runs unchanged.

Sessions: a tracking id's events ordered by (timestamp, id); a new session starts when the
gap to the previous event is longer than 30 minutes (exactly 30:00 stays in the session).
Events with an empty or missing tracking id are counted, never sessionized.

No ``::`` casts and no ``:`` inside literals: ``:name`` is a parameter on both engines.
"""

from __future__ import annotations

from metrics_assets.probes.config import SESSION_GAP_MINUTES

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
               CASE WHEN ts - lag(ts) OVER (PARTITION BY tracking_id ORDER BY ts, id)
                         <= INTERVAL '{SESSION_GAP_MINUTES} minutes'
                    THEN 0 ELSE 1 END AS new_session
        FROM ev WHERE tracking_id IS NOT NULL
    ),
    numbered AS (
        SELECT *, sum(new_session) OVER (
                   PARTITION BY tracking_id ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS session_no
        FROM tracked
    )
"""

#: probe_views_daily for days in [:since, :until). A session that crosses midnight counts on
#: both days: "distinct sessions" is per day, so no look-back is needed and any range of days
#: gives the same rows as the days one by one.
PROBE_VIEWS_DAILY = f"""
WITH ev AS ({_EVENTS}),
{_SESSIONIZED},
everything AS (
    SELECT ts, product, probe_name, action_type, tracking_id, session_no FROM numbered
    UNION ALL
    SELECT ts, product, probe_name, action_type, NULL, NULL FROM ev WHERE tracking_id IS NULL
)
SELECT date_trunc('day', ts) AS period_start, product, probe_name, action_type,
       count(*) AS events,
       count(DISTINCT tracking_id || '#' || CAST(session_no AS VARCHAR)) AS sessions,
       count(DISTINCT tracking_id) AS tracking_ids
FROM everything
WHERE product IS NOT NULL AND product <> '' AND probe_name IS NOT NULL AND action_type IS NOT NULL
GROUP BY 1, 2, 3, 4
"""

#: Rows that cannot go into probe_views_daily, by reason, per day.
USAGE_SKIPS = f"""
WITH ev AS ({_EVENTS})
SELECT sum(CASE WHEN product IS NULL OR product = '' THEN 1 ELSE 0 END) AS missing_product,
       sum(CASE WHEN product IS NOT NULL AND product <> '' AND probe_name IS NULL THEN 1 ELSE 0 END) AS missing_probe_name,
       sum(CASE WHEN action_type IS NULL THEN 1 ELSE 0 END) AS missing_action_type,
       count(*) AS total_events
FROM ev
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
