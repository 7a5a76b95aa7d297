-- Hourly rollups by created time, for the slice [:start_ms, :end_ms) (whole hours), reading
-- the slice's own arrival folders and the lateness window after it (:folder_lo .. :folder_hi).
-- Lines that cannot be dated come out as rows with a skip_code (1: malformed JSON, 2: no
-- created time; 0 for dated events); they are counted in the slice's own folders only
-- (.. :own_folder_hi), and the caller sums their counts by reason (their other columns mean
-- nothing).
-- Shape, for speed: no row-level filter on the created time (the engine would re-evaluate the
-- timestamp parse in the filter); every scanned row is aggregated per hour, and the hours
-- outside the slice are dropped after the first, per-resource, aggregation. The second level
-- counts distinct resources without COUNT(DISTINCT).
WITH per_resource AS (
  SELECT
    CASE WHEN malformed THEN 1 WHEN created_ms IS NULL THEN 2 ELSE 0 END AS skip_code,
    CASE WHEN malformed OR created_ms IS NULL THEN concat(year, month, day, hour) <= :own_folder_hi END AS in_own_folders,
    created_ms - created_ms % 3600000 AS period_start_ms,
    COALESCE(customer_id, 0) AS customer_id,
    COALESCE(service, '') AS service,
    COALESCE(event_type, '') AS event_type,
    schema_version,
    resource_id,
    count(*) AS event_count,
    min(arrived_ms - created_ms) AS min_lag_ms,
    max(arrived_ms - created_ms) AS max_lag_ms
  FROM events_normalized
  WHERE year BETWEEN :year_lo AND :year_hi
    AND month BETWEEN :month_lo AND :month_hi
    AND day BETWEEN :day_lo AND :day_hi
    AND hour BETWEEN :hour_lo AND :hour_hi
    AND concat(year, month, day, hour) BETWEEN :folder_lo AND :folder_hi
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
)
SELECT
  skip_code, period_start_ms, customer_id, service, event_type, schema_version,
  sum(event_count) AS event_count,
  count(resource_id) AS distinct_resources,
  min(min_lag_ms) AS min_lag_ms,
  max(max_lag_ms) AS max_lag_ms
FROM per_resource
WHERE (skip_code = 0 AND period_start_ms >= :start_ms AND period_start_ms < :end_ms)
   OR (skip_code <> 0 AND in_own_folders)
GROUP BY 1, 2, 3, 4, 5, 6
