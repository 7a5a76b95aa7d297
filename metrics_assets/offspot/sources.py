"""Getting the log files of a window onto local disk, from a folder or an object-store prefix."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from metrics_assets.offspot.config import LogLocation
from metrics_assets.offspot.indicators import AccessFile
from metrics_assets.offspot.logfiles import (
    CorruptFile,
    classify,
    files_for_window,
    truncated_last_line,
)
from metrics_assets.resources import ObjectStore
from metrics_assets.settings import ConfigurationError


@dataclass
class Gathered:
    access: list[AccessFile] = field(default_factory=list)
    heartbeat: Path | None = None
    skipped_files: dict[str, str] = field(default_factory=dict)
    not_needed: int = 0  # rotated files outside the window, left unread


def gather(location: LogLocation, object_store: ObjectStore, start: datetime, end: datetime,
           scratch: Path) -> Gathered:
    """The access logs (and heartbeat) that may hold lines of [start, end), as local files.
    Objects are copied into ``scratch`` only when the store is not local."""
    if location.directory is not None:
        if not location.directory.is_dir():
            raise ConfigurationError(
                f"OFFSPOT_LOG_DIR: {location.directory} is not a folder; point it at the box's Caddy "
                "log folder or an s3://bucket/prefix."
            )
        names = [p.name for p in location.directory.iterdir() if p.is_file()]

        def local(name: str) -> Path:
            return location.directory / name
    else:
        names = [
            o.key[len(location.prefix):]
            for o in object_store.list_objects(location.bucket, location.prefix)
            if "/" not in o.key[len(location.prefix):]
        ]

        def local(name: str) -> Path:
            return object_store.local_copy(location.bucket, location.prefix + name, scratch)

    inventory = classify(names)
    gathered = Gathered(skipped_files=dict(inventory.skipped_files))
    chosen = files_for_window(inventory.access, start, end)
    gathered.not_needed = len(inventory.access) - len(chosen)
    for log in chosen:
        path = local(log.name)
        try:
            cut = truncated_last_line(path, log.gzipped)
        except CorruptFile as error:
            gathered.skipped_files[log.name] = str(error)
            continue
        gathered.access.append(AccessFile(path=path, name=log.name, truncated=cut))
    if inventory.heartbeat:
        gathered.heartbeat = local(inventory.heartbeat)
    return gathered
