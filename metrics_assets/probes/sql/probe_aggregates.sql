-- One probe's distribution per (channel, os, version), from the telemetry samples.
-- Athena (Trino) SQL; :product, :probe_name, :first_day, :last_day (YYYY-MM-DD), :buckets.
-- Per client: the mean of its samples. Per group: client count, the exact percentiles of the
-- client means (linear interpolation between closest ranks, as numpy's default and
-- PostgreSQL's percentile_cont; Athena has no exact percentile aggregate), and an
-- equal-width histogram of :buckets buckets between the smallest and largest client mean.
-- One row per (group, non-empty bucket); skipped samples are counted on every row.
-- Each (channel, version) also comes with os = '*', all systems together: GLAM's "any os",
-- which the app asks for by default.
WITH one_os AS (
    SELECT
        coalesce(channel, 'unknown') AS channel,
        coalesce(os, 'unknown') AS os,
        coalesce(version, 'unknown') AS version,
        client_id,
        value
    FROM telemetry_samples
    WHERE
        day BETWEEN :first_day AND :last_day
        AND product = :product AND probe_name = :probe_name
),

scoped AS (
    SELECT
        channel,
        os,
        version,
        client_id,
        value
    FROM one_os
    UNION ALL
    SELECT
        channel,
        '*' AS os,
        version,
        client_id,
        value
    FROM one_os
),

skips AS (
    SELECT
        sum(CASE WHEN client_id IS NULL OR client_id = '' THEN 1 ELSE 0 END) AS skipped_no_client,
        sum(CASE WHEN client_id IS NOT NULL AND client_id <> '' AND value IS NULL THEN 1 ELSE 0 END) AS skipped_no_value
    FROM one_os
),

per_client AS (
    SELECT
        channel,
        os,
        version,
        client_id,
        avg(value) AS client_mean,
        count(*) AS samples
    FROM scoped
    WHERE client_id IS NOT NULL AND client_id <> '' AND value IS NOT NULL
    GROUP BY channel, os, version, client_id
),

ranked AS (
    SELECT
        channel,
        os,
        version,
        client_mean,
        row_number() OVER (PARTITION BY channel, os, version ORDER BY client_mean, client_id) - 1 AS idx,
        count(*) OVER (PARTITION BY channel, os, version) AS n,
        sum(samples) OVER (PARTITION BY channel, os, version) AS sample_count,
        min(client_mean) OVER (PARTITION BY channel, os, version) AS lo,
        max(client_mean) OVER (PARTITION BY channel, os, version) AS hi
    FROM per_client
),

closest AS (
    SELECT
        channel,
        os,
        version,
        max(n) AS client_count,
        max(sample_count) AS sample_count,
        min(lo) AS lo,
        max(hi) AS hi,
        max(CASE WHEN idx = floor((n - 1) * 0.05) THEN client_mean END) AS p5_a,
        max(CASE WHEN idx = ceil((n - 1) * 0.05) THEN client_mean END) AS p5_b,
        max(CASE WHEN idx = floor((n - 1) * 0.25) THEN client_mean END) AS p25_a,
        max(CASE WHEN idx = ceil((n - 1) * 0.25) THEN client_mean END) AS p25_b,
        max(CASE WHEN idx = floor((n - 1) * 0.5) THEN client_mean END) AS p50_a,
        max(CASE WHEN idx = ceil((n - 1) * 0.5) THEN client_mean END) AS p50_b,
        max(CASE WHEN idx = floor((n - 1) * 0.75) THEN client_mean END) AS p75_a,
        max(CASE WHEN idx = ceil((n - 1) * 0.75) THEN client_mean END) AS p75_b,
        max(CASE WHEN idx = floor((n - 1) * 0.95) THEN client_mean END) AS p95_a,
        max(CASE WHEN idx = ceil((n - 1) * 0.95) THEN client_mean END) AS p95_b
    FROM ranked
    GROUP BY channel, os, version
),

stats AS (
    SELECT
        channel,
        os,
        version,
        client_count,
        sample_count,
        lo,
        hi,
        p5_a + ((client_count - 1) * 0.05 - floor((client_count - 1) * 0.05)) * (p5_b - p5_a) AS p5,
        p25_a + ((client_count - 1) * 0.25 - floor((client_count - 1) * 0.25)) * (p25_b - p25_a) AS p25,
        p50_a + ((client_count - 1) * 0.5 - floor((client_count - 1) * 0.5)) * (p50_b - p50_a) AS p50,
        p75_a + ((client_count - 1) * 0.75 - floor((client_count - 1) * 0.75)) * (p75_b - p75_a) AS p75,
        p95_a + ((client_count - 1) * 0.95 - floor((client_count - 1) * 0.95)) * (p95_b - p95_a) AS p95
    FROM closest
),

bucketed AS (
    SELECT
        channel,
        os,
        version,
        CASE
            WHEN hi = lo THEN 0
            ELSE least(cast(floor((client_mean - lo) / (hi - lo) * :buckets) AS integer), :buckets - 1)
        END AS bucket,
        count(*) AS clients
    FROM ranked
    -- (positional: Trino cannot GROUP BY the select alias `bucket`)
    GROUP BY 1, 2, 3, 4  -- noqa: AM06
)

SELECT
    s.channel,
    s.os,
    s.version,
    s.client_count,
    s.sample_count,
    s.p5,
    s.p25,
    s.p50,
    s.p75,
    s.p95,
    b.bucket,
    s.lo + b.bucket * (s.hi - s.lo) / :buckets AS bucket_lower,
    CASE WHEN s.hi = s.lo THEN s.hi ELSE s.lo + (b.bucket + 1) * (s.hi - s.lo) / :buckets END AS bucket_upper,
    b.clients,
    k.skipped_no_client,
    k.skipped_no_value
FROM stats AS s
INNER JOIN bucketed AS b ON s.channel = b.channel AND s.os = b.os AND s.version = b.version
CROSS JOIN skips AS k
ORDER BY s.channel, s.os, s.version, b.bucket
