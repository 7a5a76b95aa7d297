"""storage: usage snapshots, per-key listings, S3 object events, live usage, billing.

Revision ID: storage_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "storage_0001"
down_revision = None
branch_labels = ("storage",)
depends_on = "foundation_0001"


def upgrade() -> None:
    # The daily snapshot, aggregated per metered object (the billing input).
    op.create_table(
        "usage_data",
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("usage_type", sa.Text, nullable=False),
        sa.Column("metered_object_type", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("object_location", sa.Text),
        sa.Column("usage_amount", sa.BigInteger, nullable=False),
        sa.Column("object_count", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("snapshot_date", "usage_type", "metered_object_type", "object_id", name="uq_usage_data"),
    )
    op.create_index("ix_usage_data_owner", "usage_data", ["owner", "snapshot_date"])
    # One row per snapshot: when its listing was taken (the time live usage is compared at).
    op.create_table(
        "storage_snapshot_runs",
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("keys_listed", sa.BigInteger, nullable=False),
        sa.Column("bytes_listed", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("snapshot_date", name="uq_storage_snapshot_runs"),
    )
    # The per-key listing of recent snapshots: the starting point events are applied to.
    op.create_table(
        "storage_snapshot_objects",
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("bucket", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("snapshot_date", "bucket", "key", name="uq_storage_snapshot_objects"),
    )
    op.create_table(
        "storage_object_events",
        sa.Column("bucket", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("event_name", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("sequencer", sa.Text, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("bucket", "key", "sequencer", name="uq_storage_object_events"),
    )
    op.create_index("ix_storage_object_events_time", "storage_object_events", ["event_time"])
    op.create_table(
        "storage_dead_letters",
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("record_index", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_id", "record_index", name="uq_storage_dead_letters"),
    )
    op.create_table(
        "usage_live",
        sa.Column("usage_type", sa.Text, nullable=False),
        sa.Column("metered_object_type", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("usage_amount", sa.BigInteger, nullable=False),
        sa.Column("object_count", sa.BigInteger, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("usage_type", "metered_object_type", "object_id", name="uq_usage_live"),
    )
    op.create_table(
        "storage_billing_monthly",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("byte_days", sa.BigInteger, nullable=False),
        sa.Column("gb_days", sa.Float, nullable=False),
        sa.Column("days_measured", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("month", "owner", name="uq_storage_billing_monthly"),
    )


def downgrade() -> None:
    for table in (
        "storage_billing_monthly",
        "usage_live",
        "storage_dead_letters",
        "storage_object_events",
        "storage_snapshot_objects",
        "storage_snapshot_runs",
        "usage_data",
    ):
        op.drop_table(table)
