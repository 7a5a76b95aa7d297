"""Infrastructure roles, each an interface with one implementation per deployment.

| role (resource key)  | local (default)                  | production                        |
|----------------------|----------------------------------|-----------------------------------|
| ``warehouse``        | SQLite file or PostgreSQL URL     | PostgreSQL                        |
| ``object_store``     | folder, first level = buckets     | S3 (dagster-aws ``S3Resource``)   |
| ``query_engine``     | DuckDB over the local lake        | Athena (pyathena)                 |
| ``notification_queue`` | spool folder, a file a message  | SQS                               |

``METRICS_DEPLOYMENT`` picks the column; assets only ever see the role.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from metrics_assets import settings

if TYPE_CHECKING:
    from metrics_assets.resources.lake import LakeTable
    from metrics_assets.resources.warehouse import Warehouse

#: Each role's classes, imported on first use: ``metrics_assets.resources.sqltext`` and
#: ``metrics_assets.sql_access`` (the CLI's Dagster-free calls) must not pull in Dagster, and
#: dagster-aws costs ~0.6 s CPU to import.
_EXPORTS = {
    "NotificationQueue": "notification_queue",
    "QueueMessage": "notification_queue",
    "SpoolNotificationQueue": "notification_queue",
    "SQSNotificationQueue": "notification_queue",
    "LocalObjectStore": "object_store",
    "ObjectInfo": "object_store",
    "ObjectStore": "object_store",
    "S3ObjectStore": "object_store_s3",
    "AthenaQueryEngine": "query_engine",
    "DuckDBQueryEngine": "query_engine",
    "QueryEngine": "query_engine",
    "QueryFailed": "query_engine",
    "QueryResult": "query_engine",
    "Warehouse": "warehouse",
}

__all__ = [
    "AthenaQueryEngine",
    "DuckDBQueryEngine",
    "LocalObjectStore",
    "NotificationQueue",
    "ObjectInfo",
    "ObjectStore",
    "QueryEngine",
    "QueryFailed",
    "QueryResult",
    "QueueMessage",
    "S3ObjectStore",
    "SQSNotificationQueue",
    "SpoolNotificationQueue",
    "Warehouse",
    "build_resources",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _from_env(name: str) -> Any:
    """``EnvVar(name)`` when the declared variable is set (resolved at run time), else None."""
    from dagster import EnvVar

    declared = {v.env: v for v in settings.declared()}[name]
    return EnvVar(name) if getattr(settings.current(), declared.attribute) is not None else None


def _aws_credentials() -> dict[str, Any]:
    from dagster import EnvVar

    if settings.current().aws_access_key_id is None:
        return {}  # boto3's own chain: instance role, profile, web identity...
    return {
        "aws_access_key_id": EnvVar("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": EnvVar("AWS_SECRET_ACCESS_KEY"),
    }


def _warehouse() -> Warehouse:
    from dagster import EnvVar

    from metrics_assets.resources.warehouse import Warehouse

    if settings.current().warehouse_url:
        return Warehouse(url=EnvVar("METRICS_WAREHOUSE_URL"))
    if settings.deployment() == settings.PRODUCTION:
        # Resolved at run time: a run fails with "METRICS_WAREHOUSE_URL is not set".
        return Warehouse(url=EnvVar("METRICS_WAREHOUSE_URL"))
    return Warehouse(url=settings.warehouse_url())


def build_resources(
    deployment: str | None = None, *, lake_tables: Iterable[Iterable[LakeTable]] | None = None
) -> dict[str, Any]:
    """The resources for a deployment (default: ``METRICS_DEPLOYMENT``).

    ``lake_tables``: the domains' ``LAKE_TABLES`` declarations; the lake catalog is built
    from them, once, and handed to the query engine (None: the code location's,
    :func:`metrics_assets.lake_catalog.code_location_catalog`)."""
    from dagster import EnvVar

    from metrics_assets.resources.lake import LakeCatalog
    from metrics_assets.resources.notification_queue import (
        SpoolNotificationQueue,
        SQSNotificationQueue,
    )
    from metrics_assets.resources.object_store import LocalObjectStore
    from metrics_assets.resources.query_engine import (
        AthenaQueryEngine,
        DuckDBQueryEngine,
    )

    if lake_tables is None:
        from metrics_assets.lake_catalog import declarations

        lake_tables = declarations()
    catalog = LakeCatalog.from_declarations(lake_tables)
    deployment = deployment or settings.deployment()
    if deployment == settings.LOCAL:
        return {
            "warehouse": _warehouse(),
            "object_store": LocalObjectStore(root_dir=str(settings.object_store_dir())),
            "query_engine": DuckDBQueryEngine.with_catalog(
                catalog, object_store_dir=str(settings.object_store_dir()), database=settings.duckdb_path()
            ),
            "notification_queue": SpoolNotificationQueue(spool_dir=str(settings.spool_dir())),
        }

    from dagster_aws.s3 import S3Resource

    from metrics_assets.resources.object_store_s3 import S3ObjectStore

    region = settings.aws_region()
    endpoint = _from_env("AWS_ENDPOINT_URL")
    creds = _aws_credentials()
    s3_kwargs = {k: v for k, v in {"endpoint_url": endpoint, **creds}.items() if v is not None}
    return {
        "warehouse": _warehouse(),
        "object_store": S3ObjectStore(s3=S3Resource(region_name=region, **s3_kwargs)),
        "query_engine": AthenaQueryEngine(
            work_group=EnvVar("ATHENA_WORK_GROUP"),
            output_location=EnvVar("ATHENA_OUTPUT_LOCATION"),
            database=EnvVar("ATHENA_DATABASE"),
            region_name=region,
            endpoint_url=_from_env("ATHENA_ENDPOINT_URL") or endpoint,
            **creds,
        ),
        "notification_queue": SQSNotificationQueue(
            queue_url=EnvVar("S3_NOTIFICATIONS_QUEUE_URL"),
            region_name=region,
            endpoint_url=_from_env("SQS_ENDPOINT_URL") or endpoint,
            **creds,
        ),
    }
