"""probes: popularity, sessions, release effects, the hot list, probe builds and requests.

The three GLAM source tables (``glam_usage_instrumentation``, ``glam_probes``,
``product_releases``) belong to the GLAM app in production, in the database named by
``GLAM_DATABASE_URL``. When they do not exist in the warehouse (a fresh local warehouse, the
demo, the tests, a deployment where the app writes into the warehouse), this revision creates
them with the app's layout so that everything works end to end. Existing tables are left
alone, and the downgrade never drops them.

Revision ID: probes_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "probes_0001"
down_revision = None
branch_labels = ("probes",)
depends_on = "foundation_0001"

TS = sa.DateTime(timezone=True)


def _create_sources(existing: set[str]) -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    if "glam_usage_instrumentation" not in existing:
        op.create_table(
            "glam_usage_instrumentation",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("action_type", sa.Text, nullable=False),
            sa.Column("timestamp", TS, nullable=False),
            sa.Column("context", json_type),
            sa.Column("tracking_id", sa.Text),
            sa.Column("probe_name", sa.Text),
        )
        # Every probes query reads a time range of this table.
        op.create_index("ix_glam_usage_instrumentation_timestamp", "glam_usage_instrumentation", ["timestamp"])
    if "glam_probes" not in existing:
        op.create_table(
            "glam_probes",
            sa.Column("product", sa.Text, nullable=False),
            sa.Column("probe_name", sa.Text, nullable=False),
            sa.Column("probe_type", sa.Text),
            sa.Column("description", sa.Text),
            sa.UniqueConstraint("product", "probe_name", name="uq_glam_probes"),
        )
    if "product_releases" not in existing:
        op.create_table(
            "product_releases",
            sa.Column("product", sa.Text, nullable=False),
            sa.Column("version", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("release_date", sa.Date, nullable=False),
            sa.UniqueConstraint("product", "version", "channel", name="uq_product_releases"),
        )


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    _create_sources(existing)

    op.create_table(
        "probe_views_daily",
        sa.Column("period_start", TS, nullable=False),
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("action_type", sa.Text, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("tracking_ids", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("period_start", "product", "probe_name", "action_type", name="uq_probe_views_daily"),
    )
    op.create_table(
        "probe_popularity",
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("views", sa.BigInteger, nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("previous_views", sa.BigInteger, nullable=False),
        sa.Column("previous_rank", sa.Integer),
        sa.Column("rank_change", sa.Integer),
        sa.Column("is_most_viewed", sa.Boolean, nullable=False),
        sa.Column("is_least_viewed", sa.Boolean, nullable=False),
        sa.Column("in_catalogue", sa.Boolean, nullable=False),
        sa.UniqueConstraint("product", "window_days", "probe_name", name="uq_probe_popularity"),
    )
    op.create_table(
        "usage_sessions",
        sa.Column("period_start", TS, nullable=False),
        sa.Column("tracking_id", sa.Text, nullable=False),
        sa.Column("session_start", TS, nullable=False),
        sa.Column("session_end", TS, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("distinct_probes", sa.Integer, nullable=False),
        sa.Column("entry_probe", sa.Text),
        sa.Column("exit_probe", sa.Text),
        sa.UniqueConstraint("tracking_id", "session_start", name="uq_usage_sessions"),
    )
    op.create_index("ix_usage_sessions_period_start", "usage_sessions", ["period_start"])
    op.create_table(
        "usage_sessions_daily",
        sa.Column("period_start", TS, nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("median_duration_s", sa.Float),
        sa.Column("p90_duration_s", sa.Float),
        sa.Column("avg_probes_per_session", sa.Float),
        sa.Column("median_probes_per_session", sa.Float),
        sa.Column("top_entry_probes", sa.Text),
        sa.Column("sessionized_events", sa.BigInteger, nullable=False),
        sa.Column("untracked_events", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("period_start", name="uq_usage_sessions_daily"),
    )
    op.create_table(
        "release_correlation",
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("release_date", sa.Date, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("views_before", sa.BigInteger, nullable=False),
        sa.Column("views_after", sa.BigInteger, nullable=False),
        sa.Column("daily_views_before", sa.Float, nullable=False),
        sa.Column("daily_views_after", sa.Float, nullable=False),
        sa.Column("after_before_ratio", sa.Float),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.UniqueConstraint("product", "version", "channel", "probe_name", name="uq_release_correlation"),
    )
    op.create_table(
        "probes_to_build",
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("views", sa.BigInteger, nullable=False),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("min_views", sa.Integer, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.UniqueConstraint("product", "probe_name", name="uq_probes_to_build"),
    )
    op.create_table(
        "probe_aggregates",
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("client_count", sa.BigInteger, nullable=False),
        sa.Column("p5", sa.Float),
        sa.Column("p25", sa.Float),
        sa.Column("p50", sa.Float),
        sa.Column("p75", sa.Float),
        sa.Column("p95", sa.Float),
        sa.Column("histogram", sa.Text, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.UniqueConstraint("product", "probe_name", "channel", "os", "version", name="uq_probe_aggregates"),
    )
    op.create_table(
        "probe_build_requests",
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("probe_name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
        sa.Column("requested_at", TS, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("run_id", sa.Text),
        sa.Column("error", sa.Text),
        sa.CheckConstraint(
            "status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')", name="ck_probe_build_requests_status"
        ),
    )
    op.create_index("ix_probe_build_requests_status", "probe_build_requests", ["status", "request_id"])


def downgrade() -> None:
    for name in (
        "probe_build_requests",
        "probe_aggregates",
        "probes_to_build",
        "release_correlation",
        "usage_sessions_daily",
        "usage_sessions",
        "probe_popularity",
        "probe_views_daily",
    ):
        op.drop_table(name)
