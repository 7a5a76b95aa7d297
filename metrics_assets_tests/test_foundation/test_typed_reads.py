"""The warehouse's one dialect: typed reads and the portable operations, on SQLite and PostgreSQL.

Every expectation is written by hand from the rows inserted here (no value is computed by the
code under test). The table is the test's own; on each engine it has the types the migrations
use (``timestamptz`` on PostgreSQL, ``TIMESTAMP`` text on SQLite).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from metrics_assets.sql_access import (
    BOOLEAN,
    DATE,
    DECIMAL,
    FLOAT,
    INTEGER,
    TEXT,
    UTC_DATETIME,
)

PLUS2 = timezone(timedelta(hours=2))


@pytest.fixture
def typed_table(warehouse):
    ts = "timestamptz" if warehouse.is_postgres else "TIMESTAMP"
    warehouse.execute("DROP TABLE IF EXISTS t_typed")
    warehouse.execute(
        f"CREATE TABLE t_typed (id bigint PRIMARY KEY, at {ts} NOT NULL, day date, amount numeric(12, 3), "
        "n bigint, ratio double precision, flag boolean, label text)"
    )
    rows = [
        # 12:00 at +02:00 is 10:00 UTC; 23:30 at -02:00 is 01:30 UTC the next day.
        {
            "id": 1,
            "at": datetime(2026, 1, 5, 12, 0, tzinfo=PLUS2),
            "day": date(2026, 1, 5),
            "amount": Decimal("12.345"),
            "n": 3,
            "ratio": 0.5,
            "flag": True,
            "label": "a",
        },
        {
            "id": 2,
            "at": datetime(2026, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
            "day": date(2026, 1, 6),
            "amount": Decimal("0.001"),
            "n": 4,
            "ratio": 1.25,
            "flag": False,
            "label": "b",
        },
    ]
    warehouse.execute(
        "INSERT INTO t_typed (id, at, day, amount, n, ratio, flag, label) "
        "VALUES (:id, :at, :day, :amount, :n, :ratio, :flag, :label)",
        rows[0],
    )
    warehouse.execute(
        "INSERT INTO t_typed (id, at, day, amount, n, ratio, flag, label) "
        "VALUES (:id, :at, :day, :amount, :n, :ratio, :flag, :label)",
        rows[1],
    )
    yield "t_typed"
    warehouse.execute("DROP TABLE IF EXISTS t_typed")


TYPES = {"at": UTC_DATETIME, "day": DATE, "amount": DECIMAL, "n": INTEGER, "ratio": FLOAT, "flag": BOOLEAN}


def test_fetch_all_gives_the_same_python_values_on_both(warehouse, typed_table):
    rows = warehouse.fetch_all(
        "SELECT id, at, day, amount, n, ratio, flag, label FROM t_typed ORDER BY id", types=TYPES
    )
    assert rows == [
        {
            "id": 1,
            "at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
            "day": date(2026, 1, 5),
            "amount": Decimal("12.345"),
            "n": 3,
            "ratio": 0.5,
            "flag": True,
            "label": "a",
        },
        {
            "id": 2,
            "at": datetime(2026, 1, 6, 1, 30, tzinfo=UTC),
            "day": date(2026, 1, 6),
            "amount": Decimal("0.001"),
            "n": 4,
            "ratio": 1.25,
            "flag": False,
            "label": "b",
        },
    ]
    for row in rows:
        assert row["at"].tzinfo == UTC and type(row["day"]) is date
        assert type(row["amount"]) is Decimal and type(row["n"]) is int and type(row["flag"]) is bool


def test_aggregates_and_expressions_are_typed_too(warehouse, typed_table):
    # sum(bigint) is numeric on PostgreSQL, max(timestamp) is text on SQLite.
    day = warehouse.utc_date("at")
    rows = warehouse.fetch_all(
        f"SELECT {day} AS utc_day, sum(n) AS total, max(at) AS last_at, count(*) AS k FROM t_typed "
        f"GROUP BY {day} ORDER BY 1",
        types={"utc_day": DATE, "total": INTEGER, "last_at": UTC_DATETIME},
    )
    assert rows == [
        {"utc_day": date(2026, 1, 5), "total": 3, "last_at": datetime(2026, 1, 5, 10, tzinfo=UTC), "k": 1},
        {"utc_day": date(2026, 1, 6), "total": 4, "last_at": datetime(2026, 1, 6, 1, 30, tzinfo=UTC), "k": 1},
    ]
    assert type(rows[0]["total"]) is int


def test_scalar_with_a_type(warehouse, typed_table):
    assert warehouse.scalar("SELECT max(at) FROM t_typed", type_=UTC_DATETIME) == datetime(
        2026, 1, 6, 1, 30, tzinfo=UTC
    )
    assert warehouse.scalar("SELECT sum(amount) FROM t_typed", type_=DECIMAL) == Decimal("12.346")
    assert warehouse.scalar("SELECT max(at) FROM t_typed WHERE id > 5", type_=UTC_DATETIME) is None


def test_read_df_and_read_arrow(warehouse, typed_table):
    frame = warehouse.read_df("SELECT id, at FROM t_typed ORDER BY id", types={"at": UTC_DATETIME})
    assert list(frame["at"]) == [datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 6, 1, 30, tzinfo=UTC)]

    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("at", pa.timestamp("us", "UTC")),
            ("day", pa.date32()),
            ("amount", pa.decimal128(12, 3)),
            ("flag", pa.bool_()),
            ("label", pa.string()),
        ]
    )
    table = warehouse.read_arrow("SELECT id, at, day, amount, flag, label FROM t_typed ORDER BY id", schema=schema)
    expected = pa.table(
        {
            "id": [1, 2],
            "at": [datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 6, 1, 30, tzinfo=UTC)],
            "day": [date(2026, 1, 5), date(2026, 1, 6)],
            "amount": [Decimal("12.345"), Decimal("0.001")],
            "flag": [True, False],
            "label": ["a", "b"],
        },
        schema=schema,
    )
    assert table.equals(expected)
    empty = warehouse.read_arrow("SELECT id, at, day, amount, flag, label FROM t_typed WHERE id > 5", schema=schema)
    assert empty.num_rows == 0 and empty.schema == schema
    with pytest.raises(ValueError, match="columns"):
        warehouse.read_arrow(
            "SELECT label, id FROM t_typed", schema=pa.schema([("id", pa.int64()), ("label", pa.string())])
        )


def test_read_arrow_binds_parameters_and_types_aggregates(warehouse, typed_table):
    """PostgreSQL reads through ADBC (``$n`` parameters, numeric as text); inside a transaction
    (``conn``) and on SQLite, row by row: the same table either way."""
    schema = pa.schema(
        [
            ("label", pa.string()),
            ("total", pa.int64()),
            ("amount", pa.decimal128(12, 3)),
            ("first_at", pa.timestamp("us", "UTC")),
            ("day", pa.date32()),
        ]
    )
    sql = (
        "SELECT label, sum(n) AS total, sum(amount) AS amount, min(at) AS first_at, max(day) AS day FROM t_typed "
        "WHERE (day >= :from_day OR at < :before) AND label LIKE 'a%' AND label <> :skip AND label <> :skip "
        "GROUP BY label"
    )
    params = {"from_day": date(2026, 1, 5), "before": datetime(2026, 1, 5, 11, tzinfo=UTC), "skip": "z"}
    expected = pa.table(
        {
            "label": ["a"],
            "total": [3],
            "amount": [Decimal("12.345")],
            "first_at": [datetime(2026, 1, 5, 10, tzinfo=UTC)],
            "day": [date(2026, 1, 5)],
        },
        schema=schema,
    )
    assert warehouse.read_arrow(sql, params, schema=schema).equals(expected)
    with warehouse.begin() as conn:
        assert warehouse.read_arrow(sql, params, schema=schema, conn=conn).equals(expected)
    none = warehouse.read_arrow(sql, params | {"skip": "a"}, schema=schema)
    assert none.num_rows == 0 and none.schema == schema


@pytest.fixture
def queue_table(warehouse):
    ts = "timestamptz" if warehouse.is_postgres else "TIMESTAMP"
    warehouse.execute("DROP TABLE IF EXISTS t_queue")
    warehouse.execute(
        f"CREATE TABLE t_queue (id bigint PRIMARY KEY, priority int NOT NULL, status text NOT NULL, claimed_at {ts})"
    )
    # priority first, then id: the order claims must follow is 4, 2, 5, 1, 3
    for id_, priority in ((1, 2), (2, 1), (3, 2), (4, 0), (5, 1)):
        warehouse.execute(
            "INSERT INTO t_queue (id, priority, status) VALUES (:i, :p, 'PENDING')", {"i": id_, "p": priority}
        )
    yield "t_queue"
    warehouse.execute("DROP TABLE IF EXISTS t_queue")


def _claim(warehouse, conn, limit):
    return warehouse.claim_rows(
        conn,
        "t_queue",
        key="id",
        where="status = :pending",
        set_values={"status": "RUNNING", "claimed_at": datetime(2026, 1, 5, 10, tzinfo=UTC)},
        order_by=["priority", "id"],
        limit=limit,
        returning=["id", "claimed_at"],
        params={"pending": "PENDING"},
        types={"claimed_at": UTC_DATETIME},
    )


def test_claim_rows_in_order_once(warehouse, queue_table):
    at = datetime(2026, 1, 5, 10, tzinfo=UTC)
    with warehouse.begin() as conn:
        assert _claim(warehouse, conn, 2) == [{"id": 4, "claimed_at": at}, {"id": 2, "claimed_at": at}]
    with warehouse.begin() as conn:
        assert [r["id"] for r in _claim(warehouse, conn, 2)] == [5, 1]
    with warehouse.begin() as conn:
        assert [r["id"] for r in _claim(warehouse, conn, 2)] == [3]
    with warehouse.begin() as conn:
        assert _claim(warehouse, conn, 2) == []
    assert warehouse.fetch_all("SELECT status, count(*) AS n FROM t_queue GROUP BY status") == [
        {"status": "RUNNING", "n": 5}
    ]


def test_claim_rows_skips_rows_another_open_claim_holds(pg_warehouse):
    """PostgreSQL: a second claim, while the first is uncommitted, takes the next rows at once."""
    warehouse = pg_warehouse
    warehouse.execute("DROP TABLE IF EXISTS t_queue")
    warehouse.execute(
        "CREATE TABLE t_queue (id bigint PRIMARY KEY, priority int NOT NULL, status text NOT NULL, "
        "claimed_at timestamptz)"
    )
    warehouse.execute(
        "INSERT INTO t_queue (id, priority, status) VALUES (1, 0, 'PENDING'), (2, 0, 'PENDING'), "
        "(3, 0, 'PENDING'), (4, 0, 'PENDING')"
    )
    try:
        with warehouse.begin() as first:
            assert [r["id"] for r in _claim(warehouse, first, 2)] == [1, 2]
            second: list = []

            def other() -> None:
                with warehouse.begin() as conn:
                    conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # a wait would fail, not hang
                    second.extend(_claim(warehouse, conn, 2))

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(30)
            assert [r["id"] for r in second] == [3, 4]
        assert warehouse.scalar("SELECT count(*) FROM t_queue WHERE status = 'RUNNING'") == 4
    finally:
        warehouse.execute("DROP TABLE IF EXISTS t_queue")


def test_insert_ignoring_duplicates(warehouse):
    warehouse.execute("DROP TABLE IF EXISTS t_dedup")
    warehouse.execute("CREATE TABLE t_dedup (k1 text NOT NULL, k2 bigint NOT NULL, v text, UNIQUE (k1, k2))")
    try:
        warehouse.execute("INSERT INTO t_dedup VALUES ('a', 1, 'old')")
        data = pa.table(
            {
                "k1": ["a", "a", "b", "b", "c"],
                "k2": [1, 2, 1, 1, 1],
                "v": ["dup of stored", "new", "new", "dup in batch", "new"],
            }
        )
        with warehouse.begin() as conn:
            assert warehouse.insert_ignoring_duplicates(conn, "t_dedup", data, key=["k1", "k2"]) == 3
            # twice in one transaction: the stage table is the call's own
            assert warehouse.insert_ignoring_duplicates(conn, "t_dedup", data, key=["k1", "k2"]) == 0
            assert warehouse.insert_ignoring_duplicates(conn, "t_dedup", [], key=["k1", "k2"]) == 0
        assert warehouse.fetch_all("SELECT k1, k2, v FROM t_dedup ORDER BY k1, k2") == [
            {"k1": "a", "k2": 1, "v": "old"},
            {"k1": "a", "k2": 2, "v": "new"},
            {"k1": "b", "k2": 1, "v": "new"},
            {"k1": "c", "k2": 1, "v": "new"},
        ]
    finally:
        warehouse.execute("DROP TABLE IF EXISTS t_dedup")


def test_insert_ignoring_duplicates_lets_a_refused_row_fail_as_itself(warehouse):
    """A row the table refuses (a CHECK here) comes out as the IntegrityError it is, not as a
    later error from cleaning up the stage table (PostgreSQL aborts the transaction at the
    failed statement): the storage ingest tells "this data cannot be stored" by that class."""
    warehouse.execute("DROP TABLE IF EXISTS t_refuse")
    warehouse.execute("CREATE TABLE t_refuse (k text NOT NULL UNIQUE, n bigint NOT NULL CHECK (n >= 0))")
    try:
        with pytest.raises(sa.exc.IntegrityError), warehouse.begin() as conn:
            warehouse.insert_ignoring_duplicates(conn, "t_refuse", pa.table({"k": ["a", "b"], "n": [1, -1]}), key=["k"])
        with warehouse.begin() as conn:  # nothing of the refused batch stayed; the table takes the next one
            assert (
                warehouse.insert_ignoring_duplicates(conn, "t_refuse", pa.table({"k": ["a"], "n": [1]}), key=["k"]) == 1
            )
        assert warehouse.fetch_all("SELECT k, n FROM t_refuse") == [{"k": "a", "n": 1}]
    finally:
        warehouse.execute("DROP TABLE IF EXISTS t_refuse")


def test_byte_order(warehouse):
    values = ["b", "B", "a", "_x", "é", "Z", "a b", "ab", "0"]
    warehouse.execute("DROP TABLE IF EXISTS t_bytes")
    warehouse.execute("CREATE TABLE t_bytes (v text NOT NULL)")
    try:
        with warehouse.begin() as conn:
            conn.execute(sa.text("INSERT INTO t_bytes (v) VALUES (:v)"), [{"v": v} for v in values])
        got = [r["v"] for r in warehouse.fetch_all(f"SELECT v FROM t_bytes ORDER BY {warehouse.byte_order('v')}")]
        # by UTF-8 bytes: digits < upper case < '_' < lower case < 'é' (0xC3 0xA9)
        assert got == ["0", "B", "Z", "_x", "a", "a b", "ab", "b", "é"]
        below = warehouse.fetch_all(
            f"SELECT v FROM t_bytes WHERE {warehouse.byte_order('v')} < 'a' ORDER BY 1", types={"v": TEXT}
        )
        assert sorted(r["v"] for r in below) == ["0", "B", "Z", "_x"]
    finally:
        warehouse.execute("DROP TABLE IF EXISTS t_bytes")


def test_exclusive_holds_its_lock_until_the_transaction_ends(warehouse):
    """PostgreSQL: while one transaction holds ``exclusive(k)``, another cannot take the same
    advisory lock (``pg_try_advisory_xact_lock`` says false); once it commits, it can. SQLite:
    nothing is taken, and the transaction's writes land as usual."""
    key = 4242
    warehouse.execute("DROP TABLE IF EXISTS t_exclusive")
    try:
        with warehouse.begin() as conn:
            warehouse.exclusive(conn, key)
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t_exclusive (id bigint)"))
            conn.execute(sa.text("INSERT INTO t_exclusive (id) VALUES (1)"))
            if warehouse.is_postgres:
                seen: list = []

                def other() -> None:
                    with warehouse.begin() as second:
                        seen.append(
                            second.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar()
                        )

                thread = threading.Thread(target=other)
                thread.start()
                thread.join(10)
                assert seen == [False]
        if warehouse.is_postgres:
            with warehouse.begin() as after:
                assert after.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar() is True
        assert warehouse.fetch_all("SELECT id FROM t_exclusive") == [{"id": 1}]
    finally:
        warehouse.execute("DROP TABLE IF EXISTS t_exclusive")


def test_for_analytics_sets_the_planner_for_the_transaction_only(warehouse):
    """PostgreSQL: inside the transaction JIT is off and work_mem is 64MB; after it, the
    server's own values are back. SQLite: nothing to set, the transaction runs as usual."""

    def show(conn, name):
        return conn.execute(sa.text(f"SHOW {name}")).scalar()

    with warehouse.begin() as conn:
        before = (show(conn, "jit"), show(conn, "work_mem")) if warehouse.is_postgres else None
    with warehouse.begin() as conn:
        warehouse.for_analytics(conn, work_mem="64MB")
        if warehouse.is_postgres:
            assert (show(conn, "jit"), show(conn, "work_mem")) == ("off", "64MB")
        assert conn.execute(sa.text("SELECT 1 + 1")).scalar() == 2
    if warehouse.is_postgres:
        with warehouse.begin() as conn:
            assert (show(conn, "jit"), show(conn, "work_mem")) == before
        with warehouse.begin() as conn, pytest.raises(ValueError, match="is not a size"):
            warehouse.for_analytics(conn, work_mem="1'; DROP TABLE x; --")
