"""Every setting of the queries domain, read when called (never at import).

| variable | default | meaning |
|---|---|---|
| ``METRICS_API_TOKEN`` | (none) | bearer token the REST API requires; unset = ``serve`` refuses to start |
| ``METRICS_QUERY_MAX_ROWS`` | 1000000 | LIMIT added to a query without one, and the cap on a larger LIMIT |
| ``METRICS_QUERY_SENSOR_INTERVAL_S`` | 10 | seconds between sensor ticks (read when definitions load) |
| ``METRICS_QUERY_PURGE_CRON`` | ``*/5 * * * *`` | when the purge schedule marks expired queries |
"""

from __future__ import annotations

from metrics_assets import settings

#: The lake tables a query may read (registered by the events domain).
ALLOWED_TABLES = ("events_v0", "events_v1")
#: Columns no query may name, at any depth (v1 keeps them in ``envelope``; events_normalized
#: calls the first ``resource_id``). Compared after NFKC, case folding and removing ``_``/``-``.
FORBIDDEN_COLUMNS = ("resourceid", "operationid", "resource_id", "operation_id")
DEFAULT_RETENTION_MINUTES = 60
MAX_RETENTION_MINUTES = 7 * 24 * 60
MAX_RESULTS_PER_PAGE = 1000
DEFAULT_RESULTS_PER_PAGE = 100


def _int(name: str, default: int) -> int:
    raw = settings.env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise settings.ConfigurationError(f"{name}={raw!r} must be a whole number.") from error
    if value <= 0:
        raise settings.ConfigurationError(f"{name}={raw!r} must be positive.")
    return value


def max_rows() -> int:
    return _int("METRICS_QUERY_MAX_ROWS", 1_000_000)


def sensor_interval_s() -> int:
    return _int("METRICS_QUERY_SENSOR_INTERVAL_S", 10)


def purge_cron() -> str:
    return settings.env("METRICS_QUERY_PURGE_CRON", "*/5 * * * *") or "*/5 * * * *"


def api_token() -> str:
    """The REST API's bearer token. Missing is a configuration error: the server must not
    start open to anyone."""
    token = settings.env("METRICS_API_TOKEN")
    if token is None:
        raise settings.ConfigurationError(
            "METRICS_API_TOKEN is not set: the query API will not start without a bearer token. "
            "Set it, e.g. `export METRICS_API_TOKEN=$(openssl rand -hex 24)`."
        )
    return token
