"""The offspot assets: hourly indicators from the boxes' Caddy logs, then D/W/M/Y KPIs per box
and for the fleet.

``offspot_indicators`` (hourly, UTC) reads the logs once per run, whatever the number of hours
and of boxes: a single-run backfill of a month scans each box's files of that month in one
DuckDB pass and replaces the month's slice of ``offspot_indicator_records`` for every box read
in one transaction. ``offspot_kpis`` recomputes every retained period of every box from the
records and purges each box's records older than a year; ``offspot_fleet_kpis`` computes the
same KPIs over every box.

This module only orchestrates: it reads, calls the logic modules (``sources`` gathers the files,
``indicators`` and ``kpis`` compute, ``records`` plans the slices and reads the records,
``checks`` evaluates the check rules, ``report`` shapes the metadata), writes through
``Warehouse.replace_slices`` and reports.
"""

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from metrics_assets.offspot import config, report
from metrics_assets.offspot.checks import (
    SLICE_RULES,
    disagreements,
    last_seen,
    slice_violations_sql,
    stale_boxes,
    unreadable_logs,
)
from metrics_assets.offspot.config import DEFAULT_BOX
from metrics_assets.offspot.indicators import compute_indicators
from metrics_assets.offspot.kpis import compute_kpis
from metrics_assets.offspot.records import (
    CHECKED_KPIS_SQL,
    FLEET_TABLE,
    KPIS_TABLE,
    PURGED_COUNT_SQL,
    RECORDS_TABLE,
    STORED_FLEET_SQL,
    STORED_KPIS_SQL,
    daily_records,
    plan_writes,
    purge_writes,
)
from metrics_assets.offspot.sources import gather
from metrics_assets.resources import ObjectStore, Warehouse
from metrics_assets.resources.metadata import preview
from metrics_assets.resources.sqltext import as_utc
from metrics_assets.sql_access import INTEGER

GROUP = "offspot"
OWNERS = ["team:metrics"]
HOURLY = dg.HourlyPartitionsDefinition(start_date=config.partitions_start(), timezone="UTC")
#: the schedule refreshes the KPIs every hour; two missed hours warn, three fail
KPI_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))

INDICATOR_CHECKS = {
    "uptime_at_most_60": "Every hour's uptime (1004) is at most 60 minutes.",
    "total_usage_at_most_60": "Every hour's total usage (1005, and 1006 per package) is at most 60 minutes.",
    "no_negative_counts": "No indicator record has a negative value.",
    "logs_readable": (
        "Every box has a recognised log file, and every hour its heartbeat says it was on has log "
        "lines that can be read (fix OFFSPOT_LOG_DIR or OFFSPOT_FLEET_ROOT, and OFFSPOT_LOG_PATTERN)."
    ),
}


def _ints(figures: dict[str, int]) -> dict[str, dg.MetadataValue]:
    return {name: dg.MetadataValue.int(value) for name, value in figures.items()}


def _source(records) -> dict[str, dg.MetadataValue]:
    """No indicator record yet: the KPI table is written empty, and said so."""
    if not records.empty:
        return {"source_empty": dg.MetadataValue.bool(False)}
    return {
        "source_empty": dg.MetadataValue.bool(True),
        "empty_reason": dg.MetadataValue.text(f"no row in {RECORDS_TABLE}: materialize offspot_indicators first"),
    }


def _newest_day(frame) -> dict[str, dg.MetadataValue]:
    newest, figures = report.newest_day_figures(frame)
    return {"latest_day": dg.MetadataValue.text(newest or "none"), **_ints(figures)}


@dg.asset(
    description=(
        "Hourly offspot indicators of every box from its Caddy JSON access logs and packages.yaml "
        "(one box: OFFSPOT_LOG_DIR + OFFSPOT_PACKAGES_FILE, box 'default'; a fleet: OFFSPOT_FLEET_ROOT, "
        "one folder per box; log names from OFFSPOT_LOG_PATTERN, default metrics.json and access.log): "
        "home visits per package (1001), shared files operations (1003), uptime (1004, from "
        "heartbeat.log or else access-log minutes), and minutes of activity overall (1005) and per "
        "package (1006). Writes table offspot_indicator_records; each run replaces its hours' slice "
        "for every box it read."
    ),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "postgres", "s3"},
    metadata={"dagster/table_name": RECORDS_TABLE},
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(name, asset="offspot_indicators", description=text) for name, text in INDICATOR_CHECKS.items()
    ],
)
def offspot_indicators(
    context: dg.AssetExecutionContext, warehouse: Warehouse, object_store: ObjectStore
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = as_utc(window.start), as_utc(window.end)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="offspot_logs_") as scratch:
        boxes = gather(object_store, start, end, Path(scratch))
        where = str(config.fleet_root() or config.log_location())
        if not any(b.recognised for b in boxes):
            # nothing at all to read: a wrong folder or pattern, never an empty success
            seen = sorted({n for b in boxes for n in b.skipped_files})[:10]
            raise dg.Failure(
                f"No access log found in {where} ({len(boxes)} box folder(s); files seen: "
                f"{', '.join(seen) or 'none'}). Fix {config.settings_to_fix()}.",
                metadata={"log_location": where, "files_seen": dg.MetadataValue.json(seen)},
            )
        for b in boxes:
            for warning in b.package_warnings:
                context.log.warning(f"{b.box_id}: packages.yaml: {warning}")
        context.log.info(
            f"offspot indicators for [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC from {where}: "
            f"{len(boxes)} box(es), {sum(len(b.access) for b in boxes)} log file(s) to read "
            f"({', '.join(f.name for b in boxes for f in b.access)[:500] or 'none'}); "
            f"{sum(b.not_needed for b in boxes)} rotated file(s) outside the window left unread; "
            f"{sum(len(b.duplicates) for b in boxes)} duplicate(s) read once"
        )
        result = compute_indicators([b.box_input() for b in boxes], start, end)
    elapsed = time.perf_counter() - started
    skipped_files = {k: v for b in boxes for k, v in b.skipped_files.items()} | result.skipped_files
    duplicates = {k: v for b in boxes for k, v in b.duplicates.items()}
    context.log.info(
        f"read {result.lines_read:,} lines in {elapsed:.1f}s; {result.requests_in_window:,} requests in the "
        f"window, {result.requests_matched:,} for a known package; skipped lines: {result.skipped_lines}"
    )

    plan = plan_writes(boxes, result, start, end)
    written = sum(warehouse.replace_slices(plan.writes).values()) if plan.writes else 0
    context.log.info(
        f"replaced the window's slice of {RECORDS_TABLE} for {len(plan.boxes_written)} box(es) with "
        f"{written} rows; left as they were (no log line of that time): {plan.left or 'none'}"
    )
    frame = plan.rows.to_pandas()

    sources = {k: v for k, v in result.uptime_source_hours.items() if v}
    package_warnings = [w if b.box_id == DEFAULT_BOX else f"{b.box_id}: {w}" for b in boxes for w in b.package_warnings]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(written),
        **_ints(report.indicator_figures(frame)),
        # a range run records the same metadata on each of its hours: the figures above are the
        # window's totals, and this splits them by hour
        "figures_by_hour": dg.MetadataValue.json(report.figures_by_hour(frame)),
        "boxes_seen": dg.MetadataValue.int(int(frame["box_id"].nunique()) if not frame.empty else 0),
        "boxes_written": dg.MetadataValue.json(sorted(plan.boxes_written)),
        "hours_left_unwritten": dg.MetadataValue.json(plan.left),
        "window": dg.MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
        "log_location": dg.MetadataValue.text(where),
        "files_read": dg.MetadataValue.json([f.name for b in boxes for f in b.access]),
        "duplicate_files_skipped": dg.MetadataValue.int(len(duplicates)),
        "duplicate_files": dg.MetadataValue.json(duplicates),
        "lines_read": dg.MetadataValue.int(result.lines_read),
        "requests_in_window": dg.MetadataValue.int(result.requests_in_window),
        "requests_matched": dg.MetadataValue.int(result.requests_matched),
        "requests_unmatched": dg.MetadataValue.int(result.requests_in_window - result.requests_matched),
        "lines_skipped": dg.MetadataValue.int(sum(result.skipped_lines.values())),
        "lines_skipped_by_reason": dg.MetadataValue.json(result.skipped_lines),
        "files_skipped": dg.MetadataValue.json(skipped_files),
        "package_warnings": dg.MetadataValue.json(package_warnings),
        "uptime_source": dg.MetadataValue.text("+".join(sorted(sources)) if sources else "none"),
        "uptime_hours_by_source": dg.MetadataValue.json(result.uptime_source_hours),
        "seconds": dg.MetadataValue.float(round(elapsed, 3)),
        "preview": preview(report.indicator_preview_rows(frame), limit=15, columns=report.INDICATOR_PREVIEW_COLUMNS),
    }
    checks = [*_slice_checks(warehouse, {"start": start, "end": end}), _logs_readable(boxes, result.uncovered_hours)]
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def _slice_checks(warehouse: Warehouse, params: dict) -> list[dg.AssetCheckResult]:
    """The rules every hour must keep (``checks.SLICE_RULES``), on the slice just written."""
    results = []
    for name, condition in SLICE_RULES.items():
        rows = warehouse.fetch_all(slice_violations_sql(condition), params)
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key="offspot_indicators",
                passed=not rows,
                metadata={
                    "violations": len(rows),
                    "examples": dg.MetadataValue.json([{k: str(v) for k, v in r.items()} for r in rows[:10]]),
                },
            )
        )
    return results


def _logs_readable(boxes, uncovered: list[tuple]) -> dg.AssetCheckResult:
    found = unreadable_logs(boxes, uncovered)
    problems = found.problems()
    fix = f"check {config.settings_to_fix()}, and that logs are synced within the box's 48 h"
    return dg.AssetCheckResult(
        check_name="logs_readable",
        asset_key="offspot_indicators",
        passed=not problems,
        description=("; ".join(problems) + f": {fix}") if problems else None,
        metadata={
            "boxes_without_logs": dg.MetadataValue.json(found.boxes_without_logs),
            "hours_without_logs": dg.MetadataValue.int(len(found.hours)),
            "examples": dg.MetadataValue.json(found.hours[:20]),
            "settings": dg.MetadataValue.text(config.settings_to_fix()),
        },
    )


def _agreement(check_name: str, asset_key: str, rows_checked: int, problems: list[dict]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=not problems,
        metadata={
            "kpi_rows_checked": rows_checked,
            "disagreements": len(problems),
            "examples": dg.MetadataValue.json(problems[:10]),
        },
    )


@dg.asset(
    description=(
        "Offspot KPIs of each box (box_id; the single-box configuration is 'default') per day, ISO "
        "week, month and year (agg_kind D/W/M/Y): package popularity (2001), total usage (2003), "
        "uptime (2004), shared files (2005), as the box's JSON, computed from "
        "offspot_indicator_records. Keeps what the box keeps (the days of its newest hour and the 6 "
        "before, 4 weeks, 12 months, every year); purges each box's indicator records older than a year."
    ),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "postgres"},
    metadata={"dagster/table_name": KPIS_TABLE},
    deps=[offspot_indicators],
    freshness_policy=KPI_FRESHNESS,
    check_specs=[
        dg.AssetCheckSpec(
            "kpis_agree_with_indicators",
            asset="offspot_kpis",
            description="Every KPI total equals the sum of its indicator records over the period's hours.",
        )
    ],
)
def offspot_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    records = daily_records(warehouse)
    stored = warehouse.read_df(STORED_KPIS_SQL)
    context.log.info(
        f"computing KPIs from {len(records):,} rows of indicator records summed per box and day ({len(stored)} KPI rows stored)"
    )
    table, cutoffs = compute_kpis(records, stored)
    purges = purge_writes(cutoffs)
    purged = sum(warehouse.scalar(PURGED_COUNT_SQL, params, type_=INTEGER) for _, _, _, params in purges)
    warehouse.replace_slices([(KPIS_TABLE, table, None, None), *purges])
    context.log.info(f"wrote {table.num_rows} KPI rows for {len(cutoffs)} box(es); purged {purged} indicator records")

    frame = table.to_pandas()
    counts = frame.groupby("agg_kind").size().to_dict() if not frame.empty else {}
    # the KPIs as stored, against the records as read (less those just purged), summed in pandas
    kpis = warehouse.read_df(CHECKED_KPIS_SQL)
    check = _agreement(
        "kpis_agree_with_indicators", "offspot_kpis", len(kpis), disagreements(kpis, records, cutoffs.get, "box_id")
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(table.num_rows),
            **_source(records),
            "boxes_seen": dg.MetadataValue.int(int(frame["box_id"].nunique()) if not frame.empty else 0),
            **_newest_day(frame),
            "rows_by_agg_kind": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "indicator_records_purged": dg.MetadataValue.int(purged),
            "purge_cutoffs": dg.MetadataValue.json({b: c.isoformat() for b, c in sorted(cutoffs.items())}),
            "skipped": dg.MetadataValue.json({}),
            "preview": preview(
                report.kpi_preview_rows(frame, ["box_id"]), limit=20, columns=["box_id", *report.KPI_PREVIEW_COLUMNS]
            ),
        },
        check_results=[check],
    )


@dg.asset(
    description=(
        "The offspot KPIs over every box of the fleet (OFFSPOT_FLEET_ROOT), per D/W/M/Y period, shaped "
        "as the box's: package popularity by package title across boxes (2001), total usage (2003), "
        "uptime in box-minutes (2004), shared files (2005); with the number of boxes that have records "
        "in the period (boxes) and, on uptime rows, each box's uptime and last-seen time "
        "(per_box_uptime). Same retention as a box, from the fleet's newest hour. A box whose newest "
        "record is OFFSPOT_STALE_AFTER_HOURS behind the fleet's shows in the check no_stale_box."
    ),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "postgres"},
    metadata={"dagster/table_name": FLEET_TABLE},
    deps=[offspot_indicators],
    freshness_policy=KPI_FRESHNESS,
    check_specs=[
        dg.AssetCheckSpec(
            "fleet_kpis_agree_with_indicators",
            asset="offspot_fleet_kpis",
            description="Every fleet KPI total equals the sum of every box's records over the period.",
        ),
        dg.AssetCheckSpec(
            "no_stale_box",
            asset="offspot_fleet_kpis",
            description="Every box's newest record is within OFFSPOT_STALE_AFTER_HOURS of the fleet's.",
        ),
    ],
)
def offspot_fleet_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    records = daily_records(warehouse)
    stored = warehouse.read_df(STORED_FLEET_SQL)
    context.log.info(f"computing fleet KPIs from {len(records):,} rows of indicator records summed per box and day")
    table, cutoffs = compute_kpis(records, stored, fleet=True)
    warehouse.replace_slice(FLEET_TABLE, table)
    frame = table.to_pandas()

    seen = last_seen(records)
    fleet_end = max(seen.values(), default=None)
    stale = stale_boxes(seen, timedelta(hours=config.stale_after_hours()))
    seen_rows = report.last_seen_rows(seen)
    fleet_cutoff = next(iter(cutoffs.values()), None)
    stale_text = ", ".join(f"{b} (last seen {s:%Y-%m-%d %H:%M} UTC)" for b, s in sorted(stale.items()))
    checks = [
        _agreement(
            "fleet_kpis_agree_with_indicators",
            "offspot_fleet_kpis",
            len(frame),
            disagreements(frame, records, lambda _: fleet_cutoff, None),
        ),
        dg.AssetCheckResult(
            check_name="no_stale_box",
            asset_key="offspot_fleet_kpis",
            passed=not stale,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(stale)} box(es) stopped sending: {stale_text}; their logs are lost once older "
                "than the box's 48 h roll"
            )
            if stale
            else None,
            metadata={
                "stale_boxes": dg.MetadataValue.int(len(stale)),
                "stale": dg.MetadataValue.json({b: s.isoformat() for b, s in sorted(stale.items())}),
                "fleet_newest_hour_end": dg.MetadataValue.text(fleet_end.isoformat() if fleet_end else "none"),
                "stale_after": dg.MetadataValue.text(f"{config.stale_after_hours()} h (OFFSPOT_STALE_AFTER_HOURS)"),
            },
        ),
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(table.num_rows),
            **_source(records),
            "boxes_seen": dg.MetadataValue.int(len(seen)),
            "boxes_stale": dg.MetadataValue.int(len(stale)),
            **_newest_day(frame),
            "last_seen": preview(seen_rows, limit=50),
            "preview": preview(report.kpi_preview_rows(frame, []), limit=20, columns=report.KPI_PREVIEW_COLUMNS),
        },
        check_results=checks,
    )
