"""Every dashboard page in a real headless Chromium (no console error, every chart drawn with
data points, a screenshot under .ci/artifacts/), the page text (units, last materialization),
the bearer token and ``metrics-assets dashboard``."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import httpx
import pytest

from metrics_assets.dashboard.app import plotly_js
from metrics_assets.demo import PROJECT_DAGSTER_YAML
from metrics_assets_tests.test_dashboard.browser import PAGES, check_pages
from metrics_assets_tests.test_dashboard.conftest import live_dashboard
from metrics_assets_tests.test_dashboard.seed import seed

ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"


@pytest.fixture
def instance(metrics_home, monkeypatch):
    """A Dagster instance where the demo keeps it, with one materialization of offspot_kpis."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    folder = metrics_home / "dagster"
    folder.mkdir()
    (folder / "dagster.yaml").write_text(PROJECT_DAGSTER_YAML.read_text())
    with dg.DagsterInstance.from_config(str(folder)) as inst:
        inst.report_runless_asset_event(dg.AssetMaterialization("offspot_kpis"))
        [event] = inst.get_latest_materialization_events([dg.AssetKey("offspot_kpis")]).values()
        yield inst, event.timestamp


def test_every_page_in_chromium(pg_warehouse, instance):
    seed(pg_warehouse)
    with live_dashboard(pg_warehouse) as base:
        reports = check_pages(base, ARTIFACTS / "test")
    assert [r.url.removeprefix(base) for r in reports] == [path for _name, path in PAGES]
    for report in reports:
        assert report.errors == [], report.url
        assert report.empty_charts == [], report.url
        assert report.screenshot.stat().st_size > 10_000
        # everything the page loads comes from the dashboard itself: it works offline
        assert report.requests and all(u.startswith((base, "data:")) for u in report.requests), report.requests
    by_page = {r.url.removeprefix(base): {c["name"]: c["points"] + c["lines"] for c in r.charts} for r in reports}
    # bars and markers drawn per chart, from seed.py: 2 days, 2 owners (+ unattributed), 3 probes...
    assert by_page["/offspot?box=default&kind=D"] == {
        "uptime": 2,
        "total_usage": 2 + 2 + 1,
        "package_popularity": 1,
        "home_visits": 2,
        "shared_files": 4 + 2,
    }
    assert by_page["/offspot?box=fleet&kind=W"] == {
        "uptime": 2,
        "uptime_per_box": 2,
        "total_usage": 2 + 2 + 1,
        "package_popularity": 1,
        "home_visits": 2,
        "shared_files": 4 + 2,
    }
    assert by_page["/storage"] == {"bytes_per_owner": 5 + 3, "gb_days": 2, "drift": 4}
    assert by_page["/probes"] == {
        "most_viewed": 2,
        "least_viewed": 1,
        "rank_changes": 2,
        "daily_views_releases": 2 + 1,
        "release_effect": 2,
    }
    assert by_page["/events"]["events_per_day"] == 2
    assert by_page["/events"]["metrics_per_day"] == 2 + 1
    assert by_page["/events"]["lag_distribution"] >= 3


def test_page_text_has_units_and_last_materialization(sqlite_warehouse, instance):
    _inst, timestamp = instance
    seed(sqlite_warehouse)
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    with live_dashboard(sqlite_warehouse) as base:
        http = httpx.Client(base_url=base, timeout=30)
        offspot = http.get("/offspot").text
        assert f"<code>offspot_kpis</code> {when}" in offspot
        assert "<code>offspot_indicators</code> never" in offspot
        assert "50 %" in offspot and "100 %" in offspot and "hours" in offspot and "minutes" in offspot
        storage = http.get("/storage").text
        assert "<code>usage_snapshot</code> never" in storage
        for text in ("3.750", "2.250", "2.500", "+0.250", "+11.11 %", "-20.00 %", "GB-days", "(GB)"):
            assert text in storage, text
        assert "views" in http.get("/probes").text
        assert "min" in http.get("/events").text
        # the charting library comes from the installed wheel, from this server
        js = http.get("/static/plotly.min.js")
        assert js.status_code == 200 and js.content == plotly_js()
        assert "cdn" not in offspot.lower().replace("plotly.min.js", "")
        # an unknown box is a 404, not an empty page
        assert http.get("/offspot", params={"box": "no-such-box"}).status_code == 404


def test_empty_warehouse_says_no_data(sqlite_warehouse):
    with live_dashboard(sqlite_warehouse) as base:
        http = httpx.Client(base_url=base, timeout=30)
        for path in ("/offspot", "/storage", "/probes", "/events"):
            response = http.get(path)
            assert response.status_code == 200, path
            assert "no data" in response.text, path


def test_bearer_token(sqlite_warehouse):
    with live_dashboard(sqlite_warehouse, token="s3cret") as base:
        http = httpx.Client(base_url=base, timeout=30)
        for path in ("/", "/storage", "/offspot/api/aggregations", "/static/plotly.min.js"):
            assert http.get(path).status_code == 401, path
            assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
            assert http.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
        # a browser: ?token= once sets a cookie and redirects to the same page without it
        first = http.get("/storage", params={"token": "s3cret"})
        assert first.status_code == 303 and first.headers["location"] == "/storage"
        with_params = httpx.get(base + "/probes", params={"product": "a b&c", "token": "s3cret"})
        assert with_params.headers["location"] == "/probes?product=a+b%26c"
        assert http.get("/events").status_code == 200  # the client kept the cookie
        assert httpx.get(base + "/storage", params={"token": "nope"}).status_code == 401


def test_cors_for_a_box_dashboard_served_elsewhere(sqlite_warehouse, monkeypatch):
    origin = "http://box.hotspot"
    with live_dashboard(sqlite_warehouse) as base:  # none by default
        response = httpx.get(base + "/offspot/api/aggregations", headers={"Origin": origin})
        assert "access-control-allow-origin" not in response.headers
    monkeypatch.setenv("OFFSPOT_API_ALLOWED_ORIGINS", f"http://localhost:8080|{origin}")
    with live_dashboard(sqlite_warehouse, token="s3cret") as base:
        preflight = httpx.options(
            base + "/offspot/api/aggregations/D", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        response = httpx.get(
            base + "/offspot/api/aggregations", headers={"Origin": origin, "Authorization": "Bearer s3cret"}
        )
        assert response.headers["access-control-allow-origin"] == origin
        other = httpx.get(
            base + "/offspot/api/aggregations",
            headers={"Origin": "http://evil.example", "Authorization": "Bearer s3cret"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_cli_refuses_to_serve_others_without_a_token(monkeypatch, capsys):
    from metrics_assets.cli import main

    monkeypatch.delenv("METRICS_API_TOKEN", raising=False)
    assert main(["dashboard", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "METRICS_API_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("METRICS_DEPLOYMENT", "production")
    assert main(["dashboard", "--port", "1"]) == 2
    assert "METRICS_API_TOKEN is not set" in capsys.readouterr().err


def test_an_unreadable_instance_is_said_not_hidden(sqlite_warehouse, metrics_home, monkeypatch):
    folder = metrics_home / "broken"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("storage: [this is not a storage config\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    with live_dashboard(sqlite_warehouse) as base:
        page = httpx.get(base + "/events", timeout=30)
    assert page.status_code == 200
    assert "Last materialized: unknown, the Dagster instance could not be read" in page.text
