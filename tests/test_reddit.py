"""Reddit: the fetcher against respx (exact wire) and against the built-in sandbox."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import urllib.parse
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

import fetchers.reddit as reddit
from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import PlatformApi, RateBudget, fetch_window, plan_windows

BASE = "https://ads-api.test"
TOKEN_URL = "https://www.reddit.test/api/v1/access_token"
ACCOUNT = "a2_abc123"
REPORTS = f"{BASE}/api/v3/ad_accounts/{ACCOUNT}/reports"
CREDS = {
    "REDDIT_CLIENT_ID": "rd-client",
    "REDDIT_CLIENT_SECRET": "rd-secret-value",
    "REDDIT_REFRESH_TOKEN": "rd-refresh-value",
    "REDDIT_ACCESS_TOKEN": "rd-access-1",
}
NY = AccountInfo(ACCOUNT, "USD", "America/New_York")
UA = "server:ad-spend-hub:1.0 (daily ad spend sync)"
D = dt.date

f = get_fetcher("reddit")


def run(coro_fn, *, base=BASE, token_url=TOKEN_URL, creds=CREDS, on_rotate=None):
    async def go():
        async with httpx.AsyncClient() as client:
            auth = f.build_auth(creds, token_url, on_rotate=on_rotate)
            api = PlatformApi(f, client, base_url=base, credentials=creds, auth=auth, budget=RateBudget(60000))
            return await coro_fn(api)

    return asyncio.run(go())


def page(rows, next_url=None):
    return {
        "data": {"metrics": [{"date": d.isoformat(), "spend": s, "impressions": 1} for d, s in rows]},
        "pagination": {"next_url": next_url},
    }


# --- constants and ids --------------------------------------------------------------------------


def test_constants():
    assert (f.platform, f.max_days, f.lookback_days, f.day_basis, f.history_days) == ("reddit", 730, 3, "account", 730)


def test_normalize_account_id():
    assert f.normalize_account_id(" a2_abc123 ") == "a2_abc123"
    assert f.normalize_account_id("T2_Q9x-z_1") == "t2_Q9x-z_1"
    for bad in ("abc123", "a2_", "b2_abc", "a2-abc123", "a2_abc 123", "https://ads.reddit.com/a2_abc", ""):
        with pytest.raises(ValueError) as exc:
            f.normalize_account_id(bad)
        assert "reddit" in str(exc.value) and repr(bad) in str(exc.value) and "a2_" in str(exc.value)


def test_missing_credential_is_an_auth_error():
    with pytest.raises(FetchError) as exc:
        f.build_auth({"REDDIT_CLIENT_ID": "x", "REDDIT_REFRESH_TOKEN": "y"}, TOKEN_URL, None)
    assert exc.value.kind == "auth" and "REDDIT_CLIENT_SECRET" in exc.value.message


# --- request building ---------------------------------------------------------------------------


def test_report_range_covers_both_readings_on_the_hour():
    # New York (UTC-5 in winter): from 00:00Z (wall reading) to 05:00Z after the end (instant reading)
    assert reddit.report_range(ZoneInfo("America/New_York"), D(2025, 1, 1), D(2025, 1, 30)) == (
        "2025-01-01T00:00:00Z",
        "2025-01-31T05:00:00Z",
    )
    # across the spring-forward: the end boundary uses the summer offset
    assert reddit.report_range(ZoneInfo("America/New_York"), D(2025, 3, 1), D(2025, 3, 10)) == (
        "2025-03-01T00:00:00Z",
        "2025-03-11T04:00:00Z",
    )
    # Tokyo (UTC+9): local midnight is the previous day 15:00Z
    assert reddit.report_range(ZoneInfo("Asia/Tokyo"), D(2025, 1, 1), D(2025, 1, 2)) == (
        "2024-12-31T15:00:00Z",
        "2025-01-03T00:00:00Z",
    )
    # half-hour offsets are widened to whole hours
    assert reddit.report_range(ZoneInfo("Asia/Kolkata"), D(2025, 1, 1), D(2025, 1, 1)) == (
        "2024-12-31T18:00:00Z",
        "2025-01-02T00:00:00Z",
    )


@respx.mock
def test_exact_report_request_micros_and_paging():
    next1 = f"https://ads-api.reddit.com/api/v3/ad_accounts/{ACCOUNT}/reports?page.size=1000&page.token=YWJj%3D"
    next2 = f"https://ads-api.reddit.com/api/v3/ad_accounts/{ACCOUNT}/reports?page.size=1000&page.token=ZGVm%3D"
    route = respx.post(url__startswith=REPORTS).mock(
        side_effect=[
            httpx.Response(200, json=page([(D(2024, 12, 31), 999_999_999), (D(2025, 1, 1), 152_310_000)], next1)),
            httpx.Response(200, json=page([(D(2025, 1, 2), 98_700_001)], next2)),
            httpx.Response(200, json=page([(D(2025, 1, 4), 106_980_447), (D(2025, 1, 5), 5)])),
        ]
    )
    rows = run(lambda api: fetch_window(f, api, NY, D(2025, 1, 1), D(2025, 1, 4)))
    assert rows == {
        D(2025, 1, 1): Decimal("152.31"),
        D(2025, 1, 2): Decimal("98.700001"),
        D(2025, 1, 3): Decimal(0),
        D(2025, 1, 4): Decimal("106.980447"),
    }
    assert sum(rows.values()) == Decimal("357.990448")
    assert route.call_count == 3
    first, second, third = (c.request for c in route.calls)
    assert first.method == "POST" and str(first.url) == f"{REPORTS}?page.size=1000"
    assert str(second.url) == f"{REPORTS}?page.size=1000&page.token=YWJj%3D"  # our host, token as sent
    assert str(third.url) == f"{REPORTS}?page.size=1000&page.token=ZGVm%3D"
    expected_body = {
        "data": {
            "starts_at": "2025-01-01T00:00:00Z",
            "ends_at": "2025-01-05T05:00:00Z",
            "breakdowns": ["DATE"],
            "fields": ["SPEND"],
            "time_zone_id": "America/New_York",
        }
    }
    for req in (first, second, third):
        assert json.loads(req.content) == expected_body
        assert req.headers["Authorization"] == "Bearer rd-access-1"
        assert req.headers["User-Agent"] == UA
        assert req.headers["Content-Type"] == "application/json"


@respx.mock
def test_account_info():
    route = respx.get(f"{BASE}/api/v3/ad_accounts/{ACCOUNT}").mock(
        return_value=httpx.Response(
            200,
            json={"data": {"id": ACCOUNT, "name": "Acme Reddit", "currency": "GBP", "time_zone_id": "Europe/London"}},
        )
    )
    assert run(lambda api: f.account_info(api, "A2_abc123")) == AccountInfo(
        ACCOUNT, "GBP", "Europe/London", "Acme Reddit"
    )
    assert route.calls.last.request.headers["User-Agent"] == UA


@pytest.mark.parametrize(
    "data",
    [
        {"id": ACCOUNT, "time_zone_id": "UTC"},
        {"id": ACCOUNT, "currency": "USD"},
        {"id": ACCOUNT, "currency": "US", "time_zone_id": "UTC"},
        None,
    ],
)
@respx.mock
def test_account_info_malformed(data):
    respx.get(f"{BASE}/api/v3/ad_accounts/{ACCOUNT}").mock(return_value=httpx.Response(200, json={"data": data}))
    with pytest.raises(MalformedResponse):
        run(lambda api: f.account_info(api, ACCOUNT))


def test_windows_within_cap():
    # no documented range cap: one report for a year; only the 24 months Reddit serves bound it
    assert plan_windows(D(2025, 1, 1), D(2025, 12, 31), f.max_days) == [(D(2025, 1, 1), D(2025, 12, 31))]
    with pytest.raises(ValueError):  # the core's window check (fetch_window), not one of reddit's own
        run(lambda api: fetch_window(f, api, NY, D(2023, 1, 1), D(2025, 1, 31)))


# --- retries, tokens, errors --------------------------------------------------------------------


@respx.mock
def test_429_backed_off_then_ok():
    route = respx.post(url__startswith=REPORTS).mock(
        side_effect=[
            httpx.Response(429, json={"error": {"code": 429, "message": "Too Many Requests"}}),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json=page([(D(2025, 1, 1), 1)])),
        ]
    )
    assert run(lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1))) == {D(2025, 1, 1): Decimal("0.000001")}
    assert route.call_count == 3


@respx.mock
def test_expired_token_refreshed_with_basic_auth_and_rotation_kept():
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "rd-access-2",
                "expires_in": 86400,
                "refresh_token": "rd-refresh-2",
                "scope": "adsread",
            },
        )
    )
    route = respx.post(url__startswith=REPORTS).mock(
        side_effect=[
            httpx.Response(401, json={"success": False, "error": {"reason": "UNAUTHORIZED", "explanation": "expired"}}),
            httpx.Response(200, json=page([(D(2025, 1, 1), 2_500_000)])),
        ]
    )
    rotated = []
    rows = run(lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1)), on_rotate=rotated.append)
    assert rows == {D(2025, 1, 1): Decimal("2.5")} and rotated == ["rd-refresh-2"]
    req = token.calls.last.request
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"rd-client:rd-secret-value").decode()
    assert req.headers["User-Agent"] == UA
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(urllib.parse.parse_qsl(req.content.decode())) == {
        "grant_type": "refresh_token",
        "refresh_token": "rd-refresh-value",
    }
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer rd-access-1", "Bearer rd-access-2"]


@respx.mock
def test_401_after_refresh_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "rd-access-2", "expires_in": 86400})
    )
    respx.post(url__startswith=REPORTS).mock(
        return_value=httpx.Response(401, json={"error": {"code": 401, "message": "Unauthorized"}})
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1)))
    assert exc.value.kind == "auth" and "re-authorise" in exc.value.message
    assert "rd-access" not in exc.value.message and "rd-secret" not in exc.value.message


@respx.mock
def test_dead_refresh_token_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(FetchError) as exc:
        run(
            lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1)),
            creds={k: v for k, v in CREDS.items() if k != "REDDIT_ACCESS_TOKEN"},
        )
    assert exc.value.kind == "auth" and "invalid_grant" in exc.value.message
    assert "rd-refresh-value" not in exc.value.message


@pytest.mark.parametrize(
    "status,body,kind,text",
    [
        (
            403,
            {
                "success": False,
                "error": {"reason": "UNAUTHORIZED", "explanation": "Insufficient authentication scopes"},
            },
            "auth",
            "adsread",
        ),
        (403, {"error": {"code": 403, "message": "Forbidden"}}, "request", "can see it"),
        (404, {"error": {"code": 404, "message": "ad account not found"}}, "request", "check the id"),
        (
            400,
            {"error": {"code": 400, "message": "invalid ad_account identifier"}},
            "request",
            "invalid ad_account identifier",
        ),
        (
            200,
            {"success": False, "error": {"reason": "BAD_REQUEST", "explanation": "bad field"}},
            "request",
            "bad field",
        ),
    ],
)
@respx.mock
def test_refusals_name_the_reason(status, body, kind, text):
    respx.post(url__startswith=REPORTS).mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(FetchError) as exc:
        run(lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1)))
    assert exc.value.kind == kind and text in exc.value.message


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"data": {"metrics": [{"date": "2025-01-01", "impressions": 5}]}}),  # no spend
        httpx.Response(200, json={"data": {"metrics": [{"date": "2025-01-01", "spend": "1.50"}]}}),  # not micros
        httpx.Response(200, json={"data": {"metrics": [{"date": "2025-01-01", "spend": 1.5}]}}),
        httpx.Response(200, json={"data": {"metrics": [{"spend": 1}]}}),  # no date
        httpx.Response(200, json={"data": {"metrics": [{"date": "01/01/2025", "spend": 1}]}}),
        httpx.Response(200, json={"data": {"metrics": [{"date": "2025-01-01", "spend": 1}] * 2}}),  # duplicate
        httpx.Response(200, json={"data": {}}),
        httpx.Response(200, json={"metrics": []}),
        httpx.Response(200, json={"data": {"metrics": []}, "pagination": {"next_url": 5}}),
        httpx.Response(200, json={"data": {"metrics": []}, "pagination": {"next_url": "https://evil.test/steal"}}),
        httpx.Response(200, text="<html>maintenance</html>"),
    ],
)
@respx.mock
def test_malformed_bodies_never_zero(response):
    respx.post(url__startswith=REPORTS).mock(return_value=response)
    with pytest.raises(MalformedResponse):
        run(lambda api: fetch_window(f, api, NY, D(2025, 1, 1), D(2025, 1, 1)))


@respx.mock
def test_repeating_next_url_stops():
    loop = f"{BASE}/api/v3/ad_accounts/{ACCOUNT}/reports?page.token=same"
    respx.post(url__startswith=REPORTS).mock(return_value=httpx.Response(200, json=page([], loop)))
    with pytest.raises(MalformedResponse):
        run(lambda api: f.fetch_daily(api, NY, D(2025, 1, 1), D(2025, 1, 1)))


# --- against the sandbox ------------------------------------------------------------------------

SB_USD = "t2_sbx4u7"  # USD, New York or Los Angeles
SB_EUR = "a2_demo978"  # EUR, Europe/Berlin
SB_JPY = "a2_tok392"  # JPY, Asia/Tokyo (local midnight is the previous UTC day)


def sandbox_run(sandbox, coro_fn, on_rotate=None):
    from sandbox.credentials import FAKE_CREDENTIALS
    from sandbox.reddit import TOKEN_PATH

    return run(
        coro_fn,
        base=sandbox.url,
        token_url=sandbox.url + TOKEN_PATH,
        creds=FAKE_CREDENTIALS["reddit"],
        on_rotate=on_rotate,
    )


async def fetch_range(api, account_id, start, end):
    info = await f.account_info(api, account_id)
    total, days = Decimal(0), 0
    for s, e in plan_windows(start, end, f.max_days):
        rows = await fetch_window(f, api, info, s, e)
        total += sum(rows.values(), Decimal(0))
        days += len(rows)
    return info, total, days


@pytest.mark.parametrize("account", [SB_USD, SB_EUR, SB_JPY])
def test_sandbox_multi_window_multi_page_total_is_exact(sandbox, account, monkeypatch):
    from sandbox.data import account_profile

    monkeypatch.setattr(reddit, "PAGE_SIZE", 6)
    start, end = D(2025, 1, 20), D(2025, 4, 10)  # 81 days, 3 windows, across DST
    rotated = []
    info, total, days = sandbox_run(sandbox, lambda api: fetch_range(api, account, start, end), rotated.append)
    expected = sandbox.sandbox.expected_total("reddit", account, start, end)
    assert days == 81 and total == Decimal(expected["spend"])
    assert (info.currency, info.timezone) == (expected["currency"], account_profile("reddit", account)["timezone"])
    assert sandbox.ctx.requests["reddit"] >= 1 + 3 * 4  # account + 3 windows of >= 4 pages
    assert len(rotated) == 1 and rotated[0].startswith("sbx-reddit-rt-")
    if expected["currency"] != "JPY":
        assert total != total.quantize(Decimal("0.01"))  # sub-cent micros made it through


def _issued(sandbox) -> str:
    """An access token the sandbox issued (it refuses any other)."""
    return sandbox.ctx.issue_token("reddit")


def _post(sandbox, body, *, account=SB_EUR, ua="test-suite:adspend:1.0", token="", params=None, method="POST"):
    token = _issued(sandbox) if token == "" else token
    headers = {"User-Agent": ua, **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.request(
        method, f"{sandbox.url}/api/v3/ad_accounts/{account}/reports", params=params, json=body, headers=headers
    )


def test_sandbox_rejects_what_reddit_rejects(sandbox):
    good = {
        "data": {
            "starts_at": "2025-03-01T00:00:00Z",
            "ends_at": "2025-03-15T00:00:00Z",
            "breakdowns": ["DATE"],
            "fields": ["SPEND"],
            "time_zone_id": "Europe/Berlin",
        }
    }
    ok = _post(sandbox, good)
    assert ok.status_code == 200 and ok.json()["pagination"]["next_url"]  # default page size is small
    nxt = ok.json()["pagination"]["next_url"]
    assert "page.token=" in nxt and "%3D" in nxt
    second = httpx.post(
        nxt, json=good, headers={"User-Agent": "test-suite:adspend:1.0", "Authorization": f"Bearer {_issued(sandbox)}"}
    )
    assert (
        second.status_code == 200
        and second.json()["data"]["metrics"][0]["date"] > ok.json()["data"]["metrics"][-1]["date"]
    )
    changed = httpx.post(
        nxt,
        json={"data": {**good["data"], "fields": ["SPEND", "CLICKS"]}},
        headers={"User-Agent": "test-suite:adspend:1.0", "Authorization": f"Bearer {_issued(sandbox)}"},
    )
    assert changed.status_code == 400
    assert _post(sandbox, good, method="GET").status_code == 405
    assert _post(sandbox, good, ua="python-httpx/0.28.1").status_code == 403
    no_breakdown = _post(sandbox, {"data": {k: v for k, v in good["data"].items() if k != "breakdowns"}})
    assert no_breakdown.status_code == 400 and "breakdowns" in no_breakdown.json()["error"]["message"]
    no_fields = _post(sandbox, {"data": {k: v for k, v in good["data"].items() if k != "fields"}})
    assert no_fields.status_code == 400 and "fields" in no_fields.json()["error"]["message"]
    off_hour = _post(sandbox, {"data": {**good["data"], "starts_at": "2025-03-01T00:30:00Z"}})
    assert off_hour.status_code == 400 and off_hour.json()["error"]["message"] == "starts_at must be on the hour"
    unwrapped = _post(sandbox, good["data"])
    assert unwrapped.status_code == 400
    assert _post(sandbox, {"data": {**good["data"], "breakdowns": ["DATE", "HOUR"]}}).status_code == 400
    assert _post(sandbox, good, params={"page.size": "1001"}).status_code == 400
    no_token = _post(sandbox, good, token=None)
    assert no_token.status_code == 401 and no_token.json()["error"]["reason"] == "UNAUTHORIZED"
    assert _post(sandbox, good, account="abc123").status_code == 400
    no_basic = httpx.post(
        sandbox.url + "/api/v1/access_token",
        headers={"User-Agent": "x:y:1"},
        data={"grant_type": "refresh_token", "refresh_token": "r"},
    )
    assert no_basic.status_code == 401


def test_sandbox_partial_days_are_partial(sandbox):
    """The emulator's reading of an hour range: ends_at exclusive, a boundary day only partly counted."""
    from decimal import ROUND_HALF_EVEN

    from sandbox.data import account_profile
    from sandbox.reddit import expected_daily

    zone = ZoneInfo(account_profile("reddit", SB_USD)["timezone"])
    noon = dt.datetime(2025, 2, 3, 12, tzinfo=zone).astimezone(dt.UTC)
    midnight = dt.datetime(2025, 2, 5, tzinfo=zone).astimezone(dt.UTC)
    body = {
        "data": {
            "starts_at": noon.strftime("%Y-%m-%dT%H:00:00Z"),
            "ends_at": midnight.strftime("%Y-%m-%dT%H:00:00Z"),
            "breakdowns": ["DATE"],
            "fields": ["SPEND"],
        }
    }  # time_zone_id: the account's
    resp = _post(sandbox, body, account=SB_USD, params={"page.size": "10"})
    half = (expected_daily(SB_USD, D(2025, 2, 3)) / 2).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    whole = expected_daily(SB_USD, D(2025, 2, 4))
    expected = {k: int(v * 10**6) for k, v in {"2025-02-03": half, "2025-02-04": whole}.items() if v}
    assert {r["date"]: r["spend"] for r in resp.json()["data"]["metrics"]} == expected


def _configure(sandbox, **cfg):
    sandbox.ctx.configure(cfg)


def test_sandbox_throttle_then_ok(sandbox):
    _configure(sandbox, faults=[{"platform": "reddit", "kind": "throttle", "count": 2}])
    start, end = D(2025, 2, 1), D(2025, 2, 20)
    _, total, _ = sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, start, end))
    assert total == Decimal(sandbox.sandbox.expected_total("reddit", SB_USD, start, end)["spend"])
    assert sandbox.ctx.throttled["reddit"] == 2


def test_sandbox_expired_token_refreshed(sandbox):
    _configure(sandbox, faults=[{"platform": "reddit", "kind": "expired_token", "count": 1}])
    start, end = D(2025, 2, 1), D(2025, 2, 20)
    _, total, _ = sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, start, end))
    assert total == Decimal(sandbox.sandbox.expected_total("reddit", SB_USD, start, end)["spend"])
    assert sandbox.ctx.token_grants["reddit"] == 2


def test_sandbox_permanent_5xx_fails(sandbox):
    _configure(sandbox, faults=[{"platform": "reddit", "kind": "5xx", "count": None}])
    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, D(2025, 2, 1), D(2025, 2, 5)))
    assert exc.value.kind == "server"


@pytest.mark.parametrize("stage", ["account", "report"])
def test_sandbox_malformed_fails(sandbox, stage):
    async def go(api):
        if stage == "account":
            _configure(sandbox, faults=[{"platform": "reddit", "kind": "malformed", "count": 1}])
        info = await f.account_info(api, SB_USD)
        _configure(sandbox, faults=[{"platform": "reddit", "kind": "malformed", "count": 1}])
        return await fetch_window(f, api, info, D(2025, 2, 1), D(2025, 2, 5))

    with pytest.raises(MalformedResponse):
        sandbox_run(sandbox, go)


@respx.mock
def test_a_90_day_backfill_is_one_report():
    """No documented range cap (§7.2): 90 days are one report (paged when the answer is long)."""
    start, end = D(2025, 1, 1), D(2025, 3, 31)
    route = respx.post(url__startswith=REPORTS).mock(return_value=httpx.Response(200, json=page([(start, 1_000_000)])))
    windows = plan_windows(start, end, f.max_days)
    assert windows == [(start, end)]
    rows = run(lambda api: fetch_window(f, api, NY, start, end))
    assert len(rows) == 90 and sum(rows.values()) == Decimal(1)
    assert route.call_count == 1
    body = json.loads(route.calls[0].request.content)["data"]
    # New York is UTC-4 on 31 March: its day ends at 04:00 UTC on 1 April (ends_at exclusive)
    assert (body["starts_at"], body["ends_at"]) == ("2025-01-01T00:00:00Z", "2025-04-01T04:00:00Z")
