-- analysis_tile_requests: tile requests with an analysisId, per analysis and requester, per
-- day created. Dimension: analysis_id -> "analysisId".
SELECT
    created_ms - created_ms % 86400000 AS period_start_ms,
    coalesce(json_extract_scalar(data, '$.analysisid'), json_extract_scalar(data, '$.analysisId')) AS analysis_id,
    json_extract_scalar(data, '$.requester') AS requester,
    count(*) AS metric_value
FROM events_normalized
WHERE
    arrival_minute BETWEEN :folder_lo AND :folder_hi
    AND created_ms >= :start_ms AND created_ms < :end_ms
    AND folder_lag_ms BETWEEN :early_ms AND :late_ms
    AND service = 'tiles'
    AND event_type = 'tile_request'
    AND coalesce(json_extract_scalar(data, '$.analysisid'), json_extract_scalar(data, '$.analysisId')) IS NOT NULL
GROUP BY 1, 2, 3
