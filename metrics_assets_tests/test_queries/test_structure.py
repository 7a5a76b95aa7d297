"""How the queries domain is built (issue 15): each table it holds is named by an asset:
``historical_query_results`` by the asset that writes it, ``historical_queries`` (written by
the client, CLI and REST API, not by a run) by an external AssetSpec, so the lineage starts
there; declarations are the house's; only assets.py, automation.py and __init__.py use
Dagster (the CLI's status/next/cancel and the API must start without it)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from metrics_assets import queries
from metrics_assets_tests.structure import declaration_problems, domain_tables, module_problems, table_owners


def test_every_queries_table_is_named_by_an_asset(sqlite_warehouse):
    tables = domain_tables(sqlite_warehouse, {"historical_queries", "historical_query_results"})
    assert tables == {"historical_queries", "historical_query_results"}
    owners = table_owners(queries.defs)
    assert {t: owners.get(t) for t in tables} == {
        "historical_queries": "historical_queries",
        "historical_query_results": "historical_query_results",
    }


def test_the_request_table_is_an_external_asset_upstream_of_the_results():
    from metrics_assets.definitions import defs

    graph = defs.resolve_asset_graph()  # the code location's (the domain's alone has no resources)
    requests, results = dg.AssetKey("historical_queries"), dg.AssetKey("historical_query_results")
    assert not graph.get(requests).is_materializable
    assert graph.get(results).is_materializable
    assert graph.get(results).parent_keys == {requests}


def test_every_queries_asset_is_declared_the_same_way():
    assert declaration_problems(queries.defs, "queries") == []


def test_queries_modules_keep_dagster_in_the_declaring_modules():
    assert module_problems(Path(queries.__file__).parent) == []
