"""Validation: what is accepted (and how it is rewritten), and a corpus of malicious or
malformed queries, every one refused with its reason and without reaching the engine."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from metrics_assets.queries import client as client_module
from metrics_assets.queries import runner, store
from metrics_assets.queries.validation import QueryRejected, validate

ACCEPTED = [
    ("SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename",
     "SELECT servicename, COUNT(*) AS n FROM events_v0 GROUP BY servicename LIMIT 1000000"),
    ("SELECT customerid FROM events_v0 LIMIT 10", "SELECT customerid FROM events_v0 LIMIT 10"),
    ("SELECT customerid FROM events_v0 LIMIT 5000000", "SELECT customerid FROM events_v0 LIMIT 1000000"),
    ("SELECT envelope.customerId AS c, envelope.service.name AS s FROM events_v1",
     "SELECT envelope.customerId AS c, envelope.service.name AS s FROM events_v1 LIMIT 1000000"),
    (("WITH c AS (SELECT customerid FROM events_v0) SELECT customerid FROM c UNION ALL "
      "SELECT envelope.customerId FROM events_v1"),
     ("WITH c AS (SELECT customerid FROM events_v0) SELECT customerid FROM c UNION ALL "
      "SELECT envelope.customerId FROM events_v1 LIMIT 1000000")),
    ("SELECT n FROM events_v0 CROSS JOIN UNNEST(sequence(1, 3)) AS t(n)",
     "SELECT n FROM events_v0 CROSS JOIN UNNEST(SEQUENCE(1, 3)) AS t(n) LIMIT 1000000"),
    ("select year, month, count(*) from events_v0 where year = '2025' group by 1, 2 order by 1, 2",
     "SELECT year, month, COUNT(*) FROM events_v0 WHERE year = '2025' GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 1000000"),
]


@pytest.mark.parametrize("sql, expected", ACCEPTED)
def test_accepted_queries_are_rewritten_with_a_limit(sql, expected):
    assert validate(sql).sql == expected


def test_the_default_limit_follows_the_setting(monkeypatch):
    monkeypatch.setenv("METRICS_QUERY_MAX_ROWS", "250")
    checked = validate("SELECT customerid FROM events_v0")
    assert (checked.sql, checked.limit, checked.limit_added) == ("SELECT customerid FROM events_v0 LIMIT 250", 250, True)


# (sql, reason): every one must be refused with that reason.
CORPUS = [
    # stacked statements
    ("SELECT customerid FROM events_v0; DROP TABLE historical_queries", "stacked_statements"),
    ("SELECT customerid FROM events_v0; SELECT customerid FROM events_v0", "stacked_statements"),
    ("SELECT 1;DELETE FROM historical_query_results", "stacked_statements"),
    # DDL, DML, commands
    ("DROP TABLE events_v0", "not_a_select"),
    ("DELETE FROM events_v0", "not_a_select"),
    ("INSERT INTO events_v0 (customerid) VALUES (1)", "not_a_select"),
    ("UPDATE events_v0 SET customerid = 1", "not_a_select"),
    ("CREATE TABLE x AS SELECT customerid FROM events_v0", "not_a_select"),
    ("ALTER TABLE events_v0 ADD COLUMN x INT", "not_a_select"),
    ("SET SESSION query_max_run_time = '1h'", "not_a_select"),
    ("SHOW TABLES", "not_a_select"),
    ("DESCRIBE events_v0", "not_a_select"),
    ("CALL system.sync_partition_metadata('a', 'b', 'FULL')", "not_a_select"),
    ("EXPLAIN SELECT customerid FROM events_v0", "not_a_select"),
    ("VALUES (1)", "not_a_select"),
    # hidden behind comments
    ("SELECT customerid FROM events_v0 -- ; DROP TABLE x", "comment"),
    ("SELECT customerid /* hidden */ FROM events_v0", "comment"),
    ("/* DROP TABLE historical_queries; */ SELECT customerid FROM events_v0", "comment"),
    ("SELECT customerid FROM events_v0 --\n; DROP TABLE x", "comment"),
    # file / URL table functions and scalar escapes
    ("SELECT a FROM read_csv('/etc/passwd')", "forbidden_function"),
    ("SELECT a FROM read_json('s3://bucket/secret.json')", "forbidden_function"),
    ("SELECT a FROM read_parquet('https://example.com/x.parquet')", "forbidden_function"),
    ("SELECT a FROM read_json_auto('/tmp/x.json')", "forbidden_function"),
    ("SELECT file FROM glob('/*')", "syntax_error"),  # sqlglot's Trino parser cannot even read it
    ("SELECT content FROM read_text('/etc/passwd')", "forbidden_function"),
    ("SELECT a FROM parquet_scan('/tmp/x.parquet')", "forbidden_function"),
    ("SELECT customerid FROM events_v0 WHERE customerid IN (SELECT a FROM read_csv_auto('/x.csv'))",
     "forbidden_function"),
    ("SELECT getenv('AWS_SECRET_ACCESS_KEY')", "forbidden_function"),
    ("SELECT current_setting('s3_secret_access_key')", "forbidden_function"),
    ("SELECT database_name FROM duckdb_databases()", "forbidden_function"),
    ("SELECT x FROM TABLE(system.runtime.kill_query('1'))", "forbidden_function"),
    ("SELECT a FROM query('SELECT 1')", "forbidden_function"),
    # system tables, other tables
    ("SELECT table_name FROM information_schema.tables", "system_table"),
    ("SELECT tablename FROM pg_catalog.pg_tables", "system_table"),
    ("SELECT node_id FROM system.runtime.nodes", "system_table"),
    ("SELECT name FROM sqlite_master", "system_table"),
    ("SELECT query_id FROM historical_queries", "table_not_allowed"),
    ("SELECT customerid FROM otherdb.events_v0", "table_not_allowed"),
    # forbidden columns, directly or wholesale
    ("SELECT resourceid FROM events_v0", "forbidden_column"),
    ("SELECT customerid FROM events_v0 WHERE operationid = 'x'", "forbidden_column"),
    ('SELECT "ResourceId" FROM events_v0', "forbidden_column"),
    ("SELECT envelope.resourceId FROM events_v1", "forbidden_column"),
    ("SELECT e.envelope.operationId FROM events_v1 AS e", "forbidden_column"),
    ("SELECT element_at(envelope, 'resourceId') FROM events_v1", "forbidden_column"),
    ("SELECT json_extract(data, '$.operationId') FROM events_v1", "forbidden_column"),
    ("SELECT envelope FROM events_v1", "forbidden_column"),
    ("SELECT e FROM events_v0 AS e", "forbidden_column"),
    ("SELECT a FROM events_v0 AS t(a, b, c)", "forbidden_column"),
    ("SELECT * FROM events_v0", "star_projection"),
    ("SELECT t.* FROM events_v1 AS t", "star_projection"),
    ("SELECT customerid FROM (SELECT * FROM events_v0)", "star_projection"),
    # malformed
    ("", "empty"),
    ("   ", "empty"),
    ("SELEC customerid FROM events_v0", "syntax_error"),
    ("SELECT customerid FROM events_v0 WHERE", "syntax_error"),
    ("SELECT 'unterminated FROM events_v0", "syntax_error"),
    ("SELECT customerid FROM events_v0 WHERE customerid = :id", "placeholder"),
    ("SELECT customerid FROM events_v0 LIMIT (SELECT 1)", "bad_limit"),
    ("SELECT customerid FROM events_v0\x00", "syntax_error"),
]


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 30
    assert len({sql for sql, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("sql, reason", CORPUS, ids=[f"{i:02d}-{r}" for i, (_, r) in enumerate(CORPUS)])
def test_every_query_of_the_corpus_is_refused_with_its_reason(sql, reason):
    with pytest.raises(QueryRejected) as refused:
        validate(sql)
    assert refused.value.reason == reason
    assert str(refused.value)  # a message a person can read


def test_the_corpus_never_reaches_the_engine_nor_the_table(sqlite_warehouse, engine):
    """Submitted through the client: every one refused, nothing stored, the engine never called."""
    client = client_module.QueryClient(sqlite_warehouse)
    for sql, reason in CORPUS:
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
