"""The hourly offspot indicator computation on a 1,000,000-line Caddy access log (one hour).

Figures, all from this run:

* time of the computation (log files gathered and checked, one DuckDB pass, indicators) against
  the time DuckDB takes to scan and group the same file with ``read_json`` on the columns the
  computation uses (grouped by hour and host, every used column read): target <= 1.5x;
* its throughput against the 87,816 lines/s GoAccess publishes for one core: target >= 10x;
* its peak RSS (the child process's own ``ru_maxrss``, Python and DuckDB included) against
  1 GB: target <= 1x.

Each side runs in its own fresh child process, alternating, three times; the best time of each
counts (the machine is shared, so the minimum is the fairest estimate of each).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.run import Result

GOACCESS_LINES_PER_S = 87_816
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)

PACKAGES = """packages:
  - {kind: zim, title: Wikipedia, url: "//kiwix.hotspot/viewer#wikipedia_en_all"}
  - {kind: zim, title: Wiktionnaire, url: "//kiwix.hotspot/viewer#wiktionary_fr"}
  - {kind: zim, title: Gutenberg, url: "//kiwix.hotspot/viewer#gutenberg_en"}
  - {kind: files, title: Khan videos, url: "//khan.hotspot/"}
  - {kind: app, ident: edupi.offspot.kiwix.org, title: EduPi, url: "//edupi.hotspot/"}
  - {kind: app, ident: file-manager.offspot.kiwix.org, title: File Manager, url: "//files.hotspot/"}
"""

GENERATE_SQL = """
COPY (
    SELECT
        CASE WHEN i % 97 = 0 THEN 'error' ELSE 'info' END AS level,
        {t0} + i * 3600.0 / {n} AS ts,
        'http.log.access.log0' AS logger,
        'handled request' AS msg,
        {{'remote_ip': '192.168.2.' || (i % 250), 'remote_port': '51234',
          'client_ip': '192.168.2.' || (i % 250), 'proto': 'HTTP/1.1',
          'method': CASE WHEN i % 7 = 4 AND i % 3 = 0 THEN 'POST' ELSE 'GET' END,
          'host': ['kiwix.hotspot', 'khan.hotspot', 'edupi.hotspot', 'files.hotspot', 'captive.hotspot'][1 + i % 7 % 5],
          'uri': CASE WHEN i % 7 % 5 = 0
                      THEN '/content/' || ['wikipedia_en_all', 'wiktionary_fr', 'gutenberg_en'][1 + i % 3]
                           || CASE WHEN i % 11 = 0 THEN '/' ELSE '/A/Article_' || (i % 5000) END
                      WHEN i % 7 % 5 = 2 AND i % 3 = 0 THEN '/api/documents/'
                      ELSE '/static/' || (i % 1000) || '.js' END,
          'headers': {{'User-Agent': ['Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 Chrome/119.0 Mobile'],
                       'Accept': ['*/*'], 'Accept-Language': ['en-US,en;q=0.9']}}}} AS request,
        0 AS bytes_read, '' AS user_id, 0.0012 AS duration, 5120 AS size,
        CASE WHEN i % 97 = 0 THEN 502 WHEN i % 7 % 5 = 2 AND i % 3 = 0 THEN 201 ELSE 200 END AS status,
        CASE WHEN i % 7 % 5 = 3
             THEN '{{"Server":["Caddy"],"X-Tfm-Files-Added":["1"],"X-Tfm-Files-Deleted":["0"]}}'
             ELSE '{{"Server":["Caddy"],"Content-Type":["text/html; charset=utf-8"]}}' END::JSON AS resp_headers
    FROM range({n}) t(i)
) TO '{path}' (FORMAT json)
"""

BASELINE_SQL = """
SELECT date_trunc('hour', to_timestamp(ts)) AS hour, request.host AS host, count(*) AS n,
       count(level), count(msg), count(logger), count(request.uri), count(request.method), count(status),
       count(resp_headers."X-Tfm-Files-Added"[1]), count(resp_headers."X-Tfm-Files-Deleted"[1])
FROM read_json('{path}', format = 'newline_delimited', columns = {columns})
GROUP BY ALL
"""


def make_box(folder: Path, n: int) -> None:
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "packages.yaml").write_text(PACKAGES)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    duckdb.sql(GENERATE_SQL.format(t0=T0.timestamp(), n=n, path=logs / "access.log"))
    start = T0.timestamp()
    (logs / "heartbeat.log").write_text("".join(f"{start + 60 * m + 3}\n" for m in range(60)))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(mode: str, folder: Path) -> dict:
    """Runs in a fresh process: one side of the comparison, timed (wall and CPU), with its own
    peak RSS."""
    started = time.perf_counter()
    if mode == "baseline":
        import duckdb

        from metrics_assets.offspot.indicators import _COLUMNS

        started, cpu = time.perf_counter(), _cpu()  # imports are not the scan
        rows = duckdb.sql(BASELINE_SQL.format(path=folder / "logs" / "access.log", columns=_COLUMNS)).fetchall()
        lines = sum(r[2] for r in rows)
    else:
        from metrics_assets.offspot.config import LogLocation
        from metrics_assets.offspot.indicators import compute_indicators
        from metrics_assets.offspot.sources import Folder, gather_box

        started, cpu = time.perf_counter(), _cpu()  # imports are not the computation
        end = T0 + timedelta(hours=1)
        os.environ["OFFSPOT_PACKAGES_FILE"] = str(folder / "packages.yaml")
        gathered = gather_box("default", Folder(LogLocation(directory=folder / "logs"), None, folder), T0, end)
        result = compute_indicators([gathered.box_input()], T0, end)
        lines = result.lines_read
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "cpu_seconds": _cpu() - cpu, "lines": lines, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _spawn(mode: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_offspot", mode, str(folder)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx) -> list[Result]:
    n = 20_000 if ctx.quick else 1_000_000
    folder = ctx.scratch / "offspot_box"
    make_box(folder, n)
    rounds = 1 if ctx.quick else 3
    ours, base = [], []
    for _ in range(rounds):
        base.append(_spawn("baseline", folder))
        ours.append(_spawn("indicators", folder))
    assert all(r["lines"] == n for r in ours + base), (ours, base)
    best, best_base = min(r["seconds"] for r in ours), min(r["seconds"] for r in base)
    peak = max(r["max_rss_mb"] for r in ours)
    label = f"{n:,}-line hour"
    return [
        Result(f"offspot indicators, {label}", best, "s", "DuckDB read_json scan+group", best_base, max_ratio=1.5,
               note=f"runs: ours {[round(r['seconds'], 2) for r in ours]}, baseline {[round(r['seconds'], 2) for r in base]}; "
                    f"best CPU s: ours {min(r['cpu_seconds'] for r in ours):.2f}, "
                    f"baseline {min(r['cpu_seconds'] for r in base):.2f}"),
        Result(f"offspot indicators, {label}", n / best, "lines/s", "GoAccess, one core (published)",
               GOACCESS_LINES_PER_S, min_ratio=10.0,
               note=f"the DuckDB scan alone here: {n / best_base:,.0f} lines/s ({n / best_base / GOACCESS_LINES_PER_S:.1f}x)"),
        Result(f"offspot indicators peak RSS, {label}", peak, "MB", "1 GB", 1024.0, max_ratio=1.0,
               note=f"baseline child peaked at {max(r['max_rss_mb'] for r in base):,.0f} MB"),
    ]


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], Path(sys.argv[2]))))
