"""The folder layouts Secor writes, chosen by ``EVENT_LAKE_LAYOUT``. Pure functions, no I/O.

Secor (pinterest/secor) names every object ``<prefix>/<topic>/<partitions>/<basename><ext>``
(``LogFilePath.getLogFilePath``): the partitions come from the message parser
(``TimestampedMessageParser.generatePartitions``) applied to the message's own timestamp field
(``message.timestamp.name``; for our topics the arrival time), formatted with
``partitioner.granularity.{date,hour,minute}.{prefix,format}``; the basename is
``<generation>_<kafka partition>_<offset as 20 digits>`` and the extension is the compression
codec's (``.gz`` for ``GzipCodec``, nothing without a codec) or ``secor.file.extension``.

| ``EVENT_LAKE_LAYOUT`` | folders | Secor settings |
|---|---|---|
| ``dt=/hr=/min=`` (default) | ``dt=2026-01-05/hr=10/min=07`` | the default prefixes and formats (``secor.common.properties``) with ``partitioner.granularity.hour=true`` and ``partitioner.granularity.minute=true`` |
| ``dt=/hr=`` | ``dt=2026-01-05/hr=10`` | the same, minute granularity off |
| ``year=/month=/day=/hour=/minute=`` | ``year=2026/month=01/day=05/hour=10/minute=07`` | ``partitioner.granularity.date.prefix=year=``, ``...date.format=yyyy'/month='MM'/day='dd``, ``...hour.prefix=hour=``, ``...minute.prefix=minute=`` |

In Athena each table has ONE partition column, ``arrival_minute``, projected as a ``date``
(Athena's partition projection, ``projection.arrival_minute.type = date``): its value is the
folder path after the first ``=`` (``2026-01-05/hr=10/min=07``) and
``storage.location.template`` puts the first prefix back (``.../v0/dt=${arrival_minute}/``).
A time range is then one contiguous interval of that column, whatever the layout, and Athena
projects exactly the folders of the interval (no per-column cross product at month or year ends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from metrics_assets.settings import ConfigurationError
from metrics_assets.settings import default as settings_default

PARTITION_COLUMN = "arrival_minute"


@dataclass(frozen=True)
class Layout:
    name: str
    #: the first folder's ``key=`` (put back by storage.location.template)
    head: str
    #: strftime of the partition column's value (the folder path after ``head``)
    value_format: str
    #: Java DateTimeFormatter pattern of the same value (Athena's projection.*.format)
    java_format: str
    #: ``MINUTES`` or ``HOURS``: Athena's projection.*.interval.unit
    unit: str
    #: Trino ``date_parse`` format of the value's first ``hour_length`` characters (its hour)
    hour_format: str
    hour_length: int
    #: the hive keys of the folders, in order (DuckDB reads them as columns locally)
    keys: tuple[str, ...]
    #: DuckDB SQL building the partition column's value from those hive columns
    duckdb_value: str

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=1) if self.unit == "MINUTES" else timedelta(hours=1)

    def value(self, moment: datetime) -> str:
        """The partition column's value for the folder holding ``moment``."""
        return moment.astimezone(UTC).strftime(self.value_format)

    def folder(self, moment: datetime) -> str:
        """The folder (relative to the topic) holding ``moment``: ``dt=2026-01-05/hr=10/min=07``."""
        return self.head + self.value(moment)

    def hour_folder(self, hour: datetime) -> str:
        """The folder of a whole hour (the minute folders are below it, or it is the leaf)."""
        return self.head + hour.astimezone(UTC).strftime(self.hour_format.replace("%i", "%M"))

    def hour_value_bounds(self, first_hour: datetime, last_hour: datetime) -> tuple[str, str]:
        """The inclusive bounds of the partition column for the folders of [first_hour, last_hour]."""
        last = last_hour + timedelta(hours=1) - self.step
        return self.value(first_hour), self.value(last)

    def parse(self, relative_path: str) -> datetime | None:
        """The folder time of a file path relative to the topic, or None when it is not in this layout."""
        match = self._pattern().match(relative_path)
        if not match:
            return None
        parts = [int(g) for g in match.groups() if g is not None]
        try:
            # Every layout has year, month, day and hour folders; the minute folder is optional.
            year, month, day, *clock = parts
            hour, minute = (*clock, 0, 0)[:2]
            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError:
            return None

    def _pattern(self) -> re.Pattern:
        regex = re.escape(self.head + self.value_format)
        for code, digits in (("%Y", 4), ("%m", 2), ("%d", 2), ("%H", 2), ("%M", 2)):
            regex = regex.replace(re.escape(code), rf"(\d{{{digits}}})")
        return re.compile(rf"^{regex}/[^/]+$")


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout(
            name="dt=/hr=/min=",
            head="dt=",
            value_format="%Y-%m-%d/hr=%H/min=%M",
            java_format="yyyy-MM-dd'/hr='HH'/min='mm",
            unit="MINUTES",
            hour_format="%Y-%m-%d/hr=%H",
            hour_length=16,
            keys=("dt", "hr", "min"),
            duckdb_value='"dt" || \'/hr=\' || "hr" || \'/min=\' || "min"',
        ),
        Layout(
            name="dt=/hr=",
            head="dt=",
            value_format="%Y-%m-%d/hr=%H",
            java_format="yyyy-MM-dd'/hr='HH",
            unit="HOURS",
            hour_format="%Y-%m-%d/hr=%H",
            hour_length=16,
            keys=("dt", "hr"),
            duckdb_value='"dt" || \'/hr=\' || "hr"',
        ),
        Layout(
            name="year=/month=/day=/hour=/minute=",
            head="year=",
            value_format="%Y/month=%m/day=%d/hour=%H/minute=%M",
            java_format="yyyy'/month='MM'/day='dd'/hour='HH'/minute='mm",
            unit="MINUTES",
            hour_format="%Y/month=%m/day=%d/hour=%H",
            hour_length=28,
            keys=("year", "month", "day", "hour", "minute"),
            duckdb_value=(
                '"year" || \'/month=\' || "month" || \'/day=\' || "day" || \'/hour=\' || "hour" '
                "|| '/minute=' || \"minute\""
            ),
        ),
    )
}
DEFAULT = settings_default("EVENT_LAKE_LAYOUT")  # Secor's default folders


def by_name(name: str) -> Layout:
    cleaned = name.strip().strip("/")
    for layout in LAYOUTS.values():
        if layout.name.strip("/") == cleaned:
            return layout
    raise ConfigurationError(f"EVENT_LAKE_LAYOUT={name!r} is not a known layout; use one of: {', '.join(LAYOUTS)}.")
