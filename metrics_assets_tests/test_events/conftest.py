"""Fixtures for the events tests: a small generated lake, and a plain-Python reference that
reads the same files line by line (no SQL) to compute what the assets must produce."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrics_assets.events.demo import write_lake

START = datetime(2026, 1, 5, 0, tzinfo=UTC)
HOURS = 30  # a full day plus some hours of the next


@dataclass
class Line:
    version: str
    folder_hour: datetime  # the arrival folder's hour
    record: dict | None  # None: not JSON


def read_lines(objects_dir: Path, bucket: str = "lake", prefix: str = "events") -> list[Line]:
    out = []
    for path in sorted((objects_dir / bucket / prefix).rglob("*.json.gz")):
        parts = dict(p.split("=") for p in path.parts if "=" in p)
        folder_hour = datetime(int(parts["year"]), int(parts["month"]), int(parts["day"]), int(parts["hour"]), tzinfo=UTC)
        version = path.relative_to(objects_dir / bucket / prefix).parts[0]
        with gzip.open(path, "rt") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                out.append(Line(version, folder_hour, record))
    return out


def _iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def normalise(line: Line) -> dict | None:
    """One line as (customer, service, event type, created/arrived ms, resource, data); None if malformed."""
    r = line.record
    if not isinstance(r, dict):
        return None
    if line.version == "v0":
        data = r.get("data") or {}
        return {
            "customer_id": r.get("customerid"), "service": r.get("servicename") or r.get("service"),
            "event_type": data.get("event"), "created_ms": r.get("createdtimestamp"),
            "arrived_ms": r.get("arrivaltimestamp"), "resource": (r.get("resourceid") or "").strip() or None,
            "data": data, "version": "v0",
        }
    env = r.get("envelope") or {}
    return {
        "customer_id": env.get("customerId"), "service": (env.get("service") or {}).get("name"),
        "event_type": r.get("eventType"), "created_ms": _iso_ms(env.get("createdAt")),
        "arrived_ms": _iso_ms(env.get("arrivedAt")), "resource": (env.get("resourceId") or "").strip() or None,
        "data": r.get("data") or {}, "version": "v1",
    }


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def in_window(lines, start: datetime, end: datetime, lateness_hours: int = 1):
    """Dated events created in [start, end), from the folders [start, end + lateness)."""
    last_folder = end + timedelta(hours=lateness_hours)
    for line in lines:
        if not (start <= line.folder_hour < last_folder):
            continue
        event = normalise(line)
        if event and event["created_ms"] is not None and _ms(start) <= event["created_ms"] < _ms(end):
            yield event


def reference_rollups(lines, start: datetime, end: datetime, lateness_hours: int = 1) -> dict:
    groups: dict[tuple, dict] = {}
    for e in in_window(lines, start, end, lateness_hours):
        hour = datetime.fromtimestamp(e["created_ms"] // 3_600_000 * 3600, UTC)
        key = (hour, e["customer_id"] or 0, e["service"] or "", e["event_type"] or "", e["version"])
        g = groups.setdefault(key, {"event_count": 0, "resources": set(), "lags": []})
        g["event_count"] += 1
        if e["resource"]:
            g["resources"].add(e["resource"])
        g["lags"].append((e["arrived_ms"] - e["created_ms"]) / 1000.0)
    return {
        k: (g["event_count"], len(g["resources"]), round(min(g["lags"]), 3), round(max(g["lags"]), 3))
        for k, g in groups.items()
    }


def reference_skips(lines, start: datetime, end: datetime) -> dict[str, int]:
    counts = Counter({"malformed_json": 0, "missing_created_time": 0})
    for line in lines:
        if start <= line.folder_hour < end:
            event = normalise(line)
            if event is None:
                counts["malformed_json"] += 1
            elif event["created_ms"] is None:
                counts["missing_created_time"] += 1
    return dict(counts)


def reference_metrics(lines, day: datetime, lateness_hours: int = 1) -> dict[tuple, int]:
    """{(metric_name, metric_event as dict-items tuple, requester): value} for one UTC day."""
    out: dict[tuple, int] = defaultdict(int)
    for e in in_window(lines, day, day + timedelta(days=1), lateness_hours):
        d = e["data"]
        if e["service"] == "auth0" and e["event_type"] == "login" and d.get("type") == "s" and d.get("user_id"):
            out[("logins", (), d["user_id"])] += 1
        if e["service"] == "tiles" and e["event_type"] == "tile_request" and d.get("requester"):
            if d.get("analysisId") is None:
                out[("project_tile_requests", (("projectId", d["projectId"]), ("layerId", d["layerId"])), d["requester"])] += 1
            else:
                out[("analysis_tile_requests", (("analysisId", d["analysisId"]),), d["requester"])] += 1
    return dict(out)


@pytest.fixture
def lake_lines(metrics_home) -> list[Line]:
    """A generated lake under METRICS_HOME/objects (30 hours from 2026-01-05), read back."""
    objects = metrics_home / "objects"
    write_lake(objects, START, hours=HOURS, events_per_hour=60, seed=11, bad_lines_per_hour=4)
    return read_lines(objects)


@pytest.fixture
def duck_engine(metrics_home):
    from metrics_assets.resources import DuckDBQueryEngine

    return DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects"))
