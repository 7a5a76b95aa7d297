"""offspot: hourly indicator records and D/W/M/Y KPI values.

Revision ID: offspot_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "offspot_0001"
down_revision = None
branch_labels = ("offspot",)
depends_on = "foundation_0001"


def upgrade() -> None:
    # One row per (indicator, hour, dimension); dimension is '' for indicators without one.
    op.create_table(
        "offspot_indicator_records",
        sa.Column("indicator_id", sa.Integer, nullable=False),
        sa.Column("indicator_name", sa.Text, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dimension", sa.Text, nullable=False, server_default=""),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("indicator_id", "period_start", "dimension", name="uq_offspot_indicator_records"),
    )
    op.create_index("ix_offspot_indicator_records_period", "offspot_indicator_records", ["period_start"])
    # One row per (KPI, aggregation kind D/W/M/Y, period label); kpi_value is JSON text.
    op.create_table(
        "offspot_kpis",
        sa.Column("kpi_id", sa.Integer, nullable=False),
        sa.Column("kpi_name", sa.Text, nullable=False),
        sa.Column("agg_kind", sa.String(1), nullable=False),
        sa.Column("agg_value", sa.Text, nullable=False),
        sa.Column("kpi_value", sa.Text, nullable=False),
        sa.UniqueConstraint("kpi_id", "agg_kind", "agg_value", name="uq_offspot_kpis"),
    )


def downgrade() -> None:
    op.drop_table("offspot_kpis")
    op.drop_index("ix_offspot_indicator_records_period", table_name="offspot_indicator_records")
    op.drop_table("offspot_indicator_records")
