"""The offspot domain's settings, read in one place and at call time.

* ``OFFSPOT_LOG_DIR``: where one box's Caddy logs are. A folder (default
  ``$METRICS_HOME/offspot/logs``) or an object-store prefix ``s3://bucket/prefix``, read
  through the ``object_store`` resource (a local folder of buckets in the local deployment).
* ``OFFSPOT_PACKAGES_FILE``: that box's ``packages.yaml`` (default
  ``$METRICS_HOME/offspot/packages.yaml``). This single box is the box ``default``.
* ``OFFSPOT_FLEET_ROOT``: a fleet instead (``s3://bucket/prefix`` or a folder): one folder per
  box, ``<box_id>/``, holding that box's logs, ``heartbeat.log`` and ``packages.yaml``. When
  set, ``OFFSPOT_LOG_DIR`` and ``OFFSPOT_PACKAGES_FILE`` are not used.
* ``OFFSPOT_LOG_PATTERN``: the names Caddy writes its access log to (its ``output file``),
  comma-separated; default ``metrics.json,access.log``. Each name ``<stem><.ext>`` also
  accepts its rotated files ``<stem>-<UTC time><.ext>`` and either with ``.gz``.
* ``OFFSPOT_PARTITIONS_START``: first hourly partition (default ``2025-01-01-00:00``; a date
  alone means its midnight UTC). Read when the definitions load.
* ``OFFSPOT_STALE_AFTER_HOURS``: a box whose newest record is more than this many hours older
  than the fleet's newest is stale (default 24).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from metrics_assets.settings import ConfigurationError, current, default

DEFAULT_BOX = "default"
DEFAULT_LOG_PATTERN = default("OFFSPOT_LOG_PATTERN")
BOX_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class LogLocation:
    """A plain folder (``directory``) or an object-store prefix (``bucket`` + ``prefix``)."""

    directory: Path | None = None
    bucket: str = ""  # with prefix, when directory is None
    prefix: str = ""

    def __str__(self) -> str:
        if self.directory is not None:
            return str(self.directory)
        return f"s3://{self.bucket}/{self.prefix}"

    def child(self, name: str) -> LogLocation:
        if self.directory is not None:
            return LogLocation(directory=self.directory / name)
        return LogLocation(bucket=self.bucket, prefix=f"{self.prefix}{name}/")


def _location(raw: str) -> LogLocation:
    if raw.startswith("s3://"):
        bucket, _, prefix = raw[len("s3://") :].partition("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return LogLocation(bucket=bucket, prefix=prefix)
    return LogLocation(directory=Path(raw).expanduser().resolve())


def log_location() -> LogLocation:
    now = current()
    return _location(now.offspot_log_dir or str(now.metrics_home / "offspot" / "logs"))


def packages_file() -> Path:
    now = current()
    return (now.offspot_packages_file or now.metrics_home / "offspot" / "packages.yaml").expanduser().resolve()


def fleet_root() -> LogLocation | None:
    raw = current().offspot_fleet_root
    return _location(raw) if raw else None


def log_names() -> list[str]:
    raw = current().offspot_log_pattern
    names = [n.strip() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if "/" in n or "*" in n or "?" in n]
    if not names or bad:
        raise ConfigurationError(
            f"OFFSPOT_LOG_PATTERN={raw!r}: give the file names Caddy writes its access log to, comma-separated "
            f"(the Caddyfile's `output file`), e.g. {DEFAULT_LOG_PATTERN!r}; rotated names follow from them."
        )
    return names


def partitions_start() -> str:
    raw = current().offspot_partitions_start
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raw += "-00:00"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}:00", raw):
        raise ConfigurationError(
            f"OFFSPOT_PARTITIONS_START={raw!r}: use YYYY-MM-DD or YYYY-MM-DD-HH:00 (UTC), e.g. 2023-06-01."
        )
    return raw


def stale_after_hours() -> int:
    return current().offspot_stale_after_hours


def settings_to_fix() -> str:
    """The settings that say where the logs are and what they are called, as a user reads them."""
    where = "OFFSPOT_FLEET_ROOT" if current().offspot_fleet_root else "OFFSPOT_LOG_DIR"
    return f"{where} and OFFSPOT_LOG_PATTERN (now {','.join(log_names())!r})"
