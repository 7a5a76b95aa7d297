-- events_v0 and events_v1 in one shape. In Athena this is the view events_normalized
-- (created by the events DDL job); locally the same SQL, translated, is a DuckDB view.
-- created_ms / arrived_ms are epoch milliseconds (UTC), whatever the version wrote.
-- malformed: the line was not JSON (the SerDe gave a row of NULLs), or none of the event's
-- own fields is there, in both versions alike. Only the fields the rollups read anyway are
-- tested, so that the check costs no extra column reads (tags, operationId, and v1's data, are
-- never read by the rollups; testing the whole v1 envelope would read all of it).
-- folder_hour_ms: the hour of the file's folder (Secor's partition, by arrival time), parsed
-- from the one partition column; {hour_length} and {hour_format} come from EVENT_LAKE_LAYOUT.
-- folder_lag_ms: that hour minus the created hour, in ms (a multiple of 3600000): an event
-- counts for its created hour when it lies within the lateness bounds (see README, "Lateness").
-- Semantics of every expression: metrics_assets/events/parity.py.
SELECT
  schema_version,
  customer_id,
  resource_id,
  service,
  event_type,
  created_ms,
  arrived_ms,
  data,
  malformed,
  arrival_minute,
  folder_hour_ms,
  folder_hour_ms - (created_ms - created_ms % 3600000) AS folder_lag_ms
FROM (
  SELECT
    'v0' AS schema_version,
    customerid AS customer_id,
    nullif(trim(resourceid), '') AS resource_id,
    coalesce(nullif(servicename, ''), service) AS service,
    json_extract_scalar(data, '$.event') AS event_type,
    createdtimestamp AS created_ms,
    arrivaltimestamp AS arrived_ms,
    data,
    (
      customerid IS NULL AND resourceid IS NULL AND servicename IS NULL AND service IS NULL
      AND createdtimestamp IS NULL AND arrivaltimestamp IS NULL AND data IS NULL
    ) AS malformed,
    arrival_minute,
    cast(to_unixtime(date_parse(substr(arrival_minute, 1, {hour_length}), '{hour_format}')) AS bigint) * 1000 AS folder_hour_ms
  FROM events_v0
  UNION ALL
  SELECT
    'v1' AS schema_version,
    envelope.customerId AS customer_id,
    nullif(trim(envelope.resourceId), '') AS resource_id,
    envelope.service.name AS service,
    eventType AS event_type,
    cast(to_unixtime(try(from_iso8601_timestamp(envelope.createdAt))) * 1000 AS bigint) AS created_ms,
    cast(to_unixtime(try(from_iso8601_timestamp(envelope.arrivedAt))) * 1000 AS bigint) AS arrived_ms,
    data,
    (
      envelope.customerId IS NULL AND envelope.resourceId IS NULL AND envelope.service.name IS NULL
      AND envelope.createdAt IS NULL AND envelope.arrivedAt IS NULL AND eventType IS NULL
    ) AS malformed,
    arrival_minute,
    cast(to_unixtime(date_parse(substr(arrival_minute, 1, {hour_length}), '{hour_format}')) AS bigint) * 1000 AS folder_hour_ms
  FROM events_v1
) AS lines
