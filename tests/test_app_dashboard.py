"""AppTest: the store page as account managers read it (issue 16), on a store written directly
(USD only, no sandbox, no exchange rates) with the date pinned (ADSPEND_TODAY=2026-10-15):
numeric deltas (a drop gets a down arrow), calendar comparisons and the choice of comparison, no
comparison between incomplete periods, the numeric breakdown table, charts that add up to the
total, refresh outcomes that say why nothing was fetched, and the view kept in the URL."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal

import pytest
import streamlit as st
from browser_support import FAST_ENV, ROOT, app_state
from streamlit.proto.Metric_pb2 import Metric
from streamlit.testing.v1 import AppTest
from test_dashboard_views import build_store

from service import dashboard as dash
from service.report import spend_report
from storage.db import SpendStore
from ui.colors import PLATFORM_COLORS

APP = str(ROOT / "app.py")
TODAY = "2026-10-15"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ADSPEND_TODAY", TODAY)
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """s1 with Meta and Google only (complete in August and September), and s2 with nothing linked."""
    path = tmp_path_factory.mktemp("dash") / "template.duckdb"
    store = build_store(path, demo=False)
    store.unlink_account("s1", "amazon", "333")
    store.save_store("s2", "Zed Empty Shop", "USD", False)
    return path


@pytest.fixture
def db(template, tmp_path, monkeypatch):
    path = tmp_path / "dash.duckdb"
    shutil.copy(template, path)
    monkeypatch.setenv("ADSPEND_DB", str(path))
    return path


def run(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return ok(at.run())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def total_metric(at):
    return next(m for m in at.metric if m.label == "Total spend (USD)")


def breakdown(at):
    return next(d.value for d in at.dataframe if "platform / account" in d.value.columns)


def test_a_drop_is_a_negative_number_with_a_down_arrow_against_the_previous_month(db):
    at = run()
    assert at.sidebar.selectbox(key="period").value == "Last month"
    m = total_metric(at)
    # September (3003.00 + 1500.15) against AUGUST (2791.55 + 1860.00), not the 30 days before
    assert m.value == "USD 4,503.15"
    assert m.delta == "-148.40" and m.proto.format == "USD %,.2f"
    assert m.proto.color == Metric.MetricColor.GRAY  # spend going down is not "bad"
    assert m.proto.direction == Metric.MetricDirection.DOWN
    assert m.proto.delta_description == "-3.2% vs 2026-08-01 to 2026-08-31"
    assert "Previous period, 2026-08-01 to 2026-08-31: USD 4,651.55" in [c.value for c in at.main.caption]
    assert (
        app_state(at) == "store s1 | 2026-09-01..2026-09-30 | total USD 4503.15 | complete true | compare "
        "previous_period shown"
    )
    assert not any("complete true" in c.value for c in at.caption)  # the state is never on screen


def test_a_rise_points_up_and_stays_neutral(db):
    at = run({"store": "s1", "start": "2026-09-01", "end": "2026-09-07"})
    m = total_metric(at)
    # 700.70 + 350.04 against the 7 days before (Aug 25-31: 630.35 + 420.00)
    assert (m.value, m.delta) == ("USD 1,050.74", "0.39")
    assert m.proto.direction == Metric.MetricDirection.UP and m.proto.color == Metric.MetricColor.GRAY


def test_choice_of_comparison_and_incomplete_sides_named(db):
    at = run()
    at.sidebar.selectbox(key="compare").set_value("last_year")
    ok(at.run())
    assert total_metric(at).delta == ""
    assert "No comparison: 2025-09-01 to 2025-09-30 lacks Meta (not configured), Google Ads (not configured)." in [
        c.value for c in at.main.caption
    ]
    assert at.query_params["compare"] == ["last_year"] or at.query_params["compare"] == "last_year"
    # an incomplete side: Amazon linked, with no data in August
    store = SpendStore(db)
    with store.transaction() as con:
        store.link_accounts(con, [("s1", "amazon", "333", None)])
    at.sidebar.selectbox(key="compare").set_value("previous_month")
    ok(at.run())
    assert total_metric(at).delta == ""
    assert [c.value for c in at.main.caption if c.value.startswith("No comparison")] == [
        "No comparison: 2026-08-01 to 2026-08-31 lacks Amazon Ads (older than the 60 days it serves)."
    ]


def test_the_url_opens_the_same_view_and_follows_changes(db):
    at = run({"store": "s1", "start": "2026-09-10", "end": "2026-09-16", "compare": "previous_month"})
    assert at.sidebar.selectbox(key="store_id").value == "s1"
    assert at.sidebar.selectbox(key="period").value == "Custom"
    assert at.sidebar.date_input(key="custom_range").value == (dt.date(2026, 9, 10), dt.date(2026, 9, 16))
    assert at.sidebar.selectbox(key="compare").value == "previous_month"
    assert app_state(at).startswith("store s1 | 2026-09-10..2026-09-16 | ")
    assert "Previous month, 2026-08-10 to 2026-08-16: USD 1,050.35" in [c.value for c in at.main.caption]
    # a preset's dates open the preset
    at = run({"store": "s2", "start": "2026-09-01", "end": "2026-09-30"})
    assert (at.sidebar.selectbox(key="store_id").value, at.sidebar.selectbox(key="period").value) == (
        "s2",
        "Last month",
    )
    # a change is written back
    at.sidebar.selectbox(key="store_id").set_value("s1")
    ok(at.run())
    assert {k: at.query_params[k] for k in ("store", "start", "end", "compare")} in (
        {"store": "s1", "start": "2026-09-01", "end": "2026-09-30", "compare": "previous_period"},
        {"store": ["s1"], "start": ["2026-09-01"], "end": ["2026-09-30"], "compare": ["previous_period"]},
    )


def test_breakdown_table_is_numeric_and_formatted(db):
    at = run()
    df = breakdown(at)
    assert list(df.columns) == ["platform / account", "spend", "Δ %", "share", "previous", "Δ", "status"]
    for col in ("spend", "Δ %", "share", "previous", "Δ"):
        assert df[col].dtype.kind == "f", col  # numbers: they sort as numbers
    rows = df.to_dict("records")
    assert [r["platform / account"] for r in rows] == [
        "Meta",
        "   ↳ 111 · Meta main",
        "Google Ads",
        "   ↳ 222 · google acct",
    ]
    assert [(r["spend"], r["previous"], r["Δ"], r["Δ %"], r["share"]) for r in rows[::2]] == [
        (3003.0, 2791.55, 211.45, 7.6, 66.7),
        (1500.15, 1860.0, -359.85, -19.3, 33.3),
    ]
    config = json.loads(next(d for d in at.dataframe if "platform / account" in d.value.columns).proto.columns)
    assert config["spend"]["type_config"]["format"] == "USD %,.2f"
    assert config["Δ"]["type_config"]["format"] == "USD %+,.2f"
    # the same numbers as the service, exactly
    rep = spend_report(SpendStore(db), "s1", dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert [r.spend for r in dash.breakdown(rep) if r.level == "platform"] == [Decimal("3003.00"), Decimal("1500.15")]


def test_charts_add_up_to_the_total_with_platform_colours_and_tooltips(db):
    at = run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["barmode"] == "stack"
    assert {t["name"]: t["marker"]["color"] for t in spec["data"]} == {
        "Meta": PLATFORM_COLORS["meta"],
        "Google Ads": PLATFORM_COLORS["google"],
    }
    drawn = sum(Decimal(str(y)) for t in spec["data"] for y in t["y"])
    assert drawn.quantize(Decimal("0.01")) == Decimal("4503.15")
    assert all("USD %{y:,.2f}" in t["hovertemplate"] for t in spec["data"])
    donut = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    assert donut["values"] == [3003.0, 1500.15] and donut["marker"]["colors"] == [
        PLATFORM_COLORS["meta"],
        PLATFORM_COLORS["google"],
    ]
    # monthly: one bar per platform, month ticks; the current month is partial (hatched)
    at.segmented_control(key="granularity").set_value("month")
    ok(at.run())
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["y"] for t in spec["data"]] == [[3003.0], [1500.15]]
    assert spec["layout"]["xaxis"]["tickformat"] == "%b %Y"
    at.sidebar.selectbox(key="period").set_value("This month")
    ok(at.run())
    assert any("Hatched bars" in c.value for c in at.main.caption) or not at.get("plotly_chart")


def test_refresh_says_why_nothing_was_fetched(db):
    at = run({"store": "s2"})
    assert [i.value for i in at.info][-1] == (
        "Nothing to draw: this store has no linked ad accounts. Link them on the Accounts page."
    )
    at.button(key="refresh").click()
    ok(at.run())
    assert (
        at.status[0].label == "Nothing to fetch: this store has no linked ad accounts. Link them on the Accounts page."
    )
    assert not any("Refresh ok" in s.label for s in at.status)
    at = run({"store": "s1"})
    at.button(key="refresh").click()
    ok(at.run())
    assert at.status[0].label == (
        "Nothing fetched: no credentials are set for Meta, Google Ads. Add them (see the "
        "Accounts page) to fetch this store's spend."
    )
    at = run({"store": "s1", "start": "2026-11-01", "end": "2026-11-30"})
    assert [i.value for i in at.info][-1] == "Nothing to draw: the period 2026-11-01 to 2026-11-30 has not started yet."
    at.button(key="refresh").click()
    ok(at.run())
    assert at.status[0].label.startswith(
        "Nothing to fetch: the period 2026-11-01 to 2026-11-30 has not started yet (today is 2026-10-15)"
    )


def test_portfolio_marks_partial_months_and_revenue_pairs_plan_rows(db):
    at = run({"store": "s1", "start": "2026-09-01", "end": "2026-10-31"})
    ok(at.switch_page("pages/2_Portfolio_and_coverage.py").run())
    trend = json.loads(next(c for c in at.get("plotly_chart") if "Monthly" in c.proto.spec).proto.spec)
    # October is not over on 2026-10-15: labelled and hatched; no "00:00:00" tick anywhere
    assert [t["x"] for t in trend["data"]] == [["Sep 2026"], ["Sep 2026"]]
    assert trend["layout"]["xaxis"]["categoryarray"] == ["Sep 2026"]
    at = run({"store": "s1", "start": "2026-09-15", "end": "2026-09-30"})
    ok(at.switch_page("pages/2_Portfolio_and_coverage.py").run())
    trend = json.loads(next(c for c in at.get("plotly_chart") if "Monthly" in c.proto.spec).proto.spec)
    assert trend["data"][0]["x"] == ["Sep 2026 (partial)"] and trend["data"][0]["marker"]["pattern"]["shape"] == ["/"]
    ok(at.switch_page("pages/3_Revenue_impact.py").run())
    chart = json.loads(next(c for c in at.get("plotly_chart") if "plan vs observed" in c.proto.spec).proto.spec)
    plan, observed = chart["data"]
    assert plan["x"] == observed["x"] == ["Meta + Google", "TikTok", "LinkedIn", "Amazon", "Microsoft"]
    # Meta + Google together: (1601.60 + 800.08) over 16/30 of a month, one store
    assert observed["y"][0] == 4503.15 and observed["y"][1:] == [None, None, None, None]
    assert plan["y"] == [15000.0, 8000.0, 12000.0, 10000.0, 5000.0]
