"""The dashboard's figures (issue 16), computed by service/dashboard.py without Streamlit: the
comparison periods, comparisons only between complete periods, the per platform/account breakdown,
chart series that add up to the total, honest refresh outcomes and the plan-vs-observed pairing.
Dates are pinned inside the shipped ECB rate history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from fetchers import clock
from service import dashboard as dash
from service.report import spend_report
from storage.db import SpendStore, WindowWrite

D = dt.date
TODAY = D(2026, 10, 15)
FETCHED = dt.datetime(2026, 10, 14, 12, tzinfo=dt.UTC)


def _write(store, platform, account, start, end, amount_of, ccy):
    days = {}
    d = start
    while d <= end:
        days[d] = Decimal(amount_of(d))
        d += dt.timedelta(days=1)
    store.write_windows([WindowWrite(platform, account, start, end, days, ccy, "run-test", FETCHED)])


def build_store(path, demo: bool = True) -> SpendStore:
    """Store s1 (USD; demo by default, so no credentials are needed): Meta 111 (USD), Google 222
    (USD) and Amazon 333 (EUR). August and September 2026 fully stored; Amazon lacks August."""
    s = SpendStore(path)
    s.migrate()
    s.save_store("s1", "Shop One", "USD", demo)
    with s.transaction() as con:
        s.link_accounts(
            con, [("s1", "meta", "111", "Meta main"), ("s1", "google", "222", None), ("s1", "amazon", "333", None)]
        )
    for p, a, ccy in (("meta", "111", "USD"), ("google", "222", "USD"), ("amazon", "333", "EUR")):
        s.save_account_info(p, a, name=f"{p} acct", currency=ccy, timezone="UTC", day_basis="UTC")
    _write(s, "meta", "111", D(2026, 8, 1), D(2026, 9, 30), lambda d: "100.10" if d.month == 9 else "90.05", "USD")
    _write(s, "google", "222", D(2026, 8, 1), D(2026, 9, 30), lambda d: "50.005" if d.month == 9 else "60", "USD")
    _write(s, "amazon", "333", D(2026, 9, 1), D(2026, 9, 30), lambda d: "10.01", "EUR")
    return s


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path / "v.duckdb")


@pytest.fixture(autouse=True)
def _today():
    with clock.pinned(TODAY):
        yield


def test_comparison_periods():
    sep = (D(2026, 9, 1), D(2026, 9, 30))
    # a calendar month is compared with the month before, not with the 30 days before it
    assert dash.comparison_period(*sep, "previous_period") == (D(2026, 8, 1), D(2026, 8, 31))
    assert dash.comparison_period(D(2026, 3, 1), D(2026, 3, 31)) == (D(2026, 2, 1), D(2026, 2, 28))
    assert dash.comparison_period(D(2026, 4, 1), D(2026, 6, 30)) == (D(2026, 1, 1), D(2026, 3, 31))
    assert dash.comparison_period(D(2026, 9, 10), D(2026, 9, 16)) == (D(2026, 9, 3), D(2026, 9, 9))
    assert dash.comparison_period(*sep, "previous_month") == (D(2026, 8, 1), D(2026, 8, 31))
    assert dash.comparison_period(D(2026, 3, 1), D(2026, 3, 31), "previous_month") == (D(2026, 2, 1), D(2026, 2, 28))
    assert dash.comparison_period(D(2026, 3, 5), D(2026, 3, 31), "previous_month") == (D(2026, 2, 5), D(2026, 2, 28))
    assert dash.comparison_period(*sep, "last_year") == (D(2025, 9, 1), D(2025, 9, 30))
    assert dash.comparison_period(D(2028, 2, 1), D(2028, 2, 29), "last_year") == (D(2027, 2, 1), D(2027, 2, 28))
    with pytest.raises(ValueError, match="unknown comparison"):
        dash.comparison_period(*sep, "yesterday")


def test_comparison_only_between_complete_periods(store):
    sep = spend_report(store, "s1", D(2026, 9, 1), D(2026, 9, 30), today=TODAY)
    aug = spend_report(store, "s1", *dash.comparison_period(sep.start, sep.end), today=TODAY)
    c = dash.compare(sep, aug)
    assert not c.shown and c.delta is None and c.missing_current == ()
    # Amazon Ads serves 60 days: August is out of reach on 2026-10-15, and the note says so
    assert c.missing_previous == ("Amazon Ads (older than the 60 days it serves)",)
    assert c.note == "No comparison: 2026-08-01 to 2026-08-31 lacks Amazon Ads (older than the 60 days it serves)."
    with clock.pinned(D(2026, 9, 20)):
        assert dash.compare(sep, aug).missing_previous == ("Amazon Ads (no data)",)
    # both complete: the numbers (the 23rd..29th against the 7 days before)
    cur = spend_report(store, "s1", D(2026, 9, 23), D(2026, 9, 29), today=TODAY)
    prev = spend_report(store, "s1", *dash.comparison_period(cur.start, cur.end), today=TODAY)
    c = dash.compare(cur, prev)
    assert (c.start, c.end) == (D(2026, 9, 16), D(2026, 9, 22))
    assert c.shown and c.previous == prev.total and c.delta == cur.total - prev.total and c.note == ""
    # a drop is a negative number
    store.unlink_account("s1", "amazon", "333")
    cur2 = spend_report(store, "s1", D(2026, 9, 1), D(2026, 9, 7), today=TODAY)
    prev2 = spend_report(store, "s1", D(2026, 8, 25), D(2026, 8, 31), today=TODAY)
    c = dash.compare(
        prev2, cur2
    )  # late August (1050.35) against early September (700.70 + 350.035 rounded once: 1050.74)
    assert c.delta == Decimal("-0.39") and c.percent == Decimal("-0.0") and c.previous == Decimal("1050.74")


def test_breakdown_rows_exact(store):
    store.unlink_account("s1", "amazon", "333")
    cur = spend_report(store, "s1", D(2026, 9, 1), D(2026, 9, 30), today=TODAY)
    prev = spend_report(store, "s1", D(2026, 8, 1), D(2026, 8, 31), today=TODAY)
    rows = dash.breakdown(cur, prev)
    assert [(r.level, r.platform, r.account) for r in rows] == [
        ("platform", "meta", ""),
        ("account", "meta", "111"),
        ("platform", "google", ""),
        ("account", "google", "222"),
    ]
    meta, google = rows[0], rows[2]
    assert meta.spend == Decimal("3003.00") and meta.previous == Decimal("2791.55")
    assert meta.delta == Decimal("211.45") and meta.delta_pct == Decimal("7.6")
    assert meta.share == Decimal("66.7")
    assert google.spend == Decimal("1500.15") and google.previous == Decimal("1860.00")
    assert google.delta == Decimal("-359.85") and google.delta_pct == Decimal("-19.3")
    assert google.share == Decimal("33.3")
    assert rows[1].account_name == "Meta main" and rows[1].spend == Decimal("3003.00")


def test_breakdown_unknown_amount_is_none_not_zero(store):
    aug = spend_report(store, "s1", D(2026, 8, 1), D(2026, 8, 31), today=TODAY)
    amazon = next(r for r in dash.breakdown(aug) if r.platform == "amazon" and r.level == "platform")
    assert amazon.status == "missing" and amazon.spend is None and amazon.share is None and amazon.previous is None


def test_spend_series_adds_up_to_the_total_at_every_granularity(store):
    rep = spend_report(store, "s1", D(2026, 9, 1), D(2026, 9, 30), today=TODAY)
    assert rep.complete
    for g in ("day", "week", "month"):
        s = dash.spend_series(store, rep, g, today=TODAY)
        assert s.total == rep.total == sum((v for *_, v in s.points), Decimal(0))
        for pid, pl in rep.platforms.items():
            assert sum((v for _b, p, v in s.points if p == pid), Decimal(0)) == pl.spend
        assert s.left_out == []
    weekly = dash.spend_series(store, rep, "week", today=TODAY)
    assert sorted({b for b, *_ in weekly.points}) == [
        D(2026, 8, 31),
        D(2026, 9, 7),
        D(2026, 9, 14),
        D(2026, 9, 21),
        D(2026, 9, 28),
    ]
    assert weekly.partial == {D(2026, 8, 31), D(2026, 9, 28)}  # cut by the period's start and end
    meta_week = [v for b, p, v in weekly.points if p == "meta" and b == D(2026, 9, 7)]
    assert meta_week == [Decimal("700.70")]


def test_spend_series_leaves_out_what_the_total_leaves_out(store):
    # Amazon's EUR days after the shipped rates would have no rate: use a made-up currency instead
    store.save_account_info("amazon", "333", name="a", currency="XXX", timezone="UTC", day_basis="UTC")
    store.query("UPDATE daily_spend SET currency = 'XXX' WHERE platform = 'amazon'")
    rep = spend_report(store, "s1", D(2026, 9, 1), D(2026, 9, 30), today=TODAY)
    assert rep.platforms["amazon"].status == "fx_missing"
    s = dash.spend_series(store, rep, "day", today=TODAY)
    assert s.total == rep.total == Decimal("4503.15")
    assert {p for _b, p, _v in s.points} == {"meta", "google"}
    assert [(p, a) for p, a, _why in s.left_out] == [("amazon", "333")]


def test_partial_buckets_include_days_not_over():
    assert dash.partial_buckets(D(2026, 10, 1), D(2026, 10, 31), "month", TODAY) == {D(2026, 10, 1)}
    assert dash.partial_buckets(D(2026, 9, 1), D(2026, 9, 30), "month", TODAY) == set()
    assert dash.partial_buckets(D(2026, 10, 13), D(2026, 10, 16), "day", TODAY) == {D(2026, 10, 15), D(2026, 10, 16)}
    assert dash.partial_months(D(2026, 8, 15), D(2026, 10, 31), TODAY) == {"2026-08", "2026-10"}


def _out(status="ok", requests=0, platforms=(), start=D(2026, 9, 1), end=D(2026, 9, 30), error=None):
    return SimpleNamespace(
        status=status,
        requests=requests,
        seconds=0.04,
        start=start,
        end=end,
        error=error,
        platforms=[SimpleNamespace(platform=p, status=s) for p, s in platforms],
    )


def test_refresh_summary_says_why_nothing_was_fetched():
    assert dash.refresh_summary(_out(requests=12, platforms=[("meta", "ok")])) == (
        "Refresh ok in 0.0 s, 12 requests",
        "complete",
    )
    assert dash.refresh_summary(_out()) == (
        "Nothing to fetch: this store has no linked ad accounts. Link them on the Accounts page.",
        "info",
    )
    assert dash.refresh_summary(_out(platforms=[("meta", "ok")], start=D(2026, 11, 1), end=D(2026, 11, 30))) == (
        "Nothing to fetch: the period 2026-11-01 to 2026-11-30 has not started yet (today is 2026-10-15); no "
        "platform reports future days.",
        "info",
    )
    assert dash.refresh_summary(_out(platforms=[("meta", "not_configured"), ("tiktok", "not_configured")])) == (
        "Nothing fetched: no credentials are set for Meta, TikTok. Add them (see the Accounts page) to fetch this "
        "store's spend.",
        "info",
    )
    assert dash.refresh_summary(_out(platforms=[("meta", "ok"), ("tiktok", "not_configured")])) == (
        "Nothing to fetch: the stored data for 2026-09-01 to 2026-09-30 is up to date (0 requests). Not "
        "configured (no credentials): TikTok.",
        "complete",
    )
    assert dash.refresh_summary(
        _out(status="failed", platforms=[("amazon", "failed")], error="Amazon Ads serves only the last 60 days")
    ) == ("Refresh failed in 0.0 s, 0 requests: Amazon Ads serves only the last 60 days", "error")


def test_plan_rows_pair_with_the_platforms_they_mean(store):
    store.save_store("s2", "Shop Two", "USD", True)
    with store.transaction() as con:
        store.link_accounts(con, [("s2", "google", "999", None), ("s2", "reddit", "t2_x", None)])
    _write(store, "google", "999", D(2026, 9, 1), D(2026, 9, 30), lambda d: "1", "USD")
    _write(store, "reddit", "t2_x", D(2026, 9, 1), D(2026, 9, 30), lambda d: "2", "USD")
    pairs = dash.plan_vs_observed(store, D(2026, 9, 1), D(2026, 9, 30), dash.plan_rows(), "USD")
    by = {p.label: p for p in pairs}
    assert [p.label for p in pairs] == ["Meta + Google", "TikTok", "LinkedIn", "Amazon", "Microsoft", "Reddit"]
    # Meta + Google: (3003.00 + 1500.15 + 30.00) over the two stores with spend on either
    assert by["Meta + Google"].platforms == ("meta", "google") and by["Meta + Google"].clients == 2
    assert by["Meta + Google"].observed == Decimal("2266.58") and by["Meta + Google"].plan == Decimal(15000)
    assert by["Amazon"].platforms == ("amazon",) and by["Amazon"].clients == 1
    assert by["TikTok"].observed is None and by["TikTok"].clients == 0
    assert by["Reddit"].plan is None and by["Reddit"].observed == Decimal("60.00")


def test_invoicing_overview_amounts_are_decimals_and_unknown_is_none(store):
    from service import invoices as inv
    from service import invoicing_view as view

    store.unlink_account("s1", "amazon", "333")
    store.save_store("s2", "Empty", "USD", True)
    rows = {r["store"]: r for r in view.overview_rows(inv.month_overview(store, D(2026, 9, 1), D(2026, 9, 30)))}
    assert rows["s1"]["total"] == Decimal("4503.15") and rows["s1"]["data"] == "complete"
    assert rows["s2"]["total"] is None and rows["s2"]["data"] == "incomplete"  # never a silent 0.00
