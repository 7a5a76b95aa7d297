"""A fleet of boxes under OFFSPOT_FLEET_ROOT: per-box and fleet KPIs, a stale box, a box
whose folder appears later and is picked up by the uploads sensor. Hand-computed.

Each box folder is what a box syncs (``rsync -a /data/log/caddy/ <root>/<box_id>/`` plus its
``packages.yaml``): ``metrics.json`` as the stock reverse proxy writes it (see
test_stock_box.py for where that shape comes from) and ``heartbeat.log``.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from metrics_assets.offspot.assets import (
    offspot_fleet_kpis,
    offspot_indicators,
    offspot_kpis,
)
from metrics_assets.offspot.automation import offspot_uploads_sensor
from metrics_assets.resources import LocalObjectStore
from metrics_assets_tests.test_offspot.conftest import (
    PACKAGES,
    materialization_metadata,
    req,
    resources,
    ts,
    write_log,
)


def box(root, name, lines, heartbeat_from, minutes):
    folder = root / name
    write_log(folder / "metrics.json", lines)
    (folder / "packages.yaml").write_text(PACKAGES)
    start = int(ts(heartbeat_from))
    (folder / "heartbeat.log").write_text("".join(f"{start + 60 * m}\n" for m in range(minutes)))


@pytest.fixture
def fleet(metrics_home, monkeypatch):
    root = metrics_home / "fleet"
    box(
        root,
        "box-a",
        [
            req("2026-01-05 10:05:00", "kiwix.hotspot", "/content/wikipedia_en_all/"),
            req("2026-01-05 10:20:00", "khan.hotspot", "/"),
        ],
        "2026-01-05 10:00:00",
        60,
    )
    box(
        root,
        "box-b",
        [
            req("2026-01-05 10:10:00", "kiwix.hotspot", "/content/wikipedia_en_all"),
            req("2026-01-05 10:40:00", "edupi.hotspot", "/api/documents/", method="POST", status=201),
        ],
        "2026-01-05 10:00:00",
        30,
    )
    # box-c stopped sending on 3 January
    box(root, "box-c", [req("2026-01-03 08:15:00", "khan.hotspot", "/")], "2026-01-03 08:00:00", 45)
    (root / "README.txt").write_text("not a box\n")
    monkeypatch.setenv("OFFSPOT_FLEET_ROOT", str(root))
    return root


def run_job(warehouse, metrics_home, first, last):
    """What the sensor's run request runs: offspot_hourly_job's assets over the range, one run."""
    res = resources(warehouse, metrics_home)
    return dg.materialize(
        [offspot_indicators, offspot_kpis, offspot_fleet_kpis],
        resources=res,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def fleet_rows(warehouse):
    return {
        (r["kpi_id"], r["agg_kind"], r["agg_value"]): (r["kpi_value"], r["boxes"], r["per_box_uptime"])
        for r in warehouse.fetch_all("SELECT * FROM offspot_fleet_kpis")
    }


def box_rows(warehouse):
    return {
        (r["box_id"], r["kpi_id"], r["agg_kind"], r["agg_value"]): r["kpi_value"]
        for r in warehouse.fetch_all("SELECT box_id, kpi_id, agg_kind, agg_value, kpi_value FROM offspot_kpis")
    }


def sensor_tick(metrics_home, cursor):
    store = LocalObjectStore(root_dir=str(metrics_home / "objects"))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"object_store": store})
        result = offspot_uploads_sensor(context)
    return result


def ranges_of(result):
    return [
        (
            r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"],
            r.tags["offspot/boxes"],
        )
        for r in (result.run_requests or [])
    ]


def test_three_boxes_one_stale_and_one_added_later(warehouse, metrics_home, fleet):
    # the sensor's first look: every file is new; the hours they touch, as runs of consecutive hours
    first = sensor_tick(metrics_home, None)
    assert ranges_of(first) == [
        ("2026-01-03-08:00", "2026-01-03-08:00", "box-c"),
        ("2026-01-05-10:00", "2026-01-05-10:00", "box-a,box-b"),
    ]
    for start, end, _ in ranges_of(first):
        assert run_job(warehouse, metrics_home, start, end).success
    again = sensor_tick(metrics_home, first.cursor)
    assert ranges_of(again) == [] and again.skip_reason

    fleet_kpis = fleet_rows(warehouse)
    # day 2026-01-05: Wikipedia a 10:05 + b 10:10, Khan a 10:20
    assert fleet_kpis[(2001, "D", "2026-01-05")][:2] == (
        '{"items":[{"package":"Wikipedia","visits":2},{"package":"Khan videos","visits":1}],"totalVisits":3}',
        2,
    )
    # activity: a 05, 20 from 05 -> slots 0, 1 -> 20; b 10, 40 -> slots 0, 3 -> 20. Per package:
    # Wikipedia 10 (a) + 10 (b), Khan 10, EduPi 10
    assert fleet_kpis[(2003, "D", "2026-01-05")][0] == (
        '{"items":[{"package":"Wikipedia","minutesActivity":20},{"package":"EduPi","minutesActivity":10},'
        '{"package":"Khan videos","minutesActivity":10}],"totalMinutesActivity":40}'
    )
    # uptime in box-minutes: a 60 + b 30; c's 45 on the 3rd; the year: 135 over 3 boxes
    value, boxes, per_box = fleet_kpis[(2004, "D", "2026-01-05")]
    assert (value, boxes) == ('{"nbMinutesOn":90}', 2)
    assert json.loads(per_box) == [
        {"box": "box-a", "nbMinutesOn": 60, "lastSeen": "2026-01-05T11:00:00Z"},
        {"box": "box-b", "nbMinutesOn": 30, "lastSeen": "2026-01-05T11:00:00Z"},
    ]
    value, boxes, per_box = fleet_kpis[(2004, "Y", "2026")]
    assert (value, boxes) == ('{"nbMinutesOn":135}', 3)
    assert json.loads(per_box)[2] == {"box": "box-c", "nbMinutesOn": 45, "lastSeen": "2026-01-03T09:00:00Z"}
    assert fleet_kpis[(2005, "W", "2026 W02")][0] == '{"filesCreated":1,"filesDeleted":0}'
    assert fleet_kpis[(2001, "D", "2026-01-05")][2] is None  # per-box uptime only on uptime rows

    # each box's own KPIs, each on its own clock (box-c's days stay those around the 3rd)
    per_box = box_rows(warehouse)
    assert per_box[("box-a", 2001, "D", "2026-01-05")] == (
        '{"items":[{"package":"Khan videos","visits":1},{"package":"Wikipedia","visits":1}],"totalVisits":2}'
    )
    assert per_box[("box-b", 2004, "D", "2026-01-05")] == '{"nbMinutesOn":30}'
    assert per_box[("box-c", 2004, "D", "2026-01-03")] == '{"nbMinutesOn":45}'
    assert {k[0] for k in per_box} == {"box-a", "box-b", "box-c"}

    # box-c is stale: last seen 2026-01-03 09:00, 50 h behind the fleet's 2026-01-05 11:00
    result = dg.materialize([offspot_fleet_kpis], resources=resources(warehouse, metrics_home))
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["fleet_kpis_agree_with_indicators"].passed
    stale = checks["no_stale_box"]
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert stale.metadata["stale"].value == {"box-c": "2026-01-03T09:00:00+00:00"}
    meta = materialization_metadata(result, "offspot_fleet_kpis")
    assert (meta["boxes_seen"], meta["boxes_stale"], meta["latest_day_home_visits"]) == (3, 1, 3)
    # the preview in people's units, each value on its own row
    assert "| uptime | D | 2026-01-05 | 1 h 30 min on |" in meta["preview"]
    assert "| package_popularity | D | 2026-01-05 | 3 visits (Wikipedia 2, Khan videos 1) |" in meta["preview"]

    # a new box's folder appears, with that same hour: the sensor asks for exactly that hour
    box(fleet, "box-d", [req("2026-01-05 10:30:00", "khan.hotspot", "/")], "2026-01-05 10:30:00", 30)
    later = sensor_tick(metrics_home, again.cursor)
    assert ranges_of(later) == [("2026-01-05-10:00", "2026-01-05-10:00", "box-d")]
    assert run_job(warehouse, metrics_home, "2026-01-05-10:00", "2026-01-05-10:00").success
    fleet_kpis = fleet_rows(warehouse)
    assert fleet_kpis[(2001, "D", "2026-01-05")][:2] == (
        '{"items":[{"package":"Khan videos","visits":2},{"package":"Wikipedia","visits":2}],"totalVisits":4}',
        3,
    )
    assert fleet_kpis[(2004, "D", "2026-01-05")][0] == '{"nbMinutesOn":120}'
    assert box_rows(warehouse)[("box-d", 2004, "D", "2026-01-05")] == '{"nbMinutesOn":30}'

    # the live file grows by a line at 12:10: only hours from the last one seen in it (10:00) on
    write_log(
        fleet / "box-a" / "metrics.json",
        [
            req("2026-01-05 10:05:00", "kiwix.hotspot", "/content/wikipedia_en_all/"),
            req("2026-01-05 10:20:00", "khan.hotspot", "/"),
            req("2026-01-05 12:10:00", "khan.hotspot", "/"),
        ],
    )
    grown = sensor_tick(metrics_home, later.cursor)
    assert ranges_of(grown) == [
        ("2026-01-05-10:00", "2026-01-05-10:00", "box-a"),
        ("2026-01-05-12:00", "2026-01-05-12:00", "box-a"),
    ]


def test_a_box_folder_without_logs_fails_the_check_not_the_run(sqlite_warehouse, metrics_home, fleet):
    (fleet / "box-e").mkdir()
    (fleet / "box-e" / "packages.yaml").write_text(PACKAGES)
    result = dg.materialize(
        [offspot_indicators], partition_key="2026-01-05-10:00", resources=resources(sqlite_warehouse, metrics_home)
    )
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "logs_readable"]
    assert not check.passed and check.metadata["boxes_without_logs"].value == ["box-e"]
    assert "OFFSPOT_FLEET_ROOT" in check.description and "OFFSPOT_LOG_PATTERN" in check.description
    meta = materialization_metadata(result)
    assert meta["boxes_seen"] == 2 and meta["home_visits"] == 3
    assert sorted(meta["boxes_written"]) == ["box-a", "box-b", "box-c"]
    assert meta["hours_left_unwritten"] == {"box-e": "[2026-01-05 10:00, 2026-01-05 11:00)"}


def test_fleet_root_on_an_object_store(sqlite_warehouse, metrics_home, fleet, moto_server, monkeypatch):
    import boto3
    from dagster_aws.s3 import S3Resource

    from metrics_assets.resources import S3ObjectStore

    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket="offspot-logs")
    for path in sorted(fleet.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket="offspot-logs", Key=f"fleet/{path.relative_to(fleet)}", Body=path.read_bytes())
    s3.put_object(Bucket="offspot-logs", Key="fleet/box-a/old/metrics.json", Body=b"a sub-folder: not read\n")
    monkeypatch.setenv("OFFSPOT_FLEET_ROOT", "s3://offspot-logs/fleet")
    store = S3ObjectStore(s3=S3Resource(endpoint_url=moto_server, region_name="us-east-1"))
    result = dg.materialize(
        [offspot_indicators],
        partition_key="2026-01-05-10:00",
        resources={"warehouse": sqlite_warehouse, "object_store": store},
    )
    meta = materialization_metadata(result)
    assert (meta["home_visits"], meta["uptime_minutes"], meta["boxes_seen"]) == (3, 90, 2)
    assert meta["files_skipped"] == {}
    visits = sqlite_warehouse.fetch_all(
        "SELECT box_id, dimension, value FROM offspot_indicator_records WHERE indicator_id = 1001 ORDER BY 1, 2"
    )
    assert [tuple(r.values()) for r in visits] == [
        ("box-a", "Khan videos", 1),
        ("box-a", "Wikipedia", 1),
        ("box-b", "Wikipedia", 1),
    ]
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources={"object_store": store}) as context,
    ):
        requests = offspot_uploads_sensor(context).run_requests
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["offspot/boxes"]) for r in requests] == [
        ("2026-01-03-08:00", "box-c"),
        ("2026-01-05-10:00", "box-a,box-b"),
    ]


def test_sensor_leaves_the_open_hour_for_later(metrics_home, offspot_dirs):
    from datetime import UTC, datetime, timedelta

    from metrics_assets.offspot.automation import offspot_hourly_job

    logs, _ = offspot_dirs
    now = datetime.now(UTC)
    closed = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    (logs / "heartbeat.log").write_text(f"{int(closed.timestamp()) + 30}\n{int(now.timestamp())}\n")
    write_log(logs / "metrics.json", [])
    first = sensor_tick(metrics_home, None)
    key = f"{closed:%Y-%m-%d-%H:00}"
    assert [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in first.run_requests
    ] == [(key, key)]
    # the heartbeat's next read starts at the hour still open
    [_, _, since] = json.loads(first.cursor)["files"]["default/heartbeat.log"]
    assert since == int(now.timestamp() // 3600)
    # runs of the hourly job (schedule and sensor) queue one at a time on this tag (dagster.yaml)
    assert offspot_hourly_job.tags["offspot/writes"] == "offspot_indicator_records"
