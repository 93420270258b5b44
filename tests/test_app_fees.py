"""AppTest: the success-fee sections (issue 18) of the Invoicing page (preview, provisional and loss
notes, the statement frozen at finalize and its download) and of the Revenue-impact page (real
fees where revenue exists). Spend is written straight into the store (stores billed in USD, so no
exchange rate is involved); the figures are computed by hand in the comments."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_fees import SEP_END, SEP_START, days, make_store, put_spend, write_csv

from service import fees
from storage.db import SpendStore
from ui.format import escape_md

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
STORES = (
    ("s1", "Profit Shop", "meta", "1000000001", "USD"),
    ("s2", "Loss Shop", "meta", "1000000002", "USD"),
    ("s3", "No Revenue", "meta", "1000000003", "USD"),
)


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def fee_db(run_cli, db_path, tmp_path, monkeypatch):
    make_store(run_cli, tmp_path, STORES)
    put_spend(db_path, "1000000001", SEP_START, SEP_END, "33.33", "USD")  # 999.90
    put_spend(db_path, "1000000002", SEP_START, SEP_END, "100.00", "USD")  # 3000.00
    put_spend(db_path, "1000000003", SEP_START, SEP_END, "10.00", "USD")  # 300.00
    rows = [["s1", d.isoformat(), "150.00", "12.34"] for d in days(SEP_START, SEP_END)]
    rows += [["s2", d.isoformat(), "90.00", "0"] for d in days(SEP_START, SEP_END) if d.day != 2]
    assert (
        run_cli(
            "revenue", "import", write_csv(tmp_path / "r.csv", ["store_id", "day", "revenue", "costs"], rows)
        ).returncode
        == 0
    )
    assert run_cli("fee", "rate", "--store", "s1", "--percent", "30", "--from", "2026-09-16").returncode == 0
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    monkeypatch.setenv("ADSPEND_USER", "fee-tester")
    return db_path


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_invoicing_page_fee_preview_provisional_loss_and_frozen_statement(fee_db):
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    at = ok(at.switch_page("pages/6_Invoicing.py").run())
    at.selectbox(key="inv_month").set_value("Custom range")
    ok(at.run())
    at.date_input(key="inv_range").set_value((SEP_START, SEP_END))
    ok(at.run())
    at.selectbox(key="inv_store").set_value("s1")
    ok(at.run())
    # 4500.00 - 999.90 - 370.20 = 3129.90 at (20% x 15 + 30% x 15) / 30 = 25%: 782.475 -> 782.48
    m = metrics(at)
    assert {
        k: m[k]
        for k in ("Revenue (USD)", "Ad spend (USD)", "Costs (USD)", "Net profit (USD)", "Fee rate", "Success fee (USD)")
    } == {
        "Revenue (USD)": "4500.00",
        "Ad spend (USD)": "999.90",
        "Costs (USD)": "370.20",
        "Net profit (USD)": "3129.90",
        "Fee rate": "25%",
        "Success fee (USD)": "782.48",
    }
    assert (
        "The rate changed in this period; it is prorated by days: 20% for 2026-09-01..2026-09-15 (15 days), "
        "30% for 2026-09-16..2026-09-30 (15 days)."
    ) in [c.value for c in at.main.caption]
    assert not at.warning

    at.selectbox(key="inv_store").set_value("s2")
    ok(at.run())
    assert metrics(at)["Success fee (USD)"] == "0.00 *"
    assert metrics(at)["Net profit (USD)"] == "-390.00"  # 2610.00 - 3000.00
    assert [w.value for w in at.warning] == [
        "Provisional fee: " + escape_md("revenue missing for 1 of 30 days (from 2026-09-02); " + fees.ZERO_RISK) + "."
    ]

    at.selectbox(key="inv_store").set_value("s3")
    ok(at.run())
    assert "Success fee (USD)" not in metrics(at)
    assert any(c.value.startswith("Success fee: no revenue imported for s3") for c in at.main.caption)

    # finalize s1 from the page: its statement is frozen and downloadable
    at.selectbox(key="inv_store").set_value("s1")
    ok(at.run())
    at.text_input(key="inv_by").set_value("Finance Lead")
    at.checkbox(key="inv_confirm").set_value(True)
    next(b for b in at.button if b.key == "inv_finalize").click()
    ok(at.run())
    assert "Success fee (frozen with INV-000001)" in [h.value for h in at.subheader]
    assert metrics(at)["Success fee (USD)"] == "782.48"
    [dl] = [e for e in at.get("download_button") if e.proto.label == "Download fee statement of INV-000001"]
    data = fees.fee_csv(SpendStore(fee_db), 1)
    assert data.decode("utf-8").splitlines()[1] == (
        "s1,Profit Shop,2026-09-01,2026-09-30,USD,4500.00,999.90,370.20,3129.90,25,782.48,final"
    )


def test_revenue_page_uses_real_fees_where_revenue_exists(fee_db):
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    at = ok(at.switch_page("pages/3_Revenue_impact.py").run())
    at.sidebar.selectbox(key="period").set_value("Custom").run()
    at.sidebar.date_input(key="custom_range").set_value((SEP_START, SEP_END)).run()
    ok(at)
    m = metrics(at)
    # model: 4299.90 of Meta spend over 3 stores, 1 month: 1433.30 a client x 3 x 20% x 20% = 171.996;
    # s1 and s2 have revenue: take out their estimate (3999.90 x 4% = 159.996) and add their real fees
    # (782.48 + 0.00): 171.996 - 159.996 + 782.48 = 794.48 a month, 9533.76 a year
    assert (m["Observed fee / month (all clients)"], m["Observed annual revenue"]) == ("$794.48", "$9,533.76")
    assert (
        "Real success fees for 2 of 3 stores (revenue imported for this period; 1 provisional), converted to "
        "USD at the ECB rate of the period's last day; the model's estimate for the others."
    ) in [c.value for c in at.main.caption]
    obs = fees.observed_fees(SpendStore(fee_db), SEP_START, SEP_END)
    assert (obs.with_revenue, obs.stores, obs.provisional, obs.real_fee, obs.real_spend) == (
        2,
        3,
        1,
        D("782.48"),
        D("3999.90"),
    )
