"""The storage domain's settings, read in one place, when called (never at import).

* ``STORAGE_BUCKETS``: the metered buckets, comma-separated, each optionally with a prefix
  (``platform-uploads,platform-data/scenes/``). Objects anywhere else are never metered.
  Locally it defaults to the demo's buckets; in production it must be set.
* ``STORAGE_RULES_FILE``: the attribution rules (YAML); default: ``rules.yaml`` in this package.
* ``STORAGE_INVENTORY``: optional, comma-separated ``s3://<destination-bucket>/<prefix>/<source-bucket>/<config-ID>``
  (or ``source-bucket=s3://...``): the S3 Inventory reports that replace the listing of those
  metered buckets (see :mod:`metrics_assets.storage.inventory`). Unset: every bucket is listed.
* ``STORAGE_NOTIFICATION_DELAY_SECONDS``: how long after a change S3 may still be sending its
  notification (S3: "typically seconds, sometimes a minute or longer"); the reconciliation
  stays pending until the sensor has read the queue empty this long after the listing.
  Default 300.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from metrics_assets import settings
from metrics_assets.settings import ConfigurationError
from metrics_assets.storage.rules import Rule, load_rules

DEFAULT_RULES_FILE = Path(__file__).with_name("rules.yaml")
LOCAL_DEFAULT_BUCKETS = "platform-uploads,platform-scenes"


@dataclass(frozen=True)
class Scope:
    """One metered place: a bucket and a key prefix ('' = the whole bucket)."""

    bucket: str
    prefix: str = ""


def parse_buckets(value: str) -> list[Scope]:
    scopes: list[Scope] = []
    for item in value.split(","):
        item = item.strip().removeprefix("s3://")
        if not item:
            continue
        bucket, _, prefix = item.partition("/")
        if not bucket:
            raise ConfigurationError(f"STORAGE_BUCKETS: {item!r} has no bucket name.")
        scopes.append(Scope(bucket, prefix))
    if not scopes:
        raise ConfigurationError("STORAGE_BUCKETS names no bucket: set it to 'bucket[/prefix],...'.")
    # A prefix inside another metered prefix of the same bucket would be listed twice.
    for i, a in enumerate(scopes):
        for b in scopes[i + 1 :]:
            if a.bucket == b.bucket and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)):
                raise ConfigurationError(
                    f"STORAGE_BUCKETS: {a.bucket}/{a.prefix} overlaps {b.bucket}/{b.prefix}; list each place once."
                )
    return scopes


def buckets() -> list[Scope]:
    now = settings.current()
    value = now.storage_buckets
    if value is None:
        if now.deployment == settings.PRODUCTION:
            raise ConfigurationError("STORAGE_BUCKETS must be set: the metered buckets, 'bucket[/prefix],...'.")
        value = LOCAL_DEFAULT_BUCKETS
    return parse_buckets(value)


def rules_file() -> Path:
    return (settings.current().storage_rules_file or DEFAULT_RULES_FILE).expanduser()


def rules() -> list[Rule]:
    return load_rules(rules_file())


def notification_delay() -> timedelta:
    """``STORAGE_NOTIFICATION_DELAY_SECONDS`` (0 to 86,400; default 300)."""
    return timedelta(seconds=settings.current().storage_notification_delay_seconds)


def inventories():
    from metrics_assets.storage.inventory import parse_setting

    return parse_setting(settings.current().storage_inventory)
