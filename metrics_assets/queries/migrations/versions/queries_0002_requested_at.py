"""queries: when the sensor asked for a run of a query (so it never asks twice).

Revision ID: queries_0002
Revises: queries_0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "queries_0002"
down_revision = "queries_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Set by historical_queries_sensor when it requests the query's run. The sensor selects
    # only QUEUED queries with no requested_at, so a query whose run never started (cancelled
    # while queued, refused by the daemon) is never selected again: it is answered FAILED by the
    # reconciliation instead, and never blocks newer queries.
    op.add_column("historical_queries", sa.Column("requested_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("historical_queries", "requested_at")
