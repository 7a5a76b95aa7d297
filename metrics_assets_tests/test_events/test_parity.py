"""The parity corpus: expressions of the lake SQL with the value Athena (Trino) returns, run
locally through the same translation the assets use (sqlglot + ``parity.transform``, DuckDB).

Sources, cited per row:
[T-iso]  Trino docs, Date and time functions: "from_iso8601_timestamp(string) -> timestamp(3)
         with time zone. Parses the ISO 8601 formatted date string, optionally with time and time
         zone ... The time defaults to 00:00:00.000, and the time zone defaults to the session time
         zone" (Athena's session zone is UTC). The parser is Joda's ISODateTimeFormat
         .dateTimeParser(): 'T' separator, offsets Z/±HH/±HHmm/±HH:mm, no zone names; the fraction
         is read to the field's precision (milliseconds), the rest truncated. Under try(), a
         parse error is NULL [T-try].
[J-src]  Joda-Time's source (org.joda.time.format.DateTimeFormatterBuilder, which
         ISODateTimeFormat.dateTimeParser() is built from): TimeZoneOffset.parseInto returns a
         parse error when the offset's hours are > 23 or its minutes > 59, and matches the zero
         offset "Z" with csStartsWithIgnoreCase; the second fraction is appendFractionOfSecond(1, 9),
         which reads at most 9 digits, so a 10th is left over and the parse fails; hourOfDay is
         checked against its range 0-23 when the fields are set (no 24:00).
[T-try]  Trino docs, Conditional expressions: "try(expression): evaluate an expression and
         handle certain types of errors by returning NULL".
[T-json] Trino docs, JSON functions: "json_extract_scalar(json, json_path): like json_extract(),
         but returns the result value as a string (as opposed to being encoded as JSON). The value
         referenced by json_path must be a scalar (boolean, number or string)"; otherwise NULL.
[T-div]  Trino docs, Mathematical operators: "/ division (integer division performs truncation)".
[T-mod]  Trino docs: "% modulus (remainder)", sign of the dividend (Java's %).
[T-unix] Trino docs: "to_unixtime(timestamp) -> double: returns timestamp as a UNIX timestamp".
[T-dp]   Trino docs: "date_parse(string, format) -> timestamp(3): parses string into a timestamp
         using format" (MySQL format specifiers: %Y %m %d %H).
[T-openx] Trino's source, io.trino.hive.formats.line.openxjson: OpenXJsonDeserializer.deserialize
         trims the line and reads it only if it then starts with "{" or "["; anything else (a
         blank line too), or JSON that does not parse under ignore.malformed.json, is a row of
         NULLs. JsonReader.readJson reads the first value and returns: text after it is never
         read. FieldName compares keys with equalsIgnoreCase when case.insensitive is set, at
         every depth (RowDecoder), and readObject removes an equal key before putting the next:
         the last of two keys equal but for case wins. RowDecoder.decodeValueFromList maps an
         array to the columns by position.
[A-serde] Athena docs, OpenX JSON SerDe: ignore.malformed.json, case.insensitive (default TRUE:
         "converts all uppercase columns to lowercase"); Trino's OpenX reader README (line format:
         a line that is not an object gives a row of NULLs; VARCHAR columns render objects as JSON
         and strings as their content).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import duckdb
import pytest
import sqlglot

from metrics_assets.events import demo, lake, parity
from metrics_assets.resources.query_engine import render

D = "2026-01-05"
MS_10H = 1767607200000  # 2026-01-05T10:00:00Z in epoch ms

# (Athena SQL expression, the value Athena returns, source)
CORPUS = [
    # -- from_iso8601_timestamp, as epoch ms (CAST(to_unixtime(ts) * 1000 AS BIGINT)) -----------------
    (f"'{D}T10:00:00Z'", MS_10H, "T-iso: Z is UTC"),
    (f"'{D}T10:00:00.123Z'", MS_10H + 123, "T-iso: milliseconds kept"),
    (
        f"'{D}T10:59:59.9996Z'",
        MS_10H + 3_599_999,
        "T-iso: timestamp(3), digits past the ms truncated (not rounded to 11:00)",
    ),
    (f"'{D}T10:00:00.123456789Z'", MS_10H + 123, "T-iso: nanoseconds truncated to ms"),
    (f"'{D}T10:00:00.5Z'", MS_10H + 500, "T-iso: one fraction digit = 500 ms"),
    (f"'{D}T10:00:00,5Z'", MS_10H + 500, "T-iso: ISO-8601 allows the comma as decimal sign (Joda)"),
    (f"'{D}T11:00:00+01:00'", MS_10H, "T-iso: offset ±HH:mm"),
    (f"'{D}T11:00:00+0100'", MS_10H, "T-iso: offset ±HHmm"),
    (f"'{D}T11:00:00+01'", MS_10H, "T-iso: offset ±HH"),
    (f"'{D}T05:00:00-05:00'", MS_10H, "T-iso: negative offset"),
    (f"'{D}T10:00:00'", MS_10H, "T-iso: no zone = session zone, UTC on Athena"),
    (f"'{D}T10:00'", MS_10H, "T-iso: seconds optional"),
    (f"'{D}T10'", MS_10H, "T-iso: minutes optional"),
    (f"'{D}T10Z'", MS_10H, "T-iso: hour then zone"),
    (f"'{D}'", MS_10H - 10 * 3_600_000, "T-iso: the time defaults to 00:00:00.000"),
    (f"'{D} 10:00:00Z'", None, "T-iso + T-try: a space is not ISO-8601's separator -> error -> NULL"),
    (f"'{D}T10:00:00 UTC'", None, "T-iso + T-try: a zone name is not an ISO offset -> NULL"),
    (f"'{D}T10:00:00Europe/Paris'", None, "T-iso + T-try: zone id -> NULL"),
    ("'2026-13-05T10:00:00Z'", None, "T-iso + T-try: month 13 -> NULL"),
    ("'yesterday'", None, "T-iso + T-try: not a date -> NULL"),
    ("''", None, "T-iso + T-try: empty string -> NULL"),
    (f"' {D}T10:00:00Z'", None, "T-iso + T-try: leading space is not part of the format -> NULL"),
    (f"'{D}T10:00:00.123z'", MS_10H + 123, "J-src: the zero offset Z is matched in either case"),
    (f"'{D}T24:00:00.000Z'", None, "J-src + T-try: hour 24 is out of hourOfDay's range -> NULL (not the next day)"),
    (f"'{D}T24:00:00Z'", None, "J-src + T-try: the same on the general path"),
    ("' 026-01-05T10:00:00.123Z'", None, "T-iso + T-try: the producers' length and shape, but a blank -> NULL"),
    ("'2026-02-30T10:00:00.000Z'", None, "T-iso + T-try: 30 February -> NULL"),
    (f"'{D}T10:00:00.12Z '", None, "T-iso + T-try: the producers' length, a trailing blank -> NULL"),
    (f"'{D}T10:00:00. 12Z'", None, "T-iso + T-try: a blank inside -> NULL"),
    ("'20260-1-05T10:00:00.123Z'", None, "T-iso + T-try: 24 characters, but a one-digit month -> NULL"),
    (f"'{D}T10:00:00.12Z'", MS_10H + 120, "T-iso: two fraction digits are 120 ms"),
    (f"'{D}T10:00:00.1234567891Z'", None, "J-src + T-try: ten fraction digits: one left unparsed -> NULL"),
    (f"'{D}T10:00:00+24:00'", None, "J-src + T-try: offset hours > 23 -> NULL"),
    (f"'{D}T10:00:00+01:60'", None, "J-src + T-try: offset minutes > 59 -> NULL"),
    # -- json_extract_scalar ------------------------------------------------------------------------------
    ("json_extract_scalar('{\"requester\": \"u9\"}', '$.requester')", "u9", "T-json: a string scalar"),
    (
        'json_extract_scalar(\'{"requester": {"id": "u9"}}\', \'$.requester\')',
        None,
        "T-json: an object is not a scalar -> NULL",
    ),
    (
        "json_extract_scalar('{\"requester\": [\"u9\"]}', '$.requester')",
        None,
        "T-json: an array is not a scalar -> NULL",
    ),
    ("json_extract_scalar('{\"requester\": null}', '$.requester')", None, "T-json: JSON null -> NULL"),
    ("json_extract_scalar('{\"z\": 12}', '$.z')", "12", "T-json: a number, as its text"),
    ("json_extract_scalar('{\"ok\": true}', '$.ok')", "true", "T-json: a boolean, as its text"),
    ("json_extract_scalar('{\"a\": 1}', '$.missing')", None, "T-json: absent -> NULL"),
    ("json_extract_scalar('{not json', '$.a')", None, "T-json: text that is not JSON -> NULL"),
    (
        "json_extract_scalar('{\"analysisId\": \"a1\"}', '$.analysisid')",
        None,
        "T-json: JSON paths are case-sensitive (hence the SQL reads both spellings)",
    ),
    (
        "COALESCE(json_extract_scalar('{\"analysisid\": \"a1\"}', '$.analysisid'), json_extract_scalar('{\"analysisid\": \"a1\"}', '$.analysisId'))",
        "a1",
        "A-serde: Hive's OpenX SerDe lower-cases keys; the metric SQL's first spelling",
    ),
    (
        "COALESCE(json_extract_scalar('{\"analysisId\": \"a1\"}', '$.analysisid'), json_extract_scalar('{\"analysisId\": \"a1\"}', '$.analysisId'))",
        "a1",
        "A-serde: Trino's reader keeps the producers' camelCase; the second spelling",
    ),
    # -- arithmetic ---------------------------------------------------------------------------------------
    ("7 / 2", 3, "T-div: integer division truncates"),
    ("-7 / 2", -3, "T-div: toward zero"),
    ("7 % 2", 1, "T-mod"),
    (f"{MS_10H + 3_599_999} - {MS_10H + 3_599_999} % 3600000", MS_10H, "T-mod: the created hour of a created time"),
    # -- date_parse of a folder (the layout's hour) -------------------------------------------------------
    (
        "CAST(to_unixtime(date_parse('2026-01-05/hr=10', '%Y-%m-%d/hr=%H')) AS BIGINT) * 1000",
        MS_10H,
        "T-dp + T-unix: UTC session",
    ),
    (
        "CAST(to_unixtime(date_parse('2026/month=01/day=05/hour=10', '%Y/month=%m/day=%d/hour=%H')) AS BIGINT) * 1000",
        MS_10H,
        "T-dp",
    ),
]


def _run(sql: str):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        return con.sql(render(sql, None, "duckdb", parity.transform)).fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.parametrize(("expression", "athena", "source"), CORPUS, ids=[f"{i:02d}" for i in range(len(CORPUS))])
def test_corpus(expression, athena, source):
    if expression.startswith("'"):
        sql = f"SELECT CAST(to_unixtime(try(from_iso8601_timestamp({expression}))) * 1000 AS BIGINT)"
    else:
        sql = f"SELECT {expression}"
    sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)  # it is Athena SQL
    assert _run(sql) == athena, source


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


def test_lake_sql_divides_no_columns():
    """Division is only reproduced for integer literals: the lake SQL must not divide columns."""
    paths = sorted(lake.SQL_DIR.glob("*.sql")) + sorted((lake.SQL_DIR / "metrics").glob("*.sql"))
    for path in paths:
        text = lake.normalized_select() if path.name == "events_normalized.sql" else path.read_text()
        tree = sqlglot.parse_one(text, read="trino")
        assert not list(tree.find_all(sqlglot.exp.Div)), path.name


def lake_folder(metrics_home, version: str, moment: datetime):
    """The local lake's folder (made) that holds files of ``version`` arriving at ``moment``."""
    from metrics_assets.events import config

    folder = metrics_home / "objects" / "lake" / "events" / version / config.lake_layout().folder(moment)
    folder.mkdir(parents=True)
    return folder


def test_lines_through_the_views(metrics_home, duck_engine):
    """Lines as the SerDe reads them (A-serde), through the local views: `data` written as a JSON
    string is read into; a non-scalar requester is NULL; v1 timestamps truncate to the ms."""
    folder = lake_folder(metrics_home, "v0", datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
    lines = [
        (
            '{"customerid": 1, "servicename": "tiles", "createdtimestamp": 1767607200000, "arrivaltimestamp": 1767607200001, '
            '"data": "{\\"event\\": \\"tile_request\\", \\"requester\\": \\"u1\\"}"}'
        ),
        (
            '{"customerid": 2, "servicename": "tiles", "createdtimestamp": 1767607200000, "arrivaltimestamp": 1767607200001, '
            '"data": {"event": "tile_request", "requester": {"id": "u9"}}}'
        ),
        "{not json",
    ]
    with gzip.open(folder / demo.secor_name(0, 0), "wt") as f:
        f.write("\n".join(lines) + "\n")
    v1 = lake_folder(metrics_home, "v1", datetime(2026, 1, 5, 11, 0, tzinfo=UTC))
    with gzip.open(v1 / demo.secor_name(0, 0), "wt") as f:
        f.write(
            '{"envelope": {"customerId": 3, "createdAt": "2026-01-05T10:59:59.9996Z", '
            '"arrivedAt": "2026-01-05T11:00:00.000Z", "service": {"name": "tiles"}}, "eventType": "x", "data": {}}\n'
        )
    rows = duck_engine.execute(
        "SELECT customer_id, event_type, json_extract_scalar(data, '$.requester') AS requester, created_ms, "
        "folder_lag_ms, malformed FROM events_normalized ORDER BY customer_id NULLS LAST",
        transform=parity.transform,
    ).table.to_pylist()
    assert rows == [
        {
            "customer_id": 1,
            "event_type": "tile_request",
            "requester": "u1",
            "created_ms": MS_10H,
            "folder_lag_ms": 0,
            "malformed": False,
        },
        {
            "customer_id": 2,
            "event_type": "tile_request",
            "requester": None,
            "created_ms": MS_10H,
            "folder_lag_ms": 0,
            "malformed": False,
        },
        {
            "customer_id": 3,
            "event_type": "x",
            "requester": None,
            "created_ms": MS_10H + 3_599_999,
            "folder_lag_ms": 3_600_000,
            "malformed": False,
        },
        {
            "customer_id": None,
            "event_type": None,
            "requester": None,
            "created_ms": None,
            "folder_lag_ms": None,
            "malformed": True,
        },
    ]


def test_lines_as_the_openx_serde_reads_them(metrics_home, duck_engine):
    """Every line rule of Athena's OpenX reader (T-openx), through the local views, on one file
    written with CRLF line ends, as a Windows producer would (Hadoop's line reader takes both)."""

    hour = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    v0_lines = [
        '{"customerid": 1, "servicename": "a"}',  # as the producers write it
        "",  # blank: a row of NULLs
        "   \t",  # blank once trimmed: a row of NULLs
        '  {"customerid": 2}',  # leading blanks are trimmed
        '{"CustomerID": 3, "SERVICENAME": "b"}',  # keys in another case
        '{"customerid": 4} and then some text',  # text after the object is ignored
        '{"customerid": 5, "servicename": "c"}{"customerid": 99}',  # a second object, too
        "not json",  # not an object: a row of NULLs
        '"a string"',  # a JSON string is not an object either
        '{"customerid": 6',  # does not parse: a row of NULLs
        '["r7", 7, "op", "d"]',  # an array: the columns by position
        '{"CUSTOMERID": 8, "CustomerId": 9}',  # equal but for case: the last wins
    ]
    v1_lines = [
        # nested keys in another case, and the top-level eventType as "EVENTTYPE"
        '{"ENVELOPE": {"CustomerID": 10, "Service": {"NAME": "tiles"}, "CREATEDAT": "2026-01-05T10:00:00.000Z"},'
        ' "EVENTTYPE": "x", "Data": {"a": 1}}',
    ]
    for version, lines in (("v0", v0_lines), ("v1", v1_lines)):
        (lake_folder(metrics_home, version, hour) / demo.secor_name(0, 0)).write_bytes(
            ("\r\n".join(lines) + "\r\n").encode()
        )
    v0 = (
        duck_engine.connection()
        .sql("SELECT resourceid, customerid, operationid, servicename FROM events_v0")
        .fetchall()
    )
    assert v0 == [
        (None, 1, None, "a"),
        (None, None, None, None),
        (None, None, None, None),
        (None, 2, None, None),
        (None, 3, None, "b"),
        (None, 4, None, None),
        (None, 5, None, "c"),
        (None, None, None, None),
        (None, None, None, None),
        (None, None, None, None),
        ("r7", 7, "op", "d"),
        (None, 9, None, None),
    ]
    v1 = (
        duck_engine.connection()
        .sql("SELECT envelope.customerId, envelope.service.name, envelope.createdAt, eventType, data FROM events_v1")
        .fetchall()
    )
    assert v1 == [(10, "tiles", "2026-01-05T10:00:00.000Z", "x", '{"a":1}')]


def test_a_file_that_is_not_utf8_is_read_as_athena_reads_it(metrics_home, duck_engine):
    """Trino's OpenXJsonDeserializer decodes a line with ``new String(bytes, UTF_8)``: each invalid
    byte sequence becomes U+FFFD and the line is read. DuckDB's line reader refuses the file; the
    engine then reads that file as Latin-1 and decodes each line the same way, and the query
    succeeds, with every line of both files."""

    folder = lake_folder(metrics_home, "v0", datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
    with gzip.open(folder / demo.secor_name(0, 0), "wb") as f:
        f.write('{"customerid": 1, "servicename": "café"}\n'.encode())
    with gzip.open(folder / demo.secor_name(0, 1), "wb") as f:
        f.write(b'{"customerid": 2, "servicename": "caf\xc3\xa9 \xff\xfe"}\n{"customerid": 3}\n')
    expected = [
        {"customerid": 1, "servicename": "café"},
        {"customerid": 2, "servicename": "café \ufffd\ufffd"},
        {"customerid": 3, "servicename": None},
    ]
    sql = "SELECT customerid, servicename FROM events_v0 ORDER BY customerid"
    assert duck_engine.execute(sql, transform=parity.transform).table.to_pylist() == expected
    # An ad hoc query (its own hardened session) reads the file the same way; here a file of
    # its own, which the engine above has not met.
    from metrics_assets.queries import execution

    (folder / demo.secor_name(0, 1)).rename(folder / demo.secor_name(0, 2))
    assert execution.execute(duck_engine, sql).table.to_pylist() == expected
