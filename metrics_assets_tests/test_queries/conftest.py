"""Fixtures of the queries tests: stand-in lake tables with sample events, a DuckDB engine
over them, and an engine that records every call (to prove rejected queries never reach it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from metrics_assets import settings
from metrics_assets.resources import DuckDBQueryEngine
from metrics_assets_tests.test_queries import lake as standin

START_MS = 1_763_800_000_000  # 2025-11-22 08:26:40 UTC


class RecordingEngine(DuckDBQueryEngine):
    """The real DuckDB engine, keeping a list of every SQL it was asked to run. The list is
    held by the class (Dagster copies resource instances), cleared by the ``engine`` fixture."""

    calls: ClassVar[list[str]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None):
        RecordingEngine.calls.append(sql)
        return super().execute(sql, params)


@pytest.fixture
def events(metrics_home) -> dict[str, list[dict]]:
    """Stand-in events_v0 / events_v1 over METRICS_HOME/objects: 9 v0 events in two files
    (two minutes), 4 v1 events (the engine reads them through ``standin.catalog()``)."""
    store_dir = settings.object_store_dir()
    v0 = standin.sample_v0(9, START_MS)
    standin.write_events(store_dir, "v0", v0[:5], START_MS, "a")
    standin.write_events(store_dir, "v0", v0[5:], START_MS + 60_000, "b")
    v1 = standin.sample_v1(4)
    standin.write_events(store_dir, "v1", v1, START_MS, "a")
    return {"v0": v0, "v1": v1}


@pytest.fixture
def engine(events, monkeypatch) -> RecordingEngine:
    """The DuckDB engine; every SQL that reaches it (through the ad hoc execution path, the
    hardened session, or ``execute``) is recorded in ``RecordingEngine.calls``."""
    from metrics_assets.queries import execution

    RecordingEngine.calls.clear()
    real = execution.execute

    def recording(engine, sql, **kwargs):
        RecordingEngine.calls.append(sql)
        return real(engine, sql, **kwargs)

    monkeypatch.setattr(execution, "execute", recording)
    return RecordingEngine.with_catalog(
        standin.catalog(), object_store_dir=str(settings.object_store_dir()), database=":memory:", threads=1
    )
