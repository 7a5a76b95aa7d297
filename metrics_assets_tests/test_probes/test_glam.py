"""The probes domain pointed at a database with GLAM's real schema and nothing else.

Where each shape comes from (mozilla/glam, read at commit 3ce48369):
* The database: ``glam_schema.postgres_ddl()``, the final state of GLAM's Django migrations
  0001-0028 (``glam/api/migrations``): ``glam_usage_instrumentation`` with no index on
  ``timestamp``, ``glam_probe``, the ``glam_*_aggregation`` tables and their materialized views.
* Usage rows: ``glam_schema.log_probe_query``, what ``views._log_probe_query`` writes:
  ``PROBE_SEARCH``, the request's ``query`` as context, ``tracking_id = ''``. Desktop queries
  carry no ``product`` (the frontend's legacy desktop query; the view defaults it to firefox).
* ``glam_probe`` rows: ``key`` and ``info`` as ``import_probes.transform`` builds them.
* The Glean probe-info file: the ``GleanMetricsFile`` schema of probe-scraper's
  ``probeinfo_api.yaml`` (``/glean/<v1_name>/metrics``).
* The releases file: product-details ``firefox_history_major_releases.json`` (version -> date).
* A built probe is read back with the SQL of ``get_firefox_aggregations_from_pg`` /
  ``get_glean_aggregations_from_pg`` (``glam_schema.APP_*_READ``), from the materialized view.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from metrics_assets.probes import ASSETS, requests
from metrics_assets.probes.automation import (
    probe_build_job,
    probe_build_requests_sensor,
)
from metrics_assets.probes.glam_schema import (
    APP_DESKTOP_READ,
    APP_GLEAN_READ,
    log_probe_query,
    postgres_ddl,
)
from metrics_assets.probes.source import GlamDatabase, id_range
from metrics_assets.resources.warehouse import dispose_engine, engine_for, normalise_url
from metrics_assets_tests.conftest import PG_SERVER_URL
from metrics_assets_tests.test_probes.conftest import make_resources, ts
from metrics_assets_tests.test_probes.test_aggregates import write_samples

REPO = Path(__file__).resolve().parents[2]
GLAM_TABLES = [
    "glam_usage_instrumentation",
    "glam_probe",
    "glam_desktop_nightly_aggregation",
    "glam_desktop_beta_aggregation",
    "glam_desktop_release_aggregation",
    "glam_fenix_aggregation",
    "glam_fog_aggregation",
]


@pytest.fixture(scope="session")
def glam_url():
    """A PostgreSQL database holding GLAM's tables, made with GLAM's DDL, and nothing else."""
    admin = sa.create_engine(normalise_url(PG_SERVER_URL), isolation_level="AUTOCOMMIT")
    name = f"glam_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    engine = engine_for(url, upgrade=False)
    with engine.begin() as conn:
        for statement in postgres_ddl():
            conn.execute(sa.text(statement))
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def glam(glam_url, monkeypatch):
    engine = engine_for(glam_url, upgrade=False)
    with engine.begin() as conn:
        names = set(sa.inspect(conn).get_table_names())
        tables = [t for t in [*GLAM_TABLES, "probe_build_requests"] if t in names]
        conn.execute(sa.text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY"))
        for table in GLAM_TABLES[2:]:
            conn.execute(sa.text(f"REFRESH MATERIALIZED VIEW view_{table}"))
    monkeypatch.setenv("GLAM_DATABASE_URL", glam_url)
    return engine


def desktop_probe(key: str, name: str, kind: str = "exponential") -> dict:
    """A glam_probe row as import_probes.transform() builds it."""
    return {
        "key": key,
        "info": json.dumps(
            {
                "name": name,
                "apiName": key,
                "description": f"{name} description",
                "type": key.split("/")[0],
                "kind": kind,
                "labels": None,
                "versions": {"nightly": ["60", "136"], "beta": ["60", "135"], "release": ["60", "134"]},
                "record_in_processes": ["main", "content"],
                "optout": {"nightly": True, "beta": True, "release": True},
                "bugs": [1234],
                "active": True,
                "prerelease": False,
            }
        ),
    }


DESKTOP_QUERY = {
    "channel": "nightly",
    "probe": "gc_ms",
    "process": "parent",
    "os": "*",
    "versions": 3,
    "aggregationLevel": "version",
}
FENIX_QUERY = {
    "product": "fenix",
    "app_id": "release",
    "probe": "gfx_paint_time",
    "ping_type": "*",
    "os": "*",
    "versions": 3,
    "aggregationLevel": "version",
}


def seed(glam, home: Path) -> dict[str, str]:
    """GLAM's rows for 2026-03-10 (and one the day before, one after), the probe-info and the
    product-details files; returns the env the CLI needs."""
    with glam.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO glam_probe (key, info) VALUES (:key, :info)"),
            [
                desktop_probe("histogram/GC_MS", "gc_ms"),
                desktop_probe("histogram/CYCLE_COLLECTOR", "cycle_collector"),
                desktop_probe(
                    "scalar/browser.engagement.tab_open_event_count", "browser_engagement_tab_open_event_count", None
                ),
            ],
        )
        day = datetime(2026, 3, 10, tzinfo=UTC)
        log_probe_query(conn, DESKTOP_QUERY, day - timedelta(minutes=5))  # the day before
        for minute in (0, 10, 600):  # gc_ms x3, no product
            log_probe_query(conn, DESKTOP_QUERY, day + timedelta(minutes=minute))
        log_probe_query(
            conn, {**DESKTOP_QUERY, "product": "firefox", "probe": "cycle_collector"}, day + timedelta(hours=3)
        )
        for hour in (1, 23):  # fenix x2
            log_probe_query(conn, FENIX_QUERY, day + timedelta(hours=hour))
        log_probe_query(conn, DESKTOP_QUERY, day + timedelta(days=1, minutes=1))  # the day after
    probeinfo = home / "probeinfo"
    probeinfo.mkdir()
    (probeinfo / "fenix.json").write_text(
        json.dumps(
            {
                "gfx.paint_time": {
                    "name": "gfx.paint_time",
                    "type": "timing_distribution",
                    "in-source": True,
                    "history": [
                        {
                            "type": "timing_distribution",
                            "description": "Paint time.",
                            "send_in_pings": ["metrics"],
                            "bugs": [1],
                            "dates": {"first": "2026-03-05 10:00:00", "last": "2026-03-10 10:00:00"},
                        }
                    ],
                },
                "app.opened": {
                    "name": "app.opened",
                    "type": "counter",
                    "in-source": True,
                    "history": [
                        {
                            "type": "counter",
                            "description": "Opened.",
                            "dates": {"first": "2020-01-01 00:00:00", "last": "2026-03-10 00:00:00"},
                        }
                    ],
                },
            }
        )
    )
    releases = home / "firefox_history_major_releases.json"
    releases.write_text(json.dumps({"1.0": "2004-11-09", "135.0": "2026-03-03", "136.0": "2026-03-31"}))
    return {"GLAM_PROBEINFO_PATH": str(probeinfo), "GLAM_RELEASES_PATH": str(releases), "PROBES_AS_OF": "2026-03-10"}


def cli(home: Path, env: dict[str, str], *args: str) -> None:
    full = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(home / "dagster"), **env}
    (home / "dagster").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "metrics_assets.definitions", *args],
        env=full,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_asset_materializes_from_glam_as_it_is(glam, pg_warehouse, metrics_home, monkeypatch):
    env = {
        **seed(glam, metrics_home),
        "GLAM_DATABASE_URL": str(glam.url.render_as_string(hide_password=False)),
        "METRICS_WAREHOUSE_URL": pg_warehouse.url,
        "PROBES_HOT_MIN_VIEWS": "2",
    }
    cli(metrics_home, env, "--select", "probe_views_daily", "--partition", "2026-03-10")
    views = {
        (r["product"], r["probe_name"], r["action_type"]): (
            r["events"],
            r["sessions"],
            r["tracking_ids"],
            r["tracked_events"],
        )
        for r in pg_warehouse.fetch_all("SELECT * FROM probe_views_daily")
    }
    # By hand: 3 gc_ms fetches without product (GLAM's default product, firefox), 1 with;
    # 2 fenix; the rows of 03-09 23:55 and 03-11 are other days. tracking_id '' = no session.
    assert views == {
        ("firefox", "gc_ms", "PROBE_SEARCH"): (3, 0, 0, 0),
        ("firefox", "cycle_collector", "PROBE_SEARCH"): (1, 0, 0, 0),
        ("fenix", "gfx_paint_time", "PROBE_SEARCH"): (2, 0, 0, 0),
    }
    cli(
        metrics_home,
        env,
        "--select",
        "glam_probe_catalogue,product_releases,probe_popularity,release_correlation,probes_to_build",
    )
    catalogue = {
        (r["product"], r["probe_name"]): (r["metric_type"], r["source"], r["first_seen"] and str(r["first_seen"]))
        for r in pg_warehouse.fetch_all("SELECT * FROM glam_probe_catalogue")
    }
    assert catalogue == {
        ("firefox", "gc_ms"): ("histogram-exponential", "glam_probe", None),
        ("firefox", "cycle_collector"): ("histogram-exponential", "glam_probe", None),
        ("firefox", "browser_engagement_tab_open_event_count"): ("scalar", "glam_probe", None),
        ("fenix", "gfx_paint_time"): ("timing_distribution", "probe-info:fenix.json", "2026-03-05"),
        ("fenix", "app_opened"): ("counter", "probe-info:fenix.json", "2020-01-01"),
    }
    week = {
        (r["product"], r["probe_name"]): (r["views"], r["rank"])
        for r in pg_warehouse.fetch_all("SELECT * FROM probe_popularity WHERE window_days = 7")
    }
    assert week == {
        ("firefox", "gc_ms"): (3, 1),
        ("firefox", "cycle_collector"): (1, 2),
        ("firefox", "browser_engagement_tab_open_event_count"): (0, 3),
        ("fenix", "gfx_paint_time"): (2, 1),
        ("fenix", "app_opened"): (0, 2),
    }
    hot = {
        (r["product"], r["probe_name"]): r["reason"] for r in pg_warehouse.fetch_all("SELECT * FROM probes_to_build")
    }
    # >= 2 views in 7 days; gfx_paint_time also first seen 03-05, within PROBES_NEW_DAYS (14).
    assert hot == {("firefox", "gc_ms"): "hot", ("fenix", "gfx_paint_time"): "hot,new"}
    releases = {
        (r["product"], r["version"]): str(r["release_date"])
        for r in pg_warehouse.fetch_all("SELECT * FROM product_releases")
    }
    assert releases[("firefox", "135.0")] == "2026-03-03" and releases[("fog", "135.0")] == "2026-03-03"
    assert len(releases) == 6
    correlation = {
        (r["product"], r["version"], r["probe_name"]): (r["views_after"], r["daily_views_after"], r["complete"])
        for r in pg_warehouse.fetch_all("SELECT * FROM release_correlation")
    }
    # 135.0 (03-03): after window 03-03..03-10 (cut at the as-of day: 8 days); 136.0 is after it.
    assert correlation == {
        ("firefox", "135.0", "gc_ms"): (3, 3 / 8, False),
        ("firefox", "135.0", "cycle_collector"): (1, 1 / 8, False),
        ("firefox", "135.0", "*"): (4, 4 / 8, False),
        ("fog", "135.0", "*"): (0, 0.0, False),
    }

    # A build on request: the app inserts into probe_build_requests in its own database.
    write_samples(
        metrics_home,
        "2026-03-10",
        [
            ("firefox", "nightly", "Windows", "136", "gc_ms", "c1", 1.0),
            ("firefox", "nightly", "Windows", "136", "gc_ms", "c1", 3.0),
            ("firefox", "nightly", "Linux", "136", "gc_ms", "c2", 10.0),
            ("fenix", "release", "Android", "135", "gfx_paint_time", "f1", 4.0),
        ],
    )
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-10")
    monkeypatch.setenv("PROBES_SAMPLE_DAYS", "7")
    monkeypatch.setenv("PROBES_HISTOGRAM_BUCKETS", "2")
    resources = {
        **make_resources(pg_warehouse, metrics_home),
        "probes_glam": GlamDatabase(url=env["GLAM_DATABASE_URL"]),
    }
    # Rows of gc_ms already in the app's table, as GLAM's import_desktop_aggs COPYs them (its
    # CSV columns: the model's fields but id): the ETL's summed_histogram of the parent process
    # and its per-build row (build ids are 14 digits), outside what a build writes, stay; a
    # previous build's row for an os without samples now (Darwin) is replaced away.
    with glam.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO glam_desktop_nightly_aggregation (version, os, build_id, process, metric, metric_key, "
                "client_agg_type, metric_type, total_users, histogram, percentiles, total_sample, non_norm_histogram, "
                "non_norm_percentiles) VALUES "
                "(136, '*', '*', 'parent', 'gc_ms', '', 'summed_histogram', 'histogram-exponential', 7, '{}', '{}', 9, '{}', '{}'), "
                "(136, '*', '20260301123456', '*', 'gc_ms', '', 'avg', 'histogram-exponential', 5, '{}', '{}', 5, '{}', '{}'), "
                "(136, 'Darwin', '*', '*', 'gc_ms', '', 'avg', 'histogram-exponential', 4, '{}', '{}', 4, '{}', '{}')"
            )
        )
    with glam.begin() as conn:
        requests.ensure_requests_table(glam)
        conn.execute(
            sa.text(
                "INSERT INTO probe_build_requests (product, probe_name) VALUES "
                "('firefox', 'gc_ms'), ('fenix', 'gfx_paint_time'), ('firefox', 'nope')"
            )
        )
    with dg.instance_for_test() as instance:
        _, runs = tick_and_run(instance, resources)
        assert len(runs) == 2 and all(r.success for r in runs)
    with glam.connect() as conn:
        answers = {
            r.probe_name: (r.status, r.error)
            for r in conn.execute(sa.text("SELECT probe_name, status, error FROM probe_build_requests"))
        }
    assert answers["gc_ms"] == ("SUCCEEDED", None) and answers["gfx_paint_time"] == ("SUCCEEDED", None)
    assert answers["nope"][0] == "FAILED"

    # Read back exactly as the app serves POST /api/v1/data/ from PostgreSQL.
    with glam.connect() as conn:
        served = [
            dict(r._mapping)
            for r in conn.execute(sa.text(APP_DESKTOP_READ.format(channel="nightly")), {"probe": "gc_ms", "os": "*"})
        ]
        windows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(APP_DESKTOP_READ.format(channel="nightly")), {"probe": "gc_ms", "os": "Windows"}
            )
        ]
        fenix = [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(APP_GLEAN_READ.format(product="fenix", build_filter="build_id = '*'")),
                {"app_id": "release", "probe": "gfx_paint_time", "ping_type": "*", "os": "*", "versions": 3},
            )
        ]
    with glam.connect() as conn:
        kept = sorted(
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT os, build_id, process, client_agg_type, total_users FROM glam_desktop_nightly_aggregation "
                    "WHERE metric = 'gc_ms' AND NOT (process = '*' AND build_id = '*' AND client_agg_type = 'avg')"
                )
            )
        )
        oses = {
            r[0]
            for r in conn.execute(sa.text("SELECT os FROM glam_desktop_nightly_aggregation WHERE metric = 'gc_ms'"))
        }
    assert kept == [("*", "*", "parent", "summed_histogram", 7), ("*", "20260301123456", "*", "avg", 5)]
    assert "Darwin" not in oses
    served = [r for r in served if r["process"] == "*"]  # the ETL's parent-process row is served beside it
    assert len(served) == 1
    row = served[0]
    # Client means: c1 = 2.0, c2 = 10.0. Two buckets over [2, 10]: [2, 6) one client, [6, 10] one.
    assert (
        row["version"],
        row["os"],
        row["build_id"],
        row["process"],
        row["metric_key"],
        row["client_agg_type"],
        row["metric_type"],
        row["total_users"],
        row["total_sample"],
    ) == (136, "*", "*", "*", "", "avg", "histogram-exponential", 2, 3)
    assert json.loads(row["histogram"]) == {"2": 0.5, "6": 0.5}
    assert json.loads(row["non_norm_histogram"]) == {"2": 1, "6": 1}
    assert json.loads(row["percentiles"]) == {"5": 2.4, "25": 4.0, "50": 6.0, "75": 8.0, "95": 9.6}
    assert windows[0]["total_users"] == 1 and json.loads(windows[0]["histogram"]) == {"2": 1.0}
    assert [(r["version"], r["total_users"], json.loads(r["percentiles"])["50"]) for r in fenix] == [(135, 1, 4.0)]


def tick_and_run(instance, resources):
    result = probe_build_requests_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    if isinstance(result, dg.SkipReason):
        return result, []
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = dg.Definitions(assets=ASSETS, jobs=[probe_build_job], resources=resources).resolve_job_def("probe_build_job")
    runs = [
        job.execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags, raise_on_error=False)
        for r in result.run_requests
    ]
    return result, runs


def test_a_day_is_read_as_a_primary_key_range(glam):
    with glam.begin() as conn:
        for minute in range(0, 3 * 24 * 60, 90):  # three days, every 90 minutes
            log_probe_query(conn, DESKTOP_QUERY, datetime(2026, 3, 9, tzinfo=UTC) + timedelta(minutes=minute))
    first, last = id_range(glam, ts("2026-03-10 00:00:00"), ts("2026-03-11 00:00:00"))
    # ids 1..48; 03-10 holds ids 17..32; widened by ID_ORDER_SLACK (10 min), 33 (03-11 00:00) is in too.
    assert (first, last) == (17, 34)
    assert id_range(glam, ts("2026-03-20 00:00:00"), ts("2026-03-21 00:00:00")) == (49, 49)


def test_catalogue_dates_new_desktop_probes_and_releases_come_from_a_file_or_s3(
    glam, warehouse, metrics_home, monkeypatch
):
    from metrics_assets.probes.assets import glam_probe_catalogue, product_releases

    resources = {
        **make_resources(warehouse, metrics_home),
        "probes_glam": GlamDatabase(url=str(glam.url.render_as_string(hide_password=False))),
    }
    monkeypatch.delenv("GLAM_PROBEINFO_PATH", raising=False)
    monkeypatch.delenv("GLAM_RELEASES_PATH", raising=False)
    with glam.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO glam_probe (key, info) VALUES (:key, :info)"),
            [desktop_probe("histogram/GC_MS", "gc_ms")],
        )
    first = dg.materialize([glam_probe_catalogue, product_releases], resources=resources)
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in first.get_asset_materialization_events()}
    assert "GLAM_PROBEINFO_PATH is unset" in meta["glam_probe_catalogue"]["glean_source"].value
    assert "GLAM_RELEASES_PATH is unset" in meta["product_releases"]["source"].value
    assert warehouse.scalar("SELECT count(*) FROM product_releases") == 0
    # A desktop probe that appears in a later catalogue is dated that day (so it counts as new);
    # those of the first catalogue stay undated (they are not all new).
    with glam.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO glam_probe (key, info) VALUES (:key, :info)"),
            [desktop_probe("histogram/NEW_ONE", "new_one")],
        )
    key = "product-details/firefox_history_major_releases.json"
    target = metrics_home / "objects" / "lake" / key
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"135.0": "2026-03-03", "136.0": "not a date"}))
    monkeypatch.setenv("GLAM_RELEASES_PATH", f"s3://lake/{key}")
    second = dg.materialize([glam_probe_catalogue, product_releases], resources=resources)
    dated = {
        r["probe_name"]: r["first_seen"]
        for r in warehouse.fetch_all("SELECT probe_name, first_seen FROM glam_probe_catalogue")
    }
    assert dated["gc_ms"] is None and str(dated["new_one"]) == datetime.now(UTC).date().isoformat()
    assert {
        (r["product"], r["version"], str(r["release_date"]))
        for r in warehouse.fetch_all("SELECT * FROM product_releases")
    } == {("firefox", "135.0", "2026-03-03"), ("fog", "135.0", "2026-03-03")}
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in second.get_asset_materialization_events()}
    assert meta["product_releases"]["skipped"].value == {"bad_date": 1}
    assert meta["glam_probe_catalogue"]["probes_new"].value == 1
    monkeypatch.setenv("GLAM_RELEASES_PATH", str(metrics_home / "nowhere.json"))
    failed = dg.materialize([product_releases], resources=resources, raise_on_error=False)
    assert not failed.success
    assert (
        "no such file or folder; fix the path or unset it"
        in failed.get_step_failure_events()[0].step_failure_data.error.to_string()
    )
