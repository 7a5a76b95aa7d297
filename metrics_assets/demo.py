"""``metrics-assets demo``: sample data for every domain, then every asset materialized.

Each domain that has a ``demo`` module takes part. Its contract:

``generate(home: pathlib.Path) -> list[DemoStep]``
    Write the domain's sample inputs under ``home`` (the ``METRICS_HOME``, with the object
    store, spool and warehouse at their default places) and return the materializations to
    run, in order.

Runs are recorded in a persistent Dagster instance under ``$METRICS_HOME/dagster``, so the UI
started with ``DAGSTER_HOME`` pointing there shows them.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field

from metrics_assets import settings

INSTANCE_YAML = """storage:
  custom:
    module: metrics_assets.instance
    class: EnvStorage
    config: {}
telemetry:
  enabled: false
"""


#: Dagster's console logger at WARNING: the demo prints one progress line per step instead of
#: every engine event (the UI shows them all).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DemoStep:
    """One materialization: assets (keys as strings, ``/`` between key parts), and either one
    partition key, or a partition range that runs as a single backfill run. Or, with
    ``sensor``, one evaluation of that sensor, whose run requests then run in process (adding
    any dynamic partitions it asks for), as the daemon would launch them."""

    label: str
    assets: list[str]
    partition_key: str | None = None
    partition_range: tuple[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    sensor: str | None = None


def _say(message: str) -> None:
    print(message, flush=True)


def _domain_demos():
    from metrics_assets.definitions import DOMAINS

    for name in DOMAINS:
        try:
            module = importlib.import_module(f"metrics_assets.{name}.demo")
        except ModuleNotFoundError as error:
            if error.name == f"metrics_assets.{name}.demo":
                continue
            raise
        yield name, module


def run_sensor_step(step: DemoStep, instance) -> None:
    import dagster as dg

    from metrics_assets.definitions import defs

    sensor = defs.resolve_sensor_def(step.sensor)
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, sensor_name=step.sensor))
    if result is None or isinstance(result, dg.SkipReason):
        return
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for run_request in getattr(result, "run_requests", None) or []:
        job = defs.resolve_job_def(run_request.job_name or sensor.job_name)
        job.execute_in_process(
            instance=instance,
            partition_key=run_request.partition_key,
            tags={**run_request.tags, **step.tags},
            raise_on_error=False,
            run_config=QUIET,
        )


def run_step(step: DemoStep, instance) -> None:
    import dagster as dg

    from metrics_assets.definitions import defs

    if step.sensor:
        run_sensor_step(step, instance)
        return
    tags = dict(step.tags)
    if step.partition_range:
        tags["dagster/asset_partition_range_start"] = step.partition_range[0]
        tags["dagster/asset_partition_range_end"] = step.partition_range[1]
    keys = [dg.AssetKey.from_user_string(a) for a in step.assets]
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(keys))
    result = job.execute_in_process(
        instance=instance,
        partition_key=step.partition_key,
        tags=tags,
        resources=None,
        raise_on_error=True,
        run_config=QUIET,
    )
    if not result.success:
        raise RuntimeError(f"demo step failed: {step.label}")


def main(home: str | None = None) -> int:
    import dagster as dg

    if home:
        os.environ["METRICS_HOME"] = home
    home_path = settings.metrics_home()
    home_path.mkdir(parents=True, exist_ok=True)
    dagster_home = home_path / "dagster"
    dagster_home.mkdir(exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists():
        # The same storage as the repository's dagster.yaml: SQLite under $METRICS_HOME/dagster
        # locally, so `dagster dev` run from the repository shows the demo's runs.
        instance_yaml.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    _say(f"metrics_assets demo: METRICS_HOME={home_path}")

    plans = []
    for name, module in _domain_demos():
        started = time.perf_counter()
        _say(f"[{name}] generating sample data ...")
        steps = module.generate(home_path)
        _say(f"[{name}] sample data ready in {time.perf_counter() - started:.1f}s ({len(steps)} steps to run)")
        plans.append((name, steps))

    instance = dg.DagsterInstance.get()
    total = sum(len(steps) for _, steps in plans)
    done = 0
    for name, steps in plans:
        for step in steps:
            done += 1
            started = time.perf_counter()
            _say(f"[{done}/{total}] {name}: {step.label} ...")
            run_step(step, instance)
            _say(f"[{done}/{total}] {name}: {step.label} done in {time.perf_counter() - started:.1f}s")

    _say("")
    _say("Demo finished.")
    _say(f"  Warehouse: {settings.warehouse_url()}")
    _say(f"  Inputs:    {settings.object_store_dir()} (object store), {settings.spool_dir()} (spool)")
    _say("  Open the UI on the same data and runs, from the repository folder:")
    _say(f"    METRICS_HOME={home_path} dagster dev -w workspace.yaml")
    _say("  then browse http://127.0.0.1:3000 (Assets, Runs).")
    _say("  Or look at the dashboards (every domain, and the offspot box's KPI API):")
    _say(f"    METRICS_HOME={home_path} metrics-assets dashboard")
    _say("  then browse http://127.0.0.1:8050.")
    return 0
