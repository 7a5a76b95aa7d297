"""The warehouse's SQL calls, with nothing but SQLAlchemy: the one dialect the domains speak.

Shared by :class:`metrics_assets.resources.warehouse.Warehouse` (the Dagster resource) and
:class:`metrics_assets.queries.light.LightWarehouse` (the CLI's ``status``/``next``/``cancel``,
which must not import Dagster). A class that mixes this in provides ``engine``.

**Typed reads.** PostgreSQL's driver gives aware ``datetime``, ``date`` and ``Decimal``;
SQLite gives text and floats. A read that names the types of its columns
(``types={"period_start": UTC_DATETIME, "day": DATE, "total": INTEGER}``) gets the same Python
values from both: the column types below, applied through SQLAlchemy's
``text(...).columns(...)``. Columns not named come back as the driver gives them.

=================  ======================================================================
``UTC_DATETIME``   aware ``datetime`` in UTC (SQLite's text and naive values are UTC)
``DATE``           ``date`` (a timestamp gives its UTC day)
``DECIMAL``        ``Decimal`` (exact: SQLite's integers and text go through ``str``)
``INTEGER``        ``int`` (PostgreSQL's ``sum(bigint)`` is a ``numeric``: it comes back ``int``)
``FLOAT``          ``float``
``BOOLEAN``        ``bool`` (SQLite stores 0/1)
``TEXT``           ``str``
=================  ======================================================================

**Portable operations,** each written once with both dialects inside:
:meth:`SqlAccess.claim_rows` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
writers), :meth:`SqlAccess.exclusive` (a transaction lock: ``pg_advisory_xact_lock`` on
PostgreSQL; SQLite's one writer), :meth:`SqlAccess.for_analytics` (PostgreSQL planner
settings for a transaction of set-based queries; none on SQLite), ``Warehouse.insert_ignoring_duplicates`` (``ON CONFLICT (key) DO NOTHING``, which
both speak; it bulk-loads with Arrow, so it lives in the resource), :meth:`SqlAccess.byte_order` (``COLLATE "C"`` on PostgreSQL; SQLite
compares bytes already) and :meth:`SqlAccess.utc_date` (the UTC day of a timestamp).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

from metrics_assets.resources.sqltext import as_date, as_utc, ident


class _ReadType(TypeDecorator):
    """A column type for reads: the driver's value, made the same on every dialect by
    :meth:`convert`. ``impl`` is a type with no result processing of its own on psycopg2 or
    sqlite3, so ``convert`` sees the driver's raw value. Not meant for binding parameters."""

    impl = sa.types.NullType
    cache_ok = True

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else self.convert(value)


class UtcDateTime(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        return as_utc(value)


class Date(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        return as_date(value)


class DecimalType(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        return value if isinstance(value, Decimal) else Decimal(str(value))


class Integer(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        number = Decimal(str(value))
        if number != number.to_integral_value():
            raise ValueError(f"not a whole number: {value!r}")
        return int(number)


class Float(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        return float(value)


class Boolean(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "t", "true")
        return bool(value)


class Text(_ReadType):
    cache_ok = True  # not inherited: SQLAlchemy asks each class

    def convert(self, value: Any) -> Any:
        return str(value)


UTC_DATETIME = UtcDateTime()
DATE = Date()
DECIMAL = DecimalType()
INTEGER = Integer()
FLOAT = Float()
BOOLEAN = Boolean()
TEXT = Text()

Types = Mapping[str, _ReadType]


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg2 here: COPY goes through its ``copy_expert``."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def typed(sql: str, types: Types | None = None) -> sa.TextClause | sa.TextualSelect:
    """``sa.text(sql)``, with ``types`` applied to the result columns of those names."""
    statement = sa.text(sql)
    return statement.columns(**dict(types)) if types else statement


class SqlAccess:
    """Needs an ``engine`` attribute or property (not annotated here: pydantic would take an
    annotation on a resource's base class for a field)."""

    if TYPE_CHECKING:  # for the type checker only; subclasses provide it

        @property
        def engine(self) -> Engine: ...

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    # -- reads -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        with self.begin() as conn:
            return conn.execute(sa.text(sql), dict(params or {})).rowcount

    def fetch_all(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        types: Types | None = None,
        conn: Connection | None = None,
    ) -> list[dict[str, Any]]:
        """Every row as a dict; the columns named in ``types`` converted (see the module's
        table). ``conn``: read on that open connection (inside its transaction)."""
        if conn is not None:
            return [dict(r._mapping) for r in conn.execute(typed(sql, types), dict(params or {}))]
        with self.engine.connect() as own:
            return [dict(r._mapping) for r in own.execute(typed(sql, types), dict(params or {}))]

    def scalar(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        type_: _ReadType | None = None,
        conn: Connection | None = None,
    ) -> Any:
        """The first column of the first row (None when there is none), converted by ``type_``."""
        statement = sa.text(sql)
        if conn is not None:
            value = conn.execute(statement, dict(params or {})).scalar()
        else:
            with self.engine.connect() as own:
                value = own.execute(statement, dict(params or {})).scalar()
        return value if value is None or type_ is None else type_.convert(value)

    # -- portable operations ---------------------------------------------------------------
    def byte_order(self, expression: str) -> str:
        """SQL comparing ``expression`` by bytes (``ORDER BY``, ``<``, ``PARTITION BY``):
        ``COLLATE "C"`` on PostgreSQL, whose default collation follows the locale; SQLite's
        default collation is binary already."""
        return f'{expression} COLLATE "C"' if self.is_postgres else expression

    def utc_date(self, expression: str) -> str:
        """SQL for the UTC day of the timestamp ``expression`` (read it with ``DATE``)."""
        if self.is_postgres:
            return f"CAST(({expression}) AT TIME ZONE 'UTC' AS date)"
        return f"date({expression})"  # stored as UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'

    def exclusive(self, conn: Connection, key: int) -> None:
        """Hold the lock ``key`` (an integer) until the caller's transaction ends, so that two
        transactions creating the same thing (``CREATE ... IF NOT EXISTS`` on first use) run one
        after the other. PostgreSQL: ``pg_advisory_xact_lock(key)`` (concurrent ``CREATE TABLE
        IF NOT EXISTS`` may otherwise fail on its catalog's unique index); SQLite runs one writer
        at a time under its database lock already: nothing to take."""
        if self.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(key)})

    def for_analytics(self, conn: Connection, *, work_mem: str = "128MB") -> None:
        """Planner settings for the rest of the caller's transaction, for a few set-based
        queries over small temporary tables: on PostgreSQL JIT off (its seconds of compilation
        cost more than such queries) and ``work_mem`` (sorts stay in memory), both ``SET
        LOCAL``; SQLite has no such settings. No effect on results."""
        if self.is_postgres:
            if not work_mem[:-2].isdigit() or work_mem[-2:] not in ("kB", "MB", "GB"):
                raise ValueError(f"work_mem {work_mem!r} is not a size such as '128MB'")
            conn.execute(sa.text("SET LOCAL jit = off"))
            conn.execute(sa.text(f"SET LOCAL work_mem = '{work_mem}'"))

    def claim_rows(
        self,
        conn: Connection,
        table: str,
        *,
        key: str,
        where: str,
        set_values: Mapping[str, Any],
        order_by: Sequence[str],
        limit: int,
        returning: Sequence[str],
        params: Mapping[str, Any] | None = None,
        types: Types | None = None,
    ) -> list[dict[str, Any]]:
        """Claim up to ``limit`` rows of ``table`` matching ``where`` (first by ``order_by``,
        column names, ascending), setting ``set_values`` on them, in one statement on the
        caller's transaction; returns the claimed rows' ``returning`` columns in that order.

        ``set_values`` must make ``where`` false (``status = 'PENDING'`` -> ``'RUNNING'``), so
        that a row is claimed once. On PostgreSQL the candidates are picked ``FOR UPDATE SKIP
        LOCKED``: two concurrent claims never wait for each other nor take the same row.
        SQLite runs the statement under its single writer lock, which serialises claims.
        ``where`` may use ``params``; names starting with ``claim_`` are this method's."""
        lock = " FOR UPDATE SKIP LOCKED" if self.is_postgres else ""
        assignments = ", ".join(f"{ident(c)} = :claim_set_{i}" for i, c in enumerate(set_values))
        values = {f"claim_set_{i}": v for i, v in enumerate(set_values.values())}
        wanted = list(dict.fromkeys([*returning, *order_by]))
        order = ", ".join(ident(c) for c in order_by)
        sql = (
            f"UPDATE {ident(table)} SET {assignments} WHERE ({where}) AND {ident(key)} IN ("
            f"SELECT {ident(key)} FROM {ident(table)} WHERE ({where}) ORDER BY {order} LIMIT :claim_limit{lock}) "
            f"RETURNING {', '.join(ident(c) for c in wanted)}"
        )
        rows = [
            dict(r._mapping)
            for r in conn.execute(typed(sql, types), {**dict(params or {}), **values, "claim_limit": int(limit)})
        ]
        rows.sort(key=lambda r: tuple(r[c] for c in order_by))
        return [{c: r[c] for c in returning} for r in rows]
