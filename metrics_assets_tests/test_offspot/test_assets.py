"""The assets end to end on SQLite and PostgreSQL: a real log folder (or S3 prefix on moto),
real warehouse writes, exact hand-computed rows, reruns leaving both tables identical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from metrics_assets.offspot.automation import (
    offspot_hourly_job,
    offspot_hourly_schedule,
)
from metrics_assets.resources import S3ObjectStore
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
EXPECTED_HOUR_10 = [
    (1001, "package_home_visits", "2026-01-05 10:00", "Khan videos", 1),
    (1001, "package_home_visits", "2026-01-05 10:00", "Wikipedia", 1),
    (1003, "shared_files_operations", "2026-01-05 10:00", "FILE_CREATED", 1),
    (1003, "shared_files_operations", "2026-01-05 10:00", "FILE_DELETED", 2),
    (1004, "uptime", "2026-01-05 10:00", "", 45),
    # request minutes 05, 12, 25, 35, 41 from 10:05 -> slots 0, 0, 2, 3, 3 -> 3 slots
    (1005, "total_usage", "2026-01-05 10:00", "", 30),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "EduPi", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "File Manager", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "Khan videos", 10),
    (1006, "total_usage_by_package", "2026-01-05 10:00", "Wikipedia", 20),  # 10:05 and 10:35
]


def write_box(folder):
    """A rotated gzip file and the live file, each with a truncated last line, a non-log file,
    and a heartbeat every minute from 10:00 to 10:44."""
    write_log(
        folder / "access-2026-01-05T10-30-00.000.log.gz",
        [
            req("2026-01-05 09:58:00", "khan.hotspot", "/"),
            req("2026-01-05 10:05:00", "kiwix.hotspot", "/content/wikipedia_en_all/"),
            req("2026-01-05 10:12:00", "khan.hotspot", "/"),
            req("2026-01-05 10:25:00", "edupi.hotspot", "/api/documents/", method="POST", status=201),
            "not json at all",
        ],
        gz=True,
        tail='{"level":"info","ts":1767609000.0,"logger":"http.lo',
    )
    write_log(
        folder / "access.log",
        [
            req("2026-01-05 10:35:00", "kiwix.hotspot", "/content/wikipedia_en_all/A/Moon"),
            '{"level":"warn","ts":1767609600.0,"logger":"http.handlers.reverse_proxy","msg":"aborting with incomplete response"}',
            req(
                "2026-01-05 10:41:00",
                "files.hotspot",
                "/api/delete",
                method="POST",
                resp_headers={"X-Tfm-Files-Deleted": ["2"]},
            ),
            req("2026-01-05 11:00:00", "khan.hotspot", "/"),
        ],
        tail='{"level":"info","ts":17676',
    )
    (folder / "notes.txt").write_text("not a log\n")
    start = ts("2026-01-05 10:00:10")
    (folder / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(45)))


def test_hour_from_rotated_gzip_and_live_file(warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    write_box(logs)
    result = materialize_hours(warehouse, metrics_home, HOUR)
    assert result.success
    assert records(warehouse) == EXPECTED_HOUR_10
    meta = materialization_metadata(result)
    assert meta["dagster/row_count"] == 10
    assert meta["lines_read"] == 11
    assert meta["lines_skipped_by_reason"] == {
        "not_json": 1,
        "truncated_last_line": 2,
        "other_logger": 1,
        "bad_timestamp": 0,
        "not_handled_request": 0,
    }
    assert meta["files_skipped"] == {"notes.txt": "not an access log"}
    assert meta["uptime_source"] == "heartbeat"
    assert meta["package_warnings"] == ["package #6 (//kiwix.hotspot/viewer#ted_en_all) has no title: skipped"]
    assert "Wikipedia" in meta["preview"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "uptime_at_most_60": True,
        "total_usage_at_most_60": True,
        "no_negative_counts": True,
        "logs_readable": True,
    }

    # rerunning the hour, and the KPIs, leaves both tables identical
    materialize_kpis(warehouse, metrics_home)
    before = (records(warehouse), kpi_rows(warehouse))
    materialize_hours(warehouse, metrics_home, HOUR)
    materialize_kpis(warehouse, metrics_home)
    assert (records(warehouse), kpi_rows(warehouse)) == before


def test_uptime_falls_back_to_access_log_minutes(warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    write_box(logs)
    (logs / "heartbeat.log").unlink()
    result = materialize_hours(warehouse, metrics_home, HOUR)
    # access-log minutes of the hour: 05, 12, 25, 35, 41 (the other logger's 10:40 does not count)
    assert [r for r in records(warehouse) if r[0] == 1004] == [(1004, "uptime", "2026-01-05 10:00", "", 5)]
    assert materialization_metadata(result)["uptime_source"] == "access_log"


def test_range_as_one_run_equals_hours_in_any_order(warehouse, metrics_home, offspot_dirs):
    logs, _ = offspot_dirs
    write_log(
        logs / "access-2026-01-05T10-59-59.000.log.gz",
        [
            req("2026-01-05 09:15:00", "khan.hotspot", "/"),
            req("2026-01-05 10:15:00", "kiwix.hotspot", "/content/wiktionary_fr"),
        ],
        gz=True,
    )
    write_log(
        logs / "access.log",
        [
            req("2026-01-05 11:15:00", "khan.hotspot", "/"),
            req("2026-01-05 11:16:00", "nomad.hotspot", "/"),
            req("2026-01-05 12:30:00", "khan.hotspot", "/"),
        ],
    )
    result = materialize_hours(warehouse, metrics_home, "2026-01-05-09:00", "2026-01-05-11:00")
    assert result.success
    ranged = records(warehouse)
    assert [r for r in ranged if r[0] == 1001] == [
        (1001, "package_home_visits", "2026-01-05 09:00", "Khan videos", 1),
        (1001, "package_home_visits", "2026-01-05 10:00", "Wiktionnaire", 1),
        (1001, "package_home_visits", "2026-01-05 11:00", "Khan videos", 1),  # 12:30 is outside the range
    ]
    assert len(result.asset_materializations_for_node("offspot_indicators")) == 3
    materialize_kpis(warehouse, metrics_home)
    kpis = kpi_rows(warehouse)
    for hour in ("2026-01-05-11:00", "2026-01-05-09:00", "2026-01-05-10:00", "2026-01-05-11:00"):
        materialize_hours(warehouse, metrics_home, hour)
    materialize_kpis(warehouse, metrics_home)
    assert records(warehouse) == ranged
    assert kpi_rows(warehouse) == kpis


def _insert(warehouse, rows):
    from metrics_assets.offspot.indicators import INDICATORS

    warehouse.append(
        "offspot_indicator_records",
        [
            {
                "indicator_id": i,
                "indicator_name": INDICATORS[i],
                "period_start": datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=UTC),
                "dimension": d,
                "value": v,
            }
            for i, when, d, v in rows
        ],
    )


def test_kpis_period_boundaries_iso_weeks_and_totals(warehouse, metrics_home):
    _insert(
        warehouse,
        [
            (1001, "2025-12-31 23:00", "Wikipedia", 2),
            (1005, "2025-12-31 23:00", "", 10),
            (1006, "2025-12-31 23:00", "Wikipedia", 10),
            (1004, "2025-12-31 23:00", "", 30),
            (1001, "2026-01-01 00:00", "Wikipedia", 1),
            (1001, "2026-01-01 00:00", "Khan", 4),
            (1005, "2026-01-01 00:00", "", 20),
            (1006, "2026-01-01 00:00", "Khan", 20),
            (1006, "2026-01-01 00:00", "Wikipedia", 10),
            (1004, "2026-01-01 00:00", "", 60),
            (1003, "2026-01-01 00:00", "FILE_CREATED", 3),
            (1001, "2026-01-11 23:00", "Khan", 1),
            (1004, "2026-01-11 23:00", "", 15),  # Sunday: 2026 W02
            (1001, "2026-01-12 00:00", "Khan", 5),
            (1003, "2026-01-12 00:00", "FILE_DELETED", 2),  # Monday: W03
            (1004, "2026-01-12 00:00", "", 45),
        ],
    )
    result = materialize_kpis(warehouse, metrics_home)
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    kpis = {(r[0], r[2], r[3]): r[4] for r in kpi_rows(warehouse)}
    periods = sorted({(k[1], k[2]) for k in kpis})
    # the box's retention from its newest hour (2026-01-12 00:00): days 01-06..01-12 only, so
    # 2025-12-31 and 2026-01-01 are gone; weeks 2025 W52..2026 W03; months 2025-02..2026-01
    assert periods == [
        ("D", "2026-01-11"),
        ("D", "2026-01-12"),
        ("M", "2025-12"),
        ("M", "2026-01"),
        ("W", "2026 W01"),
        ("W", "2026 W02"),
        ("W", "2026 W03"),
        ("Y", "2025"),
        ("Y", "2026"),
    ]
    assert kpis[(2001, "W", "2026 W01")] == (
        '{"items":[{"package":"Khan","visits":4},{"package":"Wikipedia","visits":3}],"totalVisits":7}'
    )
    assert kpis[(2001, "Y", "2025")] == '{"items":[{"package":"Wikipedia","visits":2}],"totalVisits":2}'
    assert kpis[(2001, "D", "2026-01-11")] == '{"items":[{"package":"Khan","visits":1}],"totalVisits":1}'
    assert kpis[(2001, "D", "2026-01-12")] == '{"items":[{"package":"Khan","visits":5}],"totalVisits":5}'
    # the total is the sum of 1005 (20), not of the items (30)
    assert kpis[(2003, "Y", "2026")] == (
        '{"items":[{"package":"Khan","minutesActivity":20},{"package":"Wikipedia","minutesActivity":10}],'
        '"totalMinutesActivity":20}'
    )
    assert kpis[(2003, "D", "2026-01-11")] == '{"items":[],"totalMinutesActivity":0}'
    assert kpis[(2004, "Y", "2026")] == '{"nbMinutesOn":120}'
    assert kpis[(2004, "Y", "2025")] == '{"nbMinutesOn":30}'
    assert kpis[(2004, "W", "2026 W02")] == '{"nbMinutesOn":15}'
    assert kpis[(2004, "W", "2026 W03")] == '{"nbMinutesOn":45}'
    assert kpis[(2005, "M", "2026-01")] == '{"filesCreated":3,"filesDeleted":2}'
    assert kpis[(2005, "M", "2025-12")] == '{"filesCreated":0,"filesDeleted":0}'
    names = {r[0]: r[1] for r in kpi_rows(warehouse)}
    assert names == {2001: "package_popularity", 2003: "total_usage", 2004: "uptime", 2005: "shared_files"}


def test_top_ten_items(warehouse, metrics_home):
    _insert(warehouse, [(1001, "2026-02-02 10:00", f"P{i:02d}", i) for i in range(1, 13)])
    materialize_kpis(warehouse, metrics_home)
    [value] = [r[4] for r in kpi_rows(warehouse) if r[0] == 2001 and r[2] == "D"]
    items = [f'{{"package":"P{i:02d}","visits":{i}}}' for i in range(12, 2, -1)]
    assert value == '{"items":[' + ",".join(items) + '],"totalVisits":78}'


def test_retention_and_purge(warehouse, metrics_home):
    first = datetime(2025, 1, 1, 12, tzinfo=UTC)
    days = [first + timedelta(days=d) for d in range(434)]  # to 2026-03-10 12:00
    assert days[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    _insert(warehouse, [(1004, f"{d:%Y-%m-%d %H:%M}", "", 1) for d in days])
    result = materialize_kpis(warehouse, metrics_home)
    meta = materialization_metadata(result, "offspot_kpis")
    # newest hour ends 2026-03-10 13:00: records before 2025-03-10 13:00 go (Jan 31 + Feb 28 + Mar 1..10)
    assert meta["indicator_records_purged"] == 69
    assert warehouse.scalar("SELECT count(*) FROM offspot_indicator_records") == 434 - 69
    uptime = {(r[2], r[3]): r[4] for r in kpi_rows(warehouse) if r[0] == 2004}
    assert sorted(k for k in uptime if k[0] == "D") == [("D", f"2026-03-{d:02d}") for d in range(4, 11)]
    assert sorted(k for k in uptime if k[0] == "W") == [("W", f"2026 W{w:02d}") for w in range(8, 12)]
    assert sorted(k for k in uptime if k[0] == "M") == [
        ("M", "2025-04"),
        ("M", "2025-05"),
        ("M", "2025-06"),
        ("M", "2025-07"),
        ("M", "2025-08"),
        ("M", "2025-09"),
        ("M", "2025-10"),
        ("M", "2025-11"),
        ("M", "2025-12"),
        ("M", "2026-01"),
        ("M", "2026-02"),
        ("M", "2026-03"),
    ]
    assert uptime[("Y", "2025")] == '{"nbMinutesOn":365}'  # computed before its first months were purged
    assert uptime[("Y", "2026")] == '{"nbMinutesOn":69}'
    assert uptime[("W", "2026 W11")] == '{"nbMinutesOn":2}'  # Monday 9 and Tuesday 10 March
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    # a rerun after the purge keeps the year 2025 as it was: identical tables
    before = (records(warehouse), kpi_rows(warehouse))
    materialize_kpis(warehouse, metrics_home)
    assert (records(warehouse), kpi_rows(warehouse)) == before


def test_kpis_before_any_indicator_record_are_written_empty_and_say_so(warehouse, metrics_home):
    # a new installation: the KPI assets run before offspot_indicators has written anything
    from metrics_assets.offspot.assets import offspot_fleet_kpis, offspot_kpis

    result = dg.materialize([offspot_kpis, offspot_fleet_kpis], resources={"warehouse": warehouse})
    assert result.success
    for key in ("offspot_kpis", "offspot_fleet_kpis"):
        meta = materialization_metadata(result, key)
        assert (meta["dagster/row_count"], meta["source_empty"], meta["boxes_seen"]) == (0, True, 0)
        assert meta["empty_reason"] == "no row in offspot_indicator_records: materialize offspot_indicators first"
    assert warehouse.scalar("SELECT count(*) FROM offspot_kpis") == 0
    assert warehouse.scalar("SELECT count(*) FROM offspot_fleet_kpis") == 0
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_logs_from_an_object_store_prefix(
    sqlite_warehouse, metrics_home, offspot_dirs, moto_server, tmp_path, monkeypatch
):
    local = tmp_path / "box"
    local.mkdir()
    write_box(local)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket="boxes")
    for path in local.iterdir():
        s3.put_object(Bucket="boxes", Key=f"box-17/logs/{path.name}", Body=path.read_bytes())
    s3.put_object(Bucket="boxes", Key="box-17/logs/older/access.log", Body=b"ignored: a sub-folder\n")
    monkeypatch.setenv("OFFSPOT_LOG_DIR", "s3://boxes/box-17/logs")
    store = S3ObjectStore(s3=S3Resource(endpoint_url=moto_server, region_name="us-east-1"))
    result = materialize_hours(sqlite_warehouse, metrics_home, HOUR, object_store=store)
    assert records(sqlite_warehouse) == EXPECTED_HOUR_10
    assert materialization_metadata(result)["log_location"] == "s3://boxes/box-17/logs/"


def test_missing_packages_file_fails_naming_the_variable(sqlite_warehouse, metrics_home, offspot_dirs):
    _, packages = offspot_dirs
    packages.unlink()
    with pytest.raises(Exception, match="OFFSPOT_PACKAGES_FILE"):
        materialize_hours(sqlite_warehouse, metrics_home, HOUR)


def test_schedule_runs_the_closed_hour_then_the_kpis():
    from metrics_assets.definitions import defs

    job = defs.resolve_job_def("offspot_hourly_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "offspot_indicators",
        "offspot_kpis",
        "offspot_fleet_kpis",
    }
    # The job takes its partitions from its assets, so the schedule is resolved with the definitions.
    schedule = defs.resolve_schedule_def(offspot_hourly_schedule.name)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 1, 5, 11, 5, tzinfo=UTC)
        ) as context,
    ):
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-01-05-10:00"
    assert schedule.cron_schedule == "5 * * * *"
    assert schedule.job_name == offspot_hourly_job.name


def test_hourly_job_runs_the_hour_then_the_kpis(warehouse, metrics_home, offspot_dirs):
    import importlib

    import metrics_assets.definitions as module

    logs, _ = offspot_dirs
    write_box(logs)
    defs = importlib.reload(module).defs  # resources from this test's environment
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("offspot_hourly_job").execute_in_process(partition_key=HOUR, instance=instance)
    assert result.success
    assert records(warehouse) == EXPECTED_HOUR_10
    uptime = [r for r in kpi_rows(warehouse) if r[0] == 2004]
    assert uptime == [
        (2004, "uptime", kind, label, '{"nbMinutesOn":45}')
        for kind, label in (("D", "2026-01-05"), ("M", "2026-01"), ("W", "2026 W02"), ("Y", "2026"))
    ]
