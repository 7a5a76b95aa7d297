"""The Athena DDL of the event lake: the files under ``sql/ddl/`` plus the normalized view.

Applying it replaces what is there: ``DROP TABLE IF EXISTS`` (an external table: the files stay)
then ``CREATE EXTERNAL TABLE``, and ``CREATE OR REPLACE VIEW``; so re-applying after changing
``EVENT_LAKE_BUCKET``, ``EVENT_LAKE_PREFIX`` or ``EVENT_LAKE_LAYOUT`` takes effect.
"""

from __future__ import annotations

from metrics_assets.events import config, lake
from metrics_assets.resources.sqltext import literal

DDL_DIR = lake.SQL_DIR / "ddl"
#: The first folder the projection enumerates from (inclusive); NOW is the end.
RANGE_START = "2020-01-01T00:00:00+00:00"


def lake_location() -> str:
    prefix = config.lake_prefix()
    return f"s3://{config.lake_bucket()}" + (f"/{prefix}" if prefix else "")


def statements() -> list[tuple[str, str]]:
    """(name, SQL) in the order to apply: each table dropped then created, then the view."""
    from datetime import datetime

    layout = config.lake_layout()
    values = {
        "{lake_location}": lake_location(),
        "{java_format}": literal(layout.java_format),
        "{range_start}": layout.value(datetime.fromisoformat(RANGE_START)),
        "{interval_unit}": layout.unit,
        "{head}": layout.head,
    }
    out = []
    for path in sorted(DDL_DIR.glob("*.sql")):
        text = _strip_comments(path.read_text())
        for key, value in values.items():
            text = text.replace(key, value)
        table = text.split("CREATE EXTERNAL TABLE ", 1)[1].split()[0]
        out.append((f"{path.name} (drop)", f"DROP TABLE IF EXISTS {table}"))
        out.append((path.name, text))
    view = f"CREATE OR REPLACE VIEW {lake.EVENTS_NORMALIZED} AS\n{_strip_comments(lake.normalized_select(layout))}"
    out.append(("events_normalized (view)", view))
    return out


def _strip_comments(sql: str) -> str:
    """Drop whole-line ``--`` comments: Athena's DDL parser is stricter than its query parser."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()
