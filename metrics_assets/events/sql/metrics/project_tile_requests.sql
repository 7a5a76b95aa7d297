-- project_tile_requests: tile requests without an analysisId, per project, layer and requester,
-- per day created.
-- Keys inside data are read in lower case (Hive's OpenX SerDe lower-cases them with
-- case.insensitive) and as the producers write them (Trino's reader keeps the case): see parity.py.
-- Dimensions: project_id -> "projectId", layer_id -> "layerId".
SELECT
    created_ms - created_ms % 86400000 AS period_start_ms,
    coalesce(json_extract_scalar(data, '$.projectid'), json_extract_scalar(data, '$.projectId')) AS project_id,
    coalesce(json_extract_scalar(data, '$.layerid'), json_extract_scalar(data, '$.layerId')) AS layer_id,
    json_extract_scalar(data, '$.requester') AS requester,
    count(*) AS metric_value
FROM events_normalized
WHERE
    arrival_minute BETWEEN :folder_lo AND :folder_hi
    AND created_ms >= :start_ms AND created_ms < :end_ms
    AND folder_lag_ms BETWEEN :early_ms AND :late_ms
    AND service = 'tiles'
    AND event_type = 'tile_request'
    AND coalesce(json_extract_scalar(data, '$.analysisid'), json_extract_scalar(data, '$.analysisId')) IS NULL
GROUP BY 1, 2, 3, 4
