"""storage: object versions, owner in the natural key, noncurrent bytes, ingestion watermark.

* ``storage_object_events.version_id`` and ``storage_snapshot_objects.version_id``: live usage
  is keyed by (bucket, key, version id); ``''`` for a bucket without versioning.
* ``usage_data`` and ``usage_live``: the natural key gains ``owner`` (one object id claimed by
  two owners is two rows, each with its own bytes); ``usage_data.noncurrent_bytes`` says how
  many of ``usage_amount`` are noncurrent versions.
* ``storage_snapshot_runs``: where the snapshot came from (listing or inventory), how many
  object ids two owners claim, and the reconciliation's state (pending until the sensor has
  ingested everything sent before the listing).
* ``storage_ingest_state``: when the sensor last emptied the queue (the watermark the
  reconciliation waits for).

Owner is nullable (unattributed bytes), so the unique keys are unique indexes over
``coalesce(owner, '')``: two NULL owners are the same owner here, on PostgreSQL and SQLite.

Revision ID: storage_0002
Revises: storage_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "storage_0002"
down_revision = "storage_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("storage_object_events") as batch:
        batch.add_column(sa.Column("version_id", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("storage_snapshot_objects") as batch:
        batch.add_column(sa.Column("version_id", sa.Text, nullable=False, server_default=""))
        batch.drop_constraint("uq_storage_snapshot_objects", type_="unique")
        batch.create_unique_constraint("uq_storage_snapshot_objects", ["snapshot_date", "bucket", "key", "version_id"])
    with op.batch_alter_table("usage_data") as batch:
        batch.add_column(sa.Column("noncurrent_bytes", sa.BigInteger, nullable=False, server_default="0"))
        batch.drop_constraint("uq_usage_data", type_="unique")
    op.create_index(
        "uq_usage_data",
        "usage_data",
        ["snapshot_date", "usage_type", "metered_object_type", "object_id", sa.text("coalesce(owner, '')")],
        unique=True,
    )
    with op.batch_alter_table("usage_live") as batch:
        batch.drop_constraint("uq_usage_live", type_="unique")
    op.create_index(
        "uq_usage_live",
        "usage_live",
        ["usage_type", "metered_object_type", "object_id", sa.text("coalesce(owner, '')")],
        unique=True,
    )
    with op.batch_alter_table("storage_snapshot_runs") as batch:
        batch.add_column(sa.Column("source", sa.Text, nullable=False, server_default="listing"))
        batch.add_column(sa.Column("conflicting_objects", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("reconciliation", sa.Text, nullable=False, server_default="unchecked"))
    op.create_table(
        "storage_ingest_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("storage_ingest_state")
    with op.batch_alter_table("storage_snapshot_runs") as batch:
        for column in ("reconciliation", "conflicting_objects", "source"):
            batch.drop_column(column)
    op.drop_index("uq_usage_live", "usage_live")
    with op.batch_alter_table("usage_live") as batch:
        batch.create_unique_constraint("uq_usage_live", ["usage_type", "metered_object_type", "object_id"])
    op.drop_index("uq_usage_data", "usage_data")
    with op.batch_alter_table("usage_data") as batch:
        batch.drop_column("noncurrent_bytes")
        batch.create_unique_constraint(
            "uq_usage_data", ["snapshot_date", "usage_type", "metered_object_type", "object_id"]
        )
    with op.batch_alter_table("storage_snapshot_objects") as batch:
        batch.drop_constraint("uq_storage_snapshot_objects", type_="unique")
        batch.drop_column("version_id")
        batch.create_unique_constraint("uq_storage_snapshot_objects", ["snapshot_date", "bucket", "key"])
    with op.batch_alter_table("storage_object_events") as batch:
        batch.drop_column("version_id")
