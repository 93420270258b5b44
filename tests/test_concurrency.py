"""Concurrent use of one database file: a CLI refresh in one process, readers (the CLI's spend,
the dashboard's read models, the dashboard page itself) in another, at the same time; and a
process that holds the file longer than the bounded wait.

DuckDB lets one process open a file at a time, so every operation here opens the file briefly,
retries with backoff while another process holds it, and gives up after ADSPEND_DB_LOCK_TIMEOUT
seconds with one plain sentence (exit 1), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

# timing-sensitive (deadlines, kills, locks): run alone, not beside other tests (scripts/test.sh)
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=89)  # 90 days: TikTok and LinkedIn in 3 windows each
ACCOUNTS = [
    ("meta", "1000000021"),
    ("tiktok", "7100000000000021"),
    ("tiktok", "7100000000000022"),
    ("linkedin", "urn:li:sponsoredAccount:500021"),
    ("google", "1234567021"),
]

HOLDER = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@pytest.fixture
def imported(tmp_path, run_cli, sandbox_env):
    csv = tmp_path / "accounts.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"s1,Busy,{p},{a}\n" for p, a in ACCOUNTS))
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r
    return csv


def _hold(db_path, seconds: float) -> subprocess.Popen:
    """Another process that opens the database file and keeps it for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _release(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_a_writer_that_cannot_get_the_file_gets_one_plain_sentence(imported, run_cli, db_path, monkeypatch, tmp_path):
    monkeypatch.setenv("ADSPEND_DB_LOCK_TIMEOUT", "0.5")
    holder = _hold(db_path, 60)
    try:
        period = ["--start", START.isoformat(), "--end", END.isoformat()]
        for args in (
            ["refresh", "--store", "s1", *period],
            ["spend", "--store", "s1", *period, "--json"],
            ["accounts", "import", str(imported)],
            ["export", "--store", "s1", *period, "--out", str(tmp_path / "x.csv"), "--allow-incomplete"],
        ):
            r = run_cli(*args)
            assert r.returncode == 1, (args, r)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1, (args, r.stderr)
            assert "Traceback" not in r.stderr and r.stdout == ""
            assert lines[0] == (
                f"error: the database {db_path} is in use by another process (waited 0.5 s); "
                "try again when the other refresh has finished"
            ), args
        assert not (tmp_path / "x.csv").exists()
    finally:
        _release(holder)
    # once the other process lets go, the same command works
    r = run_cli("accounts", "list")
    assert r.returncode == 0, r


def test_a_subprocess_cli_too_gets_one_line_and_exit_1(imported, db_path, sandbox_env):
    holder = _hold(db_path, 60)
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            **sandbox_env,
            "ADSPEND_DB_LOCK_TIMEOUT": "1",
        }
        r = subprocess.run(
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
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        _release(holder)
    assert r.returncode == 1, r
    assert r.stderr.strip().splitlines() == [
        f"error: the database {db_path} is in use by another process (waited 1 s); "
        "try again when the other refresh has finished"
    ]


def test_the_wait_is_bounded_but_real(imported, run_cli, db_path, monkeypatch):
    """A holder that lets go within the wait does not make the command fail."""
    monkeypatch.setenv("ADSPEND_DB_LOCK_TIMEOUT", "20")
    holder = _hold(db_path, 1.0)
    try:
        r = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json")
    finally:
        _release(holder)
    assert r.returncode == 0, r
    assert r.json()["store_id"] == "s1"


def test_refresh_and_readers_at_once_neither_corrupts_the_other(
    imported, run_cli, sandbox, sandbox_env, db_path, monkeypatch
):
    """While another process refreshes: the CLI's spend, the dashboard's read models and the
    dashboard page itself (AppTest) all keep working, and every figure they can see is exact."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from service import dashboard as dash
    from service.report import spend_report
    from storage.db import SpendStore

    # the refresh (another process) takes a few seconds: TikTok paced at two requests a second
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        **sandbox_env,
        "TIKTOK_REQUESTS_PER_MINUTE": "120",
        "LINKEDIN_REQUESTS_PER_MINUTE": "120",
    }
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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    expected = {
        (p, a): {
            dt.date.fromisoformat(d): Decimal(v)
            for d, v in sandbox.sandbox.expected_total(p, a, START, END)["days"].items()
        }
        for p, a in ACCOUNTS
    }
    reads = renders = 0
    seen_partial = False
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    st.cache_resource.clear()
    try:
        while proc.poll() is None:
            if reads == 1:  # the dashboard page, once the refresh is under way
                at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
                assert not at.exception, [e.value for e in at.exception]
                renders += 1
            # the CLI reader
            r = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json")
            assert r.returncode == 0, r
            doc = r.json()
            # the dashboard's read models
            store = SpendStore(db_path)
            report = spend_report(store, "s1", START, END)
            dash.run_rows(store, 10)
            dash.portfolio_matrix(store)
            # whatever moment we read at, every stored day is the sandbox's exact figure
            for p, a, d, v in store.query("SELECT platform, account_id, day, amount FROM daily_spend"):
                assert v == expected[(p, a)][d], (p, a, d)
            if not doc["complete"]:
                seen_partial = True
            assert {pl["status"] for pl in doc["platforms"].values()} <= {"ok", "missing", "partial"}, doc
            assert report.store_id == "s1" and report.total >= 0
            reads += 1
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        st.cache_resource.clear()
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err
    assert reads >= 3 and renders == 1 and seen_partial
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    assert doc["complete"] is True
    for p, a in ACCOUNTS:
        acc = next(x for x in doc["platforms"][p]["accounts"] if x["account_id"] == a)
        assert acc["spend"] == str(sum(expected[(p, a)].values(), Decimal(0)).quantize(Decimal("0.01")))
