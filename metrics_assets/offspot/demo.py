"""Demo: a week of a realistic offspot's logs, materialized as one single-run backfill, then
the KPIs, per box and for the fleet. Inputs are written where the defaults look (``$METRICS_HOME/offspot/``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from metrics_assets.demo import DemoStep
from metrics_assets.offspot.samples import demo_first_day, write_demo_box

DAYS = 7


def generate(home: Path) -> list[DemoStep]:
    first = demo_first_day(days=DAYS)
    last_hour = first + timedelta(days=DAYS) - timedelta(hours=1)
    write_demo_box(home / "offspot" / "logs", home / "offspot" / "packages.yaml", first, days=DAYS)
    return [
        DemoStep(
            label=f"offspot_indicators, {DAYS} days of hours as one single-run backfill",
            assets=["offspot_indicators"],
            partition_range=(f"{first:%Y-%m-%d-%H:%M}", f"{last_hour:%Y-%m-%d-%H:%M}"),
        ),
        DemoStep(label="offspot_kpis", assets=["offspot_kpis"]),
        DemoStep(label="offspot_fleet_kpis (a fleet of one: the box 'default')", assets=["offspot_fleet_kpis"]),
    ]
