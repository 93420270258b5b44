"""AppTest: pacing and alerts on the store page, the Alerts page, the budget editor (Accounts) and
the pace column (Portfolio). What the pages show equals `cli.py alerts --json` and the service
layer for the same database and day (the clock pinned with ADSPEND_TODAY)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal

import pyarrow as pa
import pytest
import streamlit as st
from browser_support import FAST_ENV, ROOT, app_state, cli
from streamlit.testing.v1 import AppTest

from service import alerts as svc
from service.budgets import BudgetError, editor_rows, save_editor_rows
from storage.db import SpendStore, WindowFailure
from ui.format import money

APP = str(ROOT / "app.py")
ALERTS = "pages/7_Alerts.py"
ACCOUNTS = "pages/4_Accounts.py"
PORTFOLIO = "pages/2_Portfolio_and_coverage.py"
TODAY = "2026-03-19"
AS_OF = dt.date(2026, 3, 18)
FETCHED = dt.datetime(2026, 3, 18, 6, 0, tzinfo=dt.UTC)


def write_spend(
    store: SpendStore,
    platform: str,
    account: str,
    amounts: dict[dt.date, str],
    ccy: str = "USD",
    fetched: dt.datetime = FETCHED,
) -> None:
    days = sorted(amounts)
    store.write_spend_table(
        pa.table(
            {
                "platform": pa.array([platform] * len(days), pa.string()),
                "account_id": pa.array([account] * len(days), pa.string()),
                "day": pa.array(days, pa.date32()),
                "amount": pa.array([Decimal(amounts[d]) for d in days], pa.decimal128(20, 6)),
                "currency": pa.array([ccy] * len(days), pa.string()),
                "fetched_at": pa.array([fetched] * len(days), pa.timestamp("us", tz="UTC")),
                "run_id": pa.array(["t"] * len(days), pa.string()),
            }
        )
    )


def steady(value: str, n: int = 40) -> dict[dt.date, str]:
    return {AS_OF - dt.timedelta(days=i): value for i in range(n)}


def make_db(path) -> SpendStore:
    """Demo stores with stored data for every kind of alert (as of 2026-03-18) in demo-acme."""
    code, out, err = cli(path, "demo")
    assert code == 0, err
    store = SpendStore(path)
    write_spend(store, "meta", "1000000001", {**steady("100.00"), AS_OF: "450.00"})  # spike
    write_spend(store, "google", "1234567001", {**steady("80.00"), AS_OF: "0", AS_OF - dt.timedelta(days=1): "0"})
    write_spend(
        store, "tiktok", "7100000000000001", steady("30.00"), fetched=dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    )  # stale
    write_spend(store, "tiktok", "7100000000000002", steady("5.00"), fetched=dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
    write_spend(store, "amazon", "3000000001", steady("20.00"))
    store.write_windows(
        failures=[
            WindowFailure(
                "amazon",
                "3000000001",
                dt.date(2026, 3, 17),
                dt.date(2026, 3, 18),
                "HTTP 503 from the Amazon Ads API",
                "t",
                FETCHED,
            )
        ]
    )  # failed
    store.save_account_infos(
        [
            {"platform": p, "account_id": a, "name": a, "currency": "USD", "timezone": "UTC", "day_basis": "UTC"}
            for p, a in (
                ("meta", "1000000001"),
                ("google", "1234567001"),
                ("tiktok", "7100000000000001"),
                ("tiktok", "7100000000000002"),
                ("amazon", "3000000001"),
            )
        ]
    )
    budgets = path.parent / "budgets.csv"
    budgets.write_text("store_id,month,amount,platform\ndemo-acme,2026-03,3000,\ndemo-acme,2026-03,1500,google\n")
    code, out, err = cli(path, "budgets", "import", budgets)
    assert code == 0, err
    return store


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_resource.clear()
    yield


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("alerts") / "template.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAST_ENV.items():
            mp.setenv(k, v)
        make_db(path)
    return path


@pytest.fixture
def db(template, tmp_path, monkeypatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "app.duckdb"
    shutil.copy(template, path)
    monkeypatch.setenv("ADSPEND_DB", str(path))
    monkeypatch.setenv("ADSPEND_TODAY", TODAY)
    return path


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def cli_alerts(db, *extra) -> list[dict]:
    code, out, err = cli(db, "alerts", "--json", *extra)
    assert code == 1, err
    return json.loads(out)


TABLES = {
    "alerts": ["store", "platform", "account", "kind", "day", "open", "detail"],
    "pacing": ["platform", "budget (USD)", "month to date (USD)", "projected (USD)", "pace", "incomplete"],
    "budgets": ["month", "platform", "amount"],
}


def table(at: AppTest, key: str) -> list[dict]:
    """The rendered table (AppTest gives st.dataframe no id: found by its columns; the portfolio's
    stores table by its 'pace' column)."""
    [df] = [
        d.value
        for d in at.dataframe
        if (list(d.value.columns) == TABLES[key] if key in TABLES else "pace" in d.value.columns)
    ]
    return df.astype(str).to_dict("records")


def as_json(rows: list[dict]) -> list[tuple]:
    return [
        (r["store"].rsplit("(", 1)[1].rstrip(")"), r["platform"], r["account"], r["kind"], r["day"], r["detail"])
        for r in rows
    ]


def cli_tuples(alerts: list[dict]) -> list[tuple]:
    from fetchers.specs import SPECS

    return [
        (
            a["store_id"],
            SPECS[a["platform"]].name if a["platform"] else "",
            a["account_id"] or "",
            a["kind"],
            a["day"],
            a["detail"],
        )
        for a in alerts
    ]


def test_every_kind_on_the_store_page_equals_the_cli(db):
    expected = cli_alerts(db, "--store", "demo-acme")
    # every kind; the platforms never fetched (LinkedIn, Microsoft, ...) are stale too, never silently fine
    assert [(a["kind"], a["platform"]) for a in expected] == [
        ("stopped", "google"),
        ("spike", "meta"),
        ("pacing", None),
        ("pacing", "google"),
        *[("stale", p) for p in ("linkedin", "microsoft", "pinterest", "reddit", "snapchat", "tiktok")],
        ("failed", "amazon"),
    ]
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    assert at.sidebar.selectbox(key="store_id").value == "demo-acme"
    rows = table(at, "alerts")
    assert as_json(rows) == cli_tuples(expected)
    assert rows[1]["open"] == "./?store=demo-acme&start=2026-03-18&end=2026-03-18"
    assert rows[2]["open"] == "./?store=demo-acme&start=2026-03-01&end=2026-03-18"  # pacing: the month so far
    assert "Open alerts (11)" in [h.value for h in at.subheader]
    pacing = svc.store_pacing(SpendStore(db), "demo-acme", AS_OF)
    metrics = {m.label: m.value for m in at.metric}
    # 1-18 March: Meta 17 x 100 + 450, Google 16 x 80 (+ two zero days), TikTok 18 x 30 + 18 x 5,
    # Amazon 18 x 20 (its failed days keep their earlier figures) = 2150 + 1280 + 630 + 360 = 4420
    assert metrics["Month to date (USD)"] == money(pacing[0].month_to_date, "USD") == "USD 4,420.00"
    assert metrics["Budget (USD)"] == "USD 3,000.00"
    assert metrics["Projected month end (USD)"] == money(pacing[0].projected, "USD") == "USD 7,511.67"
    assert metrics["Pace"] == f"{pacing[0].pace} {pacing[0].percent:+}%" == "over +150.4%"
    # accounts without any March data (Snapchat, LinkedIn, ...) make the projection incomplete, and it says so
    assert [w.value for w in at.warning if w.value.startswith("The projection")] == [
        "The projection is incomplete: 90 account-day(s) of 2026-03 up to 2026-03-18 not fetched yet."
    ]
    # Google: 1280 so far; 13 days left at its weekday averages (Tuesdays and Wednesdays include the
    # two zero days) -> 2240.00, 49.3% over 1500
    assert table(at, "pacing") == [
        {
            "platform": "Google Ads",
            "budget (USD)": "USD 1,500.00",
            "month to date (USD)": "USD 1,280.00",
            "projected (USD)": "USD 2,240.00",
            "pace": "over +49.3%",
            "incomplete": "",
        }
    ]


def test_alerts_page_lists_every_store_and_filters(db):
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    at = ok(at.switch_page(ALERTS).run())
    expected = cli_alerts(db)
    rows = table(at, "alerts")
    assert as_json(rows) == cli_tuples(expected)
    # the other demo stores were never fetched: their platforms are stale ("never"), not silently fine
    assert {a["store_id"] for a in expected} == {"demo-acme", "demo-fjord", "demo-sakura"}
    assert app_state(at) == f"alerts | as of 2026-03-18 | {len(expected)} of {len(expected)} shown"
    at.multiselect(key="alerts_kind").set_value(["spike", "failed"])
    at.multiselect(key="alerts_store").set_value(["demo-acme"])
    at = ok(at.run())
    assert [(r["kind"], r["platform"], r["open"]) for r in table(at, "alerts")] == [
        ("spike", "Meta", "./?store=demo-acme&start=2026-03-18&end=2026-03-18"),
        ("failed", "Amazon Ads", "./?store=demo-acme&start=2026-03-17&end=2026-03-17"),
    ]
    at.multiselect(key="alerts_kind").set_value([])
    at.multiselect(key="alerts_platform").set_value(["tiktok"])
    at = ok(at.run())
    assert [(r["kind"], r["store"]) for r in table(at, "alerts")] == [("stale", "Acme Outdoor (demo) (demo-acme)")]


def test_budget_editor_shows_and_saves_through_the_import_rules(db):
    store = SpendStore(db)
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    at = ok(at.switch_page(ACCOUNTS).run())
    at.selectbox(key="accounts_store").set_value("demo-acme")
    at = ok(at.run())
    assert table(at, "budgets") == [
        {"month": "2026-03", "platform": "", "amount": "3000.00"},
        {"month": "2026-03", "platform": "google", "amount": "1500.00"},
    ]
    # saving the editor's table unchanged goes through the import rules and changes nothing
    at = ok(next(b for b in at.button if b.key == "save_budgets_demo-acme").click().run())
    assert [m.value for m in at.success] == ["Saved budgets of demo-acme: 0 new, 0 changed, 2 unchanged."]
    assert editor_rows(store, "demo-acme") == [
        {"month": "2026-03", "platform": "", "amount": "3000.00"},
        {"month": "2026-03", "platform": "google", "amount": "1500.00"},
    ]
    with pytest.raises(BudgetError) as err:
        save_editor_rows(
            store,
            "demo-acme",
            [
                {"month": "2026-3", "platform": "", "amount": "10"},
                {"month": "2026-04", "platform": "google", "amount": "-1"},
            ],
        )
    assert str(err.value) == (
        "nothing imported: 2 bad line(s): row 1: month '2026-3' is not a month in the form "
        "YYYY-MM | row 2: amount -1 is negative"
    )
    assert len(editor_rows(store, "demo-acme")) == 2  # nothing saved
    res = save_editor_rows(
        store,
        "demo-acme",
        [
            {"month": "2026-03", "platform": "", "amount": "3500"},
            {"month": "2026-04", "platform": None, "amount": "100.5"},
        ],
    )
    assert (res.added, res.changed, res.unchanged) == (1, 2, 0)  # 3000 -> 3500, google removed
    assert editor_rows(store, "demo-acme") == [
        {"month": "2026-03", "platform": "", "amount": "3500.00"},
        {"month": "2026-04", "platform": "", "amount": "100.50"},
    ]


def test_portfolio_pace_column(db):
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    at = ok(at.switch_page(PORTFOLIO).run())
    pc = svc.portfolio_pacing(SpendStore(db), AS_OF)
    rows = {r["store"]: r["pace"] for r in table(at, "matrix_table")}
    assert rows == {
        "Acme Outdoor (demo) (demo-acme)": f"{pc['demo-acme'].pace} {pc['demo-acme'].percent:+}%",
        "Blue Fjord Apparel (demo) (demo-fjord)": "no budget",
        "Sakura Tea (demo) (demo-sakura)": "no budget",
    }
