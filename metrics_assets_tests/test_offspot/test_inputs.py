"""packages.yaml and the log folder: what is read, what is skipped, what is a configuration error."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from metrics_assets.offspot.logfiles import (
    CorruptFile,
    classify,
    files_for_window,
    truncated_last_line,
)
from metrics_assets.offspot.packages import Package, parse_packages
from metrics_assets.settings import ConfigurationError
from metrics_assets_tests.test_offspot.conftest import PACKAGES


def test_packages_parse_and_skip_entry_missing_title():
    packages, warnings = parse_packages(PACKAGES)
    assert packages[:3] == [
        Package("zim", "Wikipedia", "kiwix.hotspot", zim="wikipedia_en_all"),
        Package("zim", "Wiktionnaire", "kiwix.hotspot", zim="wiktionary_fr"),
        Package("files", "Khan videos", "khan.hotspot"),
    ]
    assert packages[3] == Package("app", "EduPi", "edupi.hotspot", ident="edupi.offspot.kiwix.org")
    assert len(packages) == 6
    assert warnings == ["package #6 (//kiwix.hotspot/viewer#ted_en_all) has no title: skipped"]


def test_packages_other_bad_entries_are_warnings():
    _, warnings = parse_packages(
        "packages:\n  - kind: video\n    title: T\n    url: //x/\n  - kind: zim\n    title: Z\n    url: //k/viewer\n  - 3\n"
    )
    assert warnings == [
        "package #0 (T) has unknown kind 'video': skipped",
        "package #1 (Z) is a zim whose url '//k/viewer' names no zim: skipped",
        "package #2 is not a mapping: skipped",
    ]


@pytest.mark.parametrize("text", ["packages: [unclosed", "nothing: here\n"])
def test_broken_packages_file_is_a_configuration_error(text):
    with pytest.raises(ConfigurationError, match="OFFSPOT_PACKAGES_FILE"):
        parse_packages(text)


def test_classify_skips_files_that_are_not_access_logs():
    inventory = classify(
        [
            "access.log",
            "access-2026-01-02T15-04-05.000.log.gz",
            "access-2026-01-03T00-00-00.000.log",
            "heartbeat.log",
            "Caddyfile",
            "access.log.swp",
            "error.log",
        ]
    )
    assert [f.name for f in inventory.access] == [
        "access-2026-01-02T15-04-05.000.log.gz",
        "access-2026-01-03T00-00-00.000.log",
        "access.log",
    ]
    assert inventory.access[0].gzipped and inventory.access[0].rolled_at == datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC)
    assert inventory.heartbeat == "heartbeat.log"
    assert inventory.skipped_files == {
        "Caddyfile": "not an access log",
        "access.log.swp": "not an access log",
        "error.log": "not an access log",
    }


def test_files_for_window_reads_only_the_rotations_that_meet_it():
    names = [f"access-2026-01-0{d}T00-00-00.000.log.gz" for d in range(2, 7)] + ["access.log"]
    files = classify(names).access
    # [Jan 3 12:00, 13:00): rolled Jan 4 00:00 covers (Jan 3, Jan 4]; the live file always
    window = files_for_window(files, datetime(2026, 1, 3, 12, tzinfo=UTC), datetime(2026, 1, 3, 13, tzinfo=UTC))
    assert [f.name for f in window] == ["access-2026-01-04T00-00-00.000.log.gz", "access.log"]
    # an hour right after a roll also reads the file rolled just before it (1 h margin)
    window = files_for_window(files, datetime(2026, 1, 4, 0, tzinfo=UTC), datetime(2026, 1, 4, 1, tzinfo=UTC))
    assert [f.name for f in window] == [
        "access-2026-01-04T00-00-00.000.log.gz",
        "access-2026-01-05T00-00-00.000.log.gz",
        "access.log",
    ]


def test_truncated_last_line_detection(tmp_path):
    plain = tmp_path / "a.log"
    plain.write_text('{"a":1}\n{"a":')
    assert truncated_last_line(plain, False)
    plain.write_text('{"a":1}\n{"a":2}')  # complete JSON without newline: not truncated
    assert not truncated_last_line(plain, False)
    plain.write_text('{"a":1}\n')
    assert not truncated_last_line(plain, False)
    gz = tmp_path / "b.log.gz"
    with gzip.open(gz, "wt") as stream:
        stream.write('{"a":1}\n{"lev')
    assert truncated_last_line(gz, True)
    gz.write_bytes(gz.read_bytes()[:-12])  # a gzip stream cut short
    with pytest.raises(CorruptFile, match="corrupt gzip"):
        truncated_last_line(gz, True)


def test_default_pattern_reads_a_stock_box_and_the_access_family():
    # a stock box: metrics.json, rolled uncompressed (offspot/container-images gen-caddyfile.py)
    inventory = classify(
        [
            "metrics.json",
            "metrics-2026-01-05T09-40-00.000.json",
            "metrics-2026-01-05T10-20-00.000.json.gz",
            "access.log",
            "access-2026-01-05T10-00-00.000.log.gz",
            "packages.yaml",
            "heartbeat.log",
            "metrics.jsonl",
            "metrics-2026-01-05.json",
            "log_watcher_state.json",
        ]
    )
    assert [(f.name, f.family, f.gzipped) for f in inventory.access] == [
        ("access-2026-01-05T10-00-00.000.log.gz", "access.log", True),
        ("access.log", "access.log", False),
        ("metrics-2026-01-05T09-40-00.000.json", "metrics.json", False),
        ("metrics-2026-01-05T10-20-00.000.json.gz", "metrics.json", True),
        ("metrics.json", "metrics.json", False),
    ]
    assert inventory.skipped_files == {
        "log_watcher_state.json": "not an access log",
        "metrics-2026-01-05.json": "not an access log",
        "metrics.jsonl": "not an access log",
    }


def test_twins_and_rotation_chains_per_family():
    from metrics_assets.offspot.logfiles import covered_from, twins

    files = classify(
        [
            "metrics-2026-01-05T08-00-00.000.json",
            "metrics-2026-01-05T10-20-00.000.json",
            "metrics-2026-01-05T10-20-00.000.json.gz",
            "metrics.json",
            "access-2026-01-05T03-00-00.000.log.gz",
            "access.log",
        ]
    ).access
    assert [(a.name, b.name) for a, b in twins(files)] == [
        ("metrics-2026-01-05T10-20-00.000.json", "metrics-2026-01-05T10-20-00.000.json.gz")
    ]
    once = [f for f in files if f.name != "metrics-2026-01-05T10-20-00.000.json.gz"]
    chosen = files_for_window(once, datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 11, tzinfo=UTC))
    # each family's chain on its own: the access family's 03:00 roll is not metrics' predecessor
    assert [f.name for f in chosen] == ["access.log", "metrics-2026-01-05T10-20-00.000.json", "metrics.json"]
    # metrics' chosen files start after its 08:00 roll, access's after its 03:00 roll: covered from 03:00
    assert covered_from(once, chosen) == datetime(2026, 1, 5, 3, tzinfo=UTC)
    # a family read from its oldest file only: known from that file's first line only
    assert (
        covered_from(
            once, [f for f in chosen if f.family == "metrics.json"] + [f for f in once if f.name.startswith("access-")]
        )
        is None
    )
