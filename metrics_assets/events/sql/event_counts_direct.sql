-- A direct count of the events created in [:start_ms, :end_ms) that count for their created
-- hour (folder_lag_ms within the bounds, as in event_rollups_hourly.sql): the day check
-- compares a day's hourly rollups against it, like with like.
SELECT count(*) AS event_count
FROM events_normalized
WHERE
    arrival_minute BETWEEN :folder_lo AND :folder_hi
    AND NOT malformed
    AND created_ms >= :start_ms AND created_ms < :end_ms
    AND created_ms >= 94694400000
    AND folder_lag_ms BETWEEN :early_ms AND :late_ms
