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

from metrics_assets.settings import ConfigurationError, env


def lake_bucket() -> str:
    return env("EVENT_LAKE_BUCKET", "lake").strip("/")


def lake_prefix() -> str:
    return (env("EVENT_LAKE_PREFIX", "events") or "").strip("/")


def lake_layout():
    """The folder layout named by ``EVENT_LAKE_LAYOUT`` (a :class:`~metrics_assets.events.layout.Layout`)."""
    from metrics_assets.events import layout

    return layout.by_name(env("EVENT_LAKE_LAYOUT", layout.DEFAULT) or layout.DEFAULT)


def _non_negative_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number of hours.") from None
    if value < 0:
        raise ConfigurationError(f"{name}={raw!r} must be 0 or more.")
    return value


def lateness_hours() -> int:
    return _non_negative_int("EVENT_LATENESS_HOURS", 1)


def early_hours() -> int:
    return _non_negative_int("EVENT_EARLY_HOURS", 1)


def schedule_lookback_hours() -> int:
    return _non_negative_int("EVENT_SCHEDULE_LOOKBACK_HOURS", 2)


#: Read at import (partition definitions are static); change it only together with a backfill.
PARTITIONS_START = env("EVENT_PARTITIONS_START", "2025-01-01")
