"""The hourly rules, on the pure DuckDB computation, with hand-computed expectations."""

from __future__ import annotations

from datetime import UTC, datetime

from metrics_assets.offspot.indicators import AccessFile, BoxInput, compute_indicators
from metrics_assets.offspot.logfiles import truncated_last_line
from metrics_assets.offspot.packages import parse_packages
from metrics_assets_tests.test_offspot.conftest import PACKAGES, req, ts, write_log

H10 = datetime(2026, 1, 5, 10, tzinfo=UTC)
H11 = datetime(2026, 1, 5, 11, tzinfo=UTC)
H12 = datetime(2026, 1, 5, 12, tzinfo=UTC)
PKGS, _ = parse_packages(PACKAGES)


def run(tmp_path, items, start=H10, end=H11, heartbeat=None, gz=False, tail=None, name="access.log"):
    path = write_log(tmp_path / name, items, gz=gz, tail=tail)
    hb = None
    if heartbeat is not None:
        hb = tmp_path / "heartbeat.log"
        hb.write_text("".join(f"{h}\n" for h in heartbeat))
    files = [AccessFile(path, name, truncated_last_line(path, gz))]
    return compute_indicators([BoxInput("default", files, hb, PKGS)], start, end)


def rows(result, indicator_id=None):
    out = []
    for r in result.records.to_pylist():
        if indicator_id is None or r["indicator_id"] == indicator_id:
            out.append((r["indicator_id"], r["period_start"].strftime("%H:%M"), r["dimension"], r["value"]))
    return out


def test_slot_examples(tmp_path):
    # Wikipedia: first request 10:00:59, another 10:10:00 -> slots start 10:00 -> 2 slots -> 20.
    # Khan: first 10:01:00, another 10:10:00 -> slots start 10:01 -> 1 slot -> 10.
    # Overall: first request 10:00:59 -> start 10:00; minutes 00, 01, 10 -> 2 slots -> 20.
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:00:59", "kiwix.hotspot", "/content/wikipedia_en_all/A/Foo"),
            req("2026-01-05 10:01:00", "khan.hotspot", "/"),
            req("2026-01-05 10:10:00", "kiwix.hotspot", "/content/wikipedia_en_all/A/Bar"),
            req("2026-01-05 10:10:00", "khan.hotspot", "/videos/1.mp4"),
        ],
    )
    assert rows(result, 1005) == [(1005, "10:00", "", 20)]
    assert rows(result, 1006) == [(1006, "10:00", "Khan videos", 10), (1006, "10:00", "Wikipedia", 20)]


def test_usage_never_exceeds_60_and_counts_slots_not_requests(tmp_path):
    # a request every minute from 10:03: slots 10:03-10:12, ..., 10:53-10:59 -> 6 slots -> 60
    items = [req(f"2026-01-05 10:{m:02d}:30", "nomad.hotspot", f"/x/{m}") for m in range(3, 60)]
    result = run(tmp_path, items)
    assert rows(result, 1005) == [(1005, "10:00", "", 60)]
    assert rows(result, 1006) == [(1006, "10:00", "Nomad", 60)]


def test_home_visits_and_matching(tmp_path):
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:05:00", "kiwix.hotspot", "/content/wikipedia_en_all"),  # home
            req("2026-01-05 10:05:01", "kiwix.hotspot", "/content/wikipedia_en_all/"),  # home
            req("2026-01-05 10:05:02", "kiwix.hotspot", "/content/wikipedia_en_all/A/Foo"),  # request only
            req("2026-01-05 10:05:03", "kiwix.hotspot", "/content/wiktionary_fr/?lang=fr"),  # home (query ignored)
            req("2026-01-05 10:05:04", "kiwix.hotspot", "/viewer#wikipedia_en_all"),  # no /content/: nothing
            req("2026-01-05 10:05:05", "kiwix.hotspot", "/content/ted_en_all/"),  # package has no title: nothing
            req("2026-01-05 10:05:06", "unknown.hotspot", "/"),  # unknown host: nothing
            req("2026-01-05 10:05:07", "khan.hotspot", "/"),  # home
            req("2026-01-05 10:05:08", "Khan.Hotspot:80", "/"),  # home (host normalised)
            req("2026-01-05 10:05:09", "khan.hotspot", "/videos/2.mp4"),  # request only
            req("2026-01-05 10:05:10", "edupi.hotspot", "/"),  # app: never a home visit
        ],
    )
    assert rows(result, 1001) == [
        (1001, "10:00", "Khan videos", 2),
        (1001, "10:00", "Wikipedia", 2),
        (1001, "10:00", "Wiktionnaire", 1),
    ]
    assert [r[2] for r in rows(result, 1006)] == ["EduPi", "Khan videos", "Wikipedia", "Wiktionnaire"]
    assert result.requests_in_window == 11
    assert result.requests_matched == 8  # 3 wikipedia, 1 wiktionnaire, 3 khan, 1 edupi


def test_unknown_host_gives_nothing(tmp_path):
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:05:00", "captive.hotspot", "/"),
            req("2026-01-05 10:06:00", "captive.hotspot", "/content/wikipedia_en_all/"),
        ],
    )
    assert rows(result) == [(1004, "10:00", "", 2)]  # only uptime, from the access-log minutes
    assert result.requests_matched == 0


def test_shared_files_operations(tmp_path):
    fm = "files.hotspot"
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:01:00", "edupi.hotspot", "/api/documents/", method="POST", status=201),
            req("2026-01-05 10:02:00", "edupi.hotspot", "/api/documents/", method="POST", status=201),
            req("2026-01-05 10:03:00", "edupi.hotspot", "/api/documents/", method="POST", status=400),
            req("2026-01-05 10:04:00", "edupi.hotspot", "/api/documents/12", method="DELETE", status=204),
            req("2026-01-05 10:05:00", "edupi.hotspot", "/api/documents/13", method="DELETE", status=404),
            req("2026-01-05 10:05:30", "edupi.hotspot", "/api/documents/", method="POST", status=500),  # level error
            req(
                "2026-01-05 10:06:00",
                fm,
                "/api/upload",
                method="POST",
                resp_headers={"X-Tfm-Files-Added": ["3"], "X-Tfm-Files-Deleted": ["1"]},
            ),
            req("2026-01-05 10:07:00", fm, "/api/upload", method="POST", resp_headers={"X-Tfm-Files-Added": ["2"]}),
            req("2026-01-05 10:08:00", "nomad.hotspot", "/api/documents/", method="POST", status=201),  # other app
        ],
    )
    # created: 2 (edupi) + 3 + 2 (file manager) = 7; deleted: 1 (edupi) + 1 (file manager) = 2
    assert rows(result, 1003) == [(1003, "10:00", "FILE_CREATED", 7), (1003, "10:00", "FILE_DELETED", 2)]
    # the 400, 404 and 500 are logged at level "error" by Caddy 2 (4xx too), so not counted
    assert result.skipped_lines["not_handled_request"] == 3


def test_bad_lines_are_counted_by_reason(tmp_path):
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:01:00", "khan.hotspot", "/"),
            "this is not json",
            '{"level":"info","ts":1767607300.5,"logger":"tls.obtain","msg":"certificate obtained"}',
            '{"level":"info","ts":"yesterday","logger":"http.log.access.log0","msg":"handled request"}',
            req("2026-01-05 10:02:00", "khan.hotspot", "/", status=502),
            req("2026-01-05 10:03:00", "khan.hotspot", "/", level="debug"),
            req("2026-01-05 10:04:00", "khan.hotspot", "/"),
        ],
        tail='{"level":"info","ts":1767607500.1,"logger":"http.log.acc',
    )
    assert result.skipped_lines == {
        "not_json": 1,
        "truncated_last_line": 1,
        "other_logger": 1,
        "bad_timestamp": 1,
        "not_handled_request": 2,
    }
    assert result.lines_read == 8
    assert rows(result, 1001) == [(1001, "10:00", "Khan videos", 2)]


def test_truncated_last_line_in_rotated_gzip(tmp_path):
    result = run(
        tmp_path,
        [req("2026-01-05 10:01:00", "khan.hotspot", "/"), "garbage"],
        gz=True,
        tail='{"level":"info","ts":17676',
        name="access-2026-01-05T10-30-00.000.log.gz",
    )
    assert result.skipped_lines["truncated_last_line"] == 1
    assert result.skipped_lines["not_json"] == 1
    assert rows(result, 1001) == [(1001, "10:00", "Khan videos", 1)]


def test_uptime_from_heartbeat_else_access_minutes(tmp_path):
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:30:00", "khan.hotspot", "/"),
            req("2026-01-05 11:05:00", "khan.hotspot", "/"),
            req("2026-01-05 11:05:30", "unknown.hotspot", "/"),
            req("2026-01-05 11:20:00", "khan.hotspot", "/", status=503),
        ],
        start=H10,
        end=H12,
        heartbeat=[
            ts("2026-01-05 10:00:05"),
            ts("2026-01-05 10:00:40"),
            ts("2026-01-05 10:01:10"),
            ts("2026-01-05 10:59:59"),
            "garbage",
            ts("2026-01-05 12:00:00"),
        ],
    )
    # hour 10: heartbeat minutes 00, 01, 59 -> 3 (the access-log minute 10:30 is ignored)
    # hour 11: no heartbeat -> access-log minutes 05 and 20 -> 2
    assert rows(result, 1004) == [(1004, "10:00", "", 3), (1004, "11:00", "", 2)]
    assert result.uptime_source_hours == {"heartbeat": 1, "access_log": 1}
    assert result.skipped_lines["heartbeat_not_a_timestamp"] == 1


def test_hour_boundary(tmp_path):
    result = run(
        tmp_path,
        [
            req("2026-01-05 09:59:59", "khan.hotspot", "/"),
            req("2026-01-05 10:00:00", "khan.hotspot", "/"),
            {**req("2026-01-05 10:59:59", "khan.hotspot", "/"), "ts": ts("2026-01-05 10:59:59") + 0.999},
            req("2026-01-05 11:00:00", "khan.hotspot", "/"),
        ],
    )
    assert rows(result, 1001) == [(1001, "10:00", "Khan videos", 2)]


def test_no_ip_or_user_agent_in_output(tmp_path):
    result = run(tmp_path, [req("2026-01-05 10:01:00", "khan.hotspot", "/", ip="10.9.8.7", ua="SecretAgent/1.0")])
    text = str(result.records.to_pylist()) + str(result.__dict__)
    assert "10.9.8.7" not in text and "SecretAgent" not in text


def test_bad_line_in_a_file_whose_end_is_clean(tmp_path):
    # read strictly first, then again tolerantly when the strict scan meets the bad lines
    result = run(
        tmp_path,
        [
            req("2026-01-05 10:01:00", "khan.hotspot", "/"),
            "{broken json",
            '{"level":"info","ts":"yesterday","logger":"http.log.access","msg":"handled request"}',
            req("2026-01-05 10:02:00", "khan.hotspot", "/"),
        ],
    )
    assert result.skipped_lines == {
        "not_json": 1,
        "truncated_last_line": 0,
        "other_logger": 0,
        "bad_timestamp": 1,
        "not_handled_request": 0,
    }
    assert rows(result, 1001) == [(1001, "10:00", "Khan videos", 2)]
