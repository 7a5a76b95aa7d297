"""Dagster instance storage chosen by the environment, for ``dagster.yaml``.

Production sets ``DAGSTER_PG_HOST`` (with ``DAGSTER_PG_PORT``, ``DAGSTER_PG_USERNAME``,
``DAGSTER_PG_PASSWORD``, ``DAGSTER_PG_DB``), and runs, event logs and schedules go to
PostgreSQL through dagster-postgres. Without them, the same ``dagster.yaml`` keeps working on a
laptop: the storage is SQLite under ``$DAGSTER_HOME`` (or ``$METRICS_HOME/dagster``).

Why not dagster-postgres's own ``storage: postgres`` block with ``env:`` values? Dagster's CLI
reads ``dagster.yaml`` from the current folder whenever ``DAGSTER_HOME`` is unset, and an
``env:`` value that is unset is a hard error: every local ``dagster dev``, ``dagster asset
materialize`` and ``dagster definitions validate`` run from the repository would fail.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from metrics_assets import settings


def postgres_url_from_env() -> str | None:
    """The instance's PostgreSQL URL from ``DAGSTER_PG_*``, or None when not configured."""
    now = settings.current()
    if now.dagster_pg_host is None:
        return None
    from dagster_postgres.utils import get_conn_string

    return get_conn_string(
        username=now.dagster_pg_username,
        password=now.dagster_pg_password or "",
        hostname=now.dagster_pg_host,
        db_name=now.dagster_pg_db,
        port=str(now.dagster_pg_port),
    )


class EnvStorage(DagsterStorage, ConfigurableClass):
    """``storage: custom: {module: metrics_assets.instance, class: EnvStorage}``.

    A factory: :meth:`from_config_value` returns dagster-postgres's (or Dagster's SQLite)
    storage itself, so the instance talks to the real thing with nothing in between."""

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value):
        url = postgres_url_from_env()
        if url is not None:
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(inst_data=inst_data, postgres_url=url, should_autocreate_tables=True)
        from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

        home = os.environ.get("DAGSTER_HOME") or str(settings.metrics_home() / "dagster")
        Path(home).mkdir(parents=True, exist_ok=True)
        return DagsterSqliteStorage(base_dir=str(Path(home) / "storage"), inst_data=inst_data)
