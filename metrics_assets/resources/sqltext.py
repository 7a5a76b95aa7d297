"""The one place SQL text is built from values: string literals, identifiers, UTC moments.

Every domain that has to put a value into SQL text (a file list for DuckDB's ``read_json``, a
prefix in an Athena statement, a table name from the lake catalog) goes through these, so
the escaping rules live once:

* :func:`literal` makes a SQL string literal, doubling single quotes (the SQL standard, and
  what DuckDB, Trino/Athena, PostgreSQL and SQLite all accept). A NUL character cannot be
  carried by any of them and is refused instead of being silently cut.
* :func:`ident` makes a double-quoted identifier, doubling inner double quotes.
* :func:`as_utc` turns whatever a driver or a setting gives for a moment (an aware or naive
  ``datetime``, a ``date``, a pandas ``Timestamp``, an ISO-8601 string as SQLite stores it)
  into an aware UTC ``datetime``. Naive values are taken as UTC: the warehouse stores UTC.

No Dagster here, so the CLI and plain scripts can import it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any


def literal(value: Any) -> str:
    """``value`` as a single-quoted SQL string literal."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("a SQL string literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    if "\x00" in name:
        raise ValueError("a SQL identifier cannot hold a NUL character")
    return '"' + name.replace('"', '""') + '"'


def as_utc(value: Any) -> datetime:
    """An aware UTC ``datetime`` for ``value`` (naive values are UTC already)."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    elif hasattr(value, "to_pydatetime"):  # pandas.Timestamp, without importing pandas
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise TypeError(f"not a moment: {value!r}")


def as_date(value: Any) -> date:
    """A ``date`` for ``value`` (a ``date``, a ``datetime`` (its UTC day) or an ISO string)."""
    if isinstance(value, datetime) or hasattr(value, "to_pydatetime"):
        return as_utc(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip()[:10])
