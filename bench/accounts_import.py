"""Bench: `accounts import` of a large mapping CSV (issue 15 item 5).

    python bench/accounts_import.py [--rows 1000000]

Writes a CSV of ``--rows`` rows (as many stores as rows / 4, four Meta accounts each, short enough that
1M rows stay under the 20 MB import limit), imports it into a fresh database twice (the second time every row is
unchanged), and prints the wall time and the process's peak resident memory for each. A
measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_csv(path: Path, rows: int) -> int:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("store_id,store_name,platform,account_id\n")
        for i in range(rows):
            fh.write(f"{i // 4:x},S,meta,{1000 + i % 4}\n")  # ~18 bytes a row: 1M rows < 20 MB
    return path.stat().st_size


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    from service.accounts import import_accounts
    from storage.db import SpendStore

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "mapping.csv"
        size = write_csv(csv_path, args.rows)
        print(
            f"{args.rows:,} rows, {size / 1e6:.1f} MB; CPU {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.1f}; peak RSS before import {peak_mb():.0f} MB"
        )
        store = SpendStore(Path(tmp) / "bench.duckdb")
        for label in ("first import", "re-import (unchanged)"):
            t0, c0 = time.perf_counter(), cpu()
            r = import_accounts(store, csv_path)
            print(
                f"{label}: {time.perf_counter() - t0:.1f} s wall, {cpu() - c0:.1f} s CPU, {r.stores:,} stores, {r.added:,} new, "
                f"{r.unchanged:,} unchanged; peak RSS {peak_mb():.0f} MB"
            )


if __name__ == "__main__":
    main()
