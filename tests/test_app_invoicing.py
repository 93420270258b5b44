"""AppTest: the Invoicing page (pages/6_Invoicing.py). What it renders must equal what
service.invoices / service.invoicing_view return for the same month, and its buttons must do what
the CLI does (finalize, refresh what is missing, restatements since finalize)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
import streamlit as st
from browser_support import app_state
from streamlit.testing.v1 import AppTest
from test_invoices import MIXED, setup_store

from service import invoices as inv
from service import invoicing_view as view
from storage.db import SpendStore

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE = "pages/6_Invoicing.py"
DEC_START, DEC_END = dt.date(2025, 12, 1), dt.date(2025, 12, 31)


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def app_db(db_path, monkeypatch):
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    monkeypatch.setenv("ADSPEND_USER", "page-tester")
    # the page offers the last 24 months: pin "today" (fetchers/clock.py) so December 2025 is one of them
    monkeypatch.setenv("ADSPEND_TODAY", "2026-06-15")
    return db_path


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def open_page(month: str = "2025-12") -> AppTest:
    # through the entrypoint, as in the browser: the shared navigation links pages relative to app.py
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    at = ok(at.switch_page(PAGE).run())
    assert at.title[0].value == "Invoicing"
    at.selectbox(key="inv_month").set_value(month)
    return ok(at.run())


def successes(at) -> list[str]:
    """st.success messages of the page (the shared banner's "Live APIs" line left out)."""
    return [s.value for s in at.success if not s.value.startswith("Live APIs:")]


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


TABLE_COLUMNS = {
    "inv_overview": view.OVERVIEW_COLUMNS,
    "inv_issues": view.ISSUE_COLUMNS,
    "inv_lines": view.LINE_COLUMNS,
    "inv_diff": view.DIFF_COLUMNS,
    "inv_list": view.INVOICE_COLUMNS,
    "inv_snapshot": view.SNAPSHOT_COLUMNS,
}


def _cell(v) -> str:
    """A rendered cell as text: amounts are numeric columns (shown formatted by Streamlit), so they
    are compared as their exact two-decimal text."""
    if isinstance(v, float):
        return "" if v != v else f"{v:.2f}"
    return "" if v is None else str(v)


def table(at, key: str) -> list[dict]:
    """The rendered table of that name (AppTest gives st.dataframe no id: found by its columns)."""
    [df] = [d.value for d in at.dataframe if tuple(d.value.columns) == TABLE_COLUMNS[key]]
    return [{k: _cell(v) for k, v in r.items()} for r in df.to_dict("records")]


def view_table(rows) -> list[dict]:
    return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]


def numeric(at, key: str, column: str) -> bool:
    [df] = [d.value for d in at.dataframe if tuple(d.value.columns) == TABLE_COLUMNS[key]]
    return df[column].dtype.kind == "f"


def finalize_on_page(at, name: str = "page-tester", confirm: bool = True) -> AppTest:
    at.text_input(key="inv_by").set_value(name)
    at.checkbox(key="inv_confirm").set_value(confirm)
    button(at, "inv_finalize").click()
    return ok(at.run()) if name.strip() and confirm else at.run()


def button(at, key: str):
    return next(b for b in at.button if b.key == key)


def download_labels(at) -> list[str]:
    return [e.proto.label for e in at.get("download_button")]


def test_month_overview_equals_service_and_finalize_from_the_page(sandbox, sandbox_env, run_cli, app_db, tmp_path):
    setup_store(
        run_cli,
        tmp_path,
        MIXED
        + [("s2", "Second Shop", "meta", "1000000002", "EUR"), ("ru", "Rouble Shop", "meta", "1000000003", "RUB")],
    )
    at = open_page()
    store = SpendStore(app_db)
    items = inv.month_overview(store, DEC_START, DEC_END)
    assert [metric(at, k) for k in ("Stores", "Ready to finalize", "Finalized", "Not ready")] == ["3", "2", "0", "1"]
    assert table(at, "inv_overview") == view_table(view.overview_rows(items))
    assert numeric(at, "inv_overview", "total")
    s1 = next(r for r in table(at, "inv_overview") if r["store"] == "s1")
    assert (s1["total"], s1["state"], s1["currency"]) == ("31665.86", "ready", "USD")
    assert app_state(at) == ("invoicing | 2025-12-01..2025-12-31 | 3 stores | ready 2 | finalized 0 | not ready 1")
    assert "Download all stores (2025-12-01 to 2025-12-31)" in download_labels(at)

    # the RUB store: the missing rate is listed and blocks Finalize
    at.selectbox(key="inv_store").set_value("ru")
    ok(at.run())
    assert [(r["platform"], r["account"], r["problem"], r["refresh fixes it"]) for r in table(at, "inv_issues")] == [
        ("Meta", "1000000003", "fx_missing", "no")
    ]
    assert button(at, "inv_finalize").disabled

    at.selectbox(key="inv_store").set_value("s1")
    ok(at.run())
    rep = inv.readiness(store, "s1", DEC_START, DEC_END)
    assert table(at, "inv_lines") == view_table(view.line_rows(rep))
    assert numeric(at, "inv_lines", "billing") and numeric(at, "inv_lines", "spend")
    assert [(r["account"], r["billing"], r["day_basis"]) for r in table(at, "inv_lines")] == [
        ("1000000001", "6333.92", "America/New_York"),
        ("1000000978", "12126.57", "Europe/Berlin"),
        ("1234567826", "13205.37", "Europe/London"),
    ]
    assert metric(at, "Total (USD)") == "USD 31,665.86"
    assert not button(at, "inv_finalize").disabled
    assert "Download CSV" in download_labels(at)
    # finalizing asks for a name (no OS-user default) and a confirmation, and refuses without them
    assert at.text_input(key="inv_by").value == ""
    at = finalize_on_page(at, name="  ")
    assert [e.value for e in at.error] == ["Not finalized: enter your name first."]
    at = finalize_on_page(at, confirm=False)
    assert [e.value for e in at.error] == ["Not finalized: tick the confirmation first (finalizing cannot be undone)."]
    assert inv.list_invoices(store) == []

    at = finalize_on_page(at)
    assert successes(at) == ["Finalized INV-000001: USD 31,665.86", "No change since INV-000001 was finalized."]
    [entry] = inv.list_invoices(store)
    assert (entry.invoice, entry.store_id, entry.total, entry.finalized_by, entry.source) == (
        "INV-000001",
        "s1",
        "31665.86",
        "page-tester",
        "dashboard",
    )
    assert metric(at, "Finalized") == "1" and metric(at, "Invoice") == "INV-000001"
    assert "Download INV-000001" in download_labels(at)
    assert table(at, "inv_list")[0]["invoice"] == "INV-000001"
    assert next(r for r in table(at, "inv_overview") if r["store"] == "s1")["restated since"] == "no"
    assert app_state(at).endswith("| 3 stores | ready 1 | finalized 1 | not ready 1")
    assert not any(b.key == "inv_finalize" for b in at.button)  # no second finalize on the page
    # the CLI refuses it too
    assert run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12").returncode == 1


def test_restatement_since_finalize_is_shown_with_an_adjustment(sandbox, sandbox_env, run_cli, app_db, tmp_path):
    setup_store(run_cli, tmp_path, MIXED)
    assert run_cli("invoice", "finalize", "--store", "s1", "--month", "2025-12").returncode == 0
    sandbox.ctx.configure({"restate": {"meta": {"from": "2025-12-20", "generation": 1}}})
    assert run_cli("refresh", "--store", "s1", "--start", "2025-12-01", "--end", "2025-12-31", "--full").returncode == 0
    at = open_page()
    assert metric(at, "State") == "finalized"
    assert [(r["store"], r["state"], r["invoice"], r["restated since"]) for r in table(at, "inv_overview")] == [
        ("s1", "finalized", "INV-000001", "+133.47")
    ]
    assert [w.value for w in at.warning] == [
        "The platforms restated spend since INV-000001: total difference USD 133.47"
    ]
    # the detail shows what was INVOICED, with the restated figures and the difference beside it
    d = inv.diff(SpendStore(app_db), 1)
    assert metric(at, "Total (USD)") == "USD 31,665.86" == metric(at, "Invoiced (USD)")
    assert metric(at, "Restated now (USD)") == "USD 31,799.33"
    diff_metric = next(m for m in at.metric if m.label == "Difference (USD)")
    assert (diff_metric.value, diff_metric.delta) == ("USD 133.47", "133.47")
    snap = table(at, "inv_snapshot")
    assert snap == view_table(view.snapshot_rows(d))
    assert [(r["account"], r["invoiced"], r["restated"], r["change"]) for r in snap] == [
        ("1000000001", "6333.92", "6383.38", "49.46"),
        ("1000000978", "12126.57", "12210.58", "84.01"),
        ("1234567826", "13205.37", "13205.37", "0.00"),
    ]
    assert view.snapshot_totals(d) == view.SnapshotTotals(Decimal("31665.86"), Decimal("31799.33"), Decimal("133.47"))
    rows = table(at, "inv_diff")
    assert [(r["account"], r["snapshot"], r["current"], r["difference"], r["billing difference"]) for r in rows] == [
        ("1000000001", "6333.92", "6383.38", "49.46", "49.46"),
        ("1000000978", "10353.03", "10424.42", "71.39", "84.01"),
        ("1234567826", "9864.90", "9864.90", "0.00", "0.00"),
    ]
    assert rows[0]["changed days"] == "2025-12-20..2025-12-31"
    assert rows == view_table(view.diff_rows(inv.diff(SpendStore(app_db), 1)))
    assert "Download adjustment to INV-000001" in download_labels(at)
    adj = next(e for e in at.get("download_button") if e.proto.label == "Download adjustment to INV-000001")
    assert adj.proto.label and inv.diff(SpendStore(app_db), 1).adjustment_csv().decode().splitlines()[-1] == (
        "s1,Mixed Shop,2025-12-01,2025-12-31,TOTAL,,,,,,USD,133.47,,adjustment to INV-000001"
    )


def test_refresh_what_is_missing_makes_the_month_ready(sandbox, sandbox_env, run_cli, app_db, tmp_path):
    setup_store(run_cli, tmp_path, MIXED, refresh=(DEC_START, dt.date(2025, 12, 10)))
    at = open_page()
    assert metric(at, "Not ready") == "1"
    assert [(r["problem"], r["refresh fixes it"]) for r in table(at, "inv_issues")] == [("partial", "yes")] * 3
    assert [i.value for i in at.info][-1] == (
        "A refresh would fix the missing or stale data of 1 store(s): `python cli.py refresh --store s1 "
        "--start 2025-12-01 --end 2025-12-31 --platform google --platform meta`"
    )
    assert table(at, "inv_overview")[0]["data"] == "incomplete"
    button(at, "inv_refresh").click()
    ok(at.run())
    assert successes(at)[0].startswith("Refresh ok in ")
    assert [metric(at, k) for k in ("Ready to finalize", "Not ready")] == ["1", "0"]
    assert table(at, "inv_overview")[0]["total"] == "31665.86"
    assert not any(b.key == "inv_refresh" for b in at.button)


def test_custom_range_and_all_stores_download_matches_cli(sandbox, sandbox_env, run_cli, app_db, tmp_path):
    setup_store(run_cli, tmp_path, MIXED)
    at = open_page("Custom range")
    at.date_input(key="inv_range").set_value((dt.date(2025, 12, 20), dt.date(2025, 12, 31)))
    ok(at.run())
    assert app_state(at).startswith("invoicing | 2025-12-20..2025-12-31 | 1 stores | ready 1")
    store = SpendStore(app_db)
    out = tmp_path / "all.csv"
    assert run_cli("export", "--all", "--start", "2025-12-20", "--end", "2025-12-31", "--out", out).returncode == 0
    assert inv.all_stores_csv(store, dt.date(2025, 12, 20), dt.date(2025, 12, 31)) == out.read_bytes()
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[-1]["platform"] == "TOTAL"
    assert table(at, "inv_overview")[0]["total"] == rows[-1]["billing_amount"]
