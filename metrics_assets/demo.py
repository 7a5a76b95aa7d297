"""``metrics-assets demo``: sample data for every domain, then every asset materialized.

Each domain that has a ``demo`` module takes part. Its contract:

``generate(home: pathlib.Path) -> list[DemoStep]``
    Write the domain's sample inputs under ``home`` (the ``METRICS_HOME``, with the object
    store, spool and warehouse at their default places) and return the materializations to
    run, in order.

Runs are recorded in a persistent Dagster instance: ``$DAGSTER_HOME`` when it is set, else
``$METRICS_HOME/dagster``. A home without a ``dagster.yaml`` gets the project's own (queued run
coordinator, run monitoring, the storage of ``metrics_assets/instance.py``), so the UI and the
daemon started on that ``DAGSTER_HOME`` afterwards see the demo's runs and serve their compute
logs (kept under ``$DAGSTER_HOME/storage``, Dagster's default).

Sensor steps leave the instance as the daemon would: each run carries the sensor's name and its
run key (the daemon skips a run key already launched), and the sensor's cursor is saved in the
instance under the workspace's code location name (``metrics_assets``). Starting the daemon
after the demo therefore launches nothing twice.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from metrics_assets import settings

#: The instance configuration the demo writes into a home that has none: the project's.
PROJECT_DAGSTER_YAML = Path(__file__).with_name("dagster.yaml")  # a link to ../dagster.yaml
#: What earlier versions of the demo wrote (no run queue, no run monitoring): replaced.
OLD_INSTANCE_YAML = """storage:
  custom:
    module: metrics_assets.instance
    class: EnvStorage
    config: {}
telemetry:
  enabled: false
"""
#: The code location and repository names the daemon knows the sensors by (workspace.yaml,
#: deploy/workspace.yaml). Instigator state is keyed by them, not by how the code is loaded.
LOCATION_NAME = "metrics_assets"
REPOSITORY_NAME = "__repository__"


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


def save_sensor_cursor(instance, sensor, cursor: str | None) -> None:
    """Store ``cursor`` as ``sensor``'s, where the daemon will read it (its instigator state,
    found by location, repository and sensor name)."""
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        SensorInstigatorData,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="metrics_assets.definitions"),
        location_name=LOCATION_NAME,
    )
    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), sensor.name)
    state = instance.get_instigator_state(origin.get_id(), origin.get_selector().get_id())
    if state is None:
        instance.add_instigator_state(
            InstigatorState(
                origin,
                InstigatorType.SENSOR,
                InstigatorStatus.DECLARED_IN_CODE,
                SensorInstigatorData(
                    cursor=cursor,
                    min_interval=sensor.minimum_interval_seconds,
                    last_sensor_start_timestamp=time.time(),
                    sensor_type=sensor.sensor_type,
                ),
            )
        )
    else:
        data = state.instigator_data
        instance.update_instigator_state(
            state.with_data(
                SensorInstigatorData(
                    last_tick_timestamp=getattr(data, "last_tick_timestamp", None),
                    last_run_key=getattr(data, "last_run_key", None),
                    min_interval=sensor.minimum_interval_seconds,
                    cursor=cursor,
                    last_tick_start_timestamp=getattr(data, "last_tick_start_timestamp", None),
                    last_sensor_start_timestamp=getattr(data, "last_sensor_start_timestamp", None),
                    sensor_type=sensor.sensor_type,
                    last_tick_success_timestamp=getattr(data, "last_tick_success_timestamp", None),
                )
            )
        )


def run_sensor_step(step: DemoStep, instance) -> None:
    """One evaluation of the sensor, its runs executed in process, tagged and with the cursor
    kept exactly as the daemon would, so that the daemon does not redo them later."""
    import dagster as dg

    from metrics_assets.definitions import defs

    if step.sensor is None:
        raise ValueError(f"demo step {step.label!r} names no sensor")
    sensor = defs.resolve_sensor_def(step.sensor)
    context = dg.build_sensor_context(
        instance=instance, resources=defs.resources, sensor_name=step.sensor, cursor=_saved_cursor(instance, sensor)
    )
    result = sensor(context)
    cursor: str | None = context.cursor
    if isinstance(result, dg.SensorResult) and result.cursor is not None:
        cursor = result.cursor
    if result is None or isinstance(result, dg.SkipReason):
        save_sensor_cursor(instance, sensor, cursor)
        return
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for run_request in getattr(result, "run_requests", None) or []:
        job_name = run_request.job_name or sensor.job_name
        if job_name is None:
            raise ValueError(f"sensor {sensor.name} asked for a run without naming a job")
        job = defs.resolve_job_def(job_name)
        tags = {**run_request.tags, **step.tags, "dagster/sensor_name": sensor.name}
        if run_request.run_key:
            tags["dagster/run_key"] = run_request.run_key
        job.execute_in_process(
            instance=instance,
            partition_key=run_request.partition_key,
            tags=tags,
            raise_on_error=False,
            run_config=QUIET,
        )
    save_sensor_cursor(instance, sensor, cursor)


def _saved_cursor(instance, sensor) -> str | None:
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == sensor.name and state.origin.location_name == LOCATION_NAME:
            return getattr(state.instigator_data, "cursor", None)
    return None


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
    dagster_home = prepare_dagster_home(home_path)
    _say(f"metrics_assets demo: METRICS_HOME={home_path} DAGSTER_HOME={dagster_home}")

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
    _say("  Open the UI on the same data, runs and logs, from the repository folder:")
    _say(f"    METRICS_HOME={home_path} DAGSTER_HOME={dagster_home} dagster dev -w workspace.yaml")
    _say("  then browse http://127.0.0.1:3000 (Assets, Runs). Its daemon resumes the sensors")
    _say("  where the demo left them.")
    _say("  Or look at the dashboards (every domain, and the offspot box's KPI API):")
    _say(f"    METRICS_HOME={home_path} DAGSTER_HOME={dagster_home} metrics-assets dashboard")
    _say("  then browse http://127.0.0.1:8050.")
    return 0


def prepare_dagster_home(home_path: Path) -> Path:
    """``$DAGSTER_HOME`` when set, else ``$METRICS_HOME/dagster``; with the project's
    dagster.yaml when it has none (or only the one older demos wrote). Sets DAGSTER_HOME."""
    configured = settings.current().dagster_home
    dagster_home = configured.expanduser().resolve() if configured else home_path / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = dagster_home / "dagster.yaml"
    if not instance_yaml.exists() or instance_yaml.read_text() == OLD_INSTANCE_YAML:
        instance_yaml.write_text(PROJECT_DAGSTER_YAML.read_text())
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
