"""Invoicing (issue 7): exact multi-currency lines, readiness, finalize, re-export, restatements.

Spend comes from the built-in sandbox through the real refresh (CLI in-process). Expected lines are
computed here by hand: the sandbox's own daily figures x the ECB rates below (copied from
eurofxref-hist.csv inside currency_converter's eurofxref-hist.zip, 0.18.23), with the last earlier
publication on weekends and the 25/26 December TARGET holidays, each line rounded once
(ROUND_HALF_UP) to the billing currency's minor units. The literal strings are what that gives.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context
from decimal import Decimal as D
from pathlib import Path

import pytest

from service import invoices as inv
from storage.db import SpendStore, WindowWrite

ROOT = Path(__file__).resolve().parent.parent
DEC_START, DEC_END = dt.date(2025, 12, 1), dt.date(2025, 12, 31)

# December 2025, every ECB publication day: EUR->USD, EUR->GBP, EUR->JPY.
ECB_DEC_2025 = {
    1: ("1.1646", "0.8778", "180.28"),
    2: ("1.1614", "0.8796", "181.26"),
    3: ("1.1668", "0.8766", "181.28"),
    4: ("1.1666", "0.8745", "180.55"),
    5: ("1.1645", "0.8727", "180.76"),
    8: ("1.1655", "0.8746", "181.29"),
    9: ("1.1637", "0.8735", "181.96"),
    10: ("1.1634", "0.8741", "182.32"),
    11: ("1.1714", "0.8751", "182.25"),
    12: ("1.1731", "0.8767", "182.99"),
    15: ("1.1753", "0.8779", "182.32"),
    16: ("1.1776", "0.8764", "182.07"),
    17: ("1.1722", "0.8785", "182.38"),
    18: ("1.1719", "0.8746", "182.55"),
    19: ("1.1712", "0.876", "184.15"),
    22: ("1.1745", "0.8742", "184.77"),
    23: ("1.1786", "0.8729", "183.89"),
    24: ("1.1787", "0.8729", "183.83"),
    29: ("1.1766", "0.8726", "183.97"),
    30: ("1.1757", "0.8712", "183.48"),
    31: ("1.175", "0.8726", "184.09"),
}
_COL = {"EUR": None, "USD": 0, "GBP": 1, "JPY": 2}
_CROSS = Context(prec=28, rounding=ROUND_HALF_EVEN)


def publication_day(n: int) -> int:
    while n not in ECB_DEC_2025:
        n -= 1
    return n


def eur_to(ccy: str, n: int) -> D:
    return D(1) if ccy == "EUR" else D(ECB_DEC_2025[n][_COL[ccy]])


def hand_rate(frm: str, to: str, day: str) -> D:
    """frm -> to on a December 2025 day: the two EUR figures of the same publication date."""
    if frm == to:
        return D(1)
    p = publication_day(dt.date.fromisoformat(day).day)
    return eur_to(to, p) if frm == "EUR" else _CROSS.divide(eur_to(to, p), eur_to(frm, p))


def hand_line(days: dict[str, str], frm: str, to: str) -> tuple[str, str]:
    """(spend in the account currency, billing amount) as printed."""
    spend = sum((D(v) for v in days.values()), D(0))
    exact = sum((D(v) * hand_rate(frm, to, d) for d, v in days.items()), D(0))
    unit = D(1) if to == "JPY" else D("0.01")
    acc_unit = D(1) if frm == "JPY" else D("0.01")
    return str(spend.quantize(acc_unit, ROUND_HALF_UP)), str(exact.quantize(unit, ROUND_HALF_UP))


def read_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def setup_store(run_cli, tmp_path, rows: list[tuple], refresh=(DEC_START, DEC_END)):
    """Import ``(store_id, store_name, platform, account_id, billing_currency)`` rows and refresh."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["store_id", "store_name", "platform", "account_id", "billing_currency"])
    w.writerows(rows)
    f = tmp_path / "accounts.csv"
    f.write_text(buf.getvalue(), encoding="utf-8")
    r = run_cli("accounts", "import", f)
    assert r.returncode == 0, r
    if refresh:
        for sid in sorted({row[0] for row in rows}):
            r = run_cli("refresh", "--store", sid, "--start", refresh[0], "--end", refresh[1])
            assert r.returncode == 0, r


MIXED = [
    ("s1", "Mixed Shop", "meta", "1000000001", "USD"),
    ("s1", "Mixed Shop", "meta", "1000000978", "USD"),
    ("s1", "Mixed Shop", "google", "1234567826", "USD"),
]


# ------------------------------------------------------------------------------------ periods


def test_month_period_and_day_basis_end():
    assert inv.month_period("2025-12") == (DEC_START, DEC_END)
    assert inv.month_period("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert inv.month_period(dt.date(2026, 3, 17)) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    with pytest.raises(ValueError, match="YYYY-MM"):
        inv.month_period("2025-13")
    assert inv.previous_month(dt.date(2026, 1, 15)) == (DEC_START, DEC_END)
    assert inv.recent_months(3, dt.date(2026, 1, 15)) == ["2026-01", "2025-12", "2025-11"]
    utc = dt.UTC
    assert inv.period_over_at(DEC_END, "", "UTC") == dt.datetime(2026, 1, 1, 0, 0, tzinfo=utc)
    assert inv.period_over_at(DEC_END, "Europe/Berlin", "account") == dt.datetime(2025, 12, 31, 23, 0, tzinfo=utc)
    assert inv.period_over_at(DEC_END, "America/New_York", "account") == dt.datetime(2026, 1, 1, 5, 0, tzinfo=utc)
    # unknown zone: the latest end of a calendar day anywhere (UTC-12)
    assert inv.period_over_at(DEC_END, "", "account") == dt.datetime(2026, 1, 1, 12, 0, tzinfo=utc)
    assert inv.period_over_at(DEC_END, "Not/AZone", "account") == dt.datetime(2026, 1, 1, 12, 0, tzinfo=utc)


def test_invoice_numbers():
    assert inv.format_number(1) == "INV-000001"
    assert [inv.parse_number(v) for v in ("INV-000001", "inv-12", "000003", 4)] == [1, 12, 3, 4]
    for bad in ("", "INV-", "0", "INV-000000", "abc", "1; DROP"):
        with pytest.raises(ValueError):
            inv.parse_number(bad)


# ------------------------------------------------------------------------------------ currencies


def test_usd_eur_gbp_month_converts_each_day_and_lines_sum_to_total(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    setup_store(run_cli, tmp_path, MIXED)
    exp = {}
    for _, _, p, a, _ in MIXED:
        days = sandbox.sandbox.expected_total(p, a, DEC_START, DEC_END)["days"]
        ccy = {"1000000001": "USD", "1000000978": "EUR", "1234567826": "GBP"}[a]
        exp[(p, a)] = (ccy, *hand_line(days, ccy, "USD"))
    # the hand computation, written out: these are the invoice's lines
    assert exp == {
        ("meta", "1000000001"): ("USD", "6333.92", "6333.92"),
        ("meta", "1000000978"): ("EUR", "10353.03", "12126.57"),
        ("google", "1234567826"): ("GBP", "9864.90", "13205.37"),
    }

    store = SpendStore(db_path)
    state = inv.readiness(store, "s1", DEC_START, DEC_END)
    assert state.ready and state.issues == [] and state.total == "31665.86"

    r = run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12", "--by", "alice", "--json")
    assert r.returncode == 0, r
    doc = r.json()
    assert (
        doc["invoice"],
        doc["store_id"],
        doc["start"],
        doc["end"],
        doc["billing_currency"],
        doc["total"],
        doc["finalized_by"],
    ) == ("INV-000001", "s1", "2025-12-01", "2025-12-31", "USD", "31665.86", "alice")
    got = {
        (line["platform"], line["account_id"]): (line["currency"], line["spend"], line["billing_amount"])
        for line in doc["lines"]
    }
    assert got == exp
    assert sum(D(v[2]) for v in got.values()) == D("31665.86")
    eur = next(line for line in doc["lines"] if line["account_id"] == "1000000978")
    gbp = next(line for line in doc["lines"] if line["account_id"] == "1234567826")
    # weekend and Christmas days use the last earlier publication, and say so
    assert eur["rates"]["2025-12-06"] == {"rate": "1.1645", "rate_date": "2025-12-05", "fallback": True}
    assert eur["rates"]["2025-12-25"] == {"rate": "1.1787", "rate_date": "2025-12-24", "fallback": True}
    assert eur["rates"]["2025-12-28"] == {"rate": "1.1787", "rate_date": "2025-12-24", "fallback": True}
    assert eur["rates"]["2025-12-29"] == {"rate": "1.1766", "rate_date": "2025-12-29", "fallback": False}
    assert gbp["rates"]["2025-12-26"]["rate"] == format(_CROSS.divide(D("1.1787"), D("0.8729")), "f")
    assert all(D(gbp["rates"][d]["rate"]) == hand_rate("GBP", "USD", d) for d in gbp["rates"])
    assert eur["fx_note"] == "10 day(s) without a published ECB rate used the last earlier rate"
    assert (eur["fx_rate"], gbp["fx_rate"]) == ("1.171306371", "1.338621246")
    assert {line["day_basis"] for line in doc["lines"]} == {"America/New_York", "Europe/Berlin", "Europe/London"}

    out = tmp_path / "inv1.csv"
    assert run_cli("invoice", "export", "--number", "INV-000001", "--out", out).returncode == 0
    assert out.read_text(encoding="utf-8") == (
        "store_id,store_name,period_start,period_end,platform,account_id,account_name,account_currency,spend,"
        "fx_rate,billing_currency,billing_amount,day_basis,status\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,meta,1000000001,Demo Meta 0001,USD,6333.92,1,USD,6333.92,"
        "America/New_York,ok\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,meta,1000000978,Demo Meta 0978,EUR,10353.03,1.171306371,USD,12126.57,"
        "Europe/Berlin,ok\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,google,1234567826,Demo Google 7826,GBP,9864.90,1.338621246,USD,"
        "13205.37,Europe/London,ok\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,TOTAL,,,,,,USD,31665.86,,ok\n"
    )


def test_jpy_billing_rounds_to_whole_yen(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    rows = [
        ("jp", "Tokyo Shop", "meta", "1000000001", "JPY"),
        ("jp", "Tokyo Shop", "meta", "1000000978", "JPY"),
        ("jp", "Tokyo Shop", "google", "1234567392", "JPY"),
    ]
    setup_store(run_cli, tmp_path, rows)
    exp = {}
    for _, _, p, a, _ in rows:
        days = sandbox.sandbox.expected_total(p, a, DEC_START, DEC_END)["days"]
        ccy = {"1000000001": "USD", "1000000978": "EUR", "1234567392": "JPY"}[a]
        exp[a] = (ccy, *hand_line(days, ccy, "JPY"))
    assert exp == {
        "1000000001": ("USD", "6333.92", "987454"),
        "1000000978": ("EUR", "10353.03", "1890553"),
        "1234567392": ("JPY", "1707718", "1707718"),
    }
    r = run_cli("invoice", "finalize", "--store", "jp", "--start", "2025-12-01", "--end", "2025-12-31", "--json")
    assert r.returncode == 0, r
    doc = r.json()
    assert {
        line["account_id"]: (line["currency"], line["spend"], line["billing_amount"]) for line in doc["lines"]
    } == exp
    assert doc["total"] == "4585725" == str(sum(int(v[2]) for v in exp.values()))
    rows_out = read_csv(inv.invoice_csv(SpendStore(db_path), 1))
    assert [r_["billing_amount"] for r_ in rows_out] == ["987454", "1890553", "1707718", "4585725"]
    assert rows_out[2]["spend"] == "1707718" and rows_out[2]["fx_rate"] == "1"


def test_currency_without_rate_blocks_readiness_and_finalize(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    # the ECB stopped publishing RUB after 2022-03-01: a RUB-billed store has no rate for December 2025
    setup_store(run_cli, tmp_path, [("ru", "Moscow Shop", "meta", "1000000001", "RUB")])
    store = SpendStore(db_path)
    state = inv.readiness(store, "ru", DEC_START, DEC_END)
    assert not state.ready and state.state == "not ready"
    assert [(i.platform, i.account_id, i.kind, i.refresh_fixes) for i in state.issues] == [
        ("meta", "1000000001", "fx_missing", False)
    ]
    assert state.issues[0].message == (
        "no USD->RUB exchange rate for 31 day(s) from 2025-12-01: the ECB stopped publishing RUB after 2022-03-01; "
        "bill this store in a currency the ECB publishes (a refresh does not fix it)"
    )
    assert inv.refresh_plan([state]) is None  # a refresh cannot fix a missing rate
    r = run_cli("invoice", "finalize", "--store", "ru", "--month", "2025-12")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error: store ru 2025-12-01..2025-12-31 is not ready to invoice: meta 1000000001: ")
    assert "RUB" in r.stderr and r.stderr.count("\n") == 1
    assert store.query("SELECT count(*) FROM invoices") == [(0,)]
    # the spend itself is still shown in the account currency; never converted 1:1
    doc = run_cli("spend", "--store", "ru", "--start", "2025-12-01", "--end", "2025-12-31", "--json").json()
    assert doc["platforms"]["meta"]["status"] == "fx_missing"
    assert doc["platforms"]["meta"]["accounts"][0]["billing_amount"] is None


# ------------------------------------------------------------------------------------ readiness


def test_readiness_lists_missing_days_and_stale_data_and_the_refresh_fixes_it(
    sandbox, sandbox_env, run_cli, db_path, tmp_path
):
    setup_store(run_cli, tmp_path, MIXED, refresh=(DEC_START, dt.date(2025, 12, 15)))
    store = SpendStore(db_path)
    state = inv.readiness(store, "s1", DEC_START, DEC_END)
    assert not state.ready
    assert [(i.platform, i.account_id, i.kind, i.refresh_fixes, i.message) for i in state.issues] == [
        ("meta", "1000000001", "partial", True, "15 of 31 days fetched"),
        ("meta", "1000000978", "partial", True, "15 of 31 days fetched"),
        ("google", "1234567826", "partial", True, "15 of 31 days fetched"),
    ]
    plan = inv.refresh_plan([state])
    assert plan.command() == (
        "python cli.py refresh --store s1 --start 2025-12-01 --end 2025-12-31 --platform google --platform meta"
    )
    outcome = inv.run_refresh(store, plan, trigger="test")
    assert outcome.status == "ok"
    assert inv.readiness(store, "s1", DEC_START, DEC_END).ready

    # a day stored before the period was over (here: fetched on 2025-12-31 12:00 UTC) is stale
    amounts = {dt.date(2025, 12, 31): D("10.00")}
    early = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.UTC)
    store.write_windows(
        [
            WindowWrite(
                "meta", "1000000001", dt.date(2025, 12, 31), dt.date(2025, 12, 31), amounts, "USD", "early-run", early
            )
        ]
    )
    state = inv.readiness(store, "s1", DEC_START, DEC_END)
    assert [(i.platform, i.account_id, i.kind, i.refresh_fixes) for i in state.issues] == [
        ("meta", "1000000001", "stale", True)
    ]
    assert "2025-12-31T12:00+00:00" in state.issues[0].message
    r = run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12")
    assert r.returncode == 1 and "fetched before the period ended" in r.stderr
    plan = inv.refresh_plan([state])
    assert (plan.platforms, plan.full) == (["meta"], True)
    assert plan.command().endswith("--platform meta --full")
    assert inv.run_refresh(store, plan, trigger="test").status == "ok"
    state = inv.readiness(store, "s1", DEC_START, DEC_END)
    assert state.ready and state.total == "31665.86"


def test_period_not_over_is_not_ready(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    setup_store(run_cli, tmp_path, MIXED)
    store = SpendStore(db_path)
    # seen from 2026-01-01 01:00 UTC: over in Berlin and London, not yet in New York
    now = dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)
    state = inv.readiness(store, "s1", DEC_START, DEC_END, now=now)
    assert [(i.account_id, i.kind) for i in state.issues] == [("1000000001", "not_over")]
    assert "America/New_York" in state.issues[0].message


def test_store_without_accounts_is_not_ready(db_path):
    store = SpendStore(db_path)
    store.save_store("empty", "Empty", "USD")
    state = inv.readiness(store, "empty", DEC_START, DEC_END)
    assert [(i.kind, i.message) for i in state.issues] == [("no_accounts", "the store has no linked ad accounts")]


# ------------------------------------------------------------------------------------ finalize


def test_finalize_twice_refused_reexport_identical_and_restatement_diff(
    sandbox, sandbox_env, run_cli, db_path, tmp_path
):
    setup_store(run_cli, tmp_path, MIXED)
    store = SpendStore(db_path)
    r = run_cli("invoice", "finalize", "--store", "s1", "--start", "2025-12-01", "--end", "2025-12-31")
    assert r.returncode == 0, r
    assert r.stdout.startswith("INV-000001: store s1 2025-12-01..2025-12-31, 3 line(s), total 31665.86 USD")
    snapshot_rows = store.query("SELECT * FROM invoice_lines ORDER BY line_no")
    snapshot_inv = store.query("SELECT * FROM invoices")

    again = run_cli("invoice", "finalize", "--store", "s1", "--start", "2025-12-01", "--end", "2025-12-31")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("error: store s1 was already invoiced for this period as INV-000001")
    overlap = run_cli("invoice", "finalize", "--store", "s1", "--start", "2025-12-15", "--end", "2026-01-10")
    assert overlap.returncode == 1 and "2025-12-01..2025-12-31 as INV-000001" in overlap.stderr

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run_cli("invoice", "export", "--number", "INV-000001", "--out", a).returncode == 0
    assert run_cli("invoice", "export", "--number", "1", "--out", b).returncode == 0
    assert a.read_bytes() == b.read_bytes() == inv.invoice_csv(store, 1)
    assert a.read_bytes() == inv.store_csv(store, "s1", DEC_START, DEC_END)  # same as a plain export, before

    d = run_cli("invoice", "diff", "--number", "INV-000001", "--json")
    assert d.returncode == 0 and d.json()["changed"] is False and d.json()["total_difference"] == "0.00"

    # Meta restates spend from 20 December (2% more); a full re-fetch of the settled period picks it up
    sandbox.ctx.configure({"restate": {"meta": {"from": "2025-12-20", "generation": 1}}})
    assert run_cli("refresh", "--store", "s1", "--start", "2025-12-01", "--end", "2025-12-31", "--full").returncode == 0
    new = {
        a_: hand_line(sandbox.sandbox.expected_total("meta", a_, DEC_START, DEC_END)["days"], c, "USD")
        for a_, c in (("1000000001", "USD"), ("1000000978", "EUR"))
    }
    assert new == {"1000000001": ("6383.38", "6383.38"), "1000000978": ("10424.42", "12210.58")}

    adj = tmp_path / "adjustment.csv"
    d = run_cli("invoice", "diff", "--number", "INV-000001", "--json", "--out", adj)
    assert d.returncode == 0, d
    doc = d.json()
    assert {k: doc[k] for k in ("invoice", "billing_currency", "total_difference", "changed", "complete")} == {
        "invoice": "INV-000001",
        "billing_currency": "USD",
        "total_difference": "133.47",
        "changed": True,
        "complete": True,
    }
    assert [
        {
            k: line[k]
            for k in ("platform", "account_id", "currency", "snapshot", "current", "difference", "billing_difference")
        }
        for line in doc["lines"]
    ] == [
        {
            "platform": "meta",
            "account_id": "1000000001",
            "currency": "USD",
            "snapshot": "6333.92",
            "current": "6383.38",
            "difference": "49.46",
            "billing_difference": "49.46",
        },
        {
            "platform": "meta",
            "account_id": "1000000978",
            "currency": "EUR",
            "snapshot": "10353.03",
            "current": "10424.42",
            "difference": "71.39",
            "billing_difference": "84.01",
        },
        {
            "platform": "google",
            "account_id": "1234567826",
            "currency": "GBP",
            "snapshot": "9864.90",
            "current": "9864.90",
            "difference": "0.00",
            "billing_difference": "0.00",
        },
    ]
    assert D("49.46") + D("84.01") == D("133.47")
    assert doc["lines"][0]["changed_days"][0] == "2025-12-20"
    assert all(day >= "2025-12-20" for line in doc["lines"] for day in line["changed_days"])
    assert adj.read_text(encoding="utf-8") == (
        "store_id,store_name,period_start,period_end,platform,account_id,account_name,account_currency,spend,"
        "fx_rate,billing_currency,billing_amount,day_basis,status\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,meta,1000000001,Demo Meta 0001,USD,49.46,1,USD,49.46,"
        "America/New_York,adjustment to INV-000001\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,meta,1000000978,Demo Meta 0978,EUR,71.39,1.176775459,USD,84.01,"
        "Europe/Berlin,adjustment to INV-000001\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,TOTAL,,,,,,USD,133.47,,adjustment to INV-000001\n"
    )

    text = run_cli("invoice", "diff", "--number", "1")
    assert text.returncode == 0
    assert text.stdout.splitlines()[0] == (
        "INV-000001 store s1 2025-12-01..2025-12-31: restated since finalize; total difference 133.47 USD"
    )

    # the snapshot is untouched: same rows, same bytes, while the live export moved on
    assert store.query("SELECT * FROM invoice_lines ORDER BY line_no") == snapshot_rows
    assert store.query("SELECT * FROM invoices") == snapshot_inv
    c = tmp_path / "c.csv"
    assert run_cli("invoice", "export", "--number", "INV-000001", "--out", c).returncode == 0
    assert c.read_bytes() == a.read_bytes()
    assert inv.store_csv(store, "s1", DEC_START, DEC_END) != a.read_bytes()
    assert inv.readiness(store, "s1", DEC_START, DEC_END).total == "31799.33"  # 31665.86 + 133.47

    lst = run_cli("invoice", "list", "--json")
    assert lst.returncode == 0
    [entry] = lst.json()
    assert set(entry) >= {"invoice", "store_id", "start", "end", "finalized_at", "billing_currency", "total"}
    assert (
        entry["invoice"],
        entry["store_id"],
        entry["start"],
        entry["end"],
        entry["billing_currency"],
        entry["total"],
    ) == ("INV-000001", "s1", "2025-12-01", "2025-12-31", "USD", "31665.86")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", entry["finalized_at"])


def test_invoice_numbers_are_sequential_across_stores(sandbox, sandbox_env, run_cli, tmp_path):
    setup_store(run_cli, tmp_path, MIXED + [("s2", "Second", "meta", "1000000002", "EUR")])
    first = run_cli("invoice", "finalize", "--store", "s2", "--month", "2025-12", "--json")
    second = run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12", "--json")
    assert (first.json()["invoice"], second.json()["invoice"]) == ("INV-000001", "INV-000002")
    assert [e["invoice"] for e in run_cli("invoice", "list", "--json").json()] == ["INV-000001", "INV-000002"]
    assert [e["invoice"] for e in run_cli("invoice", "list", "--store", "s2", "--json").json()] == ["INV-000001"]


def test_cli_bad_input_exit_2(sandbox, sandbox_env, run_cli, tmp_path):
    setup_store(run_cli, tmp_path, MIXED, refresh=None)
    cases = [
        (("invoice", "finalize", "--store", "nope", "--month", "2025-12"), "unknown store 'nope'"),
        (
            ("invoice", "finalize", "--store", "s1", "--start", "2025-12-31", "--end", "2025-12-01"),
            "the start date 2025-12-31 is after the end date 2025-12-01",
        ),
        (("invoice", "finalize", "--store", "s1"), "give the period with --start"),
        (("invoice", "finalize", "--store", "s1", "--month", "2025-12", "--start", "2025-12-01"), "either --month"),
        (("invoice", "finalize", "--store", "s1", "--month", "12/2025"), "is not a month in the form YYYY-MM"),
        (("invoice", "finalize", "--store", "s1", "--start", "2025-12-xx", "--end", "2025-12-31"), "YYYY-MM-DD"),
        (
            ("invoice", "export", "--number", "INV-000009", "--out", tmp_path / "x.csv"),
            "there is no invoice INV-000009",
        ),
        (("invoice", "diff", "--number", "nine"), "is not an invoice number"),
    ]
    for args, msg in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r)
        assert msg in r.stderr and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, (args, r)
    assert not (tmp_path / "x.csv").exists()
    assert run_cli("invoice", "list").stdout.startswith("no invoices yet")


# ------------------------------------------------------------------------------------ exports


def test_formula_store_name_exports_as_inert_text(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    name = '=HYPERLINK("http://x")'
    setup_store(run_cli, tmp_path, [("evil", name, "meta", "1000000001", "USD")])
    out = tmp_path / "store.csv"
    assert (
        run_cli("export", "--store", "evil", "--start", "2025-12-01", "--end", "2025-12-31", "--out", out).returncode
        == 0
    )
    r = run_cli("invoice", "finalize", "--store", "evil", "--month", "2025-12")
    assert r.returncode == 0, r
    snap = tmp_path / "snap.csv"
    assert run_cli("invoice", "export", "--number", "1", "--out", snap).returncode == 0
    for f in (out, snap):
        text = f.read_text(encoding="utf-8")
        assert '\nevil,"\'=HYPERLINK(""http://x"")",2025-12-01,' in text
        rows = read_csv(f.read_bytes())
        assert {row["store_name"] for row in rows} == {'\'=HYPERLINK("http://x")'}
        assert not any(v.startswith(("=", "+", "@")) for row in rows for v in row.values())
    assert out.read_bytes() == snap.read_bytes()


def test_all_stores_csv_equals_cli_export_all(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    setup_store(run_cli, tmp_path, MIXED + [("s2", "Second", "meta", "1000000002", "EUR")])
    out = tmp_path / "all.csv"
    assert run_cli("export", "--all", "--start", "2025-12-01", "--end", "2025-12-31", "--out", out).returncode == 0
    store = SpendStore(db_path)
    data = inv.all_stores_csv(store, DEC_START, DEC_END)
    assert data == out.read_bytes()
    rows = read_csv(data)
    totals = [(r_["store_id"], r_["billing_amount"]) for r_ in rows if r_["platform"] == "TOTAL"]
    assert totals[0] == ("s1", "31665.86")
    s2 = [r_ for r_ in rows if r_["store_id"] == "s2"]
    assert D(s2[-1]["billing_amount"]) == sum(D(r_["billing_amount"]) for r_ in s2[:-1])
    overview = inv.month_overview(store, DEC_START, DEC_END)
    assert [(o.store_id, o.state, o.total) for o in overview] == [
        ("s1", "ready", "31665.86"),
        ("s2", "ready", totals[1][1]),
    ]


# ------------------------------------------------------------------------------------ immutability

_MUTATION = re.compile(
    r"\b(UPDATE|DELETE\s+FROM|INSERT\s+OR\s+REPLACE\s+INTO|REPLACE\s+INTO|DROP\s+TABLE"
    r"(\s+IF\s+EXISTS)?|ALTER\s+TABLE|TRUNCATE(\s+TABLE)?)\s+\"?invoice",
    re.IGNORECASE,
)


def test_no_code_path_updates_or_deletes_an_invoice():
    hits = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".git", "tests"} or "site-packages" in rel.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _MUTATION.search(line):
                hits.append(f"{rel}:{n}: {line.strip()}")
    assert hits == []
    # and the guard itself can fail
    assert _MUTATION.search('con.execute("DELETE FROM invoice_lines WHERE 1")')
    assert _MUTATION.search("UPDATE invoices SET total = '0'")
    src = (ROOT / "service" / "invoices.py").read_text(encoding="utf-8")
    assert "ON CONFLICT" not in src.upper()


def test_month_overview_reads_do_not_grow_with_the_stores(tmp_path, monkeypatch):
    """The Invoicing page's overview reads every store's report and the invoices once each (a
    page rerun opened the database twice per store before): as many opens for 3 stores as for 1."""
    from service.demo import create_demo

    opened = []
    real = SpendStore.connect

    def counting(self, *a, **k):
        opened.append(1)
        return real(self, *a, **k)

    one, three = SpendStore(str(tmp_path / "one.duckdb")), SpendStore(str(tmp_path / "three.duckdb"))
    one.save_store("solo", "Solo Shop", "USD", False)
    create_demo(three)
    assert len(three.stores()) == 3
    monkeypatch.setattr(SpendStore, "connect", counting)
    counts = []
    for store in (one, three):
        opened.clear()
        items = inv.month_overview(
            store, dt.date(2026, 9, 1), dt.date(2026, 9, 30), now=dt.datetime(2026, 10, 15, tzinfo=dt.UTC)
        )
        assert [r.store_id for r in items] == [s["store_id"] for s in store.stores()]
        counts.append(len(opened))
    assert counts[0] == counts[1]
