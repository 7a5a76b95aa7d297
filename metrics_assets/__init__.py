"""metrics_assets: a Dagster code location that turns raw usage data into metrics tables."""

import warnings

# Dagster 1.13 still labels ``BackfillPolicy`` as beta and warns once per decorated asset, in
# every process that loads the code location (the webserver, the daemon, each run worker):
# five lines each time, hundreds a day in the daemon's log. We use it on purpose (a backfill
# of a range is one run and one query), so that one notice is silenced here, once, by its exact
# text. Every other Beta/Preview/Deprecation warning still shows.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
)
