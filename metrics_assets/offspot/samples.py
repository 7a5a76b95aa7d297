"""Realistic offspot inputs: Caddy JSON access-log lines, a heartbeat, a packages.yaml.

Used by the demo, the tests and the benchmark. Lines look like Caddy 2's (with client IPs
and User-Agents, which the pipeline must never store).
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

USER_AGENTS = [
    "Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
]

DEMO_PACKAGES = """\
# packages.yaml of a demo offspot (written by metrics_assets.offspot.demo)
packages:
  - kind: zim
    title: Wikipedia (English, top articles)
    url: //kiwix.hotspot/viewer#wikipedia_en_top_maxi_2024-06
  - kind: zim
    title: Wiktionnaire
    url: //kiwix.hotspot/content/wiktionary_fr_all_nopic_2024-05/
  - kind: zim
    title: Project Gutenberg
    url: //kiwix.hotspot/viewer#gutenberg_en_all_2023-08
  - kind: zim
    title: PhET Simulations
    url: //kiwix.hotspot/viewer#phet_en_all_2024-04
  - kind: files
    title: Khan Academy videos
    url: //khan.hotspot/
  - kind: files
    title: School textbooks
    url: //textbooks.hotspot/
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
    title: Nomad exercices
    url: //nomad.hotspot/
  # an entry without a title: skipped with a warning
  - kind: zim
    url: //kiwix.hotspot/viewer#ted_en_all_2024-01
"""

#: (weight, host, zim or None) of what visitors open in the demo
_DESTINATIONS = [
    (30, "kiwix.hotspot", "wikipedia_en_top_maxi_2024-06"),
    (8, "kiwix.hotspot", "wiktionary_fr_all_nopic_2024-05"),
    (6, "kiwix.hotspot", "gutenberg_en_all_2023-08"),
    (5, "kiwix.hotspot", "phet_en_all_2024-04"),
    (3, "kiwix.hotspot", "ted_en_all_2024-01"),
    (10, "khan.hotspot", None),
    (5, "textbooks.hotspot", None),
    (6, "edupi.hotspot", None),
    (4, "files.hotspot", None),
    (2, "nomad.hotspot", None),
    (2, "captive.hotspot", None),  # not in packages.yaml: gives nothing
]


def access_record(
    ts: float,
    host: str,
    uri: str,
    method: str = "GET",
    status: int = 200,
    resp_headers: dict | None = None,
    ip: str = "192.168.2.42",
    ua: str = USER_AGENTS[0],
    level: str | None = None,
    logger: str = "http.log.access.log0",
) -> dict:
    """One Caddy access-log record. 4xx and 5xx are logged at level "error", like Caddy 2 does
    (caddyhttp/server.go: ``if wrec.Status() >= 400 { log = logger.Error }``)."""
    return {
        "level": level or ("error" if status >= 400 else "info"),
        "ts": ts,
        "logger": logger,
        "msg": "handled request",
        "request": {
            "remote_ip": ip,
            "remote_port": "51234",
            "client_ip": ip,
            "proto": "HTTP/1.1",
            "method": method,
            "host": host,
            "uri": uri,
            "headers": {"User-Agent": [ua], "Accept": ["*/*"], "Accept-Language": ["en-US,en;q=0.9"]},
        },
        "bytes_read": 0,
        "user_id": "",
        "duration": 0.0042,
        "size": 5120,
        "status": status,
        "resp_headers": {"Server": ["Caddy"], "Content-Type": ["text/html; charset=utf-8"], **(resp_headers or {})},
    }


def line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def other_logger_line(ts: float) -> str:
    return line(
        {
            "level": "info",
            "ts": ts,
            "logger": "tls.cache.maintenance",
            "msg": "started background certificate maintenance",
        }
    )


def _visit(rng: random.Random, ts: float, ip: str, ua: str) -> list[dict]:
    """One visitor's requests, starting at ts."""
    weights = [w for w, _, _ in _DESTINATIONS]
    _, host, zim = rng.choices(_DESTINATIONS, weights)[0]
    records = []
    if zim:
        records.append(access_record(ts, host, f"/viewer#{zim}", ip=ip, ua=ua))
        ts += 1
        records.append(access_record(ts, host, f"/content/{zim}/", ip=ip, ua=ua))
        for _ in range(rng.randint(1, 12)):
            ts += rng.expovariate(1 / 40)
            records.append(access_record(ts, host, f"/content/{zim}/A/Article_{rng.randint(1, 5000)}", ip=ip, ua=ua))
    elif host == "edupi.hotspot":
        records.append(access_record(ts, host, "/", ip=ip, ua=ua))
        for _ in range(rng.randint(0, 3)):
            ts += rng.expovariate(1 / 60)
            records.append(access_record(ts, host, "/api/documents/", "POST", 201, ip=ip, ua=ua))
        if rng.random() < 0.3:
            ts += 20
            records.append(
                access_record(ts, host, f"/api/documents/{rng.randint(1, 300)}", "DELETE", 204, ip=ip, ua=ua)
            )
    elif host == "files.hotspot":
        records.append(access_record(ts, host, "/", ip=ip, ua=ua))
        ts += rng.expovariate(1 / 30)
        records.append(
            access_record(
                ts,
                host,
                "/api/upload",
                "POST",
                200,
                ip=ip,
                ua=ua,
                resp_headers={"X-Tfm-Files-Added": [str(rng.randint(1, 4))], "X-Tfm-Files-Deleted": ["0"]},
            )
        )
        if rng.random() < 0.3:
            ts += 15
            records.append(
                access_record(
                    ts,
                    host,
                    "/api/delete",
                    "POST",
                    200,
                    ip=ip,
                    ua=ua,
                    resp_headers={"X-Tfm-Files-Added": ["0"], "X-Tfm-Files-Deleted": ["1"]},
                )
            )
    else:
        records.append(access_record(ts, host, "/", ip=ip, ua=ua))
        for _ in range(rng.randint(0, 6)):
            ts += rng.expovariate(1 / 50)
            records.append(access_record(ts, host, f"/videos/{rng.randint(1, 400)}.mp4", ip=ip, ua=ua))
    if rng.random() < 0.02:
        records.append(access_record(ts + 1, host, "/broken", status=502, ip=ip, ua=ua))
    return records


def write_demo_box(
    log_dir: Path, packages_file: Path, first_day: datetime, days: int = 7, visits_per_day: int = 1500, seed: int = 7
) -> dict:
    """A week of a stock offspot: on from ~07:00 to ~21:00 UTC each day (heartbeat every
    minute), visitors in between, logged to ``metrics.json`` and rolled each midnight into
    uncompressed ``metrics-<UTC time>.json`` as the stock reverse proxy does
    (offspot/container-images ``reverse-proxy/gen-caddyfile.py``: ``roll_uncompressed``), one
    rolled file also present gzipped (a sync without ``--delete`` keeps both), a truncated last
    line where the box lost power, other loggers' lines, a non-log file, a non-JSON line."""
    rng = random.Random(seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    packages_file.parent.mkdir(parents=True, exist_ok=True)
    packages_file.write_text(DEMO_PACKAGES)
    (log_dir / "Caddyfile.bak").write_text("kiwix.hotspot {\n  reverse_proxy kiwix:80\n}\n")
    heartbeat: list[str] = []
    total = 0
    for day in range(days):
        start = first_day + timedelta(days=day)
        on = start + timedelta(hours=7, minutes=rng.randint(0, 40))
        off = start + timedelta(hours=20, minutes=rng.randint(0, 59))
        minute = on
        while minute < off:
            heartbeat.append(f"{minute.timestamp() + rng.randint(0, 5)}\n")
            minute += timedelta(minutes=1)
        records: list[dict] = []
        span = (off - on).total_seconds() - 900
        for _ in range(visits_per_day):
            ip = f"192.168.2.{rng.randint(2, 250)}"
            records.extend(_visit(rng, on.timestamp() + rng.random() * span, ip, rng.choice(USER_AGENTS)))
        records.sort(key=lambda r: r["ts"])
        lines = [line(r) for r in records]
        lines.insert(len(lines) // 3, other_logger_line(records[len(records) // 3]["ts"]))
        lines.insert(len(lines) // 2, "caddy: received SIGHUP, reloading\n")
        if day == 2:  # power cut mid-write: the day's last line is cut short
            lines[-1] = lines[-1][: len(lines[-1]) // 2]
        total += len(lines)
        text = "".join(lines)
        if day < days - 1:
            rolled = start + timedelta(days=1) - timedelta(seconds=1)
            name = f"metrics-{rolled:%Y-%m-%dT%H-%M-%S}.000.json"
            (log_dir / name).write_text(text)
            if day == 1:  # the same rotation also gzipped: read once
                with gzip.open(log_dir / f"{name}.gz", "wt", encoding="utf-8") as stream:
                    stream.write(text)
        else:
            (log_dir / "metrics.json").write_text(text)
    (log_dir / "heartbeat.log").write_text("".join(heartbeat))
    return {"lines": total, "heartbeats": len(heartbeat)}


def demo_first_day(now: datetime | None = None, days: int = 7) -> datetime:
    """The first day of the last `days` whole UTC days before now."""
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
