"""A stock offspot box's log folder, as it ships, with hand-computed expectations.

Where the shapes come from:
* file names and rolling: offspot/container-images ``reverse-proxy/gen-caddyfile.py``:
  ``log metrics { include http.log.access  output file {$METRICS_LOGS_DIR}/metrics.json {
  roll_size 1MiB  roll_keep 2  roll_uncompressed  roll_keep_for 48h }  format json }``. Caddy's
  roller (lumberjack) renames the full file ``metrics-<UTC time of the roll, 2006-01-02T15-04-05.000>.json``,
  uncompressed because of ``roll_uncompressed`` (``.gz`` otherwise);
* lines: Caddy 2's JSON access log (``level``, ``ts``, ``logger`` ``http.log.access.logN``,
  ``msg`` "handled request", ``request``, ``status``, ``resp_headers``), 4xx and 5xx at level
  "error" (caddyhttp/server.go); see ``metrics_assets.offspot.samples.access_record``;
* ``heartbeat.log``: one ``date +%s`` a minute (the README's timer; the box has no such file);
* the rules: offspot/metrics ``backend/src/offspot_metrics_backend/business/`` (the
  ``ZimInputGenerator`` regex ``^/content/(?P<zim_name>.+?)(?P<zim_path>/.*)?$``: a home
  visit only when the path is empty or ``/``; the log converter never reads ``logger``; the
  KPI processor's ``get_aggregations_to_keep``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import dagster as dg
import pytest

from metrics_assets.offspot.indicators import INDICATORS
from metrics_assets.offspot.samples import access_record, line
from metrics_assets_tests.test_offspot.conftest import (
    kpi_rows,
    materialization_metadata,
    materialize_hours,
    materialize_kpis,
    records,
    req,
    ts,
    write_log,
)

HOUR = "2026-01-05-10:00"


def write_stock_box(folder):
    """metrics.json, two files rolled at 09:40 and 10:20 (uncompressed), a heartbeat 10:00-10:49."""
    write_log(
        folder / "metrics-2026-01-05T09-40-00.000.json",
        [
            req("2026-01-05 09:10:00", "khan.hotspot", "/"),
            req("2026-01-05 09:39:30", "kiwix.hotspot", "/content/wikipedia_en_all/"),
        ],
    )
    write_log(
        folder / "metrics-2026-01-05T10-20-00.000.json",
        [
            req("2026-01-05 09:45:00", "khan.hotspot", "/"),
            req("2026-01-05 10:02:00", "kiwix.hotspot", "/content/wikipedia_en_all"),  # home: no path at all
            req("2026-01-05 10:05:00", "kiwix.hotspot", "/content/wikipedia_en_all//"),  # not home (box's regex)
            req("2026-01-05 10:15:00", "edupi.hotspot", "/api/documents/", method="POST", status=201),
        ],
    )
    write_log(
        folder / "metrics.json",
        [
            req("2026-01-05 10:31:00", "khan.hotspot", "/"),
            req("2026-01-05 10:33:00", "khan.hotspot", "/videos/1.mp4", status=404),  # level "error"
            req(
                "2026-01-05 10:44:00",
                "files.hotspot",
                "/api/upload",
                method="POST",
                resp_headers={"X-Tfm-Files-Added": ["3"], "X-Tfm-Files-Deleted": ["0"]},
            ),
            req("2026-01-05 11:02:00", "khan.hotspot", "/"),
        ],
    )
    start = int(ts("2026-01-05 10:00:30"))
    (folder / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(50)))


# Hour 10: home visits Wikipedia 10:02, Khan 10:31 (10:05 is "//", the 404 is not handled);
# created: EduPi POST 201 (1) + file manager's X-Tfm-Files-Added 3 = 4; uptime 50 heartbeat
# minutes; activity minutes 02, 05, 15, 31, 44 from 10:02 -> slots 0, 0, 1, 2, 4 -> 4 -> 40;
# per package: Wikipedia 02, 05 -> 1 slot; EduPi, Khan, File Manager 1 slot each.
EXPECTED_STOCK_HOUR_10 = [
    (1001, "package_home_visits", "2026-01-05 10:00", "Khan videos", 1),
    (1001, "package_home_visits", "2026-01-05 10:00", "Wikipedia", 1),
    (1003, "shared_files_operations", "2026-01-05 10:00", "FILE_CREATED", 4),
    (1004, "uptime", "2026-01-05 10:00", "", 50),
    (1005, "total_usage", "2026-01-05 10:00", "", 40),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "EduPi", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "File Manager", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "Khan videos", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "Wikipedia", 10),
]


def cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    """The `dagster` CLI as a user runs it, configured only through the environment."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    return subprocess.run([dagster, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_stock_box_folder_through_the_cli(pg_warehouse, metrics_home, offspot_dirs, tmp_path):
    logs, _ = offspot_dirs
    write_stock_box(logs)
    out = cli(
        "asset",
        "materialize",
        "-m",
        "metrics_assets.definitions",
        "--select",
        "offspot_indicators",
        "--partition",
        HOUR,
        tmp_path=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert records(pg_warehouse) == EXPECTED_STOCK_HOUR_10
    assert {r["box_id"] for r in pg_warehouse.fetch_all("SELECT box_id FROM offspot_indicator_records")} == {"default"}
    out = cli("asset", "materialize", "-m", "metrics_assets.definitions", "--select", "offspot_kpis", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    kpis = {(r[0], r[2], r[3]): r[4] for r in kpi_rows(pg_warehouse)}
    assert kpis[(2001, "D", "2026-01-05")] == (
        '{"items":[{"package":"Khan videos","visits":1},{"package":"Wikipedia","visits":1}],"totalVisits":2}'
    )
    assert kpis[(2004, "D", "2026-01-05")] == '{"nbMinutesOn":50}'
    assert kpis[(2003, "W", "2026 W02")] == (
        '{"items":[{"package":"EduPi","minutesActivity":10},{"package":"File Manager","minutesActivity":10},'
        '{"package":"Khan videos","minutesActivity":10},{"package":"Wikipedia","minutesActivity":10}],'
        '"totalMinutesActivity":40}'
    )
    assert kpis[(2005, "M", "2026-01")] == '{"filesCreated":4,"filesDeleted":0}'


def test_stock_box_metadata_and_checks(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    write_stock_box(logs)
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    assert records(sqlite_warehouse) == EXPECTED_STOCK_HOUR_10
    meta = materialization_metadata(result)
    assert meta["files_read"] == [
        "metrics-2026-01-05T09-40-00.000.json",
        "metrics-2026-01-05T10-20-00.000.json",
        "metrics.json",
    ]
    assert meta["lines_read"] == 10
    assert meta["lines_skipped_by_reason"]["not_handled_request"] == 1
    # the business figures, as plain numbers for the Plots tab
    assert (meta["home_visits"], meta["usage_minutes"], meta["uptime_minutes"]) == (2, 40, 50)
    assert (meta["shared_files_created"], meta["shared_files_deleted"], meta["boxes_seen"]) == (4, 0, 1)
    assert "50 min" in meta["preview"] and "1 visits" in meta["preview"]
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_log_and_gz_of_the_same_rotation_are_read_once(warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    items = [
        req("2026-01-05 10:05:00", "khan.hotspot", "/"),
        req("2026-01-05 10:06:00", "khan.hotspot", "/"),
        req("2026-01-05 10:07:00", "kiwix.hotspot", "/content/wikipedia_en_all/"),
    ]
    # Caddy leaves both while it compresses; a sync without --delete keeps both
    write_log(logs / "access-2026-01-05T10-30-00.000.log", items)
    write_log(logs / "access-2026-01-05T10-30-00.000.log.gz", items, gz=True)
    # a second pair whose gzip was caught half-written: the plain file is the complete one
    write_log(logs / "access-2026-01-05T10-50-00.000.log", [req("2026-01-05 10:40:00", "khan.hotspot", "/")])
    cut = logs / "access-2026-01-05T10-50-00.000.log.gz"
    write_log(cut, [req("2026-01-05 10:40:00", "khan.hotspot", "/")], gz=True)
    cut.write_bytes(cut.read_bytes()[:-10])
    write_log(logs / "access.log", [])
    result = materialize_hours(warehouse, metrics_home, HOUR)
    visits = [r for r in records(warehouse) if r[0] == 1001]
    # true home visits: Khan 3, Wikipedia 1 (not 6 and 2)
    assert visits == [
        (1001, "package_home_visits", "2026-01-05 10:00", "Khan videos", 3),
        (1001, "package_home_visits", "2026-01-05 10:00", "Wikipedia", 1),
    ]
    meta = materialization_metadata(result)
    assert meta["duplicate_files_skipped"] == 2
    assert meta["duplicate_files"] == {
        "access-2026-01-05T10-30-00.000.log.gz": "access-2026-01-05T10-30-00.000.log",
        "access-2026-01-05T10-50-00.000.log.gz": "access-2026-01-05T10-50-00.000.log",
    }
    assert meta["lines_read"] == 4
    assert meta["files_skipped"] == {}


def test_gz_that_holds_more_than_its_plain_twin_wins(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    items = [req("2026-01-05 10:05:00", "khan.hotspot", "/"), req("2026-01-05 10:06:00", "khan.hotspot", "/")]
    write_log(logs / "metrics-2026-01-05T10-30-00.000.json", items[:1])  # a copy cut short
    write_log(logs / "metrics-2026-01-05T10-30-00.000.json.gz", items, gz=True)
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    assert [r[4] for r in records(sqlite_warehouse) if r[0] == 1001] == [2]
    assert materialization_metadata(result)["duplicate_files"] == {
        "metrics-2026-01-05T10-30-00.000.json": "metrics-2026-01-05T10-30-00.000.json.gz"
    }


def test_folder_with_no_recognised_file_fails_naming_the_settings(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    (logs / "caddy.log").write_text("not the access log\n")
    (logs / "heartbeat.log").write_text(f"{int(ts('2026-01-05 10:00:00'))}\n")
    with pytest.raises(dg.Failure) as error:
        materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    message = str(error.value)
    assert "OFFSPOT_LOG_DIR" in message and "OFFSPOT_LOG_PATTERN" in message and "caddy.log" in message
    assert records(sqlite_warehouse) == []


def test_log_pattern_names_other_files(sqlite_warehouse, metrics_home, offspot_dirs, monkeypatch):
    logs, _ = offspot_dirs
    write_log(
        logs / "proxy-2026-01-05T10-30-00.000.jsonl.gz", [req("2026-01-05 10:05:00", "khan.hotspot", "/")], gz=True
    )
    write_log(logs / "metrics.json", [req("2026-01-05 10:06:00", "khan.hotspot", "/")])
    monkeypatch.setenv("OFFSPOT_LOG_PATTERN", "proxy.jsonl")
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    assert [r[4] for r in records(sqlite_warehouse) if r[0] == 1001] == [1]
    assert materialization_metadata(result)["files_skipped"] == {"metrics.json": "not an access log"}


def test_heartbeat_hour_without_readable_logs_fails_a_check(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    # the box was on from 09:00 but its files only go back to 10:30: older ones rolled away (48 h)
    write_log(logs / "metrics.json", [req("2026-01-05 10:30:00", "khan.hotspot", "/")])
    start = int(ts("2026-01-05 09:00:00"))
    (logs / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(120)))
    result = materialize_hours(sqlite_warehouse, metrics_home, "2026-01-05-09:00", "2026-01-05-10:00")
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "logs_readable"]
    assert not check.passed
    meta = {k: v.value for k, v in check.metadata.items()}
    # 09:00-09:59 (60 minutes) is before the hour of the first line; the hour of the first line
    # counts as covered (as for a new box's first hour), as in what is written
    assert meta["examples"] == [{"box_id": "default", "hour": "2026-01-05 09:00", "heartbeat_minutes": 60}]
    assert "OFFSPOT_LOG_DIR" in check.description and "OFFSPOT_LOG_PATTERN" in check.description
    # 09:00 is older than any log line: left as it was, not written from the heartbeat alone;
    # the range's figures, split by hour, are those of 10:00 (one visit at 10:30)
    event = result.asset_materializations_for_node("offspot_indicators")[0]
    assert event.metadata["hours_left_unwritten"].value == {"default": "[2026-01-05 09:00, 2026-01-05 10:00)"}
    assert event.metadata["figures_by_hour"].value == {
        "2026-01-05 10:00": {"home_visits": 1, "usage_minutes": 10, "uptime_minutes": 60},
    }


def test_a_new_box_first_hour_is_not_a_gap(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    # first boot at 10:00, first request at 10:40, no rotation yet
    write_log(logs / "metrics.json", [req("2026-01-05 10:40:00", "khan.hotspot", "/")])
    start = int(ts("2026-01-05 10:00:00"))
    (logs / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(60)))
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "logs_readable"]
    assert check.passed
    assert [r for r in records(sqlite_warehouse) if r[0] == 1004] == [(1004, "uptime", "2026-01-05 10:00", "", 60)]


def test_heartbeat_hour_covered_by_a_rotation_passes(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    # a file rolled at 08:00 ends where the next one starts: 09:00 is covered though quiet
    write_log(logs / "metrics-2026-01-05T08-00-00.000.json", [req("2026-01-05 07:59:00", "khan.hotspot", "/")])
    write_log(logs / "metrics.json", [req("2026-01-05 10:30:00", "khan.hotspot", "/")])
    start = int(ts("2026-01-05 09:00:00"))
    (logs / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(60)))
    result = materialize_hours(sqlite_warehouse, metrics_home, "2026-01-05-09:00")
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "logs_readable"]
    assert check.passed


def test_lines_without_logger_count_when_they_are_access_lines(sqlite_warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    record = access_record(ts("2026-01-05 10:05:00"), "khan.hotspot", "/")
    del record["logger"]  # as offspot/metrics' own test vectors write them
    write_log(
        logs / "metrics.json",
        [
            line(record).strip(),
            '{"level":"info","ts":1767607600.0,"msg":"serving initial configuration"}',  # no logger, not a request
        ],
    )
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR)
    assert [r[4] for r in records(sqlite_warehouse) if r[0] == 1001] == [1]
    assert materialization_metadata(result)["lines_skipped_by_reason"]["other_logger"] == 1


def _insert(warehouse, rows):
    warehouse.append(
        "offspot_indicator_records",
        [
            {
                "box_id": box,
                "indicator_id": i,
                "indicator_name": INDICATORS[i],
                "period_start": datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=UTC),
                "dimension": d,
                "value": v,
            }
            for box, i, when, d, v in rows
        ],
    )


def test_retention_as_the_box_across_a_month_end(warehouse, metrics_home):
    _insert(
        warehouse,
        [("default", 1004, f"2026-{day} 10:00", "", 5) for day in ("01-25", "01-26", "01-30", "02-01", "02-02")]
        + [("box-b", 1004, f"2026-{day} 10:00", "", 7) for day in ("01-18", "01-25", "01-26")],
    )
    result = materialize_kpis(warehouse, metrics_home)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    rows = {
        (r["box_id"], r["agg_kind"], r["agg_value"]): r["kpi_value"]
        for r in warehouse.fetch_all(
            "SELECT box_id, agg_kind, agg_value, kpi_value FROM offspot_kpis WHERE kpi_id = 2004"
        )
    }
    # default: now is 2026-02-02 10:00 (a Monday, W06). Days kept: 01-27..02-02, so 01-25 and
    # 01-26 go though only 5 days have records. Weeks: W06, W05, W04, W03. Months: 02, 01.
    assert sorted(k[1:] for k in rows if k[0] == "default") == [
        ("D", "2026-01-30"),
        ("D", "2026-02-01"),
        ("D", "2026-02-02"),
        ("M", "2026-01"),
        ("M", "2026-02"),
        ("W", "2026 W04"),
        ("W", "2026 W05"),
        ("W", "2026 W06"),
        ("Y", "2026"),
    ]
    assert rows[("default", "W", "2026 W05")] == '{"nbMinutesOn":15}'  # Mon 26, Fri 30, Sun 1 Feb
    assert rows[("default", "M", "2026-01")] == '{"nbMinutesOn":15}'
    assert rows[("default", "M", "2026-02")] == '{"nbMinutesOn":10}'
    # box-b keeps its own clock (2026-01-26): days 01-20..01-26, so 01-18 goes
    assert sorted(k[1:] for k in rows if k[0] == "box-b" and k[1] == "D") == [("D", "2026-01-25"), ("D", "2026-01-26")]
    assert sorted(k[2] for k in rows if k[0] == "box-b" and k[1] == "W") == ["2026 W03", "2026 W04", "2026 W05"]


def test_partitions_start_is_configurable(monkeypatch):
    import importlib

    from metrics_assets.offspot import assets

    monkeypatch.setenv("OFFSPOT_PARTITIONS_START", "2023-06-01")
    try:
        reloaded = importlib.reload(assets)
        assert reloaded.HOURLY.get_first_partition_key() == "2023-06-01-00:00"
        monkeypatch.setenv("OFFSPOT_PARTITIONS_START", "June 2023")
        with pytest.raises(Exception, match="OFFSPOT_PARTITIONS_START"):
            importlib.reload(assets)
    finally:
        monkeypatch.delenv("OFFSPOT_PARTITIONS_START")
        importlib.reload(assets)


def test_rerun_after_the_box_rolled_the_logs_away_keeps_the_rows(warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    write_stock_box(logs)
    materialize_hours(warehouse, metrics_home, HOUR)
    assert records(warehouse) == EXPECTED_STOCK_HOUR_10
    # two days later the box has deleted those files (roll_keep_for 48h); the sync brings newer ones
    for path in logs.glob("metrics*.json"):
        path.unlink()
    write_log(logs / "metrics-2026-01-07T11-00-00.000.json", [req("2026-01-07 09:12:00", "khan.hotspot", "/")])
    write_log(logs / "metrics.json", [req("2026-01-07 11:30:00", "khan.hotspot", "/")])
    result = materialize_hours(warehouse, metrics_home, HOUR)
    assert records(warehouse) == EXPECTED_STOCK_HOUR_10  # not replaced by nothing
    meta = materialization_metadata(result)
    assert meta["hours_left_unwritten"] == {"default": "[2026-01-05 10:00, 2026-01-05 11:00)"}
    assert meta["dagster/row_count"] == 0 and meta["home_visits"] == 0
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "logs_readable"]
    assert not check.passed  # the heartbeat says the box was on at 10:00: its logs are gone
