"""Athena's partition projection, modelled from its documentation, applied to our DDL and the
query the rollup of the 23:00 hour of 31 December sends: the projected folders must be exactly
the folders the hour needs (22:00 .. 00:59 with the default bounds), not a cross product.

Model (Athena docs, "Supported types for partition projection", date type): the column's values
are the dates from ``projection.<col>.range`` stepping by ``interval`` ``interval.unit``,
formatted with the Java DateTimeFormatter pattern ``format``; the query's predicate on the
column selects among them; each selected value is put into ``storage.location.template``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlglot

from metrics_assets.events import ddl, lake, rollups
from metrics_assets.events import layout as layouts
from metrics_assets.resources.query_engine import render


def _props(statement: str) -> dict[str, str]:
    body = statement.split("TBLPROPERTIES", 1)[1]
    return {k: v.replace("''", "'") for k, v in re.findall(r"'([^']+)' = '((?:[^']|'')*)'", body)}


def _java_to_strftime(pattern: str) -> str:
    """An independent reading of the Java pattern: quoted text is literal; yyyy MM dd HH mm."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "'":
            j = pattern.index("'", i + 1)
            out.append(pattern[i + 1 : j])
            i = j + 1
            continue
        for token, code in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M")):
            if pattern.startswith(token, i):
                out.append(code)
                i += len(token)
                break
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("layout_name", list(layouts.LAYOUTS))
def test_the_last_hour_of_the_year_projects_exactly_its_folders(layout_name, monkeypatch):
    monkeypatch.setenv("EVENT_LAKE_LAYOUT", layout_name)
    statements = dict(ddl.statements())
    props = _props(statements["01_events_v0.sql"])
    assert props["projection.arrival_minute.type"] == "date"
    fmt = _java_to_strftime(props["projection.arrival_minute.format"])
    step = {"MINUTES": timedelta(minutes=1), "HOURS": timedelta(hours=1)}[
        props["projection.arrival_minute.interval.unit"]
    ]
    template = props["storage.location.template"]

    hour = datetime(2025, 12, 31, 23, tzinfo=UTC)
    params = lake.slice_params(hour, hour + timedelta(hours=1), 1, 1)
    sent = render(rollups.ROLLUP_SQL.read_text(), params, "athena")
    (between,) = [
        b
        for b in sqlglot.parse_one(sent, read="athena").find_all(sqlglot.exp.Between)
        if b.this.name == "arrival_minute"
    ]
    lo, hi = between.args["low"].this, between.args["high"].this

    # Enumerate the projection around the year end (values before or after cannot satisfy the
    # predicate: the format sorts like the time).
    projected, moment = set(), datetime(2025, 12, 30, tzinfo=UTC)
    while moment < datetime(2026, 1, 3, tzinfo=UTC):
        value = moment.strftime(fmt)
        if lo <= value <= hi:
            projected.add(template.replace("${arrival_minute}", value))
        moment += step

    # The folders the hour needs, written out by hand for each layout: 22:00 .. 00:59.
    needed_times = [datetime(2025, 12, 31, 22, tzinfo=UTC) + k * step for k in range(int(timedelta(hours=3) / step))]
    shape = {
        "dt=/hr=/min=": "dt=%Y-%m-%d/hr=%H/min=%M",
        "dt=/hr=": "dt=%Y-%m-%d/hr=%H",
        "year=/month=/day=/hour=/minute=": "year=%Y/month=%m/day=%d/hour=%H/minute=%M",
    }[layout_name]
    needed = {f"s3://lake/events/v0/{t.strftime(shape)}/" for t in needed_times}
    assert projected == needed
    assert len(projected) == (180 if step == timedelta(minutes=1) else 3)
