"""The shared SQL-text helpers, checked against hand-written expectations."""

from datetime import UTC, date, datetime, timedelta, timezone

import duckdb
import pytest

from metrics_assets.resources.sqltext import as_date, as_utc, ident, literal


def test_literal_doubles_quotes_and_round_trips_through_duckdb():
    nasty = "it's a 'quoted' \\ value; DROP TABLE x --"
    assert literal("it's") == "'it''s'"
    assert duckdb.execute(f"SELECT {literal(nasty)} AS v").fetchone()[0] == nasty


def test_literal_refuses_nul():
    with pytest.raises(ValueError, match="NUL"):
        literal("a\x00b")


def test_ident_quotes():
    assert ident('we"ird') == '"we""ird"'
    name = 'we"ird'
    assert duckdb.sql(f"SELECT 1 AS {ident(name)}").columns == [name]


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-29 10:00:00",
        "2026-11-29T10:00:00Z",
        "2026-11-29T11:00:00+01:00",
        datetime(2026, 11, 29, 10, 0),  # noqa: DTZ001 - a naive value is taken as UTC: the case under test
        datetime(2026, 11, 29, 5, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_as_utc(value):
    assert as_utc(value) == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert as_utc(value).tzinfo == UTC


def test_as_utc_of_a_date_is_its_midnight_and_as_date_reads_text():
    assert as_utc(date(2026, 2, 28)) == datetime(2026, 2, 28, tzinfo=UTC)
    assert as_date("2026-02-28 00:00:00") == date(2026, 2, 28)
    assert as_date(datetime(2026, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=-1)))) == date(2026, 3, 1)
