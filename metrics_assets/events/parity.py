"""Athena semantics, reproduced locally: the one place that says what every expression of the
lake SQL means, and how the local engine (DuckDB) is made to give Athena's answer.

The lake SQL is written once, in Athena's (Trino's) SQL. ``transform`` rewrites its parsed tree
before the foundation's sqlglot translation to DuckDB, wherever DuckDB would otherwise differ.
``metrics_assets_tests/test_events/test_parity.py`` holds the corpus: each row an expression,
its input, the value Athena returns and the documentation that says so.

| expression (Athena) | Athena / Trino semantics | local reproduction |
|---|---|---|
| ``from_iso8601_timestamp(s)`` | ISO-8601 as Joda's ``ISODateTimeFormat.dateTimeParser`` reads it: ``YYYY-MM-DD`` optionally followed by ``T`` and ``HH``, ``HH:mm``, ``HH:mm:ss``, ``HH:mm:ss.fff`` (``.`` or ``,``, 1 to 9 digits), optionally ``Z`` (either case), ``±HH``, ``±HHmm``, ``±HH:mm``; hour 00-23 (no ``24:00``), minutes and seconds 00-59, offsets to ±23:59; no space separator, no zone name (error, NULL under ``try``); result ``timestamp(3) with time zone``: digits past the millisecond are **truncated** | the producers' form ``YYYY-MM-DDTHH:MM:SS.mmmZ`` by ``strptime`` (no regular expression on the common path); any other string only if a regular expression admits it, then ``TRY_CAST`` (rare forms normalised first: ``,`` -> ``.``, ``THH`` -> ``THH:00``, ``z`` -> ``Z``, more than 6 digits cut), then ``date_trunc('millisecond', ...)``. Not reproduced (never written by producers): Joda's hour and minute fractions (``T10.5``, ``T10:30.5``) and offsets with seconds (``+01:00:30``), NULL locally |
| ``to_unixtime(ts) * 1000`` cast to ``BIGINT`` | seconds as ``double``; the timestamp has millisecond precision, so the product is a whole number of ms | same, on the truncated timestamp |
| ``json_extract_scalar(json, path)`` | the scalar (string, number, boolean) at ``path`` as ``varchar``; **NULL** when the value is an object or array, JSON ``null``, absent, or the text is not JSON | ``TRY(json_value(json, path)) ->> '$'``: one parse of the document; ``json_value`` is NULL for an object or array; numbers come back as DuckDB prints them (``1.50`` -> ``1.5``, **differs**: Trino returns the text as written) |
| ``a / b`` on integers | integer division, truncated toward zero (``7 / 2 = 3``, ``-7 / 2 = -3``) | ``//`` (DuckDB's integer division, also toward zero) when both operands are integer literals; the lake SQL divides no columns (a test checks it) |
| ``created_ms - created_ms % 3600000`` | ``%`` keeps the sign of the dividend (Java) | DuckDB's ``%`` does the same; every created time is positive |
| ``date_parse(s, '%Y-%m-%d/hr=%H')`` | MySQL-style format, ``timestamp`` in the session zone (UTC on Athena) | ``strptime`` with the same format (sqlglot), DuckDB session in UTC |
| ``substr``, ``concat``, ``COALESCE``, ``NULLIF``, ``TRIM``, ``CASE``, ``count``, ``min``, ``max``, ``sum`` | standard SQL | same |

Reading the lines (the OpenX JSON SerDe, properties set explicitly in ``sql/ddl/``; Athena's
engine reads them with Trino's ``OpenXJsonDeserializer``). Locally each line is read whole
(``read_csv``, one column) and parsed by ``json_transform``; lines that fast path cannot read
exactly go to :func:`openx_line` (see ``lake.duckdb_select``):

| input | Athena (``ignore.malformed.json=true``, ``case.insensitive=true``) | local |
|---|---|---|
| a line that is not JSON, or not an object or array (``"text"``, ``5``) | a row of NULLs (counted as ``malformed_json``) | the same |
| a blank line, or only blanks | trimmed, then not an object: a row of NULLs | the same (``read_csv`` keeps it as a NULL line) |
| text after the object (``{...} trailing``, ``{...}{...}``) | only the first value is read; the rest is ignored | the same |
| key case of the columns and struct fields (``CustomerID`` for ``customerid``, ``ENVELOPE.Service.NAME``) | matched case-insensitively, at every depth; of two keys equal but for case, the last wins | the same, except when the contract's exact spelling comes first and another case follows: locally the exact spelling wins (**differs**; no producer writes both) |
| an array line (``["r1", 7, ...]``) | the columns by position | the same |
| bytes that are not UTF-8 | decoded with ``new String(bytes, UTF_8)``: each invalid sequence a U+FFFD | DuckDB's reader refuses the file; the engine reads that file again as Latin-1 and decodes each line as Java does (``lake.reread_after``) |
| a number in another type (``"12"`` or ``1.9`` for a ``bigint``) | ``"12"`` is 12; ``1.9`` is 1 (``BigDecimal`` rounded down) | ``"12"`` is 12; ``1.9`` is **2** (DuckDB rounds; **differs**, no producer writes it) |
| JsonReader's leniencies (comments, single quotes, unquoted strings, ``=`` for ``:``) | read | a row of NULLs (**differs**; no JSON writer produces them) |
| a lone CR as a line end, or LF and CRLF mixed in one file | each CR, LF, CRLF ends a line (Hadoop's LineReader) | the line end is detected per file: LF or CRLF (**differs** on mixed files) |
| key case inside ``data`` (a ``string`` column) | Hive's OpenX SerDe (rcongiu) lower-cases every key while parsing, so ``data`` holds ``{"analysisid": ...}``; Trino's reader keeps the case | kept as written; the SQL reads each key of ``data`` in lower case and in the producers' camelCase, so both answers agree |
| ``data`` written as a JSON string (``"data": "{\\"event\\": ...}"``) | the string column holds the string's content: ``json_extract_scalar`` reads into it | the same: a JSON string in ``data`` is unwrapped (``lake.duckdb_select``) |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp

#: The ISO-8601 forms Joda's dateTimeParser accepts, as Trino's from_iso8601_timestamp uses it
#: (calendar dates; week and ordinal dates are not written by our producers). Ranges as Joda
#: checks them: hour 00-23 (hourOfDay), minute and second 00-59, at most 9 fraction digits
#: (appendFractionOfSecond(1, 9): a tenth digit is left unparsed, an error), offset hours 00-23
#: and minutes 00-59 (TimeZoneOffset.parseInto), the zero offset "Z" in either case.
ISO_8601 = (
    r"\d{4}-\d{2}-\d{2}(T([01]\d|2[0-3])(:[0-5]\d(:[0-5]\d([.,]\d{1,9})?)?)?"
    r"([Zz]|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)?)?"
)
#: Rewrites that let DuckDB's cast read the rarer forms (only on the slow path).
_RARE_FIXES = (
    (r"[.,](\d{1,6})\d*", r".\1"),  # DuckDB's cast takes at most microseconds; ',' -> '.'
    (r"^(\d{4}-\d{2}-\d{2}T\d{2})(Z|z|[+-]|$)", r"\1:00\2"),  # hour only -> HH:00
    (r"z$", "Z"),  # DuckDB's cast knows only the upper-case Z
)
#: The form our producers write, YYYY-MM-DDTHH:MM:SS.mmmZ (exactly milliseconds, UTC), read by
#: strptime with this format: on strings of that shape it accepts exactly what Joda accepts
#: (valid dates, hour 00-23, no 24:00 as DuckDB's cast allows) once a leading blank, which
#: strptime's %Y skips, is ruled out (``>= '0'``). Every other string takes the slow path.
PRODUCER_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"

_JSON_SCALAR = sqlglot.parse_one(
    # One parse of the document: json_value is NULL for an object or an array, the scalar's JSON
    # text otherwise, unquoted by ->> (JSON null -> NULL). TRY: text that is not JSON -> NULL.
    "TRY(json_value(__json, __path)) ->> '$'",
    read="duckdb",
)
_ISO = sqlglot.parse_one(
    # Fast path: the producers' form, parsed by strptime (no regular expression). Slow path:
    # any other ISO-8601 form Joda accepts, admitted by ISO_8601, cast, truncated to the ms.
    f"CASE WHEN __s LIKE '____-__-__T__:__:__.___Z' AND __s >= '0' "
    f"THEN make_timestamptz(epoch_us(try_strptime(__s, '{PRODUCER_FORMAT}'))) "
    f"WHEN regexp_full_match(__s, '{ISO_8601}') "
    "THEN date_trunc('millisecond', COALESCE(TRY_CAST(__s AS TIMESTAMPTZ), TRY_CAST(__fixed AS TIMESTAMPTZ))) END",
    read="duckdb",
)


def _fill(template: exp.Expr, **values: exp.Expr) -> exp.Expr:
    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name in values:
            return values[node.name].copy()
        return node

    return template.copy().transform(put)


def json_extract_scalar(json: exp.Expr, path: exp.Expr) -> exp.Expr:
    return _fill(_JSON_SCALAR, __json=json, __path=path)


def from_iso8601_timestamp(text: exp.Expr) -> exp.Expr:
    fixed: exp.Expr = text.copy()
    for pattern, replacement in _RARE_FIXES:
        fixed = exp.Anonymous(
            this="regexp_replace", expressions=[fixed, exp.Literal.string(pattern), exp.Literal.string(replacement)]
        )
    return _fill(_ISO, __s=text, __fixed=fixed)


def _is_int_literal(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        return _is_int_literal(node.this)
    return isinstance(node, exp.Literal) and not node.is_string and node.this.lstrip("-").isdigit()


def transform(node: exp.Expr) -> exp.Expr:
    """Rewrite one node of a parsed Athena tree so that DuckDB returns Athena's value."""
    if isinstance(node, exp.Try) and isinstance(node.this, exp.FromISO8601Timestamp):
        return from_iso8601_timestamp(node.this.this)  # never fails: no TRY needed
    if isinstance(node, exp.FromISO8601Timestamp):
        return from_iso8601_timestamp(node.this)
    if isinstance(node, exp.JSONExtractScalar):
        return json_extract_scalar(node.this, node.expression)
    if isinstance(node, exp.Div) and _is_int_literal(node.this) and _is_int_literal(node.expression):
        return exp.IntDiv(this=node.this.copy(), expression=node.expression.copy())
    return node


# -- reading a line as Athena's OpenX JSON SerDe does ---------------------------------------
#: What the local reader expects of a line, as json_transform's structure: column -> DuckDB type
#: name, a nested dict for a struct, a one-element list for an array.
Spec = dict[str, Any]
#: Java's String.trim(): every character up to U+0020.
_JAVA_BLANKS = "".join(chr(c) for c in range(0x21))
_DECODER = json.JSONDecoder()


def openx_line(spec: Spec) -> Callable[[str | None], str | None]:
    """The function that reads one raw line the way Trino's ``OpenXJsonDeserializer`` (Athena's
    OpenX JSON SerDe, ``case.insensitive=true``, ``ignore.malformed.json=true``) does, and
    returns it as JSON with the keys spelt as ``spec`` spells them, or None for a row of NULLs.

    The local view calls it only on the lines its fast path cannot read exactly (see
    ``lake.duckdb_select``); the rules, from the deserializer's ``deserialize`` and
    ``RowDecoder``, and its ``JsonReader``:

    * the line is trimmed; unless it then starts with ``{`` or ``[``, it is a row of NULLs
      (a blank line too);
    * only the first JSON value is read: text after it is ignored;
    * keys match the columns (and struct fields, at any depth) case-insensitively; of keys equal
      but for case, the last one wins;
    * an array maps to the columns by position;
    * a line that is not JSON is a row of NULLs.

    Not reproduced: JsonReader's leniencies (comments, single-quoted or unquoted strings,
    ``=``/``;`` separators), which no JSON writer produces.
    """

    def row(value: Any, fields: Spec) -> dict[str, Any] | None:
        if isinstance(value, list):
            return {name: field(value[i], sub) for i, (name, sub) in enumerate(fields.items()) if i < len(value)}
        if not isinstance(value, dict):
            return None
        folded: dict[str, Any] = {}
        for key, item in value.items():
            folded.pop(key.lower(), None)  # the last of keys equal but for case wins
            folded[key.lower()] = item
        return {name: field(folded.get(name.lower()), sub) for name, sub in fields.items()}

    def field(value: Any, sub: Any) -> Any:
        if isinstance(sub, dict):
            return row(value, sub) if isinstance(value, dict | list) else None
        return value

    def read(line: str | None) -> str | None:
        if line is None:
            return None
        text = line.strip(_JAVA_BLANKS)
        if not text.startswith(("{", "[")):
            return None
        try:
            value, _end = _DECODER.raw_decode(text)
            out = row(value, spec)
            return None if out is None else json.dumps(out, allow_nan=False)
        except (ValueError, RecursionError):
            return None

    return read
