"""Automation that belongs to the whole code location rather than to one domain.

``metrics_automation_sensor`` evaluates the ``automation_condition`` of every asset and check
in the code location (today: ``probe_popularity``, ``release_correlation`` and
``probes_to_build``, all ``AutomationCondition.eager()``) and launches the runs they ask for.

Why it is shipped here: without a sensor of its own, Dagster makes a
``default_automation_condition_sensor`` which starts STOPPED, so eager assets never follow
their upstream until someone turns it on by hand in the UI. Declaring the sensor in the
definitions with ``default_status=RUNNING`` makes the chain run as shipped; an operator can
still stop it in the UI (that choice is kept in the instance, not overwritten on reload).

It runs in the daemon's asset daemon (``use_user_code_server=False``, Dagster's default):
the conditions are Dagster's own, so nothing of ours needs to run in the daemon process.
"""

from __future__ import annotations

import dagster as dg

from metrics_assets import settings

AUTOMATION_SENSOR_NAME = "metrics_automation_sensor"


def automation_interval_s() -> int:
    """``METRICS_AUTOMATION_INTERVAL_S``: seconds between evaluations (default 30, Dagster's)."""
    return settings.current().automation_interval_s


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=automation_interval_s(),
        description=(
            "Evaluates every asset's automation condition (the probes chain after "
            "probe_views_daily: probe_popularity, release_correlation, probes_to_build) and "
            "launches what they request. Running by default so the chain runs as shipped."
        ),
    )
