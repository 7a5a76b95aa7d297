"""Shared fixtures: real warehouses (SQLite and PostgreSQL), a real moto server, a clean
``METRICS_HOME``.

* ``warehouse`` is parametrized: every test that takes it runs on SQLite and on PostgreSQL.
  ``pg_warehouse`` / ``sqlite_warehouse`` pick one.
* PostgreSQL: ``METRICS_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
  names the server; the session creates a fresh database on it, migrates it once, truncates
  every table between tests, and drops it at the end. A server that cannot be reached is an
  error, never a skip.
* ``moto_server``: moto in server mode on 127.0.0.1, a real HTTP endpoint for S3, SQS and
  Athena; its state is reset before each test that uses it.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from metrics_assets.resources.warehouse import (
    Warehouse,
    dispose_engine,
    engine_for,
    normalise_url,
)

PG_SERVER_URL = os.environ.get("METRICS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def metrics_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own METRICS_HOME, with the default local layout under it."""
    home = tmp_path / "metrics_home"
    home.mkdir()
    monkeypatch.setenv("METRICS_HOME", str(home))
    monkeypatch.setenv("METRICS_DEPLOYMENT", "local")
    for name in ("METRICS_WAREHOUSE_URL", "METRICS_OBJECT_STORE_DIR", "METRICS_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def _no_leaked_dagster_instance():
    """Each test starts with no "current" Dagster instance.

    Dagster keeps the entered instance's defs-state storage in a ContextVar. Entering one
    instance twice (``build_schedule_context(instance=...)`` outside a ``with`` does) overwrites
    its exit stack, so the outer ``with`` never resets the variable, and every later
    ``Definitions`` load in the process trips over the disposed instance."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


# -- PostgreSQL ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_database_url() -> str:
    """A fresh database for this test session, migrated to every head."""
    server = sa.make_url(PG_SERVER_URL)
    name = f"metrics_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(PG_SERVER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine_for(url)
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(url: str) -> None:
    engine = engine_for(url)
    with engine.begin() as conn:
        names = [t for t in sa.inspect(conn).get_table_names() if t != "metrics_schema_version"]
        if names:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_warehouse(pg_database_url, monkeypatch) -> Warehouse:
    truncate_all(pg_database_url)
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", pg_database_url)
    return Warehouse(url=pg_database_url)


# -- SQLite --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("sqlite_template") / "warehouse.sqlite"
    url = f"sqlite:///{path}"
    engine_for(url)
    dispose_engine(url)
    return path


@pytest.fixture
def sqlite_warehouse(sqlite_template, metrics_home, monkeypatch) -> Warehouse:
    path = metrics_home / "warehouse.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", url)
    yield Warehouse(url=url)
    dispose_engine(url)


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request) -> Warehouse:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_warehouse")


# -- moto ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto_server(_moto_endpoint, monkeypatch) -> str:
    """A reset moto server; AWS env points at it. Returns the endpoint URL."""
    import requests

    requests.post(f"{_moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return _moto_endpoint
