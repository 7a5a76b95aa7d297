"""Set-based SQL over the GLAM usage log, run by DuckDB over the rows the GLAM database streams
out (``id, action_type, timestamp, product, tracking_id, probe_name, n``: ``product`` is
``context ->> 'product'``, extracted by the database; rows without a tracking id, which are
only ever counted, arrive pre-counted per hour, product, probe and action, ``n`` rows each;
see :mod:`metrics_assets.probes.source`).

Sessions: a tracking id's events ordered by (timestamp, id); a new session starts when the
gap to the previous event is longer than 30 minutes (exactly 30:00 stays in the session).
Events with an empty or missing tracking id are counted, never sessionized (GLAM writes
``tracking_id = ''`` on every row today: see the README's "Sessions, honestly").

No ``::`` casts and no ``:`` inside literals: ``:name`` is a parameter. ``COLLATE "C"`` on
the tracking-id partitions halves PostgreSQL's sort (byte order is all a partition needs);
the DuckDB path drops it (:data:`DUCKDB_DROPS`). :data:`PROBE_VIEWS_DAILY` is DuckDB SQL
(``epoch_us``, ``to_timestamp``, ``GROUP BY ALL``): it is only ever run there.
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

_DAY_US = 86_400_000_000

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
#:
#: Run by DuckDB only, and written for its speed: the (product, probe, action) triples and the
#: tracking ids are first numbered (``gk``, ``tid``: hash joins against their few distinct
#: values) and moments taken as epoch microseconds (``us``), so that the one sort the session
#: windows need, and every GROUP BY, is on integers instead of strings. Exact: the order is
#: (timestamp, id) as before, the gap test ``us - previous us <= 30 min in us`` is the interval
#: test, and a day number ``us // day in us`` is the UTC day (moments after 1970, and only
#: those of [:start, :end) are grouped).
PROBE_VIEWS_DAILY = f"""
WITH ev AS ({_EVENTS}),
groups AS (
    SELECT product, probe_name, action_type, CAST(row_number() OVER () AS INTEGER) AS gk
    FROM (SELECT DISTINCT product, probe_name, action_type FROM ev)
),
ids AS (
    SELECT tracking_id, CAST(row_number() OVER () AS INTEGER) AS tid
    FROM (SELECT DISTINCT tracking_id FROM ev WHERE tracking_id IS NOT NULL)
),
keyed AS (
    SELECT ev.id, epoch_us(ev.ts) AS us, ev.n, g.gk, ids.tid
    FROM ev
    JOIN groups g ON g.product = ev.product AND g.probe_name IS NOT DISTINCT FROM ev.probe_name
                 AND g.action_type IS NOT DISTINCT FROM ev.action_type
    LEFT JOIN ids ON ids.tracking_id = ev.tracking_id
),
marked AS (
    SELECT tid, id, us, gk,
           CASE WHEN us - lag(us) OVER (PARTITION BY tid ORDER BY us, id) <= {SESSION_GAP_MINUTES * 60 * 1_000_000} THEN 0 ELSE 1 END AS new_session
    FROM keyed WHERE tid IS NOT NULL
),
numbered AS (
    SELECT tid, gk, max(CASE WHEN new_session = 1 THEN us END) OVER (
               PARTITION BY tid ORDER BY us, id ROWS UNBOUNDED PRECEDING) AS session_us
    FROM marked
),
session_rows AS (
    SELECT day_no, gk, count(*) AS sessions
    FROM (SELECT DISTINCT session_us // {_DAY_US} AS day_no, gk, tid, session_us FROM numbered
          WHERE session_us >= epoch_us(:start) AND session_us < epoch_us(:end))
    GROUP BY ALL
),
per_tracking AS (
    SELECT us // {_DAY_US} AS day_no, gk, tid, sum(n) AS events
    FROM keyed WHERE us >= epoch_us(:start) AND us < epoch_us(:end)
    GROUP BY ALL
),
event_rows AS (
    SELECT day_no, gk, sum(events) AS events, count(tid) AS tracking_ids,
           sum(CASE WHEN tid IS NULL THEN 0 ELSE events END) AS tracked_events
    FROM per_tracking GROUP BY ALL
)
SELECT to_timestamp(coalesce(e.day_no, s.day_no) * 86400) AS period_start,
       g.product, g.probe_name, g.action_type,
       CAST(coalesce(e.events, 0) AS BIGINT) AS events,
       CAST(coalesce(s.sessions, 0) AS BIGINT) AS sessions,
       CAST(coalesce(e.tracking_ids, 0) AS BIGINT) AS tracking_ids,
       CAST(coalesce(e.tracked_events, 0) AS BIGINT) AS tracked_events
FROM event_rows e
FULL OUTER JOIN session_rows s ON s.day_no = e.day_no AND s.gk = e.gk
JOIN groups g ON g.gk = coalesce(e.gk, s.gk)
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
