"""The no-silent-success rule (metrics_assets/resources/slices.py), on SQLite and PostgreSQL,
and through a real materialization: absent source fails naming the variable, empty source is
written empty and said, rows replaced by nothing fail the slice_not_emptied check (WARN)."""

from pathlib import Path

import dagster as dg
import pytest

from metrics_assets.resources import Warehouse
from metrics_assets.resources.slices import (
    NOT_EMPTIED_CHECK,
    SourceMissing,
    not_emptied_check_spec,
    replace_slice_reporting,
    require_source,
)
from metrics_assets.settings import ConfigurationError

TABLE = "slice_rule_demo"


@pytest.fixture
def table(warehouse: Warehouse) -> Warehouse:
    warehouse.execute(f"DROP TABLE IF EXISTS {TABLE}")
    warehouse.execute(
        f"CREATE TABLE {TABLE} (day TEXT NOT NULL, item TEXT NOT NULL, n INTEGER NOT NULL, UNIQUE (day, item))"
    )
    yield warehouse
    warehouse.execute(f"DROP TABLE IF EXISTS {TABLE}")


def test_absent_source_fails_naming_the_variable(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(SourceMissing, match="MY_SOURCE_DIR") as raised:
        require_source(missing.is_dir(), "MY_SOURCE_DIR", str(missing), "the source folder")
    assert isinstance(raised.value, ConfigurationError)
    assert str(missing) in str(raised.value)
    require_source(tmp_path.is_dir(), "MY_SOURCE_DIR", str(tmp_path), "the source folder")  # present: no error


def test_replace_counts_what_it_replaced_and_flags_an_emptied_slice(table: Warehouse):
    where, day1, day2 = "day = :day", {"day": "2026-01-01"}, {"day": "2026-01-02"}
    first = replace_slice_reporting(
        table, TABLE, [{"day": "2026-01-01", "item": i, "n": 1} for i in "abc"], where, day1
    )
    replace_slice_reporting(table, TABLE, [{"day": "2026-01-02", "item": "z", "n": 9}], where, day2)
    assert (first.rows_written, first.previous_rows, first.emptied) == (3, 0, False)
    rerun = replace_slice_reporting(table, TABLE, [{"day": "2026-01-01", "item": "a", "n": 2}], where, day1)
    assert (rerun.rows_written, rerun.previous_rows, rerun.emptied) == (1, 3, False)
    assert rerun.check_result(TABLE).passed

    emptied = replace_slice_reporting(
        table, TABLE, [], where, day1, source_empty=True, empty_reason="no file for the day"
    )
    assert (emptied.rows_written, emptied.previous_rows, emptied.emptied) == (0, 1, True)
    result = emptied.check_result(TABLE)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.description == f"1 rows of {TABLE} replaced by none: no file for the day."
    assert table.scalar(f"SELECT count(*) FROM {TABLE} WHERE day = '2026-01-01'") == 0
    assert table.fetch_all(f"SELECT day, item, n FROM {TABLE}") == [{"day": "2026-01-02", "item": "z", "n": 9}]

    # Empty again: nothing was lost this time, the check passes, the metadata still says empty.
    again = replace_slice_reporting(
        table, TABLE, [], where, day1, source_empty=True, empty_reason="no file for the day"
    )
    assert again.check_result(TABLE).passed
    meta = again.metadata()
    assert meta["source_empty"].value is True and meta["empty_reason"].value == "no file for the day"
    assert meta["dagster/row_count"].value == 0


def test_the_rule_through_a_materialization(table: Warehouse, tmp_path, monkeypatch):
    source = tmp_path / "source"
    monkeypatch.setenv("MY_SOURCE_DIR", str(source))

    @dg.asset(
        name=TABLE,
        partitions_def=dg.StaticPartitionsDefinition(["2026-01-01"]),
        check_specs=[not_emptied_check_spec(TABLE)],
    )
    def slice_asset(context: dg.AssetExecutionContext, warehouse: Warehouse):
        require_source(source.is_dir(), "MY_SOURCE_DIR", str(source), "the source folder")
        files = sorted(source.glob("*.txt"))
        rows = [{"day": context.partition_key, "item": f.stem, "n": len(f.read_text())} for f in files]
        write = replace_slice_reporting(
            warehouse,
            TABLE,
            rows,
            "day = :d",
            {"d": context.partition_key},
            source_empty=not files,
            empty_reason="no .txt file in MY_SOURCE_DIR",
        )
        return dg.MaterializeResult(metadata=write.metadata(), check_results=[write.check_result(TABLE)])

    def run():
        return dg.materialize(
            [slice_asset], partition_key="2026-01-01", resources={"warehouse": table}, raise_on_error=False
        )

    failed = run()
    assert not failed.success
    assert "MY_SOURCE_DIR" in str(failed.get_step_failure_events()[0].event_specific_data.error)

    source.mkdir()
    (source / "a.txt").write_text("xx")
    ok = run()
    assert ok.success
    [check] = ok.get_asset_check_evaluations()
    assert check.check_name == NOT_EMPTIED_CHECK and check.passed

    (source / "a.txt").unlink()
    emptied = run()
    assert emptied.success  # written empty, said so: not a failure
    [materialization] = emptied.asset_materializations_for_node(TABLE)
    assert materialization.metadata["source_empty"].value is True
    assert materialization.metadata["previous_rows"].value == 1
    [check] = emptied.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert Path(source).is_dir()
