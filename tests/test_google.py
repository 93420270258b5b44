"""Google Ads searchStream: the fetcher against recorded shapes (respx) and against the sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.parse
from decimal import Decimal

import httpx
import pytest
import respx

import fetchers.google as google
from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import PlatformApi, RateBudget, fetch_window, fetch_window_and_info, plan_windows

BASE = "https://googleads.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
STREAM = f"{BASE}/v26/customers/1234567890/googleAds:searchStream"
CREDS = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "devtoken-ABCDEFGHIJKLMNOPQRS",
    "GOOGLE_ADS_CLIENT_ID": "cid.apps",
    "GOOGLE_ADS_CLIENT_SECRET": "client-secret-xyz",
    "GOOGLE_ADS_REFRESH_TOKEN": "1//refresh-token-abc",
}
ACCOUNT = AccountInfo("1234567890", "USD", "America/New_York")
MASK = "segments.date,customer.currencyCode,customer.timeZone,customer.descriptiveName,metrics.costMicros"
CUSTOMER = {
    "resourceName": "customers/1234567890",
    "currencyCode": "USD",
    "timeZone": "America/New_York",
    "descriptiveName": "Acme US",
}
FAILURE = "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure"


def run(coro):
    return asyncio.run(coro)


async def with_api(fn, creds=None, base=BASE, token_url=TOKEN_URL):
    creds = creds or CREDS
    f = get_fetcher("google")
    async with httpx.AsyncClient() as client:
        api = PlatformApi(
            f,
            client,
            base_url=base,
            credentials=creds,
            auth=f.build_auth(creds, token_url, None),
            budget=RateBudget(60000),
        )
        return await fn(f, api)


def token_route(*tokens):
    return respx.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": t, "expires_in": 3599, "token_type": "Bearer"}) for t in tokens
        ]
    )


def result(day, micros=None, customer=CUSTOMER):
    r = {"customer": dict(customer), "segments": {"date": day}, "metrics": {}}
    if micros is not None:
        r["metrics"]["costMicros"] = micros
    return r


def stream(*batches):
    return httpx.Response(200, json=[{"results": list(b), "fieldMask": MASK, "requestId": "r"} for b in batches])


def rpc(http, status, family=None, value=None, message="failed", retry_delay=None, wrap=False):
    err = {"code": http, "message": message, "status": status}
    if family:
        e = {"errorCode": {family: value}, "message": message}
        if retry_delay:
            e["details"] = {"quotaErrorDetails": {"rateScope": "DEVELOPER", "retryDelay": retry_delay}}
        err["details"] = [{"@type": FAILURE, "errors": [e], "requestId": "r"}]
    return httpx.Response(http, json=[{"error": err}] if wrap else {"error": err})


def daily(f, api, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 1)):
    return fetch_window(f, api, ACCOUNT, start, end)


# --- request shape ------------------------------------------------------------------------------


@respx.mock
def test_search_stream_request_is_exactly_what_google_documents():
    tok = token_route("ya29.access-1")
    route = respx.post(STREAM).mock(return_value=stream([result("2026-03-01", "152310000")]))
    creds = {**CREDS, "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "987-654-3210"}
    rows = run(with_api(lambda f, api: daily(f, api, dt.date(2026, 3, 1), dt.date(2026, 3, 7)), creds))
    req = route.calls.last.request
    assert json.loads(req.content) == {
        "query": "SELECT segments.date, customer.currency_code, customer.time_zone, "
        "customer.descriptive_name, metrics.cost_micros FROM customer WHERE "
        "segments.date BETWEEN '2026-03-01' AND '2026-03-07' "
        "ORDER BY segments.date"
    }
    assert req.headers["Authorization"] == "Bearer ya29.access-1"
    assert req.headers["developer-token"] == "devtoken-ABCDEFGHIJKLMNOPQRS"
    assert req.headers["login-customer-id"] == "9876543210"
    assert req.headers["Content-Type"] == "application/json"
    form = dict(urllib.parse.parse_qsl(tok.calls.last.request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "1//refresh-token-abc",
        "client_id": "cid.apps",
        "client_secret": "client-secret-xyz",
    }
    assert rows[dt.date(2026, 3, 1)] == Decimal("152.31") and len(rows) == 7


@respx.mock
def test_no_login_customer_id_header_unless_configured():
    token_route("ya29.a")
    route = respx.post(STREAM).mock(return_value=stream([]))
    run(with_api(daily))
    assert "login-customer-id" not in route.calls.last.request.headers


def test_bad_login_customer_id_is_a_config_error():
    with pytest.raises(FetchError) as e:
        google.request_headers({**CREDS, "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "98765"})
    assert e.value.kind == "config" and "GOOGLE_ADS_LOGIN_CUSTOMER_ID" in e.value.message


@respx.mock
def test_account_info_queries_the_customer_resource():
    token_route("ya29.a")
    route = respx.post(STREAM).mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "results": [
                        {
                            "customer": {
                                "resourceName": "customers/1234567890",
                                "id": "1234567890",
                                "currencyCode": "EUR",
                                "timeZone": "Europe/Berlin",
                                "descriptiveName": "Shop",
                            }
                        }
                    ],
                    "fieldMask": "customer.id,customer.currencyCode,customer.timeZone,customer.descriptiveName",
                }
            ],
        )
    )
    info = run(with_api(lambda f, api: f.account_info(api, "123-456-7890")))
    assert info == AccountInfo("1234567890", "EUR", "Europe/Berlin", "Shop")
    assert json.loads(route.calls.last.request.content)["query"] == (
        "SELECT customer.id, customer.currency_code, customer.time_zone, customer.descriptive_name FROM customer"
    )


# --- batches and money --------------------------------------------------------------------------


@respx.mock
def test_reads_every_batch_divides_micros_exactly_and_fills_omitted_days():
    token_route("ya29.a")
    respx.post(STREAM).mock(
        return_value=stream(
            [result("2026-03-01", "152310000"), result("2026-03-02", "98700000")],
            [result("2026-03-03"), result("2026-03-05", "1")],  # 03-03: zero cost, field left out
            [result("2026-03-06", "123456789012345")],
        )
    )
    rows = run(with_api(lambda f, api: daily(f, api, dt.date(2026, 3, 1), dt.date(2026, 3, 6))))
    assert rows == {
        dt.date(2026, 3, 1): Decimal("152.31"),
        dt.date(2026, 3, 2): Decimal("98.7"),
        dt.date(2026, 3, 3): Decimal(0),
        dt.date(2026, 3, 4): Decimal(0),
        dt.date(2026, 3, 5): Decimal("0.000001"),
        dt.date(2026, 3, 6): Decimal("123456789.012345"),
    }
    assert sum(rows.values()) == Decimal("123457040.022346")


def test_empty_stream_shapes_are_no_rows():
    assert google.parse_daily_cost([]) == {}
    assert google.parse_daily_cost([{"fieldMask": MASK, "requestId": "r"}]) == {}


@pytest.mark.parametrize(
    "body,why",
    [
        ({"results": []}, "not a JSON array"),
        ([["x"]], "batch is not an object"),
        ([{"results": {"a": 1}, "fieldMask": MASK}], "not a list"),
        ([{"results": [result("2026-03-01", "1")], "fieldMask": "segments.date"}], "metrics.costMicros"),
        ([{"results": [result("2026-03-01", "1")]}], "metrics.costMicros"),
        ([{"results": [result("2026-03-01", 1.5)], "fieldMask": MASK}], "whole number"),
        ([{"results": [result("2026-03-01", "12.5")], "fieldMask": MASK}], "whole number"),
        ([{"results": [result("2026-03-01", "abc")], "fieldMask": MASK}], "whole number"),
        ([{"results": [{"metrics": {"costMicros": "1"}}], "fieldMask": MASK}], "segments"),
        ([{"results": [result("03/01/2026", "1")], "fieldMask": MASK}], "not a YYYY-MM-DD day"),
        ([{"results": [{"segments": {"date": "2026-03-01"}, "metrics": "1"}], "fieldMask": MASK}], "not an object"),
        ([{"results": [result("2026-03-01", "1"), result("2026-03-01", "2")], "fieldMask": MASK}], "twice"),
    ],
)
def test_malformed_streams_are_refused(body, why):
    with pytest.raises(MalformedResponse, match=why):
        google.parse_daily_cost(body)


@respx.mock
def test_non_json_body_is_malformed():
    token_route("ya29.a")
    respx.post(STREAM).mock(return_value=httpx.Response(200, text="<html>"))
    with pytest.raises(MalformedResponse):
        run(with_api(daily))


@pytest.mark.parametrize(
    "customer", [{"timeZone": "UTC"}, {"currencyCode": "USD"}, {"currencyCode": 840, "timeZone": "UTC"}]
)
def test_customer_without_currency_or_timezone_is_malformed(customer):
    body = [{"results": [{"customer": customer}], "fieldMask": "customer.currencyCode,customer.timeZone"}]
    with pytest.raises(MalformedResponse):
        google.parse_customer(body, "1234567890")


# --- errors -------------------------------------------------------------------------------------


@respx.mock
def test_resource_exhausted_waits_retry_delay_then_succeeds():
    token_route("ya29.a")
    route = respx.post(STREAM).mock(
        side_effect=[
            rpc(
                429,
                "RESOURCE_EXHAUSTED",
                "quotaError",
                "RESOURCE_TEMPORARILY_EXHAUSTED",
                retry_delay="0.01s",
                wrap=True,
            ),
            stream([result("2026-03-01", "5000000")]),
        ]
    )
    rows = run(with_api(daily))
    assert rows == {dt.date(2026, 3, 1): Decimal(5)} and route.call_count == 2


def test_retry_delay_becomes_retry_after():
    v = google.classify(rpc(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", retry_delay="60s"))
    assert (v.action, v.kind, v.retry_after) == ("retry", "throttled", 60.0)
    wrapped = google.classify(
        rpc(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", retry_delay="7s", wrap=True)
    )
    assert wrapped.retry_after == 7.0


@respx.mock
def test_daily_quota_with_a_long_delay_fails_as_throttled_without_waiting():
    token_route("ya29.a")
    respx.post(STREAM).mock(
        return_value=rpc(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", retry_delay="3600s")
    )
    with pytest.raises(FetchError) as e:
        run(with_api(daily))
    assert e.value.kind == "throttled" and "try again later" in e.value.message


@respx.mock
def test_unauthenticated_refreshes_once_then_succeeds():
    tok = token_route("ya29.old", "ya29.new")
    route = respx.post(STREAM).mock(
        side_effect=[
            rpc(401, "UNAUTHENTICATED", message="Request had invalid authentication credentials."),
            stream([result("2026-03-01", "1000000")]),
        ]
    )
    assert run(with_api(daily)) == {dt.date(2026, 3, 1): Decimal(1)}
    assert tok.call_count == 2
    assert route.calls.last.request.headers["Authorization"] == "Bearer ya29.new"


@respx.mock
def test_401_after_refresh_is_an_auth_failure():
    token_route("ya29.old", "ya29.new")
    respx.post(STREAM).mock(return_value=rpc(401, "UNAUTHENTICATED"))
    with pytest.raises(FetchError) as e:
        run(with_api(daily))
    assert e.value.kind == "auth" and e.value.platform_wide


@respx.mock
def test_revoked_refresh_token_is_an_auth_failure_without_secrets():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        )
    )
    with pytest.raises(FetchError) as e:
        run(with_api(daily))
    assert e.value.kind == "auth" and "invalid_grant" in e.value.message
    for secret in CREDS.values():
        assert secret not in e.value.message


@pytest.mark.parametrize(
    "response,kind,says",
    [
        (
            rpc(403, "PERMISSION_DENIED", "authorizationError", "USER_PERMISSION_DENIED"),
            "request",
            "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
        ),
        (
            rpc(403, "PERMISSION_DENIED", "authorizationError", "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION"),
            "config",
            "access",
        ),
        (rpc(403, "PERMISSION_DENIED", "authorizationError", "DEVELOPER_TOKEN_NOT_APPROVED"), "config", "access"),
        (
            rpc(400, "INVALID_ARGUMENT", "requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING"),
            "auth",
            "GOOGLE_ADS_DEVELOPER_TOKEN",
        ),
        (rpc(403, "PERMISSION_DENIED", "authorizationError", "CUSTOMER_NOT_ENABLED"), "request", "not enabled"),
        (
            rpc(400, "INVALID_ARGUMENT", "queryError", "UNRECOGNIZED_FIELD", "Unrecognized field"),
            "request",
            "queryError.UNRECOGNIZED_FIELD",
        ),
        (httpx.Response(404, text="<html>The requested URL was not found</html>"), "config", "API_VERSION"),
    ],
)
def test_errors_fail_with_an_actionable_reason(response, kind, says):
    v = google.classify(response)
    assert (v.action, v.kind) == ("fail", kind)
    assert says in v.message


def test_error_inside_a_200_stream_is_not_data():
    resp = httpx.Response(
        200,
        json=[
            {"results": [result("2026-03-01", "1")], "fieldMask": MASK},
            {"error": {"code": 500, "status": "INTERNAL", "message": "oops"}},
        ],
    )
    assert google.classify(resp).action == "retry"
    with pytest.raises(FetchError):
        google.parse_daily_cost(resp.json())


@respx.mock
def test_permanent_5xx_is_a_server_failure():
    token_route("ya29.a")
    respx.post(STREAM).mock(return_value=rpc(503, "UNAVAILABLE", message="The service is currently unavailable."))
    with pytest.raises(FetchError) as e:
        run(with_api(daily))
    assert e.value.kind == "server"


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,want", [("123-456-7890", "1234567890"), ("1234567890", "1234567890"), (" 123-456-7890 ", "1234567890")]
)
def test_customer_id_forms(raw, want):
    assert get_fetcher("google").normalize_account_id(raw) == want


@pytest.mark.parametrize("raw", ["123456789", "12345678901", "123-4567-890", "abc-def-ghij", "", "123 456 7890"])
def test_bad_customer_ids_name_the_platform_value_and_form(raw):
    with pytest.raises(ValueError) as e:
        get_fetcher("google").normalize_account_id(raw)
    assert "google" in str(e.value) and repr(raw) in str(e.value) and "123-456-7890" in str(e.value)


# --- against the sandbox ------------------------------------------------------------------------


def sbx_creds(sandbox_env):
    return {k: v for k, v in sandbox_env.items() if k.startswith("GOOGLE_ADS_") and not k.endswith("_URL")}


async def sandbox_total(f, api, account_id, start, end):
    info = await f.account_info(api, account_id)
    total = Decimal(0)
    for s, e in plan_windows(start, end, f.max_days):
        total += sum((await fetch_window(f, api, info, s, e)).values())
    return info, total


def sbx(fn, sandbox, sandbox_env, **extra):
    return run(with_api(fn, {**sbx_creds(sandbox_env), **extra}, sandbox.url, sandbox_env["GOOGLE_ADS_TOKEN_URL"]))


@pytest.mark.parametrize("account,currency", [("123-456-7978", "EUR"), ("1234567392", "JPY"), ("5550001111", "USD")])
def test_sandbox_totals_match_exactly_over_windows(sandbox, sandbox_env, account, currency):
    start, end = dt.date(2024, 6, 1), dt.date(2026, 6, 30)  # 760 days: one window, no range cap
    info, total = sbx(
        lambda f, api: sandbox_total(f, api, account, start, end),
        sandbox,
        sandbox_env,
        GOOGLE_ADS_LOGIN_CUSTOMER_ID="111-222-3333",
    )
    assert info.currency == currency
    assert total == Decimal(sandbox.sandbox.expected_total("google", info.account_id, start, end)["spend"])
    assert sandbox.ctx.token_grants["google"] == 1


def test_sandbox_rejects_what_google_rejects(sandbox):
    url = f"{sandbox.url}/v26/customers/1234567890/googleAds:searchStream"
    token = httpx.post(
        f"{sandbox.url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sandbox-google-client",
            "client_secret": "sandbox-google-secret",
            "refresh_token": "sandbox-google-refresh",
        },
    ).json()["access_token"]
    h = {"Authorization": f"Bearer {token}", "developer-token": "sandbox-google-devtoken"}
    q = {
        "query": "SELECT segments.date, metrics.cost_micros FROM customer "
        "WHERE segments.date BETWEEN '2026-03-01' AND '2026-03-31'"
    }

    def code(resp):
        body = resp.json()
        err = (body[0] if isinstance(body, list) else body)["error"]
        return [*err["details"][0]["errors"][0]["errorCode"].values()][0] if "details" in err else err["status"]

    assert httpx.post(url, json=q, headers=h).status_code == 200
    assert (
        code(httpx.post(url, json=q, headers={"Authorization": h["Authorization"]}))
        == "DEVELOPER_TOKEN_PARAMETER_MISSING"
    )
    assert code(httpx.post(url, json=q, headers={"developer-token": "x"})) == "UNAUTHENTICATED"
    assert (
        code(httpx.post(url, json={"query": "SELECT segments.date, metrics.cost_micros FROM customer"}, headers=h))
        == "EXPECTED_FILTERS_ON_DATE_RANGE"
    )
    assert code(httpx.post(url, json={"query": "SELECT metrics.cost FROM customer"}, headers=h)) == "UNRECOGNIZED_FIELD"
    bogus = {"query": q["query"].replace("segments.date,", "segments.date, customer.currency,")}
    assert code(httpx.post(url, json=bogus, headers=h)) == "UNRECOGNIZED_FIELD"
    # the spend query's customer fields: camelCase in every row, in the fieldMask in SELECT order (§2.3)
    spend_query = {"query": google.build_spend_query(dt.date(2026, 3, 1), dt.date(2026, 3, 2))}
    batches = httpx.post(url, json=spend_query, headers=h).json()
    assert batches[0]["fieldMask"] == (
        "segments.date,customer.currencyCode,customer.timeZone,customer.descriptiveName,metrics.costMicros"
    )
    from sandbox.data import account_profile

    prof = account_profile("google", "1234567890")
    assert {
        (r["customer"]["resourceName"], r["customer"]["currencyCode"], r["customer"]["timeZone"])
        for b in batches
        for r in b.get("results", [])
    } == {("customers/1234567890", prof["currency"], prof["timezone"])}
    assert code(httpx.post(url, json={"q": q["query"]}, headers=h)) == "INVALID_ARGUMENT"
    assert code(httpx.post(url, json={}, headers=h)) == "REQUIRED_FIELD_MISSING"
    assert code(httpx.post(url, json=q, headers={**h, "login-customer-id": "111-222-3333"})) == "INVALID_CUSTOMER_ID"
    assert httpx.get(url, headers=h).status_code == 405
    retired = httpx.post(url.replace("/v26/", "/v19/"), json=q, headers=h)
    assert retired.status_code == 404 and "text/html" in retired.headers["content-type"]
    bad_grant = httpx.post(
        f"{sandbox.url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sandbox-google-client",
            "client_secret": "sandbox-google-secret",
            "refresh_token": "nope",
        },
    )
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "invalid_grant"


def test_sandbox_throttle_then_ok(sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "throttle", "count": 1}]})
    start = end = dt.date(2026, 3, 2)
    _, total = sbx(lambda f, api: sandbox_total(f, api, "1234567890", start, end), sandbox, sandbox_env)
    assert total == Decimal(sandbox.sandbox.expected_total("google", "1234567890", start, end)["spend"])
    assert sandbox.ctx.throttled["google"] == 1


def test_sandbox_expired_token_is_refreshed(sandbox, sandbox_env):
    async def go(f, api):
        info = await f.account_info(api, "1234567890")
        sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "expired_token"}]})
        return sum((await fetch_window(f, api, info, dt.date(2026, 3, 1), dt.date(2026, 3, 31))).values())

    total = sbx(go, sandbox, sandbox_env)
    assert total == Decimal(
        sandbox.sandbox.expected_total("google", "1234567890", dt.date(2026, 3, 1), dt.date(2026, 3, 31))["spend"]
    )
    assert sandbox.ctx.token_grants["google"] == 2


def test_sandbox_permanent_5xx_fails(sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "5xx", "count": None}]})
    with pytest.raises(FetchError) as e:
        sbx(lambda f, api: f.account_info(api, "1234567890"), sandbox, sandbox_env)
    assert e.value.kind == "server"


def test_sandbox_malformed_is_never_zero(sandbox, sandbox_env):
    async def go(f, api):
        info = await f.account_info(api, "1234567890")
        sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "malformed"}]})
        return await fetch_window(f, api, info, dt.date(2026, 1, 1), dt.date(2026, 1, 5))

    with pytest.raises(MalformedResponse):
        sbx(go, sandbox, sandbox_env)


def test_sandbox_wrong_refresh_token_is_an_auth_failure(sandbox, sandbox_env):
    with pytest.raises(FetchError) as e:
        sbx(
            lambda f, api: f.account_info(api, "1234567890"),
            sandbox,
            sandbox_env,
            GOOGLE_ADS_REFRESH_TOKEN="stale-refresh-token",
        )
    assert e.value.kind == "auth" and "stale-refresh-token" not in e.value.message


def test_sandbox_retired_version_is_a_config_error(sandbox, sandbox_env, monkeypatch):
    monkeypatch.setattr(google, "API_VERSION", "v19")
    with pytest.raises(FetchError) as e:
        sbx(lambda f, api: f.account_info(api, "1234567890"), sandbox, sandbox_env)
    assert e.value.kind == "config" and "API_VERSION" in e.value.message


# --- the account's info from the spend answer (issue 19.3) -----------------------------------------


def first_window(start, end, account="123-456-7890"):
    return lambda f, api: fetch_window_and_info(f, api, account, start, end)


@respx.mock
def test_ninety_days_are_one_request_that_also_says_the_currency_and_time_zone():
    token_route("ya29.a")
    start = dt.date(2026, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(90)]
    route = respx.post(STREAM).mock(
        return_value=stream(*([result(d.isoformat(), "1000000") for d in days[i : i + 10]] for i in range(0, 90, 10)))
    )
    info, rows = run(with_api(first_window(days[0], days[-1])))
    assert route.call_count == 1  # no separate customer lookup, no second window
    assert json.loads(route.calls.last.request.content) == {
        "query": "SELECT segments.date, customer.currency_code, customer.time_zone, customer.descriptive_name, "
        "metrics.cost_micros FROM customer WHERE segments.date BETWEEN '2026-01-01' AND '2026-03-31' "
        "ORDER BY segments.date"
    }
    assert info == AccountInfo("1234567890", "USD", "America/New_York", "Acme US")
    assert rows == {d: Decimal(1) for d in days}


@respx.mock
def test_an_answer_without_rows_falls_back_to_the_customer_lookup():
    token_route("ya29.a")
    lookup = {
        "results": [{"customer": {**CUSTOMER, "id": "1234567890", "currencyCode": "EUR"}}],
        "fieldMask": "customer.id,customer.currencyCode,customer.timeZone,customer.descriptiveName",
    }
    route = respx.post(STREAM).mock(
        side_effect=[
            httpx.Response(200, json=[{"fieldMask": MASK, "requestId": "r"}]),
            httpx.Response(200, json=[lookup]),
        ]
    )
    info, rows = run(with_api(first_window(dt.date(2026, 3, 1), dt.date(2026, 3, 2))))
    assert [json.loads(c.request.content)["query"] for c in route.calls] == [
        "SELECT segments.date, customer.currency_code, customer.time_zone, customer.descriptive_name, "
        "metrics.cost_micros FROM customer WHERE segments.date BETWEEN '2026-03-01' AND '2026-03-02' "
        "ORDER BY segments.date",
        google.ACCOUNT_QUERY,
    ]
    assert info == AccountInfo("1234567890", "EUR", "America/New_York", "Acme US")
    assert rows == {dt.date(2026, 3, 1): Decimal(0), dt.date(2026, 3, 2): Decimal(0)}


@pytest.mark.parametrize(
    "second", [{**CUSTOMER, "currencyCode": "EUR"}, {**CUSTOMER, "timeZone": "UTC"}, {"resourceName": "customers/1"}]
)
def test_rows_that_disagree_on_the_account_or_lack_it_are_malformed(second):
    body = [{"results": [result("2026-03-01", "1"), result("2026-03-02", "1", second)], "fieldMask": MASK}]
    with pytest.raises(MalformedResponse, match="1234567890"):
        google.parse_daily_and_info(body, "1234567890")


@respx.mock
def test_a_stored_currency_the_rows_contradict_is_refused_never_converted():
    token_route("ya29.a")
    respx.post(STREAM).mock(return_value=stream([result("2026-03-01", "1000000", {**CUSTOMER, "currencyCode": "EUR"})]))
    with pytest.raises(MalformedResponse, match="reports in EUR, but its stored currency is USD"):
        run(with_api(daily))


def test_only_platforms_that_declare_it_carry_info_in_their_data():
    from fetchers.specs import SPECS

    assert {p for p, s in SPECS.items() if s.info_in_data} == {"google", "meta"}
    for p, s in SPECS.items():
        assert hasattr(get_fetcher(p), "fetch_daily_and_info") == s.info_in_data, p
    with pytest.raises(ValueError, match="does not carry"):
        run(fetch_window_and_info(get_fetcher("reddit"), None, "1", dt.date(2026, 1, 1), dt.date(2026, 1, 1)))
