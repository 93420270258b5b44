"""TikTok: exact requests and parsing (respx), then the fetcher against the sandbox emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest
import respx

from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import PlatformApi, RateBudget, fetch_window, plan_windows

BASE = "https://business-api.tiktok.com"
REPORT = BASE + "/open_api/v1.3/report/integrated/get/"
INFO = BASE + "/open_api/v1.3/advertiser/info/"
TOKEN = "tt-secret-token-123456"
ADV = "7001234567890"
CREDS = {"TIKTOK_ACCESS_TOKEN": TOKEN, "TIKTOK_APP_ID": "app", "TIKTOK_APP_SECRET": "tt-app-secret-xyz"}
F = get_fetcher("tiktok")
ACCOUNT = AccountInfo(ADV, "USD", "America/New_York")


def run(coro_fn, base=BASE, creds=CREDS):
    async def main():
        async with httpx.AsyncClient() as client:
            api = PlatformApi(
                F,
                client,
                base_url=base,
                credentials=creds,
                auth=F.build_auth(creds, "", on_rotate=None),
                budget=RateBudget(60000),
            )
            return await coro_fn(api), api

    return asyncio.run(main())


def ok(rows, page=1, total_page=1, total_number=None, page_size=1000):
    return {
        "code": 0,
        "message": "OK",
        "request_id": "r1",
        "data": {
            "list": rows,
            "page_info": {
                "page": page,
                "page_size": page_size,
                "total_number": len(rows) if total_number is None else total_number,
                "total_page": total_page,
            },
        },
    }


def row(day, spend, adv=ADV):
    return {"dimensions": {"advertiser_id": adv, "stat_time_day": f"{day} 00:00:00"}, "metrics": {"spend": spend}}


def err(code, message):
    return {"code": code, "message": message, "request_id": "r2", "data": {}}


D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)


# --- ids -----------------------------------------------------------------------------------------


def test_normalize_account_id():
    assert F.normalize_account_id(" 7123456789012345 ") == "7123456789012345"
    for bad in ("act_123456", "7123-456", "", "abc", "12"):
        with pytest.raises(ValueError, match=r"tiktok.*expected digits"):
            F.normalize_account_id(bad)


def test_constants():
    assert (F.max_days, F.lookback_days, F.day_basis) == (30, 3, "account")


# --- the exact request --------------------------------------------------------------------------


@respx.mock
def test_report_request_is_exactly_what_tiktok_documents():
    route = respx.get(REPORT).mock(return_value=httpx.Response(200, json=ok([row(D1, "152.31"), row(D2, "98.70")])))
    rows, _ = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D2))
    assert rows == {D1: Decimal("152.31"), D2: Decimal("98.70")}
    req = route.calls.last.request
    assert req.method == "GET" and req.url.path == "/open_api/v1.3/report/integrated/get/"
    assert dict(req.url.params) == {
        "advertiser_id": ADV,
        "service_type": "AUCTION",
        "report_type": "BASIC",
        "data_level": "AUCTION_ADVERTISER",
        "dimensions": '["advertiser_id","stat_time_day"]',
        "metrics": '["spend"]',
        "start_date": "2025-03-01",
        "end_date": "2025-03-02",
        "page": "1",
        "page_size": "1000",
    }
    assert json.loads(req.url.params["dimensions"]) == ["advertiser_id", "stat_time_day"]
    assert req.headers["Access-Token"] == TOKEN
    assert "authorization" not in req.headers
    assert req.content == b""


@respx.mock
def test_pages_followed_to_the_last_and_decimals_exact():
    def answer(request):
        page = int(request.url.params["page"])
        rows = {1: [row(D1, "0.10"), row(D2, "0.20")], 2: [row(D3, "1234567.89")]}[page]
        return httpx.Response(200, json=ok(rows, page=page, total_page=2, total_number=3, page_size=2))

    route = respx.get(REPORT).mock(side_effect=answer)
    rows, api = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D3))
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]
    assert sum(rows.values()) == Decimal("1234568.19")
    assert rows[D1] + rows[D2] == Decimal("0.30")  # exact: 0.1 + 0.2, no float


@respx.mock
def test_omitted_and_empty_metric_days_are_explicit_zeros():
    respx.get(REPORT).mock(return_value=httpx.Response(200, json=ok([row(D1, "5.00"), row(D3, "-")])))
    rows, _ = run(lambda api: fetch_window(F, api, ACCOUNT, D1, D3))
    assert rows == {D1: Decimal("5.00"), D2: Decimal(0), D3: Decimal(0)}


@respx.mock
def test_no_rows_at_all_is_all_zeros():
    respx.get(REPORT).mock(return_value=httpx.Response(200, json=ok([], total_page=0, total_number=0)))
    rows, _ = run(lambda api: fetch_window(F, api, ACCOUNT, D1, D2))
    assert rows == {D1: Decimal(0), D2: Decimal(0)}


@respx.mock
def test_long_range_is_split_into_30_day_windows():
    route = respx.get(REPORT).mock(return_value=httpx.Response(200, json=ok([])))
    start, end = dt.date(2025, 1, 1), dt.date(2025, 3, 15)  # 74 days
    windows = plan_windows(start, end, F.max_days)

    async def all_windows(api):
        return [await fetch_window(F, api, ACCOUNT, s, e) for s, e in windows]

    run(all_windows)
    sent = [(c.request.url.params["start_date"], c.request.url.params["end_date"]) for c in route.calls]
    assert sent == [("2025-01-01", "2025-01-30"), ("2025-01-31", "2025-03-01"), ("2025-03-02", "2025-03-15")]


# --- in-body errors -----------------------------------------------------------------------------


@respx.mock
def test_in_body_throttle_is_retried_then_ok():
    route = respx.get(REPORT).mock(
        side_effect=[
            httpx.Response(200, json=err(40100, "Too many requests.")),
            httpx.Response(200, json=err(40133, "QPS (21) reaches QPS limit 20 for current path")),
            httpx.Response(200, json=ok([row(D1, "7.07")])),
        ]
    )
    rows, api = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert rows == {D1: Decimal("7.07")} and route.call_count == 3 and api.throttled_count == 2


@respx.mock
def test_system_error_in_body_is_retried():
    route = respx.get(REPORT).mock(
        side_effect=[
            httpx.Response(200, json=err(50000, "System error.")),
            httpx.Response(200, json=ok([row(D1, "1.00")])),
        ]
    )
    rows, _ = run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert rows == {D1: Decimal("1.00")} and route.call_count == 2


@respx.mock
def test_expired_token_cannot_be_refreshed_and_fails_as_auth():
    route = respx.get(REPORT).mock(return_value=httpx.Response(200, json=err(40102, "Access token has expired.")))
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "auth" and exc.value.platform_wide
    assert "40102" in exc.value.message and "TIKTOK_ACCESS_TOKEN" in exc.value.message
    assert route.call_count == 1 and TOKEN not in str(exc.value)


@pytest.mark.parametrize("code", [40104, 40105, 40101])
@respx.mock
def test_token_codes_are_a_clear_credentials_error(code):
    route = respx.get(REPORT).mock(return_value=httpx.Response(200, json=err(code, f"token problem {TOKEN}")))
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "auth" and str(code) in exc.value.message
    assert "TIKTOK_ACCESS_TOKEN" in exc.value.message
    assert TOKEN not in exc.value.message  # redacted even when echoed back
    assert route.call_count == 1


@respx.mock
def test_permission_and_param_errors_fail_with_the_platform_message():
    respx.get(REPORT).mock(
        side_effect=[
            httpx.Response(200, json=err(40001, "No permission to operate advertiser 7001234567890")),
            httpx.Response(200, json=err(40002, "max time span is 30 days when use stat_time_day")),
        ]
    )
    with pytest.raises(FetchError) as first:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert first.value.kind == "request" and "40001" in first.value.message and "authorise" in first.value.message
    with pytest.raises(FetchError) as second:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert second.value.kind == "request" and "max time span is 30 days" in second.value.message


# --- malformed bodies are never zero -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        ok(
            [{"dimensions": {"advertiser_id": ADV, "stat_time_day": "2025-03-01 00:00:00"}, "metrics": {"clicks": "3"}}]
        ),
        ok([row(D1, 12.5)]),  # a float has lost the exact figure
        ok([row(D1, None)]),
        ok([row(D1, "")]),
        ok([row(D1, "1.00", adv="7009999999999")]),  # someone else's advertiser
        ok([{"dimensions": {"advertiser_id": ADV, "stat_time_day": "03/01/2025"}, "metrics": {"spend": "1"}}]),
        {"code": 0, "message": "OK", "data": {"list": [row(D1, "1.00")]}},  # no page_info
        {"code": 0, "message": "OK"},  # no data
        ok([row(D1, "1.00"), row(D1, "1.00")]),  # a day twice
        ok([row(D1, "1.00")], total_number=5),  # rows missing
    ],
)
@respx.mock
def test_malformed_report_bodies_raise(body):
    respx.get(REPORT).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(MalformedResponse):
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D3))


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json={"message": "OK", "data": {}}),  # no code
        httpx.Response(200, json={"code": "0", "data": {}}),  # code of the wrong type
        httpx.Response(200, json=[1, 2]),
    ],
)
@respx.mock
def test_bodies_without_the_envelope_raise_malformed(response):
    respx.get(REPORT).mock(return_value=response)
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D1))
    assert exc.value.kind == "malformed"


@respx.mock
def test_report_changing_while_paged_is_refused():
    respx.get(REPORT).mock(
        side_effect=[
            httpx.Response(200, json=ok([row(D1, "1.00")], page=1, total_page=2, total_number=2)),
            httpx.Response(200, json=ok([row(D2, "1.00"), row(D3, "2.00")], page=2, total_page=2, total_number=3)),
        ]
    )
    with pytest.raises(FetchError, match="changed while"):
        run(lambda api: F.fetch_daily(api, ACCOUNT, D1, D3))


# --- advertiser info ----------------------------------------------------------------------------


@respx.mock
def test_account_info_reads_currency_and_timezone():
    route = respx.get(INFO).mock(
        return_value=httpx.Response(
            200,
            json={
                "code": 0,
                "message": "OK",
                "data": {
                    "list": [
                        {
                            "advertiser_id": ADV,
                            "name": "Shop",
                            "currency": "EUR",
                            "timezone": "Etc/GMT-1",
                            "display_timezone": "Europe/Berlin",
                        }
                    ]
                },
            },
        )
    )
    info, _ = run(lambda api: F.account_info(api, ADV))
    assert info == AccountInfo(ADV, "EUR", "Europe/Berlin", "Shop")
    req = route.calls.last.request
    assert dict(req.url.params) == {
        "advertiser_ids": f'["{ADV}"]',
        "fields": '["advertiser_id","name","currency","timezone","display_timezone"]',
    }
    assert req.headers["Access-Token"] == TOKEN


@pytest.mark.parametrize(
    "adv_row, error",
    [
        ({"advertiser_id": ADV, "currency": "usd", "timezone": "UTC"}, MalformedResponse),
        ({"advertiser_id": ADV, "timezone": "UTC"}, MalformedResponse),
        ({"advertiser_id": ADV, "currency": "USD", "timezone": "GMT+08:00"}, MalformedResponse),
        ({"advertiser_id": "7000000000000", "currency": "USD", "timezone": "UTC"}, FetchError),
    ],
)
@respx.mock
def test_account_info_refuses_to_guess(adv_row, error):
    respx.get(INFO).mock(return_value=httpx.Response(200, json={"code": 0, "data": {"list": [adv_row]}}))
    with pytest.raises(error):
        run(lambda api: F.account_info(api, ADV))


def test_missing_token_is_an_auth_error():
    with pytest.raises(FetchError) as exc:
        F.build_auth({}, "", on_rotate=None)
    assert exc.value.kind == "auth" and "TIKTOK_ACCESS_TOKEN" in exc.value.message


# --- against the sandbox ------------------------------------------------------------------------

SB_CREDS = {"TIKTOK_ACCESS_TOKEN": "sandbox-tiktok-token"}


@pytest.fixture(scope="module")
def _module_sandbox():
    from sandbox.server import SandboxServer

    server = SandboxServer(0).start()  # one server for the module: stopping one costs 0.5 s
    yield server
    server.stop()


@pytest.fixture
def sandbox(_module_sandbox):
    _module_sandbox.ctx.reset()
    return _module_sandbox


STORE = ["7100000000000001", "7100000000000978"]  # the second is EUR in the sandbox


def run_sandbox(sandbox, fn):
    return run(fn, base=sandbox.url, creds=SB_CREDS)


async def fetch_range(api, advertiser, start, end):
    info = await F.account_info(api, advertiser)
    days = {}
    for s, e in plan_windows(start, end, F.max_days):
        days.update(await fetch_window(F, api, info, s, e))
    return info, days


def test_sandbox_store_with_two_advertisers_exact_totals(sandbox, monkeypatch):
    monkeypatch.setattr(F, "page_size", 7, raising=False)  # several pages per window
    start, end = dt.date(2026, 5, 3), dt.date(2026, 7, 20)  # 79 days: three windows

    async def both(api):
        return await asyncio.gather(*(fetch_range(api, a, start, end) for a in STORE))

    results, api = run_sandbox(sandbox, both)
    for adv, (info, days) in zip(STORE, results):
        expected = sandbox.sandbox.expected_total("tiktok", adv, start, end)
        assert len(days) == 79
        assert sum(days.values()) == Decimal(expected["spend"])
        assert {d.isoformat(): v for d, v in days.items()} == {k: Decimal(v) for k, v in expected["days"].items()}
        assert info.currency == expected["currency"]
    assert [r[0].currency for r in results] == ["USD", "EUR"]
    assert results[1][0].timezone == "Europe/Berlin"
    assert any(v == 0 for v in results[0][1].values())  # days without delivery came back as zeros
    # 2 info calls + 2 advertisers x 3 windows x (>= 4 pages of 7 for a ~28-day window)
    assert api.request_count >= 2 + 2 * 3 * 3


def sandbox_get(sandbox, path, params, headers=None):
    return httpx.get(
        sandbox.url + path,
        params=params,
        headers={"Access-Token": "sandbox-tiktok-token"} if headers is None else headers,
    )


def good_params(**over):
    p = {
        "advertiser_id": STORE[0],
        "report_type": "BASIC",
        "data_level": "AUCTION_ADVERTISER",
        "dimensions": '["advertiser_id","stat_time_day"]',
        "metrics": '["spend"]',
        "start_date": "2026-06-01",
        "end_date": "2026-06-30",
        "page": "1",
        "page_size": "1000",
    }
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}


@pytest.mark.parametrize(
    "params, headers, code, text",
    [
        (good_params(end_date="2026-07-01"), None, 40002, "max time span is 30 days"),
        (good_params(), {}, 40104, "Access token is null"),
        (good_params(), {"Authorization": "Bearer sandbox-tiktok-token"}, 40104, "Access token"),
        (good_params(dimensions="advertiser_id,stat_time_day"), None, 40002, "dimensions"),
        (good_params(metrics="[spend]"), None, 40002, "metrics"),
        (good_params(page_size="1001"), None, 40002, "page_size"),
        (good_params(report_type=None), None, 40002, "report_type"),
        (good_params(advertiser_id=None), None, 40002, "advertiser_id"),
        (good_params(start_date="2026-6-1"), None, 40002, "start_date"),
    ],
)
def test_sandbox_rejects_what_tiktok_rejects_in_body(sandbox, params, headers, code, text):
    resp = sandbox_get(sandbox, "/open_api/v1.3/report/integrated/get/", params, headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["code"] == code and text in body["message"] and body["request_id"]


def test_sandbox_accepts_the_documented_request_and_pages(sandbox):
    resp = sandbox_get(sandbox, "/open_api/v1.3/report/integrated/get/", good_params(page_size=None))
    body = resp.json()
    assert body["code"] == 0 and body["data"]["page_info"]["page_size"] == 10  # TikTok's default
    assert body["data"]["page_info"]["total_page"] >= 2
    assert sandbox_get(sandbox, "/open_api/v1.2/report/integrated/get/", good_params()).status_code == 404


def test_sandbox_in_body_throttle_then_ok(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "tiktok", "kind": "throttle", "count": 2}]})
    day = dt.date(2026, 6, 3)
    (info, days), api = run_sandbox(sandbox, lambda api: fetch_range(api, STORE[0], day, day))
    assert days[day] == Decimal(sandbox.sandbox.expected_total("tiktok", STORE[0], day, day)["spend"])
    assert api.throttled_count == 2 and sandbox.ctx.throttled["tiktok"] == 2


@pytest.mark.parametrize(
    "kind, count, expected_kind",
    [
        ("expired_token", 1, "auth"),  # no refresh flow for advertiser tokens
        ("revoked", 1, "auth"),
        ("5xx", None, "server"),
        ("malformed", 1, "malformed"),
    ],
)
def test_sandbox_faults_end_as_fetch_errors(sandbox, kind, count, expected_kind):
    sandbox.ctx.configure({"faults": [{"platform": "tiktok", "kind": kind, "count": count}]})
    day = dt.date(2026, 6, 3)
    if kind == "malformed":  # let account_info through, break the report

        async def go(api):
            info = await F.account_info(api, STORE[0])
            sandbox.ctx.configure({"faults": [{"platform": "tiktok", "kind": kind, "count": count}]})
            return await fetch_window(F, api, info, day, day)

        sandbox.ctx.reset()
        fn = go
    else:

        def fn(api):
            return fetch_range(api, STORE[0], day, day)

    with pytest.raises(FetchError) as exc:
        run_sandbox(sandbox, fn)
    assert exc.value.kind == expected_kind
    assert "sandbox-tiktok-token" not in exc.value.message


# --- a "query too large" answer: the core halves the window --------------------------------------


@respx.mock
def test_a_query_too_large_is_asked_again_in_two_halves():
    """Code 40067 ("Your query is too large", §3.5) is a too_large failure; the core asks for the
    two halves of the window instead and merges their days (exact totals, zeros filled)."""
    start, end = dt.date(2025, 3, 1), dt.date(2025, 3, 8)
    answers = {
        ("2025-03-01", "2025-03-08"): err(40067, "Your query is too large."),
        ("2025-03-01", "2025-03-04"): ok([row("2025-03-01", "10.10"), row("2025-03-03", "0.05")]),
        ("2025-03-05", "2025-03-08"): ok([row("2025-03-08", "7.00")]),
    }

    def answer(request):
        q = dict(request.url.params)
        return httpx.Response(200, json=answers[(q["start_date"], q["end_date"])])

    route = respx.get(REPORT).mock(side_effect=answer)
    days, _api = run(lambda api: fetch_window(F, api, ACCOUNT, start, end))
    asked = [(c.request.url.params["start_date"], c.request.url.params["end_date"]) for c in route.calls]
    assert asked == [("2025-03-01", "2025-03-08"), ("2025-03-01", "2025-03-04"), ("2025-03-05", "2025-03-08")]
    assert len(days) == 8 and sum(days.values()) == Decimal("17.15")
    assert days[dt.date(2025, 3, 3)] == Decimal("0.05") and days[dt.date(2025, 3, 2)] == Decimal(0)


@respx.mock
def test_a_single_day_still_too_large_is_a_failure_not_a_zero():
    respx.get(REPORT).mock(return_value=httpx.Response(200, json=err(40067, "Your query is too large.")))
    with pytest.raises(FetchError) as exc:
        run(lambda api: fetch_window(F, api, ACCOUNT, D1, D1))
    assert exc.value.kind == "too_large" and "40067" in exc.value.message


def test_sandbox_too_large_then_halves_with_exact_totals(sandbox):
    """The sandbox answers 40067 once (a switchable fault); the fetch ends with the exact days."""
    sandbox.ctx.configure({"faults": [{"platform": "tiktok", "kind": "too_large", "count": 1}]})
    start, end = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
    (info, days), api = run_sandbox(sandbox, lambda api: fetch_range(api, STORE[0], start, end))
    expected = sandbox.sandbox.expected_total("tiktok", STORE[0], start, end)
    assert len(days) == 30 and sum(days.values()) == Decimal(expected["spend"])
    assert api.request_count == 1 + 3  # the advertiser lookup, the refused window, its two halves
