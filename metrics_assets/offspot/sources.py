"""Getting each box's log files of a window onto local disk, from a folder or an object-store
prefix: one box (``OFFSPOT_LOG_DIR``, the box ``default``) or a fleet (``OFFSPOT_FLEET_ROOT``,
one folder per box)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from metrics_assets.offspot import config
from metrics_assets.offspot.config import DEFAULT_BOX, LogLocation
from metrics_assets.offspot.indicators import AccessFile, BoxInput
from metrics_assets.offspot.logfiles import (
    PACKAGES_NAME,
    CorruptFile,
    classify,
    content_length,
    covered_from,
    files_for_window,
    truncated_last_line,
    twins,
)
from metrics_assets.offspot.packages import load_packages, parse_packages
from metrics_assets.resources import ObjectStore
from metrics_assets.settings import ConfigurationError


@dataclass
class Gathered:
    box_id: str
    location: LogLocation
    access: list[AccessFile] = field(default_factory=list)
    heartbeat: Path | None = None
    skipped_files: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)  # name left unread -> the twin read
    not_needed: int = 0  # rotated files outside the window, left unread
    recognised: int = 0  # access-log files of the folder (of any time)
    covered_from: datetime | None = None
    packages: list = field(default_factory=list)
    package_warnings: list[str] = field(default_factory=list)

    def box_input(self) -> BoxInput:
        return BoxInput(self.box_id, self.access, self.heartbeat, self.packages, self.covered_from)


class Folder:
    """One box's folder: its file names, and a local path for each (copied when remote)."""

    def __init__(
        self,
        location: LogLocation,
        object_store: ObjectStore,
        scratch: Path,
        stats: dict[str, tuple[int, float]] | None = None,
    ):
        self.location, self.store, self.scratch = location, object_store, scratch
        if stats is None:
            stats = {}
            if location.directory is not None:
                for p in location.directory.iterdir():
                    if p.is_file():
                        st = p.stat()
                        stats[p.name] = (st.st_size, st.st_mtime)
            else:
                for o in object_store.list_objects(location.bucket, location.prefix):
                    name = o.key[len(location.prefix) :]
                    if "/" not in name:
                        stats[name] = (o.size, o.last_modified.timestamp())
        #: name -> (size, modification time): what the uploads sensor compares
        self.stats = stats
        self.names = sorted(stats)

    def local(self, name: str) -> Path:
        if self.location.directory is not None:
            return self.location.directory / name
        target = self.scratch / (self.location.prefix.strip("/").replace("/", "__") or "root")
        target.mkdir(parents=True, exist_ok=True)
        return self.store.local_copy(self.location.bucket, self.location.prefix + name, target)


def box_folders(object_store: ObjectStore, scratch: Path) -> list[tuple[str, Folder]]:
    """``(box_id, folder)`` of every box configured: the fleet's box folders, or the one box."""
    root = config.fleet_root()
    if root is None:
        location = config.log_location()
        if location.directory is not None and not location.directory.is_dir():
            raise ConfigurationError(
                f"OFFSPOT_LOG_DIR: {location.directory} is not a folder; point it at the box's Caddy "
                "log folder or an s3://bucket/prefix."
            )
        return [(DEFAULT_BOX, Folder(location, object_store, scratch))]
    if root.directory is not None:
        if not root.directory.is_dir():
            raise ConfigurationError(
                f"OFFSPOT_FLEET_ROOT: {root.directory} is not a folder; point it at the folder (or "
                "s3://bucket/prefix) that holds one folder per box."
            )
        return [
            (p.name, Folder(root.child(p.name), object_store, scratch))
            for p in sorted(root.directory.iterdir())
            if p.is_dir() and config.BOX_ID_RE.match(p.name)
        ]
    by_box: dict[str, dict[str, tuple[int, float]]] = {}
    for o in object_store.list_objects(root.bucket, root.prefix):
        parts = o.key[len(root.prefix) :].split("/")
        if len(parts) == 2 and config.BOX_ID_RE.match(parts[0]) and parts[1]:
            by_box.setdefault(parts[0], {})[parts[1]] = (o.size, o.last_modified.timestamp())
    return [(box, Folder(root.child(box), object_store, scratch, stats)) for box, stats in sorted(by_box.items())]


def _packages(box_id: str, folder: Folder) -> tuple[list, list[str]]:
    if config.fleet_root() is None:
        return load_packages(config.packages_file())
    if PACKAGES_NAME not in folder.names:
        return [], [f"no {PACKAGES_NAME} in {folder.location}: its requests match no package"]
    path = folder.local(PACKAGES_NAME)
    return parse_packages(path.read_text(encoding="utf-8"), f"{box_id}/{PACKAGES_NAME}")


def gather_box(box_id: str, folder: Folder, start: datetime, end: datetime) -> Gathered:
    """The access logs (and heartbeat) that may hold lines of [start, end), as local files."""
    shown = (lambda n: n) if box_id == DEFAULT_BOX else (lambda n: f"{box_id}/{n}")
    inventory = classify(folder.names)
    gathered = Gathered(
        box_id=box_id, location=folder.location, skipped_files={shown(k): v for k, v in inventory.skipped_files.items()}
    )
    gathered.packages, gathered.package_warnings = _packages(box_id, folder)
    gathered.recognised = len(inventory.access)
    access = list(inventory.access)
    # the same rotated file plain and gzipped: read the one holding more of it (the plain one
    # on a tie: the gzip may be Caddy's compression caught half-way, or a corrupt copy)
    for plain, gz in twins(access):
        try:
            keep_gz = content_length(folder.local(gz.name), True) > content_length(folder.local(plain.name), False)
        except CorruptFile:
            keep_gz = False
        dropped, kept = (plain, gz) if keep_gz else (gz, plain)
        access.remove(dropped)
        gathered.duplicates[shown(dropped.name)] = shown(kept.name)
    chosen = files_for_window(access, start, end)
    gathered.not_needed = len(access) - len(chosen)
    gathered.covered_from = covered_from(access, chosen)
    for log in chosen:
        path = folder.local(log.name)
        try:
            cut = truncated_last_line(path, log.gzipped)
        except CorruptFile as error:
            gathered.skipped_files[shown(log.name)] = str(error)
            continue
        gathered.access.append(AccessFile(path=path, name=shown(log.name), truncated=cut))
    if inventory.heartbeat:
        gathered.heartbeat = folder.local(inventory.heartbeat)
    return gathered


def gather(object_store: ObjectStore, start: datetime, end: datetime, scratch: Path) -> list[Gathered]:
    return [gather_box(box, folder, start, end) for box, folder in box_folders(object_store, scratch)]
