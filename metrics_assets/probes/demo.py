"""Sample data for the probes domain: a GLAM app with ~500 probes, 90 days of usage, three
releases per product with a bump after each, telemetry samples, and a few build requests.

Everything is deterministic (fixed seeds) and ends yesterday (UTC), so the defaults
(as-of = latest day of views; builds read the last PROBES_SAMPLE_DAYS days) line up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from metrics_assets import settings
from metrics_assets.demo import DemoStep
from metrics_assets.probes import telemetry
from metrics_assets.resources.warehouse import Warehouse

DAYS = 90
PRODUCTS = {"firefox_desktop": 350, "fenix": 150}  # probes per product
DAILY_SESSIONS = {"firefox_desktop": 14, "fenix": 7}
RELEASE_OFFSETS = (70, 45, 20)  # days before the last day
UNKNOWN_PROBE = "no_such_probe"
_PARTS = ["gc", "cycle_collector", "page_load", "memory", "dns", "tls", "http", "input", "paint", "js",
          "startup", "shutdown", "cache", "media", "webgl", "network", "dom", "font", "scroll", "tab"]
_SUFFIX = ["ms", "count", "bytes", "rate", "time", "errors", "total", "max"]


def probe_names(product: str, n: int) -> list[str]:
    rng = np.random.default_rng(len(product))
    names, seen = [], set()
    while len(names) < n:
        name = f"{_PARTS[rng.integers(len(_PARTS))]}_{_PARTS[rng.integers(len(_PARTS))]}_{_SUFFIX[rng.integers(len(_SUFFIX))]}"
        name = name if name not in seen else f"{name}_{len(names)}"
        seen.add(name)
        names.append(name)
    return names


def _usage(product: str, probes: list[str], first: date, releases: list[date], rng) -> pd.DataFrame:
    weights = 1.0 / np.arange(1, len(probes) + 1) ** 1.2  # Zipf-like: probe i has weight 1/i^1.2
    weights /= weights.sum()
    per_day = []
    for d in range(DAYS):
        day = first + timedelta(days=d)
        bump = any(0 <= (day - r).days < 14 for r in releases)
        per_day.append(rng.poisson(DAILY_SESSIONS[product] * (1.6 if bump else 1.0)))
    n_sessions = int(sum(per_day))
    day_index = np.repeat(np.arange(DAYS), per_day)
    starts = pd.Timestamp(first, tz="UTC") + pd.to_timedelta(day_index, "D") + pd.to_timedelta(rng.uniform(0, 86_000, n_sessions), "s")
    lengths = rng.integers(1, 12, n_sessions)
    session_of = np.repeat(np.arange(n_sessions), lengths)
    step = np.where(rng.random(len(session_of)) < 0.03, rng.uniform(1900, 4000, len(session_of)), rng.exponential(90, len(session_of)))
    first_in_session = np.r_[True, session_of[1:] != session_of[:-1]]
    step[first_in_session] = 0
    offsets = pd.Series(step).groupby(session_of).cumsum().to_numpy()
    browsers = rng.integers(0, 300, n_sessions)
    tracking = np.array([f"{product[:2]}-{b:04d}" for b in browsers])[session_of]
    tracking = np.where(rng.random(len(session_of)) < 0.08, "", tracking)  # some events carry no tracking id
    is_search = rng.random(len(session_of)) < 0.2
    probe = np.array(probes)[rng.choice(len(probes), len(session_of), p=weights)]
    return pd.DataFrame({
        "action_type": np.where(is_search, "PROBE_SEARCH", "PROBE_VIEW"),
        "timestamp": starts[session_of] + pd.to_timedelta(offsets, "s"),
        "context": [f'{{"product": "{product}", "channel": "release", "os": "Windows", "aggregationLevel": "version"}}'] * len(session_of),
        "tracking_id": tracking,
        "probe_name": probe,
    })


def _telemetry(root: Path, hot: list[tuple[str, str]], last: date, rng) -> int:
    rows = 0
    folder = root / "objects" / telemetry.BUCKET
    for d in range(7):
        day = last - timedelta(days=d)
        frames = []
        for product, probe in hot:
            n = 240
            center = rng.uniform(5, 500)
            frames.append(pd.DataFrame({
                "product": product, "probe_name": probe,
                "channel": rng.choice(["release", "beta", "nightly"], n),
                "os": rng.choice(["Windows", "Linux", "Darwin"], n),
                "version": rng.choice(["131", "132"], n),
                "client_id": [f"c{i:03d}" for i in rng.integers(0, 120, n)],
                "value": rng.lognormal(np.log(center), 0.5, n),
            }))
        frame = pd.concat(frames, ignore_index=True)
        path = folder / telemetry.sample_key(day.isoformat())
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        rows += len(frame)
    return rows


def generate(home: Path) -> list[DemoStep]:
    rng = np.random.default_rng(20261122)
    warehouse = Warehouse(url=settings.warehouse_url())
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=DAYS - 1)
    catalogue, usage, releases = [], [], []
    for product, n in PRODUCTS.items():
        names = probe_names(product, n)
        catalogue.append(pd.DataFrame({"product": product, "probe_name": names, "probe_type": "histogram"}))
        rel_dates = [last - timedelta(days=o) for o in RELEASE_OFFSETS]
        releases.append(pd.DataFrame({
            "product": product, "version": [str(130 + i) for i in range(len(rel_dates))],
            "channel": "release", "release_date": rel_dates,
        }))
        usage.append(_usage(product, names, first, rel_dates, rng))
    usage_frame = pd.concat(usage, ignore_index=True).sort_values("timestamp", kind="stable")
    for table in ("glam_usage_instrumentation", "glam_probes", "product_releases", "probe_build_requests"):
        warehouse.execute(f"DELETE FROM {table}")
    warehouse.append("glam_probes", pd.concat(catalogue, ignore_index=True))
    warehouse.append("product_releases", pd.concat(releases, ignore_index=True))
    warehouse.append("glam_usage_instrumentation", usage_frame)

    # Telemetry for the most viewed probes and the ones requested on demand.
    requested = [("firefox_desktop", catalogue[0]["probe_name"][120]), ("fenix", catalogue[1]["probe_name"][80])]
    hot = [(p, catalogue[i]["probe_name"][r]) for i, p in enumerate(PRODUCTS) for r in range(12)]
    _telemetry(home, hot + requested, last, rng)
    warehouse.append("probe_build_requests", pd.DataFrame({
        "product": [requested[0][0], requested[0][0], requested[1][0], "firefox_desktop"],
        "probe_name": [requested[0][1], requested[0][1], requested[1][1], UNKNOWN_PROBE],
    }))
    span = (first.isoformat(), last.isoformat())
    return [
        DemoStep("probe views, 90 days", ["probe_views_daily"], partition_range=span),
        DemoStep("usage sessions, 90 days", ["usage_sessions"], partition_range=span),
        DemoStep("popularity, release effects, hot list", ["probe_popularity", "release_correlation", "probes_to_build"]),
        DemoStep("nightly build of the hot list", [], sensor="probes_nightly_build_sensor"),
        DemoStep("on-demand build requests", [], sensor="probe_build_requests_sensor"),
    ]
