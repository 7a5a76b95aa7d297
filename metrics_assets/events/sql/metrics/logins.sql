-- logins: successful Auth0 logins (log code 's') per user, per day created.
-- Parameters: the day's bounds (:start_ms, :end_ms) and its folders (see lake.slice_params).
SELECT
    created_ms - created_ms % 86400000 AS period_start_ms,
    json_extract_scalar(data, '$.user_id') AS requester,
    count(*) AS metric_value
FROM events_normalized
WHERE
    arrival_minute BETWEEN :folder_lo AND :folder_hi
    AND created_ms >= :start_ms AND created_ms < :end_ms
    AND folder_lag_ms BETWEEN :early_ms AND :late_ms
    AND service = 'auth0'
    AND event_type = 'login'
    AND json_extract_scalar(data, '$.type') = 's'
GROUP BY 1, 2
