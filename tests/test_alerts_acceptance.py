"""Acceptance (issue 17): on demo data served by the sandbox, with budgets imported, every kind of
alert is produced by the sandbox's data switches and faults, and appears identically in
`alerts --json`, on the store page and on the Alerts page; a second `alerts` run posts nothing.

Dates are relative to the product's clock (any day works): D = yesterday."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import streamlit as st
from browser_support import FAST_ENV, ROOT
from streamlit.testing.v1 import AppTest
from test_alerts_cli import Receiver

from fetchers import clock
from fetchers.specs import SPECS

APP = str(ROOT / "app.py")
ALERTS = "pages/7_Alerts.py"


def configure(sandbox, cfg: dict) -> None:
    req = urllib.request.Request(
        f"{sandbox.url}/_sandbox/config",
        data=json.dumps(cfg).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def page_rows(at: AppTest) -> list[tuple]:
    cols = ["store", "platform", "account", "kind", "day", "open", "detail"]
    [df] = [d.value for d in at.dataframe if list(d.value.columns) == cols]
    return [
        (r["store"].rsplit("(", 1)[1].rstrip(")"), r["platform"], r["account"], r["kind"], r["day"], r["detail"])
        for r in df.astype(str).to_dict("records")
    ]


def cli_rows(alerts: list[dict]) -> list[tuple]:
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


def pages_show(alerts: list[dict]) -> None:
    """The store page (demo-fjord picked in the sidebar) and the Alerts page (filtered to
    demo-fjord) show exactly these alerts."""
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.sidebar.selectbox(key="store_id").set_value("demo-fjord")
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert page_rows(at) == cli_rows(alerts)
    at = at.switch_page(ALERTS).run()
    at.multiselect(key="alerts_store").set_value(["demo-fjord"])
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert page_rows(at) == cli_rows(alerts)


def test_every_kind_from_the_sandbox_in_cli_store_page_and_alerts_page(
    tmp_path, monkeypatch, run_cli, sandbox, sandbox_env, db_path
):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ADSPEND_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    monkeypatch.delenv("ADSPEND_TODAY", raising=False)
    d = clock.yesterday()
    start = d - dt.timedelta(days=20)  # 14 days of history before the stop and the spike
    # Blue Fjord (EUR; Meta, Google, TikTok, Amazon, Pinterest; no platform whose API version the
    # sandbox retires a year on). Its EUR Meta account stops delivering the day before D; its Google
    # Ads account spikes on D (10 x its usual size)
    configure(
        sandbox,
        {
            "events": [
                {
                    "platform": "meta",
                    "account": "1000000978",
                    "kind": "stop",
                    "from": (d - dt.timedelta(days=1)).isoformat(),
                },
                {"platform": "google", "account": "1234567978", "kind": "spike", "day": d.isoformat(), "factor": 10},
            ]
        },
    )
    assert run_cli("demo").returncode == 0
    r = run_cli("refresh", "--store", "demo-fjord", "--start", start, "--end", d)
    assert r.returncode == 0, r
    # Amazon's last three days now fail (the earlier figures stay)
    configure(sandbox, {"faults": [{"platform": "amazon", "kind": "5xx", "count": 1000}]})
    r = run_cli(
        "refresh",
        "--store",
        "demo-fjord",
        "--platform",
        "amazon",
        "--full",
        "--start",
        d - dt.timedelta(days=2),
        "--end",
        d,
    )
    assert r.returncode == 1, r
    sandbox.ctx.reset()
    budgets = tmp_path / "budgets.csv"
    budgets.write_text(f"store_id,month,amount,platform\ndemo-fjord,{d:%Y-%m},1.00,\n")  # far over
    assert run_cli("budgets", "import", budgets).returncode == 0

    rx = Receiver()
    try:
        monkeypatch.setenv("ADSPEND_ALERT_WEBHOOK_URL", rx.url)
        r = run_cli("alerts", "--store", "demo-fjord", "--json")
        assert r.returncode == 1, r
        alerts = r.json()
        assert [(a["kind"], a["platform"], a["account_id"]) for a in alerts] == [
            ("stopped", "meta", "1000000978"),
            ("spike", "google", "1234567978"),
            ("pacing", None, None),
            ("failed", "amazon", "3000000826"),
        ]
        stopped, spike, pacing, failed = alerts
        # (the streak may start earlier when the sandbox's data had a day without delivery just before)
        first_zero = dt.date.fromisoformat(stopped["day"])
        assert first_zero <= d - dt.timedelta(days=1)
        assert stopped["detail"].startswith(
            f"Meta account 1000000978 spent nothing for {(d - first_zero).days + 1} "
            f"days running ({first_zero} to {d}) after spending on "
        )
        assert spike["day"] == d.isoformat() and " x its median of " in spike["detail"]
        assert (
            pacing["detail"].startswith(f"Projected spend for {d:%Y-%m} is ")
            and " over the budget of 1.00 EUR" in pacing["detail"]
        )
        assert failed["detail"].startswith("The latest fetch of 3 day(s) of Amazon Ads account 3000000826 failed")
        assert len(rx.bodies) == 1 and rx.bodies[0][2]["text"].startswith("Ad Spend Hub: 4 new alerts\n")
        r = run_cli("alerts", "--store", "demo-fjord")  # the second run posts nothing new
        assert r.returncode == 1 and len(rx.bodies) == 1 and r.stderr == ""
        pages_show(alerts)

        # three days later nothing was fetched: every platform is stale (the clock pinned ahead)
        monkeypatch.setenv("ADSPEND_TODAY", (clock.today() + dt.timedelta(days=3)).isoformat())
        r = run_cli("alerts", "--store", "demo-fjord", "--json")
        later = r.json()
        stale = [a for a in later if a["kind"] == "stale"]
        assert [a["platform"] for a in stale] == ["amazon", "google", "meta", "pinterest", "tiktok"]
        assert all("latest successful fetch was at" in a["detail"] for a in stale)
        assert len(rx.bodies) == 2 and rx.bodies[1][2]["text"].count("• stale") == 5
        pages_show(later)
    finally:
        rx.close()


def test_sandbox_stop_and_spike_switches(sandbox):
    """The sandbox's alert switches: zero spend from a day on, a spike day (factor x the account's
    size), LinkedIn matched by its URN or digits; a reset clears them; a bad switch is a 400."""

    from sandbox import data

    day = dt.date(2026, 3, 10)
    before = sandbox.sandbox.expected_total("linkedin", "500978", day, day + dt.timedelta(days=3))["days"]
    configure(
        sandbox,
        {
            "events": [
                {
                    "platform": "linkedin",
                    "account": "urn:li:sponsoredAccount:500978",
                    "kind": "stop",
                    "from": (day + dt.timedelta(days=2)).isoformat(),
                },
                {"platform": "meta", "account": "1000000001", "kind": "spike", "day": day.isoformat(), "factor": 7},
            ]
        },
    )
    after = sandbox.sandbox.expected_total("linkedin", "500978", day, day + dt.timedelta(days=3))["days"]
    assert [after[k] for k in sorted(after)] == [before[k] for k in sorted(before)][:2] + ["0", "0"]
    size = 40 + (data._h("meta", "1000000001", "size") % 400)
    assert sandbox.sandbox.expected_total("meta", "1000000001", day, day)["spend"] == f"{size * 7}.00"
    sandbox.ctx.reset()
    assert sandbox.sandbox.expected_total("linkedin", "500978", day, day + dt.timedelta(days=3))["days"] == before
    req = urllib.request.Request(
        f"{sandbox.url}/_sandbox/config",
        method="POST",
        data=json.dumps(
            {"events": [{"platform": "meta", "account": "1", "kind": "pause", "from": "2026-03-01"}]}
        ).encode(),
    )
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a bad switch was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
