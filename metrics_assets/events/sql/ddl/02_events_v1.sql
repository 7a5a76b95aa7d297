-- Athena table over the v1 (envelope) events, topic folder v1/; see 01_events_v0.sql for the conventions.
-- The JSON keys are camelCase: the SerDe matches them case-insensitively.
CREATE EXTERNAL TABLE events_v1 (
  envelope struct<resourceId:string,customerId:bigint,operationId:string,service:struct<name:string>,createdAt:string,arrivedAt:string,tags:array<string>>,
  eventType string,
  data string
)
PARTITIONED BY (arrival_minute string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES (
  'ignore.malformed.json' = 'true',
  'case.insensitive' = 'true',
  'dots.in.keys' = 'false',
  'use.null.for.invalid.data' = 'true'
)
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{lake_location}/v1/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.arrival_minute.type' = 'date',
  'projection.arrival_minute.format' = {java_format},
  'projection.arrival_minute.range' = '{range_start},NOW',
  'projection.arrival_minute.interval' = '1',
  'projection.arrival_minute.interval.unit' = '{interval_unit}',
  'storage.location.template' = '{lake_location}/v1/{head}${arrival_minute}/'
)
