"""Validation of ad hoc SQL, before anything runs. Pure functions, no Dagster, no database.

A query is accepted only when all of this holds (sqlglot, Trino dialect):

1. It has no comments at all: a comment can hide a statement (``SELECT 1 /* ; DROP ... */``),
   or an engine hint, and a query that needs none is simpler to audit.
2. It parses as exactly one statement (no stacked ``;`` statements), and that statement is
   a query: ``SELECT``, or ``UNION`` / ``INTERSECT`` / ``EXCEPT`` of SELECTs, with CTEs.
   Nothing in it is DDL, DML or a command (``INSERT``, ``CREATE``, ``DROP``, ``COPY``, ...).
3. Every table it reads is a lake event table (``events_v0``, ``events_v1``), unqualified,
   or a CTE it defines. Schema-qualified names (``information_schema.*``, ``pg_catalog.*``,
   ``system.*``) are system tables; table functions (``read_csv``, ``TABLE(...)``) are not tables.
4. No function that reads files, URLs, the environment or the engine's catalog: ``read_*``,
   ``*_scan``, ``glob``, ``getenv``, ``duckdb_*``, ``pragma_*``, ``query``, ...
5. ``resourceid`` and ``operationid`` are never named: not as columns, not as struct fields
   (``envelope.resourceId``), not as string keys (``element_at(envelope, 'resourceId')``,
   ``json_extract(data, '$.operationId')``). Because they could come out wholesale, these are
   refused too: ``*`` projections (``SELECT *``, ``t.*``; ``count(*)`` is fine), the whole
   ``envelope`` struct, a table alias used as a value (DuckDB's whole-row ``SELECT e FROM
   events_v0 e``), and column-alias lists on a table (``events_v0 AS t(a, b, ...)``).
6. No placeholders (``:name``, ``?``): a submitted query has no parameters.

Then a LIMIT is added when the query has none, and a larger LIMIT is lowered, to
``METRICS_QUERY_MAX_ROWS`` (1,000,000 by default). The accepted SQL (Trino) is what is stored
and run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from metrics_assets.queries import config

DIALECT = "trino"
MAX_SQL_LENGTH = 100_000

# Statements or clauses that change data, schema, session or files.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterColumn", "Command",
        "Copy", "Set", "Pragma", "Use", "Transaction", "Commit", "Rollback", "Grant", "Revoke",
        "Describe", "Show", "Cache", "Uncache", "Refresh", "Analyze", "Attach", "Detach",
        "Install", "Load", "Export", "TruncateTable", "Into", "LoadData", "Summarize", "Kill",
    )
    if hasattr(exp, name)
)

# Functions that reach outside the lake tables: files, URLs, environment, catalog, other DBs.
_FORBIDDEN_FUNCTION = re.compile(
    r"^(read_\w*|\w*_scan|glob|sniff_csv|getenv|current_setting|duckdb_\w*|pragma_\w*|query|"
    r"query_table|iceberg_\w*|delta_\w*|sqlite_\w*|postgres_\w*|mysql_\w*|http\w*|"
    r"load_aws_credentials|system|table|columns|repeat_row|which_secret|"
    r"information_schema_\w*|pg_\w*|test_all_types|parquet_\w*|json_execute_serialized_sql)$",
    re.IGNORECASE,
)
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "system", "main", "temp", "sys", "mysql"}


class QueryRejected(ValueError):
    """The query is not acceptable; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ValidatedQuery:
    sql: str  # what runs: Trino SQL, with the LIMIT applied
    tables: tuple[str, ...]  # the lake tables it reads
    limit: int
    limit_added: bool


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name()


def _mentions_forbidden(text: str) -> str | None:
    lowered = text.lower()
    for name in config.FORBIDDEN_COLUMNS:
        if name in lowered:
            return name
    return None


def _check_comments(sql: str) -> None:
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql)
    except TokenError as error:
        raise QueryRejected("syntax_error", f"SQL syntax error: {error}") from error
    if any(token.comments for token in tokens):
        raise QueryRejected(
            "comment",
            "comments are not allowed: a comment can hide a statement; remove it and resubmit",
        )


def _parse_one(sql: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except (ParseError, TokenError) as error:
        first = str(error).splitlines()[0]
        raise QueryRejected("syntax_error", f"SQL syntax error: {first}") from error
    statements = [s for s in statements if s is not None]
    if not statements:
        raise QueryRejected("empty", "the query is empty")
    if len(statements) > 1:
        raise QueryRejected(
            "stacked_statements",
            f"stacked statements are not allowed: found {len(statements)} statements, send exactly one SELECT",
        )
    return statements[0]


def _check_statement(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            kind = node.key.upper()
            raise QueryRejected("not_a_select", f"DDL, DML and commands are not allowed ({kind}): send one SELECT")
    if not isinstance(tree, exp.Query):
        raise QueryRejected("not_a_select", f"only a SELECT is allowed, got {tree.key.upper()}")


def _check_functions(tree: exp.Expression) -> None:
    for node in tree.find_all(exp.Func):
        name = _function_name(node)
        if _FORBIDDEN_FUNCTION.match(name):
            raise QueryRejected(
                "forbidden_function",
                f"function {name.lower()}() is not allowed: it reads files, URLs, settings or system catalogs",
            )


def _check_tables(tree: exp.Expression) -> tuple[str, ...]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    lake: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = table.this.sql(DIALECT) if table.this is not None else "?"
            raise QueryRejected(
                "table_function",
                f"table functions are not allowed ({name[:60]}): read only {', '.join(config.ALLOWED_TABLES)}",
            )
        name = table.name.lower()
        qualifier = ".".join(p for p in (table.catalog, table.db) if p)
        if qualifier:
            what = "system table" if (
                table.db.lower() in _SYSTEM_SCHEMAS or table.catalog.lower() in _SYSTEM_SCHEMAS
            ) else "qualified table"
            raise QueryRejected(
                "system_table" if what == "system table" else "table_not_allowed",
                f"{what} {qualifier}.{table.name} is not allowed: read only "
                f"{', '.join(config.ALLOWED_TABLES)} (unqualified)",
            )
        if name in ctes:
            continue
        if name.startswith(("duckdb_", "pg_", "sqlite_")) or name in {"information_schema", "tables", "columns"}:
            raise QueryRejected("system_table", f"system table {table.name} is not allowed")
        if name not in config.ALLOWED_TABLES:
            raise QueryRejected(
                "table_not_allowed",
                f"table {table.name} is not allowed: read only {', '.join(config.ALLOWED_TABLES)}",
            )
        lake.add(name)
        alias = table.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            raise QueryRejected(
                "forbidden_column",
                f"column-alias lists on {table.name} are not allowed (they could rename resourceid/operationid)",
            )
    return tuple(sorted(lake))


def _check_columns(tree: exp.Expression) -> None:
    relation_names = {t.alias_or_name.lower() for t in tree.find_all(exp.Table)}
    relation_names |= {t.name.lower() for t in tree.find_all(exp.Table)}
    relation_names |= {s.alias_or_name.lower() for s in tree.find_all(exp.Subquery) if s.alias_or_name}
    relation_names |= {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        # Identifiers, string literals, JSON path keys, ...: any name or text in the tree.
        text = node.args.get("this")
        if isinstance(text, str):
            hit = _mentions_forbidden(text)
            if hit:
                raise QueryRejected("forbidden_column", f"column {hit} is not allowed (found {text[:80]!r})")
    for star in tree.find_all(exp.Star):
        if isinstance(star.parent, exp.Count):
            continue
        raise QueryRejected(
            "star_projection",
            "SELECT * is not allowed: name the columns (a * would expose resourceid/operationid)",
        )
    for column in tree.find_all(exp.Column):
        if column.name.lower() == "envelope":
            raise QueryRejected(
                "forbidden_column",
                "the whole envelope struct is not allowed (it holds resourceId/operationId): "
                "select its fields, e.g. envelope.customerId",
            )
        if not column.table and column.name.lower() in relation_names:
            raise QueryRejected(
                "forbidden_column", f"a whole row ({column.name}) is not allowed: name the columns"
            )
    if any(True for _ in tree.find_all(exp.Placeholder)) or any(True for _ in tree.find_all(exp.Parameter)):
        raise QueryRejected("placeholder", "parameters (:name, ?) are not supported: write the values in the query")


def _apply_limit(tree: exp.Query, max_rows: int) -> tuple[exp.Query, int, bool]:
    limit = tree.args.get("limit")
    if limit is None and tree.args.get("fetch") is not None:
        raise QueryRejected("bad_limit", "FETCH FIRST is not supported: use LIMIT")
    if limit is None:
        return tree.limit(max_rows, copy=False), max_rows, True
    value = limit.expression
    if not (isinstance(value, exp.Literal) and value.is_int):
        raise QueryRejected("bad_limit", "LIMIT must be a whole number")
    wanted = int(value.this)
    if wanted > max_rows:
        return tree.limit(max_rows, copy=False), max_rows, False
    return tree, wanted, False


def validate(sql: str, *, max_rows: int | None = None) -> ValidatedQuery:
    """Accept or reject ``sql``; raises :class:`QueryRejected` with the reason."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("empty", "the query is empty")
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejected("too_long", f"the query is longer than {MAX_SQL_LENGTH:,} characters")
    if "\x00" in sql:
        raise QueryRejected("syntax_error", "the query contains a NUL character")
    _check_comments(sql)
    tree = _parse_one(sql)
    _check_statement(tree)
    _check_functions(tree)
    tables = _check_tables(tree)
    _check_columns(tree)
    tree, limit, added = _apply_limit(tree, max_rows or config.max_rows())
    try:
        rendered = tree.sql(dialect=DIALECT)
    except Exception as error:  # an unprintable tree is a malformed query
        raise QueryRejected("syntax_error", f"SQL cannot be rendered: {error}") from error
    return ValidatedQuery(sql=rendered, tables=tables, limit=limit, limit_added=added)
