-- Hourly rollups by created time, for the slice [:start_ms, :end_ms), reading the slice's own
-- arrival folders and the lateness window after it (:folder_lo .. :folder_hi).
-- Lines that cannot be dated (malformed JSON, no created time) come out as rows with a
-- skip_reason and no key; they are counted in the slice's own folders only (.. :own_folder_hi).
WITH scanned AS (
  SELECT
    *,
    CASE
      WHEN malformed THEN 'malformed_json'
      WHEN created_ms IS NULL THEN 'missing_created_time'
    END AS skip_reason,
    concat(year, month, day, hour) AS folder
  FROM events_normalized
  WHERE year BETWEEN :year_lo AND :year_hi
    AND month BETWEEN :month_lo AND :month_hi
    AND day BETWEEN :day_lo AND :day_hi
    AND hour BETWEEN :hour_lo AND :hour_hi
    AND concat(year, month, day, hour) BETWEEN :folder_lo AND :folder_hi
)
SELECT
  skip_reason,
  CASE WHEN skip_reason IS NULL THEN created_ms - created_ms % 3600000 END AS period_start_ms,
  CASE WHEN skip_reason IS NULL THEN COALESCE(customer_id, 0) END AS customer_id,
  CASE WHEN skip_reason IS NULL THEN COALESCE(service, '') END AS service,
  CASE WHEN skip_reason IS NULL THEN COALESCE(event_type, '') END AS event_type,
  schema_version,
  count(*) AS event_count,
  count(DISTINCT resource_id) AS distinct_resources,
  min(arrived_ms - created_ms) AS min_lag_ms,
  max(arrived_ms - created_ms) AS max_lag_ms
FROM scanned
WHERE (skip_reason IS NULL AND created_ms >= :start_ms AND created_ms < :end_ms)
   OR (skip_reason IS NOT NULL AND folder <= :own_folder_hi)
GROUP BY 1, 2, 3, 4, 5, 6
