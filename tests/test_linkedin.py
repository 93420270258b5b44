"""LinkedIn: exact Rest.li requests and parsing (respx), then the fetcher against the sandbox emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
from decimal import Decimal

import httpx
import pytest
import respx

import fetchers.linkedin as li
from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import OAuthRefreshAuth, PlatformApi, RateBudget, StaticTokenAuth, fetch_window, plan_windows

BASE = "https://api.linkedin.com"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
URN = "urn:li:sponsoredAccount:507404993"
CREDS = {
    "LINKEDIN_ACCESS_TOKEN": "li-access-token-0001",
    "LINKEDIN_CLIENT_ID": "li-client",
    "LINKEDIN_CLIENT_SECRET": "li-client-secret-0002",
    "LINKEDIN_REFRESH_TOKEN": "li-refresh-token-0003",
}
F = get_fetcher("linkedin")
ACCOUNT = AccountInfo(URN, "EUR", "UTC")
D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)


def run(coro_fn, base=BASE, creds=CREDS, token_url=TOKEN_URL):
    async def main():
        async with httpx.AsyncClient() as client:
            api = PlatformApi(
                F,
                client,
                base_url=base,
                credentials=creds,
                auth=F.build_auth(creds, token_url, on_rotate=None),
                budget=RateBudget(60000),
            )
            return await coro_fn(api), api

    return asyncio.run(main())


def analytics_route():
    return respx.route(method="GET", host="api.linkedin.com", path="/rest/adAnalytics")


def el(day, local, usd="999.99", urn=URN):
    b = {"year": day.year, "month": day.month, "day": day.day}
    return {
        "pivotValues": [urn],
        "dateRange": {"start": b, "end": dict(b)},
        "costInLocalCurrency": local,
        "costInUsd": usd,
    }


def page(*elements, links=()):
    return {"paging": {"start": 0, "count": 10, "links": list(links)}, "elements": list(elements)}


# --- ids and constants --------------------------------------------------------------------------


def test_normalize_account_id():
    assert F.normalize_account_id("507404993") == URN
    assert F.normalize_account_id(f" {URN} ") == URN
    for bad in (
        "urn:li:sponsoredCampaign:123",
        "urn:li:sponsoredAccount:",
        "abc",
        "",
        "123-456",
        "urn%3Ali%3AsponsoredAccount%3A1",
    ):
        with pytest.raises(ValueError, match=r"linkedin.*urn:li:sponsoredAccount:123456 or 123456"):
            F.normalize_account_id(bad)


def test_constants():
    assert (F.max_days, F.lookback_days, F.day_basis) == (15_000, 7, "UTC")
    assert li.LINKEDIN_VERSION == "202609" and li.LINKEDIN_VERSION_SUNSET > dt.date(2026, 11, 1)


def test_build_auth_forms():
    assert isinstance(F.build_auth(CREDS, TOKEN_URL, None), OAuthRefreshAuth)
    assert isinstance(F.build_auth({"LINKEDIN_ACCESS_TOKEN": "li-only-token"}, TOKEN_URL, None), StaticTokenAuth)
    with pytest.raises(FetchError) as exc:
        F.build_auth({}, TOKEN_URL, None)
    assert exc.value.kind == "auth" and "LINKEDIN_ACCESS_TOKEN" in exc.value.message


# --- the exact request --------------------------------------------------------------------------


@respx.mock
def test_raw_query_string_and_headers_are_exactly_restli_2():
    route = analytics_route().mock(return_value=httpx.Response(200, json=page(el(D1, "152.31"), el(D2, "98.7"))))
    rows, _ = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, dt.date(2025, 3, 7)))
    assert rows == {D1: Decimal("152.31"), D2: Decimal("98.7")}
    req = route.calls.last.request
    assert req.method == "GET" and req.url.path == "/rest/adAnalytics"
    assert req.url.query == (
        b"q=analytics&pivot=ACCOUNT&timeGranularity=DAILY"
        b"&dateRange=(start:(year:2025,month:3,day:1),end:(year:2025,month:3,day:7))"
        b"&accounts=List(urn%3Ali%3AsponsoredAccount%3A507404993)"
        b"&fields=dateRange,pivotValues,costInLocalCurrency"
    )
    assert req.headers["Authorization"] == "Bearer li-access-token-0001"
    assert req.headers["LinkedIn-Version"] == "202609"
    assert req.headers["X-Restli-Protocol-Version"] == "2.0.0"


@respx.mock
def test_cost_in_local_currency_is_the_figure_never_usd():
    analytics_route().mock(
        return_value=httpx.Response(
            200, json=page(el(D1, "0.1", usd="0.11"), el(D2, "0.2", usd="0.22"), el(D3, "1234567.89", usd="1337654.32"))
        )
    )
    rows, _ = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D3))
    assert sum(rows.values()) == Decimal("1234568.19")


@respx.mock
def test_days_without_activity_are_explicit_zeros():
    analytics_route().mock(return_value=httpx.Response(200, json=page(el(D2, "5"))))
    rows, _ = run(lambda api: fetch_window(F, api, ACCOUNT, D1, D3))
    assert rows == {D1: Decimal(0), D2: Decimal(5), D3: Decimal(0)}


@respx.mock
def test_a_long_range_is_one_request():
    """No documented range cap (§4.4): a 90-day backfill is one adAnalytics request."""
    route = analytics_route().mock(return_value=httpx.Response(200, json=page()))
    start, end = dt.date(2024, 12, 20), dt.date(2025, 3, 19)  # 90 days
    windows = plan_windows(start, end, F.max_days)
    assert windows == [(start, end)]

    async def go(api):
        return [await fetch_window(F, api, ACCOUNT, s, e) for s, e in windows]

    run(go)
    ranges = [urllib.parse.parse_qs(c.request.url.query.decode())["dateRange"][0] for c in route.calls]
    assert ranges == ["(start:(year:2024,month:12,day:20),end:(year:2025,month:3,day:19))"]


# --- errors -------------------------------------------------------------------------------------


@respx.mock
def test_429_is_backed_off_then_ok():
    route = analytics_route().mock(
        side_effect=[
            httpx.Response(429, json={"status": 429, "code": "TOO_MANY_REQUESTS", "message": "slow down"}),
            httpx.Response(200, json=page(el(D1, "3.5"))),
        ]
    )
    rows, api = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert rows == {D1: Decimal("3.5")} and route.call_count == 2 and api.throttled_count == 1


@respx.mock
def test_expired_token_is_refreshed_with_the_documented_grant():
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "li-new-access-0004",
                "expires_in": 5184000,
                "refresh_token": "li-refresh-token-0003",
                "refresh_token_expires_in": 31536000,
            },
        )
    )
    route = analytics_route().mock(
        side_effect=[
            httpx.Response(
                401,
                json={
                    "status": 401,
                    "code": "EXPIRED_ACCESS_TOKEN",
                    "serviceErrorCode": 65601,
                    "message": "The token used in the request has expired",
                },
            ),
            httpx.Response(200, json=page(el(D1, "1.25"))),
        ]
    )
    rows, _ = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert rows == {D1: Decimal("1.25")}
    grant = token.calls.last.request
    assert grant.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(grant.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["li-refresh-token-0003"],
        "client_id": ["li-client"],
        "client_secret": ["li-client-secret-0002"],
    }
    assert route.calls[1].request.headers["Authorization"] == "Bearer li-new-access-0004"


@respx.mock
def test_401_after_refresh_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(200, json={"access_token": "li-new-access-0005", "expires_in": 5184000})
    )
    route = analytics_route().mock(
        return_value=httpx.Response(401, json={"status": 401, "code": "REVOKED_ACCESS_TOKEN", "message": "revoked"})
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "auth" and "re-authorise" in exc.value.message and route.call_count == 2
    for secret in CREDS.values():
        assert secret not in exc.value.message or secret == "li-client"


@respx.mock
def test_static_token_401_fails_without_refresh():
    route = analytics_route().mock(return_value=httpx.Response(401, json={"status": 401}))
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1), creds={"LINKEDIN_ACCESS_TOKEN": "li-static-0006"})
    assert exc.value.kind == "auth" and route.call_count == 1


@respx.mock
def test_refused_refresh_token_is_an_auth_error_without_secrets():
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    analytics_route().mock(return_value=httpx.Response(401, json={"status": 401}))
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "auth" and "invalid_grant" in exc.value.message
    assert "li-refresh-token-0003" not in exc.value.message and "li-client-secret-0002" not in exc.value.message


@respx.mock
def test_retired_version_names_the_version_to_bump():
    analytics_route().mock(
        return_value=httpx.Response(
            426,
            json={"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 202609 is not active"},
        )
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "config" and exc.value.platform_wide
    assert "LinkedIn-Version 202609" in exc.value.message and "set LINKEDIN_API_VERSION" in exc.value.message


@pytest.mark.parametrize("value, sent", [("", "202609"), ("202712", "202712")])
@respx.mock
def test_linkedin_api_version_overrides_the_shipped_version(monkeypatch, value, sent):
    monkeypatch.setenv("LINKEDIN_API_VERSION", value)
    route = analytics_route().mock(return_value=httpx.Response(200, json={"elements": []}))
    run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert route.calls.last.request.headers["LinkedIn-Version"] == sent


@pytest.mark.parametrize("value", ["2026-09", "202613", "latest"])
def test_a_malformed_linkedin_api_version_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv("LINKEDIN_API_VERSION", value)
    with pytest.raises(FetchError) as exc:
        li.version_headers()
    assert exc.value.kind == "config" and "LINKEDIN_API_VERSION must be" in exc.value.message


@respx.mock
def test_no_access_is_an_actionable_request_error():
    respx.get(BASE + "/rest/adAccounts/507404993").mock(
        return_value=httpx.Response(
            403,
            json={
                "status": 403,
                "code": "ACCESS_DENIED",
                "message": "Not enough permissions to access: adAccounts.GET",
            },
        )
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.account_info(api, URN))
    assert exc.value.kind == "request" and "ACCESS_DENIED" in exc.value.message and "r_ads" in exc.value.message


# --- malformed bodies are never zero -----------------------------------------------------------


def _no_cost(day):
    e = el(day, "1")
    del e["costInLocalCurrency"]
    return e


@pytest.mark.parametrize(
    "body",
    [
        page(_no_cost(D1)),  # the `fields` trap
        page(el(D1, 12.5)),  # float
        page(el(D1, None)),
        page(el(D1, "1.00", urn="urn:li:sponsoredAccount:1")),  # another account
        page(
            {
                **el(D1, "1"),
                "dateRange": {
                    "start": {"year": 2025, "month": 3, "day": 1},
                    "end": {"year": 2025, "month": 3, "day": 2},
                },
            }
        ),
        page({**el(D1, "1"), "dateRange": {"start": {"year": "2025", "month": 3, "day": 1}}}),
        page({"pivotValues": [URN], "costInLocalCurrency": "1"}),  # no dateRange
        page(el(D1, "1"), el(D1, "1")),  # a day twice
        page(el(D1, "1"), links=[{"rel": "next", "href": "/rest/adAnalytics?start=10"}]),
        {"paging": {}},  # no elements
        [],
    ],
)
@respx.mock
def test_malformed_analytics_bodies_raise(body):
    analytics_route().mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(MalformedResponse):
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D3))


@respx.mock
def test_non_json_body_raises_malformed():
    analytics_route().mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(MalformedResponse):
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))


# --- ad account ---------------------------------------------------------------------------------


@respx.mock
def test_account_info_reads_currency_from_the_ad_account():
    route = respx.get(BASE + "/rest/adAccounts/507404993").mock(
        return_value=httpx.Response(
            200, json={"id": 507404993, "name": "Acme EU", "currency": "EUR", "status": "ACTIVE", "type": "BUSINESS"}
        )
    )
    info, _ = run(lambda api: F.account_info(api, "507404993"))
    assert info == AccountInfo(URN, "EUR", "UTC", "Acme EU")
    req = route.calls.last.request
    assert req.headers["LinkedIn-Version"] == "202609" and req.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert req.headers["Authorization"] == "Bearer li-access-token-0001"


@pytest.mark.parametrize("body", [{"id": 1, "name": "x"}, {"currency": "eur"}, {"currency": 978}, ["EUR"]])
@respx.mock
def test_account_info_without_a_currency_is_malformed(body):
    respx.get(BASE + "/rest/adAccounts/507404993").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(MalformedResponse):
        run(lambda api: F.account_info(api, URN))


# --- against the sandbox ------------------------------------------------------------------------

ACCOUNTS = ["urn:li:sponsoredAccount:510000001", "urn:li:sponsoredAccount:510000978"]  # USD, EUR


@pytest.fixture(scope="module")
def _module_sandbox():
    from sandbox.server import SandboxServer

    server = SandboxServer(0).start()  # one server for the module: stopping one costs 0.5 s
    yield server
    server.stop()


@pytest.fixture
def sandbox(_module_sandbox, monkeypatch):
    from conftest import keep_linkedin_version_current

    keep_linkedin_version_current(monkeypatch)
    _module_sandbox.ctx.reset()
    return _module_sandbox


def sb_creds():
    from sandbox.credentials import FAKE_CREDENTIALS

    return dict(FAKE_CREDENTIALS["linkedin"])


def run_sandbox(sandbox, fn, creds=None):
    return run(fn, base=sandbox.url, creds=creds or sb_creds(), token_url=sandbox.url + "/oauth/v2/accessToken")


async def fetch_range(api, account, start, end):
    info = await F.account_info(api, account)
    days = {}
    for s, e in plan_windows(start, end, F.max_days):
        days.update(await fetch_window(F, api, info, s, e))
    return info, days


def test_sandbox_two_accounts_exact_totals_over_several_windows(sandbox):
    start, end = dt.date(2026, 5, 3), dt.date(2026, 7, 20)  # 79 days: one request an account

    async def both(api):
        return await asyncio.gather(*(fetch_range(api, a, start, end) for a in ACCOUNTS))

    results, api = run_sandbox(sandbox, both)
    for account, (info, days) in zip(ACCOUNTS, results):
        expected = sandbox.sandbox.expected_total("linkedin", account, start, end)
        assert len(days) == 79
        assert sum(days.values()) == Decimal(expected["spend"])
        assert {d.isoformat(): v for d, v in days.items()} == {k: Decimal(v) for k, v in expected["days"].items()}
        assert info.account_id == account and info.currency == expected["currency"] and info.timezone == "UTC"
    assert [r[0].currency for r in results] == ["USD", "EUR"]
    assert api.request_count == 2 * (1 + 1)  # the account lookup and one analytics request
    assert sandbox.ctx.token_grants.get("linkedin", 0) == 0  # the configured access token was good


def raw_get(sandbox, query, headers=None):
    h = {
        "Authorization": "Bearer sandbox-linkedin-token",
        "LinkedIn-Version": li.linkedin_version(),
        "X-Restli-Protocol-Version": "2.0.0",
    }
    h.update(headers or {})
    return httpx.get(f"{sandbox.url}/rest/adAnalytics?{query}", headers={k: v for k, v in h.items() if v})


GOOD = li.build_analytics_query(ACCOUNTS[1], dt.date(2026, 6, 1), dt.date(2026, 6, 7))


def test_sandbox_serves_the_documented_request(sandbox):
    resp = raw_get(sandbox, GOOD)
    assert resp.status_code == 200
    els = resp.json()["elements"]
    assert els and set(els[0]) == {"dateRange", "pivotValues", "costInLocalCurrency"}
    assert els[0]["pivotValues"] == [ACCOUNTS[1]]


@pytest.mark.parametrize(
    "query, headers, status, code",
    [
        (GOOD, {"LinkedIn-Version": ""}, 400, "VERSION_MISSING"),
        (GOOD, {"LinkedIn-Version": "202401"}, 426, "NONEXISTENT_VERSION"),
        (GOOD, {"X-Restli-Protocol-Version": ""}, 400, "ILLEGAL_ARGUMENT"),
        (GOOD, {"Authorization": ""}, 401, "INVALID_ACCESS_TOKEN"),
        (GOOD.replace("List(urn%3Ali", "List(urn%253Ali"), None, 400, "ILLEGAL_ARGUMENT"),  # double-encoded
        (
            GOOD.replace("dateRange=(start:(year:2026,month:6,day:1),", "dateRange=(start:(year:2026,month:6),"),
            None,
            400,
            "ILLEGAL_ARGUMENT",
        ),
        (GOOD.replace("timeGranularity=DAILY&", ""), None, 400, "ILLEGAL_ARGUMENT"),
        (GOOD.replace("q=analytics&", ""), None, 400, "ILLEGAL_ARGUMENT"),
    ],
)
def test_sandbox_rejects_what_linkedin_rejects(sandbox, query, headers, status, code):
    resp = raw_get(sandbox, query, headers)
    assert resp.status_code == status and resp.json()["code"] == code and resp.json()["status"] == status


def test_sandbox_without_fields_returns_only_impressions_and_clicks(sandbox):
    resp = raw_get(sandbox, GOOD.split("&fields=")[0])
    assert resp.status_code == 200
    assert {k for e in resp.json()["elements"] for k in e} == {"impressions", "clicks"}


ENCODED_WRONG = [
    GOOD.replace("dateRange=(", "dateRange=%28").replace("7))&acc", "7%29%29&acc"),  # encoded parentheses
    GOOD.replace("%3A", ":"),  # raw URN colons
]


@pytest.mark.parametrize("query", ENCODED_WRONG)
def test_emulator_rejects_wrong_restli_encoding(sandbox, query):
    # Calls the emulator with the undecoded query attached, as the server would hand it on.
    from sandbox.common import Request

    req = Request(
        "GET",
        "/rest/adAnalytics",
        urllib.parse.parse_qs(query, keep_blank_values=True),
        {
            "authorization": "Bearer sandbox-linkedin-token",
            "linkedin-version": li.linkedin_version(),
            "x-restli-protocol-version": "2.0.0",
        },
        b"",
    )
    req.raw_query = query
    resp = sandbox.sandbox.handle(req)
    assert resp.status == 400 and b"ILLEGAL_ARGUMENT" in resp.body
    req.raw_query = GOOD
    assert sandbox.sandbox.handle(req).status == 200


@pytest.mark.parametrize("query", ENCODED_WRONG)
def test_sandbox_server_rejects_wrong_restli_encoding(sandbox, query):
    resp = raw_get(sandbox, query)
    assert resp.status_code == 400 and resp.json()["code"] == "ILLEGAL_ARGUMENT"


def test_sandbox_reads_restli_objects_with_keys_in_any_order(sandbox):
    # linkedin-api-client sorts object keys: end before start, day before month before year.
    # LinkedIn reads a Rest.li object whatever the key order; so must the sandbox.
    sorted_keys = GOOD.replace(
        "dateRange=(start:(year:2026,month:6,day:1),end:(year:2026,month:6,day:7))",
        "dateRange=(end:(day:7,month:6,year:2026),start:(day:1,month:6,year:2026))",
    )
    assert sorted_keys != GOOD
    good, other = raw_get(sandbox, GOOD), raw_get(sandbox, sorted_keys)
    assert other.status_code == 200, other.text
    assert other.json() == good.json() and len(good.json()["elements"]) >= 6
    days = [e["dateRange"]["start"]["day"] for e in good.json()["elements"]]
    expected = sandbox.sandbox.expected_total("linkedin", ACCOUNTS[1], dt.date(2026, 6, 1), dt.date(2026, 6, 7))
    assert days == [int(d[-2:]) for d, v in expected["days"].items() if Decimal(v) != 0]


@pytest.mark.parametrize(
    "query, blames_encoding",
    [
        (GOOD.replace("dateRange=(", "dateRange=%28").replace("7))&acc", "7%29%29&acc"), True),
        (GOOD.replace("day:1),", "day%3A1),"), True),
        (GOOD.replace("(year:2026,month:6,day:1)", "(year:2026,month:6)"), False),  # a bound without its day
        (GOOD.replace("start:(", "begin:("), False),  # an unknown key
        (GOOD.replace("%3A", ":"), False),  # raw colons in the URN
    ],
)
def test_sandbox_restli_errors_say_what_is_wrong(sandbox, query, blames_encoding):
    resp = raw_get(sandbox, query)
    assert resp.status_code == 400 and resp.json()["code"] == "ILLEGAL_ARGUMENT"
    assert ("must not be percent-encoded" in resp.json()["message"]) is blames_encoding, resp.json()


def test_restli_decoder():
    from sandbox.linkedin import RestliError, parse_restli

    assert parse_restli("(b:(y:1),a:List(urn%3Ali%3Ax%3A1,2),c:)") == {
        "b": {"y": "1"},
        "a": ["urn:li:x:1", "2"],
        "c": "",
    }
    for bad in ("(a:1", "(a:1))", "(a(1))", "List(a", "(a:1,a:2)", "(:1)"):
        with pytest.raises(RestliError):
            parse_restli(bad)


def test_fetcher_with_a_retired_version_fails_naming_it(sandbox, monkeypatch):
    monkeypatch.setenv("LINKEDIN_API_VERSION", "202401")
    with pytest.raises(FetchError) as exc:
        run_sandbox(sandbox, lambda api: fetch_range(api, ACCOUNTS[0], dt.date(2026, 6, 1), dt.date(2026, 6, 1)))
    assert exc.value.kind == "config" and "LinkedIn-Version 202401" in exc.value.message


def test_sandbox_throttle_then_ok(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": "throttle", "count": 2}]})
    day = dt.date(2026, 6, 3)
    (info, days), api = run_sandbox(sandbox, lambda api: fetch_range(api, ACCOUNTS[1], day, day))
    assert days[day] == Decimal(sandbox.sandbox.expected_total("linkedin", ACCOUNTS[1], day, day)["spend"])
    assert api.throttled_count == 2


def test_sandbox_expired_token_is_refreshed(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": "expired_token", "count": 1}]})
    start, end = dt.date(2026, 6, 1), dt.date(2026, 6, 10)
    (info, days), api = run_sandbox(sandbox, lambda api: fetch_range(api, ACCOUNTS[0], start, end))
    assert sum(days.values()) == Decimal(sandbox.sandbox.expected_total("linkedin", ACCOUNTS[0], start, end)["spend"])
    assert sandbox.ctx.token_grants["linkedin"] == 1


def test_sandbox_expired_token_without_refresh_credentials_fails_as_auth(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": "expired_token", "count": 1}]})
    with pytest.raises(FetchError) as exc:
        run_sandbox(
            sandbox,
            lambda api: fetch_range(api, ACCOUNTS[0], dt.date(2026, 6, 1), dt.date(2026, 6, 1)),
            creds={"LINKEDIN_ACCESS_TOKEN": "sandbox-linkedin-token"},
        )
    assert exc.value.kind == "auth" and "sandbox-linkedin-token" not in exc.value.message


def test_sandbox_wrong_client_secret_fails_refresh_as_auth(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": "expired_token", "count": 1}]})
    creds = {**sb_creds(), "LINKEDIN_CLIENT_SECRET": "not-the-secret"}
    with pytest.raises(FetchError) as exc:
        run_sandbox(
            sandbox, lambda api: fetch_range(api, ACCOUNTS[0], dt.date(2026, 6, 1), dt.date(2026, 6, 1)), creds=creds
        )
    assert exc.value.kind == "auth" and "invalid_client" in exc.value.message
    assert "not-the-secret" not in exc.value.message


@pytest.mark.parametrize("kind, count, expected_kind", [("5xx", None, "server"), ("malformed", 1, "malformed")])
def test_sandbox_faults_end_as_fetch_errors(sandbox, kind, count, expected_kind):
    async def go(api):
        info = await F.account_info(api, ACCOUNTS[0])
        sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": kind, "count": count}]})
        return await fetch_window(F, api, info, dt.date(2026, 6, 1), dt.date(2026, 6, 5))

    with pytest.raises(FetchError) as exc:
        run_sandbox(sandbox, go)
    assert exc.value.kind == expected_kind


def test_sandbox_malformed_ad_account_is_never_usd_by_default(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "linkedin", "kind": "malformed", "count": 1}]})
    with pytest.raises(MalformedResponse, match="currency"):
        run_sandbox(sandbox, lambda api: F.account_info(api, ACCOUNTS[0]))
