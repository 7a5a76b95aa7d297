"""Sample data for the probes domain: a GLAM app with ~500 probes, 90 days of usage, three
releases with a bump after each, telemetry samples, and a few build requests.

It is GLAM as it is: the tables are GLAM's own (created with GLAM's DDL by the probes
migrations when GLAM_DATABASE_URL is unset), the usage rows are what ``_log_probe_query``
writes (``PROBE_SEARCH``; desktop queries without ``product``; the request's query as
context), ``glam_probe`` rows are what ``import_probes`` writes, and two small files in the
real formats sit under ``$METRICS_HOME/probes``: the probe-info JSON of fenix and the
product-details ``firefox_history_major_releases.json`` (from the templates shipped in
``demo_data/``, with three releases dated inside the 90 days). The demo points
GLAM_PROBEINFO_PATH and GLAM_RELEASES_PATH at them unless they are set.

One liberty, said plainly: GLAM writes ``tracking_id = ''`` on every row today. The demo
gives 60 % of its rows a tracking id, as GLAM would once it fills it from a first-party
cookie, so that the session assets have something to show; the rest stay ''.

Everything is deterministic (fixed seeds) and ends yesterday (UTC), so the defaults
(as-of = latest day of views; builds read the last PROBES_SAMPLE_DAYS days) line up.
"""

from __future__ import annotations

import json
import os
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
PRODUCTS = {"firefox": 350, "fenix": 150}  # probes per product (GLAM's product names)
DAILY_SESSIONS = {"firefox": 14, "fenix": 7}
TRACKED_SHARE = 0.6
DEMO_DATA = Path(__file__).parent / "demo_data"
RELEASE_OFFSETS = (70, 45, 20)  # days before the last day
UNKNOWN_PROBE = "no_such_probe"
_PARTS = [
    "gc",
    "cycle_collector",
    "page_load",
    "memory",
    "dns",
    "tls",
    "http",
    "input",
    "paint",
    "js",
    "startup",
    "shutdown",
    "cache",
    "media",
    "webgl",
    "network",
    "dom",
    "font",
    "scroll",
    "tab",
]
_SUFFIX = ["ms", "count", "bytes", "rate", "time", "errors", "total", "max"]


def probe_names(product: str, n: int) -> list[str]:
    rng = np.random.default_rng(len(product))
    names: list[str] = []
    seen: set[str] = set()
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
    starts = (
        pd.Timestamp(first, tz="UTC")
        + pd.to_timedelta(day_index, "D")
        + pd.to_timedelta(rng.uniform(0, 86_000, n_sessions), "s")
    )
    lengths = rng.integers(1, 12, n_sessions)
    session_of = np.repeat(np.arange(n_sessions), lengths)
    step = np.where(
        rng.random(len(session_of)) < 0.03,
        rng.uniform(1900, 4000, len(session_of)),
        rng.exponential(90, len(session_of)),
    )
    first_in_session = np.r_[True, session_of[1:] != session_of[:-1]]
    step[first_in_session] = 0
    offsets = pd.Series(step).groupby(session_of).cumsum().to_numpy()
    browsers = rng.integers(0, 300, n_sessions)
    ids = np.array([f"{product[:2]}-{b:04d}" for b in browsers])
    tracked = rng.random(n_sessions) < TRACKED_SHARE  # per session: that browser sends an id or ''
    tracking = np.where(tracked, ids, "")[session_of]
    probe = np.array(probes)[rng.choice(len(probes), len(session_of), p=weights)]
    # The request's query, as GLAM's frontend posts it (desktop: the legacy query, no product).
    if product == "firefox":
        template = '{{"channel": "nightly", "probe": "{}", "process": "parent", "os": "*", "versions": 3, "aggregationLevel": "version"}}'
    else:
        template = (
            '{{"product": "fenix", "app_id": "release", "probe": "{}", "ping_type": "*", "os": "*", '
            '"versions": 3, "aggregationLevel": "version"}}'
        )
    return pd.DataFrame(
        {
            "action_type": "PROBE_SEARCH",  # the only action GLAM writes
            "timestamp": starts[session_of] + pd.to_timedelta(offsets, "s"),
            "context": [template.format(p) for p in probe],
            "tracking_id": tracking,
            "probe_name": probe,
        }
    )


def _glam_probe_rows(names: list[str]) -> pd.DataFrame:
    """glam_probe as GLAM's import_probes writes it: key 'histogram/NAME', info with name etc."""
    infos = [
        json.dumps(
            {
                "name": n,
                "apiName": f"histogram/{n.upper()}",
                "description": f"{n} (demo)",
                "type": "histogram",
                "kind": "exponential",
                "labels": None,
                "versions": {"nightly": ["100", "150"], "beta": ["100", "149"], "release": ["100", "148"]},
                "record_in_processes": ["main", "content"],
                "optout": {"nightly": True, "beta": True, "release": True},
                "bugs": [1],
                "active": True,
                "prerelease": False,
            }
        )
        for n in names
    ]
    return pd.DataFrame({"key": [f"histogram/{n.upper()}" for n in names], "info": infos})


def _probeinfo(names: list[str], first: date, path: Path) -> None:
    """fenix's probe-info metrics JSON (the shipped template's format): dotted Glean names
    whose GLAM name (dots as underscores) is the demo's probe name; the last 10 appeared lately."""
    template = json.loads((DEMO_DATA / "fenix.json").read_text())
    entry = next(iter(template.values()))
    out = {}
    for i, name in enumerate(names):
        dotted = name.replace("_", ".", 1)
        born = first + timedelta(days=85) if i >= len(names) - 10 else first - timedelta(days=400)
        history = [
            {
                **entry["history"][0],
                "description": f"{name} (demo)",
                "dates": {"first": f"{born} 00:00:00", "last": f"{first + timedelta(days=89)} 00:00:00"},
            }
        ]
        out[dotted] = {**entry, "name": dotted, "history": history}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))


def _releases(dates: list[date], path: Path) -> None:
    """product-details history (the shipped template) plus the demo's releases."""
    history = json.loads((DEMO_DATA / "firefox_history_major_releases.json").read_text())
    for i, day in enumerate(dates):
        history[f"{140 + i}.0"] = day.isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=1))


def _telemetry(root: Path, hot: list[tuple[str, str]], last: date, rng) -> int:
    rows = 0
    folder = root / "objects" / telemetry.BUCKET
    for d in range(7):
        day = last - timedelta(days=d)
        frames = []
        for product, probe in hot:
            n = 240
            center = rng.uniform(5, 500)
            frames.append(
                pd.DataFrame(
                    {
                        "product": product,
                        "probe_name": probe,
                        "channel": rng.choice(["release", "beta", "nightly"], n),
                        "os": rng.choice(["Windows", "Linux", "Darwin"], n),
                        "version": rng.choice(["131", "132"], n),
                        "client_id": [f"c{i:03d}" for i in rng.integers(0, 120, n)],
                        "value": rng.lognormal(np.log(center), 0.5, n),
                    }
                )
            )
        frame = pd.concat(frames, ignore_index=True)
        path = folder / telemetry.sample_key(day.isoformat())
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        rows += len(frame)
    return rows


def generate(home: Path) -> list[DemoStep]:
    rng = np.random.default_rng(20261122)
    warehouse = Warehouse(url=settings.warehouse_url())
    warehouse.ensure_schema()
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=DAYS - 1)
    rel_dates = [last - timedelta(days=o) for o in RELEASE_OFFSETS]
    names = {product: probe_names(product, n) for product, n in PRODUCTS.items()}
    usage = [_usage(product, names[product], first, rel_dates, rng) for product in PRODUCTS]
    usage_frame = pd.concat(usage, ignore_index=True).sort_values("timestamp", kind="stable")
    for table in ("glam_usage_instrumentation", "glam_probe", "probe_build_requests"):
        warehouse.execute(f"DELETE FROM {table}")
    warehouse.append("glam_probe", _glam_probe_rows(names["firefox"]))
    warehouse.append("glam_usage_instrumentation", usage_frame)
    probeinfo, releases = (
        home / "probes" / "probeinfo" / "fenix.json",
        home / "probes" / "firefox_history_major_releases.json",
    )
    _probeinfo(names["fenix"], first, probeinfo)
    _releases(rel_dates, releases)
    os.environ.setdefault("GLAM_PROBEINFO_PATH", str(probeinfo.parent))
    os.environ.setdefault("GLAM_RELEASES_PATH", str(releases))

    # Telemetry for the most viewed probes and the ones requested on demand.
    requested = [("firefox", names["firefox"][120]), ("fenix", names["fenix"][80])]
    hot = [(p, names[p][r]) for p in PRODUCTS for r in range(12)]
    _telemetry(home, hot + requested, last, rng)
    warehouse.append(
        "probe_build_requests",
        pd.DataFrame(
            {
                "product": [requested[0][0], requested[0][0], requested[1][0], "firefox"],
                "probe_name": [requested[0][1], requested[0][1], requested[1][1], UNKNOWN_PROBE],
            }
        ),
    )
    span = (first.isoformat(), last.isoformat())
    return [
        DemoStep("GLAM's probe catalogue and product-details releases", ["glam_probe_catalogue", "product_releases"]),
        DemoStep("probe views, 90 days", ["probe_views_daily"], partition_range=span),
        DemoStep("usage sessions, 90 days", ["usage_sessions", "usage_sessions_daily"], partition_range=span),
        DemoStep(
            "popularity, release effects, hot list", ["probe_popularity", "release_correlation", "probes_to_build"]
        ),
        DemoStep("nightly build of the hot list", [], sensor="probes_nightly_build_sensor"),
        DemoStep("on-demand build requests", [], sensor="probe_build_requests_sensor"),
    ]
