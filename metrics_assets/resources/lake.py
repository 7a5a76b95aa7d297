"""The lake catalog: the tables that lake queries may name, and how DuckDB reads them locally.

In production these tables are Athena external tables (DDL shipped by the domain that owns
them). Locally, the DuckDB query engine turns each :class:`LakeTable` of its catalog into a
view over the files under ``<object store>/<bucket>/<prefix>``.

Nothing registers itself. Each domain that owns lake tables declares them as data, a
``LAKE_TABLES`` tuple in its package (``events``: events_v0, events_v1, events_normalized;
``probes``: telemetry_samples). ``definitions.py`` hands those declarations to
``build_resources``, which builds one :class:`LakeCatalog` and gives it to the query engine
(``DuckDBQueryEngine.with_catalog``). An engine built without one (a test, a benchmark) uses
:func:`metrics_assets.lake_catalog.code_location_catalog`, the same declarations. Other
domains refer to lake tables only by name; the queries domain reads the names it may query
(``ad_hoc=True``) from the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metrics_assets.resources.sqltext import ident


@dataclass(frozen=True)
class ScalarFunction:
    """A Python scalar function a table's DuckDB view calls (DuckDB's ``create_function``).
    Keep it for what SQL cannot say, and for the rare rows: DuckDB calls it row by row."""

    name: str
    function: Callable[..., Any]
    parameters: tuple[str, ...]
    return_type: str

    def register(self, conn) -> None:
        conn.create_function(self.name, self.function, list(self.parameters), self.return_type)


def register_functions(conn, tables: Iterable[LakeTable], registered: set[str] | None = None) -> None:
    """Register on ``conn`` the functions the views of ``tables`` call, each once (``registered``:
    the names ``conn`` already has, kept by the caller)."""
    registered = set() if registered is None else registered
    for table in tables:
        for function in table.duckdb_functions:
            if function.name not in registered:
                function.register(conn)
                registered.add(function.name)


@dataclass(frozen=True)
class LakeTable:
    """One lake table, declared by the domain that owns it.

    ``bucket`` and ``prefix`` are text, or functions giving it when the table is used (so a
    table placed by settings, like the event lake's ``EVENT_LAKE_BUCKET``, follows a changed
    environment, and a wrong setting fails the run that uses it, not the loading)."""

    name: str
    bucket: str | Callable[[], str]
    prefix: str | Callable[[], str]
    #: Given the table's local folder, the DuckDB SELECT that reads it (it must work, giving
    #: zero rows, when the folder is empty or missing).
    duckdb_view: Callable[[Path], str]
    description: str = ""
    #: Ad hoc queries (the queries domain) may read it.
    ad_hoc: bool = False
    #: The Python functions ``duckdb_view``'s SELECT calls: every session that creates the view
    #: registers them first (:func:`register_functions`).
    duckdb_functions: tuple[ScalarFunction, ...] = ()
    #: Given a DuckDB error of a query, change how ``duckdb_view`` reads the files (e.g. a file
    #: found not to be UTF-8) and return True when the query should run again.
    reread_after: Callable[[Exception], bool] | None = None

    def location(self) -> tuple[str, str]:
        """``(bucket, prefix)`` now."""
        bucket = self.bucket() if callable(self.bucket) else self.bucket
        prefix = self.prefix() if callable(self.prefix) else self.prefix
        return bucket, prefix

    def local_dir(self, object_store_dir: Path) -> Path:
        bucket, prefix = self.location()
        return Path(object_store_dir) / bucket / prefix


class LakeCatalog(Mapping[str, LakeTable]):
    """The lake tables of a code location, by name, in declaration order."""

    def __init__(self, tables: Iterable[LakeTable] = ()):
        self._tables: dict[str, LakeTable] = {}
        for table in tables:
            if table.name in self._tables:
                raise ValueError(f"lake table {table.name!r} is declared twice")
            self._tables[table.name] = table

    @classmethod
    def from_declarations(cls, declarations: Iterable[Iterable[LakeTable]]) -> LakeCatalog:
        """One catalog from several domains' ``LAKE_TABLES``."""
        return cls(table for declared in declarations for table in declared)

    def __getitem__(self, name: str) -> LakeTable:
        return self._tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        return f"LakeCatalog({', '.join(self._tables)})"

    def ad_hoc_names(self) -> tuple[str, ...]:
        """The tables ad hoc queries may read, in declaration order."""
        return tuple(name for name, table in self._tables.items() if table.ad_hoc)

    def create_duckdb_views(
        self,
        conn,
        object_store_dir: Path,
        created: dict[str, str] | None = None,
        registered: set[str] | None = None,
    ) -> None:
        """Every table as a view on ``conn``, after the functions the views call. ``created``
        (the bodies this connection already has, kept by the caller) spares re-creating a view
        whose body has not changed: a view lists its files, so an unchanged body reads the same
        files (DuckDB binds a view's query, and the views it names, each time it is used).
        ``registered``: the functions this connection already has, kept by the caller."""
        register_functions(conn, self._tables.values(), registered)
        for table in self._tables.values():
            body = table.duckdb_view(table.local_dir(object_store_dir))
            if created is not None and created.get(table.name) == body:
                continue
            conn.execute(f"CREATE OR REPLACE VIEW {ident(table.name)} AS {body}")
            if created is not None:
                created[table.name] = body

    def reread_after(self, error: Exception) -> bool:
        """Whether a table's view now reads its files so that the query that failed with
        ``error`` can run again (see ``LakeTable.reread_after``)."""
        return any(t.reread_after(error) for t in self._tables.values() if t.reread_after is not None)

    def local_bytes(self, names: Iterable[str], object_store_dir: Path) -> int:
        """Bytes of the local files behind the named tables (names not in the catalog count 0):
        the local stand-in for Athena's "data scanned" (``query_engine.table_names`` gives the
        tables a statement reads). Domains that prune by partition report their own narrower
        figure."""
        total = 0
        for name in names:
            if name not in self._tables:
                continue
            folder = self._tables[name].local_dir(object_store_dir)
            if folder.is_dir():
                total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        return total
