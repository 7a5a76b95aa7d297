"""The cost of a process, as an operator pays it: one real offspot hour materialized through
the CLI, against a no-op hourly asset in a bare Dagster project, both through the CLI.

    dagster asset materialize -m metrics_assets.definitions --select offspot_indicators --partition H
    dagster asset materialize -f bare.py --select noop --partition H

Both run with a fresh temporary ``DAGSTER_HOME`` each (Dagster's default SQLite instance) in the
same environment; the measured figure is the CPU time (user + system) of the whole process
tree, from ``wait4``. Our side reads one busy hour of a box's real-shaped Caddy logs
(``metrics_assets/offspot/samples.py``: heartbeat, rotated gzip files, live access.log) into a
SQLite warehouse that is already at its schema's head (a warm-up run first: the schema upgrade
is a one-off per database). The sides alternate, three times each; the least CPU of each counts.
Target: <= 1.3x.

The code location runs each run in one process (``in_process_executor``, definitions.py), where
a bare project's default executor starts one more Python per step that imports the code again.
A second figure therefore compares against a bare project with the same executor: what our
imports, resources and the hour's work add to Dagster's own cost (target <= 1.6x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from benchmarks.run import Result

BARE = '''
import dagster as dg

hourly = dg.HourlyPartitionsDefinition(start_date="2020-01-01-00:00")


@dg.asset(partitions_def=hourly)
def noop(context: dg.AssetExecutionContext) -> None:
    """Does nothing: the cost of Dagster itself."""


defs = dg.Definitions(assets=[noop]{executor})
'''


def _cpu_of(argv: list[str], env: dict, cwd: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="bench_ops_home_") as home:
        proc = subprocess.Popen(
            argv, env={**env, "DAGSTER_HOME": home}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{output.decode(errors='replace')[-3000:]}")
    return usage.ru_utime + usage.ru_stime


def run(ctx) -> list[Result]:
    from metrics_assets.offspot.samples import demo_first_day, write_demo_box

    root = ctx.scratch / "ops"
    home = root / "metrics_home"
    log_dir, packages = home / "offspot" / "logs", home / "offspot" / "packages.yaml"
    first = demo_first_day(days=2)
    write_demo_box(log_dir, packages, first, days=2, visits_per_day=1500)
    hour = (first + timedelta(days=1, hours=12)).strftime("%Y-%m-%d-%H:%M")
    (root / "bare.py").write_text(BARE.format(executor=""))
    (root / "bare_in_process.py").write_text(BARE.format(executor=", executor=dg.in_process_executor"))
    dagster = str(Path(sys.executable).parent / "dagster")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_PG_", "METRICS_"))}
    env.update({"METRICS_HOME": str(home), "METRICS_DEPLOYMENT": "local", "PYTHONWARNINGS": "ignore"})
    ours = [
        dagster,
        "asset",
        "materialize",
        "-m",
        "metrics_assets.definitions",
        "--select",
        "offspot_indicators",
        "--partition",
        hour,
    ]
    bare = [dagster, "asset", "materialize", "-f", str(root / "bare.py"), "--select", "noop", "--partition", hour]
    bare_ip = [
        dagster,
        "asset",
        "materialize",
        "-f",
        str(root / "bare_in_process.py"),
        "--select",
        "noop",
        "--partition",
        hour,
    ]

    if not ctx.quick:  # (the quick smoke run counts the one-off schema creation: not binding)
        _cpu_of(ours, env, root)  # warm-up: creates the warehouse at its schema's head
    rounds = 1 if ctx.quick else 3
    ours_cpu, bare_cpu, bare_ip_cpu = [], [], []
    for _ in range(rounds):
        bare_cpu.append(_cpu_of(bare, env, root))
        ours_cpu.append(_cpu_of(ours, env, root))
        bare_ip_cpu.append(_cpu_of(bare_ip, env, root))
    return [
        Result(
            "ops: one offspot hour through `dagster asset materialize`, CPU",
            min(ours_cpu),
            "s",
            "a no-op hourly asset in a bare project",
            min(bare_cpu),
            max_ratio=1.3,
            note=f"best of {rounds}; all: ours {', '.join(f'{c:.2f}' for c in ours_cpu)}, "
            f"bare {', '.join(f'{c:.2f}' for c in bare_cpu)}",
        ),
        # Like for like: the same one-process-per-run executor on both sides, so the ratio is
        # what our code location (imports, resources, the hour's work) adds to Dagster's own cost.
        Result(
            "ops: same, against a bare project with the same in-process executor",
            min(ours_cpu),
            "s",
            "a no-op hourly asset, in_process_executor",
            min(bare_ip_cpu),
            max_ratio=1.6,
            note=f"bare in-process {', '.join(f'{c:.2f}' for c in bare_ip_cpu)}",
        ),
    ]
