"""The code location's lake catalog, from every domain's declaration (``LAKE_TABLES``).

``definitions.py`` builds the resources with it; an engine built without a catalog (tests,
benchmarks) and the queries domain's submit-time validation, which runs without resources,
use it too. The list of declaring domains is here, once: a domain that adds lake tables adds
its ``LAKE_TABLES`` below.
"""

from __future__ import annotations

import functools

from metrics_assets.resources.lake import LakeCatalog, LakeTable


def declarations() -> list[tuple[LakeTable, ...]]:
    """Each domain's ``LAKE_TABLES`` (imported here, when first asked for)."""
    from metrics_assets.events import LAKE_TABLES as EVENTS
    from metrics_assets.probes import LAKE_TABLES as PROBES

    return [EVENTS, PROBES]


@functools.cache
def code_location_catalog() -> LakeCatalog:
    return LakeCatalog.from_declarations(declarations())
