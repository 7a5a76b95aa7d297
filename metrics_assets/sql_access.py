"""The warehouse's plain SQL calls, with nothing but SQLAlchemy.

Shared by :class:`metrics_assets.resources.warehouse.Warehouse` (the Dagster resource) and
:class:`metrics_assets.queries.light.LightWarehouse` (the CLI's ``status``/``next``/``cancel``,
which must not import Dagster). A class that mixes this in provides ``engine``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


class SqlAccess:
    """Needs an ``engine`` attribute or property (not annotated here: pydantic would take an
    annotation on a resource's base class for a field)."""

    @contextmanager
    def begin(self) -> Iterator[sa.engine.Connection]:
        """A connection inside one transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        with self.begin() as conn:
            return conn.execute(sa.text(sql), dict(params or {})).rowcount

    def fetch_all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), dict(params or {}))]

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), dict(params or {})).scalar()
