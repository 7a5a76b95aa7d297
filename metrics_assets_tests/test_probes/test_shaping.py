"""The probes domain's frame shaping (probes/shaping.py, no Dagster): popularity windows,
release windows and ratios, the hot list and its reasons, usage_sessions' figures. Inputs are
the frames the typed reads give (popularity_sql, release_correlation_sql, probes_to_build_sql
read with warehouse_sql's types); every expectation is computed by hand in the comments."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa

from metrics_assets.probes import shaping


def utc(*args) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=UTC))


def test_popularity_windows_end_after_the_as_of_day():
    windows, params = shaping.popularity_windows(date(2026, 3, 31), (7, 28, 90))
    # end = 2026-04-01 00:00 UTC; 7 days back: 03-25; 28: 03-04; 90: 31 (March) + 28 + 31 -> 01-01.
    assert windows["window_days"].tolist() == [7, 28, 90]
    assert windows["window_start"].tolist() == [
        datetime(2026, 3, 25, tzinfo=UTC),
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    ]
    assert set(windows["window_end"]) == {datetime(2026, 4, 1, tzinfo=UTC)}
    # previous windows: 03-25 - 7 = 03-18; 03-04 - 28 = 02-04; 01-01 - 90 = 2025-10-03 (31 + 30 + 29 in Dec/Nov/Oct)
    assert params == {
        "until": datetime(2026, 4, 1, tzinfo=UTC),
        "since": datetime(2025, 10, 3, tzinfo=UTC),
        "current_7": datetime(2026, 3, 25, tzinfo=UTC),
        "previous_7": datetime(2026, 3, 18, tzinfo=UTC),
        "current_28": datetime(2026, 3, 4, tzinfo=UTC),
        "previous_28": datetime(2026, 2, 4, tzinfo=UTC),
        "current_90": datetime(2026, 1, 1, tzinfo=UTC),
        "previous_90": datetime(2025, 10, 3, tzinfo=UTC),
    }


def test_popularity_frame_keeps_empty_previous_ranks_empty():
    windows, _ = shaping.popularity_windows(date(2026, 3, 31), (7,))
    ranked = pd.DataFrame(
        [
            {
                "product": "firefox",
                "window_days": 7,
                "probe_name": "p1",
                "views": 10,
                "sessions": 7,
                "rank": 1,
                "previous_views": 2,
                "previous_rank": 2,
                "rank_change": 1,
                "is_most_viewed": True,
                "is_least_viewed": False,
                "in_catalogue": True,
            },
            {
                "product": "firefox",
                "window_days": 7,
                "probe_name": "p2",
                "views": 0,
                "sessions": 0,
                "rank": 2,
                "previous_views": 0,
                "previous_rank": None,
                "rank_change": None,
                "is_most_viewed": False,
                "is_least_viewed": True,
                "in_catalogue": False,
            },
        ]
    )
    frame = shaping.popularity_frame(ranked, windows)
    assert frame["previous_rank"].tolist()[0] == 2 and frame["previous_rank"].isna().tolist() == [False, True]
    assert frame["rank_change"].dtype == "Int64" and frame["views"].dtype == "int64"
    assert frame["in_catalogue"].tolist() == [True, False] and frame["in_catalogue"].dtype == bool
    assert frame["window_start"].tolist() == [datetime(2026, 3, 25, tzinfo=UTC)] * 2


def test_release_windows_cut_at_the_as_of_day_and_drop_what_says_nothing():
    releases = pd.DataFrame(
        [
            ("firefox", "120.0", "release", date(2026, 1, 1)),  # after window ends 01-15, before any view (02-01)
            ("firefox", "125.0", "release", date(2026, 1, 18)),  # ends 02-01: the first day of views is not after it
            ("firefox", "130.0", "release", date(2026, 3, 10)),  # complete: 03-10 + 14 = 03-24 <= 04-01
            ("firefox", "131.0", "release", date(2026, 3, 25)),  # running: 03-25 + 14 = 04-08 > 04-01: cut, 7 days
            ("firefox", "132.0", "release", date(2026, 4, 5)),  # after the as-of day
        ],
        columns=shaping.RELEASE_COLUMNS,
    )
    got = shaping.release_windows(releases, date(2026, 3, 31), date(2026, 2, 1), 14)
    assert got["version"].tolist() == ["130.0", "131.0"]
    assert got["before_start"].tolist() == [utc(2026, 2, 24), utc(2026, 3, 11)]
    assert got["release_start"].tolist() == [utc(2026, 3, 10), utc(2026, 3, 25)]
    assert got["after_end"].tolist() == [utc(2026, 3, 24), utc(2026, 4, 1)]
    assert got["complete"].tolist() == [True, False]
    assert got["after_days"].tolist() == [14, 7]
    empty = shaping.release_windows(releases.iloc[0:0], date(2026, 3, 31), None, 14)
    assert len(empty) == 0 and "after_end" in empty.columns


def test_correlation_frame_per_day_and_ratio():
    releases = shaping.release_windows(
        pd.DataFrame(
            [
                ("firefox", "130.0", "release", date(2026, 3, 10)),
                ("firefox", "131.0", "release", date(2026, 3, 25)),
            ],
            columns=shaping.RELEASE_COLUMNS,
        ),
        date(2026, 3, 31),
        None,
        14,
    )
    views = pd.DataFrame(
        [("firefox", "130.0", "release", "p1", 28, 7), ("firefox", "131.0", "release", "*", 0, 14)],
        columns=["product", "version", "channel", "probe_name", "views_before", "views_after"],
    )
    frame = shaping.correlation_frame(views, releases, 14)
    first, second = frame.to_dict("records")
    # 28 / 14 = 2.0 before, 7 / 14 = 0.5 after, 0.5 / 2.0 = 0.25
    assert (first["daily_views_before"], first["daily_views_after"], first["after_before_ratio"]) == (2.0, 0.5, 0.25)
    assert bool(first["complete"]) is True and first["release_date"] == date(2026, 3, 10)
    # no view before: no ratio; after: 14 views over the 7 days elapsed = 2.0
    assert (second["daily_views_before"], second["daily_views_after"]) == (0.0, 2.0)
    assert math.isnan(second["after_before_ratio"]) and not second["complete"]
    assert second["release_date"] == date(2026, 3, 25)


def test_hot_list_orders_and_leaves_unknown_probes_out():
    candidates = pd.DataFrame(
        [
            ("firefox", "a", 10, "hot", True),
            ("firefox", "b", 12, "hot,requested", True),
            ("firefox", "z", 0, "always_build", False),
            ("fenix", "c", 5, "new", True),
        ],
        columns=["product", "probe_name", "views", "reason", "in_catalogue"],
    )
    frame, unknown = shaping.hot_list(candidates, 7, 10, date(2026, 3, 31))
    assert frame[["product", "probe_name", "views"]].values.tolist() == [
        ["fenix", "c", 5],
        ["firefox", "b", 12],
        ["firefox", "a", 10],
    ]
    assert set(frame["window_days"]) == {7} and set(frame["min_views"]) == {10}
    assert set(frame["as_of"]) == {date(2026, 3, 31)}
    assert unknown["probe_name"].tolist() == ["z"]
    assert shaping.reason_counts(frame) == {"hot": 2, "always_build": 0, "requested": 1, "new": 1}
    assert shaping.reason_counts(unknown, ("hot", "always_build", "requested")) == {
        "hot": 0,
        "always_build": 1,
        "requested": 0,
    }
    empty, none = shaping.hot_list(candidates.iloc[0:0], 7, 10, date(2026, 3, 31))
    assert len(empty) == 0 and len(none) == 0 and shaping.reason_counts(empty)["hot"] == 0


def test_session_figures():
    summary = pa.table({"sessions": pa.array([3, 0], pa.int64()), "untracked_events": pa.array([5, 2], pa.int64())})
    untracked = pa.table({"events": pa.array([10, 2], pa.int64())})
    # 3 sessions; 12 events of which 7 untracked: 5 / 12 = 0.416667 tracked
    assert shaping.session_figures(summary, untracked) == {
        "sessions": 3,
        "usage_events": 12,
        "untracked_events": 7,
        "tracked_share": 0.416667,
    }
    assert shaping.session_figures(summary.slice(0, 0), untracked.slice(0, 0)) == {
        "sessions": 0,
        "usage_events": 0,
        "untracked_events": 0,
        "tracked_share": 0.0,
    }


def test_catalogue_changes():
    today = date(2026, 3, 31)
    frame = pd.DataFrame(
        [
            ("firefox", "a", date(2026, 3, 31)),  # 0 days old: new
            ("firefox", "b", date(2026, 3, 18)),  # 13 days old: new with PROBES_NEW_DAYS = 14
            ("firefox", "c", date(2026, 3, 17)),  # 14 days old: not new
            ("fog", "d", None),  # undated: not new
        ],
        columns=["product", "probe_name", "first_seen"],
    )
    previous = pd.DataFrame(
        [("firefox", "a", None), ("fenix", "x", date(2026, 1, 1))], columns=["product", "probe_name", "first_seen"]
    )
    # fenix had a probe and has none now: emptied
    assert shaping.catalogue_changes(frame, previous, today, 14) == ({"firefox": 3, "fog": 1}, ["fenix"], 2)
    assert shaping.catalogue_changes(frame.iloc[0:0], previous.iloc[0:0], today, 14) == ({}, [], 0)


def test_aggregates_frames_split_the_all_systems_rows():
    from metrics_assets.probes import telemetry

    # The aggregates query's rows (telemetry.aggregates_sql): one per group and bucket, the
    # skipped-sample counts repeated on every row. Linux: 3 clients; '*' (all systems): 3 too.
    def row(os_, bucket, lower, upper, clients):
        return {
            "channel": "release",
            "os": os_,
            "version": "130",
            "client_count": 3,
            "sample_count": 7,
            "p5": 0.1,
            "p25": 0.25,
            "p50": 0.5,
            "p75": 0.75,
            "p95": 0.95,
            "bucket": bucket,
            "bucket_lower": lower,
            "bucket_upper": upper,
            "clients": clients,
            "skipped_no_client": 2,
            "skipped_no_value": 1,
        }

    raw = pa.Table.from_pylist(
        [row("Linux", 0, 0.0, 0.5, 2), row("Linux", 1, 0.5, 1.0, 1), row("*", 0, 0.0, 0.5, 2), row("*", 1, 0.5, 1.0, 1)]
    )
    built, frame, skipped = telemetry.aggregates_frames(raw, "firefox", "gc_ms", date(2026, 3, 4), date(2026, 3, 31))
    assert skipped == {"no_client_id": 2, "no_value": 1}
    assert sorted(built["os"]) == ["*", "Linux"]
    assert list(frame.columns) == telemetry.AGGREGATE_COLUMNS
    only = frame.to_dict("records")
    assert len(only) == 1 and only[0]["os"] == "Linux" and only[0]["client_count"] == 3
    assert (only[0]["product"], only[0]["probe_name"], only[0]["first_day"], only[0]["last_day"]) == (
        "firefox",
        "gc_ms",
        date(2026, 3, 4),
        date(2026, 3, 31),
    )
    assert json.loads(only[0]["histogram"]) == [
        {"bucket": 0, "lower": 0.0, "upper": 0.5, "clients": 2},
        {"bucket": 1, "lower": 0.5, "upper": 1.0, "clients": 1},
    ]
    _, none, none_skipped = telemetry.aggregates_frames(
        raw.slice(0, 0), "firefox", "gc_ms", date(2026, 3, 4), date(2026, 3, 31)
    )
    assert len(none) == 0 and list(none.columns) == telemetry.AGGREGATE_COLUMNS
    assert none_skipped == {"no_client_id": 0, "no_value": 0}
