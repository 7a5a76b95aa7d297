-- A direct count of the dated events created in [:start_ms, :end_ms): the asset check that
-- a day's hourly rollups add up compares against it. Same folder restriction as the rollups.
SELECT count(*) AS event_count
FROM events_normalized
WHERE year BETWEEN :year_lo AND :year_hi
  AND month BETWEEN :month_lo AND :month_hi
  AND day BETWEEN :day_lo AND :day_hi
  AND hour BETWEEN :hour_lo AND :hour_hi
  AND concat(year, month, day, hour) BETWEEN :folder_lo AND :folder_hi
  AND NOT malformed
  AND created_ms >= :start_ms AND created_ms < :end_ms
