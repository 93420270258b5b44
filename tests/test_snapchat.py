"""Snapchat: the fetcher against respx (exact wire) and against the built-in sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.parse
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import PlatformApi, RateBudget, fetch_window, plan_windows

BASE = "https://adsapi.test"
TOKEN_URL = "https://accounts.test/login/oauth2/access_token"
ACCOUNT = "8adc3db7-8148-4fbf-999c-8d2266369d74"
STATS = f"{BASE}/v1/adaccounts/{ACCOUNT}/stats"
CREDS = {
    "SNAPCHAT_CLIENT_ID": "snap-client",
    "SNAPCHAT_CLIENT_SECRET": "snap-secret-value",
    "SNAPCHAT_REFRESH_TOKEN": "snap-refresh-value",
    "SNAPCHAT_ACCESS_TOKEN": "snap-access-1",
}
LA = AccountInfo(ACCOUNT, "USD", "America/Los_Angeles")

f = get_fetcher("snapchat")


def run(coro_fn, *, base=BASE, token_url=TOKEN_URL, creds=CREDS):
    async def go():
        async with httpx.AsyncClient() as client:
            auth = f.build_auth(creds, token_url, on_rotate=None)
            api = PlatformApi(f, client, base_url=base, credentials=creds, auth=auth, budget=RateBudget(60000))
            return await coro_fn(api)

    return asyncio.run(go())


def stats_body(rows, tz="America/Los_Angeles"):
    zone = ZoneInfo(tz)
    series = []
    for day, micros in rows:
        s = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        e = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        series.append(
            {
                "start_time": s.isoformat(timespec="milliseconds"),
                "end_time": e.isoformat(timespec="milliseconds"),
                "stats": {"spend": micros},
            }
        )
    return {
        "request_status": "success",
        "request_id": "r1",
        "timeseries_stats": [
            {
                "sub_request_status": "success",
                "timeseries_stat": {"id": ACCOUNT, "type": "AD_ACCOUNT", "granularity": "DAY", "timeseries": series},
            }
        ],
    }


D = dt.date


# --- constants and ids --------------------------------------------------------------------------


def test_constants():
    assert (f.platform, f.max_days, f.lookback_days, f.day_basis, f.history_days) == (
        "snapchat",
        30,
        7,
        "account",
        None,
    )


def test_normalize_account_id():
    assert f.normalize_account_id(" 8ADC3DB7-8148-4FBF-999C-8D2266369D74 ") == ACCOUNT
    for bad in (
        "12345",
        "8adc3db781484fbf999c8d2266369d74",
        "act_8adc3db7-8148-4fbf-999c-8d2266369d74",
        "8adc3db7-8148-4fbf-999c-8d2266369d7g",
        "",
    ):
        with pytest.raises(ValueError) as exc:
            f.normalize_account_id(bad)
        assert "snapchat" in str(exc.value) and repr(bad) in str(exc.value) and "UUID" in str(exc.value)


def test_missing_credential_is_an_auth_error():
    with pytest.raises(FetchError) as exc:
        f.build_auth({"SNAPCHAT_CLIENT_ID": "x", "SNAPCHAT_CLIENT_SECRET": "y"}, TOKEN_URL, None)
    assert exc.value.kind == "auth" and "SNAPCHAT_REFRESH_TOKEN" in exc.value.message


# --- request building ---------------------------------------------------------------------------


@respx.mock
def test_exact_stats_request_and_micros():
    route = respx.get(STATS).mock(
        return_value=httpx.Response(
            200, json=stats_body([(D(2025, 3, 1), 152310000), (D(2025, 3, 2), 98700001), (D(2025, 3, 3), 0)])
        )
    )
    rows = run(lambda api: fetch_window(f, api, LA, D(2025, 3, 1), D(2025, 3, 3)))
    assert rows == {D(2025, 3, 1): Decimal("152.31"), D(2025, 3, 2): Decimal("98.700001"), D(2025, 3, 3): Decimal(0)}
    assert sum(rows.values()) == Decimal("251.010001")
    req = route.calls.last.request
    assert req.method == "GET"
    assert dict(urllib.parse.parse_qsl(req.url.query.decode())) == {
        "granularity": "DAY",
        "fields": "spend",
        "start_time": "2025-03-01T00:00:00-08:00",
        "end_time": "2025-03-04T00:00:00-08:00",
        "omit_empty": "false",
    }
    assert req.headers["Authorization"] == "Bearer snap-access-1"


@respx.mock
def test_window_across_dst_uses_each_boundarys_offset():
    route = respx.get(STATS).mock(
        return_value=httpx.Response(200, json=stats_body([(D(2025, 3, 8), 1), (D(2025, 3, 9), 2), (D(2025, 3, 10), 3)]))
    )
    rows = run(lambda api: fetch_window(f, api, LA, D(2025, 3, 8), D(2025, 3, 10)))
    assert rows == {
        D(2025, 3, 8): Decimal("0.000001"),
        D(2025, 3, 9): Decimal("0.000002"),
        D(2025, 3, 10): Decimal("0.000003"),
    }
    q = dict(urllib.parse.parse_qsl(route.calls.last.request.url.query.decode()))
    assert (q["start_time"], q["end_time"]) == ("2025-03-08T00:00:00-08:00", "2025-03-11T00:00:00-07:00")


def test_local_midnight_where_midnight_does_not_exist():
    from fetchers.snapchat import build_stats_params

    # Chile springs forward at 00:00 on 2024-09-08: that day starts at 01:00 -03:00
    p = build_stats_params(ZoneInfo("America/Santiago"), D(2024, 9, 7), D(2024, 9, 7))
    assert (p["start_time"], p["end_time"]) == ("2024-09-07T00:00:00-04:00", "2024-09-08T01:00:00-03:00")
    p = build_stats_params(ZoneInfo("Asia/Kolkata"), D(2025, 1, 1), D(2025, 1, 1))
    assert (p["start_time"], p["end_time"]) == ("2025-01-01T00:00:00+05:30", "2025-01-02T00:00:00+05:30")


def test_windows_within_cap():
    assert plan_windows(D(2025, 1, 1), D(2025, 3, 1), f.max_days) == [
        (D(2025, 1, 1), D(2025, 1, 30)),
        (D(2025, 1, 31), D(2025, 3, 1)),
    ]
    with pytest.raises(ValueError):  # the core's window check (fetch_window), not one of snapchat's own
        run(lambda api: fetch_window(f, api, LA, D(2025, 1, 1), D(2025, 1, 31)))


@respx.mock
def test_omitted_days_become_explicit_zeros():
    respx.get(STATS).mock(return_value=httpx.Response(200, json=stats_body([(D(2025, 3, 2), 5_000_000)])))
    rows = run(lambda api: fetch_window(f, api, LA, D(2025, 3, 1), D(2025, 3, 3)))
    assert rows == {D(2025, 3, 1): Decimal(0), D(2025, 3, 2): Decimal(5), D(2025, 3, 3): Decimal(0)}


@respx.mock
def test_account_info():
    route = respx.get(f"{BASE}/v1/adaccounts/{ACCOUNT}").mock(
        return_value=httpx.Response(
            200,
            json={
                "request_status": "SUCCESS",
                "adaccounts": [
                    {
                        "sub_request_status": "SUCCESS",
                        "adaccount": {
                            "id": ACCOUNT,
                            "name": "Acme Snap",
                            "currency": "eur",
                            "timezone": "Europe/Berlin",
                        },
                    }
                ],
            },
        )
    )
    info = run(lambda api: f.account_info(api, ACCOUNT.upper()))
    assert info == AccountInfo(ACCOUNT, "EUR", "Europe/Berlin", "Acme Snap")
    assert route.calls.last.request.headers["Authorization"] == "Bearer snap-access-1"


@pytest.mark.parametrize(
    "account",
    [
        {"id": ACCOUNT, "timezone": "Europe/Berlin"},
        {"id": ACCOUNT, "currency": "EUR"},
        {"id": ACCOUNT, "currency": "EUR", "timezone": "Mars/Olympus"},
    ],
)
@respx.mock
def test_account_info_malformed(account):
    respx.get(f"{BASE}/v1/adaccounts/{ACCOUNT}").mock(
        return_value=httpx.Response(
            200,
            json={"request_status": "SUCCESS", "adaccounts": [{"sub_request_status": "SUCCESS", "adaccount": account}]},
        )
    )
    with pytest.raises(MalformedResponse):
        run(lambda api: f.account_info(api, ACCOUNT))


# --- retries, tokens, errors --------------------------------------------------------------------


@respx.mock
def test_429_backed_off_then_ok():
    route = respx.get(STATS).mock(
        side_effect=[
            httpx.Response(
                429, json={"request_status": "ERROR", "error_code": "E3007", "display_message": "slow down"}
            ),
            httpx.Response(429, json={"request_status": "ERROR"}, headers={"Retry-After": "0"}),
            httpx.Response(200, json=stats_body([(D(2025, 3, 1), 7_000_001)])),
        ]
    )
    rows = run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))
    assert rows == {D(2025, 3, 1): Decimal("7.000001")} and route.call_count == 3


def test_rate_limit_reset_header_read_as_epoch_seconds():
    resp = httpx.Response(
        429, headers={"X-Rate-Limit-Reset": str(int(time.time()) + 5)}, request=httpx.Request("GET", STATS)
    )
    v = f.classify(resp)
    assert (v.action, v.kind) == ("retry", "throttled") and 3.5 <= v.retry_after <= 5.0


@respx.mock
def test_expired_token_refreshed_once():
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200, json={"access_token": "snap-access-2", "expires_in": 1800, "refresh_token": "snap-refresh-value"}
        )
    )
    route = respx.get(STATS).mock(
        side_effect=[
            httpx.Response(
                401, json={"request_status": "ERROR", "error_code": "E3001", "display_message": "Unauthorized"}
            ),
            httpx.Response(200, json=stats_body([(D(2025, 3, 1), 1_500_000)])),
        ]
    )
    rows = run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))
    assert rows == {D(2025, 3, 1): Decimal("1.5")}
    assert dict(urllib.parse.parse_qsl(token.calls.last.request.content.decode())) == {
        "grant_type": "refresh_token",
        "refresh_token": "snap-refresh-value",
        "client_id": "snap-client",
        "client_secret": "snap-secret-value",
    }
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer snap-access-1", "Bearer snap-access-2"]


@respx.mock
def test_401_after_refresh_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "snap-access-2", "expires_in": 1800})
    )
    respx.get(STATS).mock(
        return_value=httpx.Response(401, json={"request_status": "ERROR", "display_message": "Unauthorized"})
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))
    assert exc.value.kind == "auth" and "re-authorise" in exc.value.message
    assert "snap-access" not in exc.value.message and "snap-secret" not in exc.value.message


@respx.mock
def test_dead_refresh_token_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(FetchError) as exc:
        run(
            lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)),
            creds={k: v for k, v in CREDS.items() if k != "SNAPCHAT_ACCESS_TOKEN"},
        )
    assert exc.value.kind == "auth" and "invalid_grant" in exc.value.message
    assert "snap-refresh-value" not in exc.value.message


@respx.mock
def test_forbidden_names_the_fix():
    respx.get(STATS).mock(
        return_value=httpx.Response(
            403, json={"request_status": "ERROR", "error_code": "E3002", "display_message": "User lacks permission"}
        )
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))
    assert exc.value.kind == "request"
    assert "User lacks permission (E3002)" in exc.value.message and "member" in exc.value.message


@respx.mock
def test_error_status_inside_http_200_fails():
    respx.get(STATS).mock(
        return_value=httpx.Response(
            200, json={"request_status": "ERROR", "error_code": "E1004", "debug_message": "bad time"}
        )
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))
    assert exc.value.kind == "request" and "bad time (E1004)" in exc.value.message


def _bucket(stats):
    body = stats_body([(D(2025, 3, 1), 1)])
    body["timeseries_stats"][0]["timeseries_stat"]["timeseries"][0]["stats"] = stats
    return body


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json=_bucket({})),  # spend missing
        httpx.Response(200, json=_bucket({"spend": "12.5"})),  # not micros
        httpx.Response(200, json=_bucket({"spend": 1.25})),  # fractional micros
        httpx.Response(200, json=_bucket({"spend": None})),
        httpx.Response(200, json={"request_status": "SUCCESS", "timeseries_stats": []}),
        httpx.Response(200, json={"request_status": "SUCCESS"}),
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json=[1, 2]),
    ],
)
@respx.mock
def test_malformed_bodies_never_zero(response):
    respx.get(STATS).mock(return_value=response)
    with pytest.raises(MalformedResponse):
        run(lambda api: fetch_window(f, api, LA, D(2025, 3, 1), D(2025, 3, 1)))


@respx.mock
def test_misaligned_bucket_is_malformed():
    body = stats_body([(D(2025, 3, 1), 1)])
    body["timeseries_stats"][0]["timeseries_stat"]["timeseries"][0]["start_time"] = "2025-03-01T00:00:00.000Z"
    respx.get(STATS).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(MalformedResponse):
        run(lambda api: f.fetch_daily(api, LA, D(2025, 3, 1), D(2025, 3, 1)))


# --- against the sandbox ------------------------------------------------------------------------

SB_USD = "3f1e9a0c-77b2-4d1e-8a61-2b9c4d5e6f10"  # USD, New York or Los Angeles
SB_EUR = "5c2d1b0a-1111-4a2b-9c3d-000000000978"  # EUR, Europe/Berlin


def sandbox_run(sandbox, coro_fn, creds=None):
    from sandbox.credentials import FAKE_CREDENTIALS
    from sandbox.snapchat import TOKEN_PATH

    return run(
        coro_fn, base=sandbox.url, token_url=sandbox.url + TOKEN_PATH, creds=creds or FAKE_CREDENTIALS["snapchat"]
    )


async def fetch_range(api, account_id, start, end):
    info = await f.account_info(api, account_id)
    total, days = Decimal(0), 0
    for s, e in plan_windows(start, end, f.max_days):
        rows = await fetch_window(f, api, info, s, e)
        total += sum(rows.values(), Decimal(0))
        days += len(rows)
    return info, total, days


@pytest.mark.parametrize("account", [SB_USD, SB_EUR])
def test_sandbox_multi_window_total_is_exact(sandbox, account):
    start, end = D(2025, 1, 20), D(2025, 4, 10)  # 81 days, 3 windows, across DST
    info, total, days = sandbox_run(sandbox, lambda api: fetch_range(api, account, start, end))
    expected = sandbox.sandbox.expected_total("snapchat", account, start, end)
    assert days == 81 and total == Decimal(expected["spend"])
    assert info.currency == expected["currency"]
    from sandbox.data import account_profile

    assert info.timezone == account_profile("snapchat", account)["timezone"]
    assert total != total.quantize(Decimal("0.01"))  # sub-cent micros made it through
    assert sandbox.ctx.requests["snapchat"] == 4  # account + 3 windows
    assert sandbox.ctx.token_grants["snapchat"] == 1


def _get(sandbox, path, params=None, token=""):
    token = sandbox.ctx.issue_token("snapchat") if token == "" else token  # one the sandbox issued
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(sandbox.url + path, params=params, headers=headers)


def test_sandbox_rejects_what_snap_rejects(sandbox):
    from sandbox.data import account_profile

    tz = account_profile("snapchat", SB_EUR)["timezone"]
    assert tz == "Europe/Berlin"
    path = f"/v1/adaccounts/{SB_EUR}/stats"
    good = {
        "granularity": "DAY",
        "fields": "spend",
        "start_time": "2025-03-01T00:00:00+01:00",
        "end_time": "2025-03-03T00:00:00+01:00",
    }
    ok = _get(sandbox, path, good)
    assert ok.status_code == 200 and len(ok.json()["timeseries_stats"][0]["timeseries_stat"]["timeseries"]) == 2
    utc = _get(sandbox, path, {**good, "start_time": "2025-03-01T00:00:00Z"})  # 01:00 in Berlin
    assert utc.status_code == 400 and utc.json()["request_status"] == "ERROR"
    assert "beginning of a day" in utc.json()["debug_message"]
    no_gran = _get(sandbox, path, {k: v for k, v in good.items() if k != "granularity"})
    assert no_gran.status_code == 400 and "granularity" in no_gran.json()["debug_message"]
    too_long = _get(sandbox, path, {**good, "end_time": "2025-04-02T00:00:00+02:00"})  # 32 days
    assert too_long.status_code == 400 and "31 days" in too_long.json()["debug_message"]
    same = _get(sandbox, path, {**good, "end_time": good["start_time"]})
    assert same.status_code == 400 and same.json()["error_code"] == "E1008"
    no_token = _get(sandbox, path, good, token=None)
    assert no_token.status_code == 401
    post = httpx.post(sandbox.url + path, params=good, headers={"Authorization": "Bearer x"})
    assert post.status_code == 405
    from sandbox.credentials import FAKE_CREDENTIALS

    creds = FAKE_CREDENTIALS["snapchat"]
    client = {"grant_type": "refresh_token", "client_id": creds["SNAPCHAT_CLIENT_ID"]}
    bad_grant = httpx.post(
        sandbox.url + "/login/oauth2/access_token",
        data={**client, "client_secret": creds["SNAPCHAT_CLIENT_SECRET"], "refresh_token": "made-up"},
    )
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "invalid_grant"
    bad_secret = httpx.post(
        sandbox.url + "/login/oauth2/access_token",
        data={**client, "client_secret": "s", "refresh_token": creds["SNAPCHAT_REFRESH_TOKEN"]},
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    made_up = _get(sandbox, path, good, token="made-up")
    assert made_up.status_code == 401 and made_up.json()["error_code"] == "E3001"


def _configure(sandbox, **cfg):
    sandbox.ctx.configure(cfg)


def test_sandbox_throttle_then_ok(sandbox):
    _configure(sandbox, faults=[{"platform": "snapchat", "kind": "throttle", "count": 2}])
    start, end = D(2025, 2, 1), D(2025, 2, 20)
    _, total, _ = sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, start, end))
    assert total == Decimal(sandbox.sandbox.expected_total("snapchat", SB_USD, start, end)["spend"])
    assert sandbox.ctx.throttled["snapchat"] == 2


def test_sandbox_expired_token_refreshed(sandbox):
    _configure(sandbox, faults=[{"platform": "snapchat", "kind": "expired_token", "count": 1}])
    start, end = D(2025, 2, 1), D(2025, 2, 20)
    _, total, _ = sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, start, end))
    assert total == Decimal(sandbox.sandbox.expected_total("snapchat", SB_USD, start, end)["spend"])
    assert sandbox.ctx.token_grants["snapchat"] == 2


def test_sandbox_permanent_5xx_fails(sandbox):
    _configure(sandbox, faults=[{"platform": "snapchat", "kind": "5xx", "count": None}])
    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, lambda api: fetch_range(api, SB_USD, D(2025, 2, 1), D(2025, 2, 5)))
    assert exc.value.kind == "server"


def test_sandbox_malformed_fails(sandbox):
    async def go(api):
        info = await f.account_info(api, SB_USD)
        sandbox.ctx.configure({"faults": [{"platform": "snapchat", "kind": "malformed", "count": 1}]})
        return await fetch_window(f, api, info, D(2025, 2, 1), D(2025, 2, 5))

    with pytest.raises(MalformedResponse):
        sandbox_run(sandbox, go)
