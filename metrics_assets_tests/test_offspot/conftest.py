"""Offspot test helpers: write Caddy logs, a packages.yaml, and materialize the assets."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from metrics_assets.offspot.assets import offspot_indicators, offspot_kpis
from metrics_assets.offspot.samples import access_record, line
from metrics_assets.resources import LocalObjectStore

PACKAGES = """\
packages:
  - kind: zim
    title: Wikipedia
    url: //kiwix.hotspot/viewer#wikipedia_en_all
  - kind: zim
    title: Wiktionnaire
    url: //kiwix.hotspot/content/wiktionary_fr/A/Accueil
  - kind: files
    title: Khan videos
    url: //khan.hotspot/
  - kind: app
    ident: edupi.offspot.kiwix.org
    title: EduPi
    url: //edupi.hotspot/
  - kind: app
    ident: file-manager.offspot.kiwix.org
    title: File Manager
    url: //files.hotspot/
  - kind: app
    ident: nomad.offspot.kiwix.org
    title: Nomad
    url: //nomad.hotspot/
  - kind: zim
    url: //kiwix.hotspot/viewer#ted_en_all
"""


def ts(text: str) -> float:
    """'2026-01-05 10:00:59' (UTC) -> epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def req(when: str, host: str, uri: str, **kwargs) -> dict:
    return access_record(ts(when), host, uri, **kwargs)


def write_log(path: Path, items: list, *, gz: bool = False, tail: str | None = None) -> Path:
    """Write records (dicts) or raw strings (lines, newline added) to a log file; ``tail`` is
    appended with no newline, like a line cut by a crash mid-write."""
    text = "".join(line(i) if isinstance(i, dict) else i + "\n" for i in items) + (tail or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as stream:
            stream.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def offspot_dirs(metrics_home) -> tuple[Path, Path]:
    """The default log folder and packages.yaml under METRICS_HOME (packages written)."""
    logs = metrics_home / "offspot" / "logs"
    logs.mkdir(parents=True)
    packages = metrics_home / "offspot" / "packages.yaml"
    packages.write_text(PACKAGES)
    return logs, packages


def resources(warehouse, metrics_home: Path) -> dict:
    return {"warehouse": warehouse, "object_store": LocalObjectStore(root_dir=str(metrics_home / "objects"))}


def materialize_hours(
    warehouse, metrics_home: Path, first: str, last: str | None = None, object_store=None
) -> dg.ExecuteInProcessResult:
    """offspot_indicators for one hour key, or a range as one single run."""
    res = resources(warehouse, metrics_home)
    if object_store is not None:
        res["object_store"] = object_store
    if last is None:
        return dg.materialize([offspot_indicators], partition_key=first, resources=res)
    return dg.materialize(
        [offspot_indicators],
        resources=res,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )


def materialize_kpis(warehouse, metrics_home: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize([offspot_kpis], resources=resources(warehouse, metrics_home))


def records(warehouse) -> list[tuple]:
    rows = warehouse.fetch_all(
        "SELECT indicator_id, indicator_name, period_start, dimension, value FROM offspot_indicator_records "
        "ORDER BY indicator_id, period_start, dimension"
    )
    out = []
    for r in rows:
        start = r["period_start"]
        if isinstance(start, str):
            start = datetime.fromisoformat(start).replace(tzinfo=UTC)
        out.append(
            (
                r["indicator_id"],
                r["indicator_name"],
                start.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                r["dimension"],
                r["value"],
            )
        )
    return out


def kpi_rows(warehouse) -> list[tuple]:
    return [
        tuple(r.values())
        for r in warehouse.fetch_all(
            "SELECT kpi_id, kpi_name, agg_kind, agg_value, kpi_value FROM offspot_kpis ORDER BY kpi_id, agg_kind, agg_value"
        )
    ]


def materialization_metadata(result: dg.ExecuteInProcessResult, key: str = "offspot_indicators") -> dict:
    [event] = result.asset_materializations_for_node(key)
    return {k: v.value for k, v in event.metadata.items()}
