"""Sample event lake for the demo (and the tests): several days of v0 and v1 events.

About 20 customers (1 = internal, real ones from 11000), services ``iam-admin``,
``filebeat``, ``auth0`` (logins, successful ``s`` and failed ``f``) and ``tiles`` (tile
requests for projects/layers and for analyses), files in Secor's arrival-minute folders,
late arrivals (some after the lateness window), a few malformed lines and lines without a
created time.

Like Secor (pinterest/secor: ``TimestampedMessageParser.generatePartitions`` on the message's
timestamp field, here its arrival time; ``LogFilePath.getLogFilePath`` for the names), each line
goes to the folder of its arrival minute in the layout ``EVENT_LAKE_LAYOUT`` (default
``dt=YYYY-MM-DD/hr=HH/min=mm``), in gzip files named
``<generation>_<kafka partition>_<offset of the first message, 20 digits>.gz``, one folder per
topic (``v0/``, ``v1/``). An event created at 10:59:50 that arrived at 11:00:20 sits in 11:00.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrics_assets.demo import DemoStep

DEMO_START = datetime(2026, 1, 5, tzinfo=UTC)
DEMO_DAYS = 3
KAFKA_PARTITIONS = 2
GENERATION = 1

CUSTOMERS = [1] + [11000 + i for i in range(19)]
USERS = [f"auth0|user{i:03d}" for i in range(40)]
PROJECTS = [f"proj-{i}" for i in range(6)]
LAYERS = [f"layer-{i}" for i in range(4)]
ANALYSES = [f"analysis-{i}" for i in range(5)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _payload(rng: random.Random, service: str) -> tuple[str, dict]:
    if service == "auth0":
        return "login", {"type": rng.choice("ssssf"), "user_id": rng.choice(USERS), "ip": "redacted"}
    if service == "tiles":
        data = {
            "requester": rng.choice(USERS),
            "projectId": rng.choice(PROJECTS),
            "layerId": rng.choice(LAYERS),
            "z": rng.randint(0, 18),
            "x": rng.randint(0, 1000),
            "y": rng.randint(0, 1000),
        }
        if rng.random() < 0.3:
            data["analysisId"] = rng.choice(ANALYSES)
        return "tile_request", data
    if service == "iam-admin":
        return rng.choice(["user_created", "role_changed"]), {"actor": rng.choice(USERS)}
    return "log_shipped", {"lines": rng.randint(1, 500)}


def flush_minute(arrived: datetime) -> datetime:
    """The folder minute of an event that arrived at ``arrived`` (Secor partitions by the
    message's timestamp, truncated to the layout's finest folder)."""
    return arrived.astimezone(UTC).replace(second=0, microsecond=0)


def secor_name(partition: int, offset: int, generation: int = GENERATION, extension: str = ".gz") -> str:
    """Secor's file name (``LogFilePath.getLogFileBasename`` + the codec's extension)."""
    return f"{generation}_{partition}_{offset:020d}{extension}"


def write_files(
    objects_dir: Path,
    files: dict[tuple[str, datetime], list[str]],
    bucket: str = "lake",
    prefix: str = "events",
    layout=None,
) -> int:
    """Write ``{(topic, folder time): lines}`` as Secor does; returns the number of lines."""
    from metrics_assets.events import config

    layout = layout or config.lake_layout()
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    total = 0
    for (version, minute), lines in sorted(files.items()):
        folder = objects_dir / bucket / prefix / version / layout.folder(minute)
        folder.mkdir(parents=True, exist_ok=True)
        for partition in range(KAFKA_PARTITIONS):
            part = lines[partition::KAFKA_PARTITIONS]
            if not part:
                continue
            name = secor_name(partition, offsets[(version, partition)])
            offsets[(version, partition)] += len(part)
            with gzip.open(folder / name, "wt") as handle:
                handle.write("\n".join(part) + "\n")
            total += len(part)
    return total


def make_line(
    version: str,
    customer: int,
    service: str,
    event: str,
    data: dict,
    created: datetime | None,
    arrived: datetime,
    resource: str = "",
) -> str:
    """One event as its JSON line, in the given schema version."""
    if version == "v0":
        record = {
            "resourceid": resource,
            "customerid": customer,
            "operationid": "",
            "servicename": service,
            "service": service,
            "arrivaltimestamp": _ms(arrived),
            "tags": [service, "demo"],
            "data": {"event": event, **data},
        }
        if created is not None:
            record["createdtimestamp"] = _ms(created)
    else:
        envelope = {
            "resourceId": resource,
            "customerId": customer,
            "operationId": "",
            "service": {"name": service},
            "arrivedAt": _iso(arrived),
            "tags": [service, "demo"],
        }
        if created is not None:
            envelope["createdAt"] = _iso(created)
        record = {"envelope": envelope, "eventType": event, "data": data}
    return json.dumps(record, separators=(",", ":"))


def write_lake(
    objects_dir: Path,
    start: datetime,
    hours: int,
    events_per_hour: int,
    seed: int = 7,
    bucket: str = "lake",
    prefix: str = "events",
    bad_lines_per_hour: int = 2,
    layout=None,
) -> int:
    """Write ``hours`` hours of events from ``start`` under ``objects_dir/bucket/prefix``; returns
    the number of lines written. Lines go to the folder of their arrival minute."""
    rng = random.Random(seed)
    files: dict[tuple[str, datetime], list[str]] = defaultdict(list)
    services = ["iam-admin", "filebeat", "auth0", "tiles", "tiles", "auth0"]
    for h in range(hours):
        hour = start + timedelta(hours=h)
        for _ in range(events_per_hour):
            created = hour + timedelta(milliseconds=rng.randrange(3_600_000))
            roll = rng.random()
            if roll < 0.85:
                lag = timedelta(milliseconds=rng.randrange(100, 30_000))
            elif roll < 0.98:
                lag = timedelta(minutes=rng.uniform(1, 60))  # late, within the lateness window
            else:
                lag = timedelta(minutes=rng.uniform(61, 150))  # later than the default window
            arrived = created + lag
            version = "v0" if rng.random() < 0.5 else "v1"
            service = rng.choice(services)
            event, data = _payload(rng, service)
            resource = f"res-{rng.randrange(30)}" if rng.random() < 0.3 else ""
            files[(version, flush_minute(arrived))].append(
                make_line(version, rng.choice(CUSTOMERS), service, event, data, created, arrived, resource)
            )
        for i in range(bad_lines_per_hour):
            arrived = hour + timedelta(minutes=rng.randrange(60))
            version = "v0" if i % 2 == 0 else "v1"
            bad = (
                "{not json"
                if i % 4 < 2
                else make_line(version, 11001, "filebeat", "log_shipped", {"lines": 1}, None, arrived)
            )
            files[(version, flush_minute(arrived))].append(bad)
    return write_files(objects_dir, files, bucket, prefix, layout)


def generate(home: Path) -> list[DemoStep]:
    write_lake(home / "objects", DEMO_START, hours=DEMO_DAYS * 24, events_per_hour=150)
    first = DEMO_START
    last_hour = DEMO_START + timedelta(days=DEMO_DAYS) - timedelta(hours=1)
    last_day = DEMO_START + timedelta(days=DEMO_DAYS - 1)
    return [
        DemoStep(
            "event_rollups_hourly: backfill of the demo days as one run",
            ["event_rollups_hourly"],
            partition_range=(first.strftime("%Y-%m-%d-%H:%M"), last_hour.strftime("%Y-%m-%d-%H:%M")),
        ),
        DemoStep(
            "event_rollups_hourly: rerun of one hour (same rows)",
            ["event_rollups_hourly"],
            partition_key=(first + timedelta(hours=10)).strftime("%Y-%m-%d-%H:%M"),
        ),
        DemoStep(
            "metrics: the demo days as one run",
            ["metrics"],
            partition_range=(first.strftime("%Y-%m-%d"), last_day.strftime("%Y-%m-%d")),
        ),
    ]
