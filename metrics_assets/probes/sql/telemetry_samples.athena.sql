-- Athena/Glue DDL for the telemetry samples the probe builds read (run once per lake).
CREATE EXTERNAL TABLE IF NOT EXISTS telemetry_samples (
  product string,
  channel string,
  os string,
  version string,
  probe_name string,
  client_id string,
  value double
)
PARTITIONED BY (day string)
STORED AS PARQUET
LOCATION 's3://lake/telemetry/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.day.type' = 'date',
  'projection.day.format' = 'yyyy-MM-dd',
  'projection.day.range' = '2020-01-01,NOW',
  'storage.location.template' = 's3://lake/telemetry/day=${day}/'
);
