"""Every setting of the probes domain, read in one place, at call time.

| variable | default | what |
|---|---|---|
| ``GLAM_DATABASE_URL`` | the warehouse | the GLAM app's PostgreSQL: its ``glam_usage_instrumentation``, ``glam_probe`` and ``glam_*_aggregation`` tables, and ``probe_build_requests`` (created there by this project). A secret: read through ``dagster.EnvVar`` |
| ``PROBES_VIEW_ACTIONS`` | ``PROBE_SEARCH,PROBE_VIEW`` | the ``action_type`` values that count as a view of a probe (GLAM writes ``PROBE_SEARCH`` on every probe fetch) |
| ``GLAM_PROBEINFO_PATH`` | unset | probe-info service JSON of the Glean products (``/glean/<repo>/metrics``): a file, a folder of them, or an ``s3://bucket/key`` object; the file name says the product (``fenix*``, ``fog*`` or ``firefox-desktop*``). Unset: desktop probes only, said in the metadata |
| ``GLAM_RELEASES_PATH`` | unset | Mozilla product-details ``firefox_history_major_releases.json`` (a version-to-date object): a file or an ``s3://bucket/key`` object. Unset: no release windows, said in the metadata |
| ``PROBES_NEW_DAYS`` | 14 | the hot list builds probes that appeared in the catalogue in the last this many days (reason ``new``) |
| ``PROBES_REQUESTED_DAYS`` | ``PROBES_HOT_WINDOW_DAYS`` | ... and probes asked for in ``probe_build_requests`` in the last this many days (reason ``requested``) |
| ``PROBES_CLAIM_TIMEOUT_MINUTES`` | 60 | a claimed request whose run never started after this long is answered FAILED (the reaper) |
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

from metrics_assets.resources.sqltext import literal
from metrics_assets.settings import ConfigurationError, current

SESSION_GAP_MINUTES = 30
POPULARITY_WINDOWS = (7, 28, 90)
RELEASE_WINDOW_DAYS = 14


def view_actions() -> tuple[str, ...]:
    """``PROBES_VIEW_ACTIONS``: the action types counted as views (sorted, distinct)."""
    actions = tuple(sorted(set(current().probes_view_actions)))
    if not actions:
        raise ConfigurationError("PROBES_VIEW_ACTIONS is empty; list action types, e.g. 'PROBE_SEARCH,PROBE_VIEW'.")
    for action in actions:
        if not all(c.isalnum() or c == "_" for c in action):
            raise ConfigurationError(
                f"PROBES_VIEW_ACTIONS entry {action!r} is not an action type (letters, digits, _)."
            )
    return actions


def view_actions_sql() -> str:
    """The view actions as an SQL list literal, ``('PROBE_SEARCH', 'PROBE_VIEW')`` (validated above)."""
    return "(" + ", ".join(literal(a) for a in view_actions()) + ")"


def probeinfo_path() -> str | None:
    return current().glam_probeinfo_path


def releases_path() -> str | None:
    return current().glam_releases_path


def new_days() -> int:
    return current().probes_new_days


def requested_days() -> int:
    return current().probes_requested_days or hot_list_rule().window_days


def claim_timeout_minutes() -> int:
    return current().probes_claim_timeout_minutes


def as_of() -> date | None:
    return current().probes_as_of


def build_as_of() -> date:
    """Last day of telemetry a probe build reads: PROBES_AS_OF, else yesterday (UTC)."""
    return as_of() or (datetime.now(UTC).date() - timedelta(days=1))


def always_build() -> list[tuple[str, str]]:
    entries = []
    for item in current().probes_always_build:
        product, sep, probe = item.partition("/")
        if not sep or not product.strip() or not probe.strip():
            raise ConfigurationError(
                f"PROBES_ALWAYS_BUILD entry {item!r} is not 'product/probe_name'; "
                "use a comma-separated list such as 'firefox/gc_ms,fenix/cold_start'."
            )
        entries.append((product.strip(), probe.strip()))
    return sorted(set(entries))


@dataclass(frozen=True)
class HotListRule:
    min_views: int
    window_days: int


def hot_list_rule() -> HotListRule:
    now = current()
    return HotListRule(min_views=now.probes_hot_min_views, window_days=now.probes_hot_window_days)


def top_n() -> int:
    return current().probes_top_n


def sample_days() -> int:
    return current().probes_sample_days


def histogram_buckets() -> int:
    return current().probes_histogram_buckets


def requests_per_tick() -> int:
    return current().probes_requests_per_tick
