"""The offspot assets: hourly indicators from the boxes' Caddy logs, then D/W/M/Y KPIs per box
and for the fleet.

``offspot_indicators`` (hourly, UTC) reads the logs once per run, whatever the number of hours
and of boxes: a single-run backfill of a month scans each box's files of that month in one
DuckDB pass and replaces the month's slice of ``offspot_indicator_records`` for every box read
in one transaction. ``offspot_kpis`` recomputes every retained period of every box from the
records and purges each box's records older than a year; ``offspot_fleet_kpis`` computes the
same KPIs over every box.
"""


import io
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from metrics_assets.lazy import lazy_import
from metrics_assets.offspot import config
from metrics_assets.offspot.config import DEFAULT_BOX
from metrics_assets.offspot.indicators import compute_indicators
from metrics_assets.offspot.kpis import KPIS, compute_kpis
from metrics_assets.offspot.sources import gather
from metrics_assets.resources import ObjectStore, Warehouse
from metrics_assets.resources.metadata import preview

pd = lazy_import("pandas")  # imported on first use (loading the definitions needs no pandas)

GROUP = "offspot"
OWNERS = ["team:metrics"]
RECORDS_TABLE = "offspot_indicator_records"
KPIS_TABLE = "offspot_kpis"
FLEET_TABLE = "offspot_fleet_kpis"
HOURLY = dg.HourlyPartitionsDefinition(start_date=config.partitions_start(), timezone="UTC")
WINDOW = "period_start >= :start AND period_start < :end"
KPI_WORK_MEM = "256MB"

INDICATOR_CHECKS = {
    "uptime_at_most_60": "Every hour's uptime (1004) is at most 60 minutes.",
    "total_usage_at_most_60": "Every hour's total usage (1005, and 1006 per package) is at most 60 minutes.",
    "no_negative_counts": "No indicator record has a negative value.",
    "logs_readable": (
        "Every box has a recognised log file, and every hour its heartbeat says it was on has log "
        "lines that can be read (fix OFFSPOT_LOG_DIR or OFFSPOT_FLEET_ROOT, and OFFSPOT_LOG_PATTERN)."
    ),
}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def minutes_text(minutes: int) -> str:
    """``200`` -> ``3 h 20 min``."""
    hours, rest = divmod(int(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


INDICATOR_UNITS = {1001: "visits", 1003: "files", 1004: "min", 1005: "min", 1006: "min"}


def _indicator_preview(frame: "pd.DataFrame") -> dg.MetadataValue:
    if frame.empty:
        return preview(frame)
    shown = frame.assign(
        hour=pd.to_datetime(frame["period_start"], utc=True).dt.strftime("%Y-%m-%d %H:00"),
        value=[minutes_text(v) if INDICATOR_UNITS[i] == "min" else f"{v:,} {INDICATOR_UNITS[i]}"
               for i, v in zip(frame["indicator_id"], frame["value"], strict=True)],
    )
    return preview(shown, limit=15, columns=["box_id", "hour", "indicator_name", "dimension", "value"])


def _figures(frame: "pd.DataFrame") -> dict[str, dg.MetadataValue]:
    """The run's business figures, as plain numbers the Plots tab can chart."""
    def total(indicator_id: int, dimension: str | None = None) -> int:
        rows = frame[frame["indicator_id"] == indicator_id] if not frame.empty else frame
        if dimension is not None and not rows.empty:
            rows = rows[rows["dimension"] == dimension]
        return int(rows["value"].sum()) if not rows.empty else 0

    return {
        "home_visits": dg.MetadataValue.int(total(1001)),
        "usage_minutes": dg.MetadataValue.int(total(1005)),
        "uptime_minutes": dg.MetadataValue.int(total(1004)),
        "shared_files_created": dg.MetadataValue.int(total(1003, "FILE_CREATED")),
        "shared_files_deleted": dg.MetadataValue.int(total(1003, "FILE_DELETED")),
    }


def _figures_by_hour(frame: "pd.DataFrame", limit: int = 48) -> dict[str, dict[str, int]]:
    if frame.empty:
        return {}
    hours = pd.to_datetime(frame["period_start"], utc=True).dt.strftime("%Y-%m-%d %H:00")
    names = {1001: "home_visits", 1005: "usage_minutes", 1004: "uptime_minutes"}
    picked = frame.assign(hour=hours)[frame["indicator_id"].isin(list(names))]
    sums = picked.groupby(["hour", "indicator_id"])["value"].sum()
    out: dict[str, dict[str, int]] = {}
    for (hour, indicator_id), value in sums.items():
        out.setdefault(hour, {n: 0 for n in names.values()})[names[int(indicator_id)]] = int(value)
    return dict(sorted(out.items())[-limit:])


@dg.asset(
    key="offspot_indicators",
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

    params = {"start": start, "end": end}
    # A box's hours are replaced only from where its files hold every line: a rotation older
    # than the files read, else their oldest line (whose hour counts as covered: a new box's
    # first hour). Older hours of the window keep the rows they have (the box's 48 h roll may
    # have deleted their logs since they were read); logs_readable says so when the box was on.
    writes, written_boxes, left = [], [], {}
    for b in boxes:
        minute = result.covered_from_minute.get(b.box_id)
        readable = [f for f in b.access if f.name not in result.skipped_files]
        write_from = start if minute is not None and readable else None
        if write_from is not None and minute * 60 > start.timestamp():
            write_from = datetime.fromtimestamp(minute // 60 * 3600, UTC)
        if write_from is None or write_from >= end:
            left[b.box_id] = f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
            continue
        if write_from > start:
            left[b.box_id] = f"[{start:%Y-%m-%d %H:%M}, {write_from:%Y-%m-%d %H:%M})"
        mine = result.records.filter(pc.and_(
            pc.equal(result.records["box_id"], b.box_id),
            pc.greater_equal(result.records["period_start"], pa.scalar(write_from, result.records["period_start"].type)),
        ))
        writes.append((RECORDS_TABLE, mine, f"{WINDOW} AND box_id = :box_id",
                       {"start": write_from, "end": end, "box_id": b.box_id}))
        written_boxes.append(b.box_id)
    written = sum(warehouse.replace_slices(writes).values()) if writes else 0
    context.log.info(f"replaced the window's slice of {RECORDS_TABLE} for {len(written_boxes)} box(es) with "
                     f"{written} rows; left as they were (no log line of that time): {left or 'none'}")
    frame = pa.concat_tables([w[1] for w in writes]).to_pandas() if writes else result.records.slice(0, 0).to_pandas()

    sources = {k: v for k, v in result.uptime_source_hours.items() if v}
    uptime_source = "+".join(sorted(sources)) if sources else "none"
    package_warnings = [w if b.box_id == DEFAULT_BOX else f"{b.box_id}: {w}" for b in boxes for w in b.package_warnings]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(written),
        **_figures(frame),
        # a range run records the same metadata on each of its hours: the figures above are the
        # window's totals, and this splits them by hour
        "figures_by_hour": dg.MetadataValue.json(_figures_by_hour(frame)),
        "boxes_seen": dg.MetadataValue.int(int(frame["box_id"].nunique()) if not frame.empty else 0),
        "boxes_written": dg.MetadataValue.json(sorted(written_boxes)),
        "hours_left_unwritten": dg.MetadataValue.json(left),
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
        "uptime_source": dg.MetadataValue.text(uptime_source),
        "uptime_hours_by_source": dg.MetadataValue.json(result.uptime_source_hours),
        "seconds": dg.MetadataValue.float(round(elapsed, 3)),
        "preview": _indicator_preview(frame),
    }
    checks = indicator_checks(warehouse, params) + [logs_readable_check(boxes, result.uncovered_hours)]
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def logs_readable_check(boxes, uncovered: list[tuple]) -> dg.AssetCheckResult:
    """Fails for a box folder without any recognised log file, and for an hour the box's
    heartbeat says it was on while no log line of that time can be read."""
    no_logs = sorted(b.box_id for b in boxes if not b.recognised)
    hours = [{"box_id": box, "hour": f"{_aware(hour).astimezone(UTC):%Y-%m-%d %H:00}", "heartbeat_minutes": int(m)}
             for box, hour, m in uncovered]
    problems = []
    if no_logs:
        problems.append(f"no recognised log file for box(es) {', '.join(no_logs)}")
    if hours:
        problems.append(f"{len(hours)} hour(s) with a heartbeat but no readable log line of that time "
                        "(not synced, deleted by the box's 48 h roll, or unreadable)")
    fix = f"check {config.settings_to_fix()}, and that logs are synced within the box's 48 h"
    return dg.AssetCheckResult(
        check_name="logs_readable", asset_key="offspot_indicators", passed=not problems,
        description=("; ".join(problems) + f": {fix}") if problems else None,
        metadata={
            "boxes_without_logs": dg.MetadataValue.json(no_logs),
            "hours_without_logs": dg.MetadataValue.int(len(hours)),
            "examples": dg.MetadataValue.json(hours[:20]),
            "settings": dg.MetadataValue.text(config.settings_to_fix()),
        },
    )


def indicator_checks(warehouse: Warehouse, params: dict) -> list[dg.AssetCheckResult]:
    """The rules every hour must keep, evaluated on the slice just written."""
    def bad(condition: str) -> list[dict]:
        return warehouse.fetch_all(
            f"SELECT box_id, indicator_id, period_start, dimension, value FROM {RECORDS_TABLE} "
            f"WHERE {WINDOW} AND ({condition}) ORDER BY box_id, period_start, indicator_id, dimension", params
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


def daily_records(warehouse: Warehouse) -> "pd.DataFrame":
    """The indicator records summed per box, indicator, dimension and UTC day, in the database
    (every KPI is a sum over whole days), with the newest hour summed into each row. Days and
    hours travel as epoch seconds; on PostgreSQL the result comes out through COPY."""
    if warehouse.is_postgres:
        # grouped on a date (cheap; epoch arithmetic is numeric in PostgreSQL), converted after
        sql = (
            "SELECT box_id, indicator_id, dimension, (day - DATE '1970-01-01')::bigint * 86400 AS day_s, value, "
            "extract(epoch FROM last_start)::bigint AS last_s FROM ("
            "SELECT box_id, indicator_id, dimension, (period_start AT TIME ZONE 'UTC')::date AS day, "
            f"sum(value) AS value, max(period_start) AS last_start FROM {RECORDS_TABLE} GROUP BY 1, 2, 3, 4) d"
        )
        buffer = io.BytesIO()
        raw = warehouse.engine.raw_connection()
        try:
            cursor = raw.cursor()
            # a year of a fleet is a few hundred thousand groups: hash them in memory, not on disk
            cursor.execute(f"SET LOCAL work_mem = '{KPI_WORK_MEM}'")
            cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
            cursor.close()
        finally:
            raw.close()
        buffer.seek(0)
        types = {"box_id": pa.string(), "indicator_id": pa.int32(), "dimension": pa.string(),
                 "day_s": pa.int64(), "value": pa.int64(), "last_s": pa.int64()}
        frame = pacsv.read_csv(buffer, convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)).to_pandas()
    else:
        frame = warehouse.read_df(
            "SELECT box_id, indicator_id, dimension, "
            "CAST(strftime('%s', substr(period_start, 1, 10)) AS INTEGER) AS day_s, sum(value) AS value, "
            "CAST(strftime('%s', max(period_start)) AS INTEGER) AS last_s "
            f"FROM {RECORDS_TABLE} GROUP BY 1, 2, 3, 4"
        )
    return pd.DataFrame({
        "box_id": frame["box_id"].astype(str),
        "indicator_id": frame["indicator_id"].astype("int32"),
        "dimension": frame["dimension"].fillna("").astype(str),
        "period_start": pd.to_datetime(frame["day_s"].astype("int64"), unit="s", utc=True),
        "value": frame["value"].astype("int64"),
        "last_start": pd.to_datetime(frame["last_s"].astype("int64"), unit="s", utc=True),
    })


def _kpi_text(kpi_id: int, value: str) -> str:
    """A KPI value as a person reads it: ``412 visits (Wikipedia 200, ...)``, ``3 h 20 min``."""
    data = json.loads(value)
    if kpi_id == 2001:
        top = ", ".join(f"{i['package']} {i['visits']:,}" for i in data["items"][:3])
        return f"{data['totalVisits']:,} visits" + (f" ({top})" if top else "")
    if kpi_id == 2003:
        return f"{minutes_text(data['totalMinutesActivity'])} of activity"
    if kpi_id == 2004:
        return f"{minutes_text(data['nbMinutesOn'])} on"
    return f"{data['filesCreated']:,} files created, {data['filesDeleted']:,} deleted"


def _kpi_preview(frame: "pd.DataFrame", keys: list[str]) -> dg.MetadataValue:
    if frame.empty:
        return preview(frame)
    ordered = frame.sort_values([*keys, "agg_kind", "agg_value", "kpi_id"])
    shown = ordered.assign(
        value=[_kpi_text(k, v) for k, v in zip(ordered["kpi_id"], ordered["kpi_value"], strict=True)])
    return preview(shown, limit=20, columns=[*keys, "kpi_name", "agg_kind", "agg_value", "value"])


def _day_figures(frame: "pd.DataFrame") -> dict[str, dg.MetadataValue]:
    """The newest day's KPI totals over the table's rows, as numbers for the Plots tab."""
    days = frame[frame["agg_kind"] == "D"] if not frame.empty else frame
    if days.empty:
        newest = None
        rows = days
    else:
        newest = days["agg_value"].max()
        rows = days[days["agg_value"] == newest]

    def field(kpi_id: int, name: str) -> int:
        return sum(json.loads(v)[name] for v in rows[rows["kpi_id"] == kpi_id]["kpi_value"]) if not rows.empty else 0

    return {
        "latest_day": dg.MetadataValue.text(newest or "none"),
        "latest_day_home_visits": dg.MetadataValue.int(field(2001, "totalVisits")),
        "latest_day_usage_minutes": dg.MetadataValue.int(field(2003, "totalMinutesActivity")),
        "latest_day_uptime_minutes": dg.MetadataValue.int(field(2004, "nbMinutesOn")),
        "latest_day_shared_files_created": dg.MetadataValue.int(field(2005, "filesCreated")),
        "latest_day_shared_files_deleted": dg.MetadataValue.int(field(2005, "filesDeleted")),
    }


@dg.asset(
    key="offspot_kpis",
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
    deps=[offspot_indicators],
    # the schedule refreshes them every hour; two missed hours warn, three fail
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    check_specs=[dg.AssetCheckSpec(
        "kpis_agree_with_indicators", asset="offspot_kpis",
        description="Every KPI total equals the sum of its indicator records over the period's hours.",
    )],
)
def offspot_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    records = daily_records(warehouse)
    stored = warehouse.read_df(f"SELECT box_id, kpi_id, kpi_name, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}")
    context.log.info(f"computing KPIs from {len(records):,} rows of indicator records summed per box and day ({len(stored)} KPI rows stored)")
    table, cutoffs = compute_kpis(records, stored)
    writes = [(KPIS_TABLE, table, None, None)]
    purged = 0
    for box, cutoff in sorted(cutoffs.items()):
        params = {"box_id": box, "cutoff": cutoff}
        where = "box_id = :box_id AND period_start < :cutoff"
        purged += int(warehouse.scalar(f"SELECT count(*) FROM {RECORDS_TABLE} WHERE {where}", params) or 0)
        writes.append((RECORDS_TABLE, [], where, params))
    warehouse.replace_slices(writes)
    context.log.info(f"wrote {table.num_rows} KPI rows for {len(cutoffs)} box(es); purged {purged} indicator records")

    frame = table.to_pandas()
    counts = frame.groupby("agg_kind").size().to_dict() if not frame.empty else {}
    check = kpi_check(warehouse, records, cutoffs)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(table.num_rows),
            "boxes_seen": dg.MetadataValue.int(int(frame["box_id"].nunique()) if not frame.empty else 0),
            **_day_figures(frame),
            "rows_by_agg_kind": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "indicator_records_purged": dg.MetadataValue.int(purged),
            "purge_cutoffs": dg.MetadataValue.json({b: c.isoformat() for b, c in sorted(cutoffs.items())}),
            "skipped": dg.MetadataValue.json({}),
            "preview": _kpi_preview(frame, ["box_id"]),
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


def _expected_sums(daily: "pd.DataFrame", box_column: str | None) -> dict[tuple, dict[str, int]]:
    """Per (box, kind, label): sums of the records by indicator and by indicator:dimension,
    in pandas, independently of the KPI SQL."""
    frame = pd.DataFrame({
        "box": daily[box_column].to_numpy() if box_column else "",
        "indicator_id": daily["indicator_id"].to_numpy(),
        "dimension": daily["dimension"].to_numpy(),
        "value": daily["value"].to_numpy(),
    })
    starts = pd.to_datetime(daily["period_start"], utc=True)
    days = pd.Series(starts.unique())
    sums: dict[tuple, dict[str, int]] = {}
    for kind, labels in _labels(days).items():
        label_of = dict(zip(days, labels, strict=True))  # labels of the few distinct days, mapped
        grouped = frame.assign(label=starts.map(label_of).to_numpy()).groupby(
            ["box", "label", "indicator_id", "dimension"])["value"].sum()
        for (box, label, indicator_id, dimension), value in grouped.items():
            entry = sums.setdefault((box, kind, label), {})
            entry[str(indicator_id)] = entry.get(str(indicator_id), 0) + int(value)
            entry[f"{indicator_id}:{dimension}"] = int(value)
    return sums


def _disagreements(kpis: "pd.DataFrame", sums: dict, cutoff_of, box_column: str | None) -> list[dict]:
    problems = []
    for row in kpis.itertuples(index=False):
        box = getattr(row, box_column) if box_column else ""
        cutoff = cutoff_of(box)
        if cutoff is not None and _period_start(row.agg_kind, row.agg_value) < cutoff:
            continue  # its hours are partly purged: the stored value stands
        got = json.loads(row.kpi_value)
        want = sums.get((box, row.agg_kind, row.agg_value), {})
        expected = {
            2001: {"totalVisits": want.get("1001", 0)},
            2003: {"totalMinutesActivity": want.get("1005", 0)},
            2004: {"nbMinutesOn": want.get("1004", 0)},
            2005: {"filesCreated": want.get("1003:FILE_CREATED", 0), "filesDeleted": want.get("1003:FILE_DELETED", 0)},
        }[int(row.kpi_id)]
        for field_name, value in expected.items():
            if got.get(field_name) != value or value < 0:
                problems.append({"box_id": box, "kpi": KPIS[int(row.kpi_id)],
                                 "period": f"{row.agg_kind} {row.agg_value}",
                                 "field": field_name, "stored": got.get(field_name), "expected": value})
    return problems


def kpi_check(warehouse: Warehouse, records: "pd.DataFrame", cutoffs: dict) -> dg.AssetCheckResult:
    """Independently of the KPI SQL: sum the records (per box and day, as read for the KPIs,
    less those just purged) per box and period in pandas and compare every stored KPI total of
    a period whose hours are all still recorded."""
    sums = _expected_sums(records, "box_id")
    kpis = warehouse.read_df(f"SELECT box_id, kpi_id, agg_kind, agg_value, kpi_value FROM {KPIS_TABLE}")
    problems = _disagreements(kpis, sums, cutoffs.get, "box_id")
    return dg.AssetCheckResult(
        check_name="kpis_agree_with_indicators", asset_key="offspot_kpis", passed=not problems,
        metadata={"kpi_rows_checked": len(kpis), "disagreements": len(problems),
                  "examples": dg.MetadataValue.json(problems[:10])},
    )


@dg.asset(
    key="offspot_fleet_kpis",
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
    deps=[offspot_indicators],
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    check_specs=[
        dg.AssetCheckSpec("fleet_kpis_agree_with_indicators", asset="offspot_fleet_kpis",
                          description="Every fleet KPI total equals the sum of every box's records over the period."),
        dg.AssetCheckSpec("no_stale_box", asset="offspot_fleet_kpis",
                          description="Every box's newest record is within OFFSPOT_STALE_AFTER_HOURS of the fleet's."),
    ],
)
def offspot_fleet_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    records = daily_records(warehouse)
    stored = warehouse.read_df(
        f"SELECT kpi_id, kpi_name, agg_kind, agg_value, kpi_value, boxes, per_box_uptime FROM {FLEET_TABLE}")
    context.log.info(f"computing fleet KPIs from {len(records):,} rows of indicator records summed per box and day")
    table, cutoffs = compute_kpis(records, stored, fleet=True)
    warehouse.replace_slice(FLEET_TABLE, table)
    frame = table.to_pandas()

    last_seen = {}
    if not records.empty:
        newest = pd.to_datetime(records["last_start"], utc=True).groupby(records["box_id"]).max()
        last_seen = {box: (ts + pd.Timedelta(hours=1)).to_pydatetime() for box, ts in newest.items()}
    fleet_end = max(last_seen.values(), default=None)
    stale_after = timedelta(hours=config.stale_after_hours())
    stale = {box: seen for box, seen in last_seen.items() if fleet_end - seen > stale_after}
    seen_rows = [{"box_id": b, "last_seen": f"{s:%Y-%m-%d %H:%M} UTC",
                  "behind": "" if fleet_end == s else f"{(fleet_end - s) / timedelta(hours=1):.0f} h behind"}
                 for b, s in sorted(last_seen.items())]
    fleet_cutoff = next(iter(cutoffs.values()), None)
    problems = _disagreements(frame, _expected_sums(records, None), lambda _: fleet_cutoff, None)
    stale_text = ", ".join(f"{b} (last seen {s:%Y-%m-%d %H:%M} UTC)" for b, s in sorted(stale.items()))
    checks = [
        dg.AssetCheckResult(
            check_name="fleet_kpis_agree_with_indicators", asset_key="offspot_fleet_kpis", passed=not problems,
            metadata={"kpi_rows_checked": len(frame), "disagreements": len(problems),
                      "examples": dg.MetadataValue.json(problems[:10])},
        ),
        dg.AssetCheckResult(
            check_name="no_stale_box", asset_key="offspot_fleet_kpis", passed=not stale,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"{len(stale)} box(es) stopped sending: {stale_text}; their logs are lost once older "
                         "than the box's 48 h roll") if stale else None,
            metadata={"stale_boxes": dg.MetadataValue.int(len(stale)),
                      "stale": dg.MetadataValue.json({b: s.isoformat() for b, s in sorted(stale.items())}),
                      "fleet_newest_hour_end": dg.MetadataValue.text(fleet_end.isoformat() if fleet_end else "none"),
                      "stale_after": dg.MetadataValue.text(f"{config.stale_after_hours()} h (OFFSPOT_STALE_AFTER_HOURS)")},
        ),
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(table.num_rows),
            "boxes_seen": dg.MetadataValue.int(len(last_seen)),
            "boxes_stale": dg.MetadataValue.int(len(stale)),
            **_day_figures(frame),
            "last_seen": preview(seen_rows, limit=50),
            "preview": _kpi_preview(frame, []),
        },
        check_results=checks,
    )
