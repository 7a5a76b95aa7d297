"""Every environment variable the code location reads, declared once, in one typed object.

:class:`Settings` has one field per variable: its type, its default and what it means. The
type picks the parser (one parser per type: whole number, number, text, path, date, list
of names), and a value that does not parse, or is out of its range, raises
:class:`ConfigurationError` naming the variable and what to put there. ``settings.current()``
reads the environment afresh on every call, never at import, so tests and the demo can
change the environment and build new resources.

Domains read ``current().<field>``; their ``config.py`` modules only turn a setting's text
into a structure of their own (a bucket list, a folder layout) and say what is wrong with it.

Defaults work locally with nothing but Python: everything lives under ``METRICS_HOME``
(``./.metrics_home`` by default). Production sets ``METRICS_DEPLOYMENT=production`` and the
AWS variables listed in the README.

Secrets (``secret=True``: database URLs with passwords, keys, tokens) are declared here so
that the list is complete, but resources pass them to Dagster as ``EnvVar`` so that they are
resolved at run time and never shown in the UI.
"""

from __future__ import annotations

import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

LOCAL = "local"
PRODUCTION = "production"
DEPLOYMENTS = (LOCAL, PRODUCTION)


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong. The message says which variable to fix."""


def env(name: str, default: str | None = None) -> str | None:
    """The variable's raw text, or ``default`` when it is unset or blank."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# -- declaring a variable -------------------------------------------------------------------
class Var:
    """One environment variable: a field of :class:`Settings`, parsed when first read.

    Parsing on first read (not when the object is made) means a wrong value fails the code
    that uses it, naming the variable, and leaves every other domain running."""

    def __init__(
        self,
        name: str,
        default: Any,
        doc: str,
        *,
        minimum: float | None,
        maximum: float | None,
        choices: tuple[str, ...] | None,
        secret: bool,
        domain: str,
    ):
        self.env, self.default, self.doc = name, default, doc
        self.minimum, self.maximum, self.choices = minimum, maximum, choices
        self.secret, self.domain = secret, domain
        self.attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        cache = obj.__dict__
        if self.attribute not in cache:
            cache[self.attribute] = self.read(obj._environ)
        return cache[self.attribute]

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        parse = _parser_for(typing.get_type_hints(Settings)[self.attribute])
        value = parse(self.env, raw)
        if self.choices is not None:
            value = value.lower()
            if value not in self.choices:
                raise ConfigurationError(f"{self.env}={raw!r} is not one of {', '.join(self.choices)}.")
        if self.minimum is not None and value < self.minimum:
            raise ConfigurationError(f"{self.env}={raw!r} must be at least {self.minimum:g}.")
        if self.maximum is not None and value > self.maximum:
            raise ConfigurationError(f"{self.env}={raw!r} must be at most {self.maximum:g}.")
        return value


def var(
    name: str,
    default: Any,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
    domain: str = "platform",
) -> Any:
    """A :class:`Settings` field read from the environment variable ``name``."""
    return Var(name, default, doc, minimum=minimum, maximum=maximum, choices=choices, secret=secret, domain=domain)


# -- one parser per type --------------------------------------------------------------------
def _whole(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} must be a whole number.") from None


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} must be a number.") from None
    if not math.isfinite(value):
        raise ConfigurationError(f"{name}={raw!r} must be a finite number.")
    return value


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _path(name: str, raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a date; use YYYY-MM-DD.") from None


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


PARSERS: dict[Any, Callable[[str, str], Any]] = {
    int: _whole,
    float: _number,
    str: _text,
    Path: _path,
    date: _date,
    tuple[str, ...]: _names,
}


def _parser_for(annotation: Any) -> Callable[[str, str], Any]:
    """The parser for a field's type (``X | None`` is parsed as ``X``)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return PARSERS[annotation]


# -- the settings ---------------------------------------------------------------------------
class Settings:
    """One field per environment variable (see :func:`var`); get one with :func:`current`."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    # platform
    deployment: str = var(
        "METRICS_DEPLOYMENT",
        LOCAL,
        "which resources: local files, DuckDB, SQLite; or S3, SQS, Athena, PostgreSQL",
        choices=DEPLOYMENTS,
    )
    home: Path = var(
        "METRICS_HOME", Path("./.metrics_home"), "the local deployment's folder: warehouse, lake, spool, Dagster home"
    )
    warehouse_url: str | None = var(
        "METRICS_WAREHOUSE_URL",
        None,
        "SQLAlchemy URL of the warehouse (default: SQLite under METRICS_HOME; required in production)",
        secret=True,
    )
    object_store_dir: Path | None = var(
        "METRICS_OBJECT_STORE_DIR",
        None,
        "local object store root, one folder per bucket (default METRICS_HOME/objects)",
    )
    spool_dir: Path | None = var("METRICS_SPOOL_DIR", None, "local notification spool (default METRICS_HOME/spool)")
    duckdb_path: str = var("METRICS_DUCKDB_PATH", ":memory:", "DuckDB database of the local query engine")
    automation_interval_s: int = var(
        "METRICS_AUTOMATION_INTERVAL_S", 30, "seconds between evaluations of the automation sensor", minimum=1
    )
    dagster_home: Path | None = var(
        "DAGSTER_HOME",
        None,
        "the Dagster instance's folder (Dagster's own variable; the demo defaults it to METRICS_HOME/dagster)",
    )
    dagster_pg_host: str | None = var(
        "DAGSTER_PG_HOST", None, "Dagster's own storage in PostgreSQL (unset: SQLite under DAGSTER_HOME)"
    )
    dagster_pg_port: int = var("DAGSTER_PG_PORT", 5432, "port of Dagster's PostgreSQL", minimum=1, maximum=65535)
    dagster_pg_username: str = var("DAGSTER_PG_USERNAME", "postgres", "user of Dagster's PostgreSQL")
    dagster_pg_password: str | None = var("DAGSTER_PG_PASSWORD", None, "password of Dagster's PostgreSQL", secret=True)
    dagster_pg_db: str = var("DAGSTER_PG_DB", "dagster", "database of Dagster's PostgreSQL")
    # AWS (production)
    aws_region: str | None = var("AWS_REGION", None, "AWS region (else AWS_DEFAULT_REGION, else us-east-1)")
    aws_default_region: str | None = var("AWS_DEFAULT_REGION", None, "AWS region when AWS_REGION is unset")
    aws_access_key_id: str | None = var(
        "AWS_ACCESS_KEY_ID", None, "AWS key (unset: boto3's own credential chain)", secret=True
    )
    aws_secret_access_key: str | None = var("AWS_SECRET_ACCESS_KEY", None, "AWS secret key", secret=True)
    aws_endpoint_url: str | None = var("AWS_ENDPOINT_URL", None, "endpoint of every AWS service (tests: moto)")
    athena_endpoint_url: str | None = var("ATHENA_ENDPOINT_URL", None, "Athena endpoint, over AWS_ENDPOINT_URL")
    sqs_endpoint_url: str | None = var("SQS_ENDPOINT_URL", None, "SQS endpoint, over AWS_ENDPOINT_URL")
    athena_work_group: str | None = var(
        "ATHENA_WORK_GROUP", None, "Athena work group of the code location's own queries"
    )
    athena_output_location: str | None = var("ATHENA_OUTPUT_LOCATION", None, "s3:// folder for Athena results")
    athena_database: str | None = var("ATHENA_DATABASE", None, "Glue database of the lake tables")
    s3_notifications_queue_url: str | None = var(
        "S3_NOTIFICATIONS_QUEUE_URL", None, "SQS queue of the metered buckets' event notifications", domain="storage"
    )
    # offspot
    offspot_log_dir: str | None = var(
        "OFFSPOT_LOG_DIR",
        None,
        "one box's Caddy logs: a folder or s3://bucket/prefix (default METRICS_HOME/offspot/logs)",
        domain="offspot",
    )
    offspot_packages_file: Path | None = var(
        "OFFSPOT_PACKAGES_FILE",
        None,
        "that box's packages.yaml (default METRICS_HOME/offspot/packages.yaml)",
        domain="offspot",
    )
    offspot_fleet_root: str | None = var(
        "OFFSPOT_FLEET_ROOT", None, "a fleet: a folder or s3:// prefix with one folder per box", domain="offspot"
    )
    offspot_log_pattern: str = var(
        "OFFSPOT_LOG_PATTERN",
        "metrics.json,access.log",
        "the names Caddy writes its access log to, comma-separated",
        domain="offspot",
    )
    offspot_partitions_start: str = var(
        "OFFSPOT_PARTITIONS_START",
        "2025-01-01-00:00",
        "first hourly partition, YYYY-MM-DD[-HH:00] UTC",
        domain="offspot",
    )
    offspot_stale_after_hours: int = var(
        "OFFSPOT_STALE_AFTER_HOURS",
        24,
        "hours behind the fleet's newest record before a box is stale",
        minimum=1,
        domain="offspot",
    )
    offspot_api_allowed_origins: str | None = var(
        "OFFSPOT_API_ALLOWED_ORIGINS",
        None,
        "|-separated origins allowed to call the dashboard API from a browser",
        domain="offspot",
    )
    # events
    event_lake_bucket: str = var("EVENT_LAKE_BUCKET", "lake", "bucket of the event lake", domain="events")
    event_lake_prefix: str = var(
        "EVENT_LAKE_PREFIX", "events", "prefix of the event lake in its bucket", domain="events"
    )
    event_lake_layout: str = var(
        "EVENT_LAKE_LAYOUT", "dt=/hr=/min=", "Secor folder layout of the lake", domain="events"
    )
    event_lateness_hours: int = var(
        "EVENT_LATENESS_HOURS",
        1,
        "hours after its created hour an event may still arrive and be counted there",
        minimum=0,
        domain="events",
    )
    event_early_hours: int = var(
        "EVENT_EARLY_HOURS",
        1,
        "hours before its created hour an event may arrive (clock skew)",
        minimum=0,
        domain="events",
    )
    event_schedule_lookback_hours: int = var(
        "EVENT_SCHEDULE_LOOKBACK_HOURS",
        2,
        "hours the hourly schedule recomputes behind the newest",
        minimum=0,
        domain="events",
    )
    event_partitions_start: str = var(
        "EVENT_PARTITIONS_START",
        "2025-01-01",
        "first partition of the events assets (read when definitions load)",
        domain="events",
    )
    # storage
    storage_buckets: str | None = var(
        "STORAGE_BUCKETS", None, "metered places, 'bucket[/prefix],...' (required in production)", domain="storage"
    )
    storage_rules_file: Path | None = var(
        "STORAGE_RULES_FILE", None, "owner attribution rules (default: the shipped rules.yaml)", domain="storage"
    )
    storage_notification_delay_seconds: float = var(
        "STORAGE_NOTIFICATION_DELAY_SECONDS",
        300.0,
        "how late a notification may reach the queue after its change",
        minimum=0,
        maximum=86_400,
        domain="storage",
    )
    storage_inventory: str | None = var(
        "STORAGE_INVENTORY", None, "S3 Inventory destinations (s3://bucket/prefix) per metered bucket", domain="storage"
    )
    # probes
    glam_database_url: str | None = var(
        "GLAM_DATABASE_URL", None, "the GLAM app's PostgreSQL (default: the warehouse)", secret=True, domain="probes"
    )
    glam_probeinfo_path: str | None = var(
        "GLAM_PROBEINFO_PATH", None, "probe-info JSON for Glean products: a file, a folder or s3://", domain="probes"
    )
    glam_releases_path: str | None = var(
        "GLAM_RELEASES_PATH",
        None,
        "product-details release dates JSON: a path or s3:// (unset: no release windows)",
        domain="probes",
    )
    probes_view_actions: tuple[str, ...] = var(
        "PROBES_VIEW_ACTIONS", ("PROBE_SEARCH", "PROBE_VIEW"), "action types counted as views", domain="probes"
    )
    probes_as_of: date | None = var(
        "PROBES_AS_OF", None, "pin 'today' for the probes domain (YYYY-MM-DD)", domain="probes"
    )
    probes_always_build: tuple[str, ...] = var(
        "PROBES_ALWAYS_BUILD", (), "product/probe pairs built every night", domain="probes"
    )
    probes_hot_min_views: int = var(
        "PROBES_HOT_MIN_VIEWS", 10, "views in the window that make a probe hot", minimum=1, domain="probes"
    )
    probes_hot_window_days: int = var(
        "PROBES_HOT_WINDOW_DAYS", 7, "days of views the hot list looks at", minimum=1, domain="probes"
    )
    probes_requested_days: int | None = var(
        "PROBES_REQUESTED_DAYS",
        None,
        "days a request keeps a probe on the hot list (default: the hot window)",
        minimum=1,
        domain="probes",
    )
    probes_new_days: int = var(
        "PROBES_NEW_DAYS", 14, "days a probe new to the catalogue stays on the hot list", minimum=1, domain="probes"
    )
    probes_claim_timeout_minutes: int = var(
        "PROBES_CLAIM_TIMEOUT_MINUTES",
        60,
        "a claimed request older than this is answered FAILED",
        minimum=1,
        domain="probes",
    )
    probes_top_n: int = var("PROBES_TOP_N", 20, "probes listed by popularity", minimum=1, domain="probes")
    probes_sample_days: int = var(
        "PROBES_SAMPLE_DAYS", 28, "days of telemetry a build reads", minimum=1, domain="probes"
    )
    probes_histogram_buckets: int = var(
        "PROBES_HISTOGRAM_BUCKETS", 20, "histogram buckets of a build", minimum=1, domain="probes"
    )
    probes_requests_per_tick: int = var(
        "PROBES_REQUESTS_PER_TICK", 100, "requests the sensor claims per tick", minimum=1, domain="probes"
    )
    # queries
    metrics_api_token: str | None = var(
        "METRICS_API_TOKEN", None, "bearer token of the REST API and dashboard", secret=True, domain="queries"
    )
    query_max_rows: int = var(
        "METRICS_QUERY_MAX_ROWS", 1_000_000, "a result with more rows fails", minimum=1, domain="queries"
    )
    query_max_result_bytes: int = var(
        "METRICS_QUERY_MAX_RESULT_BYTES", 512 * 1024 * 1024, "a larger result fails", minimum=1, domain="queries"
    )
    query_timeout_s: float = var(
        "METRICS_QUERY_TIMEOUT_S", 300.0, "seconds before a query is stopped and FAILED", minimum=1e-9, domain="queries"
    )
    query_memory_limit: str = var(
        "METRICS_QUERY_MEMORY_LIMIT", "1GB", "DuckDB memory_limit of a query's session", domain="queries"
    )
    query_threads: int = var(
        "METRICS_QUERY_THREADS", 2, "DuckDB threads of a query's session", minimum=1, domain="queries"
    )
    query_max_temp_size: str = var(
        "METRICS_QUERY_MAX_TEMP_SIZE", "5GB", "most a query's session may spill", domain="queries"
    )
    query_athena_work_group: str = var(
        "METRICS_QUERY_ATHENA_WORK_GROUP", "metrics-adhoc", "Athena work group of ad hoc queries", domain="queries"
    )
    query_sensor_interval_s: int = var(
        "METRICS_QUERY_SENSOR_INTERVAL_S", 2, "seconds between query sensor ticks", minimum=1, domain="queries"
    )
    query_purge_cron: str = var(
        "METRICS_QUERY_PURGE_CRON", "*/5 * * * *", "when expired queries are purged", domain="queries"
    )

    # derived values --------------------------------------------------------------------------
    @property
    def metrics_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def region(self) -> str:
        return self.aws_region or self.aws_default_region or "us-east-1"


def declared() -> list[Var]:
    """Every declared variable."""
    return [v for v in vars(Settings).values() if isinstance(v, Var)]


def default(name: str) -> Any:
    """The declared default of the variable ``name`` (for messages and docs: one place says it)."""
    for v in declared():
        if v.env == name:
            return v.default
    raise KeyError(name)


def current(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings as the environment says now (``environ`` for tests). Each value is
    parsed when first read from the returned object."""
    return Settings(dict(os.environ if environ is None else environ))


# -- the values most modules need, as functions (each reads the environment now) -------------
def deployment() -> str:
    return current().deployment


def metrics_home() -> Path:
    return current().metrics_home


def warehouse_url() -> str:
    """The warehouse URL: ``METRICS_WAREHOUSE_URL``, else a SQLite file under ``METRICS_HOME``."""
    now = current()
    if now.warehouse_url:
        return now.warehouse_url
    home = now.metrics_home
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'warehouse.sqlite'}"


def object_store_dir() -> Path:
    now = current()
    return (now.object_store_dir or now.metrics_home / "objects").expanduser().resolve()


def spool_dir() -> Path:
    now = current()
    return (now.spool_dir or now.metrics_home / "spool").expanduser().resolve()


def duckdb_path() -> str:
    """DuckDB's own working database for the local query engine (``:memory:`` allowed)."""
    return current().duckdb_path


def aws_region() -> str:
    return current().region
