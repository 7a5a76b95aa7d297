"""Read-only pictures of the warehouse: the offspot box's KPI API and one dashboard page per
domain, served by ``metrics-assets dashboard`` (see :mod:`metrics_assets.dashboard.app`).

Nothing here writes: every module reads warehouse tables (and, for "last materialized", the
Dagster instance's event log). No Dagster definitions live here.
"""
