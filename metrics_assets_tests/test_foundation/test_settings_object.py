"""The typed settings object: one field per variable, one parser per type, errors that name
the variable. Expectations are written by hand."""

import re
from datetime import date
from pathlib import Path

import pytest

from metrics_assets import settings


def test_defaults_without_any_variable():
    now = settings.current({})
    assert now.deployment == "local"
    assert now.query_max_rows == 1_000_000
    assert now.query_timeout_s == 300.0
    assert now.probes_view_actions == ("PROBE_SEARCH", "PROBE_VIEW")
    assert now.probes_as_of is None
    assert now.region == "us-east-1"


def test_each_type_is_parsed():
    now = settings.current(
        {
            "METRICS_DEPLOYMENT": " Production ",
            "METRICS_QUERY_MAX_ROWS": "25",
            "METRICS_QUERY_TIMEOUT_S": "0.5",
            "PROBES_AS_OF": "2026-02-28",
            "PROBES_VIEW_ACTIONS": "PROBE_SEARCH, ,PROBE_VIEW,",
            "METRICS_HOME": "~/somewhere",
            "AWS_DEFAULT_REGION": "eu-west-3",
            "EVENT_LAKE_PREFIX": "",  # blank means unset
        }
    )
    assert now.deployment == "production"
    assert now.query_max_rows == 25
    assert now.query_timeout_s == 0.5
    assert now.probes_as_of == date(2026, 2, 28)
    assert now.probes_view_actions == ("PROBE_SEARCH", "PROBE_VIEW")
    assert now.home == Path.home() / "somewhere"
    assert now.region == "eu-west-3"
    assert now.event_lake_prefix == "events"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"METRICS_QUERY_MAX_ROWS": "ten"}, "METRICS_QUERY_MAX_ROWS='ten' must be a whole number."),
        ({"METRICS_QUERY_MAX_ROWS": "0"}, "METRICS_QUERY_MAX_ROWS='0' must be at least 1."),
        ({"METRICS_QUERY_TIMEOUT_S": "nan"}, "METRICS_QUERY_TIMEOUT_S='nan' must be a finite number."),
        ({"STORAGE_NOTIFICATION_DELAY_SECONDS": "90000"}, "must be at most 86400"),
        ({"PROBES_AS_OF": "28/02/2026"}, "PROBES_AS_OF='28/02/2026' is not a date"),
        ({"METRICS_DEPLOYMENT": "staging"}, "is not one of local, production"),
        ({"DAGSTER_PG_PORT": "70000"}, "DAGSTER_PG_PORT='70000' must be at most 65535."),
    ],
)
def test_a_wrong_value_names_its_variable(environ, message):
    now = settings.current(environ)
    (name,) = environ
    field = next(v.attribute for v in settings.declared() if v.env == name)
    with pytest.raises(settings.ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        getattr(now, field)


def test_a_wrong_value_does_not_stop_the_other_settings():
    now = settings.current({"EVENT_LATENESS_HOURS": "soon", "METRICS_QUERY_MAX_ROWS": "7"})
    assert now.query_max_rows == 7
    with pytest.raises(settings.ConfigurationError, match=r"EVENT_LATENESS_HOURS='soon' must be a whole number\."):
        _ = now.event_lateness_hours


def test_every_variable_is_declared_once():
    names = [v.env for v in settings.declared()]
    assert len(names) == len(set(names))


#: Variables the README names that the code location does not read: the offspot box's own
#: log folder (its Caddyfile), and the test and benchmark database URLs (read by the tests).
NOT_OURS = {"METRICS_LOGS_DIR", "METRICS_TEST_PG_URL", "METRICS_BENCH_PG_URL"}


def test_the_readme_and_the_settings_object_name_the_same_variables():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = (
        set(
            re.findall(
                r"\b((?:METRICS|EVENT|OFFSPOT|PROBES|GLAM|STORAGE|ATHENA|SQS|AWS|DAGSTER_PG|S3)_[A-Z0-9_]*[A-Z0-9]|DAGSTER_HOME)\b",
                readme,
            )
        )
        - NOT_OURS
    )
    declared = {v.env for v in settings.declared()}
    assert sorted(named - declared) == [], "named in the README but not declared in settings.Settings"
    assert sorted(declared - named) == [], "declared in settings.Settings but not documented in the README"
