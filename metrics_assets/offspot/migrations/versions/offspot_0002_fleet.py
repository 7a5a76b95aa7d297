"""offspot: a fleet of boxes. ``box_id`` on both tables, and ``offspot_fleet_kpis``.

Every existing row belongs to the single box of the single-box configuration, ``default``.
The natural keys gain ``box_id``; ``offspot_fleet_kpis`` holds the same KPIs summed over every
box (one row per KPI and period, like ``offspot_kpis`` without ``box_id``, ``kpi_value``
shaped as the box's), with ``boxes``, the number of boxes that have records in the period,
and on uptime rows (2004) ``per_box_uptime``, JSON ``[{"box", "nbMinutesOn", "lastSeen"}]``.

Revision ID: offspot_0002
Revises: offspot_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "offspot_0002"
down_revision = "offspot_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter constraints in place (it copies the table); PostgreSQL alters.
    with op.batch_alter_table("offspot_indicator_records") as batch:
        batch.add_column(sa.Column("box_id", sa.Text, nullable=False, server_default="default"))
        batch.drop_constraint("uq_offspot_indicator_records", type_="unique")
        batch.create_unique_constraint(
            "uq_offspot_indicator_records", ["box_id", "indicator_id", "period_start", "dimension"]
        )
    with op.batch_alter_table("offspot_kpis") as batch:
        batch.add_column(sa.Column("box_id", sa.Text, nullable=False, server_default="default"))
        batch.drop_constraint("uq_offspot_kpis", type_="unique")
        batch.create_unique_constraint("uq_offspot_kpis", ["box_id", "kpi_id", "agg_kind", "agg_value"])
    op.create_table(
        "offspot_fleet_kpis",
        sa.Column("kpi_id", sa.Integer, nullable=False),
        sa.Column("kpi_name", sa.Text, nullable=False),
        sa.Column("agg_kind", sa.String(1), nullable=False),
        sa.Column("agg_value", sa.Text, nullable=False),
        sa.Column("kpi_value", sa.Text, nullable=False),
        sa.Column("boxes", sa.Integer, nullable=False),
        sa.Column("per_box_uptime", sa.Text, nullable=True),
        sa.UniqueConstraint("kpi_id", "agg_kind", "agg_value", name="uq_offspot_fleet_kpis"),
    )


def downgrade() -> None:
    op.drop_table("offspot_fleet_kpis")
    with op.batch_alter_table("offspot_kpis") as batch:
        batch.drop_constraint("uq_offspot_kpis", type_="unique")
        batch.create_unique_constraint("uq_offspot_kpis", ["kpi_id", "agg_kind", "agg_value"])
        batch.drop_column("box_id")
    with op.batch_alter_table("offspot_indicator_records") as batch:
        batch.drop_constraint("uq_offspot_indicator_records", type_="unique")
        batch.create_unique_constraint("uq_offspot_indicator_records", ["indicator_id", "period_start", "dimension"])
        batch.drop_column("box_id")
