"""The post-hoc metrics: one SQL file under ``sql/metrics/`` plus one entry here each.

A metric's SQL (Athena SQL over ``events_normalized``) takes the day's slice parameters (see
:func:`metrics_assets.events.lake.slice_params`) and returns the columns
``period_start_ms`` (the UTC day of the created time, epoch ms), one column per dimension,
``requester`` and ``metric_value``. ``dimensions`` maps each JSON key of ``metric_event`` to
the SQL column holding it (Athena lower-cases column names, hence the mapping). Adding a
metric: write its SQL file, add its entry. Nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql" / "metrics"


@dataclass(frozen=True)
class Metric:
    name: str
    #: (JSON key in metric_event, SQL column) pairs, in the order they appear in the JSON.
    dimensions: tuple[tuple[str, str], ...] = ()
    description: str = ""

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / f"{self.name}.sql"

    def sql(self) -> str:
        return self.sql_path.read_text()


METRICS: tuple[Metric, ...] = (
    Metric("logins", (), "Successful Auth0 logins (type 's') per user."),
    Metric(
        "project_tile_requests",
        (("projectId", "project_id"), ("layerId", "layer_id")),
        "Tile requests without an analysis, per project, layer and requester.",
    ),
    Metric(
        "analysis_tile_requests",
        (("analysisId", "analysis_id"),),
        "Tile requests for an analysis, per analysis and requester.",
    ),
)
