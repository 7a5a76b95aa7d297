"""Checks of how a domain is built (issue 15), shared by the domains' ``test_structure.py``:
every table its migrations create is named by one of its assets (``dagster/table_name``),
every asset is declared the same way, and only the modules that declare Dagster definitions
import Dagster (never its private modules)."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

#: the modules that declare Dagster definitions; every other module is logic
DAGSTER_MODULES = {"__init__.py", "assets.py", "automation.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def domain_tables(warehouse, names: set[str]) -> set[str]:
    """The tables of ``names`` that a migrated warehouse holds (read back, not assumed)."""
    return set(sa.inspect(warehouse.engine).get_table_names()) & names


def table_owners(defs: dg.Definitions) -> dict[str, str]:
    """``{table: asset key}`` over every spec of ``defs`` (assets and external specs)."""
    specs = [s for a in defs.assets or [] for s in (a.specs if isinstance(a, dg.AssetsDefinition) else [a])]
    return {s.metadata.get("dagster/table_name"): s.key.to_user_string() for s in specs}


def declaration_problems(defs: dg.Definitions, group: str) -> list[str]:
    """What is not declared the house way: the key is the function's name, and each asset has
    a description, the domain's group, kinds, owners and a table name."""
    problems = []
    for a in defs.assets or []:
        specs = a.specs if isinstance(a, dg.AssetsDefinition) else [a]
        for spec in specs:
            key = spec.key.to_user_string()
            if isinstance(a, dg.AssetsDefinition) and len(specs) == 1:
                fn = a.op.compute_fn.decorated_fn.__name__
                if key != fn:
                    problems.append(f"{key}: key is not the function's name {fn!r}")
            if not (spec.description or "").strip():
                problems.append(f"{key}: no description")
            if spec.group_name != group:
                problems.append(f"{key}: group {spec.group_name!r}")
            if not spec.kinds:
                problems.append(f"{key}: no kinds")
            if spec.owners != ["team:metrics"]:
                problems.append(f"{key}: owners {spec.owners!r}")
            if not spec.metadata.get("dagster/table_name"):
                problems.append(f"{key}: no dagster/table_name")
    return problems


def module_problems(domain: Path, dagster_modules: set[str] = DAGSTER_MODULES) -> list[str]:
    """Private Dagster imports anywhere; Dagster outside the modules that declare definitions;
    hand-made DuckDB sessions or SQL escapers."""
    problems = []
    for path in sorted(domain.glob("*.py")):
        found = imports(path)
        text = path.read_text(encoding="utf-8")
        if any(n.startswith("dagster._") for n in found):
            problems.append(f"{path.name}: private Dagster import")
        if "duckdb.connect(" in text or "SET TimeZone" in text:
            problems.append(f"{path.name}: a DuckDB session not from open_session")
        if 'replace("\'", "\'\'")' in text:
            problems.append(f"{path.name}: a hand-written SQL escaper")
        if path.name not in dagster_modules and any(n == "dagster" or n.startswith("dagster.") for n in found):
            problems.append(f"{path.name}: imports Dagster at module level but is a logic module")
    return problems
