"""events: event_rollups_hourly and metrics.

Revision ID: events_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "events_0001"
down_revision = None
branch_labels = ("events",)
depends_on = "foundation_0001"


def upgrade() -> None:
    op.create_table(
        "event_rollups_hourly",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Text, nullable=False),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.Column("distinct_resources", sa.BigInteger, nullable=False),
        sa.Column("min_lag_s", sa.Float, nullable=True),
        sa.Column("max_lag_s", sa.Float, nullable=True),
        sa.UniqueConstraint(
            "period_start",
            "customer_id",
            "service",
            "event_type",
            "schema_version",
            name="uq_event_rollups_hourly_grain",
        ),
    )
    op.create_table(
        "metrics",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric_name", sa.Text, nullable=False),
        sa.Column("metric_event", sa.Text, nullable=False),
        sa.Column("requester", sa.Text, nullable=False),
        sa.Column("metric_value", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("period_start", "metric_name", "metric_event", "requester", name="uq_metrics_key"),
    )


def downgrade() -> None:
    op.drop_table("metrics")
    op.drop_table("event_rollups_hourly")
