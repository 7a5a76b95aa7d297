"""The warehouse: schema upgrades, atomic slice replace, bulk loads (COPY on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from metrics_assets.resources.warehouse import (
    _alembic_config,
    engine_for,
    migration_locations,
)

H10 = datetime(2026, 1, 5, 10, tzinfo=UTC)
H11 = datetime(2026, 1, 5, 11, tzinfo=UTC)
H12 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
def slice_table(warehouse):
    ts = "timestamptz" if warehouse.is_postgres else "timestamp"
    warehouse.execute("DROP TABLE IF EXISTS t_slice")
    warehouse.execute(
        f"CREATE TABLE t_slice (period_start {ts} NOT NULL, k text NOT NULL, v bigint, note text,"
        " UNIQUE (period_start, k))"
    )
    yield "t_slice"
    warehouse.execute("DROP TABLE IF EXISTS t_slice")


def rows(warehouse):
    return [
        (str(r["k"]), r["v"], r["note"])
        for r in warehouse.fetch_all("SELECT k, v, note FROM t_slice ORDER BY period_start, k")
    ]


def hour(warehouse, start, data):
    return warehouse.replace_slice(
        "t_slice",
        data,
        "period_start >= :start AND period_start < :end",
        {"start": start, "end": start.replace(hour=start.hour + 1)},
    )


def applied_revisions(script, recorded: set[str]) -> set[str]:
    """Every revision the recorded versions stand for: each with its ancestors, following
    ``down_revision`` and ``depends_on`` (a domain branch depends on the foundation, so
    Alembic records only the domain's leaf)."""
    seen: set[str] = set()
    stack = list(recorded)
    while stack:
        rev = script.get_revision(stack.pop())
        if rev.revision in seen:
            continue
        seen.add(rev.revision)
        for parents in (rev.down_revision, rev.dependencies):
            if parents:
                stack.extend([parents] if isinstance(parents, str) else parents)
    return seen


def test_schema_is_at_every_head(warehouse):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(warehouse.url))
    every = {r.revision for r in script.walk_revisions()}
    recorded = {r["version_num"] for r in warehouse.fetch_all("SELECT version_num FROM metrics_schema_version")}
    assert applied_revisions(script, recorded) == every
    assert "foundation_0001" in every
    assert migration_locations()[0].endswith("resources/migrations/versions")


def test_upgrade_in_place_from_an_older_database(warehouse):
    """A database at an older revision (here: nothing at all) is upgraded where it stands,
    keeping its data, and a second upgrade is a no-op."""
    from alembic import command

    cfg = _alembic_config(warehouse.url)
    with warehouse.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "quarantine" not in sa.inspect(warehouse.engine).get_table_names()
    warehouse.execute("CREATE TABLE keep_me (x int)")
    warehouse.execute("INSERT INTO keep_me VALUES (7)")
    with warehouse.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
        command.upgrade(cfg, "heads")
    assert "quarantine" in sa.inspect(warehouse.engine).get_table_names()
    assert warehouse.scalar("SELECT x FROM keep_me") == 7
    warehouse.execute("DROP TABLE keep_me")


def test_replace_slice_is_idempotent_and_touches_only_its_slice(warehouse, slice_table):
    hour(warehouse, H10, [{"period_start": H10, "k": "a", "v": 1, "note": None}])
    hour(warehouse, H11, [{"period_start": H11, "k": "a", "v": 2, "note": "x"}])
    first = rows(warehouse)
    for _ in range(3):  # reruns of hour 11 in any number never double-count
        hour(warehouse, H11, [{"period_start": H11, "k": "a", "v": 2, "note": "x"}])
    assert rows(warehouse) == first == [("a", 1, None), ("a", 2, "x")]
    # A corrected rerun replaces exactly its hour.
    hour(warehouse, H11, [{"period_start": H11, "k": "b", "v": 5, "note": ""}])
    assert rows(warehouse) == [("a", 1, None), ("b", 5, "")]


def test_a_failed_write_leaves_the_old_rows(warehouse, slice_table):
    hour(warehouse, H10, [{"period_start": H10, "k": "a", "v": 1, "note": None}])
    duplicate = [{"period_start": H10, "k": "z", "v": 1, "note": None}] * 2  # violates the unique key
    with pytest.raises(sa.exc.IntegrityError):
        hour(warehouse, H10, duplicate)
    assert rows(warehouse) == [("a", 1, None)]


def test_unique_key_forbids_a_double_count(warehouse, slice_table):
    warehouse.append("t_slice", [{"period_start": H12, "k": "a", "v": 1, "note": None}])
    with pytest.raises(sa.exc.IntegrityError):
        warehouse.append("t_slice", [{"period_start": H12, "k": "a", "v": 1, "note": None}])
    assert warehouse.scalar("SELECT count(*) FROM t_slice") == 1


def test_bulk_load_keeps_every_value_exactly(warehouse, slice_table):
    tricky = ["plain", "", None, 'quote " and, comma', "new\nline", "tab\tand \\ backslash", "ünïcødé"]
    n = len(tricky)
    data = pa.table(
        {
            "period_start": pa.array(
                [datetime(2026, 1, 5, 10, i, 30, 250000, tzinfo=UTC) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "k": [f"k{i}" for i in range(n)],
            "v": pa.array([i * 10**12 if i % 3 else None for i in range(n)], pa.int64()),
            "note": tricky,
        }
    )
    assert warehouse.append("t_slice", data) == n
    got = warehouse.fetch_all("SELECT period_start, k, v, note FROM t_slice ORDER BY k")
    assert [r["note"] for r in got] == tricky
    assert [r["v"] for r in got] == [None, 10**12, 2 * 10**12, None, 4 * 10**12, 5 * 10**12, None]
    stamp = pd.Timestamp(got[3]["period_start"])
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    assert stamp == pd.Timestamp("2026-01-05 10:03:30.25", tz="UTC")


def test_datetime_bounds_match_on_both_dialects(warehouse, slice_table):
    """Aware datetimes bound as parameters compare correctly with stored values (SQLite keeps
    text; the warehouse writes parameters in the same layout)."""
    warehouse.append("t_slice", [{"period_start": H10, "k": "a", "v": 1, "note": None}])
    assert warehouse.scalar("SELECT count(*) FROM t_slice WHERE period_start = :t", {"t": H10}) == 1
    assert warehouse.scalar("SELECT count(*) FROM t_slice WHERE period_start < :t", {"t": H10}) == 0


def test_postgres_load_uses_copy(pg_warehouse, monkeypatch):
    """The PostgreSQL path goes through COPY, never INSERT row by row."""
    pg_warehouse.execute("DROP TABLE IF EXISTS t_copy")
    pg_warehouse.execute("CREATE TABLE t_copy (a int, b text)")
    statements = []
    engine = engine_for(pg_warehouse.url)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def spy(conn, cursor, statement, *args):  # pragma: no cover - records only
        statements.append(statement)

    import psycopg2.extensions

    copies = []
    original = psycopg2.extensions.cursor.copy_expert

    class Spy(psycopg2.extensions.cursor):
        def copy_expert(self, sql, file, *a, **k):
            copies.append(sql)
            return original(self, sql, file, *a, **k)

    raw = engine.raw_connection()
    raw.close()
    with pg_warehouse.begin() as conn:
        conn.connection.dbapi_connection.cursor_factory = Spy
        pg_warehouse.load(conn, "t_copy", pa.table({"a": list(range(1000)), "b": ["x"] * 1000}))
        conn.connection.dbapi_connection.cursor_factory = psycopg2.extensions.cursor
    sa.event.remove(engine, "before_cursor_execute", spy)
    assert len(copies) == 1 and copies[0].startswith('COPY "t_copy"')
    assert not any(s.lstrip().upper().startswith("INSERT") for s in statements)
    assert pg_warehouse.scalar("SELECT count(*) FROM t_copy") == 1000
    assert pg_warehouse.scalar("SELECT sum(a) FROM t_copy") == sum(range(1000))
    pg_warehouse.execute("DROP TABLE t_copy")


def test_schema_upgrade_is_skipped_when_every_head_is_recorded(warehouse):
    """A process whose warehouse is at its heads never imports Alembic; one that is behind
    (a head missing from the version table) upgrades."""
    import sqlalchemy as sa

    from metrics_assets.resources.warehouse import expected_versions, schema_is_current

    heads, _ = expected_versions()
    # one head per migration branch (each domain adds its own numbered revisions)
    assert {h.split("_")[0] for h in heads} == {"foundation", "offspot", "events", "storage", "probes", "queries"}
    [events_head] = [h for h in heads if h.startswith("events_")]
    engine = warehouse.engine  # upgraded on first use
    assert schema_is_current(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM metrics_schema_version WHERE version_num = :v"), {"v": events_head})
    try:
        assert not schema_is_current(engine)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO metrics_schema_version (version_num) VALUES (:v)"), {"v": events_head})
    assert schema_is_current(engine)
    empty = sa.create_engine("sqlite://")
    assert not schema_is_current(empty)
