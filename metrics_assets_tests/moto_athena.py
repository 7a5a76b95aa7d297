"""Athena's part in an UNLOAD, played over HTTP against moto's Athena (:class:`AthenaUnload`).

The engine reads every query's rows from UNLOAD's Parquet files, never from ``GetQueryResults``
pages, so no test queues page results in moto any more."""

from __future__ import annotations

import io
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import requests
import sqlglot
from sqlglot import exp

# -- Athena's part in an UNLOAD, played over HTTP --------------------------------------------
#: AWS's UNLOAD syntax (athena/latest/ug/unload.html):
#: ``UNLOAD (SELECT ...) TO 's3://bucket/folder/' WITH (property_name = 'expression' [, ...])``
UNLOAD_SYNTAX = re.compile(
    r"^\s*UNLOAD\s*\((?P<select>.*)\)\s*TO\s*'(?P<to>[^']*)'\s*WITH\s*\((?P<props>.*)\)\s*$", re.DOTALL | re.IGNORECASE
)
NEVER = 1_000_000  # status checks before moto moves a query on: never, until released


def _transition(endpoint: str, times: int | None) -> None:
    url = f"{endpoint}/moto-api/state-manager/{'set' if times is not None else 'unset'}-transition"
    body = {"model_name": "athena::execution"}
    if times is not None:
        body["transition"] = {"progression": "manual", "times": times}
    requests.post(url, json=body, timeout=10).raise_for_status()


def duckdb_over(tables: dict[str, pa.Table]) -> Callable[[str], pa.Table]:
    """Runs a Trino SELECT, translated to DuckDB by sqlglot, over in-memory fixture tables."""

    def run(select: str) -> pa.Table:
        conn = duckdb.connect()
        try:
            for name, table in tables.items():
                conn.register(name, table)
            return conn.sql(sqlglot.transpile(select, read="trino", write="duckdb")[0]).to_arrow_table()
        finally:
            conn.close()

    return run


class AthenaUnload:
    """Plays Athena's part for the UNLOAD statements an engine sends to moto's Athena.

    What is simulated and why: moto's Athena (server mode, over HTTP) tracks queries and their
    states but runs no SQL and writes no UNLOAD output. So, for every query the engine starts,
    this thread reads the statement back from moto (GetQueryExecution), checks it is AWS's
    UNLOAD syntax with a SELECT that parses as Trino (sqlglot) and a TO folder under
    ``output_root`` that holds no object yet (Athena requires an empty folder), runs that
    SELECT with ``run_select`` (DuckDB over the same fixture data), and writes what Athena
    documents into moto's S3: the result as Parquet files in the TO folder, split over
    ``files`` files (Athena writes in parallel, each file sorted but not the files among
    themselves: rows are dealt round-robin, which keeps each file in the SELECT's order), and
    the data manifest ``<QueryID>-manifest.csv`` (one s3:// URI per line) in the folder of the
    query's result location. File names are ours (the engine reads whatever the manifest
    lists). Only then is the query let through to SUCCEEDED (moto's state manager holds every
    query QUEUED until then), so the engine never sees a finished query without its files.
    Statements that are not UNLOADs (DDL) are let through as they are.
    """

    def __init__(self, endpoint: str, output_root: str, run_select: Callable[[str], pa.Table], files: int = 2):
        self.endpoint, self.output_root, self.run_select, self.files = endpoint, output_root, run_select, files
        self.athena = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1")
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.statements: list[str] = []  # every statement, in the order the engine sent them
        self.selects: list[str] = []  # the SELECT inside each UNLOAD
        self.errors: list[BaseException] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="athena-unload", daemon=True)

    def __enter__(self) -> Self:
        _transition(self.endpoint, NEVER)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        _transition(self.endpoint, None)
        if self.errors:
            raise AssertionError(f"Athena's part failed: {self.errors[0]!r}") from self.errors[0]

    def _new_ids(self) -> list[str]:
        ids = []
        for group in self.athena.list_work_groups()["WorkGroups"]:
            for qid in self.athena.list_query_executions(WorkGroup=group["Name"])["QueryExecutionIds"]:
                if qid not in self._seen:
                    ids.append(qid)
        return ids

    def _loop(self) -> None:
        while not self._stop.is_set():
            for qid in self._new_ids():
                self._seen.add(qid)
                try:
                    self._answer(qid)
                except BaseException as error:
                    self.errors.append(error)
                    # Athena's part failed: end the query, so that the engine does not wait forever.
                    self.athena.stop_query_execution(QueryExecutionId=qid)
            time.sleep(0.01)

    def _answer(self, qid: str) -> None:
        execution = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        statement = execution["Query"]
        self.statements.append(statement)
        assert execution["Status"]["State"] == "QUEUED", f"{qid} moved on before Athena's part was done"
        match = UNLOAD_SYNTAX.match(statement)
        if match is not None:
            self._unload(qid, execution, match)
        self._release(qid)

    def _unload(self, qid: str, execution: dict, match: re.Match) -> None:
        select, to, props = match["select"], match["to"], match["props"]
        assert isinstance(sqlglot.parse_one(select, read="trino"), exp.Query), select
        assert re.search(r"format\s*=\s*'PARQUET'", props, re.IGNORECASE), props
        assert to.startswith(self.output_root) and to.endswith("/"), to
        bucket, _, folder = to[len("s3://") :].partition("/")
        assert self.s3.list_objects_v2(Bucket=bucket, Prefix=folder)["KeyCount"] == 0, f"{to} is not empty"
        self.selects.append(select)
        table = self.run_select(select)
        uris = []
        for n in range(min(self.files, table.num_rows) or 1):  # an empty result: one file, no rows
            part = table.take(pa.array(range(n, table.num_rows, self.files), pa.int64()))
            sink = io.BytesIO()
            pq.write_table(part, sink, compression="snappy")
            key = f"{folder}{qid}_{n:05d}_{uuid.uuid4()}"
            self.s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
            uris.append(f"s3://{bucket}/{key}")
        result_file = execution["ResultConfiguration"]["OutputLocation"]  # s3://bucket/folder/<QueryID>.csv
        manifest_bucket, _, result_key = result_file[len("s3://") :].partition("/")
        self.s3.put_object(
            Bucket=manifest_bucket,
            Key=f"{result_key[: result_key.rfind('/') + 1]}{qid}-manifest.csv",
            Body=("\n".join(uris) + "\n").encode(),
        )

    def _release(self, qid: str) -> None:
        """Let ``qid`` (only) through to SUCCEEDED: one status check per step, then hold again."""
        _transition(self.endpoint, 1)
        try:
            for _ in range(3):
                if self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
                    "SUCCEEDED",
                    "CANCELLED",
                    "FAILED",
                ):
                    break
        finally:
            _transition(self.endpoint, NEVER)


@contextmanager
def athena_engine(endpoint: str, *, work_group: str, output: str, database: str) -> Iterator[tuple]:
    """An ``AthenaQueryEngine`` talking to moto over HTTP: the results bucket (``output``'s) and
    the work group made first, moto reset after. Yields ``(engine, athena client)``."""
    from metrics_assets.resources import AthenaQueryEngine

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=output.removeprefix("s3://").split("/")[0])
    client = boto3.client("athena", endpoint_url=endpoint)
    client.create_work_group(Name=work_group, Configuration={"ResultConfiguration": {"OutputLocation": output}})
    engine = AthenaQueryEngine(
        work_group=work_group,
        output_location=output,
        database=database,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        poll_interval_s=0.05,
    )
    try:
        yield engine, client
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
