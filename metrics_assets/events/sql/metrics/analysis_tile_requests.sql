-- analysis_tile_requests: tile requests with an analysisId, per analysis and requester, per
-- day created. Dimension: analysis_id -> "analysisId".
SELECT
  created_ms - created_ms % 86400000 AS period_start_ms,
  json_extract_scalar(data, '$.analysisId') AS analysis_id,
  json_extract_scalar(data, '$.requester') AS requester,
  count(*) AS metric_value
FROM events_normalized
WHERE year BETWEEN :year_lo AND :year_hi
  AND month BETWEEN :month_lo AND :month_hi
  AND day BETWEEN :day_lo AND :day_hi
  AND hour BETWEEN :hour_lo AND :hour_hi
  AND concat(year, month, day, hour) BETWEEN :folder_lo AND :folder_hi
  AND created_ms >= :start_ms AND created_ms < :end_ms
  AND service = 'tiles'
  AND event_type = 'tile_request'
  AND json_extract_scalar(data, '$.analysisId') IS NOT NULL
GROUP BY 1, 2, 3
