"""Incremental refresh counted on the wire, and the batched read paths against the simple ones.

- a settled period is served from DuckDB: a second refresh sends the platforms nothing;
- an open period re-fetches exactly the days inside each platform's lookback, in one request;
- days older than a platform serves fail without a request;
- report-job ids are buffered during a run and land in DuckDB with the window batch;
- ``spend_reports`` (all stores in one go) and ``portfolio_totals`` (one query, exact FX) give
  exactly what ``spend_report`` and the dashboard's day-by-day portfolio give.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from storage.db import AMOUNT_TYPE, SpendStore

TODAY = dt.datetime.now(dt.UTC).date()
ACCOUNTS = [("meta", "1000000001"), ("meta", "1000000002"), ("tiktok", "7100000000000001")]


def _import(tmp_path, run_cli, rows=ACCOUNTS, store_id="s1"):
    csv = tmp_path / f"{store_id}.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"{store_id},Acme,{p},{a}\n" for p, a in rows))
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def _refresh(run_cli, start, end, *extra):
    return run_cli("refresh", "--store", "s1", "--start", start.isoformat(), "--end", end.isoformat(), "--json", *extra)


def test_settled_period_makes_no_api_request(tmp_path, run_cli, sandbox, sandbox_env):
    _import(tmp_path, run_cli)
    start, end = TODAY - dt.timedelta(days=80), TODAY - dt.timedelta(days=50)  # older than every lookback
    r = _refresh(run_cli, start, end)
    assert r.returncode == 0, r
    first = dict(sandbox.ctx.requests)
    # meta: one request per account (the account node with its 31 days expanded); tiktok: one
    # lookup + two 30-day windows
    assert first == {"meta": 2, "tiktok": 3}
    grants = dict(sandbox.ctx.token_grants)
    r = _refresh(run_cli, start, end)
    assert r.returncode == 0, r
    assert dict(sandbox.ctx.requests) == first  # nothing asked: served from DuckDB
    assert dict(sandbox.ctx.token_grants) == grants
    accounts = {(x["platform"], a["account_id"]): a for x in r.json()["results"] for a in x["accounts"]}
    assert {k: (a["status"], a["days_fetched"], a["requests"]) for k, a in accounts.items()} == {
        k: ("ok", 0, 0) for k in ACCOUNTS
    }
    assert SpendStore(tmp_path / "adspend.duckdb").query("SELECT count(*) FROM daily_spend") == [(31 * 3,)]


def test_open_period_refetches_exactly_the_lookback_days(tmp_path, run_cli, sandbox, sandbox_env):
    _import(tmp_path, run_cli)
    start, end = TODAY - dt.timedelta(days=45), TODAY - dt.timedelta(days=1)
    assert _refresh(run_cli, start, end).returncode == 0
    before = dict(sandbox.ctx.requests)
    r = _refresh(run_cli, start, end)
    assert r.returncode == 0, r
    # one request per account: the lookback days are one window; account info is not asked again
    assert {p: sandbox.ctx.requests[p] - before[p] for p in before} == {"meta": 2, "tiktok": 1}
    accounts = {(x["platform"], a["account_id"]): a for x in r.json()["results"] for a in x["accounts"]}
    assert {k: a["days_fetched"] for k, a in accounts.items()} == {
        ("meta", "1000000001"): 28,
        ("meta", "1000000002"): 28,
        ("tiktok", "7100000000000001"): 3,
    }
    store = SpendStore(tmp_path / "adspend.duckdb")
    assert store.query("SELECT count(*), count(DISTINCT (platform, account_id, day)) FROM daily_spend") == [
        (45 * 3, 45 * 3)
    ]
    # the days re-fetched are the last ones, each account's newest run
    run_id = store.runs(1)[0]["run_id"]
    assert store.query(
        "SELECT platform, min(day), max(day), count(*) FROM daily_spend WHERE run_id = ? GROUP BY 1 ORDER BY 1",
        [run_id],
    ) == [("meta", TODAY - dt.timedelta(days=28), end, 56), ("tiktok", TODAY - dt.timedelta(days=3), end, 3)]


@pytest.mark.parametrize(
    ("platform", "account_id", "name", "history"),
    [("amazon", "3000000001", "Amazon Ads", 60), ("pinterest", "549000000001", "Pinterest", 914)],
)
def test_days_older_than_the_platform_serves_fail_without_a_request(
    tmp_path, run_cli, sandbox, sandbox_env, platform, account_id, name, history
):
    _import(tmp_path, run_cli, [(platform, account_id)])
    r = _refresh(run_cli, TODAY - dt.timedelta(days=history + 20), TODAY - dt.timedelta(days=history + 10))
    assert r.returncode == 1, r
    assert sandbox.ctx.requests.get(platform, 0) == 0
    res = r.json()["results"][0]
    assert res["status"] == "failed"
    assert res["error"] == (
        f"{name} serves only the last {history} days; the days before "
        f"{TODAY - dt.timedelta(days=history)} cannot be fetched"
    )


def test_buffered_job_ids_reach_duckdb_only_on_flush(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    store.job_store("amazon").put("k0", "old")
    jobs = store.job_store("amazon", buffered=True)
    assert jobs.get("k0") == "old"  # pending ids loaded once
    jobs.put("k1", "job-1")
    jobs.put("k2", "job-2")
    jobs.drop("k0")
    assert store.job_store("amazon").pending() == [("k0", "old")]
    jobs.flush()
    assert sorted(store.job_store("amazon").pending()) == [("k1", "job-1"), ("k2", "job-2")]
    jobs.drop("k1")
    jobs.flush()
    assert store.job_store("amazon").pending() == [("k2", "job-2")]


def _spend_table(rows):
    """rows: (platform, account, day, amount str, currency)."""
    return pa.table(
        {
            "platform": pa.array([r[0] for r in rows], pa.string()),
            "account_id": pa.array([r[1] for r in rows], pa.string()),
            "day": pa.array([r[2] for r in rows], pa.date32()),
            "amount": pa.array([Decimal(r[3]) for r in rows], AMOUNT_TYPE),
            "currency": pa.array([r[4] for r in rows], pa.string()),
            "fetched_at": pa.array([dt.datetime(2026, 3, 1, tzinfo=dt.UTC)] * len(rows), pa.timestamp("us", tz="UTC")),
            "run_id": pa.array(["r"] * len(rows), pa.string()),
        }
    )


def _fx_store(tmp_path) -> SpendStore:
    store = SpendStore(tmp_path / "fx.duckdb")
    accounts = [
        ("s1", "meta", "m1", "USD"),
        ("s1", "google", "g1", "EUR"),
        ("s2", "meta", "m2", "GBP"),
        ("s2", "google", "g1", "EUR"),
        ("s3", "tiktok", "t1", "JPY"),
    ]
    with store.transaction() as con:
        store.upsert_stores(
            con, [("s1", "One", "USD", False), ("s2", "Two", "EUR", False), ("s3", "Three", "USD", False)]
        )
        store.link_accounts(con, [(s, p, a, None) for s, p, a, _ in accounts])
    store.save_account_infos(
        [
            dict(platform=p, account_id=a, name=a, currency=c, timezone="UTC", day_basis="account")
            for _s, p, a, c in accounts
        ]
    )
    rows, day = [], dt.date(2025, 12, 1)
    while day <= dt.date(2026, 1, 31):
        for i, (_s, p, a, c) in enumerate(accounts[:3] + accounts[4:]):
            units = (day.toordinal() * 7919 + i * 104729) % 50000
            amount = str(units * 150) if c == "JPY" else f"{units // 100}.{units % 100:02d}{i}7"
            # now and then a credit, and a GBP week of credits only (a negative account-month in
            # the 15..20 December period): negative amounts round half away from zero too
            if units % 13 == 0 or (a == "m2" and dt.date(2025, 12, 14) < day < dt.date(2025, 12, 21)):
                amount = "-" + amount
            rows.append((p, a, day, amount, c))
        day += dt.timedelta(days=1)
    assert store.write_spend_table(_spend_table(rows)) == len(rows)
    return store


def test_batched_reports_equal_one_store_at_a_time(tmp_path):
    from service.config import Settings
    from service.report import spend_report, spend_reports

    store = _fx_store(tmp_path)
    start, end = dt.date(2025, 12, 1), dt.date(2025, 12, 31)
    batch = spend_reports(store, None, start, end, settings=Settings(), today=TODAY)
    assert list(batch) == ["s1", "s2", "s3"]
    for sid, rep in batch.items():
        assert rep.to_json() == spend_report(store, sid, start, end, settings=Settings(), today=TODAY).to_json()
    assert batch["s2"].platforms["meta"].accounts[0].currency == "GBP"  # converted to EUR day by day
    assert spend_reports(store, ["s3", "nope"], start, end, settings=Settings(), today=TODAY).keys() == {"s3"}


def _portfolio_day_by_day(store, start, end, currency):
    """The reference: every linked account's days through service.fx, one account-month at a time."""
    from service import fx

    rows = store.query(
        "SELECT d.platform, d.account_id, d.currency, d.day, d.amount FROM daily_spend d "
        "WHERE d.day BETWEEN ? AND ? AND (d.platform, d.account_id) IN "
        "(SELECT DISTINCT platform, account_id FROM ad_accounts)",
        [start, end],
    )
    groups = {}
    for platform, account_id, ccy, day, amount in rows:
        groups.setdefault((day.strftime("%Y-%m"), platform, account_id, ccy), {})[day] = amount
    by_month, missing = {}, 0
    for (month, platform, _a, ccy), daily in groups.items():
        line = fx.convert_line(daily, ccy, currency)
        missing += len(line.missing_days)
        by_month[(month, platform)] = by_month.get((month, platform), Decimal(0)) + line.billing_amount
    return dict(sorted(by_month.items())), missing, len(rows)


def test_portfolio_in_one_query_equals_the_day_by_day_conversion(tmp_path):
    from service.dashboard import portfolio_spend
    from service.report import portfolio_totals

    store = _fx_store(tmp_path)
    start, end = dt.date(2025, 12, 1), dt.date(2026, 1, 31)
    # whole months (monthly totals only), partial months at both edges (daily rows), inside one month
    periods = [
        (start, end),
        (dt.date(2025, 12, 10), dt.date(2026, 1, 20)),
        (dt.date(2025, 12, 15), dt.date(2025, 12, 20)),
    ]
    for a, b in periods:
        for ccy in ("USD", "EUR", "JPY"):
            fast = portfolio_totals(store, a, b, ccy)
            by_month, missing, days = _portfolio_day_by_day(store, a, b, ccy)
            assert fast.by_month == by_month and fast.total == sum(by_month.values(), Decimal(0))
            assert (fast.fx_missing_days, fast.days_with_data) == (missing, days)
            page = portfolio_spend(store, a, b, ccy)
            assert (page.by_month, page.total) == (fast.by_month, fast.total)
    usd = portfolio_totals(store, start, end, "USD")
    assert usd.days_with_data == 62 * 4 and usd.fx_missing_days == 0
    assert usd.by_platform.keys() == {"meta", "google", "tiktok"}
