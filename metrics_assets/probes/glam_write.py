"""A probe build, written where and how the GLAM app reads it.

GLAM serves ``POST /api/v1/data/`` from PostgreSQL out of the materialized views
``view_glam_desktop_<channel>_aggregation`` (product ``firefox``) and
``view_glam_<fenix|fog>_aggregation``, over the tables of the same name without ``view_``.
Its ETL (``import_desktop_aggs``, ``import_glean_aggs``) COPYs CSV rows into those tables,
then runs ``REFRESH MATERIALIZED VIEW CONCURRENTLY``. A build does the same, in one
transaction: it replaces that probe's rows of the dimensions a build writes (:func:`build_slice`;
the ETL's rows on other dimensions stay) in the product's tables, then refreshes the views it
touched, so the app never sees half a probe.

The format is GLAM's (glam/tests/test_api.py writes the same): ``histogram`` and
``non_norm_histogram`` are JSON objects from a bucket's lower bound (as a string) to, in
``histogram``, the bucket's share of clients (the values sum to 1) and, in
``non_norm_histogram``, its count of clients; ``percentiles`` (and ``non_norm_percentiles``)
are ``{"5": .., "25": .., "50": .., "75": .., "95": ..}``. What a build measures is the
distribution over clients of each client's mean value, so ``client_agg_type`` is ``avg``;
``total_users`` is the client count and ``total_sample`` the samples behind it.

Dimensions a build does not have are GLAM's "all" value ``*`` (``build_id``, ``process``,
``ping_type``). The app reads a fenix probe by version with ``build_id = '*'`` but a fog
probe by version with ``build_id <> '*'`` (``get_glean_aggregations_from_pg``), so fog rows
carry the build's last sample day as ``build_id`` (``YYYYMMDD``) and ``build_date``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from metrics_assets.probes.glam_schema import (
    CHANNELS,
    DEFAULT_PRODUCT,
    GLEAN_PRODUCTS,
    desktop_table,
    glean_table,
)

CLIENT_AGG_TYPE = "avg"
PERCENTILES = ("5", "25", "50", "75", "95")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def histograms(buckets: list[dict]) -> tuple[str, str]:
    """(normalised, non-normalised) histogram JSON from the build's buckets."""
    total = sum(b["clients"] for b in buckets) or 1
    norm = {_bound(b["lower"]): b["clients"] / total for b in buckets}
    counts = {_bound(b["lower"]): b["clients"] for b in buckets}
    return json.dumps(norm, separators=(", ", ": ")), json.dumps(counts, separators=(", ", ": "))


def percentiles(row) -> str:
    return json.dumps({p: float(row[f"p{p}"]) for p in PERCENTILES}, separators=(", ", ": "))


def tables_for(product: str) -> list[str]:
    if product == DEFAULT_PRODUCT:
        return [desktop_table(c) for c in CHANNELS]
    if product in GLEAN_PRODUCTS:
        return [glean_table(product)]
    return []


def glam_rows(
    product: str, probe_name: str, metric_type: str, frame: pd.DataFrame, last_day: date
) -> tuple[dict[str, pd.DataFrame], dict]:
    """The build's groups as GLAM rows, per table; and the groups left out, by reason."""
    skipped = {"channel_not_in_glam": 0, "version_not_a_number": 0}
    out: dict[str, list[dict]] = {t: [] for t in tables_for(product)}
    for row in frame.to_dict("records"):
        try:
            version = int(str(row["version"]).split(".")[0])
        except ValueError:
            skipped["version_not_a_number"] += 1
            continue
        buckets = json.loads(row["histogram"])
        norm, counts = histograms(buckets)
        pct = percentiles(row)
        common = {
            "version": version,
            "os": row["os"],
            "metric": probe_name,
            "metric_key": "",
            "client_agg_type": CLIENT_AGG_TYPE,
            "metric_type": metric_type,
            "total_users": int(row["client_count"]),
            "histogram": norm,
            "percentiles": pct,
            "total_sample": int(row["sample_count"]),
        }
        if product == DEFAULT_PRODUCT:
            if row["channel"] not in CHANNELS:
                skipped["channel_not_in_glam"] += 1
                continue
            out[desktop_table(row["channel"])].append(
                {
                    **common,
                    "build_id": "*",
                    "process": "*",
                    "non_norm_histogram": counts,
                    "non_norm_percentiles": pct,
                }
            )
        else:
            if row["channel"] not in CHANNELS:
                skipped["channel_not_in_glam"] += 1
                continue
            fog = product == "fog"
            out[glean_table(product)].append(
                {
                    **common,
                    "app_id": row["channel"],
                    "channel": row["channel"],
                    "ping_type": "*",
                    "build_id": f"{last_day:%Y%m%d}" if fog else "*",
                    "build_date": datetime.combine(last_day, time(0), tzinfo=UTC) if fog else None,
                }
            )
    return {t: pd.DataFrame(rows) for t, rows in out.items()}, skipped


#: GLAM's build ids are Firefox build ids, 14 digits (YYYYMMDDhhmmss); a build's fog rows
#: carry its last sample day, 8 digits (YYYYMMDD).
FOG_BUILD_ID_LENGTH = 8


def build_slice(product: str) -> str:
    """The rows a build owns in the product's tables (besides ``metric = :probe``): exactly the
    dimensions a build writes (``metric_key ''``, ``client_agg_type 'avg'``, GLAM's "all" ``*``
    for the dimensions it does not have), every version and os. Rows the ETL wrote on other
    dimensions (``summed_histogram`` and the other aggregation types, keys, processes, per-build
    rows) are outside it and left as the ETL left them."""
    common = "metric = :probe AND metric_key = '' AND client_agg_type = :agg"
    if product == DEFAULT_PRODUCT:
        return f"{common} AND process = '*' AND build_id = '*'"
    if product == "fog":
        return f"{common} AND ping_type = '*' AND length(build_id) = {FOG_BUILD_ID_LENGTH}"
    return f"{common} AND ping_type = '*' AND build_id = '*'"


def replace_probe(
    conn: Connection, load, product: str, probe_name: str, tables: dict[str, pd.DataFrame]
) -> dict[str, int]:
    """In the caller's transaction: delete the probe's rows of the build's slice
    (:func:`build_slice`) in each of the product's tables, load the new ones
    (``load(conn, table, frame)``: the warehouse's COPY), and refresh the app's materialized
    views. Returns rows written per table.

    GLAM's ETL (``import_desktop_aggs``, ``import_glean_aggs``) never deletes: it upserts each
    row on the table's unique dimensions (``ON CONFLICT ... DO UPDATE``) and refreshes the
    views. A build is consistent with it: on the dimensions both write, the last writer wins
    (the ETL's next import upserts over a build's row, as a build replaces the ETL's); the
    ETL's rows on other dimensions are never touched; and within its own slice a build also
    removes what its previous build wrote and this one no longer has (an os or a version
    without samples now), which an upsert alone would leave stale."""
    written = {}
    for table in tables_for(product):
        conn.execute(
            sa.text(f"DELETE FROM {table} WHERE {build_slice(product)}"), {"probe": probe_name, "agg": CLIENT_AGG_TYPE}
        )
        frame = tables.get(table)
        written[table] = load(conn, table, frame) if frame is not None and len(frame) else 0
    if conn.dialect.name == "postgresql":
        views = {r[0] for r in conn.execute(sa.text("SELECT matviewname FROM pg_matviews")).fetchall()}
        for table in tables_for(product):
            if f"view_{table}" in views:
                conn.execute(sa.text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY view_{table}"))
    return written
