"""The probes domain's assets: probe popularity, sessions, release effects, the hot list, and
one probe's distribution (built nightly for the hot list, or on demand)."""


from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import duckdb
import pyarrow as pa

from metrics_assets.lazy import lazy_import
from metrics_assets.probes import config, requests, telemetry
from metrics_assets.probes.source import GlamDatabase
from metrics_assets.probes.usage_sql import (
    PROBE_VIEWS_DAILY,
    UNTRACKED_DAILY,
    USAGE_SESSIONS,
)
from metrics_assets.probes.warehouse_sql import (
    PROBES_TO_BUILD,
    RELEASE_CORRELATION,
    fetch_df,
    popularity_sql,
    temp_tables,
)
from metrics_assets.resources import QueryEngine, Warehouse
from metrics_assets.resources.metadata import preview

pd = lazy_import("pandas")  # imported on first use (loading the definitions needs no pandas)

GROUP = "probes"
OWNERS = ["team:metrics"]
DAY = timedelta(days=1)

daily_partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
#: One partition per probe, ``product/probe_name``; added by the build sensors.
probe_partitions = dg.DynamicPartitionsDefinition(name="probes")

LAST_DAY_OF_VIEWS = dg.AssetDep("probe_views_daily", partition_mapping=dg.LastPartitionMapping())


# -- helpers -------------------------------------------------------------------------------
def _window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return (
        datetime.fromtimestamp(window.start.timestamp(), UTC),
        datetime.fromtimestamp(window.end.timestamp(), UTC),
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _to_date(value) -> date | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _views_as_of(warehouse: Warehouse) -> date | None:
    """PROBES_AS_OF, else the latest day in probe_views_daily."""
    return config.as_of() or _to_date(warehouse.scalar("SELECT max(period_start) FROM probe_views_daily"))


def _catalogue(glam: GlamDatabase, warehouse: Warehouse) -> pa.Table:
    return glam.read_table(warehouse, "SELECT DISTINCT product, probe_name FROM glam_probes")


CATALOGUE_COLUMNS = {"product": "text", "probe_name": "text"}


# -- probe_views_daily ---------------------------------------------------------------------
@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "duckdb"},
    description=(
        "Per UTC day, product, probe and action type (PROBE_VIEW, PROBE_SEARCH...): the events, the "
        "distinct sessions (30-minute gap rule) and the distinct tracking ids, from the GLAM usage "
        "log. The GLAM database filters the day and streams it out with COPY; DuckDB runs the "
        "set-based SQL (window functions, exact distinct counts) over those rows."
    ),
    check_specs=[dg.AssetCheckSpec(
        "counts_are_consistent", asset="probe_views_daily",
        description="On every row of the day: tracking ids <= sessions <= events.",
    )],
)
def probe_views_daily(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    start, end = _window(context)
    context.log.info(f"probe_views_daily: usage events from {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    params = {"since": start, "until": end}
    grouped = probes_glam.usage_query(warehouse, PROBE_VIEWS_DAILY, params, since=start, until=end).to_pandas()
    # Rows with no product or no probe name (or action) come back as their own groups:
    # counted here as skipped, never written.
    no_product = grouped["product"].isna() | (grouped["product"] == "")
    no_probe = ~no_product & grouped["probe_name"].isna()
    no_action = ~no_product & ~no_probe & grouped["action_type"].isna()
    skipped = {
        "missing_product": int(grouped.loc[no_product, "events"].sum()),
        "missing_probe_name": int(grouped.loc[no_probe, "events"].sum()),
        "missing_action_type": int(grouped.loc[no_action, "events"].sum()),
    }
    total_events = int(grouped["events"].sum())
    frame = grouped[~(no_product | no_probe | no_action)]
    rows = warehouse.replace_slice(
        "probe_views_daily", frame, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    bad = warehouse.scalar(
        "SELECT count(*) FROM probe_views_daily WHERE period_start >= :start AND period_start < :end "
        "AND NOT (sessions <= events AND tracking_ids <= sessions)",
        {"start": start, "end": end},
    )
    context.log.info(f"probe_views_daily: {rows} rows from {total_events} events; skipped {skipped}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "usage_events": total_events,
            "skipped_events": dg.MetadataValue.json(skipped),
            "preview": preview(frame.sort_values("events", ascending=False) if not frame.empty else frame),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="counts_are_consistent", passed=int(bad or 0) == 0,
                metadata={"rows_with_tracking_ids_gt_sessions_or_sessions_gt_events": int(bad or 0)},
            )
        ],
    )


# -- usage_sessions ------------------------------------------------------------------------
SUMMARY_SQL = """
WITH days AS (
    SELECT unnest(generate_series(CAST($start AS TIMESTAMPTZ), CAST($last AS TIMESTAMPTZ), INTERVAL 1 DAY)) AS period_start
),
agg AS (
    SELECT period_start, count(*) AS sessions,
           quantile_cont(duration_s, 0.5) AS median_duration_s, quantile_cont(duration_s, 0.9) AS p90_duration_s,
           avg(distinct_probes) AS avg_probes_per_session,
           quantile_cont(distinct_probes, 0.5) AS median_probes_per_session,
           sum(events) AS sessionized_events
    FROM sessions GROUP BY period_start
),
entries AS (
    SELECT period_start, entry_probe, count(*) AS n FROM sessions
    WHERE entry_probe IS NOT NULL GROUP BY period_start, entry_probe
),
top AS (
    SELECT period_start,
           CAST(to_json(list({'probe': entry_probe, 'sessions': n} ORDER BY n DESC, entry_probe)[1:5]) AS VARCHAR) AS top_entry_probes
    FROM entries GROUP BY period_start
)
SELECT d.period_start, CAST(coalesce(a.sessions, 0) AS BIGINT) AS sessions,
       a.median_duration_s, a.p90_duration_s, a.avg_probes_per_session, a.median_probes_per_session,
       coalesce(t.top_entry_probes, '[]') AS top_entry_probes,
       CAST(coalesce(a.sessionized_events, 0) AS BIGINT) AS sessionized_events,
       CAST(coalesce(u.untracked_events, 0) AS BIGINT) AS untracked_events
FROM days d
LEFT JOIN agg a ON a.period_start = d.period_start
LEFT JOIN top t ON t.period_start = d.period_start
LEFT JOIN untracked u ON u.period_start = d.period_start
ORDER BY d.period_start
"""

SESSION_COLUMNS = {
    "period_start": pa.timestamp("us", tz="UTC"), "tracking_id": pa.string(),
    "session_start": pa.timestamp("us", tz="UTC"), "session_end": pa.timestamp("us", tz="UTC"),
    "duration_s": pa.float64(), "events": pa.int64(), "distinct_probes": pa.int64(),
    "entry_probe": pa.string(), "exit_probe": pa.string(),
}


def _typed(table: pa.Table, columns: dict[str, pa.DataType]) -> pa.Table:
    if table.num_rows == 0:
        return pa.table({c: pa.array([], t) for c, t in columns.items()})
    return pa.table({c: table.column(c).cast(t) for c, t in columns.items()})


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "duckdb"},
    description=(
        "Browsing sessions that start on the day: a tracking id's events with no gap longer than "
        "30 minutes. Per session: start, end, duration, events, distinct probes, entry and exit "
        "probe. Also writes `usage_sessions_daily`: sessions, median and p90 duration, probes per "
        "session, top entry probes, and the events without a tracking id (counted, not sessionized)."
    ),
    check_specs=[dg.AssetCheckSpec(
        "sessions_are_well_formed", asset="usage_sessions",
        description="Every session of the day has at least one event, ends after it starts, and a duration >= 0.",
    )],
)
def usage_sessions(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    start, end = _window(context)
    since, until = start - timedelta(minutes=config.SESSION_GAP_MINUTES), end + DAY
    context.log.info(f"usage_sessions: sessions starting {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    sessions = _typed(
        probes_glam.usage_query(
            warehouse, USAGE_SESSIONS, {"since": since, "until": until, "start": start, "end": end}, since=since, until=until
        ),
        SESSION_COLUMNS,
    )
    untracked = probes_glam.usage_query(warehouse, UNTRACKED_DAILY, {"since": start, "until": end}, since=start, until=end)
    duck = duckdb.connect()
    try:
        duck.execute("SET TimeZone = 'UTC'")
        duck.register("sessions", sessions)
        duck.register("untracked", untracked if untracked.num_rows else pa.table({
            "period_start": pa.array([], pa.timestamp("us", tz="UTC")), "events": pa.array([], pa.int64()),
            "untracked_events": pa.array([], pa.int64())}))
        summary = duck.sql(SUMMARY_SQL, params={"start": start, "last": end - DAY}).to_arrow_table()
    finally:
        duck.close()
    where, params = "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    counts = warehouse.replace_slices([
        ("usage_sessions", sessions, where, params),
        ("usage_sessions_daily", summary, where, params),
    ])
    bad = warehouse.scalar(
        "SELECT count(*) FROM usage_sessions WHERE period_start >= :start AND period_start < :end "
        "AND (duration_s < 0 OR events < 1 OR session_end < session_start)",
        params,
    )
    frame = summary.to_pandas()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts.get("usage_sessions", 0),
            "summary_rows": counts.get("usage_sessions_daily", 0),
            "untracked_events": int(frame["untracked_events"].sum()) if not frame.empty else 0,
            "skipped_events": dg.MetadataValue.json({"no_tracking_id (counted, not sessionized)": int(frame["untracked_events"].sum()) if not frame.empty else 0}),
            "daily_summary": preview(frame, limit=31),
        },
        check_results=[
            dg.AssetCheckResult(check_name="sessions_are_well_formed", passed=int(bad or 0) == 0,
                                metadata={"bad_sessions": int(bad or 0)})
        ],
    )


# -- probe_popularity ----------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Per product and window (7, 28, 90 days ending on the as-of day: PROBES_AS_OF, else the latest "
        "day in probe_views_daily): views, sessions, rank, the rank change since the previous window "
        "of the same length, and flags for the PROBES_TOP_N most and least viewed. Catalogue probes "
        "never viewed are there with zero views (they are the least viewed)."
    ),
    check_specs=[dg.AssetCheckSpec(
        "one_row_per_catalogue_probe_and_window", asset="probe_popularity",
        description="Exactly one row per probe of the GLAM catalogue and window (7, 28, 90 days).",
    )],
)
def probe_popularity(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    as_of = _views_as_of(warehouse)
    top_n = config.top_n()
    catalogue = _catalogue(probes_glam, warehouse)
    if as_of is None:
        context.log.info("probe_popularity: probe_views_daily is empty; every catalogue probe has zero views")
        as_of = datetime.now(UTC).date() - DAY
    end = _midnight(as_of) + DAY
    windows = pd.DataFrame({"window_days": list(config.POPULARITY_WINDOWS)})
    windows["window_end"] = end
    windows["window_start"] = [end - timedelta(days=w) for w in config.POPULARITY_WINDOWS]
    params: dict = {"top_n": top_n, "until": end, "since": end - timedelta(days=2 * max(config.POPULARITY_WINDOWS))}
    for w in config.POPULARITY_WINDOWS:
        params[f"current_{w}"] = end - timedelta(days=w)
        params[f"previous_{w}"] = end - timedelta(days=2 * w)
    context.log.info(f"probe_popularity: windows {list(config.POPULARITY_WINDOWS)} ending {as_of}")
    with temp_tables(warehouse, {"tmp_probes_catalogue": (CATALOGUE_COLUMNS, catalogue)}) as conn:
        frame = fetch_df(conn, popularity_sql(config.POPULARITY_WINDOWS), params)
    frame = frame.merge(windows, on="window_days", how="left")
    for column in ("is_most_viewed", "is_least_viewed", "in_catalogue"):
        frame[column] = frame[column].astype(int).astype(bool)
    for column in ("views", "sessions", "previous_views", "rank", "window_days"):
        frame[column] = frame[column].astype("int64")
    for column in ("previous_rank", "rank_change"):
        frame[column] = frame[column].astype("Int64")
    rows = warehouse.replace_slice("probe_popularity", frame, None)
    expected = len(catalogue) * len(config.POPULARITY_WINDOWS)
    in_cat = int(frame["in_catalogue"].sum()) if not frame.empty else 0
    most = frame[frame["is_most_viewed"] & (frame["window_days"] == 7)].sort_values(["product", "rank"])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "as_of": str(as_of),
            "top_n": top_n,
            "probes_viewed_but_not_in_catalogue": int((~frame["in_catalogue"]).sum() // len(config.POPULARITY_WINDOWS)) if not frame.empty else 0,
            "most_viewed_7d": preview(most[["product", "probe_name", "views", "sessions", "rank", "rank_change"]]),
        },
        check_results=[
            dg.AssetCheckResult(check_name="one_row_per_catalogue_probe_and_window", passed=in_cat == expected,
                                metadata={"catalogue_rows": in_cat, "expected": expected})
        ],
    )


# -- release_correlation -------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "For each release in product_releases (up to the as-of day): views in the 14 days before the "
        "release day and in the 14 days from it (release day included), per day, and the after/before "
        "ratio, per probe and overall (probe_name '*'). `complete` is false while the after window "
        "is still running."
    ),
)
def release_correlation(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    as_of = _views_as_of(warehouse) or (datetime.now(UTC).date() - DAY)
    releases = probes_glam.read_table(
        warehouse, "SELECT product, version, channel, release_date FROM product_releases"
    ).to_pandas()
    n = config.RELEASE_WINDOW_DAYS
    if not releases.empty:
        releases["release_date"] = pd.to_datetime(releases["release_date"].astype(str)).dt.date
        releases = releases[releases["release_date"] <= as_of].reset_index(drop=True)
    if releases.empty:
        releases = pd.DataFrame(columns=["product", "version", "channel", "release_date"])
    start = pd.to_datetime(releases["release_date"].astype(str)).dt.tz_localize("UTC") if len(releases) else pd.Series([], dtype="datetime64[us, UTC]")
    releases["release_start"] = start
    releases["before_start"] = start - pd.Timedelta(days=n)
    releases["after_end"] = start + pd.Timedelta(days=n)
    releases["complete"] = releases["after_end"] <= pd.Timestamp(_midnight(as_of) + DAY)
    context.log.info(f"release_correlation: {len(releases)} releases up to {as_of}")
    with temp_tables(warehouse, {
        "tmp_probes_releases": (
            {"product": "text", "version": "text", "channel": "text",
             "before_start": "ts", "release_start": "ts", "after_end": "ts"}, releases.drop(columns=["release_date", "complete"]),
        ),
    }) as conn:
        frame = fetch_df(conn, RELEASE_CORRELATION)
    frame = frame.merge(releases[["product", "version", "channel", "release_date", "complete"]],
                        on=["product", "version", "channel"], how="left")
    frame["views_before"] = frame["views_before"].astype("int64")
    frame["views_after"] = frame["views_after"].astype("int64")
    frame["daily_views_before"] = frame["views_before"] / n
    frame["daily_views_after"] = frame["views_after"] / n
    frame["after_before_ratio"] = (frame["views_after"] / frame["views_before"].where(frame["views_before"] > 0)).astype("float64")
    frame["complete"] = frame["complete"].astype(bool)
    frame = frame[["product", "version", "channel", "release_date", "probe_name", "views_before", "views_after",
                   "daily_views_before", "daily_views_after", "after_before_ratio", "complete"]]
    rows = warehouse.replace_slice("release_correlation", frame, None)
    overall = frame[frame["probe_name"] == "*"].sort_values("release_date")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "as_of": str(as_of),
        "releases": len(releases),
        "overall": preview(overall, limit=20),
    })


# -- probes_to_build -----------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "The hot list the nightly probe build consumes: catalogue probes viewed at least "
        "PROBES_HOT_MIN_VIEWS times in the last PROBES_HOT_WINDOW_DAYS days, plus PROBES_ALWAYS_BUILD; "
        "each with its reason ('hot', 'always_build', or 'hot,always_build') and its views. When it "
        "changes, the nightly build sensor builds exactly these probes."
    ),
)
def probes_to_build(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    rule = config.hot_list_rule()
    always = pd.DataFrame(config.always_build(), columns=["product", "probe_name"])
    as_of = _views_as_of(warehouse) or (datetime.now(UTC).date() - DAY)
    end = _midnight(as_of) + DAY
    start = end - timedelta(days=rule.window_days)
    with temp_tables(warehouse, {
        "tmp_probes_catalogue": (CATALOGUE_COLUMNS, _catalogue(probes_glam, warehouse)),
        "tmp_probes_always": (CATALOGUE_COLUMNS, always),
    }) as conn:
        frame = fetch_df(conn, PROBES_TO_BUILD, {"start": start, "end": end, "min_views": rule.min_views})
    known = frame["in_catalogue"].astype(int) == 1 if not frame.empty else pd.Series([], dtype=bool)
    unknown = frame[~known] if not frame.empty else frame
    frame = frame[known].drop(columns=["in_catalogue"]) if not frame.empty else pd.DataFrame(
        columns=["product", "probe_name", "views", "reason"])
    frame = frame.assign(window_days=rule.window_days, min_views=rule.min_views, as_of=as_of)
    frame["views"] = frame["views"].astype("int64")
    frame = frame.sort_values(["product", "views", "probe_name"], ascending=[True, False, True])
    rows = warehouse.replace_slice("probes_to_build", frame, None)
    skipped = {
        "hot_not_in_catalogue": int((unknown["reason"] == "hot").sum()) if len(unknown) else 0,
        "always_build_not_in_catalogue": int(unknown["reason"].str.contains("always_build").sum()) if len(unknown) else 0,
    }
    if len(unknown):
        context.log.warning(f"probes_to_build: not in glam_probes, left out: {unknown[['product', 'probe_name', 'reason']].to_dict('records')}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "as_of": str(as_of),
        "rule": f">= {rule.min_views} views in {rule.window_days} days",
        "always_build": len(always),
        "skipped": dg.MetadataValue.json(skipped),
        "preview": preview(frame, limit=20),
    })


# -- probe_aggregates ----------------------------------------------------------------------
AGGREGATE_COLUMNS = ["product", "probe_name", "channel", "os", "version", "client_count",
                     "p5", "p25", "p50", "p75", "p95", "histogram", "first_day", "last_day"]


@dg.asset(
    partitions_def=probe_partitions,
    deps=[dg.AssetDep("probes_to_build")],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"athena", "s3", "postgres"},
    description=(
        "One probe's distribution (partition `product/probe_name`) per (channel, os, version): client "
        "count, percentiles 5/25/50/75/95 of the per-client mean, and a histogram, from the last "
        "PROBES_SAMPLE_DAYS days of telemetry samples, computed by the query engine. Built nightly for "
        "probes_to_build and on demand through probe_build_requests; answers the requests of its run."
    ),
)
def probe_aggregates(
    context: dg.AssetExecutionContext, warehouse: Warehouse, query_engine: QueryEngine, probes_glam: GlamDatabase
):
    run_id = context.run_id
    claim = context.run.tags.get(requests.CLAIM_TAG)
    if claim:
        with warehouse.begin() as conn:
            started = requests.mark_started(conn, claim, run_id)
        context.log.info(f"probe_aggregates: answering {started} build request(s) of claim {claim}")
    try:
        metadata = _build_probe(context, warehouse, query_engine, probes_glam)
    except Exception as error:
        message = str(error.description if isinstance(error, dg.Failure) and error.description else error)
        with warehouse.begin() as conn:
            requests.mark_finished(conn, [run_id, claim] if claim else [run_id], f"{type(error).__name__}: {message}")
        raise
    with warehouse.begin() as conn:
        answered = requests.mark_finished(conn, [run_id, claim] if claim else [run_id], None)
    return dg.MaterializeResult(metadata={**metadata, "requests_answered": answered})


def _build_probe(context, warehouse: Warehouse, query_engine: QueryEngine, probes_glam: GlamDatabase) -> dict:
    try:
        product, probe_name = requests.split_partition_key(context.partition_key)
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    known = probes_glam.read_table(
        warehouse, "SELECT probe_name FROM glam_probes WHERE product = :product AND probe_name = :probe_name",
        {"product": product, "probe_name": probe_name},
    )
    if known.num_rows == 0:
        raise dg.Failure(description=(
            f"unknown probe {probe_name!r} for product {product!r}: it is not in glam_probes, so there is "
            "nothing to build. Check the product and probe name."
        ))
    last = config.build_as_of()
    first = last - timedelta(days=config.sample_days() - 1)
    buckets = config.histogram_buckets()
    context.log.info(f"probe_aggregates: {product}/{probe_name}, samples {first} to {last}")
    result = query_engine.execute(telemetry.aggregates_sql(), {
        "product": product, "probe_name": probe_name, "first_day": first.isoformat(),
        "last_day": last.isoformat(), "buckets": buckets,
    })
    raw = result.table
    skipped = {"no_client_id": 0, "no_value": 0}
    if raw.num_rows:
        skipped = {"no_client_id": int(raw.column("skipped_no_client")[0].as_py() or 0),
                   "no_value": int(raw.column("skipped_no_value")[0].as_py() or 0)}
        frame = telemetry.histograms(raw).to_pandas()
    else:
        frame = pd.DataFrame(columns=AGGREGATE_COLUMNS)
    frame = frame.assign(product=product, probe_name=probe_name, first_day=first, last_day=last)[AGGREGATE_COLUMNS]
    rows = warehouse.replace_slice(
        "probe_aggregates", frame, "product = :product AND probe_name = :probe_name",
        {"product": product, "probe_name": probe_name},
    )
    if rows == 0:
        context.log.warning(f"probe_aggregates: no telemetry samples for {product}/{probe_name} from {first} to {last}")
    return {
        "dagster/row_count": rows,
        **result.metadata(),
        "samples_from": str(first), "samples_to": str(last),
        "clients": int(frame["client_count"].sum()) if rows else 0,
        "skipped_samples": dg.MetadataValue.json(skipped),
        "preview": preview(frame.drop(columns=["histogram"])),
    }
