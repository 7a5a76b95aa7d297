"""No silent success: one rule for every domain's slice writes.

1. **Absent source → the run fails, naming the variable to fix.** :func:`require_source`
   raises :class:`SourceMissing` (a :class:`~metrics_assets.settings.ConfigurationError`).
   "Absent" is the domain's call (a folder or prefix that does not exist, a table that is not
   there); a source that exists with nothing in it is not absent.
2. **Present but empty → written empty, and said.** The slice is replaced by nothing (so a
   rerun over a now-empty hour does clear it), and the materialization's metadata carries
   ``source_empty: true`` with the reason (:meth:`SliceWrite.metadata`).
3. **Rows replaced by nothing → a check says so.** :func:`replace_slice_reporting` counts the
   slice's rows before replacing it, in the same transaction; :meth:`SliceWrite.check_result`
   then fails the asset's ``slice_not_emptied`` check (severity WARN by default: the run still
   succeeds, the UI shows the warning on the asset) whenever a slice that had rows now has none.
   Declare it with :func:`not_emptied_check_spec`.

Usage in an asset (the domain decides what absent and empty mean for its source)::

    @dg.asset(check_specs=[slices.not_emptied_check_spec("my_table")], ...)
    def my_table(context, warehouse: Warehouse):
        folder = settings.current().my_source_dir  # a field declared in settings.Settings
        slices.require_source(Path(folder).is_dir(), "MY_SOURCE_DIR", folder, "the source folder")
        rows = compute(...)
        write = slices.replace_slice_reporting(
            warehouse, "my_table", rows, "period_start = :p", {"p": start},
            source_empty=(files_found == 0), empty_reason="no recognised file in the folder",
        )
        return dg.MaterializeResult(metadata={**write.metadata(), ...},
                                    check_results=[write.check_result("my_table")])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from metrics_assets.settings import ConfigurationError

#: The check every slice-writing asset may declare.
NOT_EMPTIED_CHECK = "slice_not_emptied"


class SourceMissing(ConfigurationError):
    """A slice's source is absent. The message names the variable to fix."""


def require_source(present: bool, variable: str, value: Any, what: str) -> None:
    """Fail the run when the source is absent: ``what`` (e.g. "the box's log folder") was not
    found at ``value``; ``variable`` is the setting that points at it."""
    if not present:
        raise SourceMissing(
            f"{what} not found at {value!r}: set {variable} to where it is "
            f"(or create it; an existing but empty source is written empty, not failed)."
        )


def not_emptied_check_spec(asset: str | dg.AssetKey, *, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        NOT_EMPTIED_CHECK,
        asset=asset,
        blocking=blocking,
        description=(
            "A slice that had rows is not replaced by an empty one without saying so: "
            "warns when this materialization left a previously non-empty slice empty."
        ),
    )


@dataclass(frozen=True)
class SliceWrite:
    """What one slice replace did."""

    table: str
    rows_written: int
    previous_rows: int
    source_empty: bool = False
    empty_reason: str | None = None

    @property
    def emptied(self) -> bool:
        """A slice that had rows and now has none."""
        return self.previous_rows > 0 and self.rows_written == 0

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "dagster/row_count": dg.MetadataValue.int(self.rows_written),
            "previous_rows": dg.MetadataValue.int(self.previous_rows),
            "source_empty": dg.MetadataValue.bool(self.source_empty),
        }
        if self.source_empty or self.rows_written == 0:
            reason = self.empty_reason or ("the source is empty" if self.source_empty else "no rows computed")
            meta["empty_reason"] = dg.MetadataValue.text(reason)
        return meta

    def check_result(
        self,
        asset: str | dg.AssetKey,
        severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
    ) -> dg.AssetCheckResult:
        if self.emptied:
            why = self.empty_reason or ("the source is empty" if self.source_empty else "no rows computed")
            description = f"{self.previous_rows} rows of {self.table} replaced by none: {why}."
        else:
            description = f"{self.rows_written} rows written (previously {self.previous_rows})."
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name=NOT_EMPTIED_CHECK,
            passed=not self.emptied,
            severity=severity,
            description=description,
            metadata={
                "previous_rows": dg.MetadataValue.int(self.previous_rows),
                "rows_written": dg.MetadataValue.int(self.rows_written),
            },
        )


def replace_slice_reporting(
    warehouse,
    table: str,
    data: Any,
    where: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    source_empty: bool = False,
    empty_reason: str | None = None,
) -> SliceWrite:
    """:meth:`Warehouse.replace_slice`, also counting the rows it replaced (same transaction,
    so the count is of exactly the rows deleted)."""
    quoted = '"' + table.replace('"', '""') + '"'
    clause = f" WHERE {where}" if where else ""
    with warehouse.begin() as conn:
        deleted = conn.execute(sa.text(f"DELETE FROM {quoted}{clause}"), dict(params or {})).rowcount
        written = warehouse.load(conn, table, data)
    return SliceWrite(
        table=table,
        rows_written=int(written),
        previous_rows=int(deleted or 0),
        source_empty=source_empty,
        empty_reason=empty_reason,
    )
