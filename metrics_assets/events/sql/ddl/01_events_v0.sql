-- Athena table over the v0 (flat) events. The lake location placeholder is s3://<EVENT_LAKE_BUCKET>/<EVENT_LAKE_PREFIX>,
-- filled in by the events_athena_ddl job. Partition projection: no crawler, no MSCK REPAIR.
-- Malformed lines are kept as all-NULL rows (ignore.malformed.json) and counted by the queries.
CREATE EXTERNAL TABLE IF NOT EXISTS events_v0 (
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
PARTITIONED BY (year string, month string, day string, hour string, minute string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{lake_location}/v0/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.year.type' = 'integer', 'projection.year.range' = '2020,2099', 'projection.year.digits' = '4',
  'projection.month.type' = 'integer', 'projection.month.range' = '1,12', 'projection.month.digits' = '2',
  'projection.day.type' = 'integer', 'projection.day.range' = '1,31', 'projection.day.digits' = '2',
  'projection.hour.type' = 'integer', 'projection.hour.range' = '0,23', 'projection.hour.digits' = '2',
  'projection.minute.type' = 'integer', 'projection.minute.range' = '0,59', 'projection.minute.digits' = '2',
  'storage.location.template' = '{lake_location}/v0/year=${year}/month=${month}/day=${day}/hour=${hour}/minute=${minute}/'
)
