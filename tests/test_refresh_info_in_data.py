"""A refresh asks a platform whose spend answer carries the account's info (Google, and Meta with
its insights edge expanded on the account node: ``PlatformSpec.info_in_data``) for nothing else:
its first window brings the currency and time zone that are stored, counted on the sandbox's wire
(issue 19.3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sandbox import data as sandbox_data
from sandbox.google import expected_daily
from storage.db import SpendStore

TODAY = dt.datetime.now(dt.UTC).date()
ACCOUNTS = ["1234567978", "5550001111"]  # EUR (Europe/Berlin) and USD


def _import(tmp_path, run_cli, accounts, platform="google"):
    csv = tmp_path / "s1.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"s1,Acme,{platform},{a}\n" for a in accounts))
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def _refresh(run_cli, start, end, *extra, platform="google"):
    return run_cli(
        "refresh",
        "--store",
        "s1",
        "--platform",
        platform,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--json",
        *extra,
    )


NINETY_DAYS = TODAY - dt.timedelta(days=120), TODAY - dt.timedelta(days=31)


def _ninety_days_one_request_each(tmp_path, run_cli, platform: str, accounts: list[str]):
    """90 days of each account refreshed: one window and one request each; the stored infos (read
    from the spend answers) are the sandbox's, checked here; returns the store and the infos."""
    _import(tmp_path, run_cli, accounts, platform=platform)
    r = _refresh(run_cli, *NINETY_DAYS, platform=platform)
    assert r.returncode == 0, r
    got = {a["account_id"]: a for x in r.json()["results"] for a in x["accounts"]}
    assert {k: (a["status"], a["windows"], a["days_fetched"], a["requests"]) for k, a in got.items()} == {
        a: ("ok", 1, 90, 1) for a in accounts
    }
    store = SpendStore(tmp_path / "adspend.duckdb")
    infos = store.account_infos([(platform, a) for a in accounts])
    for a in accounts:
        prof = sandbox_data.account_profile(platform, a)
        info = infos[(platform, a)]
        assert (info["currency"], info["timezone"]) == (prof["currency"], prof["timezone"])
    return store, infos


def test_ninety_days_are_one_search_stream_per_account_and_no_customer_lookup(tmp_path, run_cli, sandbox, sandbox_env):
    store, infos = _ninety_days_one_request_each(tmp_path, run_cli, "google", ACCOUNTS)
    assert sandbox.ctx.requests["google"] == len(ACCOUNTS)
    for a in ACCOUNTS:
        assert infos[("google", a)]["name"] == sandbox_data.account_profile("google", a)["name"]
    assert store.query("SELECT DISTINCT currency FROM daily_spend ORDER BY 1") == [("EUR",), ("USD",)]


def test_ninety_meta_days_are_one_request_per_account_and_no_account_lookup(tmp_path, run_cli, sandbox, sandbox_env):
    accounts = ["1234567978", "1000000001"]  # EUR (Europe/Berlin) and USD; 90 days is one page each
    store, _ = _ninety_days_one_request_each(tmp_path, run_cli, "meta", accounts)
    assert sorted(sandbox.ctx.arrivals) == sorted(("meta", "GET", f"/v25.0/act_{a}") for a in accounts)
    for a in accounts:
        want = Decimal(sandbox.sandbox.expected_total("meta", a, *NINETY_DAYS)["spend"])
        assert store.query("SELECT sum(amount) FROM daily_spend WHERE platform = 'meta' AND account_id = ?", [a]) == [
            (want,)
        ]


def _day_without_rows(account: str) -> dt.date:
    """A day the sandbox answers with no row at all (zero cost, the whole day left out, §2.3)."""
    for n in range(40, 400):
        day = TODAY - dt.timedelta(days=n)
        if expected_daily(account, day) == 0 and day.toordinal() % 2 == 0:
            return day
    raise AssertionError("no day without rows in the sandbox's data")


def test_an_account_whose_answer_has_no_rows_is_looked_up(tmp_path, run_cli, sandbox, sandbox_env):
    account = ACCOUNTS[0]
    day = _day_without_rows(account)
    _import(tmp_path, run_cli, [account])
    r = _refresh(run_cli, day, day)
    assert r.returncode == 0, r
    assert sandbox.ctx.requests["google"] == 2  # the empty stream, then the customer lookup
    store = SpendStore(tmp_path / "adspend.duckdb")
    info = store.account_infos([("google", account)])[("google", account)]
    assert (info["currency"], info["timezone"]) == ("EUR", "Europe/Berlin")
    assert store.query("SELECT day, amount::VARCHAR, currency FROM daily_spend") == [(day, "0.000000", "EUR")]
    # a second run: the day is settled and the info stored, so nothing is asked
    r = _refresh(run_cli, day, day)
    assert r.returncode == 0, r
    assert sandbox.ctx.requests["google"] == 2


def test_windows_after_the_first_use_its_info_and_fail_with_it(tmp_path, run_cli, sandbox, sandbox_env, monkeypatch):
    from fetchers import get_fetcher

    monkeypatch.setattr(get_fetcher("google"), "max_days", 30)  # three windows for 90 days
    account = ACCOUNTS[0]
    _import(tmp_path, run_cli, [account])
    start, end = TODAY - dt.timedelta(days=120), TODAY - dt.timedelta(days=31)
    sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "malformed", "count": 1}]})
    r = _refresh(run_cli, start, end)
    assert r.returncode == 1, r
    assert sandbox.ctx.requests["google"] == 1  # the first window failed: the others were not asked
    acc = r.json()["results"][0]["accounts"][0]
    assert (acc["status"], acc["windows"], acc["days_fetched"]) == ("failed", 3, 0)
    store = SpendStore(tmp_path / "adspend.duckdb")
    assert store.account_infos([("google", account)]) == {}
    r = _refresh(run_cli, start, end)  # the fault is spent: one request a window, no lookup
    assert r.returncode == 0, r
    assert sandbox.ctx.requests["google"] == 1 + 3
    assert store.query("SELECT count(*), min(currency), max(currency) FROM daily_spend") == [(90, "EUR", "EUR")]


# --- a lookup beside the windows (PlatformSpec.data_without_info): Pinterest ------------------------------

PIN = "549000000001"


def test_a_pinterest_report_is_submitted_before_the_account_lookup(
    tmp_path, run_cli, sandbox, sandbox_env, monkeypatch
):
    """The report request needs only the account id: it goes first, and the lookup (needed only
    to store the days in the account's currency) follows in the budget's next free slot. The
    lookup's request is counted with the window: submit, lookup, three polls and the download.
    A budget of 60 a minute: the lookup first waits one interval (1 s), longer than a busy
    machine takes to hand the report request its token."""
    monkeypatch.setenv("PINTEREST_REQUESTS_PER_MINUTE", "60")
    start, end = TODAY - dt.timedelta(days=150), TODAY - dt.timedelta(days=121)  # a report (older than 89 days)
    _import(tmp_path, run_cli, [PIN], "pinterest")
    r = _refresh(run_cli, start, end, platform="pinterest")
    assert r.returncode == 0, r
    path = f"/v5/ad_accounts/{PIN}"
    arrived = [(m, p) for plat, m, p in sandbox.ctx.arrivals if plat == "pinterest"]
    assert arrived[0] == ("POST", path + "/reports")
    # then the lookup and the three polls (the tests poll every 0.02 s: the lookup falls among them)
    assert sorted(arrived[1:]) == [("GET", path)] + [("GET", path + "/reports")] * 3
    (account,) = [a for x in r.json()["results"] for a in x["accounts"]]
    assert (account["status"], account["days_fetched"], account["requests"]) == ("ok", 30, 6)
    store = SpendStore(tmp_path / "adspend.duckdb")
    assert store.query("SELECT sum(requests) FROM refresh_results") == [(6,)]
    assert store.query("SELECT count(*), min(currency), max(currency) FROM daily_spend") == [(30, "USD", "USD")]


def test_a_failed_lookup_beside_the_windows_fails_them_and_keeps_the_stored_days(
    tmp_path, run_cli, sandbox, sandbox_env, monkeypatch
):
    from fetchers.base import FetchError
    from fetchers.pinterest import PinterestFetcher

    day = TODAY - dt.timedelta(days=130)
    _import(tmp_path, run_cli, [PIN], "pinterest")
    assert _refresh(run_cli, day, day, platform="pinterest").returncode == 0
    store = SpendStore(tmp_path / "adspend.duckdb")
    before = store.query("SELECT day, amount, run_id FROM daily_spend")
    with store.transaction() as con:
        con.execute("DELETE FROM account_info")  # so the next refresh looks the account up again

    async def refused(self, api, account_id):
        raise FetchError("request", f"pinterest ad account {account_id} cannot be read (test)")

    monkeypatch.setattr(PinterestFetcher, "account_info", refused)
    r = _refresh(run_cli, day, day, "--full", platform="pinterest")
    assert r.returncode == 1, r
    (account,) = [a for x in r.json()["results"] for a in x["accounts"]]
    assert (account["status"], account["error"]) == ("failed", f"pinterest ad account {PIN} cannot be read (test)")
    assert store.query("SELECT day, amount, run_id FROM daily_spend") == before
    assert store.query("SELECT day, error FROM fetch_failures") == [
        (day, f"pinterest ad account {PIN} cannot be read (test)")
    ]
