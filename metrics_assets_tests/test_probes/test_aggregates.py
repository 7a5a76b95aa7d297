"""probe_aggregates: the Athena SQL parses as Trino, and its DuckDB result equals a
plain-Python reference; the asset writes exactly its probe's slice."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from metrics_assets.probes import telemetry
from metrics_assets.probes.assets import probe_aggregates, probe_partitions
from metrics_assets.resources import DuckDBQueryEngine
from metrics_assets.resources.query_engine import render
from metrics_assets_tests.test_probes.conftest import add_catalogue

FX = "firefox"


def write_samples(home, day: str, rows: list[tuple], name="samples.parquet"):
    """rows: (product, channel, os, version, probe_name, client_id, value)."""
    path = home / "objects" / telemetry.BUCKET / telemetry.sample_key(day, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(telemetry.COLUMNS)
    pq.write_table(
        pa.table({c: pa.array([r[i] for r in rows], telemetry.COLUMNS[c]) for i, c in enumerate(columns)}), path
    )


def sample_rows():
    rows = []
    # release/Windows/131: 7 clients, several samples each, irregular values
    values = {
        "c1": [1.0, 3.0],
        "c2": [10.0],
        "c3": [2.5, 2.5, 4.0],
        "c4": [100.0],
        "c5": [7.0, 8.0],
        "c6": [0.5],
        "c7": [55.0, 45.0],
    }
    for client, vs in values.items():
        rows += [(FX, "release", "Windows", "131", "gc_ms", client, v) for v in vs]
    # beta/Linux/132: 2 clients
    rows += [(FX, "beta", "Linux", "132", "gc_ms", "d1", 4.0), (FX, "beta", "Linux", "132", "gc_ms", "d2", 6.0)]
    # one client, one value: every percentile is that value, one bucket
    rows += [(FX, "nightly", None, "133", "gc_ms", "e1", 9.0)]
    # skipped: no client, no value
    rows += [
        (FX, "release", "Windows", "131", "gc_ms", None, 5.0),
        (FX, "release", "Windows", "131", "gc_ms", "c1", None),
    ]
    # other probe / product: never in gc_ms's aggregate
    rows += [
        (FX, "release", "Windows", "131", "other", "c1", 1000.0),
        ("fenix", "release", "Windows", "131", "gc_ms", "c1", 1000.0),
    ]
    return rows


def reference(rows, buckets):
    """Plain Python: per-client means, linear-interpolated percentiles, equal-width histogram."""
    sums = defaultdict(lambda: [0.0, 0])
    for product, channel, os, version, probe, client, value in rows:
        if product != FX or probe != "gc_ms" or not client or value is None:
            continue
        for system in (os or "unknown", "*"):  # each os, and GLAM's "any os" '*'
            key = (channel or "unknown", system, version or "unknown", client)
            sums[key][0] += value
            sums[key][1] += 1
    groups = defaultdict(list)
    for (channel, os, version, _), (total, n) in sums.items():
        groups[(channel, os, version)].append(total / n)
    out = {}
    for group, means in groups.items():
        xs = sorted(means)
        n = len(xs)

        def pct(p, xs=xs, n=n):
            h = (n - 1) * p
            lo = math.floor(h)
            hi = math.ceil(h)
            return xs[lo] + (h - lo) * (xs[hi] - xs[lo])

        lo, hi = xs[0], xs[-1]
        hist = defaultdict(int)
        for x in xs:
            hist[0 if hi == lo else min(math.floor((x - lo) / (hi - lo) * buckets), buckets - 1)] += 1
        out[group] = {
            "client_count": n,
            "sample_count": sum(sums[k][1] for k in sums if k[:3] == group),
            **{f"p{int(p * 100)}": pct(p) for p in (0.05, 0.25, 0.5, 0.75, 0.95)},
            "histogram": [
                {
                    "bucket": b,
                    "lower": lo + b * (hi - lo) / buckets,
                    "upper": hi if hi == lo else lo + (b + 1) * (hi - lo) / buckets,
                    "clients": c,
                }
                for b, c in sorted(hist.items())
            ],
        }
    return out


PARAMS = {"product": FX, "probe_name": "gc_ms", "first_day": "2026-03-04", "last_day": "2026-03-10", "buckets": 4}


def test_sql_parses_as_trino_and_renders_for_athena_and_duckdb():
    sql = telemetry.aggregates_sql()
    tree = sqlglot.parse_one(sql, read="trino")
    assert {t.name for t in tree.find_all(sqlglot.exp.Table)} >= {"telemetry_samples"}
    athena = render(sql, PARAMS, "athena")
    assert "day BETWEEN '2026-03-04' AND '2026-03-10'" in athena
    duck = render(sql, PARAMS, "duckdb")  # raises if a placeholder were left unbound
    assert "probe_name = 'gc_ms'" in duck and "LEAST(" in duck.upper()


def test_duckdb_result_equals_python_reference(metrics_home):
    rows = sample_rows()
    write_samples(metrics_home, "2026-03-09", rows[:9])
    write_samples(metrics_home, "2026-03-10", rows[9:])
    write_samples(
        metrics_home, "2026-03-01", [(FX, "release", "Windows", "131", "gc_ms", "old", 1e6)]
    )  # outside the days
    engine = DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects"))
    result = engine.execute(telemetry.aggregates_sql(), PARAMS)
    assert result.table.column("skipped_no_client")[0].as_py() == 1
    assert result.table.column("skipped_no_value")[0].as_py() == 1
    got = {(r["channel"], r["os"], r["version"]): r for r in telemetry.histograms(result.table).to_pylist()}
    expected = reference(rows, 4)
    assert (
        set(got)
        == set(expected)
        == {
            ("release", "Windows", "131"),
            ("beta", "Linux", "132"),
            ("nightly", "unknown", "133"),
            ("release", "*", "131"),
            ("beta", "*", "132"),
            ("nightly", "*", "133"),
        }
    )
    for group, exp in expected.items():
        row = got[group]
        assert row["client_count"] == exp["client_count"]
        assert row["sample_count"] == exp["sample_count"]
        for p in ("p5", "p25", "p50", "p75", "p95"):
            assert row[p] == pytest.approx(exp[p], rel=1e-12), (group, p)
        hist = json.loads(row["histogram"])
        assert [h["bucket"] for h in hist] == [h["bucket"] for h in exp["histogram"]]
        assert [h["clients"] for h in hist] == [h["clients"] for h in exp["histogram"]]
        assert [h["lower"] for h in hist] == pytest.approx([h["lower"] for h in exp["histogram"]])
        assert [h["upper"] for h in hist] == pytest.approx([h["upper"] for h in exp["histogram"]])
    # hand check of one group: client means 2, 10, 3, 100, 7.5, 0.5, 50 -> sorted
    # 0.5, 2, 3, 7.5, 10, 50, 100; median 7.5; p25 = 2 + 0.5 * 1 = 2.5
    assert got[("release", "Windows", "131")]["p50"] == 7.5
    assert got[("release", "Windows", "131")]["p25"] == 2.5


def test_asset_writes_the_probe_slice_idempotently(warehouse, metrics_home, resources, monkeypatch):
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-10")
    monkeypatch.setenv("PROBES_SAMPLE_DAYS", "7")
    monkeypatch.setenv("PROBES_HISTOGRAM_BUCKETS", "4")
    add_catalogue(warehouse, FX, ["gc_ms", "other"])
    rows = sample_rows()
    write_samples(metrics_home, "2026-03-10", rows)
    warehouse.append(
        "probe_aggregates",
        [
            {  # another probe's slice stays
                "product": FX,
                "probe_name": "other",
                "channel": "x",
                "os": "x",
                "version": "1",
                "client_count": 1,
                "histogram": "[]",
                "first_day": "2026-03-01",
                "last_day": "2026-03-01",
            }
        ],
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(probe_partitions.name, [f"{FX}/gc_ms", f"{FX}/missing"])
        for _ in range(2):
            result = dg.materialize(
                [probe_aggregates], partition_key=f"{FX}/gc_ms", resources=resources, instance=instance
            )
            assert result.success
            table = warehouse.fetch_all("SELECT * FROM probe_aggregates WHERE probe_name = 'gc_ms' ORDER BY channel")
            assert [(r["channel"], r["os"], r["version"], r["client_count"]) for r in table] == [
                ("beta", "Linux", "132", 2),
                ("nightly", "unknown", "133", 1),
                ("release", "Windows", "131", 7),
            ]
            assert table[2]["p50"] == 7.5 and str(table[2]["first_day"]) == "2026-03-04"
        metadata = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey("probe_aggregates")
        )
        assert metadata["skipped_samples"].value == {"no_client_id": 1, "no_value": 1}
        assert metadata["dagster/row_count"].value == 3
        assert warehouse.scalar("SELECT count(*) FROM probe_aggregates WHERE probe_name = 'other'") == 1
        # The rows written into GLAM's tables are recorded on the external glam_aggregations asset.
        glam = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey("glam_aggregations")
        )
        in_glam = {
            t: warehouse.scalar(f"SELECT count(*) FROM {t} WHERE metric = 'gc_ms'")
            for t in (
                "glam_desktop_nightly_aggregation",
                "glam_desktop_beta_aggregation",
                "glam_desktop_release_aggregation",
            )
        }
        assert glam["tables"].value == {t: n for t, n in in_glam.items() if n}
        assert glam["dagster/row_count"].value == sum(in_glam.values()) > 0

        failed = dg.materialize(
            [probe_aggregates],
            partition_key=f"{FX}/missing",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        message = failed.get_step_failure_events()[0].step_failure_data.error.message
        assert "unknown probe 'missing' for product 'firefox': it is not in glam_probe_catalogue" in message
