"""Meta Ads Insights: the fetcher against recorded shapes (respx) and against the sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import httpx
import pytest
import respx

import fetchers.meta as meta
from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import PlatformApi, RateBudget, fetch_window, fetch_window_and_info, plan_windows

BASE = "https://graph.facebook.com"
INSIGHTS = f"{BASE}/v25.0/act_1234567890/insights"
TOKEN = "EAABtesttoken123"
ACCOUNT = AccountInfo("1234567890", "USD", "America/New_York")


def run(coro):
    return asyncio.run(coro)


async def with_api(fn, creds=None, base=BASE):
    creds = creds or {"META_ACCESS_TOKEN": TOKEN}
    f = get_fetcher("meta")
    async with httpx.AsyncClient() as client:
        api = PlatformApi(
            f, client, base_url=base, credentials=creds, auth=f.build_auth(creds, "", None), budget=RateBudget(60000)
        )
        return await fn(f, api)


def row(day: str, spend, currency="USD") -> dict:
    return {
        "account_id": "1234567890",
        "account_currency": currency,
        "spend": spend,
        "date_start": day,
        "date_stop": day,
    }


def page(rows, after=None) -> dict:
    body = {"data": rows}
    if after:
        body["paging"] = {"cursors": {"before": "B", "after": after}, "next": f"{INSIGHTS}?after={after}"}
    else:
        body["paging"] = {"cursors": {"before": "B", "after": "END"}}
    return body


def graph_error(code, subcode=None, status=400, message="boom"):
    err = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode:
        err["error_subcode"] = subcode
    return httpx.Response(status, json={"error": err})


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(meta, "utc_today", lambda: dt.date(2026, 11, 1))


# --- request shape ------------------------------------------------------------------------------


@respx.mock
def test_insights_request_is_exactly_what_meta_documents():
    route = respx.get(INSIGHTS).mock(return_value=httpx.Response(200, json=page([row("2026-03-01", "152.31")])))
    rows = run(with_api(lambda f, api: fetch_window(f, api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 7))))
    req = route.calls.last.request
    assert dict(req.url.params) == {
        "level": "account",
        "fields": "account_id,account_currency,spend,date_start,date_stop",
        "time_range": '{"since":"2026-03-01","until":"2026-03-07"}',
        "time_increment": "1",
        "limit": "100",
    }
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(req.url)
    assert rows[dt.date(2026, 3, 1)] == Decimal("152.31")
    assert rows[dt.date(2026, 3, 2)] == Decimal(0) and len(rows) == 7  # omitted days are explicit zeros


@respx.mock
def test_appsecret_proof_is_hmac_sha256_of_the_token_keyed_with_the_app_secret():
    route = respx.get(INSIGHTS).mock(return_value=httpx.Response(200, json=page([])))
    creds = {"META_ACCESS_TOKEN": TOKEN, "META_APP_SECRET": "app-secret-value"}
    run(with_api(lambda f, api: f.fetch_daily(api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 1)), creds))
    want = hmac.new(b"app-secret-value", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert route.calls.last.request.url.params["appsecret_proof"] == want


@respx.mock
def test_until_never_passes_the_utc_date():
    route = respx.get(INSIGHTS).mock(return_value=httpx.Response(200, json=page([])))
    run(with_api(lambda f, api: fetch_window(f, api, ACCOUNT, dt.date(2026, 10, 30), dt.date(2026, 11, 3))))
    assert json.loads(route.calls.last.request.url.params["time_range"]) == {
        "since": "2026-10-30",
        "until": "2026-11-01",
    }


@respx.mock
def test_account_info_reads_currency_and_timezone():
    route = respx.get(f"{BASE}/v25.0/act_1234567890").mock(
        return_value=httpx.Response(
            200, json={"id": "act_1234567890", "currency": "EUR", "timezone_name": "Europe/Berlin", "name": "Shop"}
        )
    )
    info = run(with_api(lambda f, api: f.account_info(api, "act_1234567890")))
    assert info == AccountInfo("1234567890", "EUR", "Europe/Berlin", "Shop")
    assert route.calls.last.request.url.params["fields"] == "currency,timezone_name,name"


ACCOUNT_NODE = f"{BASE}/v25.0/act_1234567890"
EXPANDED_FIELDS = (
    "currency,timezone_name,name,"
    'insights.level(account).time_range({"since":"2026-03-01","until":"2026-03-07"})'
    ".time_increment(1).limit(100){account_id,account_currency,spend,date_start,date_stop}"
)


def node(insights=None, currency="USD") -> dict:
    body = {"id": "act_1234567890", "currency": currency, "timezone_name": "America/New_York", "name": "Shop"}
    if insights is not None:
        body["insights"] = insights
    return body


@respx.mock
def test_a_first_fetch_is_the_account_node_with_its_insights_expanded():
    """One request: Graph's field expansion asks the account's currency and time zone and its
    insights edge, with exactly the edge's own parameters as modifiers; no separate lookup."""
    route = respx.get(ACCOUNT_NODE).mock(
        return_value=httpx.Response(200, json=node(page([row("2026-03-01", "152.31"), row("2026-03-03", "98.7")])))
    )
    edge = respx.get(INSIGHTS).mock(return_value=httpx.Response(500))
    info, rows = run(
        with_api(
            lambda f, api: fetch_window_and_info(f, api, "act_1234567890", dt.date(2026, 3, 1), dt.date(2026, 3, 7))
        )
    )
    assert dict(route.calls.last.request.url.params) == {"fields": EXPANDED_FIELDS}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (route.call_count, edge.call_count) == (1, 0)
    assert info == AccountInfo("1234567890", "USD", "America/New_York", "Shop")
    assert rows[dt.date(2026, 3, 1)] == Decimal("152.31") and rows[dt.date(2026, 3, 3)] == Decimal("98.70")
    assert sum(rows.values()) == Decimal("251.01") and len(rows) == 7  # the other five days are zeros


@respx.mock
def test_an_expanded_first_page_continues_on_the_insights_edge_by_its_cursor():
    respx.get(ACCOUNT_NODE).mock(return_value=httpx.Response(200, json=node(page([row("2026-03-01", "1.10")], "C1"))))
    edge = respx.get(INSIGHTS).mock(return_value=httpx.Response(200, json=page([row("2026-03-02", "2.25")])))
    info, rows = run(
        with_api(lambda f, api: f.fetch_daily_and_info(api, "1234567890", dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    )
    assert dict(edge.calls.last.request.url.params) == {
        "level": "account",
        "fields": "account_id,account_currency,spend,date_start,date_stop",
        "time_range": '{"since":"2026-03-01","until":"2026-03-07"}',
        "time_increment": "1",
        "limit": "100",
        "after": "C1",
    }
    assert info.currency == "USD" and rows == {
        dt.date(2026, 3, 1): Decimal("1.10"),
        dt.date(2026, 3, 2): Decimal("2.25"),
    }


@respx.mock
def test_an_account_without_insights_rows_still_brings_its_info_in_one_request():
    """Graph leaves an edge with no rows out of the node: every day is a zero, and the info is read
    from the same answer (no lookup after it)."""
    route = respx.get(ACCOUNT_NODE).mock(return_value=httpx.Response(200, json=node(currency="EUR")))
    info, rows = run(
        with_api(lambda f, api: fetch_window_and_info(f, api, "1234567890", dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    )
    assert route.call_count == 1 and info.currency == "EUR"
    assert rows == {dt.date(2026, 3, 1) + dt.timedelta(days=i): Decimal(0) for i in range(7)}


@pytest.mark.parametrize(
    "body, why",
    [
        (node(page([row("2026-03-01", "1.00", currency="EUR")])), "is in EUR, but the account's currency is USD"),
        ({"id": "act_1234567890", "insights": page([row("2026-03-01", "1.00")])}, "no ISO currency"),
        (node({"paging": {}}), "no 'data' list"),
    ],
)
@respx.mock
def test_an_expanded_answer_that_does_not_hold_together_is_malformed(body, why):
    respx.get(ACCOUNT_NODE).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(MalformedResponse, match=why):
        run(
            with_api(lambda f, api: f.fetch_daily_and_info(api, "1234567890", dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
        )


# --- paging and money ---------------------------------------------------------------------------


@respx.mock
def test_follows_cursors_to_the_last_page_and_sums_exactly():
    route = respx.get(INSIGHTS).mock(
        side_effect=[
            httpx.Response(200, json=page([row("2026-03-01", "152.31"), row("2026-03-02", "98.7")], after="C1")),
            httpx.Response(200, json=page([row("2026-03-04", "0.01")], after="C2")),
            httpx.Response(200, json=page([row("2026-03-05", "1000000.99")])),
        ]
    )
    rows = run(with_api(lambda f, api: fetch_window(f, api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 5))))
    assert [c.request.url.params.get("after") for c in route.calls] == [None, "C1", "C2"]
    assert rows == {
        dt.date(2026, 3, 1): Decimal("152.31"),
        dt.date(2026, 3, 2): Decimal("98.7"),
        dt.date(2026, 3, 3): Decimal(0),
        dt.date(2026, 3, 4): Decimal("0.01"),
        dt.date(2026, 3, 5): Decimal("1000000.99"),
    }
    assert sum(rows.values()) == Decimal("1000252.01")


# --- errors -------------------------------------------------------------------------------------


@respx.mock
def test_throttle_code_17_is_retried_then_succeeds():
    route = respx.get(INSIGHTS).mock(
        side_effect=[
            graph_error(17, 2446079, message="(#17) User request limit reached"),
            graph_error(80000, message="There have been too many calls from this ad-account"),
            httpx.Response(200, json=page([row("2026-03-01", "5339.5")])),
        ]
    )
    rows = run(with_api(lambda f, api: f.fetch_daily(api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 1))))
    assert rows == {dt.date(2026, 3, 1): Decimal("5339.5")} and route.call_count == 3


@pytest.mark.parametrize(
    "code,sub", [(4, None), (17, 2446079), (32, None), (613, 1487742), (80000, None), (80014, None), (100, 2446079)]
)
def test_throttle_codes_retry(code, sub):
    v = meta.classify(graph_error(code, sub))
    assert (v.action, v.kind) == ("retry", "throttled")


def test_usage_header_sets_the_wait():
    resp = httpx.Response(
        400,
        json={"error": {"code": 80000, "message": "x"}},
        headers={
            "X-Business-Use-Case-Usage": json.dumps(
                {"1": [{"type": "ads_insights", "estimated_time_to_regain_access": 3}]}
            )
        },
    )
    assert meta.classify(resp).retry_after == 180.0


@respx.mock
def test_error_190_is_a_credentials_problem_with_no_token_in_the_message():
    respx.get(INSIGHTS).mock(return_value=graph_error(190, 463, 401, f"Error validating access token {TOKEN}"))
    with pytest.raises(FetchError) as e:
        run(with_api(lambda f, api: f.fetch_daily(api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 1))))
    assert e.value.kind == "auth" and e.value.platform_wide
    assert "issue a new" in e.value.message and "META_ACCESS_TOKEN" in e.value.message
    assert TOKEN not in str(e.value)


@pytest.mark.parametrize("code,kind", [(2635, "config"), (200, "request"), (100, "request"), (104, "auth")])
def test_other_graph_errors_fail_with_their_kind(code, kind):
    v = meta.classify(graph_error(code))
    assert (v.action, v.kind) == ("fail", kind)


def test_transient_errors_retry():
    assert meta.classify(graph_error(2)).action == "retry"
    assert meta.classify(graph_error(1, 99)).action == "retry"
    assert meta.classify(httpx.Response(503, text="down")).action == "retry"


@respx.mock
def test_permanent_5xx_is_a_server_failure_not_zero():
    respx.get(INSIGHTS).mock(return_value=httpx.Response(500, json={"error": {"code": 1, "message": "unknown"}}))
    with pytest.raises(FetchError) as e:
        run(with_api(lambda f, api: f.fetch_daily(api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 1))))
    assert e.value.kind == "server"


@pytest.mark.parametrize(
    "body,why",
    [
        ({"data": [{"date_start": "2026-03-01", "date_stop": "2026-03-01"}]}, "no 'spend'"),
        ({"data": [row("2026-03-01", 12.5)]}, "float"),
        ({"data": [row("2026-03-01", "")]}, "not a decimal"),
        ({"data": [row("2026-03-01", None)]}, "not a decimal"),
        ({"data": [{**row("2026-03-01", "1.00"), "date_stop": "2026-03-02"}]}, "expected one day"),
        ({"data": [row("2026-03-01", "1.00", currency="EUR")]}, "currency is USD"),
        (
            {"data": [{k: v for k, v in row("2026-03-01", "1.00").items() if k != "account_currency"}]},
            "account_currency",
        ),
        ({"data": [row("2026-03-01", "1"), row("2026-03-01", "2")]}, "twice"),
        ({"result": []}, "no 'data'"),
        ({"data": [], "paging": {"next": "https://x"}}, "no paging.cursors.after"),
        ([], "no 'data'"),
    ],
)
def test_malformed_pages_are_refused(body, why):
    with pytest.raises(MalformedResponse, match=why):
        meta.parse_insights_page(body, "USD")


@respx.mock
def test_non_json_body_is_malformed():
    respx.get(INSIGHTS).mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(MalformedResponse):
        run(with_api(lambda f, api: f.fetch_daily(api, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 1))))


@pytest.mark.parametrize(
    "body", [{"timezone_name": "UTC"}, {"currency": "usd", "timezone_name": "UTC"}, {"currency": "USD"}, ["x"]]
)
def test_account_without_currency_or_timezone_is_malformed(body):
    with pytest.raises(MalformedResponse):
        meta.parse_account(body, "1")


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,want", [("1234567890", "1234567890"), ("act_1234567890", "1234567890"), (" act_23849999 ", "23849999")]
)
def test_account_id_forms(raw, want):
    assert get_fetcher("meta").normalize_account_id(raw) == want


@pytest.mark.parametrize("raw", ["act_", "act-123", "abc", "123-456", "", "ACT 1"])
def test_bad_account_ids_name_the_platform_value_and_form(raw):
    with pytest.raises(ValueError) as e:
        get_fetcher("meta").normalize_account_id(raw)
    assert "meta" in str(e.value) and repr(raw) in str(e.value) and "act_1234567890" in str(e.value)


# --- against the sandbox ------------------------------------------------------------------------

SBX_CREDS = {"META_ACCESS_TOKEN": "sandbox-meta-token"}


async def sandbox_total(f, api, account_id, start, end):
    info = await f.account_info(api, account_id)
    total = Decimal(0)
    for s, e in plan_windows(start, end, f.max_days):
        total += sum((await fetch_window(f, api, info, s, e)).values())
    return info, total


def test_sandbox_totals_match_exactly_over_windows_and_pages(sandbox, monkeypatch):
    monkeypatch.setattr(meta, "PAGE_LIMIT", 20)  # several pages in every 90-day window
    start, end = dt.date(2025, 12, 1), dt.date(2026, 6, 30)  # 212 days: three windows
    creds = {**SBX_CREDS, "META_APP_SECRET": "sandbox-app-secret"}
    info, total = run(with_api(lambda f, api: sandbox_total(f, api, "act_1234567978", start, end), creds, sandbox.url))
    assert (info.currency, info.timezone) == ("EUR", "Europe/Berlin")
    assert total == Decimal(sandbox.sandbox.expected_total("meta", "1234567978", start, end)["spend"])
    assert sandbox.ctx.requests["meta"] >= 1 + 3 * 3


def test_sandbox_expansion_gives_the_info_and_exact_days_over_pages(sandbox, monkeypatch):
    monkeypatch.setattr(meta, "PAGE_LIMIT", 20)  # the expanded page, then the edge's pages
    start, end = dt.date(2026, 3, 1), dt.date(2026, 5, 29)  # 90 days: one window
    info, rows = run(
        with_api(lambda f, api: fetch_window_and_info(f, api, "1234567978", start, end), SBX_CREDS, sandbox.url)
    )
    want = sandbox.sandbox.expected_total("meta", "1234567978", start, end)
    assert (info.currency, info.timezone) == ("EUR", "Europe/Berlin")
    assert {d.isoformat(): str(v) for d, v in rows.items()} == want["days"]
    assert sum(rows.values()) == Decimal(want["spend"])
    assert sandbox.ctx.requests["meta"] == -(-(90 - sum(1 for v in want["days"].values() if Decimal(v) == 0)) // 20)


def test_sandbox_expansion_leaves_out_an_edge_without_rows(sandbox):
    from sandbox.data import account_profile
    from sandbox.meta import expected_daily

    zero = next(
        d
        for d in (dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(400))
        if not expected_daily("1234567890", d)
    )
    body = httpx.get(
        f"{sandbox.url}/v25.0/act_1234567890",
        headers={"Authorization": "Bearer sandbox-meta-token"},
        params={"fields": meta.build_account_and_insights_params(zero, zero)["fields"]},
    ).json()
    prof = account_profile("meta", "1234567890")
    assert body == {
        "id": "act_1234567890",
        "currency": prof["currency"],
        "timezone_name": prof["timezone"],
        "name": prof["name"],
    }
    assert (prof["currency"], prof["timezone"]) == ("USD", "America/Los_Angeles")


def test_sandbox_rejects_expansions_graph_rejects(sandbox):
    url = f"{sandbox.url}/v25.0/act_1234567890"
    auth = {"Authorization": "Bearer sandbox-meta-token"}
    good = 'insights.time_range({"since":"2026-03-01","until":"2026-03-02"}).time_increment(1){spend,date_start}'
    ok = httpx.get(url, params={"fields": f"currency,{good}"}, headers=auth)
    assert ok.status_code == 200 and len(ok.json()["insights"]["data"]) == 2
    for fields, says in [
        ('currency,insights.time_range({"since":"2026-03-01"', "Syntax error"),  # unclosed
        ("currency,insights.sort(spend){spend}", "sort is not a valid parameter"),
        ("currency,insights.time_increment(1){spend,cost}", "cost is not valid"),
        ('currency,insights.time_range({"since":"2026-03-01"}){spend}', "param time_range"),
        ("currency,campaigns{name}", "only for insights"),
    ]:
        r = httpx.get(url, params={"fields": fields}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == 100 and says in r.json()["error"]["message"], (
            fields
        )


def test_sandbox_restated_days_are_fetched_as_restated(sandbox):
    sandbox.ctx.configure({"restate": {"meta": {"from": "2026-05-01", "generation": 2}}})
    start, end = dt.date(2026, 4, 20), dt.date(2026, 5, 10)
    _, total = run(with_api(lambda f, api: sandbox_total(f, api, "1234567890", start, end), SBX_CREDS, sandbox.url))
    assert total == Decimal(sandbox.sandbox.expected_total("meta", "1234567890", start, end)["spend"])


def test_sandbox_rejects_what_graph_rejects(sandbox):
    url = f"{sandbox.url}/v25.0/act_1234567890/insights"
    auth = {"Authorization": "Bearer sandbox-meta-token"}
    ok = {
        "level": "account",
        "time_increment": "1",
        "fields": "spend,date_start,date_stop",
        "time_range": '{"since":"2026-03-01","until":"2026-03-31"}',
    }
    no_token = httpx.get(url, params=ok)
    assert no_token.status_code == 400 and no_token.json()["error"]["code"] == 104
    old = httpx.get(f"{sandbox.url}/v19.0/act_1234567890/insights", params=ok, headers=auth)
    assert old.json()["error"]["code"] == 2635
    bad_range = httpx.get(url, params={**ok, "time_range": '{"since":"2026-03-31"}'}, headers=auth)
    assert bad_range.status_code == 400 and bad_range.json()["error"]["code"] == 100
    bad_field = httpx.get(url, params={**ok, "fields": "spend,cost"}, headers=auth)
    assert bad_field.json()["error"]["code"] == 100
    not_emulated = httpx.post(url, params=ok, headers=auth)  # an async report run: not emulated
    assert not_emulated.status_code == 400 and not_emulated.json()["error"]["code"] == 100
    assert not_emulated.json()["error"]["message"].startswith("sandbox: POST is not emulated")
    # the token may also travel as access_token; the default page holds 25 rows
    two_months = {**ok, "time_range": '{"since":"2026-03-01","until":"2026-04-30"}'}
    first = httpx.get(url, params={**two_months, "access_token": "sandbox-meta-token"}).json()
    assert len(first["data"]) == 25 and "next" in first["paging"]


def test_sandbox_without_time_increment_answers_one_row_for_the_range_which_the_parser_refuses(sandbox):
    body = httpx.get(
        f"{sandbox.url}/v25.0/act_1234567890/insights",
        headers={"Authorization": "Bearer sandbox-meta-token"},
        params={
            "level": "account",
            "fields": "spend,date_start,date_stop",
            "time_range": '{"since":"2026-03-01","until":"2026-03-31"}',
        },
    ).json()
    assert len(body["data"]) == 1
    with pytest.raises(MalformedResponse, match="expected one day"):
        meta.parse_insights_page(body, "USD")


def test_sandbox_throttle_then_ok(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "meta", "kind": "throttle", "count": 2}]})
    start = end = dt.date(2026, 3, 2)
    _, total = run(with_api(lambda f, api: sandbox_total(f, api, "1234567890", start, end), SBX_CREDS, sandbox.url))
    assert total == Decimal(sandbox.sandbox.expected_total("meta", "1234567890", start, end)["spend"])
    assert sandbox.ctx.throttled["meta"] == 2


def test_sandbox_expired_token_fails_as_auth(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "meta", "kind": "expired_token"}]})
    with pytest.raises(FetchError) as e:
        run(with_api(lambda f, api: f.account_info(api, "1234567890"), SBX_CREDS, sandbox.url))
    assert e.value.kind == "auth" and "463" in e.value.message and "sandbox-meta-token" not in e.value.message


def test_sandbox_permanent_5xx_fails(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "meta", "kind": "5xx", "count": None}]})
    with pytest.raises(FetchError) as e:
        run(with_api(lambda f, api: f.account_info(api, "1234567890"), SBX_CREDS, sandbox.url))
    assert e.value.kind == "server"


def test_sandbox_malformed_is_never_zero(sandbox):
    async def go(f, api):
        info = await f.account_info(api, "1234567890")
        sandbox.ctx.configure({"faults": [{"platform": "meta", "kind": "malformed"}]})
        return await fetch_window(f, api, info, dt.date(2026, 1, 1), dt.date(2026, 1, 5))

    with pytest.raises(MalformedResponse, match="spend"):
        run(with_api(go, SBX_CREDS, sandbox.url))


def test_sandbox_retired_version_is_a_config_error(sandbox, monkeypatch):
    monkeypatch.setattr(meta, "API_VERSION", "v19.0")
    with pytest.raises(FetchError) as e:
        run(with_api(lambda f, api: f.account_info(api, "1234567890"), SBX_CREDS, sandbox.url))
    assert e.value.kind == "config" and "API_VERSION" in e.value.message
