"""Ad hoc lake queries: keyset paging and submit-to-FINISHED latency, on PostgreSQL.

1. Page 1,000 vs page 1 of a 1,000,000-row result (1,000 rows a page): the keyset
   (``row_number > last``) makes a deep page cost what the first costs. Target: within 2x.
   The note gives the same deep page by OFFSET, for contrast. The result is produced by the
   real run (DuckDB over stand-in ``events_v0`` files, rows to JSON, COPY into the warehouse).
2. Submit-to-FINISHED latency of a small query, with the sensor ticking every I seconds (a
   thread plays the daemon: it evaluates ``historical_queries_sensor`` every I s and executes
   each run request in process). Baseline: I + the query itself (one sensor evaluation and
   the run it asks for, executed directly: the slowest of 3). Status is polled every 50 ms. Target: latency <= baseline (ratio <= 1.0). A real daemon adds its run
   launcher's process start-up to "the run itself".
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import dagster as dg

from benchmarks.run import Result, timed
from metrics_assets.queries import paging, runner, store
from metrics_assets.queries.client import QueryClient
from metrics_assets.resources import DuckDBQueryEngine, Warehouse
from metrics_assets_tests.test_queries import lake as standin
from metrics_assets_tests.test_queries.helpers import definitions, launch, tick

PAGE = 1000


def _median_ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        with timed() as t:
            fn()
        samples.append(t() * 1000)
    return statistics.median(samples)


def run(ctx) -> list[Result]:
    n_rows = 20_000 if ctx.quick else 1_000_000
    interval = 1.0 if ctx.quick else 2.0
    objects = ctx.scratch / "objects"
    old_home = os.environ.get("METRICS_HOME")
    os.environ["METRICS_HOME"] = str(ctx.scratch)
    before = standin.standin_tables()
    try:
        standin.write_events(objects, "v0", standin.sample_v0(1), 1_763_800_000_000)
        standin.write_events(objects, "v1", standin.sample_v1(4), 1_763_800_000_000)
        url = ctx.fresh_pg_database()
        warehouse = Warehouse(url=url)
        warehouse.ensure_schema()
        engine = DuckDBQueryEngine(object_store_dir=str(objects))
        client = QueryClient(warehouse)

        # -- 1. paging ---------------------------------------------------------------------
        big = client.submit(
            # One lake row times n: the result size must not depend on how many events the
            # registered events_v0 view holds (the events domain's own view replaces the
            # stand-in when it is imported).
            "SELECT customerid, servicename, n FROM (SELECT customerid, servicename FROM events_v0 LIMIT 1) AS e"
            f" CROSS JOIN UNNEST(sequence(1, {n_rows})) AS t(n) ORDER BY n",
            retention_minutes=60,
        )
        with timed() as t_run:
            outcome = runner.run_query(warehouse, engine, big)
        assert outcome.status == store.FINISHED and outcome.row_count == n_rows, outcome
        deep_page = n_rows // PAGE
        deep_token = paging.encode(big, (deep_page - 1) * PAGE)
        first = client.next(big, None, PAGE)
        deep = client.next(big, deep_token, PAGE)
        assert first["rows"][0]["n"] == 1 and deep["rows"][-1]["n"] == n_rows and deep["next_paging_token"] is None
        repeat = 7 if ctx.quick else 25
        t_first = _median_ms(lambda: client.next(big, None, PAGE), repeat)
        t_deep = _median_ms(lambda: client.next(big, deep_token, PAGE), repeat)
        t_offset = _median_ms(
            lambda: warehouse.fetch_all(
                'SELECT row_number, "row" FROM historical_query_results WHERE query_id = :q '
                "ORDER BY row_number LIMIT :n OFFSET :o",
                {"q": big, "n": PAGE, "o": (deep_page - 1) * PAGE},
            ),
            max(3, repeat // 5),
        )

        # -- 2. latency ----------------------------------------------------------------------
        defs = definitions(warehouse, engine)
        small_sql = "SELECT envelope.service.name AS service, count(*) AS n FROM events_v1 GROUP BY 1 ORDER BY 1"
        latencies, direct = [], []
        with dg.instance_for_test() as instance:
            for _ in range(3):  # one sensor tick and the run it asks for, executed directly
                q = client.submit(small_sql)
                with timed() as t:
                    launch(defs, instance, tick(defs, instance, warehouse)[0])
                direct.append(t())
            stop = threading.Event()

            def daemon() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    for request in tick(defs, instance, warehouse):
                        launch(defs, instance, request)
                    stop.wait(max(0.0, interval - (time.monotonic() - started)))

            thread = threading.Thread(target=daemon, daemon=True)
            thread.start()
            try:
                for i in range(3):
                    time.sleep(interval * (0.3 + 0.3 * i))  # submit at different phases of the tick
                    submitted = time.monotonic()
                    q = client.submit(small_sql)
                    while client.status(q).status not in (store.FINISHED, store.FAILED):
                        time.sleep(0.05)
                    latencies.append(time.monotonic() - submitted)
                    assert client.status(q).status == store.FINISHED
            finally:
                stop.set()
                thread.join(60)
    finally:
        standin.restore(before)
        if old_home is None:
            os.environ.pop("METRICS_HOME", None)
        else:
            os.environ["METRICS_HOME"] = old_home
    worst, run_s = max(latencies), max(direct)
    size = f"{n_rows:,}-row result"
    return [
        Result(f"page {deep_page:,} of a {size}", t_deep, "ms", "page 1", t_first, max_ratio=2.0,
               note=f"OFFSET for the same page: {t_offset:,.1f} ms; the run storing {n_rows:,} rows took {t_run():,.1f} s"),
        Result("submit-to-FINISHED latency (worst of 3)", worst, "s", f"sensor interval {interval:g} s + tick and run", interval + run_s,
               max_ratio=1.0, note=f"latencies {', '.join(f'{x:.2f}' for x in latencies)} s; run alone {run_s:.2f} s"),
    ]
