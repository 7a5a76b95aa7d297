"""Stand-in lake tables ``events_v0`` / ``events_v1`` for the queries tests and benchmark.

They follow the events domain's contract (names, columns, file layout: gzip NDJSON under
``lake/events/v0|v1/year=/month=/day=/hour=/minute=/``), so the queries domain is tested
without importing the events domain. :func:`catalog` is a lake catalog of just them, for
the engines of these tests (``DuckDBQueryEngine.with_catalog(...)``, ``execution.session_for``).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

from metrics_assets.resources.lake import LakeCatalog, LakeTable

BUCKET, PREFIX = "lake", "events"
PARTS = ("year", "month", "day", "hour", "minute")
V0_COLUMNS = {
    "resourceid": "VARCHAR",
    "customerid": "BIGINT",
    "operationid": "VARCHAR",
    "servicename": "VARCHAR",
    "service": "VARCHAR",
    "createdtimestamp": "BIGINT",
    "arrivaltimestamp": "BIGINT",
    "tags": "VARCHAR[]",
    "data": "JSON",
}
V1_COLUMNS = {
    "envelope": "STRUCT(resourceId VARCHAR, customerId BIGINT, operationId VARCHAR, service STRUCT(name VARCHAR), "
    "createdAt VARCHAR, arrivedAt VARCHAR, tags VARCHAR[])",
    "eventType": "VARCHAR",
    "data": "JSON",
}


def _view(columns: dict[str, str]):
    def view(folder: Path) -> str:
        cols = ", ".join(f'"{name}"' for name in columns)
        parts = ", ".join(PARTS)
        if not any(folder.rglob("*.json.gz")) if folder.is_dir() else True:
            nulls = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in columns.items())
            return f"SELECT {nulls}, " + ", ".join(f"CAST(NULL AS VARCHAR) AS {p}" for p in PARTS) + " WHERE false"
        spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in columns.items()) + "}"
        return (
            f"SELECT {cols}, {parts} FROM read_json('{folder}/**/*.json.gz', format='newline_delimited', "
            f"columns={spec}, hive_partitioning=true, hive_types_autocast=false)"
        )

    return view


def catalog() -> LakeCatalog:
    """A lake catalog of the two stand-ins, readable by ad hoc queries as the real ones are."""
    return LakeCatalog(
        [
            LakeTable("events_v0", BUCKET, f"{PREFIX}/v0", _view(V0_COLUMNS), "stand-in (queries tests)", ad_hoc=True),
            LakeTable("events_v1", BUCKET, f"{PREFIX}/v1", _view(V1_COLUMNS), "stand-in (queries tests)", ad_hoc=True),
        ]
    )


def write_events(
    object_store_dir: Path, version: str, events: list[dict], created_ms: int, name: str = "part-0"
) -> Path:
    """One gzip NDJSON file of ``events`` in the minute folder of ``created_ms``."""
    t = datetime.fromtimestamp(created_ms / 1000, UTC)
    folder = (
        Path(object_store_dir)
        / BUCKET
        / PREFIX
        / version
        / f"year={t:%Y}"
        / f"month={t:%m}"
        / f"day={t:%d}"
        / f"hour={t:%H}"
        / f"minute={t:%M}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json.gz"
    with gzip.open(path, "wt") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")
    return path


def sample_v0(n: int, start_ms: int = 1_763_800_000_000) -> list[dict]:
    services = ["auth0", "tiles", "filebeat"]
    return [
        {
            "resourceid": f"res-{i}",
            "customerid": 11000 + i % 3,
            "operationid": f"op-{i}",
            "servicename": services[i % 3],
            "service": services[i % 3],
            "createdtimestamp": start_ms + i * 1000,
            "arrivaltimestamp": start_ms + i * 1000 + 250,
            "tags": [f"t{i % 2}"],
            "data": {"n": i},
        }
        for i in range(n)
    ]


def sample_v1(n: int) -> list[dict]:
    return [
        {
            "envelope": {
                "resourceId": f"r1-{i}",
                "customerId": 12000 + i % 2,
                "operationId": f"o1-{i}",
                "service": {"name": "tiles" if i % 2 else "iam-admin"},
                "createdAt": f"2026-11-22T07:00:{i:02d}Z",
                "arrivedAt": f"2026-11-22T07:00:{i:02d}Z",
                "tags": [],
            },
            "eventType": "login" if i % 3 else "logout",
            "data": {"i": i},
        }
        for i in range(n)
    ]
