"""Every environment variable the code location reads, in one place.

Defaults work locally with nothing but Python: everything lives under ``METRICS_HOME``
(``./.metrics_home`` by default). Production sets ``METRICS_DEPLOYMENT=production`` and the
AWS variables listed in the README.

Values are read when called, not at import, so tests and the demo can change the
environment and build fresh resources.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCAL = "local"
PRODUCTION = "production"
DEPLOYMENTS = (LOCAL, PRODUCTION)


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong. The message says which variable to fix."""


def env(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when it is unset or blank."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def deployment() -> str:
    value = (env("METRICS_DEPLOYMENT", LOCAL) or LOCAL).lower()
    if value not in DEPLOYMENTS:
        raise ConfigurationError(
            f"METRICS_DEPLOYMENT={value!r} is not one of {', '.join(DEPLOYMENTS)}."
        )
    return value


def metrics_home() -> Path:
    return Path(env("METRICS_HOME", "./.metrics_home")).expanduser().resolve()


def warehouse_url() -> str:
    url = env("METRICS_WAREHOUSE_URL")
    if url:
        return url
    home = metrics_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'warehouse.sqlite'}"


def object_store_dir() -> Path:
    return Path(env("METRICS_OBJECT_STORE_DIR") or metrics_home() / "objects").expanduser().resolve()


def spool_dir() -> Path:
    return Path(env("METRICS_SPOOL_DIR") or metrics_home() / "spool").expanduser().resolve()


def duckdb_path() -> str:
    """DuckDB's own working database for the local query engine (``:memory:`` allowed)."""
    return env("METRICS_DUCKDB_PATH", ":memory:") or ":memory:"


def aws_region() -> str:
    return env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1"
