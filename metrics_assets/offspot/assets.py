"""The offspot assets: hourly indicators from the box's Caddy logs, then D/W/M/Y KPIs.

``offspot_indicators`` (hourly, UTC) reads the logs once per run, whatever the number of
hours: a single-run backfill of a month scans the files of that month once and replaces the
month's slice of ``offspot_indicator_records`` in one transaction. ``offspot_kpis`` recomputes
every retained period from the records, and purges records older than a year.
"""

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from metrics_assets.lazy import lazy_import
from metrics_assets.offspot import config
from metrics_assets.offspot.indicators import compute_indicators
from metrics_assets.offspot.kpis import KPIS, compute_kpis
from metrics_assets.offspot.packages import load_packages
from metrics_assets.offspot.sources import gather
from metrics_assets.resources import ObjectStore, Warehouse
from metrics_assets.resources.metadata import preview

pd = lazy_import("pandas")  # imported on first use (loading the definitions needs no pandas)

GROUP = "offspot"
OWNERS = ["team:metrics"]
RECORDS_TABLE = "offspot_indicator_records"
KPIS_TABLE = "offspot_kpis"
HOURLY = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00", timezone="UTC")
WINDOW = "period_start >= :start AND period_start < :end"

INDICATOR_CHECKS = {
    "uptime_at_most_60": "Every hour's uptime (1004) is at most 60 minutes.",
    "total_usage_at_most_60": "Every hour's total usage (1005, and 1006 per package) is at most 60 minutes.",
    "no_negative_counts": "No indicator record has a negative value.",
}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dg.asset(
    key="offspot_indicators",
    description=(
        "Hourly offspot indicators from the box's Caddy JSON access logs (OFFSPOT_LOG_DIR) and "
        "packages.yaml (OFFSPOT_PACKAGES_FILE): home visits per package (1001), shared files "
        "operations (1003), uptime (1004, from heartbeat.log or else access-log minutes), and "
        "minutes of activity overall (1005) and per package (1006). Writes table "
        "offspot_indicator_records; each run replaces its hours' slice."
    ),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "postgres", "s3"},
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec(name, asset="offspot_indicators", description=text)
                 for name, text in INDICATOR_CHECKS.items()],
)
def offspot_indicators(
    context: dg.AssetExecutionContext, warehouse: Warehouse, object_store: ObjectStore
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = _aware(window.start).astimezone(UTC), _aware(window.end).astimezone(UTC)
    location = config.log_location()
    packages, warnings = load_packages(config.packages_file())
    for warning in warnings:
        context.log.warning(f"packages.yaml: {warning}")
    context.log.info(f"offspot indicators for [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC "
                     f"from {location}, {len(packages)} packages")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="offspot_logs_") as scratch:
        gathered = gather(location, object_store, start, end, Path(scratch))
        context.log.info(
            f"reading {len(gathered.access)} access log file(s) "
            f"({', '.join(f.name for f in gathered.access) or 'none'}); "
            f"heartbeat: {'yes' if gathered.heartbeat else 'no'}; "
            f"{gathered.not_needed} rotated file(s) outside the window left unread"
        )
        result = compute_indicators(gathered.access, gathered.heartbeat, packages, start, end)
    elapsed = time.perf_counter() - started
    skipped_files = {**gathered.skipped_files, **result.skipped_files}
    context.log.info(
        f"read {result.lines_read:,} lines in {elapsed:.1f}s; {result.requests_in_window:,} requests in the "
        f"window, {result.requests_matched:,} for a known package; skipped lines: {result.skipped_lines}"
    )

    params = {"start": start, "end": end}
    written = warehouse.replace_slice(RECORDS_TABLE, result.records, WINDOW, params)
    context.log.info(f"replaced the window's slice of {RECORDS_TABLE} with {written} rows")

    sources = {k: v for k, v in result.uptime_source_hours.items() if v}
    uptime_source = "+".join(sorted(sources)) if sources else "none"
    frame = result.records.to_pandas()
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(written),
        "window": dg.MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
        "log_location": dg.MetadataValue.text(str(location)),
        "files_read": dg.MetadataValue.json([f.name for f in gathered.access]),
        "lines_read": dg.MetadataValue.int(result.lines_read),
        "requests_in_window": dg.MetadataValue.int(result.requests_in_window),
        "requests_matched": dg.MetadataValue.int(result.requests_matched),
        "requests_unmatched": dg.MetadataValue.int(result.requests_in_window - result.requests_matched),
        "lines_skipped": dg.MetadataValue.int(sum(result.skipped_lines.values())),
        "lines_skipped_by_reason": dg.MetadataValue.json(result.skipped_lines),
        "files_skipped": dg.MetadataValue.json(skipped_files),
        "package_warnings": dg.MetadataValue.json(warnings),
        "uptime_source": dg.MetadataValue.text(uptime_source),
        "uptime_hours_by_source": dg.MetadataValue.json(result.uptime_source_hours),
        "seconds": dg.MetadataValue.float(round(elapsed, 3)),
        "preview": preview(frame, limit=15),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=indicator_checks(warehouse, params))


def indicator_checks(warehouse: Warehouse, params: dict) -> list[dg.AssetCheckResult]:
    """The rules every hour must keep, evaluated on the slice just written."""
    def bad(condition: str) -> list[dict]:
        return warehouse.fetch_all(
            f"SELECT indicator_id, period_start, dimension, value FROM {RECORDS_TABLE} "
            f"WHERE {WINDOW} AND ({condition}) ORDER BY period_start, indicator_id, dimension", params
        )

    conditions = {
        "uptime_at_most_60": "indicator_id = 1004 AND value > 60",
        "total_usage_at_most_60": "indicator_id IN (1005, 1006) AND value > 60",
        "no_negative_counts": "value < 0",
    }
    results = []
    for name, condition in conditions.items():
        rows = bad(condition)
        results.append(dg.AssetCheckResult(
            check_name=name, asset_key="offspot_indicators", passed=not rows,
            metadata={"violations": len(rows), "examples": dg.MetadataValue.json(
                [{k: str(v) for k, v in r.items()} for r in rows[:10]])},
        ))
    return results


@dg.asset(
    key="offspot_kpis",
    description=(
        "Offspot KPIs per day, ISO week, month and year (agg_kind D/W/M/Y): package popularity "
        "(2001), total usage (2003), uptime (2004), shared files (2005), as JSON, computed from "
        "offspot_indicator_records. Keeps the last 7 D, 4 W, 12 M and every Y value; purges "
        "indicator records older than a year."
    ),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "postgres"},
    deps=[offspot_indicators],
    # the schedule refreshes them every hour; two missed hours warn, three fail
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    check_specs=[dg.AssetCheckSpec(
        "kpis_agree_with_indicators", asset="offspot_kpis",
        description="Every KPI total equals the sum of its indicator records over the period's hours.",
    )],
)
def offspot_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    records = warehouse.read_df(
        f"SELECT indicator_id, period_start, dimension, value FROM {RECORDS_TABLE}"
    )
    stored = warehouse.read_df(f"SELECT kpi_id, kpi_name, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}")
    context.log.info(f"computing KPIs from {len(records):,} indicator records ({len(stored)} KPI rows stored)")
    table, cutoff = compute_kpis(records, stored)
    writes = [(KPIS_TABLE, table, None, None)]
    if cutoff is not None:
        writes.append((RECORDS_TABLE, [], "period_start < :cutoff", {"cutoff": cutoff}))
    purged = warehouse.scalar(
        f"SELECT count(*) FROM {RECORDS_TABLE} WHERE period_start < :cutoff", {"cutoff": cutoff}
    ) if cutoff is not None else 0
    warehouse.replace_slices(writes)
    context.log.info(f"wrote {table.num_rows} KPI rows; purged {purged} indicator records before {cutoff}")

    frame = table.to_pandas()
    counts = frame.groupby("agg_kind").size().to_dict() if not frame.empty else {}
    check = kpi_check(warehouse, cutoff)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(table.num_rows),
            "rows_by_agg_kind": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "indicator_records_read": dg.MetadataValue.int(len(records)),
            "indicator_records_purged": dg.MetadataValue.int(int(purged or 0)),
            "purge_cutoff": dg.MetadataValue.text(cutoff.isoformat() if cutoff else "none"),
            "skipped": dg.MetadataValue.json({}),
            "preview": preview(frame.sort_values(["agg_kind", "agg_value", "kpi_id"]), limit=15),
        },
        check_results=[check],
    )


def _labels(starts: "pd.Series") -> "dict[str, pd.Series]":
    iso = starts.dt.isocalendar()
    return {
        "D": starts.dt.strftime("%Y-%m-%d"),
        "W": iso["year"].astype(str) + " W" + iso["week"].astype(str).str.zfill(2),
        "M": starts.dt.strftime("%Y-%m"),
        "Y": starts.dt.strftime("%Y"),
    }


def _period_start(kind: str, label: str) -> datetime:
    if kind == "W":
        year, week = label.split(" W")
        return datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
    fmt = {"D": "%Y-%m-%d", "M": "%Y-%m", "Y": "%Y"}[kind]
    return datetime.strptime(label, fmt).replace(tzinfo=UTC)


def kpi_check(warehouse: Warehouse, cutoff: datetime | None) -> dg.AssetCheckResult:
    """Independently of the KPI SQL: sum the hourly records per period in pandas and compare
    every stored KPI total of a period whose hours are all still recorded."""
    hourly = warehouse.read_df(
        f"SELECT indicator_id, dimension, period_start, sum(value) AS value FROM {RECORDS_TABLE} "
        "GROUP BY indicator_id, dimension, period_start"
    )
    kpis = warehouse.read_df(f"SELECT kpi_id, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}")
    hourly["period_start"] = pd.to_datetime(hourly["period_start"], utc=True)
    hourly["key"] = hourly["indicator_id"].astype(str) + ":" + hourly["dimension"]
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for kind, labels in _labels(hourly["period_start"]).items():
        grouped = hourly.assign(label=labels).groupby(["label", "indicator_id", "key"])["value"].sum()
        for (label, indicator_id, key), value in grouped.items():
            entry = sums.setdefault((kind, label), {})
            entry[str(indicator_id)] = entry.get(str(indicator_id), 0) + int(value)
            entry[key] = int(value)
    problems = []
    for row in kpis.itertuples(index=False):
        if cutoff is not None and _period_start(row.agg_kind, row.agg_value) < cutoff:
            continue  # its hours are partly purged: the stored value stands
        got = json.loads(row.kpi_value)
        want = sums.get((row.agg_kind, row.agg_value), {})
        expected = {
            2001: {"totalVisits": want.get("1001", 0)},
            2003: {"totalMinutesActivity": want.get("1005", 0)},
            2004: {"nbMinutesOn": want.get("1004", 0)},
            2005: {"filesCreated": want.get("1003:FILE_CREATED", 0), "filesDeleted": want.get("1003:FILE_DELETED", 0)},
        }[int(row.kpi_id)]
        for field_name, value in expected.items():
            if got.get(field_name) != value or value < 0:
                problems.append({"kpi": KPIS[int(row.kpi_id)], "period": f"{row.agg_kind} {row.agg_value}",
                                 "field": field_name, "stored": got.get(field_name), "expected": value})
    return dg.AssetCheckResult(
        check_name="kpis_agree_with_indicators", asset_key="offspot_kpis", passed=not problems,
        metadata={"kpi_rows_checked": len(kpis), "disagreements": len(problems),
                  "examples": dg.MetadataValue.json(problems[:10])},
    )
