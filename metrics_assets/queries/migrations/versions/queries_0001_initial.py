"""queries: the request table of ad hoc lake queries and their paged results.

Revision ID: queries_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "queries_0001"
down_revision = None
branch_labels = ("queries",)
depends_on = "foundation_0001"


def upgrade() -> None:
    # One row per submitted query. The natural key is the query id (the primary key).
    # result_columns (JSON: [{"name", "type"}]) and run_id (the Dagster run that executed it)
    # are additions to the columns the issue names.
    op.create_table(
        "historical_queries",
        sa.Column("query_id", sa.String(36), nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("retention_minutes", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("bytes_scanned", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("result_columns", sa.Text),
        sa.Column("run_id", sa.String(64)),
        sa.PrimaryKeyConstraint("query_id", name="pk_historical_queries"),
    )
    op.create_index("ix_historical_queries_status", "historical_queries", ["status", "submitted_at"])
    # One row per result row; (query_id, row_number) is the natural key and the keyset that
    # paging walks. "row" is the row as a JSON object (text).
    op.create_table(
        "historical_query_results",
        sa.Column("query_id", sa.String(36), nullable=False),
        sa.Column("row_number", sa.BigInteger, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("query_id", "row_number", name="pk_historical_query_results"),
    )


def downgrade() -> None:
    op.drop_table("historical_query_results")
    op.drop_index("ix_historical_queries_status", table_name="historical_queries")
    op.drop_table("historical_queries")
