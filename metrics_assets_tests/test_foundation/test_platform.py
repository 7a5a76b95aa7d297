"""The code location as an operator meets it: loads without warnings of ours, every schedule,
sensor and job named and listed in the README with its default status, automation on by
default, every check described, duplicate-key checks blocking."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: module-level warnings are raised once, at first import.
LOAD_SCRIPT = r"""
import warnings
warnings.simplefilter("always")
# The project's own DeprecationWarnings are errors (third-party ones are not ours to fix).
warnings.filterwarnings("error", category=DeprecationWarning, module=r"metrics_assets(\..*)?$")
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    warnings.filterwarnings("error", category=DeprecationWarning, module=r"metrics_assets(\..*)?$")
    import metrics_assets.definitions  # noqa: F401
for w in seen:
    print(f"WARNING {w.category.__name__} {w.filename}:{w.lineno} {w.message}")
print("LOADED")
"""


def test_definitions_load_without_deprecation_or_backfill_beta_warnings(tmp_path):
    env = {**os.environ, "METRICS_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning:metrics_assets", "-c", LOAD_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED" in done.stdout
    warnings_seen = [line for line in done.stdout.splitlines() if line.startswith("WARNING ")]
    ours = [w for w in warnings_seen if "DeprecationWarning" in w and "/metrics_assets/" in w]
    assert ours == []
    # The one BetaWarning we accept (BackfillPolicy) is filtered once, in metrics_assets/__init__.py.
    assert [w for w in warnings_seen if "backfill_policy" in w] == []


def _defs():
    from metrics_assets.definitions import defs

    return defs


def _readme_rows() -> dict[str, tuple[str, str]]:
    """``| `name` | kind | default status | ... |`` rows of the README's automation table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|\s*(schedule|sensor|job)\s*\|\s*(RUNNING|STOPPED|-)\s*\|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


def test_every_schedule_sensor_and_job_is_named_and_listed_in_the_readme_with_its_status():
    defs = _defs()
    rows = _readme_rows()
    expected = {}
    for schedule in defs.schedules or []:
        expected[schedule.name] = ("schedule", schedule.default_status.value)
    for sensor in defs.sensors or []:
        expected[sensor.name] = ("sensor", sensor.default_status.value)
    for job in defs.jobs or []:
        expected[job.name] = ("job", "-")
    assert rows == expected
    # The names the docs used to get wrong.
    assert "probes_daily_schedule" in expected and "probes_daily_job_schedule" not in expected


def test_automation_condition_sensor_is_shipped_running():
    defs = _defs()
    sensor = defs.resolve_sensor_def("metrics_automation_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)
    eager = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert {"probe_popularity", "release_correlation", "probes_to_build"} <= {k.to_user_string() for k in eager}
    assert eager <= targeted


def test_every_check_is_described_and_duplicate_key_checks_block():
    defs = _defs()
    graph = defs.resolve_asset_graph()
    undescribed = []
    blocking = set()
    for assets_def in graph.assets_defs:
        for spec in assets_def.check_specs:
            if not (spec.description or "").strip():
                undescribed.append(spec.key.to_user_string())
            if spec.blocking:
                blocking.add(spec.key.to_user_string())
    for checks_def in defs.asset_checks or []:
        for spec in checks_def.check_specs:
            if not (spec.description or "").strip():
                undescribed.append(spec.key.to_user_string())
    assert undescribed == []
    assert {"event_rollups_hourly:no_duplicate_keys", "metrics:no_duplicate_keys"} <= blocking


def test_every_domain_keeps_dagster_in_its_declaring_modules_and_makes_no_infrastructure_by_hand():
    """Issue 15: no private Dagster import, no DuckDB session but open_session, no hand-written
    SQL escaper, and Dagster only in __init__/assets/automation, in every domain."""
    from pathlib import Path

    import metrics_assets
    from metrics_assets_tests.structure import DAGSTER_MODULES, module_problems

    root = Path(metrics_assets.__file__).parent
    # probes/source.py declares a resource (GlamDatabase, the app's database): a Dagster module too
    declaring = {"probes": DAGSTER_MODULES | {"source.py"}}
    problems = {
        d: module_problems(root / d, declaring.get(d, DAGSTER_MODULES))
        for d in ("offspot", "events", "storage", "probes", "queries")
    }
    assert {d: p for d, p in problems.items() if p} == {}
