"""Attribution rules (compiled to regexes, applied in DuckDB) and notification parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.settings import ConfigurationError
from metrics_assets.storage import config
from metrics_assets.storage.notifications import parse_message
from metrics_assets.storage.rules import (
    Rule,
    attribution_select,
    compile_pattern,
    parse_rules,
)

from .conftest import s3_message, s3_record, sns_envelope

RULES = parse_rules(
    {
        "rules": [
            {"pattern": "uploads/{owner}/{object_id}/**", "metered_object_type": "UPLOAD"},
            {"pattern": "scenes/{owner}/{object_id}/**", "metered_object_type": "SCENE"},
            {"pattern": "tiles/*/{owner}-{object_id}.pmtiles", "metered_object_type": "TILESET", "bucket": "tiles"},
        ]
    }
)


def test_patterns_compile_to_anchored_regexes():
    regex, owner, object_id, location = compile_pattern("uploads/{owner}/{object_id}/**")
    assert regex == "^(uploads/([^/]+)/([^/]+))(?:/.*)?$"
    assert (owner, object_id, location) == (2, 3, 1)
    assert compile_pattern("a.b/{object_id}/{owner}")[0] == "^(a\\.b/([^/]+)/([^/]+))$"
    for bad in ("x/{owner}/**", "x/{owner}/{object_id}/{owner}", "x/{who}/{object_id}", "x/{owner/{object_id}"):
        with pytest.raises(ConfigurationError):
            compile_pattern(bad)


def test_duckdb_attribution_first_rule_wins_and_unmatched_is_unattributed():
    con = open_session()
    con.execute("CREATE TABLE keys (bucket VARCHAR, key VARCHAR)")
    con.executemany(
        "INSERT INTO keys VALUES (?, ?)",
        [
            ("b1", "uploads/alice/u1/file.bin"),
            ("b1", "uploads/alice/u1/deep/er/file.bin"),
            ("b1", "uploads/alice/u2"),  # the trailing /** matches nothing too
            ("b1", "uploads/alice"),  # no object_id: unattributed
            ("b1", "scenes/bob/s-9/band 1.tif"),
            ("tiles", "tiles/z/carol-t7.pmtiles"),
            ("b1", "tiles/z/carol-t7.pmtiles"),  # that rule is for bucket 'tiles' only
            ("b2", "elsewhere/x"),
        ],
    )
    rows = con.execute(attribution_select(RULES, "keys") + " ORDER BY bucket, key").fetchall()
    assert rows == [
        ("b1", "scenes/bob/s-9/band 1.tif", "SCENE", "s-9", "bob", "s3://b1/scenes/bob/s-9"),
        ("b1", "tiles/z/carol-t7.pmtiles", "UNATTRIBUTED", "b1", None, "s3://b1/"),
        ("b1", "uploads/alice", "UNATTRIBUTED", "b1", None, "s3://b1/"),
        ("b1", "uploads/alice/u1/deep/er/file.bin", "UPLOAD", "u1", "alice", "s3://b1/uploads/alice/u1"),
        ("b1", "uploads/alice/u1/file.bin", "UPLOAD", "u1", "alice", "s3://b1/uploads/alice/u1"),
        ("b1", "uploads/alice/u2", "UPLOAD", "u2", "alice", "s3://b1/uploads/alice/u2"),
        ("b2", "elsewhere/x", "UNATTRIBUTED", "b2", None, "s3://b2/"),
        ("tiles", "tiles/z/carol-t7.pmtiles", "TILESET", "t7", "carol", "s3://tiles/tiles/z/carol-t7.pmtiles"),
    ]


def test_default_rules_file_loads_and_buckets_parse(monkeypatch, tmp_path):
    assert [r.metered_object_type for r in config.rules()][:2] == ["UPLOAD", "SCENE"]
    monkeypatch.setenv("STORAGE_BUCKETS", "s3://a, b/scenes/ ,c")
    assert config.buckets() == [config.Scope("a", ""), config.Scope("b", "scenes/"), config.Scope("c", "")]
    monkeypatch.setenv("STORAGE_BUCKETS", "a/x/,a/x/y")
    with pytest.raises(ConfigurationError, match="overlaps"):
        config.buckets()
    monkeypatch.setenv("METRICS_DEPLOYMENT", "production")
    monkeypatch.delenv("STORAGE_BUCKETS")
    with pytest.raises(ConfigurationError, match="STORAGE_BUCKETS must be set"):
        config.buckets()
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - pattern: 'x/{owner}'\n    metered_object_type: UPLOAD\n")
    monkeypatch.setenv("STORAGE_RULES_FILE", str(bad))
    with pytest.raises(ConfigurationError, match=r"STORAGE_RULES_FILE=.*object_id"):
        config.rules()
    assert Rule("a/{owner}/{object_id}", "X").literal_prefix == "a/"


def test_parse_plain_sns_test_event_truncated_and_foreign_messages():
    body = s3_message(
        s3_record("b", "uploads/al ice/u1/my file!.txt", "ObjectCreated:Put", 12, "0055aed6dcd90281e5"),
        s3_record("b", "uploads/x/y/z", "ObjectRemoved:Delete", None, "0055AED6DCD90281E6"),
    )
    assert '"uploads/al+ice/u1/my+file%21.txt"' in body  # as S3 sends it
    parsed = parse_message(body)
    assert parsed.dead == [] and not parsed.test_event
    assert parsed.events == [
        {
            "bucket": "b",
            "key": "uploads/al ice/u1/my file!.txt",
            "version_id": "",
            "event_name": "ObjectCreated:Put",
            "size": 12,
            "sequencer": "0055AED6DCD90281E5",
            "event_time": datetime(2026, 11, 20, 10, tzinfo=UTC),
        },
        {
            "bucket": "b",
            "key": "uploads/x/y/z",
            "version_id": "",
            "event_name": "ObjectRemoved:Delete",
            "size": None,
            "sequencer": "0055AED6DCD90281E6",
            "event_time": datetime(2026, 11, 20, 10, tzinfo=UTC),
        },
    ]
    # The same through SNS.
    assert parse_message(sns_envelope(body)).events == parsed.events
    # s3:TestEvent, plain or wrapped: acknowledged, nothing recorded.
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert parse_message(test_event).test_event and parse_message(sns_envelope(test_event)).test_event
    # Truncated, foreign, and a bad record next to a good one.
    assert parse_message(body[: len(body) // 2]).dead[0][1].startswith("not JSON")
    assert parse_message(json.dumps({"hello": "world"})).dead == [(-1, "not an S3 event notification (no Records)")]
    mixed = parse_message(
        s3_message(
            s3_record("b", "k", "ObjectCreated:Put", 5, "01"),
            s3_record("b", "k2", "ObjectCreated:Put", None, "02"),
            {"eventSource": "aws:sqs"},
            s3_record("b", "k3", "ObjectCreated:Put", 5, "not-hex"),
        )
    )
    assert [e["key"] for e in mixed.events] == ["k"]
    assert [d[0] for d in mixed.dead] == [1, 2, 3]
    assert mixed.dead[0][1] == "ObjectCreated event without size"


def test_missing_sequencer_is_derived_from_event_time_in_order():
    early = parse_message(s3_message(s3_record("b", "k", "ObjectCreated:Put", 1, None, "2026-11-20T10:00:00.001Z")))
    late = parse_message(s3_message(s3_record("b", "k", "ObjectCreated:Put", 1, None, "2026-11-20T10:00:00.002Z")))
    assert early.sequencer_derived == 1
    assert early.events[0]["sequencer"] < late.events[0]["sequencer"]
    assert len(early.events[0]["sequencer"]) == 24


def test_duckdb_attribution_agrees_with_python_regexes_on_random_keys():
    """The snapshot extracts locations with capture-free regexes (location_extract); Python's
    re with the capturing ones (attribute_in_python) is the independent reference."""
    import random

    from metrics_assets.storage.rules import attribute_in_python

    rules = parse_rules(
        {
            "rules": [
                {"pattern": "uploads/{owner}/{object_id}/**", "metered_object_type": "UPLOAD"},
                {"pattern": "a/**/x/{owner}/{object_id}/**", "metered_object_type": "DEEP"},
                {"pattern": "b/{owner}/{object_id}**", "metered_object_type": "LOOSE"},
                {"pattern": "tiles/*/{owner}-{object_id}.pmtiles", "metered_object_type": "TILESET", "bucket": "tiles"},
                {"pattern": "c.d/{object_id}/{owner}", "metered_object_type": "EXACT"},
            ]
        }
    )
    rng = random.Random(7)
    parts = ["uploads", "a", "b", "x", "tiles", "c.d", "cxd", "o", "i", "", "q-r", "z.pmtiles", "u-v.pmtiles"]
    keys = sorted(
        {
            ("tiles" if rng.random() < 0.3 else "bk", "/".join(rng.choice(parts) for _ in range(rng.randrange(1, 8))))
            for _ in range(3000)
        }
    )
    con = open_session()
    con.execute("CREATE TABLE keys (bucket VARCHAR, key VARCHAR)")
    con.executemany("INSERT INTO keys VALUES (?, ?)", keys)
    got = {
        (b, k): (t, o, w)
        for b, k, t, o, w in con.execute(
            f"SELECT bucket, key, metered_object_type, object_id, owner FROM ({attribution_select(rules, 'keys')})"
        ).fetchall()
    }
    expected = {(b, k): attribute_in_python(rules, b, k) for b, k in keys}
    assert got == expected
    assert len({v[0] for v in expected.values()}) == 6  # every rule and UNATTRIBUTED occur
