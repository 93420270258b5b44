"""Crash safety: the CLI killed (SIGKILL) in the middle of a refresh.

The refresh runs as a real subprocess against the sandbox in this process. TikTok's budget is
held at one request a second so its windows commit one by one while the run goes on, and the
asynchronous reports (Amazon, Microsoft, Pinterest) never finish during the first run. Once
report ids and some windows are in the database, the process is killed. Then:

- the database opens cleanly; every window committed before the kill is there, whole, with the
  sandbox's exact figures; no window is half-written (each account's stored days are exactly the
  union of its committed windows);
- the run is shown as interrupted;
- the next refresh polls the stored report ids instead of requesting the reports again, and ends
  with every figure exact.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

# timing-sensitive (deadlines, kills, locks): run alone, not beside other tests (scripts/test.sh)
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=99)  # 100 days: Pinterest's older window goes through an async report
AMAZON_OLDEST = TODAY - dt.timedelta(days=60)  # Amazon serves 60 days: its older days fail, without a request

ACCOUNTS = [
    ("tiktok", "7100000000000011"),
    ("tiktok", "7100000000000012"),
    ("meta", "1000000011"),
    ("amazon", "3000000011"),
    ("microsoft", "41000011"),
    ("pinterest", "549000000011"),
]
REPORT_PLATFORMS = ("amazon", "microsoft", "pinterest")


def _env(sandbox_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADSPEND_", "PYTEST"))}
    env.update(sandbox_env)
    env.update(
        {
            "ADSPEND_RETRY_BASE_SECONDS": "0.01",
            "ADSPEND_REPORT_POLL_SECONDS": "0.05",
            "ADSPEND_TOKEN_CACHE": os.environ["ADSPEND_TOKEN_CACHE"],
            "ADSPEND_NO_DOTENV": "1",
            "TIKTOK_REQUESTS_PER_MINUTE": "60",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _store(db_path):
    from storage.db import SpendStore

    return SpendStore(db_path)


def _report_submits(ctx) -> dict[str, int]:
    """How many reports each platform has been asked for (ever, in this sandbox)."""
    with ctx.lock:
        return {
            "amazon": sum(1 for j in ctx.jobs.values() if j.get("platform") == "amazon"),
            "pinterest": sum(1 for j in ctx.jobs.values() if j.get("platform") == "pinterest"),
            "microsoft": sum(1 for e in ctx.log if e.get("op") == "SubmitGenerateReport"),
        }


def test_sigkill_mid_refresh_keeps_committed_windows_and_resumes_reports(
    tmp_path, sandbox, sandbox_env, run_cli, db_path
):
    csv = tmp_path / "accounts.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"s1,Crash,{p},{a}\n" for p, a in ACCOUNTS))
    assert run_cli("accounts", "import", csv).returncode == 0
    sandbox.ctx.configure({"report_polls_needed": 10**9})  # reports stay pending in the first run
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "--db",
            str(db_path),
            "refresh",
            "--store",
            "s1",
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
        ],
        cwd=str(ROOT),
        env=_env(sandbox_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, ("the refresh finished before it could be killed", proc.communicate())
            assert time.monotonic() < deadline, "the refresh never reached the point to kill it"
            time.sleep(0.2)
            try:
                pending = {p for (p,) in _store(db_path).query("SELECT DISTINCT platform FROM report_jobs")}
                tiktok_windows = _store(db_path).query(
                    "SELECT count(*) FROM refresh_results WHERE platform = 'tiktok' AND status = 'ok'"
                )[0][0]
            except Exception:  # the refresh holds the file for a moment: look again
                continue
            if pending >= set(REPORT_PLATFORMS) and 1 <= tiktok_windows:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # the database opens cleanly and holds only whole, exact windows
    store = _store(db_path)
    runs = store.query("SELECT run_id, status FROM refresh_runs")
    assert [s for _, s in runs] == ["running"]
    run_id = runs[0][0]
    ok_windows = store.query(
        "SELECT platform, account_id, window_start, window_end FROM refresh_results WHERE run_id = ? AND status = 'ok'",
        [run_id],
    )
    stored = store.query("SELECT platform, account_id, day, amount FROM daily_spend")
    assert ok_windows and stored
    tiktok_done = [w for w in ok_windows if w[0] == "tiktok"]
    assert 1 <= len(tiktok_done) < 2 * 4  # killed while TikTok's 2 x 4 windows were under way
    expected_days = {}
    for p, a, ws, we in ok_windows:
        days = sandbox.sandbox.expected_total(p, a, ws, we)["days"]
        for d, v in days.items():
            expected_days[(p, a, dt.date.fromisoformat(d))] = Decimal(v)
    assert {(p, a, d): v for p, a, d, v in stored} == expected_days
    assert store.query("SELECT platform, min(day), max(day) FROM fetch_failures GROUP BY 1") == [
        ("amazon", START, AMAZON_OLDEST - dt.timedelta(days=1))
    ]

    # the interrupted run is shown as interrupted (the history page and the next refresh mark it)
    assert store.mark_interrupted_runs() == 1
    run = store.runs()[0]
    assert (run["run_id"], run["status"]) == (run_id, "interrupted")
    assert "stopped before finishing" in run["error"]
    from service import dashboard as dash

    rows = dash.run_rows(store, 10)
    assert any("interrupted" in str(v) for v in rows[0].values()), rows[0]

    # the next refresh resumes the pending reports by id, and every figure ends exact
    pending = dict(((p, k), j) for p, k, j in store.query("SELECT platform, job_key, job_id FROM report_jobs"))
    assert {p for p, _ in pending} == set(REPORT_PLATFORMS)
    submits_before = _report_submits(sandbox.ctx)
    sandbox.ctx.configure({"report_polls_needed": 1})
    for key in _env(sandbox_env):
        if key.endswith("_REQUESTS_PER_MINUTE"):
            os.environ.pop(key, None)
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json")
    assert r.returncode == 1, r  # Amazon's days older than 60 cannot be fetched
    assert {x["platform"]: x["status"] for x in r.json()["results"]} == {
        **{p: "ok" for p, _ in ACCOUNTS},
        "amazon": "failed",
    }
    submits_after = _report_submits(sandbox.ctx)
    # every report pending at the kill was polled, not requested again: new submits only for the
    # windows that had not been submitted yet when the process died
    resumed_amazon = {j for (p, _), j in pending.items() if p == "amazon"}
    with sandbox.ctx.lock:
        polled_amazon = {j["id"] for j in sandbox.ctx.jobs.values() if j.get("platform") == "amazon" and j["polls"] > 0}
    assert resumed_amazon <= polled_amazon
    needed = _reports_needed()
    for p in REPORT_PLATFORMS:
        assert submits_after[p] - submits_before[p] == needed[p] - len([1 for (q, _) in pending if q == p]), (
            p,
            submits_before,
            submits_after,
            pending,
        )
    assert store.query("SELECT count(*) FROM report_jobs") == [(0,)]
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    for p, a in ACCOUNTS:
        start = AMAZON_OLDEST if p == "amazon" else START
        want = sandbox.sandbox.expected_total(p, a, start, END)["days"]
        got = {
            d.isoformat(): str(v)
            for d, v in store.query("SELECT day, amount FROM daily_spend WHERE platform = ? AND account_id = ?", [p, a])
        }
        assert {d: Decimal(v) for d, v in got.items()} == {d: Decimal(v) for d, v in want.items()}, p
        if p != "amazon":
            acc = next(x for x in doc["platforms"][p]["accounts"] if x["account_id"] == a)
            exact = Decimal(sandbox.sandbox.expected_total(p, a, START, END)["spend"])
            assert (p, acc["spend"], acc["days"]) == (p, str(exact.quantize(Decimal("0.01"))), 100)
    assert doc["platforms"]["amazon"]["status"] in ("failed", "partial") and doc["platforms"]["amazon"]["error"]
    statuses = dict(store.query("SELECT run_id, status FROM refresh_runs"))
    assert statuses[run_id] == "interrupted" and sorted(statuses.values()) == ["interrupted", "partial"]


def _reports_needed() -> dict[str, int]:
    """How many reports a full fetch of the period asks each report platform for."""
    from fetchers.amazon import MAX_DAYS as AMAZON_DAYS
    from fetchers.core import plan_windows
    from fetchers.microsoft import MAX_DAYS as MICROSOFT_DAYS
    from fetchers.pinterest import MAX_DAYS as PINTEREST_DAYS
    from fetchers.pinterest import uses_async_report
    from sandbox.amazon import ad_products

    amazon_products = len(ad_products("3000000011"))
    return {
        "amazon": amazon_products * len(plan_windows(AMAZON_OLDEST, END, AMAZON_DAYS)),
        "microsoft": len(plan_windows(START, END, MICROSOFT_DAYS)),
        "pinterest": sum(1 for ws, _ in plan_windows(START, END, PINTEREST_DAYS) if uses_async_report(ws, TODAY)),
    }
