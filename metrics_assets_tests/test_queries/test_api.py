"""The REST API on a real HTTP server (uvicorn on 127.0.0.1, in a thread), and a fuzz of it
from its own OpenAPI document with schemathesis."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from metrics_assets.queries import paging, runner
from metrics_assets.queries.api import create_app
from metrics_assets.settings import ConfigurationError
from metrics_assets_tests.test_queries.test_validation import CORPUS

TOKEN = "s3cret-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api(warehouse, engine):
    """A live server over ``warehouse``; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(token=TOKEN, warehouse=warehouse), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_no_token_configured_means_no_app(monkeypatch):
    monkeypatch.delenv("METRICS_API_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="METRICS_API_TOKEN is not set"):
        create_app()


def test_the_whole_flow_over_http(api, warehouse, engine, events):
    http = httpx.Client(base_url=api, headers=AUTH, timeout=30)
    # Auth first: no token, wrong token.
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.post(f"{api}/v0/data_hist/query", json={"query": "SELECT 1"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"

    response = http.post(
        "/v0/data_hist/query",
        json={
            "query": "SELECT customerid, createdtimestamp FROM events_v0 ORDER BY createdtimestamp",
            "retention_minutes": 60,
        },
    )
    assert response.status_code == 200
    query_id = response.json()["query_id"]
    status = http.get(f"/v0/data_hist/status/{query_id}").json()
    assert (status["status"], status["error"], status["row_count"]) == ("QUEUED", None, None)

    response = http.post("/v0/data_hist/next", json={"query_id": query_id})
    assert response.status_code == 409 and response.json()["error"] == "query_not_finished"

    runner.run_query(warehouse, engine, query_id)  # what the sensor's run does
    status = http.get(f"/v0/data_hist/status/{query_id}").json()
    assert (status["status"], status["row_count"]) == ("FINISHED", 9)
    assert status["columns"] == [
        {"name": "customerid", "type": "BIGINT"},
        {"name": "createdtimestamp", "type": "BIGINT"},
    ]

    expected = [{"customerid": e["customerid"], "createdtimestamp": e["createdtimestamp"]} for e in events["v0"]]
    rows, token = [], None
    while True:
        page = http.post(
            "/v0/data_hist/next", json={"query_id": query_id, "paging_token": token, "results_per_page": 4}
        ).json()
        rows += page["rows"]
        token = page["next_paging_token"]
        if token is None:
            break
    assert rows == expected

    # The errors, each a 4xx with a JSON body saying what was wrong.
    def error(response, status, code):
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] == code and body["detail"]
        return body

    body = error(
        http.post("/v0/data_hist/query", json={"query": "SELECT resourceid FROM events_v0"}), 400, "invalid_query"
    )
    assert body["reason"] == "forbidden_column" and "resourceid" in body["detail"]
    error(http.post("/v0/data_hist/query", json={"query": "SELEC 1"}), 400, "invalid_query")
    error(
        http.post(
            "/v0/data_hist/query", json={"query": "SELECT customerid FROM events_v0", "retention_minutes": 10081}
        ),
        422,
        "invalid_request",
    )
    error(
        http.post("/v0/data_hist/query", content=b"not json", headers={"Content-Type": "application/json"}),
        422,
        "invalid_request",
    )
    error(http.get("/v0/data_hist/status/00000000-0000-0000-0000-000000000000"), 404, "unknown_query_id")
    error(http.get("/v0/data_hist/status/nope"), 404, "unknown_query_id")
    body = error(
        http.post("/v0/data_hist/next", json={"query_id": query_id, "results_per_page": 1001}),
        400,
        "page_size_too_large",
    )
    assert "at most 1000" in body["detail"]
    error(
        http.post("/v0/data_hist/next", json={"query_id": query_id, "paging_token": "garbage"}),
        400,
        "invalid_paging_token",
    )
    error(
        http.post("/v0/data_hist/next", json={"query_id": query_id, "paging_token": paging.encode(query_id, 99)}),
        400,
        "invalid_paging_token",
    )
    warehouse.execute("UPDATE historical_queries SET expires_at = finished_at")
    error(http.post("/v0/data_hist/next", json={"query_id": query_id}), 410, "result_expired")
    assert http.get(f"/v0/data_hist/status/{query_id}").json()["status"] == "EXPIRED"
    http.close()


def test_the_corpus_is_refused_over_http_before_the_engine(api, warehouse, engine):
    with httpx.Client(base_url=api, headers=AUTH, timeout=30) as http:
        for _, sql, reason in CORPUS:
            response = http.post("/v0/data_hist/query", json={"query": sql})
            if len(sql) > 1_000_000:  # over the body limit: refused before it is even parsed
                assert (response.status_code, response.json()["error"]) == (413, "body_too_large"), response.text
                continue
            assert response.status_code == 400, (sql[:200], response.text[:300])
            assert response.json()["reason"] == reason
    assert warehouse.scalar("SELECT count(*) FROM historical_queries") == 0
    assert engine.calls == []


def test_the_openapi_document_is_published(api):
    doc = httpx.get(f"{api}/openapi.json").json()
    assert set(doc["paths"]) == {
        "/v0/data_hist/query",
        "/v0/data_hist/status/{query_id}",
        "/v0/data_hist/next",
        "/v0/data_hist/query/{query_id}",
    }
    submit = doc["components"]["schemas"]["SubmitRequest"]
    assert submit["properties"]["query"]["minLength"] == 1 and submit["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_schemathesis_every_check(api, warehouse, engine, events, tmp_path):
    """schemathesis's CLI over the served OpenAPI document, every check (``--checks all``),
    every phase (examples, coverage, fuzzing, stateful through the document's links): zero
    failures. Its one setting is in schemathesis.toml, with why."""
    with httpx.Client(base_url=api, headers=AUTH) as http:
        query_id = http.post("/v0/data_hist/query", json={"query": "SELECT customerid FROM events_v0"}).json()[
            "query_id"
        ]
    runner.run_query(warehouse, engine, query_id)
    here = Path(__file__).parent
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(here / "schemathesis.toml"),
            "run",
            f"{api}/openapi.json",
            "--checks",
            "all",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--seed",
            "20261129",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its cache stays out of the repo
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    assert "passed" in summary and "failure" not in summary.split("SUMMARY")[-1].replace("0 failures", ""), summary


def test_every_error_is_a_4xx_json_body(api, warehouse, engine, events):
    http = httpx.Client(base_url=api, headers=AUTH, timeout=60)

    def error(response, status, code):
        assert response.status_code == status, response.text[:300]
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["error"] == code and body["detail"], body
        return body

    # Strict types: no bool for int, no string for int, no unknown field.
    for bad in (
        {"query": "SELECT customerid FROM events_v0", "retention_minutes": True},
        {"query": "SELECT customerid FROM events_v0", "retention_minutes": "60"},
        {"query": "SELECT customerid FROM events_v0", "retention_minutes": 1.5},
        {"query": 42},
        {"query": "SELECT customerid FROM events_v0", "extra": 1},
    ):
        error(http.post("/v0/data_hist/query", json=bad), 422, "invalid_request")
    # 60.0 is JSON Schema's integer 60.
    assert (
        http.post(
            "/v0/data_hist/query", json={"query": "SELECT customerid FROM events_v0", "retention_minutes": 60.0}
        ).status_code
        == 200
    )
    error(http.post("/v0/data_hist/next", json={"query_id": "x", "results_per_page": "10"}), 422, "invalid_request")
    body = error(http.post("/v0/data_hist/query", json={"query": ""}), 400, "invalid_query")
    assert body["reason"] == "empty"
    # Parser recursion: 49 (and 5,000) nested parentheses.
    for depth in (49, 5000):
        body = error(
            http.post("/v0/data_hist/query", json={"query": "SELECT " + "(" * depth + "1" + ")" * depth}),
            400,
            "invalid_query",
        )
        assert body["reason"] == "too_deep"
    deep_json = "[" * 10_000 + "]" * 10_000
    response = http.post("/v0/data_hist/query", content=deep_json, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["error"] in ("invalid_request",)
    # 405 with Allow.
    response = http.put("/v0/data_hist/next", json={})
    error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    # Body and header size limits.
    error(http.post("/v0/data_hist/query", json={"query": "x" * (1024 * 1024 + 1)}), 413, "body_too_large")
    response = http.get("/v0/data_hist/status/00000000-0000-0000-0000-000000000000", headers={"X-Big": "y" * 20_000})
    assert response.status_code == 431
    # Cancel over REST.
    query_id = http.post("/v0/data_hist/query", json={"query": "SELECT customerid FROM events_v0"}).json()["query_id"]
    response = http.delete(f"/v0/data_hist/query/{query_id}")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    error(http.delete(f"/v0/data_hist/query/{query_id}"), 409, "query_already_final")
    error(http.delete("/v0/data_hist/query/00000000-0000-0000-0000-000000000000"), 404, "unknown_query_id")
    error(http.post("/v0/data_hist/next", json={"query_id": query_id}), 409, "query_cancelled")
    # Non-finite floats: null, and the type says so.
    query_id = http.post(
        "/v0/data_hist/query",
        json={"query": "SELECT CAST('NaN' AS DOUBLE) AS x, CAST('-Infinity' AS DOUBLE) AS y FROM events_v0 LIMIT 1"},
    ).json()["query_id"]
    runner.run_query(warehouse, engine, query_id)
    page = http.post("/v0/data_hist/next", json={"query_id": query_id}).json()
    assert page["rows"] == [{"x": None, "y": None}]
    assert page["columns"][0]["type"] == "DOUBLE (NaN and Infinity as null)"
    http.close()
