-- events_v0 and events_v1 in one shape. In Athena this is the view events_normalized
-- (created by the events DDL job); locally the same SQL, translated, is a DuckDB view.
-- created_ms / arrived_ms are epoch milliseconds (UTC), whatever the version wrote.
-- malformed: the line was not JSON (the reader gave a row of NULLs), or none of the event's
-- own fields is there. Only the fields the rollups read anyway are tested, so that the check
-- costs no extra column reads (tags, and v1's data, are never read by the rollups).
SELECT
  'v0' AS schema_version,
  customerid AS customer_id,
  NULLIF(TRIM(resourceid), '') AS resource_id,
  COALESCE(NULLIF(servicename, ''), service) AS service,
  json_extract_scalar(data, '$.event') AS event_type,
  createdtimestamp AS created_ms,
  arrivaltimestamp AS arrived_ms,
  data,
  (customerid IS NULL AND resourceid IS NULL AND servicename IS NULL AND service IS NULL
    AND createdtimestamp IS NULL AND arrivaltimestamp IS NULL AND data IS NULL) AS malformed,
  year, month, day, hour, minute
FROM events_v0
UNION ALL
SELECT
  'v1' AS schema_version,
  envelope.customerId AS customer_id,
  NULLIF(TRIM(envelope.resourceId), '') AS resource_id,
  envelope.service.name AS service,
  eventType AS event_type,
  CAST(to_unixtime(try(from_iso8601_timestamp(envelope.createdAt))) * 1000 AS BIGINT) AS created_ms,
  CAST(to_unixtime(try(from_iso8601_timestamp(envelope.arrivedAt))) * 1000 AS BIGINT) AS arrived_ms,
  data,
  (envelope IS NULL AND eventType IS NULL) AS malformed,
  year, month, day, hour, minute
FROM events_v1
