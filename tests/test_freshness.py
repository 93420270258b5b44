"""Scheduled refresh and data freshness (issue 13, items 4-5): the plan of `refresh --recent`,
`status`, and days past a platform's retention told as "cannot be fetched any more".

Plan and status tests pin the date (``clock.pinned``) and write the stored days directly, so the
expected values are exact on any date; the wire test runs on today's date and computes every
expectation from ``clock.today()``."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from decimal import Decimal

import pytest

from fetchers import clock
from service import freshness as fr
from service import invoices as inv
from service import invoicing_view as view
from service.report import spend_report
from storage.db import SpendStore, WindowFailure, WindowWrite

D = dt.date
UTC = dt.UTC


# --- the plan, pure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookback, history, today, window_start, scan_start, end",
    [
        (28, 1123, D(2026, 12, 3), D(2026, 11, 5), D(2026, 11, 1), D(2026, 12, 2)),  # Meta
        (14, None, D(2026, 12, 3), D(2026, 11, 19), D(2026, 11, 1), D(2026, 12, 2)),  # Google: no cap
        (3, 60, D(2026, 12, 3), D(2026, 11, 30), D(2026, 11, 1), D(2026, 12, 2)),  # Amazon
        (3, 60, D(2026, 12, 31), D(2026, 12, 28), D(2026, 11, 1), D(2026, 12, 30)),  # Amazon: cut == month start
        (3, 60, D(2027, 1, 1), D(2026, 12, 29), D(2026, 12, 1), D(2026, 12, 31)),  # year boundary
        (30, 1095, D(2026, 3, 1), D(2026, 1, 30), D(2026, 2, 1), D(2026, 2, 28)),  # Microsoft: window > month
        (14, None, D(2024, 3, 1), D(2024, 2, 16), D(2024, 2, 1), D(2024, 2, 29)),  # leap year
        (28, 10, D(2026, 12, 3), D(2026, 11, 23), D(2026, 11, 23), D(2026, 12, 2)),  # retention cuts both
        (7, 40, D(2026, 12, 31), D(2026, 12, 24), D(2026, 11, 21), D(2026, 12, 30)),  # retention cuts the months
    ],
)
def test_recent_bounds(lookback, history, today, window_start, scan_start, end):
    assert fr.recent_bounds(lookback, history, today) == fr.RecentBounds(window_start, scan_start, end)


def test_recent_period_spans_every_platform():
    # Microsoft's 30-day window reaches before the previous month on 1 March
    assert fr.recent_period(D(2026, 3, 1)) == (D(2026, 1, 30), D(2026, 2, 28))
    assert fr.recent_period(D(2026, 12, 3)) == (D(2026, 11, 1), D(2026, 12, 2))
    assert fr.recent_period(D(2026, 12, 3), ["amazon"]) == (D(2026, 11, 1), D(2026, 12, 2))


# --- the plan and status against stored days (pinned date) -------------------------------------------

TODAY = D(2026, 12, 3)


def _days(a: dt.date, b: dt.date) -> list[dt.date]:
    return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]


def _write(store, p, a, start, end, fetched_at, ccy="USD"):
    store.write_windows(
        [WindowWrite(p, a, start, end, {d: Decimal("1.50") for d in _days(start, end)}, ccy, "r1", fetched_at)]
    )


def _fail(store, p, a, start, end, error="boom"):
    store.write_windows(
        failures=[WindowFailure(p, a, start, end, error, "r2", dt.datetime(2026, 12, 3, 4, tzinfo=UTC))]
    )


@pytest.fixture
def pinned_store(tmp_path):
    """s1: meta m1 (settled Nov 1-4 fetched Dec 3, Nov 2 then failed; window days fetched Dec 2),
    amazon z1 (nothing in the two months; a failure on 2026-09-01, past its 60 days), google g1
    never fetched (s1 is a demo store: every platform counts as configured). s2 shares meta m1."""
    store = SpendStore(tmp_path / "f.duckdb")
    with store.transaction() as con:
        store.upsert_stores(con, [("s1", "One", "USD", True), ("s2", "Two", "USD", False)])
        store.link_accounts(
            con,
            [
                ("s1", "meta", "m1", None),
                ("s1", "amazon", "z1", None),
                ("s1", "google", "g1", None),
                ("s2", "meta", "m1", None),
            ],
        )
    _write(store, "meta", "m1", D(2026, 10, 20), D(2026, 11, 4), dt.datetime(2026, 12, 3, 1, tzinfo=UTC))
    _write(store, "meta", "m1", D(2026, 11, 5), D(2026, 11, 30), dt.datetime(2026, 12, 2, 6, tzinfo=UTC))
    _fail(store, "meta", "m1", D(2026, 11, 2), D(2026, 11, 2))
    _fail(store, "amazon", "z1", D(2026, 9, 1), D(2026, 9, 1))
    _write(store, "amazon", "z1", D(2026, 9, 2), D(2026, 9, 3), dt.datetime(2026, 9, 10, tzinfo=UTC))
    return store


def test_recent_days_exact(pinned_store):
    with clock.pinned(TODAY):
        plan = fr.recent_days(pinned_store, [("meta", "m1"), ("amazon", "z1"), ("google", "g1")])
    # meta: the failed Nov 2, then its 28-day window Nov 5..Dec 2 (Nov 1, 3, 4 are settled)
    assert plan[("meta", "m1")] == [D(2026, 11, 2)] + _days(D(2026, 11, 5), D(2026, 12, 2))
    # amazon: every day of the two months (it serves 60 days: back to Oct 4); the Sept failure is lost
    assert plan[("amazon", "z1")] == _days(D(2026, 11, 1), D(2026, 12, 2))
    assert plan[("google", "g1")] == _days(D(2026, 11, 1), D(2026, 12, 2))


def test_status_exact(pinned_store):
    doc = fr.status_json(pinned_store, today=TODAY)
    s1 = doc["stores"][0]
    assert [s["store_id"] for s in doc["stores"]] == ["s1", "s2"]
    meta, amazon, google = (s1["platforms"][p] for p in ("meta", "amazon", "google"))
    assert list(s1["platforms"]) == ["meta", "google", "amazon"]
    assert (meta["last_day"], meta["fetched_at"], meta["pending_days"], meta["unfetchable_days"]) == (
        "2026-11-30",
        "2026-12-03T01:00:00+00:00",
        3,
        0,
    )  # Nov 2 failed, Dec 1-2 missing
    assert (amazon["last_day"], amazon["fetched_at"], amazon["pending_days"], amazon["unfetchable_days"]) == (
        "2026-09-03",
        "2026-09-10T00:00:00+00:00",
        32,
        1,
    )
    assert amazon["oldest_servable"] == "2026-10-04"
    assert (google["last_day"], google["fetched_at"], google["pending_days"], google["unfetchable_days"]) == (
        None,
        None,
        32,
        0,
    )
    assert doc["stores"][1]["platforms"]["meta"]["pending_days"] == 3
    lines = fr.data_as_of(pinned_store, "s1", today=TODAY)
    assert lines == [
        ("meta", "Meta", "data as of 2026-11-30 (fetched 2026-12-03 01:00 UTC); 3 day(s) to fetch"),
        ("google", "Google Ads", "no data yet; 32 day(s) to fetch"),
        (
            "amazon",
            "Amazon Ads",
            "data as of 2026-09-03 (fetched 2026-09-10 00:00 UTC); 32 day(s) to fetch; "
            "1 day(s) cannot be fetched any more (Amazon Ads keeps 60 days)",
        ),
    ]


def test_status_cli(pinned_store, run_cli, monkeypatch):
    monkeypatch.setenv("ADSPEND_TODAY", TODAY.isoformat())
    r = run_cli("status", "--store", "s2", "--json", db=pinned_store.path)
    assert r.returncode == 0, r
    assert r.json() == {
        "today": "2026-12-03",
        "stores": [
            {
                "store_id": "s2",
                "name": "Two",
                "platforms": {
                    "meta": {
                        "last_day": "2026-11-30",
                        "fetched_at": "2026-12-03T01:00:00+00:00",
                        "pending_days": 3,
                        "unfetchable_days": 0,
                        "oldest_servable": "2023-11-06",
                        "accounts": [
                            {
                                "account_id": "m1",
                                "last_day": "2026-11-30",
                                "fetched_at": "2026-12-03T01:00:00+00:00",
                                "pending_days": 3,
                                "unfetchable_days": 0,
                            }
                        ],
                    }
                },
            }
        ],
    }
    r = run_cli("status", db=pinned_store.path)
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[1].split() == [
        "meta",
        "last",
        "day",
        "2026-11-30",
        "fetched",
        "2026-12-03T01:00:00+00:00",
        "pending",
        "3",
        "unfetchable",
        "0",
    ]
    r = run_cli("status", "--store", "nope", db=pinned_store.path)
    assert (r.returncode, r.stderr) == (2, "error: unknown store 'nope'; see `python cli.py accounts list`\n")


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "refresh needs both --start and --end (or --recent for the daily job)"),
        (("--start", "2026-11-01"), "refresh needs both --start and --end (or --recent for the daily job)"),
        (
            ("--recent", "--start", "2026-11-01", "--end", "2026-11-30"),
            "--recent picks the days itself: give it without --start, --end or --full",
        ),
        (("--recent", "--full"), "--recent picks the days itself: give it without --start, --end or --full"),
    ],
)
def test_refresh_recent_and_dates_are_exclusive(tmp_path, run_cli, args, message):
    r = run_cli("refresh", "--all", *args)
    assert (r.returncode, r.stderr) == (2, f"error: {message}\n")


def test_refresh_recent_bad_store_or_platform(pinned_store, run_cli):
    r = run_cli("refresh", "--store", "nope", "--recent", db=pinned_store.path)
    assert (r.returncode, r.stderr) == (2, "error: unknown store 'nope'; see `python cli.py accounts list`\n")
    r = run_cli("refresh", "--store", "s1", "--recent", "--platform", "myspace", db=pinned_store.path)
    assert r.returncode == 2 and r.stderr.startswith("error: unknown platform 'myspace'; expected one of meta, ")


# --- retention told honestly --------------------------------------------------------------------------


def test_spend_report_and_invoicing_say_cannot_be_fetched(pinned_store):
    # Sept 1-30: amazon past its 60 days (oldest servable Oct 4): 28 of 30 days lost, 2 stored
    rep = spend_report(pinned_store, "s1", D(2026, 9, 1), D(2026, 9, 30), today=TODAY)
    [z1] = rep.platforms["amazon"].accounts
    assert (z1.status, z1.lost_days, z1.fixable, z1.oldest_servable) == ("failed", 28, False, D(2026, 10, 4))
    assert z1.error == (
        "boom (1 of 30 days failed; earlier data kept for 2 days); 28 day(s) before 2026-10-04 "
        "cannot be fetched any more (Amazon Ads keeps 60 days)"
    )
    [g1] = rep.platforms["google"].accounts  # no retention cap: a refresh fixes it
    assert (g1.status, g1.error, g1.fixable) == (
        "missing",
        "never fetched for 2026-09-01..2026-09-30: run a refresh",
        True,
    )
    # a period across the cut: the fixable days are named, the others are not promised
    rep = spend_report(pinned_store, "s1", D(2026, 9, 25), D(2026, 10, 10), today=TODAY)
    [z1] = rep.platforms["amazon"].accounts
    assert (z1.status, z1.fixable) == ("missing", True)
    assert z1.error == (
        "never fetched for 2026-09-25..2026-10-10: a refresh fetches the days from 2026-10-04; "
        "the 9 day(s) before 2026-10-04 cannot be fetched any more (Amazon Ads keeps 60 days)"
    )
    assert "run a refresh" not in rep.to_json()["platforms"]["amazon"]["error"]

    notes = fr.retention_notes(pinned_store, "s1", D(2026, 9, 25), D(2026, 10, 10), today=TODAY)
    assert [(n.platform, n.oldest, n.days, n.message) for n in notes] == [
        (
            "amazon",
            D(2026, 10, 4),
            9,
            "Amazon Ads: 9 day(s) of 2026-09-25..2026-10-03 cannot be fetched any more "
            "(Amazon Ads keeps 60 days); a refresh cannot fix them.",
        )
    ]
    assert fr.retention_notes(pinned_store, "s1", D(2026, 11, 1), D(2026, 11, 30), today=TODAY) == []

    now = dt.datetime(2026, 12, 3, 12, tzinfo=UTC)
    with clock.pinned(TODAY):
        r = inv.readiness(pinned_store, "s1", D(2026, 9, 1), D(2026, 9, 30), now=now)
        by = {(i.platform, i.kind): i.refresh_fixes for i in r.issues}
        assert by[("amazon", "failed")] is False and by[("google", "missing")] is True
        plan = inv.refresh_plan([r])
        assert (plan.platforms, plan.start, plan.end) == (["google", "meta"], D(2026, 9, 1), D(2026, 9, 30))
        rows = {(x["platform"], x["problem"]): (x["refresh fixes it"], x["detail"]) for x in view.issue_rows(r)}
        assert rows[("Amazon Ads", "failed")] == (
            "no",
            "boom (1 of 30 days failed; earlier data kept for 2 days); 28 "
            "day(s) before 2026-10-04 cannot be fetched any more (Amazon Ads "
            "keeps 60 days)",
        )
        assert rows[("Google Ads", "missing")][0] == "yes"
        # across the cut, amazon is in the offer only from the oldest day it serves
        r = inv.readiness(pinned_store, "s1", D(2026, 9, 25), D(2026, 10, 10), now=now)
        plan = inv.refresh_plan([dataclass_only(r, "amazon")])
        assert (plan.platforms, plan.start, plan.end) == (["amazon"], D(2026, 10, 4), D(2026, 10, 10))


def dataclass_only(r: inv.Readiness, platform: str) -> inv.Readiness:
    """The readiness with only one platform's issues (what the plan sees)."""
    return inv.Readiness(r.report, [i for i in r.issues if i.platform == platform], r.invoices)


def test_period_note_for_presets():
    assert fr.period_note(D(2026, 9, 4), D(2026, 12, 2), ["meta", "amazon", "google"], today=TODAY) == (
        "This period reaches past what the platforms serve: Amazon Ads keeps 60 days (nothing before 2026-10-04). "
        "Days before that which are not stored cannot be fetched any more."
    )
    assert fr.period_note(D(2026, 11, 1), D(2026, 11, 30), ["amazon"], today=TODAY) is None
    assert fr.period_note(D(2020, 1, 1), D(2020, 1, 31), ["google", "tiktok"], today=TODAY) is None


# --- on the wire: `refresh --all --recent` twice --------------------------------------------------------


def _stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=5) as r:
        return json.loads(r.read())["requests"]


def _delta(after: dict, before: dict) -> dict:
    return {p: n - before.get(p, 0) for p, n in after.items() if n - before.get(p, 0)}


def test_refresh_recent_twice_asks_only_for_the_restatement_windows(tmp_path, run_cli, sandbox, monkeypatch):
    monkeypatch.setenv("ADSPEND_SANDBOX_URL", sandbox.url)
    assert run_cli("demo").returncode == 0
    today = clock.today()
    yesterday = today - dt.timedelta(days=1)
    store = SpendStore(tmp_path / "adspend.duckdb")
    links = {(a["platform"], a["account_id"]) for a in store.accounts()}

    r = run_cli("refresh", "--all", "--recent", "--json")
    assert r.returncode == 0, r
    first = r.json()
    assert (first["start"], first["end"]) == tuple(d.isoformat() for d in fr.recent_period(today))
    fetched = {(x["platform"], a["account_id"]): a["days_fetched"] for x in first["results"] for a in x["accounts"]}
    expected_first = {}
    for p, a in links:
        lim = fr.limits(p)
        b = fr.recent_bounds(lim.lookback_days, lim.history_days, today)
        expected_first[(p, a)] = (b.end - b.start).days + 1
    assert fetched == expected_first

    status = fr.status_json(store)
    for s in status["stores"]:
        for pid, pf in s["platforms"].items():
            oldest = fr.oldest_servable(pid, today)  # e.g. 31 August: Amazon no longer serves 1 July
            lost = max(0, (oldest - fr.previous_month_start(today)).days) if oldest else 0
            assert (pid, pf["last_day"], pf["pending_days"], pf["unfetchable_days"]) == (
                pid,
                yesterday.isoformat(),
                0,
                lost,
            )

    before = _stats(sandbox.url)
    r = run_cli("refresh", "--all", "--recent", "--json")
    assert r.returncode == 0, r
    second = _delta(_stats(sandbox.url), before)
    run_id = r.json()["run_id"]
    # every account asked for exactly its platform's restatement window, in one window, nothing else
    windows = {
        (w["platform"], w["account_id"]): (w["window_start"], w["window_end"]) for w in store.run_results(run_id)
    }
    assert len(store.run_results(run_id)) == len(links)
    assert windows == {(p, a): (today - dt.timedelta(days=fr.limits(p).lookback_days), yesterday) for p, a in links}
    assert {x["platform"] for x in r.json()["results"]} == set(second)  # every platform asked, no other
    # counted at the sandbox: the platforms that answer a window in one request were asked once per
    # account (account details are not asked again; Meta, Amazon and Microsoft have report flows)
    one_request = ("google", "tiktok", "linkedin", "snapchat", "pinterest", "reddit")
    assert {p: second[p] for p in one_request} == {p: sum(1 for q, _a in links if q == p) for p in one_request}


def test_lost_days_asks_nothing_for_accounts_known_to_be_complete():
    """The store page passes the accounts whose period has every day stored and none failed:
    their cut is known without a query (the retention check cost a query a page)."""

    class NoQueries:
        def execute(self, *args):  # pragma: no cover - must not be reached
            raise AssertionError("no query expected")

    today = D(2026, 12, 3)
    start, end = D(2026, 9, 1), D(2026, 9, 30)  # Amazon serves 60 days: from 2026-10-04
    keys = [("amazon", "3000000001"), ("meta", "1000000001")]
    got = fr.lost_days(NoQueries(), keys, start, end, today, complete=[("amazon", "3000000001")])
    assert got == {("amazon", "3000000001"): fr.Lost(0, 0, D(2026, 10, 4))}  # meta: no cut in the period
