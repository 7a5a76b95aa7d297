"""Which tables a parsed statement really reads, resolved by scope as the engines resolve them.

A CTE shadows a table's name only where its ``WITH`` is visible (its own scope and the scopes
below; a non-recursive CTE does not see itself), so a reference is a real table unless the
scope it sits in resolves it to a CTE of that exact name. The ad hoc query validation and the
local "bytes scanned" figure both rely on this one rule.

No Dagster here, so the CLI can import it.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope


def is_cte_reference(table: exp.Table, scope: Scope) -> bool:
    """Whether ``table``, seen from ``scope``, names a CTE rather than a real table."""
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return False
    source = scope.sources.get(table.alias_or_name)
    if not (isinstance(source, Scope) and source.is_cte):
        return False
    # The CTE's own name, as declared in a WITH visible here (sqlglot resolves by exact name).
    cte = source.expression.find_ancestor(exp.CTE)
    return cte is not None and cte.alias == table.name


def real_tables(tree: exp.Expr) -> frozenset[str]:
    """The names of the real tables ``tree`` reads (CTE references left out)."""
    return frozenset(
        table.name for scope in traverse_scope(tree) for table in scope.tables if not is_cte_reference(table, scope)
    )
