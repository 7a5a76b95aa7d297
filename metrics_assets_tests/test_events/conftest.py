"""Fixtures for the events tests: a small generated lake, and a plain-Python reference that
reads the same files line by line (no SQL) to compute what the assets must produce."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from metrics_assets.events.demo import write_lake

START = datetime(2026, 1, 5, 0, tzinfo=UTC)
HOURS = 30  # a full day plus some hours of the next
#: Created times before 1973-01-01T00:00:00Z count as "not in ms" (e.g. written in seconds).
NOT_MS_BEFORE = int(datetime(1973, 1, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass
class Line:
    version: str
    folder_hour: datetime  # the arrival folder's hour
    record: dict | None  # None: not JSON


def read_lines(objects_dir: Path, bucket: str = "lake", prefix: str = "events", layout=None) -> list[Line]:
    """Every line of the lake, read independently of the code under test: the folder's time by a
    regular expression per layout, gzip by its magic bytes, each line as Athena reads it
    (:func:`athena_record`)."""
    from metrics_assets.events import config

    layout = layout or config.lake_layout()
    patterns = {
        "dt=/hr=/min=": r"dt=(\d{4})-(\d{2})-(\d{2})/hr=(\d{2})/min=\d{2}/[^/]+$",
        "dt=/hr=": r"dt=(\d{4})-(\d{2})-(\d{2})/hr=(\d{2})/[^/]+$",
        "year=/month=/day=/hour=/minute=": r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/minute=\d{2}/[^/]+$",
    }
    out = []
    for version in ("v0", "v1"):
        topic = objects_dir / bucket / prefix / version
        for path in sorted(p for p in topic.rglob("*") if p.is_file()):
            if path.name.startswith((".", "_")):
                continue
            match = re.match(patterns[layout.name], path.relative_to(topic).as_posix())
            if not match:
                continue
            folder_hour = datetime(*map(int, match.groups()), tzinfo=UTC)
            raw_bytes = path.read_bytes()
            if raw_bytes[:2] == b"\x1f\x8b":
                raw_bytes = gzip.decompress(raw_bytes)
            text = raw_bytes.decode()
            for raw in text.removesuffix("\n").split("\n") if text else []:
                out.append(Line(version, folder_hour, athena_record(raw)))
    return out


def athena_record(raw: str) -> dict | None:
    """One line as Athena's OpenX reader sees it (Trino's OpenXJsonDeserializer.deserialize and
    JsonReader, read for this): the line trimmed of blanks; unless it starts with "{", a row of
    NULLs (None; arrays are not written here); the first JSON value only, text after it ignored;
    keys case-insensitive, at every depth (:func:`field` looks them up so)."""
    text = raw.strip()
    if not text.startswith("{"):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    return value


def field(record: dict, key: str):
    """``record[key]`` matched as Athena matches keys: case-insensitively, the last one winning."""
    found = None
    for name, value in record.items():
        if name.lower() == key.lower():
            found = value
    return found


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
        data = field(r, "data") or {}
        return {
            "customer_id": field(r, "customerid"),
            "service": field(r, "servicename") or field(r, "service"),
            "event_type": data.get("event"),
            "created_ms": field(r, "createdtimestamp"),
            "arrived_ms": field(r, "arrivaltimestamp"),
            "resource": (field(r, "resourceid") or "").strip() or None,
            "data": data,
            "version": "v0",
        }
    env = field(r, "envelope") or {}
    return {
        "customer_id": field(env, "customerId"),
        "service": field(field(env, "service") or {}, "name"),
        "event_type": field(r, "eventType"),
        "created_ms": _iso_ms(field(env, "createdAt")),
        "arrived_ms": _iso_ms(field(env, "arrivedAt")),
        "resource": (field(env, "resourceId") or "").strip() or None,
        "data": field(r, "data") or {},
        "version": "v1",
    }


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def counts_for_created_hour(line: Line, event: dict, lateness_hours: int, early_hours: int) -> bool:
    """The lateness rule: the folder's hour lies in [created hour - early, created hour + lateness]."""
    created_hour = event["created_ms"] // 3_600_000 * 3_600_000
    folder = _ms(line.folder_hour)
    return created_hour - early_hours * 3_600_000 <= folder <= created_hour + lateness_hours * 3_600_000


def in_window(lines, start: datetime, end: datetime, lateness_hours: int = 1, early_hours: int = 1):
    """Dated events created in [start, end) that count for their created hour."""
    for line in lines:
        event = normalise(line)
        if (
            event
            and event["created_ms"] is not None
            and _ms(start) <= event["created_ms"] < _ms(end)
            and event["created_ms"] >= NOT_MS_BEFORE
            and counts_for_created_hour(line, event, lateness_hours, early_hours)
        ):
            yield event


def reference_rollups(lines, start: datetime, end: datetime, lateness_hours: int = 1, early_hours: int = 1) -> dict:
    groups: dict[tuple, dict] = {}
    for e in in_window(lines, start, end, lateness_hours, early_hours):
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


SKIP_REASONS = (
    "malformed_json",
    "missing_created_time",
    "created_time_not_ms",
    "late_beyond_bound",
    "early_beyond_bound",
)


def reference_skips(
    lines, start: datetime, end: datetime, lateness_hours: int = 1, early_hours: int = 1
) -> dict[str, int]:
    """Lines not counted in a created hour, by reason, counted by the slice owning their folder."""
    counts = Counter(dict.fromkeys(SKIP_REASONS, 0))
    for line in lines:
        if start <= line.folder_hour < end:
            event = normalise(line)
            if event is None:
                counts["malformed_json"] += 1
            elif event["created_ms"] is None:
                counts["missing_created_time"] += 1
            elif event["created_ms"] < NOT_MS_BEFORE:
                counts["created_time_not_ms"] += 1
            elif _ms(line.folder_hour) > event["created_ms"] // 3_600_000 * 3_600_000 + lateness_hours * 3_600_000:
                counts["late_beyond_bound"] += 1
            elif _ms(line.folder_hour) < event["created_ms"] // 3_600_000 * 3_600_000 - early_hours * 3_600_000:
                counts["early_beyond_bound"] += 1
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
                out[
                    (
                        "project_tile_requests",
                        (("projectId", d["projectId"]), ("layerId", d["layerId"])),
                        d["requester"],
                    )
                ] += 1
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
