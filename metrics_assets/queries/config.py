"""Every setting of the queries domain, read when called (never at import).

| variable | default | meaning |
|---|---|---|
| ``METRICS_API_TOKEN`` | (none) | bearer token the REST API requires; unset = ``serve`` refuses to start |
| ``METRICS_QUERY_MAX_ROWS`` | 1000000 | a result with more rows fails (never silently cut) |
| ``METRICS_QUERY_MAX_RESULT_BYTES`` | 536870912 | a result larger than this in memory (Arrow bytes) fails |
| ``METRICS_QUERY_TIMEOUT_S`` | 300 | past it the engine query is interrupted and the query FAILED |
| ``METRICS_QUERY_MEMORY_LIMIT`` | ``1GB`` | DuckDB ``memory_limit`` of the session running a query |
| ``METRICS_QUERY_THREADS`` | 2 | DuckDB ``threads`` of that session |
| ``METRICS_QUERY_MAX_TEMP_SIZE`` | ``5GB`` | most that session may spill (under ``$METRICS_HOME/duckdb_tmp/queries``) |
| ``METRICS_QUERY_ATHENA_WORK_GROUP`` | ``metrics-adhoc`` | the Athena work group of ad hoc queries (with a bytes-scanned cutoff) |
| ``METRICS_QUERY_SENSOR_INTERVAL_S`` | 2 | seconds between sensor ticks (read when definitions load) |
| ``METRICS_QUERY_PURGE_CRON`` | ``*/5 * * * *`` | when the purge schedule marks expired queries |
"""

from __future__ import annotations

from metrics_assets import settings

#: Columns no query may name, at any depth (v1 keeps them in ``envelope``; events_normalized
#: calls the first ``resource_id``). Compared after NFKC, case folding and removing ``_``/``-``.
FORBIDDEN_COLUMNS = ("resourceid", "operationid", "resource_id", "operation_id")
DEFAULT_RETENTION_MINUTES = 60
MAX_RETENTION_MINUTES = 7 * 24 * 60
MAX_RESULTS_PER_PAGE = 1000
DEFAULT_RESULTS_PER_PAGE = 100


def allowed_tables() -> tuple[str, ...]:
    """The lake tables a query may read: those the lake catalog marks ``ad_hoc`` (the events
    domain's events_v0 and events_v1), in declaration order."""
    from metrics_assets.lake_catalog import code_location_catalog

    return code_location_catalog().ad_hoc_names()


def max_rows() -> int:
    return settings.current().query_max_rows


def max_result_bytes() -> int:
    return settings.current().query_max_result_bytes


def timeout_s() -> float:
    return settings.current().query_timeout_s


def memory_limit() -> str:
    return settings.current().query_memory_limit


def threads() -> int:
    return settings.current().query_threads


def max_temp_size() -> str:
    return settings.current().query_max_temp_size


def athena_work_group() -> str:
    return settings.current().query_athena_work_group


def sensor_interval_s() -> int:
    return settings.current().query_sensor_interval_s


def purge_cron() -> str:
    return settings.current().query_purge_cron


MIN_TOKEN_LENGTH = 32


def check_token(token: str | None) -> str:
    """A bearer token the API may start with: set, and at least ``MIN_TOKEN_LENGTH`` characters."""
    if token is None:
        raise settings.ConfigurationError(
            "METRICS_API_TOKEN is not set: the query API will not start without a bearer token. "
            "Set it, e.g. `export METRICS_API_TOKEN=$(openssl rand -hex 24)`."
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise settings.ConfigurationError(
            f"METRICS_API_TOKEN is {len(token)} characters long; the query API needs at least "
            f"{MIN_TOKEN_LENGTH}, e.g. `export METRICS_API_TOKEN=$(openssl rand -hex 24)`."
        )
    return token


def api_token() -> str:
    """The REST API's bearer token. Missing or short is a configuration error: the server must
    not start open to anyone, nor behind a guessable token."""
    return check_token(settings.current().metrics_api_token)
