"""CLI start times (issue 19 item 4): `python cli.py --help` and `spend --json` for one store.

    python bench/cli_start.py [--runs 15] [--keep DIR] [--cli PATH/cli.py]

Each command runs ``--runs`` times as a fresh process (like hyperfine: one warm-up run first, which
also writes the bytecode cache), and the median, min and max wall times are printed with the load
average before and after. The store is the demo store ``demo-acme`` with 61 days fetched from the
built-in sandbox (made once in a temporary directory). Also prints what ``-X importtime`` says the
slowest imports of each command are. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, git_rev, machine

PY = sys.executable
CLI = str(ROOT / "cli.py")


def _env(db: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: .pyc cached
    env.update(ADSPEND_DB=db, ADSPEND_FX_AUTO_UPDATE="0", ADSPEND_NO_DOTENV="1")
    return env


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _time(args: list[str], env: dict, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run: on a shared machine the CPU time is
    close to what the wall time would be on an idle one."""
    subprocess.run([PY, CLI, *args], env=env, capture_output=True, check=False)  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu()
        proc = subprocess.run([PY, CLI, *args], env=env, capture_output=True)
        wall.append(time.perf_counter() - t)
        cpu.append(_cpu() - c)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.decode()[-500:]}")
    return wall, cpu


def _slowest_imports(args: list[str], env: dict, n: int = 6) -> list[str]:
    proc = subprocess.run([PY, "-X", "importtime", CLI, *args], env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if len(name) - len(name.lstrip()) <= 1:  # top-level imports only
                rows.append((int(parts[1]), name.strip()))
    return [f"{name} {us / 1000:.0f} ms" for us, name in sorted(rows, reverse=True)[:n]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--keep", help="use (or make) the database in this directory")
    ap.add_argument("--cli", help="time another checkout's cli.py (e.g. an export of the commit before)")
    opts = ap.parse_args()
    global CLI
    CLI = opts.cli or CLI
    work = Path(opts.keep or tempfile.mkdtemp(prefix="cli_start_"))
    work.mkdir(parents=True, exist_ok=True)
    db = str(work / "bench.duckdb")
    env = _env(db)
    end = dt.date.today().replace(day=1) - dt.timedelta(days=1)
    start = (end.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    if not Path(db).exists():
        subprocess.run([PY, CLI, "demo"], env=env, check=True, capture_output=True)
        subprocess.run(
            [PY, CLI, "refresh", "--store", "demo-acme", "--start", str(start), "--end", str(end)],
            env=env,
            capture_output=True,
        )  # partial is fine: the store has data
    print(f"machine: {machine()}; git {git_rev()}; {CLI}")
    commands = {
        "--help": ["--help"],
        "spend --json": ["spend", "--store", "demo-acme", "--start", str(start), "--end", str(end), "--json"],
    }
    for label, args in commands.items():
        load0 = os.getloadavg()[0]
        times, cpu = _time(args, env, opts.runs)
        load1 = os.getloadavg()[0]
        print(
            f"{label:<14} median {statistics.median(times):.3f} s  min {min(times):.3f}  max {max(times):.3f}  "
            f"CPU median {statistics.median(cpu):.3f} s  ({opts.runs} runs; load average {load0:.2f} -> {load1:.2f})"
        )
        print(f"{'':<14} slowest imports: {', '.join(_slowest_imports(args, env))}")
    t = []
    for _ in range(opts.runs):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], env=env)
        t.append(time.perf_counter() - t0)
    print(f"{'python -c pass':<14} median {statistics.median(t):.3f} s (the interpreter alone)")


if __name__ == "__main__":
    main()
