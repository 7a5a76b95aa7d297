"""The warehouse role: where every metrics table lives (PostgreSQL in production, SQLite or
PostgreSQL locally).

What it guarantees to the assets:

* **Its own schema.** The first use of a URL in a process upgrades the database in place with
  Alembic (``resources/migrations``; each domain owns a branch of revisions in
  ``metrics_assets/<domain>/migrations``). Natural keys are unique constraints there.
* **Atomic slice replace.** :meth:`Warehouse.replace_slice` deletes a partition's rows and
  inserts the new ones in one transaction: a rerun never double-counts, and a crash mid-write
  leaves the old rows.
* **Bulk loads.** On PostgreSQL rows go in with ``COPY ... FROM STDIN`` (CSV written by Arrow's
  C++ writer), never row by row. SQLite, the local stand-in, takes one ``executemany``.

Data may be given as a ``pyarrow.Table``, a ``RecordBatchReader``, a pandas ``DataFrame``, a
DuckDB relation, or a list of dicts. Column names must be the table's column names.
"""

from __future__ import annotations

import io
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from metrics_assets.lazy import is_loaded
from metrics_assets.lazy import pandas as pd  # loaded on first use: most processes never need it
from metrics_assets.resources.sqltext import ident
from metrics_assets.sql_access import (
    BOOLEAN,
    DATE,
    DECIMAL,
    FLOAT,
    INTEGER,
    TEXT,
    UTC_DATETIME,
    SqlAccess,
    Types,
    normalise_url,
    typed,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
COPY_BATCH_ROWS = 250_000

# SQLite stores timestamps as text. SQLAlchemy's DateTime writes "YYYY-MM-DD HH:MM:SS.ffffff";
# raw parameters must use the very same format, or string comparison of bounds goes wrong.
SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(SQLITE_TS_FORMAT)


sqlite3.register_adapter(datetime, _sqlite_datetime)
sqlite3.register_adapter(date, lambda d: d.isoformat())
# A Decimal parameter as its exact text (a NUMERIC column stores it as a number).
sqlite3.register_adapter(Decimal, str)
_pandas_adapted = False


def _adapt_pandas_timestamps() -> None:
    """Teach sqlite3 ``pandas.Timestamp`` once pandas is really loaded (sqlite3 adapts by exact
    type, and a Timestamp is a datetime subclass). Called before every SQLite statement."""
    global _pandas_adapted
    if not _pandas_adapted and is_loaded("pandas"):
        sqlite3.register_adapter(pd.Timestamp, lambda ts: _sqlite_datetime(ts.to_pydatetime()))
        _pandas_adapted = True


_engines: dict[str, Engine] = {}
_upgraded: set[str] = set()
_lock = threading.Lock()


def migration_locations() -> list[str]:
    """Alembic version folders: the foundation's, then one per domain that has one."""
    locations = [str(MIGRATIONS_DIR / "versions")]
    for domain_dir in sorted(PACKAGE_DIR.iterdir()):
        versions = domain_dir / "migrations" / "versions"
        if domain_dir.name != "resources" and versions.is_dir():
            locations.append(str(versions))
    return locations


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_locations", " ".join(migration_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_REVISION_LINE = re.compile(r"^(revision|down_revision|depends_on)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def _revision_ids(value: str) -> set[str]:
    return set(re.findall(r"[\"']([^\"']+)[\"']", value))


def expected_versions() -> tuple[set[str], dict[str, set[str]]]:
    """The heads of every branch, and what each revision ``depends_on``, read from the
    migration files' headers as text (no Alembic import, no module executed)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    depends: dict[str, set[str]] = {}
    for folder in migration_locations():
        for path in Path(folder).glob("*.py"):
            fields = dict(_REVISION_LINE.findall(path.read_text()))
            if "revision" not in fields:
                continue
            [revision] = _revision_ids(fields["revision"])
            revisions.add(revision)
            downs |= _revision_ids(fields.get("down_revision", "None"))
            depends[revision] = _revision_ids(fields.get("depends_on", "None"))
    return revisions - downs, depends


def schema_is_current(engine: Engine) -> bool:
    """True when the database's version table already holds every head: Alembic (its import
    and its scan of the revision scripts, a good part of a short run's CPU) is then skipped.
    Alembic leaves out of the table a head that another recorded revision depends on."""
    heads, depends = expected_versions()
    try:
        with engine.connect() as conn:
            recorded = {r[0] for r in conn.execute(sa.text("SELECT version_num FROM metrics_schema_version"))}
    except sa.exc.DBAPIError:
        return False  # no version table yet
    implied = set().union(*(depends.get(r, set()) for r in recorded)) if recorded else set()
    return bool(recorded) and recorded <= heads and heads <= recorded | implied


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to every branch's head, in place. Safe to call concurrently:
    on PostgreSQL an advisory lock serialises the upgrade between processes."""
    from alembic import command

    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def engine_for(url: str, *, upgrade: bool = True) -> Engine:
    """One engine per URL per process; the schema is upgraded on first use."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 60}
            engine = sa.create_engine(normalise_url(url), **kwargs)
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", _sqlite_pragmas)
                sa.event.listen(engine, "before_cursor_execute", lambda *_args: _adapt_pandas_timestamps())
            _engines[url] = engine
        if upgrade and url not in _upgraded:
            if not schema_is_current(engine):
                upgrade_schema(engine)
            _upgraded.add(url)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def dispose_engine(url: str) -> None:
    with _lock:
        engine = _engines.pop(url, None)
        _upgraded.discard(url)
    if engine is not None:
        engine.dispose()


def to_arrow(data: Any) -> pa.Table:
    """Normalise any supported tabular input to an Arrow table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if is_loaded("pandas") and isinstance(data, pd.DataFrame):  # no pandas loaded, no DataFrame
        return pa.Table.from_pandas(data, preserve_index=False)
    for method in ("to_arrow_table", "fetch_arrow_table", "arrow"):  # DuckDB 2.x / 1.x
        if hasattr(data, method):
            result = getattr(data, method)()
            return result if isinstance(result, pa.Table) else result.read_all()
    if isinstance(data, list):
        return pa.Table.from_pylist(data) if data else pa.table({})
    raise TypeError(f"cannot load {type(data).__name__} into the warehouse")


def _copy_ready(table: pa.Table) -> pa.Table:
    """Columns Arrow's CSV writer cannot write (lists, structs, dicts) become JSON text."""
    import json

    columns = []
    for col in table.columns:
        if pa.types.is_nested(col.type):
            values = [None if v is None else json.dumps(v, separators=(",", ":")) for v in col.to_pylist()]
            columns.append(pa.array(values, pa.string()))
        elif pa.types.is_dictionary(col.type):
            columns.append(col.cast(col.type.value_type))
        else:
            columns.append(col)
    return pa.table(columns, names=table.column_names)


class _CsvStream(io.RawIOBase):
    """A file-like object COPY reads from, while a thread writes the CSV ahead of it: Arrow's
    CSV writer and PostgreSQL's parser work at the same time, each on its own core."""

    def __init__(self, table: pa.Table, batch_rows: int = COPY_BATCH_ROWS // 5):
        import queue

        self._chunks: queue.Queue = queue.Queue(maxsize=4)
        self._buffer = memoryview(b"")
        self._error: BaseException | None = None

        def produce() -> None:
            try:
                options = pacsv.WriteOptions(include_header=False, batch_size=65_536)
                for start in range(0, table.num_rows, batch_rows):
                    sink = io.BytesIO()
                    pacsv.write_csv(table.slice(start, batch_rows), sink, options)
                    self._chunks.put(sink.getvalue())
            except Exception as error:
                self._error = error
            finally:
                self._chunks.put(None)

        self._thread = threading.Thread(target=produce, daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._buffer:
            chunk = self._chunks.get()
            if chunk is None:
                self._chunks.put(None)
                if self._error is not None:
                    raise self._error
                return b""
            self._buffer = memoryview(chunk)
        size = len(self._buffer) if size is None or size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(out)


def _sqlite_rows(table: pa.Table) -> Iterator[tuple]:
    """Rows as tuples of values the sqlite3 driver takes (timestamps in SQLAlchemy's layout)."""
    table = _copy_ready(table)
    columns = []
    for col in table.columns:
        values = col.to_pylist()
        if pa.types.is_timestamp(col.type):
            values = [None if v is None else _sqlite_datetime(v) for v in values]
        columns.append(values)
    return zip(*columns, strict=False)


def _arrow_read_type(arrow_type: pa.DataType):
    """The typed-read conversion that gives a value Arrow takes for ``arrow_type``."""
    if pa.types.is_timestamp(arrow_type):
        return UTC_DATETIME
    if pa.types.is_date(arrow_type):
        return DATE
    if pa.types.is_decimal(arrow_type):
        return DECIMAL
    if pa.types.is_integer(arrow_type):
        return INTEGER
    if pa.types.is_floating(arrow_type):
        return FLOAT
    if pa.types.is_boolean(arrow_type):
        return BOOLEAN
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return TEXT
    return None


def _arrow_column(column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    """One column of an ADBC result as ``field`` gives it. ADBC gives PostgreSQL's ``numeric``
    (``sum(bigint)`` among them) as text in an extension type: its text is cast, to an integer
    through an exact decimal (a fractional value fails instead of being truncated)."""
    if isinstance(column.type, pa.ExtensionType):
        column = pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
    if pa.types.is_string(column.type) and pa.types.is_integer(field.type):
        column = column.cast(pa.decimal128(38, 9))
    return column.cast(field.type)


def _read_arrow_adbc(engine: Engine, sql: str, params: Mapping[str, Any] | None, schema: pa.Schema) -> pa.Table:
    """``read_arrow`` on PostgreSQL: ADBC's PostgreSQL driver reads the result in PostgreSQL's
    binary COPY format straight into Arrow (no Python object per value). ``:name`` parameters
    become ``$n`` through SQLAlchemy's compiler and are bound by the driver."""
    import adbc_driver_postgresql.dbapi as adbc_postgres  # a native driver: loaded when first read
    from sqlalchemy.dialects import postgresql

    compiled = sa.text(sql).compile(dialect=postgresql.psycopg2.dialect(paramstyle="numeric_dollar"))
    values = dict(params or {})
    uri = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with adbc_postgres.connect(uri) as conn, conn.cursor() as cursor:
        cursor.execute(str(compiled), [values[name] for name in compiled.positiontup or []] or None)
        table = cursor.fetch_arrow_table()
    if table.column_names != schema.names:
        raise ValueError(f"the query gives columns {table.column_names}, the schema names {schema.names}")
    return pa.Table.from_arrays([_arrow_column(table.column(i), f) for i, f in enumerate(schema)], schema=schema)


class Warehouse(SqlAccess, ConfigurableResource):
    """Where every metrics table lives. ``url`` is a SQLAlchemy URL
    (``METRICS_WAREHOUSE_URL``; by default a SQLite file under ``METRICS_HOME``)."""

    url: str = Field(description="SQLAlchemy URL of the warehouse database.")

    # -- connections -----------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    def ensure_schema(self) -> None:
        engine_for(self.url)

    # -- reads (begin, execute, fetch_all, scalar, typed columns: SqlAccess) ----------------
    def read_df(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Types | None = None) -> pd.DataFrame:
        """The rows as a pandas DataFrame; the columns named in ``types`` converted first
        (``sql_access``: ``UTC_DATETIME``, ``DATE``, ``INTEGER``...)."""
        with self.engine.connect() as conn:
            result = conn.execute(typed(sql, types), dict(params or {}))
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def read_arrow(
        self, sql: str, params: Mapping[str, Any] | None = None, *, schema: pa.Schema, conn: Connection | None = None
    ) -> pa.Table:
        """The rows as an Arrow table of exactly ``schema`` (its names are the result's
        columns, in order): the same types on both databases, an empty table of that schema
        when there is no row. Values are converted as typed reads are (timestamps given as
        ``pa.timestamp(unit, "UTC")``, dates as ``pa.date32()``, decimals, integers, floats,
        booleans). On PostgreSQL without ``conn``, through ADBC (:func:`_read_arrow_adbc`):
        for the large reads; with ``conn`` (inside that transaction) and on SQLite, row by row."""
        if conn is None and self.is_postgres:
            return _read_arrow_adbc(self.engine, sql, params, schema)
        types = {f.name: _arrow_read_type(f.type) for f in schema}
        rows = self.fetch_all(sql, params, types={k: v for k, v in types.items() if v is not None}, conn=conn)
        if rows and list(rows[0]) != schema.names:
            raise ValueError(f"the query gives columns {list(rows[0])}, the schema names {schema.names}")
        return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()

    # -- writes ----------------------------------------------------------------------
    def load(self, conn: Connection, table: str, data: Any) -> int:
        """Bulk-insert ``data`` into ``table`` on an open transaction; returns rows loaded.
        Database errors come out as SQLAlchemy's (``sqlalchemy.exc.IntegrityError``...)."""
        arrow = to_arrow(data)
        if arrow.num_rows == 0:
            return 0
        _adapt_pandas_timestamps()
        columns = ", ".join(ident(c) for c in arrow.column_names)
        dbapi = conn.dialect.loaded_dbapi
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is None:
            raise RuntimeError("the warehouse connection is closed")
        cursor = dbapi_connection.cursor()
        try:
            if conn.dialect.name == "postgresql":
                sql = f"COPY {ident(table)} ({columns}) FROM STDIN WITH (FORMAT csv)"
                cursor.copy_expert(sql, _CsvStream(_copy_ready(arrow)), size=1 << 20)
            else:
                marks = ", ".join("?" for _ in arrow.column_names)
                sql = f"INSERT INTO {ident(table)} ({columns}) VALUES ({marks})"
                cursor.executemany(sql, list(_sqlite_rows(arrow)))
        except dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(sql, None, error, dbapi.Error) from error
        finally:
            cursor.close()
        return arrow.num_rows

    def append(self, table: str, data: Any) -> int:
        with self.begin() as conn:
            return self.load(conn, table, data)

    def replace_slice(
        self,
        table: str,
        data: Any,
        where: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> int:
        """Atomically replace one slice of ``table``: ``DELETE ... WHERE <where>`` then load
        ``data``, in one transaction. ``where=None`` replaces the whole table. Returns the
        rows loaded. If anything fails the transaction rolls back and the old rows stay."""
        with self.begin() as conn:
            delete = f"DELETE FROM {ident(table)}" + (f" WHERE {where}" if where else "")
            conn.execute(sa.text(delete), dict(params or {}))
            return self.load(conn, table, data)

    def replace_slices(
        self,
        writes: Iterable[tuple[str, Any, str | None, Mapping[str, Any] | None]],
    ) -> dict[str, int]:
        """Several ``(table, data, where, params)`` slice replaces in one transaction."""
        counts: dict[str, int] = {}
        with self.begin() as conn:
            for table, data, where, params in writes:
                delete = f"DELETE FROM {ident(table)}" + (f" WHERE {where}" if where else "")
                conn.execute(sa.text(delete), dict(params or {}))
                counts[table] = counts.get(table, 0) + self.load(conn, table, data)
        return counts

    def insert_ignoring_duplicates(self, conn: Connection, table: str, data: Any, *, key: Sequence[str]) -> int:
        """Insert ``data`` (anything :meth:`load` takes) into ``table`` on the caller's
        transaction, leaving out rows whose ``key`` (a unique constraint's columns) is already
        in the table or earlier in ``data``. Returns the rows actually added.

        The rows go through a temporary stage table (COPY on PostgreSQL), then
        ``INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING``, which both databases speak
        (SQLite since 3.24; ``WHERE true`` settles SQLite's parse of ``SELECT ... ON``)."""
        columns = None if (arrow := to_arrow(data)).num_rows == 0 else arrow.column_names
        if columns is None:
            return 0
        stage = f"stage_{uuid.uuid4().hex[:12]}"
        names = ", ".join(ident(c) for c in columns)
        conn.execute(
            sa.text(f"CREATE TEMPORARY TABLE {ident(stage)} AS SELECT {names} FROM {ident(table)} WHERE false")
        )
        try:
            self.load(conn, stage, arrow)
            result = conn.execute(
                sa.text(
                    f"INSERT INTO {ident(table)} ({names}) SELECT {names} FROM {ident(stage)} WHERE true "
                    f"ON CONFLICT ({', '.join(ident(c) for c in key)}) DO NOTHING"
                )
            )
        except BaseException:
            # A failed statement aborts a PostgreSQL transaction: a DROP there would fail too and
            # hide the error (a refused row must come out as the IntegrityError/DataError it is).
            # The caller's rollback takes the stage table away; SQLite's transaction is still usable.
            if not self.is_postgres:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {ident(stage)}"))
            raise
        conn.execute(sa.text(f"DROP TABLE {ident(stage)}"))
        return max(result.rowcount, 0)
