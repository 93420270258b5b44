"""Query bench: a synthetic spend store at scale, and the product's reads against it.

    python bench/queries.py                       # 1,000 stores x 27 accounts x 730 days (~19.7 M rows)
    python bench/queries.py --stores 100          # a smaller run
    python bench/queries.py --db /tmp/big.duckdb  # keep (or reuse) the database file

Measured, each next to the same SQL run alone on one open DuckDB connection ("raw"), so the
product's own overhead (opening the file, Python work on the rows, FX, building the report
objects) shows as a ratio:

- ingest: rows a second through ``SpendStore.write_spend_table`` (bulk Arrow, one transaction a
  chunk of days, primary key checked), and through the refresh's ``write_windows`` for one
  realistic batch (200 accounts x 90 days);
- store page: ``service.report.spend_report`` for a random store-month (median of 50);
- portfolio: ``service.report.portfolio_totals``: every account's spend per month and platform
  over the two years, in one currency (median of 5);
- invoice batch: ``service.report.spend_reports`` for every store for one month, plus the
  invoice CSV (``service.export.render_csv``) (median of 5);
- peak memory (RSS) of this process.

Data: store i has 3 accounts on each of the nine platforms; about 1 account in 9 bills in EUR or
GBP (so FX runs), 1 store in 10 bills in EUR; about 1 day in 11 is an explicit zero. Rows are
written in day order, as daily refreshes add them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_rev, machine, peak_rss_mb  # noqa: E402

PLATFORMS = ("meta", "google", "tiktok", "linkedin", "amazon", "microsoft", "snapchat", "pinterest", "reddit")
PER_PLATFORM = 3


def accounts(n_stores: int) -> list[tuple[str, str, str, str]]:
    """(store_id, platform, account_id, currency)."""
    out = []
    for i in range(n_stores):
        for p in PLATFORMS:
            for k in range(PER_PLATFORM):
                j = len(out)
                ccy = "EUR" if j % 17 == 5 else "GBP" if j % 19 == 7 else "USD"
                out.append((f"s{i:05d}", p, f"{p[:2]}{i:05d}{k}", ccy))
    return out


def build(db: Path, n_stores: int, days: int, end: dt.date, chunk_days: int) -> dict:
    from storage.db import AMOUNT_TYPE, SpendStore, WindowWrite

    store = SpendStore(db)
    accs = accounts(n_stores)
    with store.transaction() as con:
        store.upsert_stores(
            con, [(f"s{i:05d}", f"Store {i}", "EUR" if i % 10 == 3 else "USD", False) for i in range(n_stores)]
        )
        con.register(
            "links",
            pa.table(
                {"store_id": [a[0] for a in accs], "platform": [a[1] for a in accs], "account_id": [a[2] for a in accs]}
            ),
        )
        con.execute("INSERT INTO ad_accounts (store_id, platform, account_id) SELECT * FROM links")
        con.unregister("links")
    store.save_account_infos(
        [
            dict(platform=p, account_id=a, name=f"Account {a}", currency=c, timezone="UTC", day_basis="account")
            for _s, p, a, c in accs
        ]
    )
    start = end - dt.timedelta(days=days - 1)
    n_acc = len(accs)
    rng = np.random.default_rng(7)
    plat = pa.array([a[1] for a in accs], pa.string())
    acct = pa.array([a[2] for a in accs], pa.string())
    ccys = pa.array([a[3] for a in accs], pa.string())
    base = rng.integers(40_00, 440_00, n_acc)  # cents a day, per account
    fetched = pa.scalar(
        dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) + dt.timedelta(days=40), pa.timestamp("us", tz="UTC")
    )
    total_rows, t_ingest = 0, 0.0
    d = 0
    while d < days:
        n_days = min(chunk_days, days - d)
        n = n_days * n_acc
        idx = np.tile(np.arange(n_acc), n_days)
        day_off = np.repeat(np.arange(d, d + n_days), n_acc)
        cents = (base[idx] * rng.uniform(0.6, 1.2, n)).astype(np.int64)
        cents[rng.integers(0, 11, n) == 0] = 0  # no delivery
        micros = cents * 10_000
        raw = np.empty((n, 2), dtype=np.int64)  # decimal128: little-endian int128
        raw[:, 0], raw[:, 1] = micros, np.where(micros < 0, -1, 0)
        amount = pa.Array.from_buffers(AMOUNT_TYPE, n, [None, pa.py_buffer(raw.tobytes())])
        days_arr = pa.array((np.datetime64(start) + day_off).astype("datetime64[D]"), pa.date32())
        take = pa.array(idx)
        tbl = pa.table(
            {
                "platform": plat.take(take),
                "account_id": acct.take(take),
                "day": days_arr,
                "amount": amount,
                "currency": ccys.take(take),
                "fetched_at": pa.array(np.full(n, fetched.value), pa.timestamp("us", tz="UTC")),
                "run_id": pa.array(["bench"] * n, pa.string()),
            }
        )
        t0 = time.perf_counter()
        total_rows += store.write_spend_table(tbl)
        t_ingest += time.perf_counter() - t0
        d += n_days
    # the refresh's own write path, one realistic batch: 200 accounts x 90 days, replacing stored days
    now = dt.datetime.now(dt.UTC)
    writes = [
        WindowWrite(
            p,
            a,
            end - dt.timedelta(days=89),
            end,
            {end - dt.timedelta(days=k): _dec(int(base[j]) * 10_000) for k in range(90)},
            c,
            "bench2",
            now,
        )
        for j, (_s, p, a, c) in enumerate(accs[:200])
    ]
    t0 = time.perf_counter()
    store.write_windows(writes)
    t_windows = time.perf_counter() - t0
    return {"rows": total_rows, "ingest_s": t_ingest, "windows_rows": 200 * 90, "windows_s": t_windows}


def _dec(micros: int):
    from decimal import Decimal

    return Decimal(micros).scaleb(-6)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=1000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--db", help="database file to build (or reuse when it exists and --reuse is given)")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--chunk-days", type=int, default=40, help="days per bulk write")
    args = ap.parse_args()

    import duckdb

    from service import report
    from service.config import Settings
    from service.export import render_csv
    from storage.db import SpendStore

    end = dt.date(2026, 9, 30)
    tmp = None
    if args.db:
        db = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="adspend-qbench-")
        db = Path(tmp.name) / "bench.duckdb"
    print(f"machine: {machine()}  (git {git_rev()})")
    print(f"query bench: {args.stores} stores x {len(PLATFORMS) * PER_PLATFORM} accounts x {args.days} days")
    if args.reuse and db.exists():
        built = None
    else:
        if db.exists():
            db.unlink()
        built = build(db, args.stores, args.days, end, args.chunk_days)
        print(
            f"ingest: {built['rows']:,} rows in {built['ingest_s']:.1f} s = "
            f"{built['rows'] / built['ingest_s'] / 1e6:.2f} M rows/s (bulk Arrow, target >= 1 M rows/s); "
            f"refresh batch write_windows: {built['windows_rows']:,} rows in {built['windows_s']:.2f} s = "
            f"{built['windows_rows'] / built['windows_s'] / 1e6:.2f} M rows/s"
        )
    store = SpendStore(db)
    settings = Settings()
    rows = store.query("SELECT count(*) FROM daily_spend")[0][0]
    print(f"database: {rows:,} spend rows, {db.stat().st_size / 1e9:.2f} GB on disk")
    rng = random.Random(11)
    months = []
    m = dt.date(end.year - 1, end.month, 1) + dt.timedelta(days=31)
    while m <= end:
        first = m.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        months.append((first, min(last, end)))
        m = last + dt.timedelta(days=1)
    con = duckdb.connect(str(db), read_only=False)  # the raw-SQL baseline: one connection kept open

    # store page -------------------------------------------------------------------------------------
    picks = [(f"s{rng.randrange(args.stores):05d}", rng.choice(months)) for _ in range(50)]
    today = end + dt.timedelta(days=60)
    t_prod, t_raw = [], []
    for sid, (a, b) in picks:
        t0 = time.perf_counter()
        con.execute(
            report._ACCOUNTS_SQL.format(store_filter="list_contains($ids, store_id)"),
            {"ids": [sid], **report.period_params(a, b)},
        ).fetchall()
        t_raw.append(time.perf_counter() - t0)
    con.close()
    for sid, (a, b) in picks:
        t0 = time.perf_counter()
        report.spend_report(store, sid, a, b, settings=settings, today=today)
        t_prod.append(time.perf_counter() - t0)
    sp, sr = statistics.median(t_prod), statistics.median(t_raw)
    print(
        f"store page (one store-month, median of 50): {sp * 1e3:.1f} ms; raw SQL {sr * 1e3:.1f} ms; "
        f"overhead x{sp / sr:.2f} (target <= 50 ms, <= 1.5x)"
    )

    # portfolio --------------------------------------------------------------------------------------
    p_start, p_end = end - dt.timedelta(days=args.days - 1), end
    pp = timed(lambda: report.portfolio_totals(store, p_start, p_end, "USD"), 5)
    con = duckdb.connect(str(db))
    ccys = [r[0] for r in con.execute("SELECT DISTINCT currency FROM daily_spend").fetchall()]
    limbs, n_limbs, _scale = report.fx_limb_table(ccys, p_start, p_end, "USD")
    con.register("fx_limbs", limbs)
    sql = report.portfolio_sql(n_limbs)
    params = report.portfolio_params(p_start, p_end, "USD")
    same_sql = report.PORTFOLIO_SAME_SQL

    def raw_portfolio():
        con.execute(same_sql, {**params, "minor": 2}).fetchall()
        return con.execute(sql, params).fetchall()

    pr = timed(raw_portfolio, 5)
    con.close()
    print(
        f"portfolio (monthly totals by platform, {args.days} days, every account): {pp:.3f} s; raw SQL {pr:.3f} s; "
        f"overhead x{pp / pr:.2f} (target <= 1 s, <= 1.5x)"
    )

    # invoice batch ----------------------------------------------------------------------------------
    ia, ib = months[-2]

    def batch():
        reps = report.spend_reports(store, None, ia, ib, settings=settings, today=today)
        return render_csv(reps.values())

    ip = timed(batch, 5)
    con = duckdb.connect(str(db))
    ir = timed(
        lambda: con.execute(report._ACCOUNTS_SQL.format(store_filter="TRUE"), report.period_params(ia, ib)).fetchall(),
        5,
    )
    con.close()
    n_lines = len(batch().splitlines())
    print(
        f"invoice batch (all {args.stores} stores, {ia:%Y-%m}, {n_lines:,} CSV lines): {ip:.3f} s; raw SQL "
        f"{ir:.3f} s; overhead x{ip / ir:.2f} (target <= 2 s, <= 1.5x)"
    )
    print(f"peak memory (this process): {peak_rss_mb():.0f} MB (target <= 2048)")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
