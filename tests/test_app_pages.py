"""AppTest: the other pages (portfolio, revenue, accounts, history), page switches, the access
gate and errors. Rendered values equal the service layer's for the same data."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest
import streamlit as st
from browser_support import FAST_ENV, ROOT, app_state, make_demo_db
from streamlit.testing.v1 import AppTest

from fetchers.specs import PLATFORM_IDS, SPECS
from service import dashboard as dash
from service.accounts import export_mapping_csv
from storage.db import SpendStore
from ui.colors import PLATFORM_COLORS
from ui.format import money

APP = str(ROOT / "app.py")
PORTFOLIO = "pages/2_Portfolio_and_coverage.py"
REVENUE = "pages/3_Revenue_impact.py"
ACCOUNTS = "pages/4_Accounts.py"
HISTORY = "pages/5_Refresh_history.py"
TODAY = dt.datetime.now(dt.UTC).date()
LAST_START, LAST_END = dash.period_for("Last month", TODAY)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in FAST_ENV.items():
            mp.setenv(k, v)
        mp.setenv("ADSPEND_TOKEN_CACHE", str(db.parent / "tokens.json"))
        make_demo_db(
            db, [("demo-fjord", str(LAST_START), str(LAST_END)), ("demo-sakura", str(LAST_START), str(LAST_END))]
        )
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


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(page: str) -> AppTest:
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    return ok(at.switch_page(page).run())


def frame(at, first_column: str, *more: str) -> list[dict]:
    df = next(d.value for d in at.dataframe if list(d.value.columns)[: 1 + len(more)] == [first_column, *more])
    return [{k: (f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in r.items()} for r in df.to_dict("records")]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def last_caption(at) -> str:
    """The page's state (hidden from users; ui.page_state)."""
    return app_state(at)


def test_page_switch_keeps_store_and_period_and_every_page_renders(db):
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    at.sidebar.selectbox(key="store_id").set_value("demo-sakura")
    ok(at.run())
    at.sidebar.selectbox(key="period").set_value("Last 30 days")
    ok(at.run())
    start, end = dash.period_for("Last 30 days", TODAY)
    for page in (PORTFOLIO, REVENUE, ACCOUNTS, HISTORY, "app.py"):
        ok(at.switch_page(page).run())
        assert not at.error, (page, [e.value for e in at.error])
        if page in (PORTFOLIO, REVENUE, "app.py"):  # the pages with a period picker
            assert at.sidebar.selectbox(key="period").value == "Last 30 days", page
    # back on the store page: the same store and period as chosen before the switches
    assert at.sidebar.selectbox(key="store_id").value == "demo-sakura"
    assert last_caption(at).startswith(f"store demo-sakura | {start}..{end} | ")
    labels = [link.proto.label for link in at.sidebar.get("page_link")]
    assert labels[:5] == ["Store spend", "Portfolio & coverage", "Revenue impact", "Accounts", "Refresh history"]


def test_portfolio_page(db):
    at = open_page(PORTFOLIO)
    store = SpendStore(db)
    m = metrics(at)
    assert m["Meta + Google (billed today)"] == "65%"
    assert m["+ TikTok, LinkedIn, Amazon, Microsoft (tiers 1-2)"] == "95%"
    assert m["All nine platforms (tier 3 included)"] == "100%"
    assert m["Live now (credentials set)"] == "0%"
    status = frame(at, "tier", "name")
    assert [(r["tier"], r["name"], r["runs as"]) for r in status] == [
        (str(SPECS[p].tier), SPECS[p].name, "demo (sandbox) only")
        for p in sorted(PLATFORM_IDS, key=lambda p: (SPECS[p].tier, PLATFORM_IDS.index(p)))
    ]
    matrix = frame(at, "store", "currency")
    assert [{k: v for k, v in r.items() if k != "pace"} for r in matrix] == [
        {k: str(v) for k, v in r.items()} for r in dash.portfolio_matrix(store)
    ]
    assert [r["pace"] for r in matrix] == ["no budget"] * 3  # tests/test_app_alerts.py: with budgets
    fjord = next(r for r in matrix if r["store"].endswith("(demo-fjord)"))
    assert fjord["Meta"] == "2 · ok" and fjord["LinkedIn"] == "—"
    acme = next(r for r in matrix if r["store"].endswith("(demo-acme)"))
    assert acme["Meta"] == "1 · never"
    spend = dash.portfolio_spend(store, LAST_START, LAST_END, "USD")
    assert m["Total spend (USD)"] == money(spend.total, "USD")
    assert spend.total == sum(spend.by_platform.values()) and spend.total > 0
    rows = frame(at, "platform", "spend", "share")
    assert rows == [
        {
            "platform": SPECS[p].name,
            "spend": f"{v:.2f}",
            "share": f"{(v / spend.total * 100).quantize(Decimal('0.1')):.2f}",
        }
        for p, v in spend.by_platform.items()
    ]
    # the monthly trend: month labels (never "00:00:00"), fixed platform colours, formatted tooltips
    trend = json.loads(next(c for c in at.get("plotly_chart") if "Monthly" in c.proto.spec).proto.spec)
    assert {tuple(t["x"]) for t in trend["data"]} == {(LAST_START.strftime("%b %Y"),)}
    assert {t["name"]: t["marker"]["color"] for t in trend["data"]} == {
        SPECS[p].name: PLATFORM_COLORS[p] for p in spend.by_platform
    }
    assert all("USD %{y:,.2f}" in t["hovertemplate"] for t in trend["data"])
    assert last_caption(at) == f"portfolio | {LAST_START}..{LAST_END} | USD {dash.fx.format_amount(spend.total, 'USD')}"
    # an editable assumption: the coverage follows it
    shares = dict(dash.DEFAULT_SHARES, tiktok=Decimal(20))
    assert dash.coverage_summary(shares, dash.integration_status([]))[1][1] == Decimal(105)


PLAN_TABLE = [
    {
        "platform": "Meta + Google",
        "avg client spend / month": "$15,000",
        "net profit": "20%",
        "success fee": "20%",
        "fee / month": "$600",
        "clients": "1000",
        "annual revenue": "$7.2M",
    },
    {
        "platform": "TikTok",
        "avg client spend / month": "$8,000",
        "net profit": "20%",
        "success fee": "20%",
        "fee / month": "$320",
        "clients": "1000",
        "annual revenue": "$3.84M",
    },
    {
        "platform": "LinkedIn",
        "avg client spend / month": "$12,000",
        "net profit": "20%",
        "success fee": "20%",
        "fee / month": "$480",
        "clients": "1000",
        "annual revenue": "$5.76M",
    },
    {
        "platform": "Amazon",
        "avg client spend / month": "$10,000",
        "net profit": "20%",
        "success fee": "20%",
        "fee / month": "$400",
        "clients": "1000",
        "annual revenue": "$4.8M",
    },
    {
        "platform": "Microsoft",
        "avg client spend / month": "$5,000",
        "net profit": "20%",
        "success fee": "20%",
        "fee / month": "$200",
        "clients": "1000",
        "annual revenue": "$2.4M",
    },
]


def test_revenue_page_defaults_reproduce_the_plan_exactly(db):
    at = open_page(REVENUE)
    assert frame(at, "platform", "avg client spend / month") == PLAN_TABLE
    m = metrics(at)
    assert m["Total client spend / month"] == "$50,000"
    assert m["Fee / month"] == "$2,000"
    assert m["Annual revenue"] == "$24M"
    assert m["Uplift from the four new platforms"] == "+$16.8M"
    note = next(w.value for w in at.warning if "per 100 clients" in w.value)
    assert "$720K, not $7.2M" in note and "1,000 clients" in note and "overstated 10x" in note
    # exact Decimal arithmetic underneath
    totals = dash.revenue_totals(dash.plan_rows())
    assert (totals.spend, totals.fee_per_month, totals.annual, totals.uplift) == (
        Decimal(50000),
        Decimal(2000),
        Decimal(24_000_000),
        Decimal(16_800_000),
    )
    # 100 clients: a tenth
    at.number_input(key="clients").set_value(100)
    ok(at.run())
    assert frame(at, "platform", "avg client spend / month")[0]["annual revenue"] == "$720K"
    assert metrics(at)["Annual revenue"] == "$2.4M"


def test_revenue_page_observed_model_equals_the_service(db):
    at = open_page(REVENUE)
    observed, model, n_stores = dash.observed_model(SpendStore(db), LAST_START, LAST_END)
    assert n_stores == 3
    assert {o.platform for o in observed} == {
        "meta",
        "google",
        "tiktok",
        "amazon",
        "pinterest",
        "linkedin",
        "snapchat",
        "reddit",
    }  # tier 3 included
    meta = next(o for o in observed if o.platform == "meta")
    assert meta.clients == 2  # fjord and sakura have spend
    rows = at.dataframe[-1].value.astype(str).to_dict("records")  # the observed table, last
    assert rows == [
        {
            "platform": r.label,
            "avg client spend / month": dash.usd_short(r.spend),
            "net profit": "20%",
            "success fee": "20%",
            "fee / month": dash.usd_short(r.fee_per_month),
            "clients": str(r.clients),
            "annual revenue": dash.usd_short(r.annual),
        }
        for r in model
    ]
    assert metrics(at)["Observed annual revenue"] == dash.usd_short(dash.revenue_totals(model).annual)
    assert at.get("plotly_chart")


def test_accounts_page_add_store_link_unlink_import_export(db):
    at = open_page(ACCOUNTS)
    store = SpendStore(db)
    assert frame(at, "store", "name")[0]["store"] == "demo-acme"
    # add a store
    at.text_input(key="new_store_id").set_value("shop-42")
    at.text_input(key="new_store_name").set_value("Shop 42")
    at.text_input(key="new_store_ccy").set_value("gbp")
    submit = next(b for b in at.button if b.label == "Save store")
    ok(submit.click().run())
    assert store.store("shop-42") == {
        "store_id": "shop-42",
        "name": "Shop 42",
        "billing_currency": "GBP",
        "is_demo": False,
    }
    assert at.success[0].value == "Saved store shop-42 (Shop 42, GBP)."
    # a bad currency is refused and explained
    at.text_input(key="new_store_id").set_value("shop-43")
    at.text_input(key="new_store_ccy").set_value("dollars")
    ok(next(b for b in at.button if b.label == "Save store").click().run())
    assert store.store("shop-43") is None
    assert "three-letter ISO 4217 code" in at.error[0].value
    # link: a malformed Google id is refused with the platform's form
    at.selectbox(key="accounts_store").set_value("shop-42")
    at.selectbox(key="link_platform").set_value("google")
    at.text_input(key="link_account_id").set_value("12-34")
    ok(next(b for b in at.button if b.label == "Link account").click().run())
    err = at.error[0].value
    assert err.startswith("Not linked: ") and "12-34" in err and "Google" in err and "10 digits" in err
    assert store.accounts(["shop-42"]) == []
    at.text_input(key="link_account_id").set_value("123-456-7890")
    ok(next(b for b in at.button if b.label == "Link account").click().run())
    assert [(a["platform"], a["account_id"]) for a in store.accounts(["shop-42"])] == [("google", "1234567890")]
    assert at.success[0].value == "Linked Google Ads account 1234567890 to shop-42."
    # a second account on the same platform
    at.text_input(key="link_account_id").set_value("9876543210")
    ok(next(b for b in at.button if b.label == "Link account").click().run())
    assert len(store.accounts(["shop-42"], ["google"])) == 2
    # unlink one
    at.selectbox(key="unlink_choice").set_value("google|1234567890")
    ok(next(b for b in at.button if b.label == "Unlink account").click().run())
    assert [a["account_id"] for a in store.accounts(["shop-42"])] == ["9876543210"]
    # import: a bad file imports nothing and names the line; a good one imports
    bad = b"store_id,store_name,platform,account_id\nshop-9,Nine,meta,act_123\nshop-9,Nine,tiktok,notdigits\n"
    at.file_uploader(key="mapping_upload").set_value(("map.csv", bad, "text/csv"))
    ok(at.run())
    ok(at.button(key="import_button").click().run())
    assert "nothing imported" in at.error[0].value and "line 3" in at.error[0].value
    assert store.store("shop-9") is None
    good = b"store_id,store_name,platform,account_id,billing_currency\nshop-9,Nine,meta,act_123,EUR\n"
    at.file_uploader(key="mapping_upload").set_value(("map.csv", good, "text/csv"))
    ok(at.run())
    ok(at.button(key="import_button").click().run())
    assert store.store("shop-9")["billing_currency"] == "EUR"
    assert [a["account_id"] for a in store.accounts(["shop-9"])] == ["123"]
    assert at.download_button(key="export_mapping").label == "Export mapping CSV"
    assert b"shop-9,Nine,meta,123,EUR," in export_mapping_csv(store)


def test_credentials_show_names_never_values_and_banner_says_live(db, monkeypatch):
    secret = "EAAB-super-secret-token-value"
    monkeypatch.setenv("META_ACCESS_TOKEN", secret)
    at = open_page(ACCOUNTS)
    creds = {r["platform"]: r for r in frame(at, "platform", "tier", "mode")}
    assert creds["Meta"]["mode"] == "live" and creds["Meta"]["set"] == "META_ACCESS_TOKEN"
    assert creds["Meta"]["from"] == "environment"
    assert creds["TikTok"]["mode"].startswith("not configured") and creds["TikTok"]["missing"] == "TIKTOK_ACCESS_TOKEN"
    assert any(s.value.startswith("Live APIs: Meta (credentials set)") for s in at.success)
    rendered = repr(at._tree) + "".join(str(d.value.to_dict()) for d in at.dataframe)
    assert secret not in rendered


def test_accounts_page_warns_ahead_of_credential_expiry(db, monkeypatch):
    import datetime as dt

    from service.token_cache import TokenCache

    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAB-meta-seen-long-ago")
    TokenCache().note_seen("meta", "EAAB-meta-seen-long-ago", dt.datetime.now(dt.UTC) - dt.timedelta(days=50))
    at = open_page(ACCOUNTS)
    warnings = [w.value for w in at.warning if w.value.startswith("Meta:")]
    assert len(warnings) == 1 and "first seen here 50 days ago" in warnings[0]
    creds = {r["platform"]: r for r in frame(at, "platform", "tier", "mode")}
    assert "first seen here 50 days ago" in creds["Meta"]["warning"] and creds["TikTok"]["warning"] == ""
    assert "EAAB-meta-seen-long-ago" not in repr(at._tree)


def test_history_page_lists_runs_with_per_platform_and_account_results(db):
    at = open_page(HISTORY)
    store = SpendStore(db)
    runs = store.runs(50)
    assert len(runs) == 2
    table = frame(at, "run", "started")
    assert [r["run"] for r in table] == [r["run_id"] for r in runs]
    assert [r["requests"] for r in table] == [str(r["requests"]) for r in runs]
    latest = runs[0]
    assert latest["stores"] == "demo-sakura"
    m = metrics(at)
    assert m["Status"] == latest["status"] and m["Requests"] == str(latest["requests"])
    platforms, accounts = dash.run_detail(store, latest["run_id"])
    assert frame(at, "platform", "accounts") == [{k: str(v) for k, v in r.items()} for r in platforms]
    assert frame(at, "platform", "account") == [{k: str(v) for k, v in r.items()} for r in accounts]
    assert {r["platform"] for r in platforms} == {"Meta", "Google Ads", "LinkedIn", "Snapchat", "Reddit"}
    # per-account request counts add up to the run's
    assert sum(a["requests"] for a in accounts) == latest["requests"] and all(a["requests"] > 0 for a in accounts)
    # choose the other run
    at.selectbox(key="history_run").set_value(runs[1]["run_id"])
    ok(at.run())
    assert last_caption(at) == f"history | run {runs[1]['run_id']} | {runs[1]['status']}"


def test_password_gate_env(db, monkeypatch):
    monkeypatch.setenv("ADSPEND_APP_PASSWORD", "correct horse")
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    assert not at.metric and not at.dataframe and not at.sidebar.selectbox
    from ui import login

    now = [0.0]
    monkeypatch.setattr(login, "THROTTLE", login.LoginThrottle(clock=lambda: now[0]))
    at.text_input(key="_password").set_value("wrong")
    ok(at.button[0].click().run())
    assert at.error[0].value.startswith("Wrong password.") and not at.metric
    now[0] += 1  # the wait after a failure (tests/test_login_throttle.py)
    at.text_input(key="_password").set_value("correct horse")
    ok(at.button[0].click().run())
    assert at.metric and not any("open to anyone" in c.value for c in at.caption)


def test_password_gate_from_secrets(db):
    at = AppTest.from_file(APP, default_timeout=90)
    at.secrets["ADSPEND_APP_PASSWORD"] = "from-secrets"
    ok(at.run())
    assert not at.metric and at.text_input(key="_password")


def test_database_that_cannot_be_opened_shows_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("ADSPEND_DB", str(tmp_path))  # a directory
    at = ok(AppTest.from_file(APP, default_timeout=90).run())
    assert at.error[0].value.startswith(f"Could not open the database {tmp_path}. The database cannot be used: ")
    assert "is a directory" in at.error[0].value


def test_busy_database_shows_a_sentence_not_a_traceback(db, monkeypatch):
    monkeypatch.setenv("ADSPEND_DB_LOCK_TIMEOUT", "0.5")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(20)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        at = ok(AppTest.from_file(APP, default_timeout=90).run())
        assert "The database is busy" in at.error[0].value and "in use by another process" in at.error[0].value
    finally:
        holder.kill()
        holder.wait()
