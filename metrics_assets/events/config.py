"""Every setting of the `events` domain, read here and only here, at call time.

| variable | default | meaning |
|---|---|---|
| ``EVENT_LAKE_BUCKET`` | ``lake`` | bucket (local: first folder of the object store) holding the lake |
| ``EVENT_LAKE_PREFIX`` | ``events`` | prefix of the lake inside the bucket; one folder per topic (``v0/``, ``v1/``) under it |
| ``EVENT_LAKE_LAYOUT`` | ``dt=/hr=/min=`` | the folders Secor writes under each topic (see :mod:`metrics_assets.events.layout`) |
| ``EVENT_LATENESS_HOURS`` | ``1`` | the lateness bound: an event is counted in its created hour H when its folder's hour is at most H + this |
| ``EVENT_EARLY_HOURS`` | ``1`` | the early bound (clocks ahead of Secor's): folders down to H - this still count for H |
| ``EVENT_SCHEDULE_LOOKBACK_HOURS`` | ``2`` | the hourly schedule also rematerializes this many previous hours (at least the lateness bound) |
| ``EVENT_PARTITIONS_START`` | ``2025-01-01`` | first day of the hourly and daily partitions |
"""

from __future__ import annotations

from metrics_assets.settings import current


def lake_bucket() -> str:
    return current().event_lake_bucket.strip("/")


def lake_prefix() -> str:
    return current().event_lake_prefix.strip("/")


def lake_layout():
    """The folder layout named by ``EVENT_LAKE_LAYOUT`` (a :class:`~metrics_assets.events.layout.Layout`)."""
    from metrics_assets.events import layout

    return layout.by_name(current().event_lake_layout)


def lateness_hours() -> int:
    return current().event_lateness_hours


def early_hours() -> int:
    return current().event_early_hours


def schedule_lookback_hours() -> int:
    return current().event_schedule_lookback_hours


#: Read at import (partition definitions are static); change it only together with a backfill.
PARTITIONS_START = current().event_partitions_start
