"""The demo is a good citizen of the Dagster instance it writes to."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from metrics_assets import demo

REPO_YAML = (Path(__file__).resolve().parents[2] / "dagster.yaml").read_text()


def test_demo_uses_dagster_home_when_set_with_the_projects_dagster_yaml(tmp_path, monkeypatch):
    home = tmp_path / "somewhere" / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert demo.prepare_dagster_home(tmp_path / "metrics_home") == home.resolve()
    assert (home / "dagster.yaml").read_text() == REPO_YAML
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        # compute logs under the instance's own storage, where the webserver serves them
        assert str(instance.compute_log_manager._base_dir).startswith(str(home.resolve()))


def test_demo_uses_its_own_home_otherwise_and_keeps_an_operators_yaml(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    metrics_home = tmp_path / "metrics_home"
    assert demo.prepare_dagster_home(metrics_home) == metrics_home / "dagster"
    assert (metrics_home / "dagster" / "dagster.yaml").read_text() == REPO_YAML
    # An operator's own dagster.yaml is kept; the one older demos wrote is replaced.
    custom = "telemetry:\n  enabled: false\n"
    (metrics_home / "dagster" / "dagster.yaml").write_text(custom)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    demo.prepare_dagster_home(metrics_home)
    assert (metrics_home / "dagster" / "dagster.yaml").read_text() == custom
    (metrics_home / "dagster" / "dagster.yaml").write_text(demo.OLD_INSTANCE_YAML)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    demo.prepare_dagster_home(metrics_home)
    assert (metrics_home / "dagster" / "dagster.yaml").read_text() == REPO_YAML
