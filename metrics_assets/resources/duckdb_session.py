"""Every DuckDB connection the code location opens comes from here.

:func:`open_session` is the one factory: UTC time zone, spill under ``METRICS_HOME``
(``duckdb_tmp``) capped by ``max_temp_directory_size`` (DuckDB's default spills to ``./.tmp``
wherever the process runs, uncapped: a runaway query once wrote 77 GB there), and optional
``memory_limit`` / ``threads``. Domains call it instead of ``duckdb.connect()``.

:func:`hardened_session` builds on it for SQL written by someone we do not trust.

The local query engine (:class:`~metrics_assets.resources.query_engine.DuckDBQueryEngine`) is
a trusted tool: it runs the code location's own SQL, with the settings that SQL needs. SQL
from outside (the queries domain's ad hoc queries) gets a session of its own from
:func:`hardened_session`, which DuckDB itself locks down, so that a bug in a validator cannot
leak anything:

* ``enable_external_access = false``, except ``allowed_directories``: the folders of the
  lake tables it may read. No other file, no URL (``https://``, ``s3://``), no ``ATTACH``,
  no ``COPY ... TO``, no ``INSTALL``.
* ``autoinstall_known_extensions`` and ``autoload_known_extensions`` off, community and
  unsigned extensions refused: a URL cannot pull in httpfs, ``LOAD`` is refused.
* ``memory_limit`` and ``threads`` as given; spills under ``temp_directory``, at most
  ``max_temp_directory_size``.
* ``lock_configuration = true`` last: no ``SET`` / ``RESET`` / ``PRAGMA`` can undo any of it.

The views the session gets are given by the caller (``views``: name -> SELECT) and created
before the lock, after the Python functions they call (``functions``); with ``hide`` they
leave out the columns (and struct fields) the caller wants hidden, so even a query a
validator wrongly lets through cannot select them.

``interrupt()`` on the returned connection stops the running statement from another thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from metrics_assets import settings
from metrics_assets.resources.lake import ScalarFunction
from metrics_assets.resources.sqltext import ident as _ident
from metrics_assets.resources.sqltext import literal as _literal

DEFAULT_SPILL_CAP = "20GB"


def open_session(
    database: str = ":memory:",
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    max_temp_directory_size: str = DEFAULT_SPILL_CAP,
    config: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up the house way (see the module docstring)."""
    conn = duckdb.connect(database, config=dict(config or {}))
    try:
        spill = Path(temp_directory) if temp_directory else settings.metrics_home() / "duckdb_tmp"
        statements = ["SET TimeZone = 'UTC'"]
        if threads:
            statements.append(f"SET threads = {int(threads)}")
        if memory_limit:
            statements.append(f"SET memory_limit = {_literal(memory_limit)}")
        statements += [
            f"SET temp_directory = {_literal(str(spill))}",
            f"SET max_temp_directory_size = {_literal(max_temp_directory_size)}",
        ]
        for statement in statements:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(frozen=True)
class SessionLimits:
    memory_limit: str = "1GB"
    threads: int = 2
    temp_directory: str | None = None
    max_temp_directory_size: str = "5GB"


def hardened_session(
    allowed_directories: Iterable[str | Path],
    limits: SessionLimits,
    views: Mapping[str, str] | None = None,
    hide: Callable[[str], bool] | None = None,
    functions: Iterable[ScalarFunction] = (),
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection, locked down as the module says, with ``views``
    (name -> SELECT) and the ``functions`` they call; with ``hide``, each view leaves out the
    columns and struct fields whose name it hides (:func:`masked_select`)."""
    if limits.temp_directory:
        Path(limits.temp_directory).mkdir(parents=True, exist_ok=True)
    conn = open_session(
        threads=limits.threads,
        memory_limit=limits.memory_limit,
        temp_directory=limits.temp_directory,
        max_temp_directory_size=limits.max_temp_directory_size,
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
        },
    )
    try:
        dirs = sorted({str(Path(d).resolve()).rstrip("/") + "/" for d in allowed_directories})
        statements = [
            "SET allowed_directories = [" + ", ".join(_literal(d) for d in dirs) + "]",
            "SET allowed_paths = []",
            "SET enable_external_access = false",
        ]
        for statement in statements:
            conn.execute(statement)
        for function in functions:
            function.register(conn)
        for name, select in (views or {}).items():
            body = masked_select(conn, select, hide) if hide else select
            conn.execute(f"CREATE VIEW {_ident(name)} AS {body}")
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


def masked_select(conn: duckdb.DuckDBPyConnection, body: str, hide: Callable[[str], bool]) -> str:
    """``SELECT`` over ``body`` without the columns, or struct fields at any depth, whose
    name ``hide`` says to hide. Types come from DuckDB itself (``body`` is bound, not run)."""
    relation = conn.sql(f"SELECT * FROM ({body}) AS masked LIMIT 0")

    def pick(expr: str, name: str, dtype) -> str | None:
        if hide(name):
            return None
        if dtype.id == "struct":
            fields = [
                f"{_ident(child)} := {inner}"
                for child, child_type in dtype.children
                if (inner := pick(f"{expr}.{_ident(child)}", child, child_type)) is not None
            ]
            return "struct_pack(" + ", ".join(fields) + ")" if fields else None
        return expr

    columns = []
    for name, dtype in zip(relation.columns, relation.types, strict=True):
        picked = pick(_ident(name), name, dtype)
        if picked is not None:
            columns.append(f"{picked} AS {_ident(name)}")
    return f"SELECT {', '.join(columns)} FROM ({body}) AS masked"
