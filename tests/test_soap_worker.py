"""Microsoft's SDK in its worker process (fetchers/soap_worker.py): the same answers, verdicts and
wire marks as in-process, and a worker that dies is replaced."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time

import httpx
import pytest

from fetchers import microsoft as ms
from fetchers.base import FetchError
from fetchers.soap_worker import RemotePool, RemoteVerdict, WorkerGone, plain

ACCOUNT = "41000978"  # EUR


@pytest.fixture(scope="module")
def server():
    from sandbox.server import SandboxServer

    with SandboxServer(0) as s:
        yield s


@pytest.fixture
def env(server):
    from sandbox.credentials import sandbox_env

    server.ctx.reset()
    return sandbox_env(server.url, ["microsoft"])


def _creds(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith("MICROSOFT_") and not k.startswith("MICROSOFT_ADS_")}


def _token(env) -> str:
    c = _creds(env)
    r = httpx.post(
        env["MICROSOFT_ADS_TOKEN_URL"],
        data={
            "grant_type": "refresh_token",
            "client_id": c["MICROSOFT_CLIENT_ID"],
            "client_secret": c["MICROSOFT_CLIENT_SECRET"],
            "refresh_token": c["MICROSOFT_REFRESH_TOKEN"],
            "scope": "https://ads.microsoft.com/msads.manage offline_access",
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def remote(env):
    pool = RemotePool(_creds(env), env["MICROSOFT_ADS_API_BASE_URL"], 2, 60)
    yield pool
    pool.close()


def test_answers_come_back_as_the_sdk_gave_them(env, remote):
    token = _token(env)
    local = ms.SessionPool(_creds(env), env["MICROSOFT_ADS_API_BASE_URL"], 1)
    want = local.call("get_account", token, ACCOUNT, lambda: None)
    got = remote.call("get_account", token, ACCOUNT, lambda: None)
    assert vars(got) == vars(plain(want))
    assert ms.parse_account(got, ACCOUNT) == ms.parse_account(want, ACCOUNT)
    assert ms.parse_account(got, ACCOUNT).currency == "EUR"
    end = dt.date.today() - dt.timedelta(days=40)
    request_id = remote.call(
        "submit", token, ACCOUNT, lambda: None, end - dt.timedelta(days=6), end, "BrusselsCopenhagenMadridParis"
    )
    assert isinstance(request_id, str) and request_id
    status = remote.call("poll", token, ACCOUNT, lambda: None, request_id)
    assert ms.parse_poll_status(status, request_id).state in ("pending", "done")


def test_the_wire_mark_comes_before_the_answer_in_the_callers_context(env, remote):
    token = _token(env)
    who = contextvars.ContextVar("who", default="nobody")
    who.set("this call")
    seen: list = []
    result = remote.call(
        "get_account", token, ACCOUNT, lambda: seen.append((who.get(), threading.current_thread().name))
    )
    seen.append("answer")
    assert seen[0][0] == "this call" and seen[-1] == "answer" and len(seen) == 2
    assert result.Id is not None


def test_sdk_errors_carry_the_in_process_verdict_and_fetch_errors_their_kind(env, remote):
    local = ms.SessionPool(_creds(env), env["MICROSOFT_ADS_API_BASE_URL"], 1)
    with pytest.raises(Exception) as here:
        local.call("get_account", "not-a-token", ACCOUNT, lambda: None)
    with pytest.raises(RemoteVerdict) as there:
        remote.call("get_account", "not-a-token", ACCOUNT, lambda: None)
    assert ms.soap_verdict(there.value) == ms.soap_verdict(here.value)
    assert ms.soap_verdict(there.value).action in ("refresh", "fail")

    broken = RemotePool({**_creds(env), "MICROSOFT_DEVELOPER_TOKEN": ""}, env["MICROSOFT_ADS_API_BASE_URL"], 1, 60)
    try:
        with pytest.raises(FetchError) as err:
            broken.call("get_account", _token(env), ACCOUNT, lambda: None)
        assert err.value.kind == "auth" and "MICROSOFT_DEVELOPER_TOKEN" in err.value.message
    finally:
        broken.close()


def test_a_worker_that_dies_fails_its_calls_as_retryable_and_is_replaced(env, server, remote):
    token = _token(env)
    assert remote.call("get_account", token, ACCOUNT, lambda: None).Id is not None
    first = remote._proc
    server.ctx.configure({"faults": [{"platform": "microsoft", "kind": "hang", "count": 1}], "hang_seconds": 5})
    killer = threading.Timer(0.5, first.kill)
    killer.start()
    t0 = time.monotonic()
    with pytest.raises(WorkerGone) as gone:  # a call in flight when the worker died
        remote.call("get_account", token, ACCOUNT, lambda: None)
    assert time.monotonic() - t0 < 4  # not left waiting for the hung answer
    killer.join()
    assert ms.soap_verdict(gone.value).action == "retry"
    assert remote.call("get_account", token, ACCOUNT, lambda: None).Id is not None  # a new worker
    assert remote._proc is not first and remote._proc.poll() is None


def test_the_worker_gets_no_secret_on_its_command_line(env, remote):
    remote.call("get_account", _token(env), ACCOUNT, lambda: None)
    args = " ".join(remote._proc.args)
    assert args.endswith("-m fetchers.soap_worker")
    assert not any(v and v in args for v in _creds(env).values())


def test_start_runs_the_worker_before_any_call_and_the_first_call_uses_it(env, remote):
    assert remote._proc is None
    remote.start()
    proc = remote._proc
    assert proc is not None and proc.poll() is None
    remote.start()  # already running: no second worker
    assert remote._proc is proc
    assert remote.call("get_account", _token(env), ACCOUNT, lambda: None).Id is not None
    assert remote._proc is proc


def test_a_refresh_starts_the_worker_before_microsofts_first_call_and_not_when_nothing_is_due(
    tmp_path, run_cli, sandbox, sandbox_env, monkeypatch
):
    """``PlatformSpec.warm_up``: the SDK's import and WSDL parses overlap the run's start instead of
    holding up its first SOAP call; a run with no Microsoft day to fetch starts nothing."""
    sandbox.ctx.configure({"report_polls_needed": 1})
    events: list[str] = []
    warm_up, call = ms.MicrosoftFetcher.warm_up, RemotePool.call
    monkeypatch.setattr(
        ms.MicrosoftFetcher, "warm_up", lambda self, api: events.append("warm up") or warm_up(self, api)
    )
    monkeypatch.setattr(RemotePool, "call", lambda self, method, *a: events.append(method) or call(self, method, *a))
    csv = tmp_path / "s1.csv"
    csv.write_text(f"store_id,store_name,platform,account_id\ns1,Acme,microsoft,{ACCOUNT}\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    end = dt.date.today() - dt.timedelta(days=40)  # settled: past Microsoft's 30 restated days
    period = ("--store", "s1", "--platform", "microsoft", "--start", end - dt.timedelta(days=6), "--end", end)
    r = run_cli("refresh", *period)
    assert r.returncode == 0, r
    assert events == ["warm up", "get_account", "submit", "poll"]
    events.clear()
    r = run_cli("refresh", *period)  # every day stored and settled: nothing to fetch
    assert r.returncode == 0, r
    assert events == []
