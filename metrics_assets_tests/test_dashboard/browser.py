"""Render dashboard pages in a real headless Chromium (Debian's ``chromium``), driven over the
Chrome DevTools Protocol with the ``websockets`` client that uvicorn already brings.

For each page: load it, collect every console error and uncaught exception, wait until every
chart has been drawn, count the data points Plotly drew in each chart (bars, markers and line
paths in the SVG, the way a person would see them), and save a full-page screenshot.

Also a command, run by ``.ci/run`` on the demo's warehouse:

    python -m metrics_assets_tests.test_dashboard.browser --home DEMO_HOME --out .ci/artifacts

which serves the dashboard over that ``METRICS_HOME``, checks every page the same way, saves
the screenshots, and exits non-zero naming any page with a console error or an empty chart.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from websockets.sync.client import connect

#: JS: per chart section, whether it is a drawn Plotly chart and how many data points it shows.
CHART_PROBE = """
(() => [...document.querySelectorAll('section.chart')].map(s => {
  const plot = s.querySelector('.js-plotly-plot');
  const visible = el => { const b = el.getBBox ? el.getBBox() : {width: 0, height: 0};
                          return b.width > 0 || b.height > 0; };
  const points = plot ? [...plot.querySelectorAll('.cartesianlayer .point')].filter(visible).length : 0;
  const lines = plot ? [...plot.querySelectorAll('.cartesianlayer path.js-line')]
                         .filter(p => (p.getAttribute('d') || '').length > 2).length : 0;
  return {name: s.dataset.chart, plotted: !!plot && !!plot._fullLayout, nodata: !!s.querySelector('.nodata'),
          points, lines};
}))()
"""


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no chromium on PATH: install Debian's package, `apt-get install -y chromium`")


@dataclass
class PageReport:
    url: str
    errors: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def empty_charts(self) -> list[str]:
        return [c["name"] for c in self.charts if not c["plotted"] or (c["points"] == 0 and c["lines"] == 0)]


class Chromium:
    """One headless Chromium process and one tab, driven over CDP."""

    def __init__(self, width: int = 1400, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.process = subprocess.Popen(
            [
                chromium_binary(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self._connection = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ws = self._connection.__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def _wait_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(e.get("method") == method for e in self.events):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self.events.append(json.loads(self.ws.recv(timeout=remaining)))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(
                    "console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        return errors

    def visit(self, url: str, screenshot: Path | None = None, timeout: float = 30, scale: float = 1) -> PageReport:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired", timeout)
        # Plotly draws synchronously in newPlot; wait until every chart section has its plot.
        deadline = time.monotonic() + timeout
        charts = self.evaluate(CHART_PROBE)
        while any(not c["plotted"] and not c["nodata"] for c in charts) and time.monotonic() < deadline:
            time.sleep(0.1)
            charts = self.evaluate(CHART_PROBE)
        report = PageReport(url=url, charts=charts)
        if screenshot is not None:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = self.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": scale},
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        # events that arrived while probing count too
        try:
            while True:
                self.events.append(json.loads(self.ws.recv(timeout=0.2)))
        except TimeoutError:
            pass
        report.errors = self._errors()
        report.requests = [
            e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"
        ]
        return report

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: The pages every check visits: (screenshot name, path).
PAGES = [
    ("index", "/"),
    ("offspot", "/offspot?box=default&kind=D"),
    ("offspot-fleet-week", "/offspot?box=fleet&kind=W"),
    ("storage", "/storage"),
    ("probes", "/probes"),
    ("events", "/events"),
]


def check_pages(base_url: str, out_dir: Path | None, scale: float = 1) -> list[PageReport]:
    reports = []
    with Chromium() as browser:
        for name, path in PAGES:
            shot = out_dir / f"dashboard-{name}.png" if out_dir else None
            reports.append(browser.visit(base_url + path, shot, scale=scale))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="METRICS_HOME of a demo run")
    parser.add_argument("--out", default=".ci/artifacts", help="folder for the screenshots")
    parser.add_argument("--scale", type=float, default=1, help="screenshot scale (the README's are 0.6)")
    args = parser.parse_args(argv)
    os.environ["METRICS_HOME"] = str(Path(args.home).resolve())
    os.environ.pop("DAGSTER_HOME", None)
    os.environ.pop("METRICS_WAREHOUSE_URL", None)
    from metrics_assets import settings
    from metrics_assets.resources.warehouse import Warehouse
    from metrics_assets_tests.test_dashboard.conftest import live_dashboard

    failed = False
    with live_dashboard(Warehouse(url=settings.warehouse_url())) as base:
        for report in check_pages(base, Path(args.out), args.scale):
            points = ", ".join(f"{c['name']}={c['points'] + c['lines']}" for c in report.charts)
            outside = [u for u in report.requests if not u.startswith((base, "data:"))]
            status = "ok" if not report.errors and not report.empty_charts and not outside else "FAILED"
            print(f"{status} {report.url}: charts {points or 'none'}; screenshot {report.screenshot}")
            for error in report.errors:
                print(f"    console error: {error}")
            for url in outside:
                print(f"    request outside the dashboard: {url}")
            if report.empty_charts:
                print(f"    charts without data points: {', '.join(report.empty_charts)}")
            failed |= status != "ok"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
