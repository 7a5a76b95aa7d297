"""The shared Markdown preview: the same table whatever the tabular input."""

import pandas as pd
import pyarrow as pa

from metrics_assets.resources.metadata import preview

ROWS = [
    {"owner": "bob", "bytes": 1005, "note": None},
    {"owner": "a|b", "bytes": 7, "note": "x\ny"},
    {"owner": "eve", "bytes": 0, "note": ""},
]
EXPECTED = "| owner | bytes |\n|---|---|\n| bob | 1005 |\n| a\\|b | 7 |\n\n_1 more rows_"


def test_preview_is_the_same_table_for_lists_arrow_and_pandas():
    for data in (ROWS, pa.Table.from_pylist(ROWS), pd.DataFrame(ROWS)):
        assert preview(data, limit=2, columns=["owner", "bytes"]).value == EXPECTED


def test_preview_shows_nulls_blank_escapes_newlines_and_says_when_empty():
    assert preview(ROWS, columns=["owner", "note"]).value.splitlines()[2:] == [
        "| bob |  |",
        "| a\\|b | x y |",
        "| eve |  |",
    ]
    assert preview([]).value == "_no rows_"
    assert preview(pa.table({"a": pa.array([], pa.int64())})).value == "_no rows_"
