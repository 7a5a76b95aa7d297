"""The box's ``packages.yaml``: which host serves which package.

Each entry of the top-level ``packages:`` list has ``kind`` (``zim``, ``files`` or ``app``),
``title`` and ``url`` (``//host/...``), and for apps an ``ident``. A ZIM package's zim name
is in its url: ``//host/viewer#<zim>`` or ``//host/content/<zim>/...``.

An entry that cannot be used (missing ``kind``/``title``/``url``, unknown kind, a zim url
without a zim name) is skipped with a warning; a file that is missing or not YAML is a
configuration error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import yaml

from metrics_assets.settings import ConfigurationError

KINDS = ("zim", "files", "app")
EDUPI = "edupi.offspot.kiwix.org"
FILE_MANAGER = "file-manager.offspot.kiwix.org"


@dataclass(frozen=True)
class Package:
    kind: str
    title: str
    host: str
    zim: str | None = None
    ident: str | None = None


def normalise_host(host: str) -> str:
    """Lower case, without port: ``Kiwix.Hotspot:80`` -> ``kiwix.hotspot``."""
    return host.strip().lower().split(":", 1)[0]


def zim_name(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.path.rstrip("/") == "/viewer" and parts.fragment:
        return unquote(parts.fragment.split("/", 1)[0]) or None
    segments = parts.path.split("/")
    if len(segments) >= 3 and segments[1] == "content" and segments[2]:
        return unquote(segments[2])
    return None


def parse_packages(text: str, source: str = "packages.yaml") -> tuple[list[Package], list[str]]:
    """The usable packages and one warning per skipped entry."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"OFFSPOT_PACKAGES_FILE {source} is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("packages"), list):
        raise ConfigurationError(f"OFFSPOT_PACKAGES_FILE {source} must have a top-level 'packages:' list.")
    packages: list[Package] = []
    warnings: list[str] = []
    for index, entry in enumerate(document["packages"]):
        if not isinstance(entry, dict):
            warnings.append(f"package #{index} is not a mapping: skipped")
            continue
        missing = [k for k in ("kind", "title", "url") if not entry.get(k)]
        if missing:
            warnings.append(
                f"package #{index} ({entry.get('title') or entry.get('url') or '?'}) "
                f"has no {', '.join(missing)}: skipped"
            )
            continue
        kind, title, url = str(entry["kind"]), str(entry["title"]), str(entry["url"])
        if kind not in KINDS:
            warnings.append(f"package #{index} ({title}) has unknown kind {kind!r}: skipped")
            continue
        host = normalise_host(urlsplit(url if "//" in url else "//" + url).netloc)
        if not host:
            warnings.append(f"package #{index} ({title}) has no host in url {url!r}: skipped")
            continue
        zim = zim_name(url) if kind == "zim" else None
        if kind == "zim" and not zim:
            warnings.append(f"package #{index} ({title}) is a zim whose url {url!r} names no zim: skipped")
            continue
        ident = str(entry["ident"]) if kind == "app" and entry.get("ident") else None
        packages.append(Package(kind=kind, title=title, host=host, zim=zim, ident=ident))
    return packages, warnings


def load_packages(path: Path) -> tuple[list[Package], list[str]]:
    if not path.is_file():
        raise ConfigurationError(f"OFFSPOT_PACKAGES_FILE: {path} does not exist; point it at the box's packages.yaml.")
    return parse_packages(path.read_text(encoding="utf-8"), str(path))


def packages_table(packages: list[tuple[str, Package]]) -> pa.Table:
    """Each box's packages (``(box_id, package)`` pairs) as a small Arrow table, joined to the
    requests in DuckDB."""
    return pa.table(
        {
            "box_id": pa.array([b for b, _ in packages], pa.string()),
            "kind": pa.array([p.kind for _, p in packages], pa.string()),
            "title": pa.array([p.title for _, p in packages], pa.string()),
            "host": pa.array([p.host for _, p in packages], pa.string()),
            "zim": pa.array([p.zim for _, p in packages], pa.string()),
            "ident": pa.array([p.ident for _, p in packages], pa.string()),
        }
    )
