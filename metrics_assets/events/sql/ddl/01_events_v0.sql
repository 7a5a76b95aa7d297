-- Athena table over the v0 (flat) events, topic folder v0/. Placeholders ({...}) are filled by
-- metrics_assets/events/ddl.py from EVENT_LAKE_BUCKET, EVENT_LAKE_PREFIX and EVENT_LAKE_LAYOUT.
-- One partition column, arrival_minute, projected as a date: a time range is one interval of it,
-- and Athena projects exactly the folders of that interval (see layout.py). No crawler, no MSCK.
-- SerDe properties, all explicit (Athena's OpenX JSON SerDe reference):
--   ignore.malformed.json: a line that is not JSON gives a row of NULLs (counted by the queries)
--   case.insensitive: keys match columns whatever their case (customerId -> customerid)
--   dots.in.keys: off; no key of ours has a dot
--   use.null.for.invalid.data: a value that does not fit its column's type is NULL, not a failure
-- Re-applying replaces the table (DROP, then CREATE): a changed bucket, prefix or layout takes effect.
CREATE EXTERNAL TABLE events_v0 (
  resourceid string,
  customerid bigint,
  operationid string,
  servicename string,
  service string,
  createdtimestamp bigint,
  arrivaltimestamp bigint,
  tags array<string>,
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
LOCATION '{lake_location}/v0/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.arrival_minute.type' = 'date',
  'projection.arrival_minute.format' = {java_format},
  'projection.arrival_minute.range' = '{range_start},NOW',
  'projection.arrival_minute.interval' = '1',
  'projection.arrival_minute.interval.unit' = '{interval_unit}',
  'storage.location.template' = '{lake_location}/v0/{head}${arrival_minute}/'
)
