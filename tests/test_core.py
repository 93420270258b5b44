"""The shared fetcher core: windows, money, rate budget, retries, token refresh, report jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import httpx
import pytest
import respx

from fetchers import core
from fetchers.base import AccountInfo, FetchError, JobStatus, MalformedResponse, PageRequest, Verdict
from fetchers.core import (
    OAuthRefreshAuth,
    PlatformApi,
    RateBudget,
    RetryPolicy,
    StaticTokenAuth,
    contiguous_ranges,
    default_verdict,
    fetch_pages,
    fetch_window,
    fill_zeros,
    micros_to_decimal,
    parse_decimal,
    plan_windows,
    redact,
    retry_after_seconds,
)

D = dt.date


def test_plan_windows_inclusive_and_capped():
    assert plan_windows(D(2026, 1, 1), D(2026, 3, 31), 30) == [
        (D(2026, 1, 1), D(2026, 1, 30)),
        (D(2026, 1, 31), D(2026, 3, 1)),
        (D(2026, 3, 2), D(2026, 3, 31)),
    ]
    assert plan_windows(D(2026, 1, 1), D(2026, 1, 1), 30) == [(D(2026, 1, 1), D(2026, 1, 1))]
    assert plan_windows(D(2026, 1, 1), D(2026, 1, 31), 31) == [(D(2026, 1, 1), D(2026, 1, 31))]
    with pytest.raises(ValueError):
        plan_windows(D(2026, 2, 1), D(2026, 1, 1), 30)


def test_contiguous_ranges():
    days = [D(2026, 1, 3), D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 7), D(2026, 1, 8)]
    assert contiguous_ranges(days) == [(D(2026, 1, 1), D(2026, 1, 3)), (D(2026, 1, 7), D(2026, 1, 8))]
    assert contiguous_ranges([]) == []


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("123.45", Decimal("123.45")),
        ("0", Decimal("0")),
        (17, Decimal(17)),
        (" 0.10 ", Decimal("0.10")),
        ("-1.5", Decimal("-1.5")),
    ],
)
def test_parse_decimal_exact(raw, expected):
    assert parse_decimal(raw) == expected


@pytest.mark.parametrize("raw", [1.5, "NaN", "1e3", "", "abc", None, True, "inf", "1,234.00"])
def test_parse_decimal_refuses_floats_and_junk(raw):
    with pytest.raises(MalformedResponse):
        parse_decimal(raw)


def test_micros_divided_exactly():
    assert micros_to_decimal("1234567") == Decimal("1.234567")
    assert micros_to_decimal(1) == Decimal("0.000001")
    assert micros_to_decimal(10_000_000_000_000_001) == Decimal("10000000000.000001")
    assert micros_to_decimal(1500000.0) == Decimal("1.5")
    for bad in ("1.5", 1.25, "x", None):
        with pytest.raises(MalformedResponse):
            micros_to_decimal(bad)


def test_fill_zeros_and_out_of_window():
    rows = {D(2026, 1, 2): Decimal("5.00")}
    assert fill_zeros(rows, D(2026, 1, 1), D(2026, 1, 3)) == {
        D(2026, 1, 1): Decimal(0),
        D(2026, 1, 2): Decimal("5.00"),
        D(2026, 1, 3): Decimal(0),
    }
    with pytest.raises(MalformedResponse):
        fill_zeros({D(2026, 1, 9): Decimal(1)}, D(2026, 1, 1), D(2026, 1, 3))


def test_rate_budget_spreads_requests_evenly():
    now = [100.0]
    b = RateBudget(2400, clock=lambda: now[0])  # 40/s, bursts of 5 (an eighth of a second's worth)
    step = 60 / (2400 * 0.97)  # paced at 97% of the budget
    assert b.interval == pytest.approx(step)
    waits = [b.reserve() for _ in range(8)]
    assert waits[:5] == pytest.approx([0.0] * 5)
    assert waits[5:] == pytest.approx([step, 2 * step, 3 * step])
    b1 = RateBudget(600, clock=lambda: now[0])  # 10/s: no burst at all
    assert [b1.reserve() for _ in range(3)] == pytest.approx([0.0, 0.1 / 0.97, 0.2 / 0.97])
    b2 = RateBudget(60, clock=lambda: now[0])  # 1/s, burst 1
    assert [b2.reserve() for _ in range(3)] == pytest.approx([0.0, 1 / 0.97, 2 / 0.97])
    b2.pause(10)
    assert b2.reserve() == pytest.approx(10.0)


def test_rate_budget_never_shortens_a_gap_after_a_late_release(monkeypatch):
    """A waiter that wakes late must not leave the next one a shorter gap: a bucket holding one
    request (60 a minute, half a second's worth) throttles any two arrivals closer than 1 s."""
    now = [100.0]
    late = [0.3]  # the first sleep oversleeps by 0.3 s (a busy event loop)

    async def sleep(seconds):
        now[0] += seconds + late.pop() if late else seconds

    monkeypatch.setattr(core.asyncio, "sleep", sleep)
    b = RateBudget(60, clock=lambda: now[0])
    released = []

    async def go():
        for _ in range(4):
            b.sent(await b.acquire())
            released.append(now[0])

    run(go())
    gaps = [b - a for a, b in zip(released, released[1:])]
    assert gaps == pytest.approx([1 / 0.97 + 0.3, 1 / 0.97, 1 / 0.97])


def test_rate_budget_pause_holds_back_waiters_already_asleep():
    """A pause (Retry-After) stops the waiters that reserved their slots before it, too."""
    import time as _time

    b = RateBudget(600)  # a slot every ~0.103 s
    released: list[float] = []
    paused_at: list[float] = []

    async def one(i):
        b.sent(await b.acquire())
        released.append(_time.monotonic())
        if i == 0:
            paused_at.append(_time.monotonic())
            b.pause(0.4)

    async def go():
        await asyncio.gather(*(one(i) for i in range(3)))

    run(go())
    assert len(released) == 3
    assert min(released[1:]) >= paused_at[0] + 0.4 - 0.005


def test_rate_budget_spaces_the_next_slot_from_when_a_request_really_went_out():
    now = [100.0]
    b = RateBudget(60, clock=lambda: now[0])

    async def go():
        first = await b.acquire()  # released at 100.0 ...
        waiter = asyncio.ensure_future(b.acquire())
        now[0] = 100.5
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not waiter.done()  # the first request is not on the wire yet: the next one waits
        b.sent(first, 100.4)  # ... a new connection took 0.4 s before its bytes left
        b.sent(first, 100.9)  # a second mark of the same slot changes nothing
        now[0] = 100.0 + 1 / 0.97  # the next slot's time
        return b._hold(now[0])

    assert run(go()) == pytest.approx(0.4)


def test_rate_budget_waits_for_a_slow_sdk_call_to_go_out(monkeypatch):
    """Two SDK calls whose first use builds a client (0.6 s) must not reach the platform
    together: the second slot is released only once the first call is on the wire."""
    import time as _time

    b = RateBudget(200)  # a slot every ~0.309 s, no burst: under 240 a minute, anchored
    assert b.anchored and not RateBudget(240).anchored
    out: list[float] = []

    async def call(build: float):
        slot = await b.acquire()
        await asyncio.sleep(build)  # the client is being built: not yet on the wire
        out.append(_time.monotonic())
        b.sent(slot)

    async def go():
        await asyncio.gather(call(0.6), call(0.0), call(0.0))

    run(go())
    gaps = [b - a for a, b in zip(out, out[1:])]
    assert len(out) == 3 and min(gaps) >= 0.3 / 0.97 - 0.005  # the two waiting behind it go out one by one


def test_a_budgeted_request_marks_the_moment_it_reaches_the_wire(sandbox):
    """PlatformApi.request hands httpcore a trace hook; the budget hears when the headers of each
    budgeted request start on the socket, after the connection was made."""

    class Recording(RateBudget):
        def __init__(self):
            super().__init__(60000)
            self.marks: list[float] = []

        def sent(self, slot, at=None):
            if not slot.sent:  # who marked it first: the trace hook, or the attempt's end
                self.marks.append((_time.monotonic(), sys._getframe(1).f_code.co_name))
            super().sent(slot, at)

    import sys
    import time as _time

    async def go():
        async with httpx.AsyncClient() as client:
            budget = Recording()
            api = PlatformApi(
                _Dummy(),
                client,
                base_url=sandbox.url,
                credentials={"token": "t"},
                auth=StaticTokenAuth("t"),
                budget=budget,
            )
            before = _time.monotonic()
            await api.request("GET", "/_sandbox/health")
            await api.request("GET", "/_sandbox/health", budgeted=False)
            await api.request("GET", "/_sandbox/health")
            return before, budget.marks

    before, marks = run(go())
    assert [who for _, who in marks] == ["_trace", "_trace"]
    assert before <= marks[0][0] <= marks[1][0]


def test_retry_after_forms():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(httpx.Response(429)) is None
    date = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= retry_after_seconds(httpx.Response(429, headers={"Retry-After": date})) <= 31


def test_redact_known_values_and_query_tokens():
    redact.add("s3cr3t-value-xyz")
    assert "s3cr3t" not in redact("boom s3cr3t-value-xyz here")
    assert redact("https://x/y?access_token=abc123&limit=5") == "https://x/y?access_token=[redacted]&limit=5"


class _Dummy:
    """A minimal platform for exercising the core: throttle in a 200 body = {"code": 429}."""

    platform = "dummy"
    max_days = 5
    lookback_days = 3
    day_basis = "account"
    history_days = None

    def normalize_account_id(self, raw):
        return raw

    def auth_headers(self, token):
        return {"Authorization": f"Bearer {token}"}

    def build_auth(self, creds, token_url, on_rotate):
        return StaticTokenAuth(creds["token"])

    def classify(self, resp):
        v = default_verdict(resp)
        if v.action == "ok" and resp.json().get("code") == 429:
            return Verdict("retry", "throttled", "in-body throttle")
        return v

    async def account_info(self, api, account_id):
        return AccountInfo(account_id, "USD", "UTC")

    async def fetch_daily(self, api, account, start, end):
        resp = await api.request("GET", "/spend", params={"a": account.account_id})
        return {D.fromisoformat(k): parse_decimal(v) for k, v in resp.json()["days"].items()}


def _api(client, auth=None, **kw):
    return PlatformApi(
        _Dummy(),
        client,
        base_url="https://api.test",
        credentials={},
        auth=auth or StaticTokenAuth("tok-1"),
        budget=RateBudget(60000),
        retry=RetryPolicy(max_attempts=4, base=0.001),
        **kw,
    )


def run(coro):
    return asyncio.run(coro)


@respx.mock
def test_retries_429_5xx_timeouts_and_in_body_throttle_then_ok():
    route = respx.get("https://api.test/spend").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
            httpx.ConnectTimeout("slow"),
            httpx.Response(200, json={"code": 0, "days": {"2026-01-02": "5.10"}}),
        ]
    )

    async def go():
        async with httpx.AsyncClient() as c:
            api = _api(c)
            api.retry.max_attempts = 5
            out = await fetch_window(_Dummy(), api, AccountInfo("x", "USD", "UTC"), D(2026, 1, 1), D(2026, 1, 3))
            return out, api.request_count

    out, n = run(go())
    assert out == {D(2026, 1, 1): Decimal(0), D(2026, 1, 2): Decimal("5.10"), D(2026, 1, 3): Decimal(0)}
    assert n == 4 and route.call_count == 4
    assert route.calls[-1].request.headers["Authorization"] == "Bearer tok-1"


@respx.mock
def test_gives_up_after_max_attempts_with_a_reason_never_zero():
    respx.get("https://api.test/spend").mock(return_value=httpx.Response(200, json={"code": 429}))

    async def go():
        async with httpx.AsyncClient() as c:
            return await fetch_window(_Dummy(), _api(c), AccountInfo("x", "USD", "UTC"), D(2026, 1, 1), D(2026, 1, 2))

    with pytest.raises(FetchError) as err:
        run(go())
    assert err.value.kind == "throttled"
    assert "gave up after 4 attempts" in err.value.message


@respx.mock
def test_oauth_refreshes_before_use_and_once_more_on_401_then_fails_clearly():
    token = respx.post("https://auth.test/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "at-1", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "at-2", "expires_in": 3600, "refresh_token": "rt-2"}),
            httpx.Response(200, json={"access_token": "at-3", "expires_in": 3600}),
        ]
    )
    api_route = respx.get("https://api.test/spend").mock(
        side_effect=[
            httpx.Response(401),
            httpx.Response(200, json={"code": 0, "days": {}}),
            httpx.Response(401),
            httpx.Response(401),
        ]
    )
    rotated = []

    async def go():
        async with httpx.AsyncClient() as c:
            auth = OAuthRefreshAuth(
                "dummy", "https://auth.test/token", "cid", "csecret-123", "rt-1", on_rotate=rotated.append
            )
            api = _api(c, auth=auth)
            first = await fetch_window(_Dummy(), api, AccountInfo("x", "USD", "UTC"), D(2026, 1, 1), D(2026, 1, 1))
            with pytest.raises(FetchError) as err:
                await fetch_window(_Dummy(), api, AccountInfo("x", "USD", "UTC"), D(2026, 1, 1), D(2026, 1, 1))
            return first, err.value, auth

    first, err, auth = run(go())
    assert first == {D(2026, 1, 1): Decimal(0)}
    assert token.call_count == 3
    form = dict(httpx.QueryParams(token.calls[0].request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": "cid",
        "client_secret": "csecret-123",
    }
    # 401 -> one refresh -> ok; later 401 -> one more refresh -> 401 again -> a clear auth error
    assert [c.request.headers["Authorization"] for c in api_route.calls] == [
        "Bearer at-1",
        "Bearer at-2",
        "Bearer at-2",
        "Bearer at-3",
    ]
    second_grant = dict(httpx.QueryParams(token.calls[2].request.content.decode()))
    assert second_grant["refresh_token"] == "rt-2"  # the rotated refresh token is used from then on
    assert rotated == ["rt-2"] and auth.refresh_token == "rt-2"
    assert err.kind == "auth" and "re-authorise" in err.message
    assert "csecret-123" not in err.message


@respx.mock
def test_a_401_after_another_request_refreshed_is_a_race_retried_with_the_current_token():
    # request A refreshes after a 401 and retries; meanwhile request B (simulated) refreshed again,
    # so A's fresh token was already replaced: A retries with the current token instead of failing
    # the whole platform. A fresh token refused while it is still the current one stays an auth error.
    respx.post("https://auth.test/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "at-1", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "at-2", "expires_in": 3600}),
        ]
    )
    holder = {}

    def answer(request):
        seen = request.headers["Authorization"]
        if seen == "Bearer at-2":
            holder["auth"].access_token = "at-3"  # another request of the run refreshed meanwhile
            return httpx.Response(401)
        if seen == "Bearer at-3":
            return httpx.Response(200, json={"code": 0, "days": {"2026-01-01": "4.20"}})
        return httpx.Response(401)

    api_route = respx.get("https://api.test/spend").mock(side_effect=answer)

    async def go():
        async with httpx.AsyncClient() as c:
            holder["auth"] = auth = OAuthRefreshAuth("dummy", "https://auth.test/token", "cid", "cs", "rt-1")
            return await fetch_window(
                _Dummy(), _api(c, auth=auth), AccountInfo("x", "USD", "UTC"), D(2026, 1, 1), D(2026, 1, 1)
            )

    assert run(go()) == {D(2026, 1, 1): Decimal("4.20")}
    assert [c.request.headers["Authorization"] for c in api_route.calls] == [
        "Bearer at-1",
        "Bearer at-2",
        "Bearer at-3",
    ]


@respx.mock
def test_refused_refresh_token_is_an_auth_error_without_secrets():
    respx.post("https://auth.test/token").mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))

    async def go():
        async with httpx.AsyncClient() as c:
            auth = OAuthRefreshAuth("dummy", "https://auth.test/token", "cid", "csec-999", "rt-secret-777")
            return await auth.token(c)

    with pytest.raises(FetchError) as err:
        run(go())
    assert err.value.kind == "auth" and "invalid_grant" in err.value.message
    assert "rt-secret-777" not in err.value.message and "csec-999" not in err.value.message


@respx.mock
def test_a_token_grant_is_retried_by_the_shared_call_loop():
    """429 and 5xx from a token endpoint are retried (Retry-After honoured) by the same loop as
    every API call; a grant is not an API request (not counted). One that never succeeds is an
    auth failure that says the endpoint kept failing, and shows no secret."""
    route = respx.post("https://auth.test/token").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"access_token": "at-1", "expires_in": 3600}),
        ]
    )

    async def go():
        async with httpx.AsyncClient() as c:
            auth = OAuthRefreshAuth("dummy", "https://auth.test/token", "cid", "csec-5", "rt-5")
            return await auth.token(c), auth.grants

    assert run(go()) == ("at-1", 1)
    assert route.call_count == 3
    route.side_effect = None
    route.return_value = httpx.Response(502)
    route.reset()

    with pytest.raises(FetchError) as err:
        run(go())
    assert route.call_count == 4  # RetryPolicy(max_attempts=4)
    assert err.value.kind == "auth" and "token endpoint kept failing" in err.value.message
    assert "HTTP 502" in err.value.message and "csec-5" not in err.value.message and "rt-5" not in err.value.message


def test_report_job_polls_to_done_and_resumes_by_id():
    polls = []

    async def go(deadline):
        async with httpx.AsyncClient() as c:
            api = _api(c)
            api.report.first_poll = 0.001
            submitted = []

            async def submit():
                submitted.append(1)
                return f"job-{len(submitted)}"

            async def poll(job_id):
                polls.append(job_id)
                return JobStatus("done" if len(polls) >= 3 else "pending", {"url": "u"})

            async def download(status):
                return status.detail["url"]

            return (
                await api.run_report_job(
                    submit=submit, poll=poll, download=download, resume_key="k", deadline_seconds=deadline
                ),
                submitted,
                api.jobs,
            )

    result, submitted, jobs = run(go(5))
    assert result == "u" and submitted == [1] and polls == ["job-1"] * 3
    assert jobs.get("k") is None


def _job_a(done_at: int, log: list) -> dict:
    """submit / poll / download of report job "job-A", done at its ``done_at``-th poll; each step
    is appended to ``log``."""
    n = {"polls": 0}

    async def submit():
        log.append("submit")
        return "job-A"

    async def poll(job_id):
        n["polls"] += 1
        log.append(("poll", job_id))
        return JobStatus("done" if n["polls"] >= done_at else "pending")

    async def download(status):
        log.append("download")
        return "data"

    return {"submit": submit, "poll": poll, "download": download}


def test_a_new_report_job_is_first_polled_after_the_first_wait_and_a_resumed_one_at_once(monkeypatch):
    """A report is never ready as it is asked for: a new job sleeps ``first_poll`` before its first
    poll (one request fewer a job against a platform whose reports take seconds); a job resumed by
    its kept id may be done already and is polled at once."""
    from fetchers.core import MemoryJobStore

    events: list = []
    real_sleep = asyncio.sleep

    async def sleep(seconds, *a, **k):
        events.append(("sleep", seconds))
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    jobs = MemoryJobStore()

    async def go(done_at):
        async with httpx.AsyncClient() as c:
            api = _api(c, jobs=jobs)
            api.report.first_poll = 2.0
            return await api.run_report_job(**_job_a(done_at, events), resume_key="k")

    assert run(go(2)) == "data"
    assert events == ["submit", ("sleep", 2.0), ("poll", "job-A"), ("sleep", 3.0), ("poll", "job-A"), "download"]
    events.clear()
    jobs.put("k", "job-A")  # kept by an earlier refresh
    assert run(go(1)) == "data"
    assert events == [("poll", "job-A"), "download"]


def test_report_job_deadline_keeps_id_and_next_run_resumes():
    from fetchers.core import MemoryJobStore

    jobs = MemoryJobStore()
    steps: list = []

    async def go(done_after):
        async with httpx.AsyncClient() as c:
            api = _api(c, jobs=jobs)
            api.report.first_poll = 0.01
            return await api.run_report_job(**_job_a(done_after, steps), resume_key="k", deadline_seconds=0.05)

    with pytest.raises(FetchError) as err:
        run(go(10_000))
    assert err.value.kind == "timeout" and jobs.get("k") == "job-A"
    assert run(go(1)) == "data"
    assert steps.count("submit") == 1  # the second run resumed job-A instead of submitting again
    assert jobs.get("k") is None


def test_report_job_failed_carries_reason():
    async def go():
        async with httpx.AsyncClient() as c:
            api = _api(c)

            async def submit():
                return "j"

            async def poll(job_id):
                return JobStatus("failed", message="quota exceeded")

            async def download(status):  # pragma: no cover - never reached
                return None

            return await api.run_report_job(submit=submit, poll=poll, download=download)

    with pytest.raises(FetchError) as err:
        run(go())
    assert err.value.kind == "report_failed" and "quota exceeded" in err.value.message


@respx.mock
def test_a_refused_refresh_token_is_asked_for_once_per_run():
    route = respx.post("https://auth.test/token").mock(
        return_value=httpx.Response(400, json={"error": "invalid_grant"})
    )

    async def go():
        async with httpx.AsyncClient() as c:
            auth = OAuthRefreshAuth("dummy", "https://auth.test/token", "cid", "csec", "rt-revoked")
            errors = []
            for _ in range(3):  # three accounts of the same platform
                try:
                    await auth.token(c)
                except FetchError as exc:
                    errors.append(exc.message)
            return errors

    errors = run(go())
    assert route.call_count == 1
    assert len(errors) == 3 and len(set(errors)) == 1 and "invalid_grant" in errors[0]


def test_rate_budget_releases_no_more_than_a_burst_before_it_is_on_the_wire():
    budget = RateBudget(2400)  # 40 a second, bursts of 5
    slots: list = []

    async def one():
        slots.append(await budget.acquire())

    async def go():
        tasks = [asyncio.ensure_future(one()) for _ in range(8)]
        await asyncio.sleep(0.3)  # long enough for all 8 slots by the schedule alone
        held = len(slots)
        for slot in list(slots):
            budget.sent(slot)
        await asyncio.gather(*tasks)
        return held

    assert run(go()) == 5 and len(slots) == 8


def test_rate_budget_does_not_burst_after_the_process_stalls():
    """Waiters whose slots passed while the event loop was blocked queue again instead of all
    going out together (the platform would throttle that burst)."""
    import time as _time

    budget = RateBudget(2400)  # 40 a second, bursts of 5
    sent: list[float] = []

    async def one():
        budget.sent(await budget.acquire())
        sent.append(_time.monotonic())

    async def go():
        tasks = [asyncio.ensure_future(one()) for _ in range(60)]
        await asyncio.sleep(0.1)
        _time.sleep(0.6)  # the loop stalls: ~24 slots pass meanwhile
        await asyncio.gather(*tasks)

    run(go())
    assert len(sent) == 60
    worst = max(sum(1 for t in sent if s <= t < s + 0.25) for s in sent)
    assert worst <= 10 + 5 + 5  # a quarter second's budget, a burst, a late waiter's tolerance


@pytest.mark.parametrize("raw", ["2026-01-02", " 2026-01-02 "])
def test_parse_day(raw):
    from fetchers.core import parse_day

    assert parse_day(raw, "x") == D(2026, 1, 2)


@pytest.mark.parametrize("raw", ["20260102", "2026-13-01", "2026-01-02T00:00", "1/2/2026", None, 20260102, ""])
def test_parse_day_refuses_anything_else(raw):
    from fetchers.core import parse_day

    with pytest.raises(MalformedResponse, match="row 3's date is not a YYYY-MM-DD day"):
        parse_day(raw, "row 3's date")


# --- actions, error kinds and job states are StrEnums -----------------------------------------


@pytest.mark.parametrize(
    "enum,values",
    [
        ("Action", ["ok", "retry", "refresh", "fail"]),
        (
            "ErrorKind",
            ["auth", "throttled", "server", "timeout", "malformed", "request", "report_failed", "config", "too_large"],
        ),
        ("JobState", ["pending", "done", "failed"]),
    ],
)
def test_enums_keep_their_stored_strings(enum, values):
    import fetchers.base as base

    members = list(getattr(base, enum))
    assert [m.value for m in members] == values
    assert [f"{m}" for m in members] == values and members == values  # equal to, and shown as, the string


def test_verdicts_errors_and_job_states_take_strings_and_refuse_typos():
    from fetchers.base import Action, ErrorKind, JobState

    v = Verdict("retry", "throttled", "HTTP 429", 3.0)
    assert v.action is Action.RETRY and v.kind is ErrorKind.THROTTLED and v.action == "retry"
    assert Verdict.ok().action is Action.OK and Verdict.ok().kind == ""
    err = FetchError("config", "x")
    assert err.kind is ErrorKind.CONFIG and err.platform_wide and not FetchError(ErrorKind.SERVER, "y").platform_wide
    assert MalformedResponse("z").kind is ErrorKind.MALFORMED
    assert JobStatus("done", {"url": "u"}).state is JobState.DONE
    for bad in (
        lambda: Verdict("retyr"),
        lambda: Verdict("fail", "nope"),
        lambda: FetchError("authz", "m"),
        lambda: JobStatus("finished"),
    ):
        with pytest.raises(ValueError):
            bad()


# --- one retry/classify loop for HTTP and non-HTTP calls (an SDK's SOAP call) -----------------


class _SoapFault(Exception):
    """Stands in for an SDK's fault: ``code`` says what the platform answered."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _soap_verdict(exc):
    if not isinstance(exc, _SoapFault):
        return None  # not ours to sort: raised as it is
    return {
        "throttled": Verdict("retry", "throttled", "fault 117 CallRateExceeded"),
        "transient": Verdict("retry", "server", "fault 0 InternalError"),
        "expired": Verdict("refresh", "auth", "fault 109 AuthenticationTokenExpired"),
        "refused": Verdict("fail", "auth", "fault 105 InvalidCredentials"),
        "bad": Verdict("fail", "request", "fault 2011 InvalidCustomDateRangeEnd"),
    }[exc.code]


class _Budget(RateBudget):
    def __init__(self):
        super().__init__(60000)
        self.paused: list[float] = []

    def pause(self, seconds):
        self.paused.append(seconds)


# answers in order ("ok" is a result; anything else a fault, or an exception to raise) ->
# (result or (kind, words in the message)), attempts sent, token grants, throttled count, budget paused
SOAP_CASES = [
    ("throttle then success", ["throttled", "ok"], "answer", 2, 1, 1, 1),
    ("two throttles then success", ["throttled", "throttled", "ok"], "answer", 3, 1, 2, 2),
    ("transient fault then success", ["transient", "ok"], "answer", 2, 1, 0, 0),
    ("expired token: one refresh, then success", ["expired", "ok"], "answer", 2, 2, 0, 0),
    ("credentials refused: auth at once", ["refused"], ("auth", "dummy: fault 105 InvalidCredentials"), 1, 1, 0, 0),
    ("request refused: request at once", ["bad"], ("request", "fault 2011"), 1, 1, 0, 0),
    (
        "expired again after the refresh: auth naming the refresh",
        ["expired", "expired"],
        ("auth", "fault 109", "refused again after a refresh"),
        2,
        2,
        0,
        0,
    ),
    (
        "throttled on every attempt: gives up as throttled",
        ["throttled"] * 4,
        ("throttled", "gave up after 4 attempts", "fault 117"),
        4,
        1,
        4,
        4,
    ),
    (
        "a FetchError from the call goes through as it is",
        [FetchError("config", "dummy: the customer id is not digits")],
        ("config", "not digits"),
        1,
        1,
        0,
        0,
    ),
]


@respx.mock
@pytest.mark.parametrize(
    "name,answers,expected,attempts,grants,throttled,paused", SOAP_CASES, ids=[c[0] for c in SOAP_CASES]
)
def test_shared_loop_on_a_soap_like_call(name, answers, expected, attempts, grants, throttled, paused):
    token_route = respx.post("https://auth.test/token").mock(
        side_effect=[httpx.Response(200, json={"access_token": f"at-{i}", "expires_in": 3600}) for i in range(1, 4)]
    )
    tokens_seen: list[str | None] = []
    queue = list(answers)

    async def go():
        async with httpx.AsyncClient() as c:
            auth = OAuthRefreshAuth("dummy", "https://auth.test/token", "cid", "cs", "rt-1")
            api = _api(c, auth=auth)
            api.budget = _Budget()

            async def send(token):
                tokens_seen.append(token)
                answer = queue.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                if answer != "ok":
                    raise _SoapFault(answer)
                return "answer"

            try:
                return await api.call(send, on_error=_soap_verdict), api
            except FetchError as exc:
                return exc, api

    out, api = run(go())
    if isinstance(expected, tuple):
        assert isinstance(out, FetchError) and out.kind == expected[0]
        for words in expected[1:]:
            assert words in out.message
    else:
        assert out == expected
    assert api.request_count == len(tokens_seen) == attempts
    assert token_route.call_count == grants
    assert api.throttled_count == throttled and len(api.budget.paused) == paused
    if "refresh" in name:
        assert tokens_seen == ["at-1", "at-2"]  # the retry carries the refreshed token


def test_shared_loop_lets_exceptions_it_cannot_sort_through_and_classifies_results():
    async def go():
        async with httpx.AsyncClient() as c:
            api = _api(c)

            async def broken(token):
                raise KeyError("a bug, not a platform answer")

            with pytest.raises(KeyError):
                await api.call(broken, on_error=_soap_verdict)
            answers = iter([{"status": "busy"}, {"status": "ok"}])

            async def send(token):
                assert token == "tok-1"
                return next(answers)

            def verdict(r):
                return Verdict("ok") if r["status"] == "ok" else Verdict("retry", "server", "busy")

            return await api.call(send, classify=verdict), api.request_count

    assert run(go()) == ({"status": "ok"}, 3)


# --- one paging loop behind every paged report ------------------------------------------------


class _CursorPages:
    """Cursor paging (Meta's style): the same request with ``after``."""

    what = "dummy cursor report"

    def first(self):
        return PageRequest("GET", "/pages", params={"limit": "2"})

    def read(self, body):
        days = {D.fromisoformat(k): (None if v == "-" else parse_decimal(v)) for k, v in body["days"].items()}
        after = body.get("after")
        return days, (PageRequest("GET", "/pages", params={"limit": "2", "after": after}) if after else None)


class _NumberPages:
    """Page-number paging (TikTok's style): ``page`` up to ``total_page``."""

    what = "dummy numbered report"

    def __init__(self):
        self.page = 1

    def first(self):
        return PageRequest("GET", "/pages", params={"page": "1"})

    def read(self, body):
        days = {D.fromisoformat(k): parse_decimal(v) for k, v in body["days"].items()}
        if self.page >= body["total_page"]:
            return days, None
        self.page += 1
        return days, PageRequest("GET", "/pages", params={"page": str(self.page)})


class _NextUrlPages:
    """Next-URL paging (Reddit's style): a POST of the same body to the URL the page names."""

    what = "dummy next-url report"

    def first(self):
        return PageRequest("POST", "/pages", params={"page.size": "2"}, json={"q": 1})

    def read(self, body):
        days = {D.fromisoformat(k): parse_decimal(v) for k, v in body["days"].items()}
        return days, (PageRequest("POST", body["next"], json={"q": 1}) if body.get("next") else None)


class _PlainDummy(_Dummy):
    def classify(self, resp):
        return default_verdict(resp)


def _pages(*bodies):
    return [httpx.Response(200, json=b) if isinstance(b, (dict, list)) else httpx.Response(200, text=b) for b in bodies]


# paginator, answers, max pages -> the days (or the error's words), the requests' (method, query) in order
PAGING_CASES = [
    (
        "cursor: three pages merged exactly",
        _CursorPages,
        _pages(
            {"days": {"2026-01-01": "1.10"}, "after": "C1"},
            {"days": {"2026-01-02": "0.01"}, "after": "C2"},
            {"days": {"2026-01-03": "1000000.99", "2026-01-04": "-"}},
        ),
        10,
        {D(2026, 1, 1): Decimal("1.10"), D(2026, 1, 2): Decimal("0.01"), D(2026, 1, 3): Decimal("1000000.99")},
        [("GET", "limit=2"), ("GET", "limit=2&after=C1"), ("GET", "limit=2&after=C2")],
    ),
    (
        "page number: to total_page",
        _NumberPages,
        _pages({"days": {"2026-01-01": "2"}, "total_page": 2}, {"days": {"2026-01-05": "3.5"}, "total_page": 2}),
        10,
        {D(2026, 1, 1): Decimal(2), D(2026, 1, 5): Decimal("3.5")},
        [("GET", "page=1"), ("GET", "page=2")],
    ),
    (
        "next url: follows it with the same body",
        _NextUrlPages,
        _pages({"days": {"2026-01-01": "7"}, "next": "/pages?page.token=t2"}, {"days": {}}),
        10,
        {D(2026, 1, 1): Decimal(7)},
        [("POST", "page.size=2"), ("POST", "page.token=t2")],
    ),
    (
        "a cursor that repeats is a loop",
        _CursorPages,
        _pages({"days": {}, "after": "C1"}, {"days": {}, "after": "C1"}),
        10,
        "page 3 repeats an earlier page's request",
        [("GET", "limit=2"), ("GET", "limit=2&after=C1")],
    ),
    (
        "past the page cap",
        _NumberPages,
        _pages(*({"days": {}, "total_page": 99} for _ in range(3))),
        3,
        "paging did not end after 3 pages",
        [("GET", "page=1"), ("GET", "page=2"), ("GET", "page=3")],
    ),
    (
        "a day on two pages",
        _CursorPages,
        _pages({"days": {"2026-01-01": "1"}, "after": "C1"}, {"days": {"2026-01-01": "1"}}),
        10,
        "2026-01-01 appears on two pages",
        [("GET", "limit=2"), ("GET", "limit=2&after=C1")],
    ),
    ("a body that is not JSON", _CursorPages, _pages("<html>maintenance</html>"), 10, "not JSON", [("GET", "limit=2")]),
    (
        "a body without the documented shape",
        _NumberPages,
        _pages(
            {"days": {}},
        ),
        10,
        "dummy numbered report: page 1 does not have the documented shape (KeyError)",
        [("GET", "page=1")],
    ),
    (
        "a body of the wrong type",
        _NextUrlPages,
        _pages([1, 2]),
        10,
        "dummy next-url report: page 1 does not have the documented shape (TypeError)",
        [("POST", "page.size=2")],
    ),
]


@respx.mock
@pytest.mark.parametrize(
    "name,paginator,answers,max_pages,expected,requests", PAGING_CASES, ids=[c[0] for c in PAGING_CASES]
)
def test_fetch_pages(name, paginator, answers, max_pages, expected, requests):
    route = respx.route(url__startswith="https://api.test/pages").mock(side_effect=answers)

    async def go():
        async with httpx.AsyncClient() as c:
            api = PlatformApi(
                _PlainDummy(),
                c,
                base_url="https://api.test",
                credentials={},
                auth=StaticTokenAuth("tok-1"),
                budget=RateBudget(60000),
            )
            return await fetch_pages(api, paginator(), max_pages)

    if isinstance(expected, str):
        with pytest.raises(MalformedResponse) as err:
            run(go())
        assert expected in err.value.message and err.value.kind == "malformed"
    else:
        assert run(go()) == expected
    assert [(c.request.method, c.request.url.query.decode()) for c in route.calls] == requests
    if paginator is _NextUrlPages:
        assert {c.request.content for c in route.calls} == {b'{"q":1}'}


@pytest.mark.parametrize("platform", ["meta", "tiktok", "reddit"])
def test_every_paging_platform_goes_through_the_core_loop(platform, monkeypatch):
    import importlib

    from fetchers import core, get_fetcher

    module, seen = importlib.import_module(f"fetchers.{platform}"), []

    async def spy(api, pages, max_pages=core.DEFAULT_MAX_PAGES):
        seen.append((pages.what, max_pages, pages.first().method))
        return {}

    monkeypatch.setattr(module, "fetch_pages", spy)
    monkeypatch.setattr(module, "common_params", lambda api: asyncio.sleep(0, {}), raising=False)
    account = AccountInfo({"meta": "1", "tiktok": "7000000000001", "reddit": "a2_x"}[platform], "USD", "UTC")
    assert run(get_fetcher(platform).fetch_daily(object(), account, D(2020, 1, 1), D(2020, 1, 2))) == {}
    assert seen == [
        (
            {"meta": "meta insights", "tiktok": "tiktok report", "reddit": "reddit report for a2_x"}[platform],
            module.MAX_PAGES,
            {"reddit": "POST"}.get(platform, "GET"),
        )
    ]


# --- required credentials: said once (fetchers/specs.py), checked by one function -------------

# the required keys each fetcher's auth reads (the rest are read by the SDK session or the requests)
AUTH_READS = {
    "meta": ["META_ACCESS_TOKEN"],
    "tiktok": ["TIKTOK_ACCESS_TOKEN"],
    "linkedin": ["LINKEDIN_ACCESS_TOKEN"],
    "google": ["GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"],
    "amazon": ["AMAZON_CLIENT_ID", "AMAZON_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN"],
    "microsoft": ["MICROSOFT_CLIENT_ID", "MICROSOFT_REFRESH_TOKEN"],
    "snapchat": ["SNAPCHAT_CLIENT_ID", "SNAPCHAT_CLIENT_SECRET", "SNAPCHAT_REFRESH_TOKEN"],
    "pinterest": ["PINTEREST_APP_ID", "PINTEREST_APP_SECRET", "PINTEREST_REFRESH_TOKEN"],
    "reddit": ["REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_REFRESH_TOKEN"],
}


@pytest.mark.parametrize("platform", sorted(AUTH_READS))
def test_required_credentials_come_from_the_spec(platform):
    from fetchers import SPECS, get_fetcher
    from fetchers.core import missing_credentials
    from sandbox.credentials import FAKE_CREDENTIALS

    required = SPECS[platform].required
    only_required = {k: v for k, v in FAKE_CREDENTIALS[platform].items() if k in required}
    assert missing_credentials(platform, only_required) == ()
    assert missing_credentials(platform, {}) == required
    assert missing_credentials(platform, {**only_required, required[-1]: "  "}) == (required[-1],)
    fetcher = get_fetcher(platform)
    fetcher.build_auth(only_required, "https://auth.test/token", None)  # no optional key is needed
    for key in required:
        blank = {**only_required, key: " "}
        if key not in AUTH_READS[platform]:
            fetcher.build_auth(blank, "https://auth.test/token", None)
            continue
        with pytest.raises(FetchError) as err:
            fetcher.build_auth(blank, "https://auth.test/token", None)
        assert (err.value.kind, err.value.message) == (
            "auth",
            f"{platform}: {key} is not set; add it to the environment or the secret store",
        )


def test_only_required_credentials_are_read_as_required():
    from fetchers.core import credential

    assert credential("microsoft", {"MICROSOFT_CUSTOMER_ID": " 123 "}, "MICROSOFT_CUSTOMER_ID") == "123"
    with pytest.raises(ValueError, match="MICROSOFT_CLIENT_SECRET is not one of microsoft's required"):
        credential("microsoft", {"MICROSOFT_CLIENT_SECRET": "x"}, "MICROSOFT_CLIENT_SECRET")


def test_a_blank_required_credential_leaves_the_platform_not_configured(tmp_path):
    from service.config import load_settings, platform_config

    settings = load_settings(
        environ={"REDDIT_CLIENT_ID": "cid", "REDDIT_CLIENT_SECRET": "   ", "REDDIT_REFRESH_TOKEN": "rt"}, root=tmp_path
    )
    cfg = platform_config(settings, "reddit")
    assert (cfg.mode, cfg.missing) == ("not_configured", ("REDDIT_CLIENT_SECRET",))


# --- no platform module repeats a check the core makes -----------------------------------------


class _Sent(Exception):
    """The fetcher got as far as sending its first request."""


class _StubApi:
    base_url = "https://api.test"

    def __init__(self, platform):
        from fetchers.core import MemoryJobStore
        from sandbox.credentials import FAKE_CREDENTIALS

        self.platform, self.credentials, self.jobs = platform, dict(FAKE_CREDENTIALS[platform]), MemoryJobStore()

    async def request(self, *args, **kwargs):
        raise _Sent

    async def call(self, *args, **kwargs):
        raise _Sent

    async def access_token(self):
        return "tok"

    def wire_marker(self):
        return lambda: None

    async def run_report_job(self, *, submit, **kwargs):
        return await submit()


STUB_ACCOUNTS = {
    "meta": "1234567890",
    "google": "1234567890",
    "tiktok": "7000000000001",
    "linkedin": "urn:li:sponsoredAccount:123456",
    "amazon": "3312456789012345",
    "microsoft": "4455667001",
    "snapchat": "8adc3db7-8148-4fbf-999c-8d2266369d74",
    "pinterest": "549755885175",
    "reddit": "a2_abc123",
}


@pytest.mark.parametrize("platform", sorted(STUB_ACCOUNTS))
def test_the_window_cap_is_the_cores_alone(platform):
    from fetchers import clock, get_fetcher

    fetcher = get_fetcher(platform)
    end = clock.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=fetcher.max_days)  # one day over the cap
    account = AccountInfo(STUB_ACCOUNTS[platform], "USD", "America/New_York")
    with pytest.raises(ValueError, match=f"exceeds {fetcher.max_days} days"):
        run(fetch_window(fetcher, _StubApi(platform), account, start, end))
    with pytest.raises(_Sent):  # the module itself asks the platform
        run(fetcher.fetch_daily(_StubApi(platform), account, start, end))


@respx.mock
def test_http_and_soap_share_the_throttle_rule_a_throttle_pauses_the_budget():
    # a 429 without Retry-After pauses the platform's budget for the backoff (as a SOAP fault 117
    # always did); a 5xx backs off alone; a Retry-After pauses for what it says
    respx.get("https://api.test/spend").mock(
        side_effect=[
            httpx.Response(429),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "0.002"}),
            httpx.Response(200, json={"code": 0, "days": {}}),
        ]
    )

    async def go():
        async with httpx.AsyncClient() as c:
            api = _api(c)
            api.budget = _Budget()
            await api.request("GET", "/spend")
            return api.budget.paused, api.throttled_count

    paused, throttled = run(go())
    assert len(paused) == 2 and paused[1] == 0.002 and 0 <= paused[0] <= 0.001 and throttled == 2


def test_a_background_request_waits_until_no_slot_is_booked_ahead(monkeypatch):
    """An account lookup run beside its windows (``core.background``) takes the budget only when
    every slot booked before it has come, so requests booked while it waits, even later ones, go
    first: the reports' submits and polls are not delayed by lookups that can wait."""
    now = [100.0]
    b = RateBudget(600, clock=lambda: now[0])  # a slot every 0.1031 s, no burst
    step = 60 / (600 * 0.97)
    for _ in range(3):
        b.reserve()  # three requests already booked: 100, 100 + step, 100 + 2 step
    sleeps: list[float] = []

    async def sleep(seconds):
        if not sleeps:
            b.reserve(), b.reserve()  # two more arrive while the lookup waits
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(core.asyncio, "sleep", sleep)

    async def go():
        slot = await core.background(b.acquire())
        b.sent(slot)
        return now[0]

    assert run(go()) == pytest.approx(100 + 5 * step)
    assert sleeps == pytest.approx([step, 3 * step, step])
    # outside a background task the same budget books the next slot at once, behind no one else
    now[0] = 200.0
    b2 = RateBudget(600, clock=lambda: now[0])
    b2.reserve()
    sleeps[:] = [0.0]  # (the arrivals above are not repeated)

    async def plain():
        b2.sent(await b2.acquire())
        return now[0]

    assert run(plain()) == pytest.approx(200 + step)


def test_fill_zeros_refuses_amounts_the_store_cannot_hold_exactly():
    day = D(2026, 1, 2)
    assert fill_zeros({day: Decimal("999999999999.999999")}, day, day) == {day: Decimal("999999999999.999999")}
    assert fill_zeros({day: Decimal("1.2300000")}, day, day) == {day: Decimal("1.2300000")}  # trailing zeros
    with pytest.raises(
        MalformedResponse, match=r"^meta amount for 2026-01-02 \(-1000000000000\) is not a plausible day's spend$"
    ):
        fill_zeros({day: Decimal("-1E+12")}, day, day, "meta")
    with pytest.raises(
        MalformedResponse, match=r"^meta amount for 2026-01-02 \(0\.0000001\) is finer than a millionth$"
    ):
        fill_zeros({day: Decimal("0.0000001")}, day, day, "meta")
