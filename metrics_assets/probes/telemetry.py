"""Telemetry samples in the lake, and how a probe's distribution is computed from them.

Layout: ``<bucket lake>/telemetry/day=YYYY-MM-DD/*.parquet`` with columns ``product, channel,
os, version, probe_name, client_id, value`` (``value`` a double). In Athena it is the external
table ``telemetry_samples`` partitioned by ``day`` (a string; DDL in
``sql/telemetry_samples.athena.sql``). Locally DuckDB reads the same files.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.lake import LakeTable
from metrics_assets.resources.sqltext import literal

BUCKET = "lake"
PREFIX = "telemetry/"
SQL_DIR = Path(__file__).parent / "sql"
COLUMNS = {
    "product": pa.string(),
    "channel": pa.string(),
    "os": pa.string(),
    "version": pa.string(),
    "probe_name": pa.string(),
    "client_id": pa.string(),
    "value": pa.float64(),
}
_EMPTY = (
    "SELECT CAST(NULL AS VARCHAR) AS product, CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS VARCHAR) AS os, "
    "CAST(NULL AS VARCHAR) AS version, CAST(NULL AS VARCHAR) AS probe_name, CAST(NULL AS VARCHAR) AS client_id, "
    "CAST(NULL AS DOUBLE) AS value, CAST(NULL AS VARCHAR) AS day WHERE false"
)


def _is_parquet(path: Path) -> bool:
    """A file that cannot be Parquet (no PAR1 footer: a partial upload, a stray file) is left
    out of the local view, so that it cannot break the engine for every other lake table."""
    try:
        with path.open("rb") as handle:
            handle.seek(-4, 2)
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


def _duckdb_view(folder: Path) -> str:
    files = [p for p in sorted(folder.glob("day=*/*.parquet")) if _is_parquet(p)]
    if not files:
        return _EMPTY
    listing = ", ".join(literal(str(p)) for p in files)
    return (
        "SELECT product, channel, os, version, probe_name, client_id, CAST(value AS DOUBLE) AS value, day "
        f"FROM read_parquet([{listing}], hive_partitioning = true, hive_types = {{'day': VARCHAR}}, union_by_name = true)"
    )


TELEMETRY_SAMPLES = LakeTable(
    name="telemetry_samples",
    bucket=BUCKET,
    prefix=PREFIX,
    duckdb_view=_duckdb_view,
    description="Telemetry samples (product, channel, os, version, probe_name, client_id, value), by day.",
)
#: This domain's lake tables (the code location's catalog: metrics_assets/lake_catalog.py).
LAKE_TABLES = (TELEMETRY_SAMPLES,)


def sample_key(day: str, name: str = "samples.parquet") -> str:
    return f"{PREFIX}day={day}/{name}"


def aggregates_sql() -> str:
    return (SQL_DIR / "probe_aggregates.sql").read_text()


def histograms(result: pa.Table) -> pa.Table:
    """Fold the query's (group, bucket) rows into one row per group with the histogram as JSON
    text: ``[{"bucket": 0, "lower": .., "upper": .., "clients": ..}, ...]``. Runs in DuckDB
    over the (small) result."""
    duck = open_session()
    try:
        duck.register("result", result)
        return duck.sql(
            """SELECT channel, os, version,
                      CAST(any_value(client_count) AS BIGINT) AS client_count,
                      CAST(any_value(sample_count) AS BIGINT) AS sample_count,
                      CAST(any_value(p5) AS DOUBLE) AS p5, CAST(any_value(p25) AS DOUBLE) AS p25,
                      CAST(any_value(p50) AS DOUBLE) AS p50, CAST(any_value(p75) AS DOUBLE) AS p75,
                      CAST(any_value(p95) AS DOUBLE) AS p95,
                      CAST(to_json(list({'bucket': CAST(bucket AS INTEGER), 'lower': CAST(bucket_lower AS DOUBLE),
                                         'upper': CAST(bucket_upper AS DOUBLE), 'clients': CAST(clients AS BIGINT)}
                                        ORDER BY bucket)) AS VARCHAR) AS histogram
               FROM result GROUP BY channel, os, version ORDER BY channel, os, version"""
        ).to_arrow_table()
    finally:
        duck.close()


AGGREGATE_COLUMNS = [
    "product",
    "probe_name",
    "channel",
    "os",
    "version",
    "client_count",
    "p5",
    "p25",
    "p50",
    "p75",
    "p95",
    "histogram",
    "first_day",
    "last_day",
]


def aggregates_frames(
    raw: pa.Table, product: str, probe_name: str, first: date, last: date
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """From the aggregates query's rows: every group with its histogram, os '*' included (what
    GLAM's tables get); the probe_aggregates rows (per system only); and the samples skipped,
    by reason (the query counts them on every row)."""
    skipped = {"no_client_id": 0, "no_value": 0}
    if raw.num_rows:
        skipped = {
            "no_client_id": int(raw.column("skipped_no_client")[0].as_py() or 0),
            "no_value": int(raw.column("skipped_no_value")[0].as_py() or 0),
        }
        built = histograms(raw).to_pandas()
    else:
        built = pd.DataFrame(columns=[*AGGREGATE_COLUMNS, "sample_count"])
    built = built.assign(product=product, probe_name=probe_name, first_day=first, last_day=last)
    return built, built[built["os"] != "*"][AGGREGATE_COLUMNS], skipped
