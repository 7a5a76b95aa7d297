"""Defence in depth: the hardened DuckDB session alone, with the validator bypassed.

Every statement here goes straight to the session ad hoc queries run in
(``execution.session_for``), as if the validator had a bug. DuckDB itself must refuse file,
URL, extension and settings access, and the lake views must not carry the forbidden columns.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from metrics_assets import settings
from metrics_assets.queries import execution
from metrics_assets_tests.test_queries import lake as standin

SECRET = "s3cret-line-of-a-private-file"


@pytest.fixture
def session(events, metrics_home, monkeypatch):
    monkeypatch.setenv("METRICS_QUERY_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("METRICS_QUERY_THREADS", "1")
    monkeypatch.setenv("METRICS_QUERY_MAX_TEMP_SIZE", "64MB")
    (metrics_home / "secret.csv").write_text(f"a\n{SECRET}\n")
    conn = execution.session_for(settings.object_store_dir(), standin.catalog())
    yield conn
    conn.close()


def _lake_file(events_dir: Path) -> str:
    return str(next(events_dir.rglob("*.json.gz")))


REFUSED = [
    # files outside the lake, by every door
    ("file", "SELECT * FROM '{home}/secret.csv'"),
    ("file", 'SELECT * FROM "{home}/secret.csv"'),
    ("file", "SELECT * FROM read_csv('{home}/secret.csv')"),
    ("file", "SELECT * FROM read_text('{home}/secret.csv')"),
    ("file", "SELECT * FROM read_blob('{home}/secret.csv')"),
    ("file", "SELECT * FROM read_json('{lake}/../../../../secret.csv')"),
    ("file", "SELECT * FROM glob('{home}/*')"),
    ("file", "SELECT * FROM sniff_csv('{home}/secret.csv')"),
    ("file", "SELECT * FROM read_text('/etc/passwd')"),
    ("file", "SELECT * FROM read_csv_auto('{home}/secret.csv')"),
    ("file", "ATTACH '{home}/other.duckdb' AS other"),
    ("file", "COPY (SELECT 1) TO '{home}/out.csv'"),
    ("file", "EXPORT DATABASE '{home}/export'"),
    # URLs
    ("url", "SELECT * FROM 'https://example.com/x.csv'"),
    ("url", "SELECT * FROM read_parquet('s3://bucket/secret.parquet')"),
    ("url", "SELECT * FROM read_json('http://169.254.169.254/latest/meta-data/')"),
    # extensions
    ("extension", "INSTALL httpfs"),
    ("extension", "LOAD httpfs"),
    ("extension", "LOAD '{home}/evil.duckdb_extension'"),
    ("extension", "INSTALL spatial FROM community"),
    # settings
    ("settings", "SET enable_external_access = true"),
    ("settings", "SET memory_limit = '20GB'"),
    ("settings", "SET threads = 64"),
    ("settings", "SET allowed_directories = ['/']"),
    ("settings", "RESET lock_configuration"),
    ("settings", "SET lock_configuration = false"),
    ("settings", "SET autoinstall_known_extensions = true"),
    ("settings", "PRAGMA memory_limit = '20GB'"),
    ("settings", "SET temp_directory = '/tmp'"),
    # forbidden columns: not in the session's views at all
    ("column", "SELECT resourceid FROM events_v0"),
    ("column", "SELECT operationid FROM events_v0"),
    ("column", "SELECT envelope.resourceId FROM events_v1"),
    ("column", "SELECT envelope.operationId FROM events_v1"),
]


@pytest.mark.parametrize("kind, template", REFUSED, ids=[f"{i:02d}-{k}" for i, (k, _) in enumerate(REFUSED)])
def test_the_hardened_session_alone_refuses(session, metrics_home, kind, template):
    lake = settings.object_store_dir() / "lake" / "events" / "v0"
    sql = template.format(home=metrics_home, lake=lake)
    with pytest.raises(duckdb.Error) as refused:
        session.sql(sql).fetchall() if sql.lstrip().upper().startswith("SELECT") else session.execute(sql)
    message = str(refused.value)
    expected = {
        "file": ("disabled by configuration", "Permission Error"),
        "url": ("disabled by configuration", "Permission Error"),
        "extension": ("disabled", "Permission Error"),
        "settings": ("configuration has been locked",),
        "column": ("not found", "does not have a column", "Binder Error"),
    }[kind]
    assert any(e in message for e in expected), message
    assert SECRET not in message


def test_the_settings_come_from_the_environment_and_stay(session):
    values = dict(
        session.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('memory_limit', 'threads', 'enable_external_access', 'lock_configuration', "
            "'autoinstall_known_extensions', 'autoload_known_extensions', 'max_temp_directory_size')"
        ).fetchall()
    )
    assert values["threads"] == "1"
    assert values["memory_limit"] in ("286.1 MiB", "300.0 MB", "286.1MiB")
    assert values["enable_external_access"] == "false"
    assert values["lock_configuration"] == "true"
    assert values["autoinstall_known_extensions"] == "false"
    assert values["autoload_known_extensions"] == "false"
    assert values["max_temp_directory_size"] in ("61.0 MiB", "64.0 MB", "61.0MiB")


def test_the_lake_is_readable_without_the_forbidden_columns(session, events):
    columns = [r[0] for r in session.sql("DESCRIBE events_v0").fetchall()]
    assert "resourceid" not in columns and "operationid" not in columns
    assert {"customerid", "servicename", "data", "year", "minute"} <= set(columns)
    envelope = {r[0]: r[1] for r in session.sql("DESCRIBE events_v1").fetchall()}["envelope"]
    assert "resourceId" not in envelope and "operationId" not in envelope and "customerId" in envelope
    rows = session.sql("SELECT customerid FROM events_v0 ORDER BY createdtimestamp").fetchall()
    assert [r[0] for r in rows] == [e["customerid"] for e in events["v0"]]
    # The bypass, run straight on the session: the first column is no longer resourceid.
    bypass = session.sql(
        "WITH events_v0 AS (SELECT r FROM events_v0 AS t(r)) SELECT r AS servicename FROM events_v0"
    ).fetchall()
    assert sorted(r[0] for r in bypass) == sorted(e["customerid"] for e in events["v0"])
    assert not any(str(r[0]).startswith("res-") for r in bypass)
    whole = session.sql("SELECT to_json(e) FROM events_v1 AS e").fetchall()
    assert whole and not any("resourceId" in r[0] or "operationId" in r[0] for r in whole)


def test_no_corpus_statement_leaks_through_the_session_alone(events, metrics_home):
    """Every statement of the hostile corpus, sent straight to a fresh hardened session (as
    sqlglot renders it for DuckDB, or verbatim when it does not parse): DuckDB refuses it, or
    it returns rows without a single resource id, operation id or byte of a private file."""
    import threading

    from metrics_assets.queries.validation import DIALECT, MAX_SQL_LENGTH
    from metrics_assets.resources.query_engine import render
    from metrics_assets_tests.test_queries.test_validation import CORPUS

    (metrics_home / "secret.csv").write_text(f"a\n{SECRET}\n")
    leaks = [e["resourceid"] for e in events["v0"]] + [e["operationid"] for e in events["v0"]]
    leaks += [e["envelope"]["resourceId"] for e in events["v1"]] + [e["envelope"]["operationId"] for e in events["v1"]]
    refused = answered = 0
    for _, sql, reason in CORPUS:
        if len(sql) > MAX_SQL_LENGTH:  # never reaches an engine: the API and the validator stop it first
            refused += 1
            continue
        try:  # deep nesting is sent as written: sqlglot itself would take exponential time on it
            text = render(sql, None, "duckdb") if sql.strip() and reason != "too_deep" else sql
        except Exception:
            text = sql
        assert DIALECT == "trino"
        conn = execution.session_for(settings.object_store_dir(), standin.catalog())
        timer = threading.Timer(10, conn.interrupt)
        timer.start()
        try:
            relation = conn.sql(text)
            rows = relation.fetchall() if relation is not None else []
        except (duckdb.Error, RuntimeError):
            refused += 1
            continue
        finally:
            timer.cancel()
            conn.close()
        answered += 1
        flat = repr(rows)
        assert SECRET not in flat and not any(value in flat for value in leaks), (sql[:200], flat[:300])
    assert refused + answered == len(CORPUS) and refused >= 40
