"""Success-fee statements (issue 18): revenue import, fee rates, fee preview, the fee frozen with an
invoice, its CSV and its restatement diff. Every expected figure is computed here by hand.

The pure computation is tested with exact decimals; the CLI end to end either on spend written
straight into the store (stores billed in the spend's currency) or on the sandbox's demo spend
(the December 2025 invoice figures of tests/test_invoices.py, hand-checked there).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from test_invoices import DEC_END, DEC_START, MIXED, setup_store

from fetchers import clock
from service import fees
from service import invoices as inv
from storage.db import SpendStore, WindowWrite

UTC = dt.UTC
SEP_START, SEP_END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def write_csv(path, header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------ the pure computation


def stmt(revenue: dict, ad_spend: str, *, start=SEP_START, end=SEP_END, ccy="USD", complete=True, rates=()):
    return fees.compute(
        store_id="s",
        store_name="S",
        start=start,
        end=end,
        currency=ccy,
        revenue_by_day={d: (D(r), D(c)) for d, (r, c) in revenue.items()},
        ad_spend=D(ad_spend),
        spend_complete=complete,
        rates=rates,
    )


def test_hand_computed_month():
    # 30 days: revenue 1234.56 and costs 100.05 a day, one day (15th) revenue 999.99 with costs 0
    rev = {d: ("1234.56", "100.05") for d in days(SEP_START, SEP_END)}
    rev[dt.date(2026, 9, 15)] = ("999.99", "0")
    s = stmt(rev, "12345.67")
    # revenue 29 x 1234.56 + 999.99 = 35802.24 + 999.99 = 36802.23; costs 29 x 100.05 = 2901.45
    # net profit 36802.23 - 12345.67 - 2901.45 = 21555.11; fee 20% = 4311.022 -> 4311.02
    assert s.to_json() | {} == {
        "store_id": "s",
        "store_name": "S",
        "start": "2026-09-01",
        "end": "2026-09-30",
        "billing_currency": "USD",
        "revenue": "36802.23",
        "ad_spend": "12345.67",
        "costs": "2901.45",
        "net_profit": "21555.11",
        "fee": "4311.02",
        "fee_rate": "20",
        "rates": [{"start": "2026-09-01", "end": "2026-09-30", "percent": "20", "days": 30}],
        "complete": True,
        "provisional": False,
        "loss": False,
        "status": "final",
        "note": "final",
        "days": 30,
        "revenue_days": 30,
        "missing_revenue_days": [],
        "spend_complete": True,
    }
    # half a cent rounds up, once: net profit 0.05 at 10% = 0.005 -> 0.01
    one = {dt.date(2026, 9, 1): ("10.05", "0")}
    s = stmt(one, "10.00", end=dt.date(2026, 9, 1), rates=[(dt.date(2020, 1, 1), D(10))])
    assert (s.net_profit, s.fee) == (D("0.05"), D("0.01"))
    assert s.csv_row() == [
        "s",
        "S",
        "2026-09-01",
        "2026-09-01",
        "USD",
        "10.05",
        "10.00",
        "0.00",
        "0.05",
        "10",
        "0.01",
        "final",
    ]


def test_loss_month_has_no_fee_and_says_so():
    rev = {d: ("100.00", "10.00") for d in days(SEP_START, SEP_END)}  # revenue 3000.00, costs 300.00
    s = stmt(rev, "2700.01")
    assert (s.revenue, s.costs, s.ad_spend, s.net_profit, s.fee) == (
        D("3000.00"),
        D("300.00"),
        D("2700.01"),
        D("-0.01"),
        D("0.00"),
    )
    assert s.loss and s.status == "loss" and s.complete
    assert s.note == "final: net profit is not positive, so there is no fee (Zero-Risk Guarantee)"
    # break-even is not a profit either
    s = stmt(rev, "2700.00")
    assert (s.net_profit, s.fee, s.status) == (D("0.00"), D("0.00"), "loss")


def test_rate_change_mid_year_and_a_period_spanning_it_is_prorated_by_days():
    history = [(dt.date(2026, 6, 15), D(25)), (dt.date(2026, 11, 1), D("17.5"))]
    assert fees.rate_segments(history, dt.date(2026, 1, 1), dt.date(2026, 12, 31)) == [
        fees.RateSegment(dt.date(2026, 1, 1), dt.date(2026, 6, 14), D(20)),
        fees.RateSegment(dt.date(2026, 6, 15), dt.date(2026, 10, 31), D(25)),
        fees.RateSegment(dt.date(2026, 11, 1), dt.date(2026, 12, 31), D("17.5")),
    ]

    def month(start, end, net="1000.01"):
        return stmt(
            {start: (net, "0")} | {d: ("0", "0") for d in days(start + dt.timedelta(days=1), end)},
            "0",
            start=start,
            end=end,
            rates=history,
        )

    may, jul, nov = (
        month(dt.date(2026, 5, 1), dt.date(2026, 5, 31)),
        month(dt.date(2026, 7, 1), dt.date(2026, 7, 31)),
        month(dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
    )
    assert (may.fee_rate, may.fee) == ("20", D("200.00"))  # 200.002 -> 200.00: old rate kept
    assert (jul.fee_rate, jul.fee) == ("25", D("250.00"))  # 250.0025 -> 250.00
    assert (nov.fee_rate, nov.fee) == ("17.5", D("175.00"))  # 175.00175 -> 175.00
    # June: 14 days at 20% and 16 days at 25%: (20 x 14 + 25 x 16) / 30 = 680/30 %
    june = month(dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    assert [(g.start.day, g.end.day, g.percent, g.days) for g in june.segments] == [
        (1, 14, D(20), 14),
        (15, 30, D(25), 16),
    ]
    # 1000.01 x 680 / 3000 = 226.668933... -> 226.67 (one rounding, of the fee)
    assert (june.fee_rate, june.fee) == ("22.6667", D("226.67"))
    june3000 = month(dt.date(2026, 6, 1), dt.date(2026, 6, 30), net="3000.00")
    assert june3000.fee == D("680.00")
    assert june.to_json()["rates"] == [
        {"start": "2026-06-01", "end": "2026-06-14", "percent": "20", "days": 14},
        {"start": "2026-06-15", "end": "2026-06-30", "percent": "25", "days": 16},
    ]


def test_jpy_has_no_minor_units():
    rev = {d: ("123457", "1000") for d in days(SEP_START, SEP_END)}  # 3703710 revenue, 30000 costs
    s = stmt(rev, "1234567", ccy="JPY", rates=[(dt.date(2026, 1, 1), D("17.5"))])
    # net 3703710 - 1234567 - 30000 = 2439143; x 17.5% = 426850.025 -> 426850
    assert s.amounts() == {
        "revenue": "3703710",
        "ad_spend": "1234567",
        "costs": "30000",
        "net_profit": "2439143",
        "fee": "426850",
    }
    with pytest.raises(ValueError, match="more decimals than JPY has minor units"):
        fees.parse_amount("100.5", "JPY", "revenue")
    assert fees.parse_amount("-0.000", "KWD", "revenue") == D("0.000") and fees.parse_amount("1.234", "KWD", "x")


def test_missing_revenue_day_or_incomplete_spend_makes_the_fee_provisional():
    rev = {d: ("200.00", "0") for d in days(SEP_START, SEP_END) if d.day not in (7, 8)}
    s = stmt(rev, "1000.00")
    assert (s.revenue, s.net_profit, s.fee) == (D("5600.00"), D("4600.00"), D("920.00"))
    assert (s.complete, s.provisional, s.status, s.revenue_days) == (False, True, "provisional", 28)
    assert s.missing_revenue == [dt.date(2026, 9, 7), dt.date(2026, 9, 8)]
    assert s.note == "provisional: revenue missing for 2 of 30 days (from 2026-09-07)"
    full = {d: ("200.00", "0") for d in days(SEP_START, SEP_END)}
    s = fees.compute(
        store_id="s",
        store_name="S",
        start=SEP_START,
        end=SEP_END,
        currency="USD",
        revenue_by_day={d: (D(r), D(c)) for d, (r, c) in full.items()},
        ad_spend=D("7000"),
        spend_complete=False,
        spend_problems=["meta partial"],
    )
    assert (s.status, s.fee) == ("provisional", D("0.00"))
    assert s.note == (
        "provisional: ad spend incomplete (meta partial); net profit is not positive, so there is "
        "no fee (Zero-Risk Guarantee)"
    )


# ------------------------------------------------------------------------------ revenue import


def make_store(
    run_cli,
    tmp_path,
    rows=(("s1", "Shop One", "meta", "1000000001", "USD"), ("jp", "Tokyo", "meta", "1000000002", "JPY")),
):
    f = write_csv(
        tmp_path / "accounts.csv", ["store_id", "store_name", "platform", "account_id", "billing_currency"], rows
    )
    r = run_cli("accounts", "import", f)
    assert r.returncode == 0, r


def put_spend(db_path, account: str, start: dt.date, end: dt.date, per_day: str, ccy: str):
    """Every day of start..end fetched (after the period ended) with the same amount."""
    SpendStore(db_path).write_windows(
        [
            WindowWrite(
                "meta",
                account,
                start,
                end,
                {d: D(per_day) for d in days(start, end)},
                ccy,
                "test-run",
                dt.datetime.combine(end + dt.timedelta(days=3), dt.time(0), UTC),
            )
        ]
    )


def test_revenue_import_all_or_nothing_names_every_bad_line(run_cli, db_path, tmp_path):
    make_store(run_cli, tmp_path)
    bad = write_csv(
        tmp_path / "bad.csv",
        ["store_id", "day", "revenue", "costs"],
        [
            ["s1", "2026-09-01", "100.00", "5"],
            ["nope", "2026-09-01", "1", ""],
            ["s1", "20260902", "1", ""],
            ["s1", "2026-02-30", "1", ""],
            ["s1", "2026-09-03", "1.005", ""],
            ["jp", "2026-09-03", "10.5", ""],
            ["s1", "2026-09-04", "$1,000", ""],
            ["s1", "2026-09-05", "1", "-2"],
            ["s1", "2026-09-06", "1e3", ""],
        ],
    )
    r = run_cli("revenue", "import", bad)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: nothing imported: 8 bad line(s): line 3: unknown store 'nope'")
    for frag in (
        "line 4: day '20260902' is not a date in the form YYYY-MM-DD",
        "line 5: day '2026-02-30' is not a real date",
        "line 6: revenue 1.005 has more decimals than USD has minor units (2)",
        "line 7: revenue 10.5 has more decimals than JPY has minor units (0)",
        "line 8: revenue '$1,000' is not a plain decimal number",
        "line 9: costs -2 is negative",
        "line 10: revenue '1e3' is not a plain decimal",
    ):
        assert frag in r.stderr, frag
    assert SpendStore(db_path).query("SELECT count(*) FROM store_revenue") == [(0,)]
    r = run_cli("revenue", "import", write_csv(tmp_path / "h.csv", ["store_id", "date", "revenue"], [["s1", "x", "1"]]))
    assert r.returncode == 2 and "the header lacks day" in r.stderr


def test_revenue_reimport_changes_nothing_and_a_later_row_replaces(run_cli, db_path, tmp_path):
    make_store(run_cli, tmp_path)
    f = write_csv(
        tmp_path / "rev.csv",
        ["store_id", "day", "revenue"],
        [
            ["s1", "2026-09-01", "100.00"],
            ["s1", "2026-09-02", "50"],
            ["s1", "2026-09-01", "120.50"],
            ["jp", "2026-09-01", "5000"],
        ],
    )
    r = run_cli("revenue", "import", f)
    assert r.returncode == 0, r
    assert r.stdout == f"imported {f}: 3 store-day row(s): 3 new, 0 changed, 0 unchanged\n"
    store = SpendStore(db_path)
    before = store.query("SELECT * FROM store_revenue ORDER BY ALL")
    assert [(s, d.isoformat(), str(rv), str(c), ccy) for s, d, rv, c, ccy, _ in before] == [
        ("jp", "2026-09-01", "5000.000000", "0.000000", "JPY"),
        ("s1", "2026-09-01", "120.500000", "0.000000", "USD"),
        ("s1", "2026-09-02", "50.000000", "0.000000", "USD"),
    ]
    r = run_cli("revenue", "import", f)
    assert r.stdout.endswith("0 new, 0 changed, 3 unchanged\n")
    assert store.query("SELECT * FROM store_revenue ORDER BY ALL") == before  # imported_at too
    g = write_csv(tmp_path / "rev2.csv", ["store_id", "day", "revenue", "costs"], [["s1", "2026-09-02", "50", "7.5"]])
    assert run_cli("revenue", "import", g).stdout.endswith("0 new, 1 changed, 0 unchanged\n")
    assert store.query("SELECT costs FROM store_revenue WHERE day = '2026-09-02'") == [(D("7.500000"),)]


# ------------------------------------------------------------------------------ CLI end to end


def test_fee_preview_cli_equals_hand_computation_and_spend_total(run_cli, db_path, tmp_path, monkeypatch):
    make_store(run_cli, tmp_path)
    put_spend(db_path, "1000000001", SEP_START, SEP_END, "33.33", "USD")  # 999.90
    rows = [["s1", d.isoformat(), "150.00", "12.34"] for d in days(SEP_START, SEP_END) if d.day != 30]
    assert (
        run_cli(
            "revenue", "import", write_csv(tmp_path / "r.csv", ["store_id", "day", "revenue", "costs"], rows)
        ).returncode
        == 0
    )
    r = run_cli("fee", "preview", "--store", "s1", "--month", "2026-09", "--json")
    assert r.returncode == 0, r
    doc = r.json()
    spend = run_cli("spend", "--store", "s1", "--start", "2026-09-01", "--end", "2026-09-30", "--json").json()
    assert doc["ad_spend"] == spend["total_spend"] == "999.90"
    # 29 days: revenue 4350.00, costs 357.86; net 4350.00 - 999.90 - 357.86 = 2992.24; 20% = 598.448 -> 598.45
    assert {
        k: doc[k] for k in ("revenue", "ad_spend", "costs", "net_profit", "fee_rate", "fee", "complete", "status")
    } == {
        "revenue": "4350.00",
        "ad_spend": "999.90",
        "costs": "357.86",
        "net_profit": "2992.24",
        "fee_rate": "20",
        "fee": "598.45",
        "complete": False,
        "status": "provisional",
    }
    assert doc["missing_revenue_days"] == ["2026-09-30"]
    # the last day comes in: complete
    assert (
        run_cli(
            "revenue",
            "import",
            write_csv(
                tmp_path / "r30.csv", ["store_id", "day", "revenue", "costs"], [["s1", "2026-09-30", "150.00", "12.34"]]
            ),
        ).returncode
        == 0
    )
    text = run_cli("fee", "preview", "--store", "s1", "--start", "2026-09-01", "--end", "2026-09-30")
    assert text.returncode == 0
    # 30 days: 4500.00 - 999.90 - 370.20 = 3129.90; 20% = 625.98
    assert text.stdout.splitlines() == ["Shop One (s1) 2026-09-01..2026-09-30 [USD]"] + [
        f"    {k:<12}{v:>16}"
        for k, v in (
            ("revenue", "4500.00"),
            ("ad spend", "999.90"),
            ("costs", "370.20"),
            ("net profit", "3129.90"),
            ("rate", "20%"),
            ("fee", "625.98"),
        )
    ] + ["final"]

    # a new rate from the 16th (no --from: the first day of the current month)
    assert run_cli("fee", "rate", "--store", "s1", "--percent", "30", "--from", "2026-09-16").returncode == 0
    doc = run_cli("fee", "preview", "--store", "s1", "--month", "2026-09", "--json").json()
    # (20 x 15 + 30 x 15) / 30 = 25%: 3129.90 x 0.25 = 782.475 -> 782.48
    assert (doc["fee_rate"], doc["fee"]) == ("25", "782.48")
    assert run_cli("fee", "preview", "--store", "s1", "--month", "2026-08", "--json").json()["fee_rate"] == "20"
    monkeypatch.setenv("ADSPEND_TODAY", "2026-11-20")
    r = run_cli("fee", "rate", "--store", "s1", "--percent", "12.5", "--json")
    assert r.json() == {
        "store_id": "s1",
        "from": "2026-11-01",
        "percent": "12.5",
        "changed": True,
        "history": [{"from": "2026-09-16", "percent": "30"}, {"from": "2026-11-01", "percent": "12.5"}],
    }
    assert run_cli("fee", "rate", "--store", "s1", "--percent", "12.5", "--json").json()["changed"] is False
    assert run_cli("fee", "preview", "--store", "s1", "--month", "2026-09", "--json").json()["fee"] == "782.48"

    # bad input: exit 2, one sentence
    for args, msg in (
        (("fee", "rate", "--store", "nope", "--percent", "20"), "unknown store 'nope'"),
        (("fee", "rate", "--store", "s1", "--percent", "120"), "from 0 to 100"),
        (("fee", "rate", "--store", "s1", "--percent", "-1"), "from 0 to 100"),
        (("fee", "preview", "--store", "nope", "--month", "2026-09"), "unknown store 'nope'"),
        (("fee", "preview", "--store", "s1", "--month", "2026-13"), "YYYY-MM"),
        (("fee", "preview", "--store", "s1", "--start", "2026-09-02", "--end", "2026-09-01"), "after the end date"),
        (("fee", "preview", "--store", "s1"), "give the period"),
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, (args, r)


def test_jpy_store_preview_matches_spend_and_hand_computation(run_cli, db_path, tmp_path):
    make_store(run_cli, tmp_path)
    put_spend(db_path, "1000000002", SEP_START, SEP_END, "4321", "JPY")  # 129630
    rows = [["jp", d.isoformat(), "20000", "333"] for d in days(SEP_START, SEP_END)]  # 600000, 9990
    assert (
        run_cli(
            "revenue", "import", write_csv(tmp_path / "r.csv", ["store_id", "day", "revenue", "costs"], rows)
        ).returncode
        == 0
    )
    assert run_cli("fee", "rate", "--store", "jp", "--percent", "17.5", "--from", "2026-01-01").returncode == 0
    doc = run_cli("fee", "preview", "--store", "jp", "--month", "2026-09", "--json").json()
    # 600000 - 129630 - 9990 = 460380; x 17.5% = 80566.5 -> 80567 (half up, whole yen)
    assert {
        k: doc[k]
        for k in ("billing_currency", "revenue", "ad_spend", "costs", "net_profit", "fee_rate", "fee", "status")
    } == {
        "billing_currency": "JPY",
        "revenue": "600000",
        "ad_spend": "129630",
        "costs": "9990",
        "net_profit": "460380",
        "fee_rate": "17.5",
        "fee": "80567",
        "status": "final",
    }


def test_finalize_freezes_the_fee_statement_reexport_identical_and_diff_shows_the_fee(
    sandbox, sandbox_env, run_cli, db_path, tmp_path
):
    setup_store(run_cli, tmp_path, MIXED)  # the sandbox's December 2025: 31665.86 USD
    rows = [["s1", d.isoformat(), "1500.00", "100.00"] for d in days(DEC_START, DEC_END)]
    rows[4][1:] = ["2025-12-05", "=HYPERLINK(1)", "0"]  # refused: not a number
    bad = run_cli("revenue", "import", write_csv(tmp_path / "bad.csv", ["store_id", "day", "revenue", "costs"], rows))
    assert bad.returncode == 2 and "line 6: revenue '=HYPERLINK(1)'" in bad.stderr
    rows[4][1:] = ["2025-12-05", "1500.00", "100.00"]
    assert (
        run_cli(
            "revenue", "import", write_csv(tmp_path / "r.csv", ["store_id", "day", "revenue", "costs"], rows)
        ).returncode
        == 0
    )
    # revenue 46500.00, costs 3100.00, net 46500.00 - 31665.86 - 3100.00 = 11734.14; 20% = 2346.828 -> 2346.83
    pv = run_cli("fee", "preview", "--store", "s1", "--month", "2025-12", "--json").json()
    assert (pv["ad_spend"], pv["net_profit"], pv["fee"], pv["status"]) == ("31665.86", "11734.14", "2346.83", "final")
    r = run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12")
    assert r.returncode == 0, r
    store = SpendStore(db_path)
    content = fees.fee_snapshot_content(store, 1)
    assert content == {
        "invoice_number": 1,
        "invoice": "INV-000001",
        "store_id": "s1",
        "store_name": "Mixed Shop",
        "period_start": "2025-12-01",
        "period_end": "2025-12-31",
        "billing_currency": "USD",
        "revenue": "46500.00",
        "costs": "3100.00",
        "ad_spend": "31665.86",
        "net_profit": "11734.14",
        "fee_rate": "20",
        "rates": [{"start": "2025-12-01", "end": "2025-12-31", "percent": "20", "days": 31}],
        "fee": "2346.83",
        "status": "final",
        "note": "final",
        "revenue_days": 31,
        "days": 31,
        "csv_sha256": content["csv_sha256"],
    }
    expected = (
        "store_id,store_name,period_start,period_end,billing_currency,revenue,ad_spend,costs,net_profit,"
        "fee_rate,fee,status\n"
        "s1,Mixed Shop,2025-12-01,2025-12-31,USD,46500.00,31665.86,3100.00,11734.14,20,2346.83,final\n"
    )
    a, b, c = tmp_path / "fee_a.csv", tmp_path / "fee_b.csv", tmp_path / "inv.csv"
    r = run_cli("invoice", "export", "--number", "INV-000001", "--fee-out", a)
    assert r.returncode == 0 and r.stdout == f"wrote {a}: fee statement of INV-000001\n" and not c.exists()
    assert a.read_text(encoding="utf-8") == expected

    # later: Meta restates (+133.47 USD), revenue is corrected and the rate changes backdated
    sandbox.ctx.configure({"restate": {"meta": {"from": "2025-12-20", "generation": 1}}})
    assert run_cli("refresh", "--store", "s1", "--start", "2025-12-01", "--end", "2025-12-31", "--full").returncode == 0
    assert (
        run_cli(
            "revenue",
            "import",
            write_csv(
                tmp_path / "fix.csv",
                ["store_id", "day", "revenue", "costs"],
                [["s1", "2025-12-31", "1600.00", "100.00"]],
            ),
        ).returncode
        == 0
    )
    assert run_cli("invoice", "export", "--number", "1", "--fee-out", b, "--out", c).returncode == 0
    assert b.read_bytes() == a.read_bytes() == fees.fee_csv(store, 1)  # frozen: same bytes
    assert c.read_bytes() == inv.invoice_csv(store, 1)
    d = run_cli("invoice", "diff", "--number", "INV-000001", "--json")
    assert d.returncode == 0, d
    doc = d.json()
    assert doc["total_difference"] == "133.47" and doc["lines"][0]["account_id"] == "1000000001"  # kept
    # now: revenue 46600.00, ad spend 31799.33, net 46600.00 - 31799.33 - 3100.00 = 11700.67; 20% = 2340.134
    assert doc["fee"] == {
        "billing_currency": "USD",
        "snapshot": {
            "revenue": "46500.00",
            "ad_spend": "31665.86",
            "costs": "3100.00",
            "net_profit": "11734.14",
            "fee": "2346.83",
            "fee_rate": "20",
            "status": "final",
        },
        "current": {
            "revenue": "46600.00",
            "ad_spend": "31799.33",
            "costs": "3100.00",
            "net_profit": "11700.67",
            "fee": "2340.13",
            "fee_rate": "20",
            "status": "final",
            "complete": True,
        },
        "difference": {
            "revenue": "100.00",
            "ad_spend": "133.47",
            "costs": "0.00",
            "net_profit": "-33.47",
            "fee": "-6.70",
        },
        "changed": True,
    }
    text = run_cli("invoice", "diff", "--number", "1")
    assert (
        "    fee        snapshot 2346.83 current 2340.13 difference -6.70 USD (net profit 11734.14 -> "
        "11700.67, rate 20% -> 20%)"
    ) in text.stdout.splitlines()


def test_fee_statement_of_a_loss_and_provisional_invoice_and_formula_names(run_cli, db_path, tmp_path):
    make_store(run_cli, tmp_path, rows=(("s9", "=cmd()", "meta", "1000000009", "USD"),))
    put_spend(db_path, "1000000009", SEP_START, SEP_END, "100.00", "USD")  # 3000.00
    rows = [["s9", d.isoformat(), "90.00"] for d in days(SEP_START, SEP_END) if d.day != 2]  # 2610.00
    assert (
        run_cli("revenue", "import", write_csv(tmp_path / "r.csv", ["store_id", "day", "revenue"], rows)).returncode
        == 0
    )
    with clock.pinned(dt.date(2026, 10, 15)):
        assert run_cli("invoice", "finalize", "--store", "s9", "--month", "2026-09").returncode == 0
    out = tmp_path / "fee.csv"
    assert run_cli("invoice", "export", "--number", "1", "--fee-out", out).returncode == 0
    assert list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))[1] == [
        "s9",
        "'=cmd()",
        "2026-09-01",
        "2026-09-30",
        "USD",
        "2610.00",
        "3000.00",
        "0.00",
        "-390.00",
        "20",
        "0.00",
        "provisional: revenue missing for 1 of 30 days (from 2026-09-02); net profit is not positive, so there is "
        "no fee (Zero-Risk Guarantee)",
    ]
    assert fees.fee_snapshot_content(SpendStore(db_path), 1)["status"] == "provisional"


def test_export_without_any_output_or_without_a_statement(run_cli, db_path, tmp_path):
    make_store(run_cli, tmp_path)
    put_spend(db_path, "1000000001", SEP_START, SEP_END, "1.00", "USD")
    assert run_cli("invoice", "finalize", "--store", "s1", "--month", "2026-09").returncode == 0
    r = run_cli("invoice", "export", "--number", "1")
    assert r.returncode == 2 and "give --out FILE.csv" in r.stderr
    store = SpendStore(db_path)
    # an invoice finalized before fee statements existed has none: refused, nothing written
    with store.transaction() as con:
        con.execute(
            "INSERT INTO invoices SELECT 2, 'INV-000002', store_id, store_name, DATE '2026-08-01', "
            "DATE '2026-08-31', billing_currency, total, finalized_at, finalized_by, source, csv, csv_sha256, "
            "fx_source, rounding_rule FROM invoices WHERE number = 1"
        )
        from service.invoice_register import seal_new

        seal_new(con, 2, dt.datetime.now(dt.UTC))  # sealed as it was: without a statement
    out, fee_out = tmp_path / "i.csv", tmp_path / "f.csv"
    r = run_cli("invoice", "export", "--number", "2", "--out", out, "--fee-out", fee_out)
    assert r.returncode == 1 and "INV-000002 has no fee statement" in r.stderr
    assert not out.exists() and not fee_out.exists()
    assert fees.fee_snapshot_content(store, 2) is None
    d = run_cli("invoice", "diff", "--number", "2", "--json")
    assert d.returncode == 0 and "fee" not in d.json()


def test_the_fee_statement_is_frozen_in_the_finalize_transaction(run_cli, db_path, tmp_path, monkeypatch):
    make_store(run_cli, tmp_path)
    put_spend(db_path, "1000000001", SEP_START, SEP_END, "1.00", "USD")
    store = SpendStore(db_path)

    def broken(*a, **k):
        raise RuntimeError("disk full while freezing the fee")

    with monkeypatch.context() as mp, pytest.raises(RuntimeError, match="disk full"):
        mp.setattr(fees, "freeze", broken)
        inv.finalize(store, "s1", SEP_START, SEP_END, by="t", source="test")
    # neither the invoice nor its lines nor a statement: all or nothing
    assert store.query(
        "SELECT (SELECT count(*) FROM invoices), (SELECT count(*) FROM invoice_lines), "
        "(SELECT count(*) FROM fee_statements)"
    ) == [(0, 0, 0)]
    done = inv.finalize(store, "s1", SEP_START, SEP_END, by="t", source="test")
    assert fees.fee_snapshot_content(store, done.summary.number)["ad_spend"] == done.summary.total == "30.00"
