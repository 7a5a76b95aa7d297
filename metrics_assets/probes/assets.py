"""The probes domain's assets: probe popularity, sessions, release effects, the hot list, and
one probe's distribution (built nightly for the hot list, or on demand)."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from metrics_assets.lazy import pandas as pd  # imported on first use (loading the definitions needs no pandas)
from metrics_assets.probes import catalogue as catalogue_sources
from metrics_assets.probes import config, glam_write, requests, shaping, telemetry
from metrics_assets.probes.source import GlamDatabase
from metrics_assets.probes.usage_sql import (
    PROBE_VIEWS_DAILY,
    UNTRACKED_DAILY,
    USAGE_SESSIONS,
)
from metrics_assets.probes.warehouse_sql import (
    CORRELATION_TYPES,
    HOT_LIST_TYPES,
    POPULARITY_TYPES,
    fetch_df,
    popularity_sql,
    probes_to_build_sql,
    release_correlation_sql,
    temp_tables,
)
from metrics_assets.resources import ObjectStore, QueryEngine, Warehouse
from metrics_assets.resources.metadata import preview
from metrics_assets.resources.sqltext import as_utc
from metrics_assets.sql_access import DATE, INTEGER

GROUP = "probes"
OWNERS = ["team:metrics"]
DAY = timedelta(days=1)

daily_partitions = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
#: One partition per probe, ``product/probe_name``; added by the build sensors.
probe_partitions = dg.DynamicPartitionsDefinition(name="probes")

LAST_DAY_OF_VIEWS = dg.AssetDep("probe_views_daily", partition_mapping=dg.LastPartitionMapping())
#: Below this share of events with a tracking id, session figures describe few users.
TRACKED_SHARE_WARNING = 0.5
TRACKED_SHARE_FIX = (
    "GLAM writes tracking_id = '' on every usage row (_log_probe_query's FIXME): fill it from a "
    "first-party cookie in GLAM (see the README, 'Sessions, honestly')."
)


# -- helpers -------------------------------------------------------------------------------
def _window(context: dg.AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return (
        datetime.fromtimestamp(window.start.timestamp(), UTC),
        datetime.fromtimestamp(window.end.timestamp(), UTC),
    )


def _views_as_of(warehouse: Warehouse) -> date | None:
    """PROBES_AS_OF, else the latest day in probe_views_daily."""
    return config.as_of() or warehouse.scalar("SELECT max(period_start) FROM probe_views_daily", type_=DATE)


def _catalogue(warehouse: Warehouse) -> pa.Table:
    return warehouse.read_arrow("SELECT product, probe_name FROM glam_probe_catalogue", schema=CATALOGUE_SCHEMA)


CATALOGUE_SCHEMA = pa.schema([("product", pa.string()), ("probe_name", pa.string())])
CATALOGUE_COLUMNS = {"product": "text", "probe_name": "text"}


def _tracked_check(asset: str, tracked: int, events: int) -> dg.AssetCheckResult:
    share = shaping.share(tracked, events)
    return dg.AssetCheckResult(
        check_name="tracked_share_at_least_half",
        asset_key=asset,
        passed=events == 0 or share >= TRACKED_SHARE_WARNING,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "tracked_share": dg.MetadataValue.float(share),
            "events": events,
            "why": "" if events == 0 or share >= TRACKED_SHARE_WARNING else TRACKED_SHARE_FIX,
        },
        description="Sessions are cut on tracking ids: with few tracked events they describe few users.",
    )


def _tracked_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "tracked_share_at_least_half",
        asset=asset,
        description="Warns when fewer than half the usage events carry a tracking id (GLAM writes '' today).",
    )


# -- glam_probe_catalogue ------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "s3"},
    automation_condition=dg.AutomationCondition.on_cron("0 1 * * *"),
    description=(
        "Every probe GLAM can serve: the desktop probes of GLAM's own `glam_probe` table (name = "
        "info->>'name', as GLAM's import_probes writes it) and the Glean probes of the probe-info "
        "service's JSON (GLAM_PROBEINFO_PATH). Per probe: product, name, GLAM metric type, "
        "description, where it comes from, and the day it first appeared (the probe-info dates for "
        "Glean; the first catalogue that listed it for desktop)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "catalogue_not_emptied",
            asset="glam_probe_catalogue",
            description="A product whose probes all vanished since the last catalogue.",
        )
    ],
)
def glam_probe_catalogue(
    context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase, object_store: ObjectStore
):
    if not probes_glam.has_table(warehouse, "glam_probe"):
        raise dg.Failure(
            description=(
                "glam_probe does not exist in the GLAM database: point GLAM_DATABASE_URL at the GLAM app's "
                "PostgreSQL (or run the demo, which seeds GLAM's tables into the warehouse)."
            )
        )
    desktop, skipped = shaping.desktop_catalogue(
        probes_glam.read_table(warehouse, catalogue_sources.DESKTOP_CATALOGUE).to_pandas()
    )
    location = config.probeinfo_path()
    if location:
        glean, glean_skipped = catalogue_sources.glean_catalogue(
            catalogue_sources.read_sources(location, "GLAM_PROBEINFO_PATH", object_store)
        )
        skipped.update(glean_skipped)
        glean_note = f"Glean probes from {location}"
    else:
        glean = pd.DataFrame(columns=catalogue_sources.CATALOGUE_COLUMNS)
        glean_note = "GLAM_PROBEINFO_PATH is unset: no Glean (fenix, fog) probes in the catalogue"
        context.log.warning(f"glam_probe_catalogue: {glean_note}")
    frame = pd.concat([desktop, glean], ignore_index=True)
    previous = warehouse.read_df(
        "SELECT product, probe_name, first_seen FROM glam_probe_catalogue", types={"first_seen": DATE}
    )
    today = datetime.now(UTC).date()
    frame["first_seen"] = shaping.first_seen(frame, previous, today)
    counts, vanished, recent = shaping.catalogue_changes(frame, previous, today, config.new_days())
    rows = warehouse.replace_slice("glam_probe_catalogue", frame, None)
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        **{f"probes_{p}": counts.get(p, 0) for p in ("firefox", "fenix", "fog")},
        "probes_new": recent,
        "glean_source": glean_note,
        "skipped": dg.MetadataValue.json(skipped),
        "preview": preview(frame, limit=10),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="catalogue_not_emptied",
                passed=not vanished,
                metadata={"products_emptied": ", ".join(vanished) or "none"},
            ),
        ],
    )


# -- product_releases ----------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "s3"},
    automation_condition=dg.AutomationCondition.on_cron("0 1 * * *"),
    description=(
        "Release days of GLAM's products, from Mozilla product-details "
        "firefox_history_major_releases.json (a version-to-date object; GLAM_RELEASES_PATH, a path or "
        "s3:// object). Desktop dates serve both `firefox` and `fog`. Unset: no releases, so no "
        "release windows, and the metadata says so."
    ),
)
def product_releases(context: dg.AssetExecutionContext, warehouse: Warehouse, object_store: ObjectStore):
    location = config.releases_path()
    skipped: dict = {}
    if location:
        frame, skipped = catalogue_sources.releases(
            catalogue_sources.read_sources(location, "GLAM_RELEASES_PATH", object_store)
        )
        note = f"releases from {location}"
    else:
        frame = pd.DataFrame(columns=["product", "version", "channel", "release_date"])
        note = "GLAM_RELEASES_PATH is unset: no releases, so release_correlation has no release windows"
        context.log.warning(f"product_releases: {note}")
    rows = warehouse.replace_slice("product_releases", frame, None)
    latest = frame.sort_values("release_date").groupby("product").tail(1) if len(frame) else frame
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "source": note,
            "skipped": dg.MetadataValue.json(skipped),
            "latest_releases": preview(latest),
        }
    )


# -- probe_views_daily ---------------------------------------------------------------------
@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres", "duckdb"},
    description=(
        "Per UTC day, product, probe and action type (GLAM logs PROBE_SEARCH on every probe fetch): "
        "the events, the distinct tracking ids, and the sessions (30-minute gap rule) that start on "
        "the day and touch the probe, so that a sum over days counts each session once. A usage row "
        "without `product` is GLAM's default product, `firefox`. The day's rows are a primary-key "
        "range of glam_usage_instrumentation (GLAM has no index on timestamp), streamed out with "
        "COPY; DuckDB runs the set-based SQL over them."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "counts_are_consistent",
            asset="probe_views_daily",
            description="On every row of the day: tracking ids <= sessions <= events.",
        ),
        _tracked_spec("probe_views_daily"),
    ],
)
def probe_views_daily(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    start, end = _window(context)
    context.log.info(f"probe_views_daily: usage events from {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    params = {"start": start, "end": end}
    table = probes_glam.usage_query(
        warehouse,
        PROBE_VIEWS_DAILY,
        params,
        since=start - timedelta(minutes=config.SESSION_GAP_MINUTES),
        until=end,
        follow_until=end + DAY,
    )
    if not isinstance(table, pa.Table):  # one statement in, one table out
        raise TypeError(f"usage_query gave {type(table).__name__} for one statement, expected one pyarrow Table")
    grouped = table.to_pandas()
    frame, skipped, total_events, tracked = shaping.split_views(grouped)
    rows = warehouse.replace_slice(
        "probe_views_daily", frame, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    bad = warehouse.scalar(
        "SELECT count(*) FROM probe_views_daily WHERE period_start >= :start AND period_start < :end "
        "AND NOT (events >= 0 AND sessions >= 0 AND events + sessions > 0 AND tracking_ids <= events "
        "AND tracked_events <= events)",
        {"start": start, "end": end},
        type_=INTEGER,
    )
    views = frame[frame["action_type"].isin(config.view_actions())]
    context.log.info(f"probe_views_daily: {rows} rows from {total_events} events; skipped {skipped}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "usage_events": total_events,
            "views": int(views["events"].sum()),
            "sessions": int(views["sessions"].sum()),
            "distinct_probes": int(views[["product", "probe_name"]].drop_duplicates().shape[0]),
            "tracked_share": dg.MetadataValue.float(shaping.share(tracked, total_events)),
            "view_actions": ",".join(config.view_actions()),
            "skipped_events": dg.MetadataValue.json(skipped),
            "preview": preview(frame.sort_values("events", ascending=False) if not frame.empty else frame),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="counts_are_consistent",
                passed=bad == 0,
                metadata={"inconsistent_rows": bad},
            ),
            _tracked_check("probe_views_daily", tracked, total_events),
        ],
    )


# -- usage_sessions (+ usage_sessions_daily) -----------------------------------------------
SESSIONS_DAILY = "usage_sessions_daily"


def _record_unselected(context: dg.AssetExecutionContext, key: str, metadata: dict) -> None:
    """A table the run wrote though it was not selected: a runtime materialization of each
    partition of the run (a backfill range is one run)."""
    for partition in context.partition_keys:
        context.log_event(dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "usage_sessions",
            description=(
                "Browsing sessions that start on the day: a tracking id's events with no gap longer than "
                "30 minutes. Per session: start, end, duration, events, distinct probes, entry and exit "
                "probe."
            ),
            group_name=GROUP,
            owners=OWNERS,
            kinds={"postgres", "duckdb"},
        ),
        dg.AssetSpec(
            SESSIONS_DAILY,
            description=(
                "One row per day of usage_sessions: sessions, median and p90 duration, probes per session, "
                "the top 5 entry probes, and the events without a tracking id (counted, not sessionized)."
            ),
            group_name=GROUP,
            owners=OWNERS,
            kinds={"postgres", "duckdb"},
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "sessions_are_well_formed",
            asset="usage_sessions",
            description="Every session of the day has at least one event, ends after it starts, and a duration >= 0.",
        ),
        _tracked_spec("usage_sessions"),
    ],
    # One computation writes both tables in one transaction: selecting either runs it whole;
    # the one not selected is recorded as a runtime materialization of the same run.
    can_subset=True,
)
def usage_sessions(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    start, end = _window(context)
    context.log.info(f"usage_sessions: sessions starting {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    found, untracked = probes_glam.usage_query(
        warehouse,
        [USAGE_SESSIONS, UNTRACKED_DAILY],
        {"start": start, "end": end},
        since=start - timedelta(minutes=config.SESSION_GAP_MINUTES),
        until=end,
        follow_until=end + DAY,
    )
    sessions = shaping.typed(found, shaping.SESSION_COLUMNS)
    summary = shaping.session_summary(sessions, untracked, start, end - DAY)
    where, params = "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    counts = warehouse.replace_slices(
        [
            ("usage_sessions", sessions, where, params),
            (SESSIONS_DAILY, summary, where, params),
        ]
    )
    bad = warehouse.scalar(
        "SELECT count(*) FROM usage_sessions WHERE period_start >= :start AND period_start < :end "
        "AND (duration_s < 0 OR events < 1 OR session_end < session_start)",
        params,
        type_=INTEGER,
    )
    figures = shaping.session_figures(summary, untracked)
    frame = summary.to_pandas()
    daily_metadata = {
        "dagster/row_count": counts.get(SESSIONS_DAILY, 0),
        "sessions": figures["sessions"],
        "untracked_events": figures["untracked_events"],
        "preview": preview(frame, limit=31),
    }
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    if SESSIONS_DAILY in selected:
        yield dg.MaterializeResult(asset_key=SESSIONS_DAILY, metadata=daily_metadata)
    else:
        _record_unselected(context, SESSIONS_DAILY, daily_metadata)
    sessions_metadata = {
        "dagster/row_count": counts.get("usage_sessions", 0),
        "sessions": figures["sessions"],
        "summary_rows": counts.get(SESSIONS_DAILY, 0),
        "usage_events": figures["usage_events"],
        "untracked_events": figures["untracked_events"],
        "tracked_share": dg.MetadataValue.float(figures["tracked_share"]),
        "skipped_events": dg.MetadataValue.json(
            {"no_tracking_id (counted, not sessionized)": figures["untracked_events"]}
        ),
        "daily_summary": preview(frame, limit=31),
    }
    if "usage_sessions" not in selected:
        _record_unselected(context, "usage_sessions", sessions_metadata)
        return
    yield dg.MaterializeResult(
        asset_key="usage_sessions",
        metadata=sessions_metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="sessions_are_well_formed", passed=(bad or 0) == 0, metadata={"bad_sessions": bad or 0}
            ),
            _tracked_check(
                "usage_sessions", figures["usage_events"] - figures["untracked_events"], figures["usage_events"]
            ),
        ],
    )


# -- probe_popularity ----------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS, glam_probe_catalogue],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Per product and window (7, 28, 90 days ending on the as-of day: PROBES_AS_OF, else the latest "
        "day in probe_views_daily): views (PROBES_VIEW_ACTIONS), sessions (each once per window), rank, the rank change since the previous window "
        "of the same length, and flags for the PROBES_TOP_N most and least viewed. Catalogue probes "
        "never viewed are there with zero views (they are the least viewed)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "one_row_per_catalogue_probe_and_window",
            asset="probe_popularity",
            description="Exactly one row per probe of the GLAM catalogue and window (7, 28, 90 days).",
        ),
        _tracked_spec("probe_popularity"),
    ],
)
def probe_popularity(context: dg.AssetExecutionContext, warehouse: Warehouse):
    as_of = _views_as_of(warehouse)
    top_n = config.top_n()
    catalogue = _catalogue(warehouse)
    if as_of is None:
        context.log.info("probe_popularity: probe_views_daily is empty; every catalogue probe has zero views")
        as_of = datetime.now(UTC).date() - DAY
    windows, params = shaping.popularity_windows(as_of, config.POPULARITY_WINDOWS)
    end = params["until"]
    context.log.info(f"probe_popularity: windows {list(config.POPULARITY_WINDOWS)} ending {as_of}")
    with temp_tables(warehouse, {"tmp_probes_catalogue": (CATALOGUE_COLUMNS, catalogue)}) as conn:
        ranked = fetch_df(
            conn, popularity_sql(config.POPULARITY_WINDOWS), {**params, "top_n": top_n}, types=POPULARITY_TYPES
        )
    frame = shaping.popularity_frame(ranked, windows)
    rows = warehouse.replace_slice("probe_popularity", frame, None)
    expected = len(catalogue) * len(config.POPULARITY_WINDOWS)
    in_cat = int(frame["in_catalogue"].sum()) if not frame.empty else 0
    most = frame[frame["is_most_viewed"] & (frame["window_days"] == 7)].sort_values(["product", "rank"])
    week = frame[frame["window_days"] == min(config.POPULARITY_WINDOWS)]
    tracked = warehouse.fetch_all(
        "SELECT coalesce(sum(events), 0) AS events, coalesce(sum(tracked_events), 0) AS tracked FROM probe_views_daily "
        "WHERE period_start >= :start AND period_start < :end",
        {"start": end - timedelta(days=min(config.POPULARITY_WINDOWS)), "end": end},
        types={"events": INTEGER, "tracked": INTEGER},
    )[0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "as_of": str(as_of),
            "top_n": str(top_n),
            "views_7d": int(week["views"].sum()) if len(week) else 0,
            "sessions_7d": int(week["sessions"].sum()) if len(week) else 0,
            "probes_viewed_7d": int((week["views"] > 0).sum()) if len(week) else 0,
            "tracked_share_7d": dg.MetadataValue.float(shaping.share(tracked["tracked"], tracked["events"])),
            "probes_viewed_but_not_in_catalogue": int((~frame["in_catalogue"]).sum() // len(config.POPULARITY_WINDOWS))
            if not frame.empty
            else 0,
            "most_viewed_7d": preview(most[["product", "probe_name", "views", "sessions", "rank", "rank_change"]]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="one_row_per_catalogue_probe_and_window",
                passed=in_cat == expected,
                metadata={"catalogue_rows": in_cat, "expected": expected},
            ),
            _tracked_check("probe_popularity", tracked["tracked"], tracked["events"]),
        ],
    )


# -- release_correlation -------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS, product_releases],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "For each release in product_releases (up to the as-of day): views (PROBES_VIEW_ACTIONS) in "
        "the 14 days before the release day and in the 14 days from it (release day included), cut at "
        "the as-of day; per day actually elapsed, and the after/before ratio, per probe and overall "
        "(probe_name '*'). `complete` is false while the after window is still running."
    ),
)
def release_correlation(context: dg.AssetExecutionContext, warehouse: Warehouse):
    as_of = _views_as_of(warehouse) or (datetime.now(UTC).date() - DAY)
    releases = warehouse.read_df(
        "SELECT product, version, channel, release_date FROM product_releases", types={"release_date": DATE}
    )
    n = config.RELEASE_WINDOW_DAYS
    first_views = warehouse.scalar("SELECT min(period_start) FROM probe_views_daily", type_=DATE)
    total = len(releases)
    releases = shaping.release_windows(releases, as_of, first_views, n)
    context.log.info(f"release_correlation: {len(releases)} of {total} releases up to {as_of}")
    with temp_tables(
        warehouse,
        {
            "tmp_probes_releases": (
                {
                    "product": "text",
                    "version": "text",
                    "channel": "text",
                    "before_start": "ts",
                    "release_start": "ts",
                    "after_end": "ts",
                },
                releases[["product", "version", "channel", "before_start", "release_start", "after_end"]],
            ),
        },
    ) as conn:
        views = fetch_df(conn, release_correlation_sql(), types=CORRELATION_TYPES)
    frame = shaping.correlation_frame(views, releases, n)
    rows = warehouse.replace_slice("release_correlation", frame, None)
    overall = frame[frame["probe_name"] == "*"].sort_values("release_date")
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        "as_of": str(as_of),
        "releases_in_range": len(releases),
        "overall": preview(overall, limit=20),
    }
    if total == 0:
        metadata["note"] = "product_releases is empty (GLAM_RELEASES_PATH unset?): no release windows"
    return dg.MaterializeResult(metadata=metadata)


# -- probes_to_build -----------------------------------------------------------------------
@dg.asset(
    deps=[LAST_DAY_OF_VIEWS, glam_probe_catalogue],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "The hot list the nightly probe build consumes, each catalogue probe with its reasons: `hot` "
        "(viewed at least PROBES_HOT_MIN_VIEWS times in the last PROBES_HOT_WINDOW_DAYS days), "
        "`always_build` (PROBES_ALWAYS_BUILD), `requested` (asked for in probe_build_requests in the "
        "last PROBES_REQUESTED_DAYS days) and `new` (in the catalogue for less than PROBES_NEW_DAYS "
        "days); e.g. 'hot,requested'. When it changes, the nightly build sensor builds exactly these."
    ),
)
def probes_to_build(context: dg.AssetExecutionContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    rule = config.hot_list_rule()
    always = pd.DataFrame(config.always_build(), columns=["product", "probe_name"])
    as_of = _views_as_of(warehouse) or (datetime.now(UTC).date() - DAY)
    end = as_utc(as_of) + DAY
    start = end - timedelta(days=rule.window_days)
    requested_since = end - timedelta(days=config.requested_days())
    with probes_glam.begin(warehouse) as glam:
        requested = fetch_df(
            glam,
            "SELECT DISTINCT product, probe_name FROM probe_build_requests "
            "WHERE requested_at >= :since AND requested_at < :until",
            {"since": requested_since, "until": end},
        )
    new_since = as_of - timedelta(days=config.new_days() - 1)
    new = warehouse.read_df(
        "SELECT product, probe_name FROM glam_probe_catalogue WHERE first_seen >= :since AND first_seen <= :as_of",
        {"since": new_since, "as_of": as_of},
    )
    with temp_tables(
        warehouse,
        {
            "tmp_probes_catalogue": (CATALOGUE_COLUMNS, _catalogue(warehouse)),
            "tmp_probes_always": (CATALOGUE_COLUMNS, always),
            "tmp_probes_requested": (CATALOGUE_COLUMNS, requested),
            "tmp_probes_new": (CATALOGUE_COLUMNS, new),
        },
    ) as conn:
        candidates = fetch_df(
            conn, probes_to_build_sql(), {"start": start, "end": end, "min_views": rule.min_views}, types=HOT_LIST_TYPES
        )
    frame, unknown = shaping.hot_list(candidates, rule.window_days, rule.min_views, as_of)
    rows = warehouse.replace_slice("probes_to_build", frame, None)
    reasons = shaping.reason_counts(frame)
    skipped = {
        f"{r}_not_in_catalogue": n
        for r, n in shaping.reason_counts(unknown, ("hot", "always_build", "requested")).items()
    }
    if len(unknown):
        context.log.warning(
            f"probes_to_build: not in glam_probe_catalogue, left out: {unknown[['product', 'probe_name', 'reason']].to_dict('records')}"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "hot_list_size": rows,
            **{f"reason_{r}": n for r, n in reasons.items()},
            "as_of": str(as_of),
            "rule": f">= {rule.min_views} views in {rule.window_days} days; requested in {config.requested_days()} days; "
            f"new in {config.new_days()} days",
            "always_build": ", ".join(f"{p}/{n}" for p, n in config.always_build()) or "none",
            "skipped": dg.MetadataValue.json(skipped),
            "preview": preview(frame, limit=20),
        }
    )


# -- GLAM's own tables, in the app's database (GLAM_DATABASE_URL) ---------------------------
#: The request table: the app (or anyone with the database) inserts requests; the
#: probe_build_requests_sensor claims them and probe_aggregates answers them. No Dagster run
#: writes its rows, so it is an external asset, declared for the lineage.
probe_build_requests = dg.AssetSpec(
    "probe_build_requests",
    description=(
        "On-demand probe builds asked for by the GLAM app, one row per request (product, probe_name) with "
        "its status (PENDING, RUNNING, SUCCEEDED, NO_DATA, FAILED), run id and answer. Lives in the GLAM "
        "database (GLAM_DATABASE_URL), the app's status table. Requests are inserted by the app, not by a "
        "Dagster run: an external asset. probe_build_requests_sensor claims them, probe_aggregates answers."
    ),
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "probe_build_requests"},
)

#: GLAM's aggregation tables: the app serves probes from them. GLAM's own ETL imports its rows
#: (upserting on the unique dimensions); probe_aggregates writes a built probe's rows there too,
#: in GLAM's format, and reports a materialization of this asset in the same run. The tables
#: are the app's (its Django migrations create them), so this is an external asset.
glam_aggregations = dg.AssetSpec(
    "glam_aggregations",
    deps=["probe_aggregates"],
    description=(
        "GLAM's aggregation tables in the app's database, which the app serves probes from: "
        "glam_desktop_{nightly,beta,release}_aggregation, glam_fenix_aggregation and glam_fog_aggregation. "
        "Created by GLAM's migrations and filled by GLAM's ETL import; probe_aggregates replaces a built "
        "probe's rows of the dimensions it writes there, in one transaction, and records a materialization "
        "of this asset (tables and rows written) in the same run."
    ),
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    metadata={
        "tables": "glam_desktop_{nightly,beta,release}_aggregation, glam_fenix_aggregation, glam_fog_aggregation"
    },
)


# -- probe_aggregates ----------------------------------------------------------------------
@dg.asset(
    partitions_def=probe_partitions,
    deps=[dg.AssetDep("probes_to_build"), dg.AssetDep("probe_build_requests")],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"athena", "s3", "postgres"},
    description=(
        "One probe's distribution (partition `product/probe_name`) per (channel, os, version), os '*' "
        "being all systems: client count, percentiles 5/25/50/75/95 of the per-client mean, and a "
        "histogram, from the last PROBES_SAMPLE_DAYS days of telemetry samples, computed by the query "
        "engine. Written here (the warehouse's record) and into GLAM's own aggregation table for the "
        "product and channel, in GLAM's format, replacing that probe's rows in one transaction, so "
        "the app serves it. Built nightly for probes_to_build and on demand through "
        "probe_build_requests; answers the requests of its run (NO_DATA when there were no samples)."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "build_has_rows", asset="probe_aggregates", description="Warns when a build found no telemetry samples."
        )
    ],
)
def probe_aggregates(
    context: dg.AssetExecutionContext, warehouse: Warehouse, query_engine: QueryEngine, probes_glam: GlamDatabase
):
    run_id = context.run_id
    claim = context.run.tags.get(requests.CLAIM_TAG)
    ids = [run_id, claim] if claim else [run_id]
    if claim:
        with probes_glam.begin(warehouse) as conn:
            started = requests.mark_started(conn, claim, run_id)
        context.log.info(f"probe_aggregates: answering {started} build request(s) of claim {claim}")
    try:
        metadata = _build_probe(context, warehouse, query_engine, probes_glam)
    except BaseException as error:  # a cancellation (DagsterExecutionInterruptedError) too
        message = str(error.description if isinstance(error, dg.Failure) and error.description else error)
        if isinstance(error, KeyboardInterrupt) or type(error).__name__ == "DagsterExecutionInterruptedError":
            message = f"the build run {run_id} was cancelled or interrupted mid-build"
        with probes_glam.begin(warehouse) as conn:
            requests.mark_finished(conn, ids, f"{type(error).__name__}: {message}")
        raise
    no_data = metadata.pop("_no_data", None)
    with probes_glam.begin(warehouse) as conn:
        if no_data:
            answered = requests.mark_finished(conn, ids, no_data, status=requests.NO_DATA)
        else:
            answered = requests.mark_finished(conn, ids, None)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "requests_answered": answered,
            "build_status": requests.NO_DATA if no_data else requests.SUCCEEDED,
            "no_data_reason": no_data or "",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="build_has_rows",
                passed=not no_data,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"reason": no_data or ""},
            )
        ],
    )


def _build_probe(context, warehouse: Warehouse, query_engine: QueryEngine, probes_glam: GlamDatabase) -> dict:
    try:
        product, probe_name = requests.split_partition_key(context.partition_key)
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    known = warehouse.fetch_all(
        "SELECT metric_type FROM glam_probe_catalogue WHERE product = :product AND probe_name = :probe_name",
        {"product": product, "probe_name": probe_name},
    )
    if not known:
        raise dg.Failure(
            description=(
                f"unknown probe {probe_name!r} for product {product!r}: it is not in glam_probe_catalogue, so there "
                "is nothing to build. Check the product and probe name (or materialize glam_probe_catalogue)."
            )
        )
    last = config.build_as_of()
    first = last - timedelta(days=config.sample_days() - 1)
    buckets = config.histogram_buckets()
    context.log.info(f"probe_aggregates: {product}/{probe_name}, samples {first} to {last}")
    result = query_engine.execute(
        telemetry.aggregates_sql(),
        {
            "product": product,
            "probe_name": probe_name,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "buckets": buckets,
        },
    )
    built, frame, skipped = telemetry.aggregates_frames(result.table, product, probe_name, first, last)
    glam_tables, glam_skipped = glam_write.glam_rows(product, probe_name, known[0]["metric_type"], built, last)
    no_data = None
    if frame.empty:
        no_data = (
            f"no telemetry samples for {product}/{probe_name} from {first} to {last}; "
            "the app keeps the probe's previous build, if any"
        )
        context.log.warning(f"probe_aggregates: {no_data}")
    rows = warehouse.replace_slice(
        "probe_aggregates",
        frame,
        "product = :product AND probe_name = :probe_name",
        {"product": product, "probe_name": probe_name},
    )
    written: dict[str, int] = {}
    if not no_data and glam_write.tables_for(product):
        with probes_glam.begin(warehouse) as conn:
            written = glam_write.replace_probe(conn, warehouse.load, product, probe_name, glam_tables)
        context.log_event(
            dg.AssetMaterialization(
                asset_key="glam_aggregations",
                description=f"{product}/{probe_name} built into GLAM's tables",
                metadata={
                    "probe": f"{product}/{probe_name}",
                    "dagster/row_count": sum(written.values()),
                    "tables": dg.MetadataValue.json(written),
                },
            )
        )
    elif not glam_write.tables_for(product):
        glam_skipped["product_not_in_glam"] = len(frame)
    metadata = {
        "dagster/row_count": rows,
        **result.metadata(),
        "samples_from": str(first),
        "samples_to": str(last),
        "clients": int(built.loc[built["os"] == "*", "client_count"].sum()) if rows else 0,
        "glam_rows": sum(written.values()),
        "glam_tables": dg.MetadataValue.json(written),
        "skipped_samples": dg.MetadataValue.json(skipped),
        "skipped_groups": dg.MetadataValue.json(glam_skipped),
        "preview": preview(frame.drop(columns=["histogram"])),
    }
    if no_data:
        metadata["_no_data"] = no_data
    return metadata
