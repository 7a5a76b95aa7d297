-- Hourly rollups by created time, for the slice [:start_ms, :end_ms) (whole hours).
-- It reads the folders [:folder_lo, :folder_hi] (one interval of the partition column): from
-- EVENT_EARLY_HOURS before the slice to EVENT_LATENESS_HOURS after its last hour.
-- An event counts for its created hour H when its folder's hour lies in [H + :early_ms,
-- H + :late_ms] (folder_lag_ms): the same rule for every H whatever else the run reads, so a
-- row depends on the lake alone, not on how hours are grouped into runs.
-- Every other line comes out with a status and is counted by the slice that owns its folder
-- (folder hour in [:start_ms, :end_ms)), so that each line is counted exactly once:
--   1 malformed JSON, 2 no created time, 3 created time not in ms (before 1973-01-01, the
--   hour 94694400000: e.g. written in seconds),
--   4 later than the lateness bound, 5 earlier than the early bound.
-- Its period_start_ms is then the folder's hour; the caller sums those by status.
-- Shape, for speed: the per-line work is only what the view computes and one aggregation.
-- Every scanned line is first aggregated by its raw keys (malformed, created hour, folder hour,
-- customer, service, event type, version, resource); statuses, NULL defaults and the slice's
-- bounds are then computed once per group, not once per line. The slice filter carries
-- `OR event_count < 0` (never true): a predicate on an aggregate cannot be pushed below the
-- aggregation, so the engine does not evaluate it again on every line. The last level counts
-- distinct resources without COUNT(DISTINCT).
WITH per_folder AS (
    SELECT
        malformed,
        created_ms - created_ms % 3600000 AS created_hour_ms,
        folder_hour_ms,
        customer_id,
        service,
        event_type,
        schema_version,
        resource_id,
        count(*) AS event_count,
        min(arrived_ms - created_ms) AS min_lag_ms,
        max(arrived_ms - created_ms) AS max_lag_ms
    FROM events_normalized
    WHERE arrival_minute BETWEEN :folder_lo AND :folder_hi
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),

with_status AS (
    SELECT
        CASE
            WHEN malformed THEN 1
            WHEN created_hour_ms IS NULL THEN 2
            WHEN created_hour_ms < 94694400000 THEN 3
            WHEN folder_hour_ms - created_hour_ms > :late_ms THEN 4
            WHEN folder_hour_ms - created_hour_ms < :early_ms THEN 5
            ELSE 0
        END AS status,
        created_hour_ms,
        folder_hour_ms,
        customer_id,
        service,
        event_type,
        schema_version,
        resource_id,
        event_count,
        min_lag_ms,
        max_lag_ms
    FROM per_folder
),

per_resource AS (
    SELECT
        status,
        CASE WHEN status = 0 THEN created_hour_ms ELSE folder_hour_ms END AS period_start_ms,
        coalesce(customer_id, 0) AS customer_id,
        coalesce(service, '') AS service,
        coalesce(event_type, '') AS event_type,
        schema_version,
        resource_id,
        sum(event_count) AS event_count,
        min(min_lag_ms) AS min_lag_ms,
        max(max_lag_ms) AS max_lag_ms
    FROM with_status
    WHERE
        (status = 0 AND created_hour_ms >= :start_ms AND created_hour_ms < :end_ms)
        OR (status <> 0 AND folder_hour_ms >= :start_ms AND folder_hour_ms < :end_ms)
        OR event_count < 0
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)

SELECT
    status,
    period_start_ms,
    customer_id,
    service,
    event_type,
    schema_version,
    sum(event_count) AS event_count,
    count(resource_id) AS distinct_resources,
    min(min_lag_ms) AS min_lag_ms,
    max(max_lag_ms) AS max_lag_ms
FROM per_resource
GROUP BY 1, 2, 3, 4, 5, 6
