"""usage_snapshot (listing, past-day cutoff, idempotent reruns), its reconciliation check,
storage_billing_monthly (GB-days), and a broken configuration failing the run by name."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from metrics_assets.storage.automation import RECONCILIATION_KEY
from metrics_assets.storage.usage import latest_snapshot

from .conftest import (
    TODAY,
    evaluate_reconciliation,
    materialize_billing,
    materialize_snapshot,
    metadata_of,
    run_sensor,
    s3_message,
    s3_record,
    usage_rows,
)


def _write(root, bucket: str, key: str, size: int, mtime: datetime) -> None:
    """A sparse file of ``size`` bytes, last modified at ``mtime``."""
    path = root / "objects" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def _table(warehouse, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in warehouse.fetch_all(sql)]


def test_snapshots_of_past_days_and_monthly_gb_days(local_resources, metrics_home):
    warehouse = local_resources["warehouse"]
    _write(
        metrics_home,
        "platform-uploads",
        "uploads/alice/u1/big.bin",
        1_500_000_000,
        datetime(2026, 10, 29, 8, tzinfo=UTC),
    )
    _write(metrics_home, "platform-scenes", "scenes/bob/s1/a.tif", 500_000_000, datetime(2026, 10, 31, 12, tzinfo=UTC))
    _write(metrics_home, "platform-scenes", "loose.txt", 7, datetime(2026, 10, 29, tzinfo=UTC))
    _write(metrics_home, "unmetered-bucket", "uploads/carol/c1/x", 10**12, datetime(2026, 10, 1, tzinfo=UTC))
    for day in ("2026-10-30", "2026-10-31", "2026-11-01"):
        assert materialize_snapshot(local_resources, date.fromisoformat(day)).success
    assert usage_rows(warehouse, "usage_data", "snapshot_date = :d", {"d": date(2026, 10, 30)}) == {
        ("UPLOAD", "u1", "alice", 1_500_000_000, 1),
        ("UNATTRIBUTED", "platform-scenes", None, 7, 1),
    }
    assert usage_rows(warehouse, "usage_data", "snapshot_date = :d", {"d": date(2026, 10, 31)}) == {
        ("UPLOAD", "u1", "alice", 1_500_000_000, 1),
        ("SCENE", "s1", "bob", 500_000_000, 1),
        ("UNATTRIBUTED", "platform-scenes", None, 7, 1),
    }

    # Reruns leave every table identical.
    tables = ("usage_data", "storage_snapshot_objects")
    before = {t: sorted(_table(warehouse, f"SELECT * FROM {t} WHERE snapshot_date <> '2026-10-31'")) for t in tables}
    rerun = materialize_snapshot(local_resources, date(2026, 10, 30))
    after = {t: sorted(_table(warehouse, f"SELECT * FROM {t} WHERE snapshot_date <> '2026-10-31'")) for t in tables}
    assert before == after
    meta = metadata_of(rerun, "usage_snapshot")
    assert (
        meta["keys_listed"],
        meta["keys_metered"],
        meta["skipped_modified_after_day"],
        meta["unattributed_keys"],
    ) == (3, 2, 1, 1)

    october = materialize_billing(local_resources, "2026-10-01")
    assert materialize_billing(local_resources, "2026-11-01").success
    assert materialize_billing(local_resources, "2026-10-01").success  # rerun: same rows
    rows = _table(
        warehouse,
        "SELECT month, owner, byte_days, gb_days, days_measured FROM storage_billing_monthly ORDER BY month, owner",
    )
    assert [(str(r[0])[:10], *r[1:]) for r in rows] == [
        ("2026-10-01", "alice", 3_000_000_000, 3.0, 2),
        ("2026-10-01", "bob", 500_000_000, 0.5, 2),
        ("2026-11-01", "alice", 1_500_000_000, 1.5, 1),
        ("2026-11-01", "bob", 500_000_000, 0.5, 1),
    ]
    meta = metadata_of(october, "storage_billing_monthly")
    assert meta["unattributed_byte_days"] == 14 and len(meta["skipped_days_without_snapshot"]) == 29

    # Per-key listings are kept 7 days before the latest snapshot: older days keep their
    # usage_data but not their listing, and live usage never starts from them.
    assert materialize_snapshot(local_resources, date(2026, 11, 10)).success
    listed = _table(warehouse, "SELECT snapshot_date, count(*) FROM storage_snapshot_objects GROUP BY snapshot_date")
    assert [(str(d)[:10], n) for d, n in listed] == [("2026-11-10", 3)]
    assert warehouse.scalar("SELECT count(*) FROM usage_data WHERE snapshot_date = '2026-10-31'") == 3
    assert latest_snapshot(warehouse, before=date(2026, 11, 10)) is None


def _check(result, name: str = "live_matches_snapshot") -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def _reconciled(resources: dict, day: date = TODAY) -> dg.AssetCheckEvaluation:
    """The snapshot, then one sensor tick that reads the queue empty (so nothing sent before the
    listing can still wait), then the check as the sensor re-runs it."""
    pending = _check(materialize_snapshot(resources, day))
    assert pending.metadata["status"].value == "pending"
    result, _ = run_sensor(resources)
    assert RECONCILIATION_KEY in [k for r in result.run_requests for k in (r.asset_check_keys or [])]
    return _check(evaluate_reconciliation(resources))


def test_reconciliation_warns_above_a_tenth_of_a_percent_and_fails_above_one(local_resources, metrics_home):
    queue = local_resources["notification_queue"]
    yesterday = TODAY - timedelta(days=1)
    noon = datetime.combine(yesterday, datetime.min.time(), UTC) + timedelta(hours=12)
    _write(metrics_home, "platform-uploads", "uploads/alice/u1/a", 1000, noon)
    _write(metrics_home, "platform-scenes", "scenes/bob/s1/x", 1000, noon)
    first = materialize_snapshot(local_resources, yesterday)
    assert _check(first).passed and _check(first).metadata["status"].value == "not compared"

    now = datetime.now(UTC)
    seconds_ago = (now - timedelta(seconds=2)).isoformat()
    _write(metrics_home, "platform-uploads", "uploads/alice/u1/a", 1500, now)
    queue.send(
        s3_message(s3_record("platform-uploads", "uploads/alice/u1/a", "ObjectCreated:Put", 1500, "02", seconds_ago))
    )
    run_sensor(local_resources)
    _write(metrics_home, "platform-scenes", "scenes/bob/s1/y", 5, now)  # no notification: 5 / 1005 = 0.5% drift
    check = _reconciled(local_resources)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["status"].value == "warn" and check.metadata["owners_differing"].value == 1
    assert "| bob | 1005 | 1000 | -5 | 0.4975% |" in check.metadata["differences"].value

    _write(metrics_home, "platform-scenes", "scenes/bob/s1/z", 100, now)  # 105 / 1105 = 9.5%
    check = _reconciled(local_resources)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)

    for key, size, seq in (("scenes/bob/s1/y", 5, "01"), ("scenes/bob/s1/z", 100, "01")):
        queue.send(s3_message(s3_record("platform-scenes", key, "ObjectCreated:Put", size, seq, seconds_ago)))
    run_sensor(local_resources)
    check = _reconciled(local_resources)
    assert check.passed and check.metadata["max_drift"].value == 0.0


def test_a_change_just_before_the_listing_notified_after_it_is_pending_then_passes(
    local_resources, metrics_home, warehouse
):
    """The lag case: S3 changed an object just before the listing, and its notification reaches
    the queue only after the listing. Before the sensor has read the queue empty after the
    listing, the check says pending (a WARN, never an ERROR); then it passes. A change after the
    listing, already ingested when the check runs, is left out (eventTime after the listing)."""
    queue = local_resources["notification_queue"]
    yesterday = TODAY - timedelta(days=1)
    noon = datetime.combine(yesterday, datetime.min.time(), UTC) + timedelta(hours=12)
    _write(metrics_home, "platform-uploads", "uploads/alice/u1/a", 10_000, noon)
    _write(metrics_home, "platform-scenes", "scenes/bob/s1/x", 1000, noon)
    assert materialize_snapshot(local_resources, yesterday).success
    run_sensor(local_resources)  # the queue is read empty: before the change below

    changed = datetime.now(UTC) - timedelta(seconds=1)
    _write(metrics_home, "platform-uploads", "uploads/alice/u1/a", 10_900, changed)  # +9%, not yet notified
    check = _check(materialize_snapshot(local_resources, TODAY))
    assert (check.passed, check.severity, check.metadata["status"].value) == (
        False,
        dg.AssetCheckSeverity.WARN,
        "pending",
    )
    assert (
        warehouse.scalar("SELECT reconciliation FROM storage_snapshot_runs WHERE snapshot_date = :d", {"d": TODAY})
        == "pending"
    )

    # The notification arrives after the listing, with a later change (after the listing) behind it.
    stamp = changed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    queue.send(
        s3_message(s3_record("platform-uploads", "uploads/alice/u1/a", "ObjectCreated:Put", 10_900, "0A", stamp))
    )
    queue.send(
        s3_message(s3_record("platform-uploads", "uploads/alice/u1/a", "ObjectCreated:Put", 50_000, "0B", later))
    )
    result, _ = run_sensor(local_resources)
    [rerun] = [r for r in result.run_requests if r.asset_check_keys]
    assert rerun.asset_check_keys == [RECONCILIATION_KEY] and not rerun.asset_selection
    # Run it as the daemon does: the sensor's job, subset to what the request names.
    from metrics_assets.definitions import defs

    sensor = defs.resolve_sensor_def("s3_notifications_sensor")
    job = defs.resolve_job_def(sensor.job_name).get_subset(
        asset_selection=set(rerun.asset_selection or []), asset_check_selection=set(rerun.asset_check_keys)
    )
    with dg.instance_for_test() as instance:
        run = job.execute_in_process(instance=instance)
    assert run.success and list(job.graph.node_dict) == ["usage_snapshot_live_matches_snapshot"]
    check = _check(run)
    assert check.passed and check.metadata["status"].value == "ok" and check.metadata["max_drift"].value == 0.0
    assert (
        warehouse.scalar("SELECT reconciliation FROM storage_snapshot_runs WHERE snapshot_date = :d", {"d": TODAY})
        == "ok"
    )
    # Nothing is pending any more: the next tick asks for no re-run.
    result, _ = run_sensor(local_resources)
    assert not [r for r in result.run_requests if r.asset_check_keys]


def test_the_reconciliation_also_waits_for_s3s_delivery_delay(local_resources, metrics_home, monkeypatch):
    """S3 may send a notification a while after the change: with STORAGE_NOTIFICATION_DELAY_SECONDS
    the check stays pending until the queue is read empty that long after the listing."""
    monkeypatch.setenv("STORAGE_NOTIFICATION_DELAY_SECONDS", "3600")
    yesterday = TODAY - timedelta(days=1)
    noon = datetime.combine(yesterday, datetime.min.time(), UTC) + timedelta(hours=12)
    _write(metrics_home, "platform-uploads", "uploads/alice/u1/a", 100, noon)
    assert materialize_snapshot(local_resources, yesterday).success
    check = _check(materialize_snapshot(local_resources))
    assert check.metadata["status"].value == "pending" and "3600 s" in check.metadata["reason"].value
    result, _ = run_sensor(local_resources)  # the queue read empty, but too soon
    assert not [r for r in result.run_requests if r.asset_check_keys]
    assert _check(evaluate_reconciliation(local_resources)).metadata["status"].value == "pending"
    monkeypatch.setenv("STORAGE_NOTIFICATION_DELAY_SECONDS", "0")
    result, _ = run_sensor(local_resources)
    assert [r for r in result.run_requests if r.asset_check_keys]
    assert _check(evaluate_reconciliation(local_resources)).metadata["status"].value == "ok"
    monkeypatch.setenv("STORAGE_NOTIFICATION_DELAY_SECONDS", "soon")
    bad = evaluate_reconciliation(local_resources, raise_on_error=False)
    assert not bad.success
    assert "STORAGE_NOTIFICATION_DELAY_SECONDS='soon'" in str(
        bad.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    )


def test_a_broken_configuration_fails_the_run_naming_the_variable(local_resources, monkeypatch, metrics_home):
    monkeypatch.setenv("STORAGE_RULES_FILE", str(metrics_home / "missing.yaml"))
    result = dg.materialize(
        [__import__("metrics_assets.storage.assets", fromlist=["usage_snapshot"]).usage_snapshot],
        partition_key=TODAY.isoformat(),
        resources=local_resources,
        raise_on_error=False,
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "STORAGE_RULES_FILE=" in str(failure.step_failure_data.user_failure_data.description)
