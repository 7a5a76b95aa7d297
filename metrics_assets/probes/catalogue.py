"""What GLAM knows of its probes and of Firefox's releases, read from where GLAM keeps them.

* Desktop (legacy telemetry) probes: GLAM's ``glam_probe`` table, filled by its
  ``import_probes`` command from ``probeinfo.telemetry.mozilla.org/firefox/all/main/all_probes``.
  The probe name the app serves and logs is ``info->>'name'`` (``histogram/GC_MS`` ->
  ``gc_ms``); ``info->>'type'`` is ``histogram`` or ``scalar`` and ``info->>'kind'`` the
  histogram kind (``exponential``...). GLAM's aggregation tables name that
  ``histogram-exponential``; scalars are ``scalar``.
* Glean probes (GLAM products ``fenix`` and ``fog``): GLAM has no table; the probe-info
  service's ``/glean/<v1_name>/metrics`` JSON describes them: ``{"<metric.name>": {"name",
  "type", "history": [{"description", "dates": {"first", "last"}, ...}]}}``. GLAM names a
  Glean probe with dots as underscores (``views.__get_glean_info``).
* Releases: Mozilla product-details ``firefox_history_major_releases.json``, an object from
  version to release date (``{"130.0": "2024-09-03", "131.0": "2024-10-01"}``). Firefox
  desktop's dates serve GLAM's ``firefox`` (legacy) and ``fog`` (Glean desktop) products;
  ``mobile_history_major_releases.json`` would serve ``fenix``.

``GLAM_PROBEINFO_PATH`` and ``GLAM_RELEASES_PATH`` are a file, a folder of files, or an
``s3://bucket/key`` object (read through the object store). The file name says the product.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from metrics_assets.settings import ConfigurationError

#: probe-info ``v1_name`` (the file's name) -> GLAM product.
PROBEINFO_PRODUCTS = {"fenix": "fenix", "fog": "fog", "firefox-desktop": "fog", "firefox_desktop": "fog"}
#: product-details file -> the GLAM products whose releases it dates.
RELEASE_FILES = {
    "firefox_history_major_releases": ("firefox", "fog"),
    "mobile_history_major_releases": ("fenix",),
}
CATALOGUE_COLUMNS = ["product", "probe_name", "metric_type", "description", "source", "first_seen"]

#: glam_probe rows as GLAM's import_probes writes them: ``info`` is JSON (``jsonb`` in GLAM's
#: PostgreSQL, text in the SQLite stand-in); SQLAlchemy renders the extraction for each
#: (``info ->> 'name'``, ``JSON_EXTRACT(info, '$."name"')``).
_INFO = sa.column("info", sa.JSON)
DESKTOP_CATALOGUE = sa.select(
    _INFO["name"].as_string().label("probe_name"),
    sa.column("key"),
    _INFO["type"].as_string().label("probe_type"),
    _INFO["kind"].as_string().label("kind"),
    _INFO["description"].as_string().label("description"),
).select_from(sa.table("glam_probe"))


def desktop_metric_type(probe_type: str | None, kind: str | None) -> str:
    if probe_type == "histogram":
        return f"histogram-{kind or 'exponential'}"
    return probe_type or "scalar"


def _product_for(name: str, mapping: dict[str, Any], setting: str) -> Any:
    stem = Path(name).name.lower()
    for prefix in sorted(mapping, key=len, reverse=True):
        if stem.startswith(prefix):
            return mapping[prefix]
    raise ConfigurationError(
        f"{setting}: cannot tell the product of {name!r}; name the file after it "
        f"(one of: {', '.join(sorted(mapping))}, e.g. {min(mapping)}.json)."
    )


def read_sources(location: str, setting: str, object_store) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every JSON file at ``location`` (a file, a folder, or s3://)."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        if not bucket or not key:
            raise ConfigurationError(f"{setting}={location!r} is not s3://bucket/key.")
        try:
            return [(key, object_store.get_bytes(bucket, key))]
        except Exception as error:
            raise ConfigurationError(f"{setting}={location!r} cannot be read: {error}") from error
    path = Path(location)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json")
        if not files:
            raise ConfigurationError(f"{setting}={location!r} is a folder without .json files.")
        return [(p.name, p.read_bytes()) for p in files]
    if path.is_file():
        return [(path.name, path.read_bytes())]
    raise ConfigurationError(f"{setting}={location!r}: no such file or folder; fix the path or unset it.")


def _parse_json(name: str, data: bytes, setting: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as error:
        raise ConfigurationError(f"{setting}: {name} is not JSON ({error}).") from None


def _first_date(history: list) -> date | None:
    firsts = []
    for entry in history or []:
        first = (entry.get("dates") or {}).get("first") if isinstance(entry, dict) else None
        if first:
            try:
                firsts.append(datetime.fromisoformat(str(first)).date())
            except ValueError:
                continue
    return min(firsts) if firsts else None


def glean_catalogue(
    sources: list[tuple[str, bytes]], setting: str = "GLAM_PROBEINFO_PATH"
) -> tuple[pd.DataFrame, dict]:
    """Probe-info Glean metrics files -> catalogue rows; and entries skipped, by reason."""
    rows, skipped = [], {"not_a_metric_object": 0}
    for name, data in sources:
        product = _product_for(name, PROBEINFO_PRODUCTS, setting)
        metrics = _parse_json(name, data, setting)
        if not isinstance(metrics, dict):
            raise ConfigurationError(f"{setting}: {name} is not a probe-info metrics object ({{name: metric}}).")
        for key, metric in metrics.items():
            if not isinstance(metric, dict):
                skipped["not_a_metric_object"] += 1
                continue
            history = metric.get("history") or []
            latest = history[-1] if history and isinstance(history[-1], dict) else {}
            rows.append(
                {
                    "product": product,
                    "probe_name": str(metric.get("name") or key).replace(".", "_"),
                    "metric_type": str(metric.get("type") or latest.get("type") or "unknown"),
                    "description": latest.get("description"),
                    "source": f"probe-info:{Path(name).name}",
                    "first_seen": _first_date(history),
                }
            )
    frame = pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)
    return frame.drop_duplicates(["product", "probe_name"], keep="last"), skipped


def releases(sources: list[tuple[str, bytes]], setting: str = "GLAM_RELEASES_PATH") -> tuple[pd.DataFrame, dict]:
    """product-details ``*_history_major_releases.json`` -> (product, version, channel, release_date)."""
    rows, skipped = [], {"bad_date": 0}
    for name, data in sources:
        products = _product_for(name, RELEASE_FILES, setting)
        history = _parse_json(name, data, setting)
        if not isinstance(history, dict):
            raise ConfigurationError(f"{setting}: {name} is not a version-to-date object.")
        for version, day in history.items():
            try:
                released = date.fromisoformat(str(day))
            except ValueError:
                skipped["bad_date"] += 1
                continue
            for product in products:
                rows.append(
                    {"product": product, "version": str(version), "channel": "release", "release_date": released}
                )
    frame = pd.DataFrame(rows, columns=["product", "version", "channel", "release_date"])
    return frame.drop_duplicates(["product", "version", "channel"], keep="last"), skipped
