"""Read-and-update access to the request tables with nothing but SQLAlchemy, for the CLI's
``status``, ``next`` and ``cancel``: they answer in a fraction of a second because they import
no Dagster, no DuckDB, no Arrow (``metrics_assets.resources`` imports Dagster).

It offers the subset of :class:`~metrics_assets.resources.warehouse.Warehouse` that
``store.py``'s reads and status updates use. It never migrates the schema: the tables exist
once anything (a submit, a run, ``metrics-assets upgrade``) has used the warehouse.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from metrics_assets import settings
from metrics_assets.sql_access import SqlAccess, normalise_url

_engines: dict[str, sa.engine.Engine] = {}


class LightWarehouse(SqlAccess):
    def __init__(self, url: str | None = None):
        self.url = url or settings.warehouse_url()

    @property
    def engine(self) -> sa.engine.Engine:
        engine = _engines.get(self.url)
        if engine is None:
            url = normalise_url(self.url)
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 60}
            engine = _engines[self.url] = sa.create_engine(url, **kwargs)
        return engine
