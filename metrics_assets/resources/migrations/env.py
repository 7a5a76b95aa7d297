"""Alembic environment for the warehouse.

Run by :func:`metrics_assets.resources.warehouse.upgrade_schema`, which hands over an open
connection. Each domain owns a branch of revisions in ``metrics_assets/<domain>/migrations/
versions`` (``branch_labels=("<domain>",)``, first revision with ``down_revision=None``); the
warehouse upgrades to ``heads``, so domains never conflict over one linear history.
"""

import sqlalchemy as sa
from alembic import context

# Not alembic's default "alembic_version": the warehouse may share a database with the Dagster
# instance's own storage, which keeps its revisions there.
VERSION_TABLE = "metrics_schema_version"

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` CLI use: open our own connection from the URL.
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic: set sqlalchemy.url (or run through metrics_assets' Warehouse).")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        context.configure(connection=connection, render_as_batch=True, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
