"""Validation: what is accepted, and the hostile corpus: every statement refused at
submission with its named reason, without reaching the engine or the table."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from metrics_assets.queries import client as client_module
from metrics_assets.queries import runner, store
from metrics_assets.queries.validation import MAX_SQL_LENGTH, QueryRejected, validate

ACCEPTED = [
    (
        "SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename",
        "SELECT servicename, COUNT(*) AS n FROM events_v0 GROUP BY servicename",
    ),
    ("SELECT customerid FROM events_v0 LIMIT 10", "SELECT customerid FROM events_v0 LIMIT 10"),
    (
        "SELECT envelope.customerId AS c, envelope.service.name AS s FROM events_v1",
        "SELECT envelope.customerId AS c, envelope.service.name AS s FROM events_v1",
    ),
    ("SELECT e.envelope.customerId AS c FROM events_v1 AS e", "SELECT e.envelope.customerId AS c FROM events_v1 AS e"),
    (
        (
            "WITH c AS (SELECT customerid FROM events_v0) SELECT customerid FROM c UNION ALL "
            "SELECT envelope.customerId FROM events_v1"
        ),
        (
            "WITH c AS (SELECT customerid FROM events_v0) SELECT customerid FROM c UNION ALL "
            "SELECT envelope.customerId FROM events_v1"
        ),
    ),
    (
        "SELECT n FROM events_v0 CROSS JOIN UNNEST(sequence(1, 3)) AS t(n)",
        "SELECT n FROM events_v0 CROSS JOIN UNNEST(SEQUENCE(1, 3)) AS t(n)",
    ),
    (
        "select year, month, count(*) from events_v0 where year = '2025' group by 1, 2 order by 1, 2",
        "SELECT year, month, COUNT(*) FROM events_v0 WHERE year = '2025' GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    # A CTE may shadow a lake table inside its own scope: its body reads the real table, checked.
    (
        "WITH events_v0 AS (SELECT customerid FROM events_v0 WHERE customerid > 11000) SELECT customerid FROM events_v0",
        "WITH events_v0 AS (SELECT customerid FROM events_v0 WHERE customerid > 11000) SELECT customerid FROM events_v0",
    ),
    # A column-alias list on a derived table of named, safe columns is fine.
    (
        "SELECT x FROM (SELECT customerid FROM events_v0) AS s(x)",
        "SELECT x FROM (SELECT customerid FROM events_v0) AS s(x)",
    ),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
    ),
    # A quoted name that resolves to a CTE is the CTE (DuckDB and Trino agree).
    (
        'WITH events_v0 AS (SELECT 1 AS r) SELECT r FROM "events_v0"',
        'WITH events_v0 AS (SELECT 1 AS r) SELECT r FROM "events_v0"',
    ),
    (
        "SELECT customerid FROM events_v0 WHERE servicename = 'café'",
        "SELECT customerid FROM events_v0 WHERE servicename = 'café'",
    ),
]


@pytest.mark.parametrize("sql, expected", ACCEPTED)
def test_accepted_queries(sql, expected):
    assert validate(sql).sql == expected


SHADOW = "WITH events_v0 AS (SELECT r FROM events_v0 AS t(r)) SELECT r FROM events_v0"

# (category, sql, reason): every one must be refused at submission with exactly that reason.
CORPUS: list[tuple[str, str, str]] = [
    # -- CTE shadowing, in every scope: the reference inside the CTE is the real table, checked.
    (
        "shadowing",
        "WITH events_v0 AS (SELECT r FROM events_v0 AS t(r)) SELECT r AS servicename FROM events_v0 WHERE r <> ''",
        "column_alias_list",
    ),
    ("shadowing", f"SELECT x FROM ({SHADOW}) AS s(x)", "column_alias_list"),
    ("shadowing", f"SELECT customerid FROM events_v0 WHERE servicename IN ({SHADOW})", "column_alias_list"),
    ("shadowing", f"SELECT customerid FROM events_v0 WHERE EXISTS ({SHADOW})", "column_alias_list"),
    ("shadowing", f"SELECT ({SHADOW} LIMIT 1) AS x", "column_alias_list"),
    ("shadowing", f"SELECT l.r FROM events_v1 AS e CROSS JOIN LATERAL ({SHADOW}) AS l", "column_alias_list"),
    ("shadowing", f"SELECT servicename FROM events_v0 UNION ALL SELECT r FROM ({SHADOW})", "column_alias_list"),
    ("shadowing", f"SELECT servicename FROM events_v0 EXCEPT {SHADOW}", "column_alias_list"),
    ("shadowing", f"WITH a AS ({SHADOW}) SELECT r FROM a", "column_alias_list"),
    ("shadowing", f"WITH a AS (WITH b AS ({SHADOW}) SELECT r FROM b) SELECT r FROM a", "column_alias_list"),
    (
        "shadowing",
        "WITH a AS (SELECT r FROM events_v0 AS t(r)), events_v0 AS (SELECT 1 AS r) SELECT r FROM a",
        "column_alias_list",
    ),  # forward reference: inside a, events_v0 is still the lake table
    (
        "shadowing",
        "SELECT r FROM events_v0 AS t(r) WHERE EXISTS (WITH events_v0 AS (SELECT 1 AS r) SELECT r FROM events_v0)",
        "column_alias_list",
    ),  # the inner CTE is not visible to the outer FROM
    ("shadowing", "WITH EVENTS_V0 AS (SELECT 1 AS r) SELECT r FROM events_v0 AS t(r)", "column_alias_list"),
    (
        "shadowing",
        "WITH events_v0 AS (SELECT name FROM duckdb_views()) SELECT name FROM events_v0",
        "forbidden_function",
    ),
    ("shadowing", "WITH events_v0 AS (SELECT setting FROM pg_settings) SELECT setting FROM events_v0", "system_table"),
    (
        "shadowing",
        "SELECT x FROM (WITH events_v1 AS (SELECT client_id AS x FROM telemetry_samples) SELECT x FROM events_v1)",
        "table_not_allowed",
    ),
    (
        "shadowing",
        "WITH events_v0 AS (SELECT servicename AS s FROM events_normalized) SELECT s FROM events_v0",
        "table_not_allowed",
    ),
    ("shadowing", 'WITH events_v0 AS (SELECT a FROM "/some/secret.csv") SELECT a FROM events_v0', "quoted_table_name"),
    ("shadowing", 'WITH x AS (SELECT 1 AS r) SELECT r FROM x, "events_v0" AS t(r)', "quoted_table_name"),
    (
        "shadowing",
        "WITH events_v0 AS (SELECT query_id AS r FROM historical_queries) SELECT r FROM events_v0",
        "table_not_allowed",
    ),
    # -- quoted paths, globs, URLs as table names (DuckDB's replacement scan would read them)
    ("path", 'SELECT a FROM "/some/secret.csv"', "quoted_table_name"),
    ("path", "SELECT a FROM '/etc/passwd'", "quoted_table_name"),
    ("path", 'SELECT a FROM "lake/events/v0/**/*.json.gz"', "quoted_table_name"),
    ("path", 'SELECT a FROM "/tmp/*.parquet"', "quoted_table_name"),
    ("path", 'SELECT customerid FROM events_v0 JOIN "/home/x/.aws/credentials" AS c ON true', "quoted_table_name"),
    ("path", 'SELECT a FROM (SELECT a FROM "../warehouse.sqlite") AS s', "quoted_table_name"),
    ("path", 'SELECT customerid FROM "events_v0"', "quoted_table_name"),
    ("url", 'SELECT a FROM "https://example.com/x.csv"', "quoted_table_name"),
    ("url", "SELECT a FROM 's3://bucket/secret.parquet'", "quoted_table_name"),
    ("url", 'SELECT a FROM "http://169.254.169.254/latest/meta-data/"', "quoted_table_name"),
    ("url", 'SELECT a FROM "file:///etc/passwd"', "quoted_table_name"),
    ("url", "SELECT a FROM read_parquet('https://example.com/x.parquet')", "forbidden_function"),
    ("url", "SELECT a FROM read_json('s3://bucket/secret.json')", "forbidden_function"),
    # -- catalog- and schema-qualified names
    ("qualified", "SELECT customerid FROM memory.main.events_v0", "system_table"),
    ("qualified", "SELECT customerid FROM main.events_v0", "system_table"),
    ("qualified", "SELECT customerid FROM lake.events_v0", "qualified_table"),
    ("qualified", "SELECT customerid FROM awsdatacatalog.lake.events_v0", "qualified_table"),
    ("qualified", "SELECT query_id FROM warehouse.public.historical_queries", "qualified_table"),
    ("qualified", "SELECT customerid FROM otherdb.events_v0", "qualified_table"),
    # -- system views and catalogs
    ("system", "SELECT table_name FROM information_schema.tables", "system_table"),
    ("system", "SELECT tablename FROM pg_catalog.pg_tables", "system_table"),
    ("system", "SELECT node_id FROM system.runtime.nodes", "system_table"),
    ("system", "SELECT name FROM sqlite_master", "system_table"),
    ("system", "SELECT name FROM duckdb_settings", "system_table"),
    ("system", "SELECT sql FROM duckdb_views", "system_table"),
    ("system", "SELECT name FROM pg_settings", "system_table"),
    ("system", "SELECT database_name FROM duckdb_databases()", "forbidden_function"),
    ("system", "SELECT name FROM pragma_table_info('events_v0')", "forbidden_function"),
    ("system", "SELECT current_setting('s3_secret_access_key')", "forbidden_function"),
    ("system", "SELECT getenv('AWS_SECRET_ACCESS_KEY')", "forbidden_function"),
    ("system", "SELECT current_schema() AS s", "forbidden_function"),
    # -- tables that are not the lake's
    ("table", "SELECT query_id FROM historical_queries", "table_not_allowed"),
    ("table", "SELECT resource_id FROM events_normalized", "table_not_allowed"),
    ("table", "SELECT client_id FROM telemetry_samples", "table_not_allowed"),
    # -- table functions
    ("table_function", "SELECT a FROM read_csv('/etc/passwd')", "forbidden_function"),
    ("table_function", "SELECT a FROM read_json_auto('/tmp/x.json')", "forbidden_function"),
    ("table_function", "SELECT content FROM read_text('/etc/passwd')", "forbidden_function"),
    ("table_function", "SELECT a FROM parquet_scan('/tmp/x.parquet')", "forbidden_function"),
    (
        "table_function",
        "SELECT customerid FROM events_v0 WHERE customerid IN (SELECT a FROM read_csv_auto('/x.csv'))",
        "forbidden_function",
    ),
    ("table_function", "SELECT x FROM TABLE(system.runtime.kill_query('1'))", "forbidden_function"),
    ("table_function", "SELECT a FROM query('SELECT 1')", "forbidden_function"),
    ("table_function", "SELECT a FROM query_table('events_v0')", "forbidden_function"),
    ("table_function", "SELECT x FROM generate_series(1, 10) AS t(x)", "table_function"),
    ("table_function", "SELECT file FROM glob('/*')", "syntax_error"),  # sqlglot's Trino parser cannot read it
    # -- forbidden columns, directly, aliased, in structs, as strings, in any spelling
    ("column", "SELECT resourceid FROM events_v0", "forbidden_column"),
    ("column", "SELECT resourceid AS servicename FROM events_v0", "forbidden_column"),
    ("column", "SELECT customerid FROM events_v0 WHERE operationid = 'x'", "forbidden_column"),
    ("column", 'SELECT "ResourceId" FROM events_v0', "forbidden_column"),
    ("column", "SELECT r FROM (SELECT operationid AS r FROM events_v0) AS s", "forbidden_column"),
    ("column", "SELECT envelope.resourceId FROM events_v1", "forbidden_column"),
    ("column", "SELECT e.envelope.operationId FROM events_v1 AS e", "forbidden_column"),
    ("column", "SELECT element_at(envelope, 'resourceId') FROM events_v1", "forbidden_column"),
    ("column", "SELECT json_extract(data, '$.operationId') FROM events_v1", "forbidden_column"),
    ("column", "SELECT json_extract_scalar(data, '$.resource_id') FROM events_v0", "forbidden_column"),
    ("column", "SELECT count(*) FROM events_v0 GROUP BY resource_id", "forbidden_column"),
    ("column", 'SELECT customerid FROM events_v0 ORDER BY "OPERATION-ID"', "forbidden_column"),
    # -- wholesale: stars, whole structs, whole rows, column-alias lists
    ("wholesale", "SELECT * FROM events_v0", "star_projection"),
    ("wholesale", "SELECT t.* FROM events_v1 AS t", "star_projection"),
    ("wholesale", "SELECT customerid FROM (SELECT * FROM events_v0)", "star_projection"),
    ("wholesale", "TABLE events_v0", "star_projection"),
    ("wholesale", "SELECT count(t.*) FROM events_v0 AS t", "star_projection"),
    ("wholesale", "SELECT COLUMNS('.*id') FROM events_v0", "forbidden_function"),
    ("wholesale", "SELECT envelope FROM events_v1", "whole_struct"),
    ("wholesale", "SELECT CAST(envelope AS JSON) AS j FROM events_v1", "whole_struct"),
    ("wholesale", "SELECT envelope[1] FROM events_v1", "whole_struct"),
    ("wholesale", "SELECT e.envelope FROM events_v1 AS e", "whole_struct"),
    ("wholesale", "SELECT e FROM events_v0 AS e", "whole_row"),
    ("wholesale", "SELECT events_v0 FROM events_v0", "whole_row"),
    ("wholesale", "SELECT CAST(x AS VARCHAR) AS j FROM events_v0 AS x", "whole_row"),
    (
        "wholesale",
        "SELECT customerid FROM events_v0 WHERE (SELECT max(CAST(v AS VARCHAR)) FROM events_v1 AS v) > ''",
        "whole_row",
    ),
    ("wholesale", "SELECT a FROM events_v0 AS t(a, b, c)", "column_alias_list"),
    ("wholesale", "SELECT b FROM events_v0 t(a, b)", "column_alias_list"),
    ("wholesale", "SELECT c FROM events_v1 AS v(c)", "column_alias_list"),
    ("wholesale", "SELECT x FROM events_v0 JOIN events_v0 AS u(x) ON true", "column_alias_list"),
    ("wholesale", "SELECT count(*) FROM events_v0 PIVOT (count(*) FOR servicename IN ('a'))", "unsupported_clause"),
    # -- homoglyphs and invisible characters
    ("homoglyph", "SELECT r\u0435sourceid FROM events_v0", "homoglyph"),  # Cyrillic e
    ("homoglyph", "SELECT \uff52\uff45\uff53\uff4f\uff55\uff52\uff43\uff45\uff49\uff44 FROM events_v0", "homoglyph"),
    ("homoglyph", "SELECT customerid FROM \u0435vents_v0", "homoglyph"),
    ("homoglyph", "SELECT resource\u200bid FROM events_v0", "homoglyph"),  # zero-width space
    ("homoglyph", 'SELECT "resource\u200did" FROM events_v0', "homoglyph"),
    (
        "homoglyph",
        "SELECT json_extract(data, '$.\uff52\uff45\uff53\uff4f\uff55\uff52\uff43\uff45\uff29\uff44') FROM events_v1",
        "forbidden_column",
    ),  # full-width inside a string: NFKC makes it resourceId
    # -- deep nesting and huge statements
    ("deep", "SELECT " + "(" * 49 + "1" + ")" * 49 + " AS x", "too_deep"),
    (
        "deep",
        "SELECT customerid FROM events_v0 WHERE customerid IN "
        + "(SELECT customerid FROM events_v0 WHERE customerid IN " * 40
        + "(1)"
        + ")" * 40,
        "too_deep",
    ),
    ("deep", "SELECT " + "ARRAY[" * 40 + "1" + "]" * 40 + " AS x", "too_deep"),
    # Type constructors make sqlglot backtrack exponentially (20 deep: 20 s): at most 4 deep.
    ("deep", "SELECT " + "DECIMAL(" * 20 + "1" + ")" * 20 + " AS x", "too_deep"),
    ("deep", "SELECT " + "ROW(" * 5 + "1" + ")" * 5 + " AS x", "too_deep"),
    ("deep", "SELECT " + "MAP(ARRAY[1], ARRAY[" * 3 + "1" + "])" * 3 + " AS x", "too_deep"),
    ("huge", "SELECT customerid FROM events_v0 WHERE customerid IN (" + ", ".join(["1"] * 400_000) + ")", "too_long"),
    ("huge", "SELECT customerid FROM events_v0 WHERE servicename = '" + "x" * (MAX_SQL_LENGTH + 1) + "'", "too_long"),
    # -- stacked statements, DDL, DML, commands, comments
    ("stacked", "SELECT customerid FROM events_v0; DROP TABLE historical_queries", "stacked_statements"),
    ("stacked", "SELECT 1;DELETE FROM historical_query_results", "stacked_statements"),
    ("command", "DROP TABLE events_v0", "not_a_select"),
    ("command", "INSERT INTO events_v0 (customerid) VALUES (1)", "not_a_select"),
    ("command", "CREATE TABLE x AS SELECT customerid FROM events_v0", "not_a_select"),
    ("command", "SET SESSION query_max_run_time = '1h'", "not_a_select"),
    ("command", "SHOW TABLES", "not_a_select"),
    ("command", "DESCRIBE events_v0", "not_a_select"),
    ("command", "CALL system.sync_partition_metadata('a', 'b', 'FULL')", "not_a_select"),
    ("command", "EXPLAIN SELECT customerid FROM events_v0", "not_a_select"),
    ("command", "VALUES (1)", "not_a_select"),
    ("comment", "SELECT customerid FROM events_v0 -- ; DROP TABLE x", "comment"),
    ("comment", "SELECT customerid /* hidden */ FROM events_v0", "comment"),
    ("comment", "/* DROP TABLE historical_queries; */ SELECT customerid FROM events_v0", "comment"),
    # -- malformed
    ("malformed", "", "empty"),
    ("malformed", "   ", "empty"),
    ("malformed", "SELEC customerid FROM events_v0", "syntax_error"),
    ("malformed", "SELECT 'unterminated FROM events_v0", "syntax_error"),
    ("malformed", "SELECT customerid FROM events_v0 WHERE customerid = :id", "placeholder"),
    ("malformed", "SELECT customerid FROM events_v0 LIMIT (SELECT 1)", "bad_limit"),
    ("malformed", "SELECT customerid FROM events_v0\x00", "control_character"),
]


def test_the_corpus_is_large_and_covers_every_kind():
    assert len(CORPUS) >= 80
    assert len({sql for _, sql, _ in CORPUS}) == len(CORPUS)
    kinds = {kind for kind, _, _ in CORPUS}
    assert {"shadowing", "path", "url", "qualified", "system", "wholesale", "homoglyph", "deep", "huge"} <= kinds
    assert sum(kind == "shadowing" for kind, _, _ in CORPUS) >= 15
    assert max(len(sql) for _, sql, _ in CORPUS) >= 1_000_000  # a 1 MB statement


@pytest.mark.parametrize(
    "kind, sql, reason", CORPUS, ids=[f"{i:03d}-{kind}-{reason}" for i, (kind, _, reason) in enumerate(CORPUS)]
)
def test_every_statement_of_the_corpus_is_refused_with_its_reason(kind, sql, reason):
    with pytest.raises(QueryRejected) as refused:
        validate(sql)
    assert refused.value.reason == reason, str(refused.value)
    assert str(refused.value)  # a message a person can read


def test_no_statement_stalls_the_validator():
    """100 KB of type constructors at the allowed depth: checked in linear time."""
    import time

    one = "ROW(ARRAY[DECIMAL(TIMESTAMP(1))])"
    sql = "SELECT " + ", ".join([one] * ((MAX_SQL_LENGTH - 100) // (len(one) + 2)))
    started = time.process_time()
    with contextlib.suppress(QueryRejected):
        validate(sql)
    assert time.process_time() - started < 20


def test_a_deep_expression_without_brackets_is_refused_not_a_crash():
    sql = "SELECT " + " + ".join(["customerid"] * 6000) + " AS x FROM events_v0"
    try:
        validate(sql)
    except QueryRejected as refused:
        assert refused.reason in {"too_deep", "too_long"}


def test_the_corpus_never_reaches_the_engine_nor_the_table(sqlite_warehouse, engine):
    """Submitted through the client: every one refused, nothing stored, the engine never called."""
    client = client_module.QueryClient(sqlite_warehouse)
    for _, sql, reason in CORPUS:
        with pytest.raises(store.InvalidQuery) as refused:
            client.submit(sql)
        assert refused.value.reason == reason
    assert sqlite_warehouse.scalar("SELECT count(*) FROM historical_queries") == 0
    assert engine.calls == []


def test_a_malicious_query_written_straight_into_the_table_fails_before_the_engine(sqlite_warehouse, engine):
    """Defence in depth: the run validates the stored SQL again."""
    query_id = store.insert_query(sqlite_warehouse, "SELECT a FROM read_csv('/etc/passwd')", 60)
    outcome = runner.run_query(sqlite_warehouse, engine, query_id)
    assert outcome.status == store.FAILED
    assert engine.calls == []
    row = sqlite_warehouse.fetch_all("SELECT status, error FROM historical_queries")[0]
    assert row["status"] == "FAILED"
    assert row["error"].startswith("rejected: function read_csv() is not allowed")
    assert sqlite_warehouse.scalar("SELECT count(*) FROM historical_query_results") == 0
    assert isinstance(sqlite_warehouse.engine, sa.engine.Engine)
