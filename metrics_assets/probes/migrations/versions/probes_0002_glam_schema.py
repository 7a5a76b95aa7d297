"""probes: GLAM's real tables as the local stand-in, the catalogue asset's table, NO_DATA.

* The stand-ins of revision 0001 were modelled on a description of GLAM, not on its code.
  When the GLAM tables live in the warehouse (``GLAM_DATABASE_URL`` unset: local runs, the
  demo), they now have GLAM's own DDL (:mod:`metrics_assets.probes.glam_schema`):
  ``glam_usage_instrumentation`` loses the ``timestamp`` index GLAM does not have and takes
  GLAM's column types; ``glam_probe`` and the ``glam_*_aggregation`` tables (with their
  materialized views on PostgreSQL) are created; the stand-in ``glam_probes`` goes.
  Tables that already exist with GLAM's shape are left alone.
* ``glam_probe_catalogue``: the catalogue asset's table (GLAM's ``glam_probe`` plus the
  probe-info JSON of the Glean products). ``product_releases`` becomes the table of the
  asset of that name (product-details JSON); its columns are unchanged.
* ``probe_build_requests`` gains the final status ``NO_DATA``.
* ``probe_views_daily`` gains ``tracked_events`` (events with a tracking id).

Revision ID: probes_0002
Revises: probes_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from metrics_assets.probes.glam_schema import create_glam_tables

revision = "probes_0002"
down_revision = "probes_0001"
branch_labels = None
depends_on = None

STATUSES = "status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'NO_DATA')"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    pg = bind.dialect.name == "postgresql"
    if "glam_usage_instrumentation" in existing:
        indexes = {i["name"] for i in inspector.get_indexes("glam_usage_instrumentation")}
        if "ix_glam_usage_instrumentation_timestamp" in indexes:  # revision 0001's stand-in
            op.drop_index("ix_glam_usage_instrumentation_timestamp", "glam_usage_instrumentation")
            if pg:
                op.execute("UPDATE glam_usage_instrumentation SET tracking_id = '' WHERE tracking_id IS NULL")
                op.execute("UPDATE glam_usage_instrumentation SET probe_name = '' WHERE probe_name IS NULL")
                op.execute(
                    "ALTER TABLE glam_usage_instrumentation "
                    "ALTER COLUMN action_type TYPE varchar(100), "
                    "ALTER COLUMN tracking_id TYPE varchar(500), ALTER COLUMN tracking_id SET NOT NULL, "
                    "ALTER COLUMN probe_name TYPE varchar(100), ALTER COLUMN probe_name SET NOT NULL, "
                    "ALTER COLUMN context DROP NOT NULL"
                )
    if "glam_probes" in existing:
        op.drop_table("glam_probes")
    create_glam_tables(bind)

    op.create_table(
        "glam_probe_catalogue",
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("metric_type", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Date),
        sa.UniqueConstraint("product", "probe_name", name="uq_glam_probe_catalogue"),
    )
    # Events with a tracking id, so that any window's tracked share is a sum.
    op.add_column("probe_views_daily", sa.Column("tracked_events", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("probe_build_requests", recreate="auto") as batch:
        batch.drop_constraint("ck_probe_build_requests_status", type_="check")
        batch.create_check_constraint("ck_probe_build_requests_status", STATUSES)


def downgrade() -> None:
    op.drop_column("probe_views_daily", "tracked_events")
    op.drop_table("glam_probe_catalogue")
