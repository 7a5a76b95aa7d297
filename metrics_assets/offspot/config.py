"""The offspot domain's settings, read in one place and at call time.

* ``OFFSPOT_LOG_DIR``: where the box's Caddy logs are. A folder (default
  ``$METRICS_HOME/offspot/logs``) or an object-store prefix ``s3://bucket/prefix``, read
  through the ``object_store`` resource (a local folder of buckets in the local deployment).
* ``OFFSPOT_PACKAGES_FILE``: the box's ``packages.yaml`` (default
  ``$METRICS_HOME/offspot/packages.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metrics_assets.settings import env, metrics_home


@dataclass(frozen=True)
class LogLocation:
    """A plain folder (``directory``) or an object-store prefix (``bucket`` + ``prefix``)."""

    directory: Path | None = None
    bucket: str | None = None
    prefix: str = ""

    def __str__(self) -> str:
        if self.directory is not None:
            return str(self.directory)
        return f"s3://{self.bucket}/{self.prefix}"


def log_location() -> LogLocation:
    raw = env("OFFSPOT_LOG_DIR") or str(metrics_home() / "offspot" / "logs")
    if raw.startswith("s3://"):
        bucket, _, prefix = raw[len("s3://"):].partition("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return LogLocation(bucket=bucket, prefix=prefix)
    return LogLocation(directory=Path(raw).expanduser().resolve())


def packages_file() -> Path:
    return Path(env("OFFSPOT_PACKAGES_FILE") or metrics_home() / "offspot" / "packages.yaml").expanduser().resolve()
