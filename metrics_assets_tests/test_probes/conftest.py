"""Fixtures of the probes tests: resources on the test warehouse, and small source writers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics_assets.probes.source import GlamDatabase
from metrics_assets.resources import DuckDBQueryEngine
from metrics_assets.resources.object_store import LocalObjectStore


def ts(text: str) -> datetime:
    """'2026-03-10 10:00:00' (UTC) -> aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(at, probe="p1", tracking="t1", action="PROBE_VIEW", product="firefox", **context):
    at = ts(at) if isinstance(at, str) else at
    ctx = {"product": product, "channel": "release", **context} if product is not None else {"channel": "release"}
    return {"action_type": action, "timestamp": at, "context": ctx, "tracking_id": tracking, "probe_name": probe}


def add_usage(warehouse, events: list[dict]) -> None:
    warehouse.append("glam_usage_instrumentation", events)


def add_catalogue(warehouse, product: str, names: list[str], first_seen=None) -> None:
    """Rows of glam_probe_catalogue as the catalogue asset writes them."""
    warehouse.append(
        "glam_probe_catalogue",
        [
            {
                "product": product,
                "probe_name": n,
                "metric_type": "histogram-exponential",
                "source": "test",
                "first_seen": first_seen,
            }
            for n in names
        ],
    )


def add_views(warehouse, rows: list[tuple]) -> None:
    """(day 'YYYY-MM-DD', product, probe, views[, sessions]) PROBE_VIEW rows of probe_views_daily."""
    warehouse.append(
        "probe_views_daily",
        [
            {
                "period_start": ts(r[0] + " 00:00:00"),
                "product": r[1],
                "probe_name": r[2],
                "action_type": "PROBE_VIEW",
                "events": r[3],
                "sessions": r[4] if len(r) > 4 else r[3],
                "tracking_ids": r[4] if len(r) > 4 else r[3],
            }
            for r in rows
        ],
    )


def day_plus(day: str, n: int) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=n)).date().isoformat()


def make_resources(warehouse, metrics_home) -> dict:
    return {
        "warehouse": warehouse,
        "probes_glam": GlamDatabase(),
        "query_engine": DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects")),
        "object_store": LocalObjectStore(root_dir=str(metrics_home / "objects")),
    }


@pytest.fixture
def resources(warehouse, metrics_home):
    return make_resources(warehouse, metrics_home)


@pytest.fixture
def pg_resources(pg_warehouse, metrics_home):
    return make_resources(pg_warehouse, metrics_home)
