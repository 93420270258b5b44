"""Report jobs against the sandbox's time-based reports (``report_seconds``, the bench's "2 s
report jobs"): a report is done that long after its submit, however often it is polled, on each
of the three platforms that report through jobs (Amazon, Microsoft, Pinterest's async reports)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sandbox.common import Context
from storage.db import SpendStore

TODAY = dt.datetime.now(dt.UTC).date()
ACCOUNTS = {"amazon": "3312456789012348", "microsoft": "41000001", "pinterest": "549755885175"}


def test_the_demo_sandbox_completes_reports_by_time_and_keeps_that_over_a_reset():
    from sandbox.server import DEMO_REPORT_SECONDS, SandboxServer

    demo = SandboxServer(0, report_seconds=DEMO_REPORT_SECONDS)
    try:
        assert demo.ctx.report_seconds == DEMO_REPORT_SECONDS == 1.0
        demo.ctx.configure({"report_seconds": None})
        demo.ctx.reset()
        assert demo.ctx.report_seconds == 1.0
    finally:
        demo.httpd.server_close()
    plain = SandboxServer(0)
    try:
        assert plain.ctx.report_seconds is None and plain.ctx.report_polls_needed == 3
    finally:
        plain.httpd.server_close()


def test_report_done_counts_seconds_when_set_and_polls_otherwise(monkeypatch):
    import sandbox.common as common

    now = [1000.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    ctx = Context()
    ctx.configure({"report_polls_needed": 1})
    job = {"polls": 1, "submitted": 1000.0}
    assert ctx.report_done(job)
    ctx.configure({"report_seconds": 2})
    assert ctx.report_seconds == 2.0 and not ctx.report_done({**job, "polls": 50})
    now[0] = 1001.999
    assert not ctx.report_done(job)
    now[0] = 1002.0
    assert ctx.report_done({**job, "polls": 0})
    ctx.configure({"report_seconds": None})
    assert ctx.report_done(job) and not ctx.report_done({**job, "polls": 0})
    for bad in (-1, 3601):
        with pytest.raises(ValueError, match="report_seconds"):
            ctx.configure({"report_seconds": bad})


@pytest.mark.parametrize("platform", sorted(ACCOUNTS))
def test_time_based_reports_complete_by_time_not_by_polls(tmp_path, run_cli, sandbox, sandbox_env, platform):
    """Polls alone would finish each job at its first (``report_polls_needed`` 1); with
    ``report_seconds`` 0.15 and the tests' 0.02 s first wait, every job needs several polls, and
    the days come back exact."""
    account = ACCOUNTS[platform]
    sandbox.ctx.configure({"report_polls_needed": 1, "report_seconds": 0.15})
    csv = tmp_path / "s.csv"
    csv.write_text(f"store_id,store_name,platform,account_id\ns1,Store,{platform},{account}\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    # Pinterest answers ranges older than 90 days through its async reports
    start, end = (
        (TODAY - dt.timedelta(days=130), TODAY - dt.timedelta(days=101))
        if platform == "pinterest"
        else (
            TODAY - dt.timedelta(days=40),
            TODAY - dt.timedelta(days=11),
        )
    )
    r = run_cli("refresh", "--store", "s1", "--start", start.isoformat(), "--end", end.isoformat(), "--json")
    assert r.returncode == 0, r
    jobs = [j for j in sandbox.ctx.jobs.values() if j.get("platform", platform) == platform]
    assert jobs and all(j["polls"] >= 2 for j in jobs), [j["polls"] for j in jobs]
    want = Decimal(sandbox.sandbox.expected_total(platform, account, start, end)["spend"])
    assert SpendStore(tmp_path / "adspend.duckdb").query(
        "SELECT count(*), sum(amount) FROM daily_spend WHERE platform = ?", [platform]
    ) == [(30, want)]
