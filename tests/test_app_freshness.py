"""AppTest: the demo opens on data (its stores fetched once on the first start, with progress),
the store page's "data as of" agrees with `cli.py status --json`, and periods past a platform's
retention say "cannot be fetched any more" (store page and sidebar)."""

from __future__ import annotations

import datetime as dt

import pytest
import streamlit as st
from browser_support import FAST_ENV, ROOT, app_state, cli
from streamlit.testing.v1 import AppTest

from fetchers import clock
from fetchers.specs import SPECS
from service import dashboard as dash
from service import freshness as fr
from service.report import spend_report
from storage.db import SpendStore
from ui.format import money

APP = str(ROOT / "app.py")

try:  # LinkedIn retires API versions after a year: conftest keeps the fetcher on an active one
    from conftest import keep_linkedin_version_current
except ImportError:  # a tree from before that helper

    def keep_linkedin_version_current(_mp) -> None:
        return None


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def first_start(tmp_path_factory):
    """A dashboard started on a FRESH database (the demo stores are created and fetched)."""
    from sandbox.server import SandboxServer

    server = SandboxServer(0).start()
    db = tmp_path_factory.mktemp("first") / "fresh.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        keep_linkedin_version_current(mp)
        for k, v in {
            **FAST_ENV,
            "ADSPEND_DB": str(db),
            "ADSPEND_SANDBOX_URL": server.url,
            "ADSPEND_TOKEN_CACHE": str(db.parent / "tokens.json"),
        }.items():
            mp.setenv(k, v)
        st.cache_resource.clear()
        at = ok(AppTest.from_file(APP, default_timeout=120).run())
        yield {"db": db, "at": at, "url": server.url}
    server.stop()
    st.cache_resource.clear()


@pytest.fixture
def env(first_start, monkeypatch):
    for k, v in {**FAST_ENV, "ADSPEND_DB": str(first_start["db"]), "ADSPEND_SANDBOX_URL": first_start["url"]}.items():
        monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    return first_start


def test_first_start_fetches_the_demo_stores_once_with_progress(env):
    at, store = env["at"], SpendStore(env["db"])
    start, end = dash.period_for(dash.DEFAULT_PRESET, clock.today())
    # on the 31st after a 31-day month, last month's first day is past Amazon's 60 days: it fails
    amazon_cut = start < clock.today() - dt.timedelta(days=60)
    outcome = "partial" if amazon_cut else "ok"
    [status] = at.status
    assert status.label.startswith(f"Demo stores fetched for {start} to {end}: {outcome} in "), status.label
    progress = status.dataframe[0].value.astype(str).to_dict("records")
    assert len(progress) == len(store.accounts()) == 21
    assert {(r["platform"], r["state"]) for r in progress} == {
        (SPECS[a["platform"]].name, "failed" if amazon_cut and a["platform"] == "amazon" else "done")
        for a in store.accounts()
    }
    [run] = store.runs()
    assert (run["trigger"], run["status"], run["stores"], run["period_start"], run["period_end"]) == (
        "dashboard",
        outcome,
        "demo-acme,demo-fjord,demo-sakura",
        start,
        end,
    )
    # the first screen has numbers: the first store's total and its daily chart
    report = spend_report(store, "demo-acme", start, end)
    total = next(m for m in at.metric if m.label == "Total spend (USD)")
    assert total.value == money(report.total, "USD") and report.total > 0
    assert app_state(at).startswith(
        f"store demo-acme | {start}..{end} | total USD {dash.fx.format_amount(report.total, 'USD')} | "
    )
    # not repeated: neither on the next rerun nor in a new session
    ok(at.run())
    assert not at.status
    at2 = ok(AppTest.from_file(APP, default_timeout=60).run())
    assert not at2.status
    assert len(store.runs()) == 1
    assert fr.demo_never_fetched(store) == []


def test_data_as_of_agrees_with_status_json(env):
    code, out, err = cli(env["db"], "status", "--store", "demo-acme", "--json")
    assert code == 0, err
    import json

    platforms = json.loads(out)["stores"][0]["platforms"]
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    [exp] = [e for e in at.expander if e.label == "Data as of, per platform"]
    shown = [c.value for c in exp.caption]
    expected = []
    for pid, pf in platforms.items():
        text = f"data as of {pf['last_day']}"
        fetched = dt.datetime.fromisoformat(pf["fetched_at"]).astimezone(dt.UTC)
        text += f" (fetched {fetched:%Y-%m-%d %H:%M} UTC)"
        if pf["pending_days"]:
            text += f"; {pf['pending_days']} day(s) to fetch"
        if pf["unfetchable_days"]:
            text += f"; {pf['unfetchable_days']} day(s) cannot be fetched any more (Amazon Ads keeps 60 days)"
        expected.append(f"{SPECS[pid].name}: {text}")
    assert shown == expected
    # fetched for last month only: the days of this month up to yesterday are pending
    yesterday = clock.today() - dt.timedelta(days=1)
    start, end = dash.period_for(dash.DEFAULT_PRESET, clock.today())
    assert {pf["last_day"] for pf in platforms.values()} == {end.isoformat()}
    assert {pf["pending_days"] for pf in platforms.values()} == {(yesterday - end).days}


def test_periods_past_retention_say_cannot_be_fetched(env):
    store = SpendStore(env["db"])
    at = ok(AppTest.from_file(APP, default_timeout=60).run())
    at.sidebar.selectbox(key="period").set_value("Last 90 days")
    ok(at.run())
    start, end = dash.period_for("Last 90 days", clock.today())
    note = fr.period_note(start, end, {a["platform"] for a in store.accounts(["demo-acme"])})
    assert note.startswith("This period reaches past what the platforms serve: Amazon Ads keeps 60 days")
    assert note in [c.value for c in at.sidebar.caption]
    # the store page: Amazon's days before its 60 are never promised to a refresh
    oldest = clock.today() - dt.timedelta(days=60)
    missing_amazon = (oldest - start).days
    warnings = [w.value for w in at.warning if w.value.startswith("Amazon Ads:")]
    assert warnings == [
        f"Amazon Ads: {missing_amazon} day(s) of {start}..{oldest - dt.timedelta(days=1)} cannot be "
        "fetched any more (Amazon Ads keeps 60 days); a refresh cannot fix them."
    ]
    [chip] = [c.value.replace("\\", "") for c in at.caption if c.value.startswith("Amazon Ads: 3000000001")]
    assert f"; {missing_amazon} day(s) before {oldest} cannot be fetched any more (Amazon Ads keeps 60 days)" in chip
    assert "run a refresh" not in chip
