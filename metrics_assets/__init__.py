"""metrics_assets: a Dagster code location that turns raw usage data into metrics tables."""
