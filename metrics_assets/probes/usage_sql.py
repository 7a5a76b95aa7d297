"""Set-based SQL over the GLAM usage log, run by DuckDB over the rows the GLAM database streams
out (``id, action_type, timestamp, product, tracking_id, probe_name, n``: ``product`` is
``context ->> 'product'``, extracted by the database; rows without a tracking id, which are
only ever counted, arrive pre-counted per hour, product, probe and action, ``n`` rows each;
see :mod:`metrics_assets.probes.source`).

Sessions: a tracking id's events ordered by (timestamp, id); a new session starts when the
gap to the previous event is longer than 30 minutes (exactly 30:00 stays in the session).
Events with an empty or missing tracking id are counted, never sessionized (GLAM writes
``tracking_id = ''`` on every row today: see the README's "Sessions, honestly").

No ``::`` casts and no ``:`` inside literals: ``:name`` is a parameter on both engines.
``COLLATE "C"`` on the tracking-id partitions halves PostgreSQL's sort (byte order is all a
partition needs); the DuckDB path drops it (:data:`DUCKDB_DROPS`).
"""

from __future__ import annotations

from metrics_assets.probes.config import SESSION_GAP_MINUTES
from metrics_assets.probes.glam_schema import DEFAULT_PRODUCT

DUCKDB_DROPS = ' COLLATE "C"'

#: A query without ``product`` is GLAM's default product (views.py:
#: ``body["query"].get("product", FIREFOX_LEGACY)``), so its row counts as ``firefox``.
_EVENTS = f"""
    SELECT id, action_type, "timestamp" AS ts, n,
           coalesce(NULLIF(product, ''), '{DEFAULT_PRODUCT}') AS product,
           NULLIF(probe_name, '') AS probe_name,
           NULLIF(tracking_id, '') AS tracking_id
    FROM glam_usage_instrumentation
"""

#: Per tracked event: its session number and its session's start (one window pass, shared).
_SESSIONIZED = f"""
    marked AS (
        SELECT *,
               CASE WHEN ts - lag(ts) OVER (PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id)
                         <= INTERVAL '{SESSION_GAP_MINUTES} minutes'
                    THEN 0 ELSE 1 END AS new_session
        FROM ev WHERE tracking_id IS NOT NULL
    ),
    numbered AS (
        SELECT *,
               sum(new_session) OVER (
                   PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS session_no,
               max(CASE WHEN new_session = 1 THEN ts END) OVER (
                   PARTITION BY tracking_id COLLATE "C" ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS session_start
        FROM marked
    )
"""

#: probe_views_daily for the days of [:start, :end). The rows read are [:start - 30 min, :end)
#: plus the tails of the sessions still open at :end (see GlamDatabase.usage_query).
#:
#: * ``events``, ``tracking_ids``: the events of the day (by their own timestamp), and the
#:   distinct tracking ids among them.
#: * ``sessions``: the sessions that START on the day and hold at least one event of the row's
#:   (product, probe, action), wherever in the session that event falls. A session is thus
#:   counted on one day only, so a sum over any window of days counts each session once, even
#:   one that crosses midnight. (A row may then have sessions and no events of its own day:
#:   a probe first viewed after midnight in a session begun the day before.)
#: * ``tracked_events``: events with a tracking id (for the tracked share; not written).
PROBE_VIEWS_DAILY = f"""
WITH ev AS ({_EVENTS}),
{_SESSIONIZED},
per_session AS (
    SELECT date_trunc('day', session_start) AS period_start, product, probe_name, action_type,
           tracking_id, session_start
    FROM numbered
    WHERE session_start >= :start AND session_start < :end
    GROUP BY 1, 2, 3, 4, 5, 6
),
session_rows AS (
    SELECT period_start, product, probe_name, action_type, count(*) AS sessions
    FROM per_session GROUP BY 1, 2, 3, 4
),
per_tracking AS (
    SELECT date_trunc('day', ts) AS period_start, product, probe_name, action_type, tracking_id,
           sum(n) AS events
    FROM ev WHERE ts >= :start AND ts < :end
    GROUP BY 1, 2, 3, 4, 5
),
event_rows AS (
    SELECT period_start, product, probe_name, action_type,
           sum(events) AS events, count(tracking_id) AS tracking_ids,
           sum(CASE WHEN tracking_id IS NULL THEN 0 ELSE events END) AS tracked_events
    FROM per_tracking GROUP BY 1, 2, 3, 4
)
SELECT coalesce(e.period_start, s.period_start) AS period_start,
       coalesce(e.product, s.product) AS product,
       coalesce(e.probe_name, s.probe_name) AS probe_name,
       coalesce(e.action_type, s.action_type) AS action_type,
       CAST(coalesce(e.events, 0) AS BIGINT) AS events,
       CAST(coalesce(s.sessions, 0) AS BIGINT) AS sessions,
       CAST(coalesce(e.tracking_ids, 0) AS BIGINT) AS tracking_ids,
       CAST(coalesce(e.tracked_events, 0) AS BIGINT) AS tracked_events
FROM event_rows e
FULL OUTER JOIN session_rows s
  ON s.period_start = e.period_start AND s.product = e.product
 AND s.probe_name IS NOT DISTINCT FROM e.probe_name AND s.action_type IS NOT DISTINCT FROM e.action_type
"""

#: Sessions that START in [:start, :end), read over the same rows as PROBE_VIEWS_DAILY.
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
    WHERE session_start >= :start AND session_start < :end
)
SELECT date_trunc('day', min(ts)) AS period_start, tracking_id,
       min(ts) AS session_start, max(ts) AS session_end,
       CAST(extract(epoch FROM max(ts) - min(ts)) AS DOUBLE PRECISION) AS duration_s,
       count(*) AS events, count(DISTINCT probe_name) AS distinct_probes,
       min(entry_probe) AS entry_probe, min(exit_probe) AS exit_probe
FROM ranked
GROUP BY tracking_id, session_no
"""

#: Per day of [:start, :end): all events, and those without a tracking id.
UNTRACKED_DAILY = f"""
WITH ev AS ({_EVENTS})
SELECT date_trunc('day', ts) AS period_start, CAST(sum(n) AS BIGINT) AS events,
       CAST(sum(CASE WHEN tracking_id IS NULL THEN n ELSE 0 END) AS BIGINT) AS untracked_events
FROM ev WHERE ts >= :start AND ts < :end GROUP BY 1
"""
