"""The Athena DDL of the event lake: the files under ``sql/ddl/`` plus the normalized view."""

from __future__ import annotations

from metrics_assets.events import config, lake

DDL_DIR = lake.SQL_DIR / "ddl"


def lake_location() -> str:
    prefix = config.lake_prefix()
    return f"s3://{config.lake_bucket()}" + (f"/{prefix}" if prefix else "")


def statements() -> list[tuple[str, str]]:
    """(name, SQL) in the order to apply: the two tables, then the view over them."""
    location = lake_location()
    out = [(path.name, _strip_comments(path.read_text()).replace("{lake_location}", location))
           for path in sorted(DDL_DIR.glob("*.sql"))]
    view = f"CREATE OR REPLACE VIEW {lake.EVENTS_NORMALIZED} AS\n{_strip_comments(lake.normalized_select())}"
    out.append(("events_normalized (view)", view))
    return out


def _strip_comments(sql: str) -> str:
    """Drop whole-line ``--`` comments: Athena's DDL parser is stricter than its query parser."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()
