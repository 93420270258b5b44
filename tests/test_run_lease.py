"""A refresh run is alive while it renews its lease, not while some process has its PID (issue 15,
item 6): PIDs are reused and every container's first process is PID 1, so a killed run whose PID
is alive again must still end ``interrupted``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.db import SpendStore, process_identity

# timing-sensitive (deadlines, kills, locks): run alone, not beside other tests (scripts/test.sh)
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def store(tmp_path):
    return SpendStore(tmp_path / "lease.duckdb")


def _start(store, run_id="run-1", owner=None):
    store.start_run(run_id, trigger="test", start=TODAY, end=TODAY, stores=["s1"], platforms=["meta"])
    if owner is not None:
        with store.transaction() as con:
            con.execute("UPDATE refresh_runs SET owner = ? WHERE run_id = ?", [owner, run_id])


def _age_lease(store, seconds, run_id="run-1"):
    with store.transaction() as con:
        con.execute(
            f"UPDATE refresh_runs SET heartbeat_at = heartbeat_at - INTERVAL {int(seconds)} SECOND WHERE run_id = ?",
            [run_id],
        )


def _status(store, run_id="run-1"):
    return store.query("SELECT status FROM refresh_runs WHERE run_id = ?", [run_id])[0][0]


def test_an_expired_lease_is_interrupted_even_though_its_pid_is_alive(store, monkeypatch):
    monkeypatch.setenv("ADSPEND_RUN_LEASE_SECONDS", "60")
    _start(store)  # pid = this (alive) process, as PID 1 would be
    assert store.query("SELECT pid FROM refresh_runs")[0][0] == os.getpid()
    _age_lease(store, 59)
    assert store.mark_interrupted_runs() == 0 and _status(store) == "running"
    _age_lease(store, 2)  # 61 s without a renewal
    assert store.mark_interrupted_runs() == 1 and _status(store) == "interrupted"
    assert "stopped before finishing" in store.runs()[0]["error"]


def test_the_lease_length_is_the_one_the_run_recorded(store, monkeypatch):
    monkeypatch.setenv("ADSPEND_RUN_LEASE_SECONDS", "600")  # the refreshing process's setting
    _start(store, owner="another-boot-id/pid:[4026532000]/1/4242")
    monkeypatch.setenv("ADSPEND_RUN_LEASE_SECONDS", "60")  # a reader configured otherwise
    _age_lease(store, 300)
    assert store.mark_interrupted_runs() == 0 and _status(store) == "running"
    _age_lease(store, 301)
    assert store.mark_interrupted_runs() == 1 and _status(store) == "interrupted"


def test_a_run_in_another_container_as_pid_1_is_judged_by_its_lease_only(store, monkeypatch):
    monkeypatch.setenv("ADSPEND_RUN_LEASE_SECONDS", "60")
    _start(store, owner="another-boot-id/pid:[4026532000]/1/4242")  # PID 1 elsewhere: no PID check here
    assert store.mark_interrupted_runs() == 0 and _status(store) == "running"
    _age_lease(store, 61)
    assert store.mark_interrupted_runs() == 1 and _status(store) == "interrupted"


def test_a_reused_pid_on_this_machine_is_not_the_run(store):
    me = process_identity()
    assert me is not None and me.split("/")[2] == str(os.getpid())
    boot, ns, pid, start = me.split("/")
    _start(store, owner=f"{boot}/{ns}/{pid}/{int(start) - 1}")  # same PID, another process
    assert store.mark_interrupted_runs() == 1 and _status(store) == "interrupted"


def test_a_live_run_of_this_process_stays_running(store):
    _start(store)
    assert store.query("SELECT owner FROM refresh_runs")[0][0] == process_identity()
    assert store.mark_interrupted_runs() == 0 and _status(store) == "running"


def test_a_run_from_before_leases_counts_from_its_start(store, monkeypatch):
    monkeypatch.setenv("ADSPEND_RUN_LEASE_SECONDS", "60")
    _start(store)
    with store.transaction() as con:
        con.execute(
            "UPDATE refresh_runs SET heartbeat_at = NULL, owner = NULL, started_at = started_at - INTERVAL 5 MINUTE"
        )
    assert store.mark_interrupted_runs() == 1 and _status(store) == "interrupted"


def test_the_lease_is_renewed_on_a_timer_and_stops_with_the_run(store):
    from service.refresh import _Lease

    _start(store)
    _age_lease(store, 3600)
    before = store.query("SELECT heartbeat_at FROM refresh_runs")[0][0]
    lease = _Lease(store, "run-1", interval=0.05).start()
    deadline = time.monotonic() + 10
    while store.query("SELECT heartbeat_at FROM refresh_runs")[0][0] == before:
        assert time.monotonic() < deadline, "the lease was never renewed"
        time.sleep(0.05)
    assert store.mark_interrupted_runs() == 0
    lease.stop()
    lease._thread.join(5)
    assert not lease._thread.is_alive()


def test_a_long_refresh_renews_its_lease_and_is_never_taken_for_dead(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    """A refresh (its own process) that takes several lease periods (a slow platform) is never
    marked interrupted by a reader meanwhile, and ends with its own status."""
    csv = tmp_path / "accounts.csv"
    csv.write_text("store_id,store_name,platform,account_id\ns1,Lease,tiktok,7100000000000011\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    # 3.5 s a request: the account lookup and the report run side by side, so the run takes a
    # little over 3.5 s, longer than its 3 s lease
    sandbox.ctx.configure({"latency_ms": {"tiktok": [3500, 3500]}})
    end = TODAY - dt.timedelta(days=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADSPEND_", "PYTEST"))}
    env.update(sandbox_env)
    env.update(
        {
            "ADSPEND_TOKEN_CACHE": os.environ["ADSPEND_TOKEN_CACHE"],
            "ADSPEND_NO_DOTENV": "1",
            "ADSPEND_RUN_LEASE_SECONDS": "3",
        }
    )
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
            (end - dt.timedelta(days=3)).isoformat(),
            "--end",
            end.isoformat(),
        ],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = SpendStore(db_path)
    marked, seen_running = 0, 0
    try:
        while proc.poll() is None:
            try:
                marked += store.mark_interrupted_runs()
                seen_running += store.query("SELECT count(*) FROM refresh_runs WHERE status = 'running'")[0][0]
            except Exception:  # the refresh holds the file for a moment
                pass
            time.sleep(0.5)  # a reader now and then, as the history page
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out, err)
    started, finished, lease = store.query("SELECT started_at, finished_at, lease_seconds FROM refresh_runs")[0]
    assert lease == 3.0  # recorded by the run; readers judge by it
    assert (finished - started).total_seconds() > 3  # the run outlived its lease several times over
    assert seen_running > 0 and marked == 0
    assert [s for (s,) in store.query("SELECT status FROM refresh_runs")] == ["ok"]
