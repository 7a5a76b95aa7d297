"""When each asset was last materialized, from the Dagster instance's event log.

The warehouse tables do not say when they were written; the instance does (the same one the
UI and the daemon use: ``DAGSTER_HOME``, or ``$METRICS_HOME/dagster`` as the demo sets it up,
with ``DAGSTER_PG_*`` for PostgreSQL, see ``metrics_assets/instance.py``). Read only: one
``get_latest_materialization_events`` call per page.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from metrics_assets import settings

_lock = threading.Lock()
_instances: dict[str, object] = {}


def instance_home() -> Path | None:
    """The folder of the Dagster instance's ``dagster.yaml``, or None when there is none."""
    home = os.environ.get("DAGSTER_HOME")
    candidates = [Path(home)] if home else [settings.metrics_home() / "dagster"]
    for folder in candidates:
        if (folder / "dagster.yaml").is_file():
            return folder
    return None


def _instance():
    folder = instance_home()
    if folder is None:
        return None
    import dagster as dg

    with _lock:
        key = str(folder)
        if key not in _instances:
            _instances[key] = dg.DagsterInstance.from_config(key)
        return _instances[key]


def last_materialized(asset_keys: list[str]) -> dict[str, datetime | None]:
    """Per asset key, the time of its newest materialization (any partition), or None when it
    has none or no instance is configured."""
    found: dict[str, datetime | None] = dict.fromkeys(asset_keys)
    instance = _instance()
    if instance is None:
        return found
    import dagster as dg

    events = instance.get_latest_materialization_events([dg.AssetKey(k) for k in asset_keys])
    for key, event in events.items():
        if event is not None:
            found[key.to_user_string()] = datetime.fromtimestamp(event.timestamp, UTC)
    return found
