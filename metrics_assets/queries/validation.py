"""Validation of ad hoc SQL, before anything runs. Pure functions, no Dagster, no database.

A query is accepted only when all of this holds (sqlglot, Trino dialect). Each refusal raises
:class:`QueryRejected` with a short ``reason`` code and a sentence a person can act on.

1. **Shape.** Not empty, at most ``MAX_SQL_LENGTH`` characters, no NUL or control character,
   no character outside ASCII except inside string literals (``homoglyph``: a Cyrillic ``е``
   in ``rеsourceid`` or a full-width ``ｅvents_v0`` is refused, not guessed at), brackets nested
   at most ``MAX_NESTING`` deep (``too_deep``; a parser or printer recursion error gives the
   same reason), no comments at all (a comment can hide a statement or an engine hint).
2. **One query.** It parses as exactly one statement, and that statement is a query: ``SELECT``,
   or ``UNION`` / ``INTERSECT`` / ``EXCEPT`` of SELECTs, with CTEs. Nothing in it is DDL, DML or
   a command; no ``PIVOT``, ``MATCH_RECOGNIZE`` or time travel; no placeholders.
3. **Tables, resolved by scope.** Every table reference is resolved with
   ``sqlglot.optimizer.scope``, as the engine resolves it: a CTE shadows a name only inside the
   scope where it is visible (its own ``WITH`` and the scopes below; a non-recursive CTE does
   not see itself). Every reference that does not resolve to a CTE of its scope names a real
   object and is checked: unquoted (no ``"/some/file.csv"``, no ``'s3://...'``, no
   ``"https://..."``), unqualified (no catalog or schema: ``information_schema.*``,
   ``pg_catalog.*``, ``system.*``, ``memory.main.*``), not a system view (``duckdb_*``,
   ``pg_*``, ``sqlite_*``), one of the lake's event tables, and without a column-alias list
   (``events_v0 AS t(a, b)`` renames columns by position). No table functions (``read_csv``,
   ``TABLE(...)``); ``UNNEST`` is fine. A reference no scope accounts for is refused
   (``unresolvable``).
4. **Functions.** None that reads files, URLs, the environment, settings or the engine's
   catalog (``read_*``, ``*_scan``, ``glob``, ``getenv``, ``current_setting``, ``duckdb_*``,
   ``pragma_*``, ``query``, ``columns``...).
5. **Columns.** ``resourceid`` / ``operationid`` (v0), ``resource_id`` (``events_normalized``)
   and v1's ``envelope.resourceId`` / ``envelope.operationId`` are never named, under any
   spelling: every identifier and every string literal is compared after Unicode NFKC
   normalisation, case folding and removing ``_`` and ``-``. Since they could otherwise come
   out without being named: no ``*`` (``count(*)`` is fine), no whole ``envelope`` struct
   (only its fields: ``envelope.customerId``), no whole row (a table or alias used as a value,
   DuckDB's ``SELECT e FROM events_v0 e``), no column-alias list on a lake table.

The accepted SQL (Trino, as sqlglot prints it) is what is stored and run. Rows beyond
``METRICS_QUERY_MAX_ROWS`` are not silently cut: the run fails with a clear error (see
``runner.py``); a LIMIT, when present, must be a whole number.

The worker's engine session does not trust this module either: see
``metrics_assets/resources/duckdb_session.py`` (files, URLs, extensions and settings are
refused by DuckDB itself, and the lake views carry no forbidden column).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import TokenType

from metrics_assets.queries import config
from metrics_assets.resources.sql_scope import is_cte_reference

DIALECT = "trino"
MAX_SQL_LENGTH = 100_000
MAX_NESTING = 32
#: Brackets opened right after a type name (``ARRAY[``, ``ROW(``, ``DECIMAL(``, ``MAP(ARRAY[``)
#: make sqlglot's parser backtrack, in time exponential in their nesting (20 deep: 20 s). At
#: most this many such brackets may be open at once, so no statement can stall the validator.
MAX_TYPE_NESTING = 4

# Statements or clauses that change data, schema, session or files, or that we do not audit.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "AlterColumn",
        "Command",
        "Copy",
        "Set",
        "Pragma",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Grant",
        "Revoke",
        "Describe",
        "Show",
        "Cache",
        "Uncache",
        "Refresh",
        "Analyze",
        "Attach",
        "Detach",
        "Install",
        "Load",
        "Export",
        "TruncateTable",
        "Into",
        "LoadData",
        "Summarize",
        "Kill",
    )
    if hasattr(exp, name)
)
_UNSUPPORTED_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name) for name in ("Pivot", "MatchRecognize", "Version", "Lambda") if hasattr(exp, name)
)

# Functions that reach outside the lake tables: files, URLs, environment, catalog, other DBs.
_FORBIDDEN_FUNCTION = re.compile(
    r"^(read_\w*|\w*_scan|glob|sniff_csv|getenv|current_setting|duckdb_\w*|pragma_\w*|query|"
    r"query_table|iceberg_\w*|delta_\w*|sqlite_\w*|postgres_\w*|mysql_\w*|http\w*|"
    r"load_aws_credentials|system|table|columns|unpivot|pivot|repeat_row|which_secret|"
    r"information_schema_\w*|pg_\w*|test_all_types|parquet_\w*|json_execute_serialized_sql|"
    r"current_database|current_catalog|current_schema|current_schemas|enable_\w*|disable_\w*|"
    r"checkpoint|force_checkpoint|export_\w*|import_\w*|summary|struct_extract_at|"
    r"get_current_time_zone|icu_\w*|shell|exec|execute)$",
    re.IGNORECASE,
)
_SYSTEM_PREFIXES = ("duckdb_", "pg_", "sqlite_", "information_schema", "system", "temp")
_SYSTEM_NAMES = {"information_schema", "tables", "columns", "schemata", "views", "settings", "sys"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE}
_TYPE_TOKENS = frozenset(sqlglot.Dialect.get_or_raise(DIALECT).parser_class.TYPE_TOKENS)


class QueryRejected(ValueError):
    """The query is not acceptable; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ValidatedQuery:
    sql: str  # what runs: Trino SQL as sqlglot prints it
    tables: tuple[str, ...]  # the lake tables it reads


def normalised(text: str) -> str:
    """``text`` as the forbidden-name check sees it: NFKC, case-folded, no ``_`` or ``-``."""
    return unicodedata.normalize("NFKC", text).casefold().replace("_", "").replace("-", "")


_FORBIDDEN_NORMALISED = tuple(sorted({normalised(c) for c in config.FORBIDDEN_COLUMNS}))


def _mentions_forbidden(text: str) -> str | None:
    flat = normalised(text)
    for name in _FORBIDDEN_NORMALISED:
        if name in flat:
            return name
    return None


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name()


def _check_text(sql: str) -> None:
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("empty", "the query is empty")
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejected(
            "too_long", f"the query is {len(sql):,} characters long; at most {MAX_SQL_LENGTH:,} are accepted"
        )
    bad = next((c for c in sql if (ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127), None)
    if bad is not None:
        raise QueryRejected("control_character", f"the query contains the control character U+{ord(bad):04X}")


def _tokens(sql: str) -> list:
    try:
        return list(sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql))
    except TokenError as error:
        raise QueryRejected("syntax_error", f"SQL syntax error: {str(error).splitlines()[0][:300]}") from error


def _check_tokens(tokens: list) -> None:
    if any(token.comments for token in tokens):
        raise QueryRejected(
            "comment", "comments are not allowed: a comment can hide a statement; remove it and resubmit"
        )
    depth = deepest = typed = 0
    stack: list[bool] = []
    previous = None
    for token in tokens:
        if token.token_type != TokenType.STRING and not token.text.isascii():
            odd = next(c for c in token.text if not c.isascii())
            raise QueryRejected(
                "homoglyph",
                f"{token.text[:40]!r} contains the non-ASCII character {odd!r} (U+{ord(odd):04X}, "
                f"{unicodedata.name(odd, 'unnamed')}): identifiers and keywords must be plain ASCII",
            )
        if token.token_type in _OPEN:
            after_type = previous is not None and previous.token_type in _TYPE_TOKENS
            stack.append(after_type)
            typed += after_type
            if typed > MAX_TYPE_NESTING:
                raise QueryRejected(
                    "too_deep",
                    f"type constructors (ARRAY[, ROW(, DECIMAL(, MAP(...) are nested more than {MAX_TYPE_NESTING} deep",
                )
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in _CLOSE:
            depth -= 1
            if stack:
                typed -= stack.pop()
        previous = token
    if deepest > MAX_NESTING:
        raise QueryRejected(
            "too_deep", f"brackets are nested {deepest} deep; at most {MAX_NESTING} levels are accepted"
        )


def _parse_one(sql: str) -> exp.Expr:
    try:
        parsed = sqlglot.parse(sql, read=DIALECT)
    except (ParseError, TokenError) as error:
        first = str(error).splitlines()[0]
        raise QueryRejected("syntax_error", f"SQL syntax error: {first[:300]}") from error
    statements = [s for s in parsed if s is not None]
    if not statements:
        raise QueryRejected("empty", "the query is empty")
    if len(statements) > 1:
        raise QueryRejected(
            "stacked_statements",
            f"stacked statements are not allowed: found {len(statements)} statements, send exactly one SELECT",
        )
    return statements[0]


def _check_statement(tree: exp.Expr) -> exp.Query:
    """The tree as the one SELECT (a query) it must be; raises :class:`QueryRejected` otherwise."""
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            kind = node.key.upper()
            raise QueryRejected("not_a_select", f"DDL, DML and commands are not allowed ({kind}): send one SELECT")
    if not isinstance(tree, exp.Query):
        raise QueryRejected("not_a_select", f"only a SELECT is allowed, got {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, _UNSUPPORTED_NODES):
            raise QueryRejected("unsupported_clause", f"{node.key.upper()} is not supported in ad hoc queries")
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            raise QueryRejected("placeholder", "parameters (:name, ?) are not supported: write the values in the query")
    return tree


def _check_functions(tree: exp.Expr) -> None:
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Columns):
            raise QueryRejected("forbidden_function", "COLUMNS(...) is not allowed: name the columns")
        name = _function_name(node)
        if _FORBIDDEN_FUNCTION.match(name):
            raise QueryRejected(
                "forbidden_function",
                f"function {name.lower()}() is not allowed: it reads files, URLs, settings or system catalogs",
            )


def _allowed() -> str:
    return ", ".join(config.allowed_tables())


def _check_real_table(table: exp.Table) -> str:
    """A reference that resolves to a real object: it must be a lake table, plainly named."""
    if not isinstance(table.this, exp.Identifier):
        name = table.this.sql(DIALECT) if table.this is not None else "?"
        raise QueryRejected("table_function", f"table functions are not allowed ({name[:60]}): read only {_allowed()}")
    parts = [p for p in table.parts if p is not None]
    if any(isinstance(p, exp.Identifier) and p.quoted for p in parts):
        raise QueryRejected(
            "quoted_table_name",
            f"quoted table names are not allowed ({table.sql(DIALECT)[:80]}): a quoted name can be a file "
            f"path or URL; write {_allowed()} unquoted",
        )
    name = table.name
    if not _IDENTIFIER.match(name):
        raise QueryRejected("quoted_table_name", f"table name {name[:80]!r} is not a plain identifier")
    qualifier = ".".join(p for p in (table.catalog, table.db) if p)
    lowered = name.lower()
    if qualifier:
        system = any(
            q.lower().startswith(_SYSTEM_PREFIXES) or q.lower() in _SYSTEM_NAMES | {"main", "memory", "pg_catalog"}
            for q in (table.catalog, table.db)
            if q
        )
        raise QueryRejected(
            "system_table" if system else "qualified_table",
            f"{'system table' if system else 'qualified table name'} {qualifier}.{name} is not allowed: "
            f"no catalog or schema, read only {_allowed()}",
        )
    if lowered.startswith(_SYSTEM_PREFIXES) or lowered in _SYSTEM_NAMES:
        raise QueryRejected("system_table", f"system table {name} is not allowed: read only {_allowed()}")
    if lowered not in config.allowed_tables():
        raise QueryRejected("table_not_allowed", f"table {name} is not allowed: read only {_allowed()}")
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        raise QueryRejected(
            "column_alias_list",
            f"a column-alias list on {name} is not allowed: it renames columns by position "
            "(resourceid/operationid among them); alias the columns you select instead",
        )
    for arg in ("version", "pivots", "hints", "laterals"):
        if table.args.get(arg):
            raise QueryRejected("unsupported_clause", f"{arg} on table {name} is not supported")
    return lowered


def _check_tables(tree: exp.Expr) -> tuple[str, ...]:
    lake: set[str] = set()
    resolved: set[int] = set()
    for scope in traverse_scope(tree):
        for table in scope.tables:
            resolved.add(id(table))
            if is_cte_reference(table, scope):
                continue
            lake.add(_check_real_table(table))
    for table in tree.find_all(exp.Table):
        if id(table) not in resolved:
            if not isinstance(table.this, exp.Identifier):
                _check_real_table(table)  # a table function: says so
            raise QueryRejected(
                "unresolvable", f"table reference {table.sql(DIALECT)[:80]} cannot be resolved to a lake table or CTE"
            )
    return tuple(sorted(lake))


def _relation_names(tree: exp.Expr) -> set[str]:
    names: set[str] = set()
    for node in tree.find_all(exp.Table, exp.Subquery, exp.CTE, exp.Unnest, exp.Lateral):
        if node.alias_or_name:
            names.add(node.alias_or_name.lower())
        if isinstance(node, exp.Table) and node.name:
            names.add(node.name.lower())
    return names


def _check_columns(tree: exp.Expr) -> None:
    for node in tree.walk():
        # Any name or text in the tree: identifiers, string literals, JSON path keys, ...
        for key in ("this", "alias"):
            text = node.args.get(key)
            if isinstance(text, str):
                hit = _mentions_forbidden(text)
                if hit:
                    raise QueryRejected(
                        "forbidden_column",
                        f"{'resourceid' if 'resource' in hit else 'operationid'} is not "
                        f"allowed, under any name or spelling (found {text[:80]!r})",
                    )
    for star in tree.find_all(exp.Star):
        if isinstance(star.parent, exp.Count) and star.arg_key == "this":
            continue
        raise QueryRejected(
            "star_projection",
            "* is not allowed (except in count(*)): name the columns, a * would expose resourceid/operationid",
        )
    relations = _relation_names(tree)
    for column in tree.find_all(exp.Column):
        name = column.name.lower()
        if name == "envelope":
            raise QueryRejected(
                "whole_struct",
                "the whole envelope struct is not allowed (it holds resourceId/operationId): "
                "select its fields, e.g. envelope.customerId",
            )
        if name in relations:
            raise QueryRejected(
                "whole_row", f"a whole row ({column.sql(DIALECT)[:60]}) is not allowed: name the columns"
            )


def _check_limit(tree: exp.Query) -> None:
    limit = tree.args.get("limit")
    if limit is None and tree.args.get("fetch") is not None:
        raise QueryRejected("bad_limit", "FETCH FIRST is not supported: use LIMIT")
    for node in tree.find_all(exp.Limit, exp.Offset):
        value = node.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise QueryRejected("bad_limit", f"{node.key.upper()} must be a whole number")


def validate(sql: str, *, max_rows: int | None = None) -> ValidatedQuery:
    """Accept or reject ``sql``; raises :class:`QueryRejected` with the reason.

    ``max_rows`` is accepted for compatibility and ignored: the run enforces the row cap."""
    _check_text(sql)
    _check_tokens(_tokens(sql))
    try:
        tree = _check_statement(_parse_one(sql))
        _check_functions(tree)
        tables = _check_tables(tree)
        _check_columns(tree)
        _check_limit(tree)
        rendered = tree.sql(dialect=DIALECT)
    except RecursionError as error:
        raise QueryRejected("too_deep", "the query is nested too deeply to be checked") from error
    except QueryRejected:
        raise
    except Exception as error:
        raise QueryRejected(
            "unresolvable", f"the query cannot be analysed: {type(error).__name__}: {str(error)[:200]}"
        ) from error
    return ValidatedQuery(sql=rendered, tables=tables)
