"""One runner for every benchmark: ``python -m benchmarks.run [name ...] [--quick]``.

Each ``benchmarks/bench_<name>.py`` defines ``run(ctx) -> list[Result]``. A result is a
measured figure and the baseline it is compared with, both from this same run, and the
target the ratio must meet. Nothing here is a unit test: the runner prints and exits non-zero
only if a target is missed.

``ctx`` gives a scratch folder, a fresh PostgreSQL database (``METRICS_BENCH_PG_URL`` names
the server, default ``postgresql://postgres@127.0.0.1:5432/postgres``) and ``quick`` (smaller
inputs, for a smoke run).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa


@dataclass
class Result:
    name: str
    value: float  # the measured figure, in `unit`
    unit: str
    baseline_name: str
    baseline: float  # the baseline's figure, in `unit`, from the same run
    #: the ratio value/baseline must be <= max_ratio (for times) or >= min_ratio (for throughputs)
    max_ratio: float | None = None
    min_ratio: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def ok(self) -> bool:
        too_slow = self.max_ratio is not None and self.ratio > self.max_ratio
        too_little = self.min_ratio is not None and self.ratio < self.min_ratio
        return not (too_slow or too_little)

    @property
    def informational(self) -> bool:
        """A figure shown next to a target's (how it splits, say), with no target of its own."""
        return self.max_ratio is None and self.min_ratio is None

    def line(self) -> str:
        if self.max_ratio is not None:
            target = f"<= {self.max_ratio}x"
        elif self.min_ratio is not None:
            target = f">= {self.min_ratio}x"
        else:
            target = "none, for information"
        verdict = "INFO" if self.informational else "PASS" if self.ok else "MISS"
        return (
            f"{verdict}  {self.name}: {self.value:,.3f} {self.unit} vs "
            f"{self.baseline_name} {self.baseline:,.3f} {self.unit} -> ratio {self.ratio:,.2f}x "
            f"(target {target}){'  ' + self.note if self.note else ''}"
        )


@dataclass
class Context:
    scratch: Path
    quick: bool
    pg_server_url: str
    _databases: list[str] = field(default_factory=list)

    def fresh_pg_database(self) -> str:
        from metrics_assets.resources.warehouse import normalise_url

        name = f"metrics_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(normalise_url(self.pg_server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self._databases.append(name)
        return sa.make_url(self.pg_server_url).set(database=name).render_as_string(hide_password=False)

    def drop_databases(self) -> None:
        from metrics_assets.resources.warehouse import dispose_engine, normalise_url

        admin = sa.create_engine(normalise_url(self.pg_server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self._databases:
                url = sa.make_url(self.pg_server_url).set(database=name).render_as_string(hide_password=False)
                dispose_engine(url)
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def timed():
    """``with timed() as t: ...`` then ``t()`` is the elapsed seconds."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(discover())})")
    parser.add_argument("--quick", action="store_true", help="small inputs: checks the benchmarks run, not the targets")
    args = parser.parse_args(argv)
    names = args.names or discover()
    pg = os.environ.get("METRICS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="metrics_bench_") as scratch:
        ctx = Context(Path(scratch), args.quick, pg)
        try:
            for name in names:
                module = importlib.import_module(f"benchmarks.bench_{name}")
                print(f"== {name}", flush=True)
                for result in module.run(ctx):
                    print(result.line(), flush=True)
                    results.append(result)
        finally:
            ctx.drop_databases()
    targeted = [r for r in results if not r.informational]
    missed = [r for r in targeted if not r.ok]
    print(
        f"\n{len(targeted) - len(missed)} of {len(targeted)} targets met"
        + (" (quick run: targets not binding)" if args.quick else "")
    )
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
