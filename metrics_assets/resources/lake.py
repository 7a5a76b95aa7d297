"""The lake catalog: the tables that lake queries may name, and how DuckDB reads them locally.

In production these tables are Athena external tables (DDL shipped by the domain that owns
them). Locally, the DuckDB query engine turns each registered :class:`LakeTable` into a view
over the files under ``<object store>/<bucket>/<prefix>``. A domain registers its tables when
its package is imported; other domains refer to them only by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp


@dataclass(frozen=True)
class LakeTable:
    name: str
    bucket: str
    prefix: str
    #: Given the table's local folder, the DuckDB SELECT that reads it (it must work, giving
    #: zero rows, when the folder is empty or missing).
    duckdb_view: Callable[[Path], str]
    description: str = ""

    def local_dir(self, object_store_dir: Path) -> Path:
        return Path(object_store_dir) / self.bucket / self.prefix


_TABLES: dict[str, LakeTable] = {}


def register(table: LakeTable) -> LakeTable:
    _TABLES[table.name] = table
    return table


def tables() -> dict[str, LakeTable]:
    return dict(_TABLES)


def create_duckdb_views(conn, object_store_dir: Path) -> None:
    for table in _TABLES.values():
        body = table.duckdb_view(table.local_dir(object_store_dir))
        conn.execute(f'CREATE OR REPLACE VIEW "{table.name}" AS {body}')


def referenced_tables(sql: str, dialect: str = "duckdb") -> set[str]:
    tree = sqlglot.parse_one(sql, read=dialect)
    return {t.name for t in tree.find_all(exp.Table) if t.name in _TABLES}


def local_bytes_for_query(sql: str, object_store_dir: Path) -> int:
    """Bytes of the local files behind the lake tables a query names: the local stand-in for
    Athena's "data scanned". Domains that prune by partition report their own narrower figure."""
    total = 0
    for name in referenced_tables(sql):
        folder = _TABLES[name].local_dir(object_store_dir)
        if folder.is_dir():
            total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return total
