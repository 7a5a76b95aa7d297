"""Modules imported on first use, for the heavy libraries a process may not need.

``from metrics_assets.lazy import pandas as pd`` costs nothing at import time; the first
attribute access (``pd.DataFrame``) imports pandas for real (a type checker sees pandas itself). Loading the definitions (webserver, daemon, code
server, each run worker) then skips pandas (about 0.25 s of CPU) unless something uses it.
Annotations that name a lazy module must be strings (``from __future__ import annotations``).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def lazy_import(name: str) -> ModuleType:
    """``name``, loaded when first used (or the module itself if it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def is_loaded(name: str) -> bool:
    """Whether ``name`` has really been imported (not merely registered lazily)."""
    module = sys.modules.get(name)
    return module is not None and not isinstance(module, importlib.util._LazyModule)  # type: ignore[attr-defined]


if TYPE_CHECKING:
    import pandas
else:
    pandas = lazy_import("pandas")
