"""The production layout (deploy/): one code server, and a webserver and a daemon pointed at it
through deploy/workspace.yaml. Its pieces must agree: port, location name, module, commands."""

import configparser
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _exec_start(unit: str) -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / "systemd" / unit)
    return shlex.split(parser["Service"]["ExecStart"])


def test_services_point_at_one_code_server():
    [entry] = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["location_name"] == "metrics_assets"  # the name the demo keys sensor cursors by

    code = _exec_start("metrics-code-server.service")
    assert code[0].endswith("/dagster") and code[1:3] == ["code-server", "start"]
    assert code[code.index("-p") + 1] == str(grpc["port"])
    assert code[code.index("-h") + 1] == grpc["host"]
    assert code[code.index("-m") + 1] == "metrics_assets.definitions"
    assert code[code.index("--location-name") + 1] == grpc["location_name"]

    web = _exec_start("metrics-webserver.service")
    daemon = _exec_start("metrics-daemon.service")
    assert web[0].endswith("/dagster-webserver") and web[web.index("-w") + 1] == "deploy/workspace.yaml"
    assert daemon[0].endswith("/dagster-daemon") and daemon[1] == "run"
    assert daemon[daemon.index("-w") + 1] == "deploy/workspace.yaml"


def test_readme_gives_the_three_service_commands():
    readme = (ROOT / "README.md").read_text()
    for unit in ("metrics-code-server.service", "metrics-webserver.service", "metrics-daemon.service"):
        command = " ".join(_exec_start(unit)).replace("/opt/metrics_assets/.venv/bin/", "")
        assert command in readme, command
        assert unit in readme
