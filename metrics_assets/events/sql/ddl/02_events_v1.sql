-- Athena table over the v1 (envelope) events; see 01_events_v0.sql for the conventions.
-- The JSON keys are camelCase: the SerDe matches them case-insensitively.
CREATE EXTERNAL TABLE IF NOT EXISTS events_v1 (
  envelope struct<resourceId:string,customerId:bigint,operationId:string,service:struct<name:string>,createdAt:string,arrivedAt:string,tags:array<string>>,
  eventType string,
  data string
)
PARTITIONED BY (year string, month string, day string, hour string, minute string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{lake_location}/v1/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.year.type' = 'integer', 'projection.year.range' = '2020,2099', 'projection.year.digits' = '4',
  'projection.month.type' = 'integer', 'projection.month.range' = '1,12', 'projection.month.digits' = '2',
  'projection.day.type' = 'integer', 'projection.day.range' = '1,31', 'projection.day.digits' = '2',
  'projection.hour.type' = 'integer', 'projection.hour.range' = '0,23', 'projection.hour.digits' = '2',
  'projection.minute.type' = 'integer', 'projection.minute.range' = '0,59', 'projection.minute.digits' = '2',
  'storage.location.template' = '{lake_location}/v1/year=${year}/month=${month}/day=${day}/hour=${hour}/minute=${minute}/'
)
