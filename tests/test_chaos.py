"""Chaos: 50 stores x all nine platforms refreshed while the sandbox injects random faults.

Faults at a fixed seed and a 20% rate: 429 with and without Retry-After, in-body throttle codes,
5xx, hung connections past the client timeout, truncated and malformed bodies, expired tokens,
report jobs that fail or never finish. After a clean first refresh, the platforms restate every
day (generation 1) and a full refresh runs under chaos. Every store x platform must end either
``ok`` with exactly the sandbox's new totals, or ``failed`` with a reason and, day by day, the
earlier figure kept wherever the new fetch failed: never a wrong number, never a silent zero.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from fetchers.specs import PLATFORM_IDS, SPECS

# timing-sensitive (deadlines, kills, locks): run alone, not beside other tests (scripts/test.sh)
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=9)  # 10 days: one window per account on every platform
N_STORES = 50
CENT = Decimal("0.01")


def _account_ids(i: int) -> dict[str, str]:
    """Store i's account on each platform, in each platform's real id form (stored form). Every id
    ends in 7, so none ends in a sandbox currency code: all USD, no exchange rates involved."""
    n = f"{i:03d}7"
    return {
        "meta": f"100010{n}",
        "google": f"123400{n}",
        "tiktok": f"710000000000{n}",
        "linkedin": f"urn:li:sponsoredAccount:6{n}",
        "amazon": f"331245670{n}",
        "microsoft": f"4100{n}",
        "snapchat": f"8f2a6c1e-0000-4000-8000-00000000{n}",
        "pinterest": f"5490000{n}",
        "reddit": f"a2_chaos{n}",
    }


STORES = {f"c{i:02d}": _account_ids(i) for i in range(1, N_STORES + 1)}


@pytest.fixture
def chaos_env(monkeypatch):
    """The sandbox in its own process (`cli.py sandbox`), so it and the refresh use both cores; a
    local, unserved ``Sandbox`` answers the exact totals (its data is deterministic)."""
    from sandbox.credentials import sandbox_env
    from sandbox.server import Sandbox

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "sandbox", "--port", "0"],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        for k, v in sandbox_env(url).items():
            monkeypatch.setenv(k, v)
        remote = Remote(url)
        timeout = client_timeout(remote)
        monkeypatch.setenv("ADSPEND_HTTP_TIMEOUT", f"{timeout:.3f}")
        monkeypatch.setenv("ADSPEND_REPORT_DEADLINE_SECONDS", f"{8 * timeout:.3f}")
        monkeypatch.setenv("ADSPEND_RETRY_BASE_SECONDS", "0.01")
        for s in SPECS.values():
            monkeypatch.setenv(s.rpm_var, "1000000")
        # a hung connection outlasts the client's timeout twice over, whatever the timeout is
        # reports done on their second poll (the standalone sandbox's default is by time, 1 s)
        remote.configure({"hang_seconds": 2 * timeout, "report_polls_needed": 2, "report_seconds": None})
        yield remote, Sandbox()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def client_timeout(remote, samples: int = 15) -> float:
    """The refresh's HTTP timeout for this run, from a measured baseline rather than a constant:
    the sandbox's round trip right now (its slowest of ``samples`` unfaulted requests), times 20,
    and never under 0.5 s. On an idle machine that is 0.5 s; on a machine busy with other tests it
    grows with the round trip, so a slow but healthy answer is not taken for a hung one."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        remote.stats()
        times.append(time.perf_counter() - t0)
    return max(0.5, 20 * max(times))


class Remote:
    """The control endpoints of a sandbox running in another process."""

    def __init__(self, url: str):
        self.url = url

    def _call(self, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method="POST" if body is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def configure(self, cfg: dict) -> None:
        assert self._call("/_sandbox/config", cfg) == {"ok": True}

    def stats(self) -> dict:
        return self._call("/_sandbox/stats")


def _import(tmp_path, run_cli):
    csv = tmp_path / "chaos.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id\n"
        + "".join(f"{sid},Chaos {sid},{p},{a}\n" for sid, accs in STORES.items() for p, a in accs.items())
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def _refresh(run_cli):
    return run_cli("refresh", "--all", "--start", START.isoformat(), "--end", END.isoformat(), "--full", "--json")


def _expected_days(sandbox, platform, account) -> dict[dt.date, Decimal]:
    doc = sandbox.expected_total(platform, account, START, END)
    return {dt.date.fromisoformat(d): Decimal(v) for d, v in doc["days"].items()}


def _stored(db_path):
    from storage.db import SpendStore

    store = SpendStore(db_path)
    days = {
        (p, a, d): amt
        for p, a, d, amt in store.query(
            "SELECT platform, account_id, day, amount FROM daily_spend WHERE day BETWEEN ? AND ?", [START, END]
        )
    }
    failed = {
        (p, a, d): err
        for p, a, d, err in store.query(
            "SELECT platform, account_id, day, error FROM fetch_failures WHERE day BETWEEN ? AND ?", [START, END]
        )
    }
    return days, failed


def _seed_earlier_data(db_path, sandbox) -> dict:
    """What a first clean refresh stores (every day of every account, exactly the sandbox's
    generation-0 figures), written straight into the store: the chaos run's "earlier data"."""
    from sandbox import data
    from storage.db import SpendStore, WindowWrite

    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    old = {(p, a): _expected_days(sandbox, p, a) for accs in STORES.values() for p, a in accs.items()}
    SpendStore(db_path).write_windows(
        [
            WindowWrite(p, a, START, END, per_day, data.account_currency(a), "seed", now)
            for (p, a), per_day in old.items()
        ]
    )
    return old


def test_chaos_every_platform_ok_and_exact_or_failed_with_reason(tmp_path, run_cli, chaos_env, db_path):
    remote, sandbox = chaos_env
    _import(tmp_path, run_cli)
    old = _seed_earlier_data(db_path, sandbox)

    # every platform restates every day (generation 1); a full refresh under chaos
    restate = {"restate": {p: {"from": START.isoformat(), "generation": 1} for p in PLATFORM_IDS}}
    remote.configure({**restate, "chaos": {"seed": 20260314, "rate": 0.2}})
    sandbox.ctx.configure(restate)
    r = _refresh(run_cli)
    assert r.returncode in (0, 1), r
    assert "Traceback" not in r.stderr
    doc = r.json()
    results = {(x["store_id"], x["platform"]): x for x in doc["results"]}
    assert len(results) == N_STORES * len(PLATFORM_IDS)
    new = {(p, a): _expected_days(sandbox, p, a) for accs in STORES.values() for p, a in accs.items()}
    assert all(new[k] != old[k] for k in new)  # the restatement really changed every account
    days, failed = _stored(db_path)
    # every day of every account is still there (nothing deleted), and holds either the new figure
    # (fetched in this run) or, exactly where this run's fetch failed, the earlier one
    assert set(days) == {(p, a, d) for (p, a), per_day in new.items() for d in per_day}
    statuses = Counter()
    for sid, accs in STORES.items():
        spend = run_cli("spend", "--store", sid, "--start", START.isoformat(), "--end", END.isoformat(), "--json")
        assert spend.returncode == 0, spend
        report = spend.json()
        for p, a in accs.items():
            res = results[(sid, p)]
            statuses[(p, res["status"])] += 1
            assert res["status"] in ("ok", "failed"), res
            per_day_new, per_day_old = new[(p, a)], old[(p, a)]
            pl = report["platforms"][p]
            acc = next(x for x in pl["accounts"] if x["account_id"] == a)
            if res["status"] == "ok":
                assert res["error"] is None
                for d, v in per_day_new.items():
                    assert (p, a, d, days[(p, a, d)]) == (p, a, d, v)
                    assert (p, a, d) not in failed
                exact = sum(per_day_new.values(), Decimal(0))
                assert (p, pl["status"], acc["spend"]) == (p, "ok", str(exact.quantize(CENT)))
            else:
                assert res["error"] and res["error"].strip(), res
                assert res["accounts"][0]["error"], res
                for d in per_day_new:
                    want = per_day_old[d] if (p, a, d) in failed else per_day_new[d]
                    assert (p, a, d, days[(p, a, d)]) == (p, a, d, want)
                assert any((p, a, d) in failed for d in per_day_new)
                # the report says failed, with the reason, and still shows the figures it has
                assert pl["status"] == "failed" and pl.get("error"), pl
                kept = sum((days[(p, a, d)] for d in per_day_new), Decimal(0))
                assert (p, acc["spend"]) == (p, str(kept.quantize(CENT)))
                assert report["complete"] is False
    # chaos reached every platform, and the product still got most of it right
    oks = sum(n for (_, st), n in statuses.items() if st == "ok")
    assert oks + sum(n for (_, st), n in statuses.items() if st == "failed") == N_STORES * len(PLATFORM_IDS)
    assert oks > N_STORES * len(PLATFORM_IDS) // 2, statuses
    assert {p for (p, st) in statuses if st == "ok"} == set(PLATFORM_IDS), statuses
    assert any(st == "failed" for (_, st) in statuses), statuses
    assert sum(remote.stats()["throttled"].values()) > 0


def _fault_sequence(seed: int, platform: str, account: str, n: int) -> list:
    from sandbox.common import CHAOS_KINDS, Context

    ctx = Context()
    ctx.configure({"chaos": {"seed": seed, "rate": 0.2, "token_min_uses": 0}})
    return [ctx.take_fault(platform, account, CHAOS_KINDS) for _ in range(n)]


def test_chaos_is_deterministic_per_seed_and_account_whatever_the_interleaving():
    from sandbox.common import CHAOS_KINDS, Context

    a = _fault_sequence(7, "tiktok", "7100000000000001", 200)
    assert a == _fault_sequence(7, "tiktok", "7100000000000001", 200)
    assert a != _fault_sequence(8, "tiktok", "7100000000000001", 200)
    # interleaving another account's draws does not change this account's sequence
    ctx = Context()
    ctx.configure({"chaos": {"seed": 7, "rate": 0.2, "token_min_uses": 0}})
    mixed = []
    for _ in range(200):
        ctx.take_fault("tiktok", "7100000000000002", CHAOS_KINDS)
        mixed.append(ctx.take_fault("tiktok", "7100000000000001", CHAOS_KINDS))
    assert mixed == a
    # about 20% of draws are faults, of every kind
    long = _fault_sequence(3, "google", "1234567001", 5000)
    faults = [k for k in long if k]
    assert 900 <= len(faults) <= 1100
    assert set(faults) == set(CHAOS_KINDS)
    # a platform without a refresh grant is never sent expired_token by chaos (it could not recover)
    from sandbox.server import Sandbox

    sb = Sandbox()
    assert {"meta", "tiktok"} <= sb.ctx.static_token_platforms
    sb.ctx.configure({"chaos": {"seed": 3, "rate": 1.0}})
    assert "expired_token" not in {sb.ctx.take_fault("meta", "1", CHAOS_KINDS) for _ in range(300)}
    # a token just granted is not expired by chaos; one that has served a while can be
    sb.ctx.configure({"chaos": {"seed": 3, "rate": 1.0, "kinds": ["expired_token"]}})
    assert sb.ctx.take_fault("google", "1", CHAOS_KINDS, token="fresh") is None
    sb.ctx._token_uses["old"] = 200
    assert sb.ctx.take_fault("google", "1", CHAOS_KINDS, token="old") == "expired_token"
    with pytest.raises(ValueError):
        sb.ctx.configure({"chaos": {"seed": 1, "rate": 0.2, "kinds": ["nonsense"]}})


def test_chaos_reaches_every_platform(sandbox, sandbox_env, monkeypatch, tmp_path, run_cli):
    """At rate 1 with only 5xx, every platform's API answers 5xx and the refresh fails with a reason."""
    monkeypatch.setenv("ADSPEND_RETRY_BASE_SECONDS", "0.001")
    csv = tmp_path / "one.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id\n" + "".join(f"s1,One,{p},{a}\n" for p, a in _account_ids(1).items())
    )
    assert run_cli("accounts", "import", csv).returncode == 0
    sandbox.ctx.configure({"chaos": {"seed": 1, "rate": 1.0, "kinds": ["5xx"]}})
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json")
    assert r.returncode == 1, r
    out = {x["platform"]: x for x in r.json()["results"]}
    assert {p: x["status"] for p, x in out.items()} == {p: "failed" for p in PLATFORM_IDS}
    assert all(x["error"] for x in out.values())
    assert set(sandbox.ctx.requests) == set(PLATFORM_IDS)
    doc = json.loads(
        run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").stdout
    )
    assert {p: (x["status"], bool(x.get("error"))) for p, x in doc["platforms"].items()} == {
        p: ("failed", True) for p in PLATFORM_IDS
    }


def test_the_client_timeout_follows_the_measured_round_trip():
    """Idle: the 0.5 s floor. Slow (a 60 ms round trip): 20 times the slowest sample."""

    class Fake:
        def __init__(self, delay):
            self.delay = delay

        def stats(self):
            time.sleep(self.delay)
            return {}

    assert client_timeout(Fake(0.0), samples=3) == 0.5
    slow = client_timeout(Fake(0.06), samples=3)
    assert 1.2 <= slow < 2.0
