"""Every setting of the probes domain, read in one place, at call time.

| variable | default | what |
|---|---|---|
| ``GLAM_DATABASE_URL`` | the warehouse | the GLAM app's PostgreSQL, holding ``glam_usage_instrumentation``, ``glam_probes``, ``product_releases`` (a secret: read through ``dagster.EnvVar``) |
| ``PROBES_HOT_MIN_VIEWS`` | 10 | a probe is hot when viewed at least this many times ... |
| ``PROBES_HOT_WINDOW_DAYS`` | 7 | ... in this many days (ending at the as-of day) |
| ``PROBES_ALWAYS_BUILD`` | empty | comma-separated ``product/probe_name`` built every night whatever their views |
| ``PROBES_TOP_N`` | 20 | how many probes per product and window are flagged most viewed, and least viewed |
| ``PROBES_AS_OF`` | latest day in ``probe_views_daily`` (popularity, hot list, release windows); yesterday UTC (probe builds) | ``YYYY-MM-DD``: pin the day windows end on |
| ``PROBES_SAMPLE_DAYS`` | 28 | probe builds read this many days of telemetry samples, ending at the as-of day |
| ``PROBES_HISTOGRAM_BUCKETS`` | 20 | equal-width buckets of a probe's histogram |
| ``PROBES_REQUESTS_PER_TICK`` | 100 | at most this many pending build requests claimed per sensor tick |

A malformed value fails the run with :class:`ConfigurationError` naming the variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from metrics_assets.settings import ConfigurationError, env

SESSION_GAP_MINUTES = 30
POPULARITY_WINDOWS = (7, 28, 90)
RELEASE_WINDOW_DAYS = 14
VIEW_ACTION = "PROBE_VIEW"


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer; set it to a whole number (default {default}).") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}.")
    return value


def glam_database_url() -> str | None:
    """The GLAM app's database, or None: the sources live in the warehouse."""
    return env("GLAM_DATABASE_URL")


def as_of() -> date | None:
    raw = env("PROBES_AS_OF")
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigurationError(f"PROBES_AS_OF={raw!r} is not a date; use YYYY-MM-DD, or unset it.") from None


def build_as_of() -> date:
    """Last day of telemetry a probe build reads: PROBES_AS_OF, else yesterday (UTC)."""
    return as_of() or (datetime.now(UTC).date() - timedelta(days=1))


def always_build() -> list[tuple[str, str]]:
    raw = env("PROBES_ALWAYS_BUILD", "") or ""
    entries = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        product, sep, probe = item.partition("/")
        if not sep or not product.strip() or not probe.strip():
            raise ConfigurationError(
                f"PROBES_ALWAYS_BUILD entry {item!r} is not 'product/probe_name'; "
                "use a comma-separated list such as 'firefox_desktop/gc_ms,fenix/cold_start'."
            )
        entries.append((product.strip(), probe.strip()))
    return sorted(set(entries))


@dataclass(frozen=True)
class HotListRule:
    min_views: int
    window_days: int


def hot_list_rule() -> HotListRule:
    return HotListRule(min_views=_int("PROBES_HOT_MIN_VIEWS", 10), window_days=_int("PROBES_HOT_WINDOW_DAYS", 7))


def top_n() -> int:
    return _int("PROBES_TOP_N", 20)


def sample_days() -> int:
    return _int("PROBES_SAMPLE_DAYS", 28)


def histogram_buckets() -> int:
    return _int("PROBES_HISTOGRAM_BUCKETS", 20)


def requests_per_tick() -> int:
    return _int("PROBES_REQUESTS_PER_TICK", 100)

