"""Pinterest: sync analytics, async reports for older history, continuous refresh tokens."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import stat
import urllib.parse
from decimal import Decimal

import httpx
import pytest
import respx

from fetchers import get_fetcher
from fetchers import pinterest as pin
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import MemoryJobStore, PlatformApi, RateBudget, ReportPolicy, fetch_window, plan_windows
from service.token_cache import TokenCache

BASE = "https://api.pinterest.com"
TOKEN_URL = "https://api.pinterest.com/v5/oauth/token"
ACCOUNT = "549755885175"
CREDS = {
    "PINTEREST_APP_ID": "app-1507",
    "PINTEREST_APP_SECRET": "app-secret-xyz",
    "PINTEREST_REFRESH_TOKEN": "pinr.original-refresh",
    "PINTEREST_ACCESS_TOKEN": "pina_configured",
}
INFO = AccountInfo(ACCOUNT, "GBP", "UTC")
BASIC = "Basic " + base64.b64encode(b"app-1507:app-secret-xyz").decode()
TODAY = dt.datetime.now(dt.UTC).date()
F = get_fetcher("pinterest")


def run(fn, creds=CREDS, base=BASE, token_url=TOKEN_URL, on_rotate=None, jobs=None, report=None):
    """Build the fetcher's auth and Api handle as the refresh service does and run ``fn(api)``."""

    async def go():
        async with httpx.AsyncClient() as client:
            auth = F.build_auth(creds, token_url, on_rotate)
            api = PlatformApi(
                F,
                client,
                base_url=base,
                credentials=creds,
                auth=auth,
                budget=RateBudget(60000),
                jobs=jobs,
                report=report,
            )
            return await fn(api)

    return asyncio.run(go())


def day(n: int) -> dt.date:
    """n days before today (UTC)."""
    return TODAY - dt.timedelta(days=n)


def analytics_url(account: str = ACCOUNT) -> str:
    return f"{BASE}/v5/ad_accounts/{account}/analytics"


def reports_url(account: str = ACCOUNT) -> str:
    return f"{BASE}/v5/ad_accounts/{account}/reports"


def row(d: dt.date, micros, account: str = ACCOUNT) -> dict:
    return {"AD_ACCOUNT_ID": account, "DATE": d.isoformat(), "SPEND_IN_MICRO_DOLLAR": micros}


# --- ids, constants, window routing ------------------------------------------------------------


def test_constants():
    assert (F.platform, F.max_days, F.day_basis, F.history_days) == ("pinterest", 90, "UTC", 914)
    assert F.lookback_days == 28


@pytest.mark.parametrize("raw,stored", [("549755885175", "549755885175"), (" 549755885175\n", "549755885175")])
def test_normalize_account_id_good(raw, stored):
    assert F.normalize_account_id(raw) == stored


@pytest.mark.parametrize("raw", ["", "act_549755885175", "5497-5588-5175", "abc", "549755885175x"])
def test_normalize_account_id_bad(raw):
    with pytest.raises(ValueError) as exc:
        F.normalize_account_id(raw)
    msg = str(exc.value)
    assert "pinterest" in msg and repr(raw) in msg and "digits" in msg


def test_window_routing_boundary():
    today = dt.date(2026, 3, 31)
    assert pin.uses_async_report(dt.date(2026, 1, 1), today) is False  # 89 days back: sync
    assert pin.uses_async_report(dt.date(2025, 12, 31), today) is True  # 90 days back: report


def test_request_builders_exact():
    s, e = dt.date(2025, 3, 1), dt.date(2025, 3, 7)
    assert pin.build_analytics_params(s, e) == {
        "start_date": "2025-03-01",
        "end_date": "2025-03-07",
        "granularity": "DAY",
        "columns": "SPEND_IN_MICRO_DOLLAR",
    }
    assert pin.build_report_body(s, e) == {
        "start_date": "2025-03-01",
        "end_date": "2025-03-07",
        "granularity": "DAY",
        "level": "ADVERTISER",
        "columns": ["SPEND_IN_MICRO_DOLLAR"],
        "report_format": "JSON",
    }


# --- sync analytics ------------------------------------------------------------------------------


@respx.mock
def test_sync_request_and_exact_micros_with_omitted_days_as_zero():
    s, e = day(10), day(6)
    route = respx.get(analytics_url()).mock(
        return_value=httpx.Response(200, json=[row(s, 152310000), row(day(8), 1), row(e, 98700000.0)])
    )
    rows = run(lambda api: fetch_window(F, api, INFO, s, e))
    assert rows == {
        s: Decimal("152.31"),
        day(9): Decimal(0),
        day(8): Decimal("0.000001"),
        day(7): Decimal(0),
        e: Decimal("98.7"),
    }
    assert sum(rows.values()) == Decimal("251.010001")
    req = route.calls.last.request
    assert req.method == "GET"
    assert dict(req.url.params) == {
        "start_date": s.isoformat(),
        "end_date": e.isoformat(),
        "granularity": "DAY",
        "columns": "SPEND_IN_MICRO_DOLLAR",
    }
    assert req.headers["Authorization"] == "Bearer pina_configured"


@respx.mock
def test_a_row_without_the_spend_column_is_that_days_zero():
    # "Columns with no value may be left out of a row" (section 6.3): a paused day comes back as a
    # row with its DATE and no SPEND_IN_MICRO_DOLLAR; the account's other days are still exact.
    s, e = day(5), day(3)
    respx.get(analytics_url()).mock(
        return_value=httpx.Response(
            200, json=[row(s, 1500000), {"AD_ACCOUNT_ID": ACCOUNT, "DATE": day(4).isoformat()}, row(e, 2)]
        )
    )
    rows = run(lambda api: fetch_window(F, api, INFO, s, e))
    assert rows == {s: Decimal("1.5"), day(4): Decimal(0), e: Decimal("0.000002")}


@respx.mock
def test_report_rows_without_the_spend_column_are_zero_and_entities_still_summed():
    s, e = day(300), day(298)
    respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "t0", "message": None})
    )
    respx.get(reports_url()).mock(
        return_value=httpx.Response(
            200, json={"report_status": "FINISHED", "url": "https://dl.example/z.json?X-Amz-Signature=s", "size": 9}
        )
    )
    respx.get("https://dl.example/z.json").mock(
        return_value=httpx.Response(
            200,
            json={
                "111": [
                    {"CAMPAIGN_ID": "111", "DATE": s.isoformat()},  # JSON: no zero-fill
                    {"CAMPAIGN_ID": "111", "DATE": e.isoformat(), "SPEND_IN_MICRO_DOLLAR": 3000000},
                ],
                "222": [{"CAMPAIGN_ID": "222", "DATE": s.isoformat(), "SPEND_IN_MICRO_DOLLAR": 250000}],
            },
        )
    )
    rows = run(lambda api: fetch_window(F, api, INFO, s, e), jobs=MemoryJobStore())
    assert rows == {s: Decimal("0.25"), day(299): Decimal(0), e: Decimal("3")}


@respx.mock
def test_range_split_into_report_and_sync_windows():
    start, end = day(150), day(1)
    windows = plan_windows(start, end, F.max_days)
    assert windows == [(day(150), day(61)), (day(60), day(1))]
    respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "tok-old", "message": None})
    )
    respx.get(reports_url(), params={"token": "tok-old"}).mock(
        return_value=httpx.Response(
            200, json={"report_status": "FINISHED", "url": "https://dl.example/r.json?X-Amz-Signature=s", "size": 9}
        )
    )
    respx.get("https://dl.example/r.json").mock(
        return_value=httpx.Response(
            200, json={ACCOUNT: [{"DATE": day(100).isoformat(), "SPEND_IN_MICRO_DOLLAR": 2500000}]}
        )
    )
    sync = respx.get(analytics_url()).mock(return_value=httpx.Response(200, json=[row(day(3), 7000001)]))

    async def all_windows(api):
        out = {}
        for s, e in windows:
            out.update(await fetch_window(F, api, INFO, s, e))
        return out

    rows = run(all_windows)
    assert len(rows) == 150 and sum(rows.values()) == Decimal("9.500001")
    assert rows[day(100)] == Decimal("2.5") and rows[day(3)] == Decimal("7.000001")
    assert sync.call_count == 1
    assert dict(sync.calls.last.request.url.params)["start_date"] == day(60).isoformat()


# --- async reports -------------------------------------------------------------------------------


@respx.mock
def test_async_report_submit_poll_download_exact():
    s, e = day(300), day(250)
    submit = respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "abc123", "message": None})
    )
    url = "https://pinterest-analytics-reports.s3.amazonaws.com/r/abc.json?X-Amz-Expires=300&X-Amz-Signature=f00"
    poll = respx.get(reports_url()).mock(
        side_effect=[
            httpx.Response(200, json={"report_status": "IN_PROGRESS", "url": None, "size": None}),
            httpx.Response(200, json={"report_status": "IN_PROGRESS", "url": None, "size": None}),
            httpx.Response(200, json={"report_status": "FINISHED", "url": url, "size": 120}),
        ]
    )
    download = respx.get(url).mock(
        return_value=httpx.Response(
            200,
            json={
                # keyed by entity id; two entities' rows for one day are summed
                "111": [{"DATE": s.isoformat(), "SPEND_IN_MICRO_DOLLAR": 1234567}],
                "222": [
                    {"DATE": s.isoformat(), "SPEND_IN_MICRO_DOLLAR": 1},
                    {"DATE": e.isoformat(), "SPEND_IN_MICRO_DOLLAR": 99000000},
                ],
            },
        )
    )
    jobs = MemoryJobStore()
    rows = run(lambda api: fetch_window(F, api, INFO, s, e), jobs=jobs)
    assert rows[s] == Decimal("1.234568") and rows[e] == Decimal("99") and rows[day(260)] == Decimal(0)
    assert sum(rows.values()) == Decimal("100.234568") and len(rows) == 51
    sent = submit.calls.last.request
    assert json.loads(sent.content) == {
        "start_date": s.isoformat(),
        "end_date": e.isoformat(),
        "granularity": "DAY",
        "level": "ADVERTISER",
        "columns": ["SPEND_IN_MICRO_DOLLAR"],
        "report_format": "JSON",
    }
    assert sent.url.query == b"" and sent.headers["Authorization"] == "Bearer pina_configured"
    assert poll.call_count == 3 and dict(poll.calls.last.request.url.params) == {"token": "abc123"}
    assert "authorization" not in download.calls.last.request.headers  # pre-signed: no bearer
    assert jobs.get(pin.report_resume_key(ACCOUNT, s, e)) is None  # done: forgotten


@respx.mock
def test_async_report_resumes_by_token_and_resubmits_an_expired_one():
    s, e = day(400), day(350)
    jobs = MemoryJobStore()
    key = pin.report_resume_key(ACCOUNT, s, e)
    jobs.put(key, "old-token")
    submit = respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "new-token", "message": None})
    )
    respx.get(reports_url(), params={"token": "old-token"}).mock(
        return_value=httpx.Response(200, json={"report_status": "EXPIRED", "url": None, "size": None})
    )
    respx.get(reports_url(), params={"token": "new-token"}).mock(
        return_value=httpx.Response(
            200, json={"report_status": "FINISHED", "url": "https://dl.example/n.json", "size": 2}
        )
    )
    respx.get("https://dl.example/n.json").mock(return_value=httpx.Response(200, json={}))
    rows = run(lambda api: fetch_window(F, api, INFO, s, e), jobs=jobs)
    assert submit.call_count == 1 and set(rows.values()) == {Decimal(0)} and len(rows) == 51
    assert jobs.get(key) is None


@respx.mock
def test_async_report_resume_skips_submit():
    s, e = day(400), day(350)
    jobs = MemoryJobStore()
    jobs.put(pin.report_resume_key(ACCOUNT, s, e), "kept")
    submit = respx.post(reports_url()).mock(return_value=httpx.Response(500))
    respx.get(reports_url(), params={"token": "kept"}).mock(
        return_value=httpx.Response(
            200, json={"report_status": "FINISHED", "url": "https://dl.example/k.json", "size": 2}
        )
    )
    respx.get("https://dl.example/k.json").mock(
        return_value=httpx.Response(200, json={ACCOUNT: [{"DATE": s.isoformat(), "SPEND_IN_MICRO_DOLLAR": "42000000"}]})
    )
    rows = run(lambda api: fetch_window(F, api, INFO, s, e), jobs=jobs)
    assert submit.call_count == 0 and sum(rows.values()) == Decimal("42")


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
@respx.mock
def test_async_report_failed(status):
    respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "t1", "message": None})
    )
    respx.get(reports_url()).mock(
        return_value=httpx.Response(
            200, json={"report_status": status, "url": None, "size": None, "message": "query failed"}
        )
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: fetch_window(F, api, INFO, day(300), day(250)))
    assert exc.value.kind == "report_failed" and status in exc.value.message


@pytest.mark.parametrize(
    "poll_body,report_file",
    [
        ({"report_status": "DONE"}, None),  # unknown status
        ({"report_status": "FINISHED"}, None),  # no url
        ({"report_status": "FINISHED", "url": "https://dl.example/m.json"}, [1, 2]),  # not an object
        (
            {"report_status": "FINISHED", "url": "https://dl.example/m.json"},
            {ACCOUNT: [{"DATE": "2024-01-01"}]},
        ),  # no spend column
        (
            {"report_status": "FINISHED", "url": "https://dl.example/m.json"},
            {ACCOUNT: [{"DATE": "not a date", "SPEND_IN_MICRO_DOLLAR": 1}]},
        ),
    ],
)
@respx.mock
def test_async_report_malformed(poll_body, report_file):
    respx.post(reports_url()).mock(
        return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS", "token": "t1", "message": None})
    )
    respx.get(reports_url()).mock(return_value=httpx.Response(200, json=poll_body))
    respx.get("https://dl.example/m.json").mock(return_value=httpx.Response(200, json=report_file))
    with pytest.raises(MalformedResponse):
        run(lambda api: fetch_window(F, api, INFO, day(300), day(250)))


@respx.mock
def test_report_request_without_token_is_malformed():
    respx.post(reports_url()).mock(return_value=httpx.Response(200, json={"report_status": "IN_PROGRESS"}))
    with pytest.raises(MalformedResponse, match="without a token"):
        run(lambda api: fetch_window(F, api, INFO, day(300), day(250)))


# --- errors, throttling, auth --------------------------------------------------------------------


@respx.mock
def test_throttle_codes_retried_then_ok():
    route = respx.get(analytics_url()).mock(
        side_effect=[
            httpx.Response(
                429, json={"code": 2726, "message": "Reporting query cost limit exceeded. Retry after 0 seconds"}
            ),
            httpx.Response(400, json={"code": 1, "message": "Retry after 0 seconds"}),
            httpx.Response(400, json={"code": 12, "message": "Something went wrong on our end. Sorry about that."}),
            httpx.Response(200, json=[row(day(5), 5000000)]),
        ]
    )
    rows = run(lambda api: fetch_window(F, api, INFO, day(5), day(5)))
    assert rows == {day(5): Decimal("5")} and route.call_count == 4


def test_classify_reads_the_wait_from_the_message():
    req = httpx.Request("GET", analytics_url())
    v = F.classify(
        httpx.Response(
            429,
            json={"code": 2726, "message": "Reporting query cost limit exceeded. Retry after 7 seconds"},
            request=req,
        )
    )
    assert (v.action, v.kind, v.retry_after) == ("retry", "throttled", 7.0)
    v = F.classify(httpx.Response(429, headers={"Retry-After": "3"}, json={"code": 8, "message": "x"}, request=req))
    assert (v.action, v.retry_after) == ("retry", 3.0)
    v = F.classify(
        httpx.Response(400, json={"code": 400, "message": "Invalid ad account analytics parameters."}, request=req)
    )
    assert (v.action, v.kind) == ("fail", "request") and "Invalid ad account analytics parameters." in v.message


@respx.mock
def test_expired_access_token_refreshed_with_basic_auth_and_rotated():
    rotated = []
    token = respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "pina_fresh",
                "token_type": "bearer",
                "expires_in": 2592000,
                "scope": "ads:read",
                "refresh_token": "pinr.next",
                "refresh_token_expires_in": 5184000,
            },
        )
    )
    api_route = respx.get(analytics_url()).mock(
        side_effect=[
            httpx.Response(401, json={"code": 2, "message": "Authentication failed."}),
            httpx.Response(200, json=[row(day(3), 1500000)]),
        ]
    )
    rows = run(lambda api: fetch_window(F, api, INFO, day(3), day(3)), on_rotate=rotated.append)
    assert rows == {day(3): Decimal("1.5")}
    grant = token.calls.last.request
    assert grant.headers["Authorization"] == BASIC
    assert grant.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(grant.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["pinr.original-refresh"],
        "continuous_refresh": ["true"],
    }
    assert api_route.calls.last.request.headers["Authorization"] == "Bearer pina_fresh"
    assert rotated == ["pinr.next"]


@respx.mock
def test_401_after_refresh_is_an_auth_failure():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            200, json={"access_token": "pina_fresh", "expires_in": 2592000, "refresh_token": "pinr.next"}
        )
    )
    respx.get(analytics_url()).mock(
        return_value=httpx.Response(401, json={"code": 2, "message": "Authentication failed."})
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: fetch_window(F, api, INFO, day(3), day(3)))
    assert exc.value.kind == "auth" and exc.value.platform_wide
    assert "re-authorise" in exc.value.message


@respx.mock
def test_refused_refresh_token_is_auth_and_leaks_no_secret():
    respx.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400, json={"code": 400, "message": "invalid_grant: refresh token pinr.original-refresh is invalid"}
        )
    )
    creds = {k: v for k, v in CREDS.items() if k != "PINTEREST_ACCESS_TOKEN"}
    with pytest.raises(FetchError) as exc:
        run(lambda api: F.account_info(api, ACCOUNT), creds=creds)
    assert exc.value.kind == "auth" and "re-authorise" in exc.value.message
    for secret in ("app-secret-xyz", "pinr.original-refresh"):
        assert secret not in str(exc.value)


@respx.mock
def test_403_names_the_access_the_user_needs():
    respx.get(analytics_url()).mock(
        return_value=httpx.Response(403, json={"code": 29, "message": "You are not permitted to access that resource."})
    )
    with pytest.raises(FetchError) as exc:
        run(lambda api: fetch_window(F, api, INFO, day(3), day(3)))
    assert exc.value.kind == "request"
    assert "code 29" in exc.value.message and "Owner, Admin, Analyst or Campaign Manager" in exc.value.message


@pytest.mark.parametrize(
    "body",
    [
        [{"AD_ACCOUNT_ID": ACCOUNT, "DATE": None}],  # no date
        [{"AD_ACCOUNT_ID": ACCOUNT, "DATE": "DAY_PLACEHOLDER", "SPEND_IN_DOLLAR": 1.5}],  # another spend column only
        [{"AD_ACCOUNT_ID": ACCOUNT, "SPEND_IN_MICRO_DOLLAR": 1}],  # a DAY row without DATE
        [{"AD_ACCOUNT_ID": ACCOUNT, "DATE": "DAY_PLACEHOLDER", "SPEND_IN_MICRO_DOLLAR": "abc"}],
        [{"AD_ACCOUNT_ID": ACCOUNT, "DATE": "DAY_PLACEHOLDER", "SPEND_IN_MICRO_DOLLAR": 1.5}],
        [{"AD_ACCOUNT_ID": ACCOUNT, "DATE": "DAY_PLACEHOLDER", "SPEND_IN_MICRO_DOLLAR": None}],
        [{"AD_ACCOUNT_ID": "999", "DATE": "DAY_PLACEHOLDER", "SPEND_IN_MICRO_DOLLAR": 1}],  # another account
        [row(dt.date(2000, 1, 1), 1)] * 2,  # same day twice
        {"items": []},  # not the documented array
        ["row"],
    ],
)
@respx.mock
def test_malformed_analytics_never_zero(body):
    text = json.dumps(body).replace("DAY_PLACEHOLDER", day(3).isoformat())
    respx.get(analytics_url()).mock(return_value=httpx.Response(200, content=text.encode()))
    with pytest.raises(MalformedResponse):
        run(lambda api: fetch_window(F, api, INFO, day(3), day(3)))


@respx.mock
def test_non_json_and_out_of_window_rows_are_malformed():
    respx.get(analytics_url()).mock(
        side_effect=[httpx.Response(200, content=b"<html>oops</html>"), httpx.Response(200, json=[row(day(20), 1)])]
    )
    with pytest.raises(MalformedResponse, match="not JSON"):
        run(lambda api: fetch_window(F, api, INFO, day(3), day(3)))
    with pytest.raises(MalformedResponse, match="outside"):
        run(lambda api: fetch_window(F, api, INFO, day(3), day(3)))


@respx.mock
def test_account_info_currency_and_utc():
    route = respx.get(f"{BASE}/v5/ad_accounts/{ACCOUNT}").mock(
        return_value=httpx.Response(
            200, json={"id": ACCOUNT, "name": "Shop GB", "currency": "GBP", "country": "GB", "permissions": ["ADMIN"]}
        )
    )
    info = run(lambda api: F.account_info(api, ACCOUNT))
    assert info == AccountInfo(ACCOUNT, "GBP", "UTC", "Shop GB")
    assert route.calls.last.request.headers["Authorization"] == "Bearer pina_configured"


@respx.mock
def test_account_info_without_currency_is_malformed():
    respx.get(f"{BASE}/v5/ad_accounts/{ACCOUNT}").mock(return_value=httpx.Response(200, json={"id": ACCOUNT}))
    with pytest.raises(MalformedResponse, match="currency"):
        run(lambda api: F.account_info(api, ACCOUNT))


# --- continuous refresh tokens across runs ------------------------------------------------------


@respx.mock
def test_a_rotated_refresh_token_is_kept_and_used_on_the_next_run():
    configured = "pinr.configured-0"
    creds = {
        "PINTEREST_APP_ID": "app-1507",
        "PINTEREST_APP_SECRET": "app-secret-xyz",
        "PINTEREST_REFRESH_TOKEN": configured,
    }
    token = respx.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(
                200, json={"access_token": "pina_run1", "expires_in": 2592000, "refresh_token": "pinr.rotated-1"}
            ),
            httpx.Response(
                200, json={"access_token": "pina_run2", "expires_in": 2592000, "refresh_token": "pinr.rotated-2"}
            ),
        ]
    )
    respx.get(f"{BASE}/v5/ad_accounts/{ACCOUNT}").mock(
        return_value=httpx.Response(200, json={"id": ACCOUNT, "currency": "USD"})
    )

    def on_rotate(new: str) -> None:  # exactly as the refresh service wires it
        TokenCache().store_rotation("pinterest", configured, new)

    # run 1: the configured token is exchanged; the rotated one lands in the owner-only cache
    run(lambda api: F.account_info(api, ACCOUNT), creds=creds, on_rotate=on_rotate)
    cache_file = TokenCache().path
    assert str(cache_file) == os.environ["ADSPEND_TOKEN_CACHE"]  # the test's temp cache
    assert stat.S_IMODE(os.stat(cache_file).st_mode) == 0o600
    assert json.loads(open(cache_file).read())["pinterest"]["refresh_token"] == "pinr.rotated-1"
    assert (
        token.calls[0].request.content
        == b"grant_type=refresh_token&refresh_token=pinr.configured-0&continuous_refresh=true"
    )

    # run 2: a new process, same configuration: the cache supplies the rotated token
    run2_creds = {**creds, "PINTEREST_REFRESH_TOKEN": TokenCache().refresh_token("pinterest", configured)}
    run(lambda api: F.account_info(api, ACCOUNT), creds=run2_creds, on_rotate=on_rotate)
    assert token.call_count == 2
    assert (
        token.calls[1].request.content
        == b"grant_type=refresh_token&refresh_token=pinr.rotated-1&continuous_refresh=true"
    )
    assert token.calls[1].request.headers["Authorization"] == BASIC
    assert TokenCache().refresh_token("pinterest", configured) == "pinr.rotated-2"


# --- against the sandbox -------------------------------------------------------------------------


def sandbox_creds() -> dict:
    from sandbox.credentials import FAKE_CREDENTIALS

    return dict(FAKE_CREDENTIALS["pinterest"])


def sandbox_run(sb, fn, **kw):
    return run(fn, creds=kw.pop("creds", sandbox_creds()), base=sb.url, token_url=sb.url + "/v5/oauth/token", **kw)


async def fetch_range(api, account: str, start: dt.date, end: dt.date) -> dict:
    info = await F.account_info(api, account)
    out = {}
    for s, e in plan_windows(start, end, F.max_days):
        out.update(await fetch_window(F, api, info, s, e))
    return out


def test_sandbox_exact_total_over_report_and_sync_windows(sandbox):
    account, start, end = "549755885826", day(260), day(1)  # GBP; 3 windows: 2 reports, 1 sync
    rotated = []
    rows = sandbox_run(sandbox, lambda api: fetch_range(api, account, start, end), on_rotate=rotated.append)
    expected = sandbox.sandbox.expected_total("pinterest", account, start, end)
    assert expected["currency"] == "GBP"
    assert str(sum(rows.values())) == expected["spend"]
    assert {d.isoformat(): v for d, v in rows.items()} == {k: Decimal(v) for k, v in expected["days"].items()}
    zero_days = [d for d, v in rows.items() if v == 0]
    # the account's paused days (one in eleven): served as rows without the spend column
    # (sync) or left out (reports); each is an explicit zero, never a failed window
    assert len(zero_days) >= 260 // 11
    assert len([j for j in sandbox.ctx.jobs.values() if j.get("platform") == "pinterest"]) == 2
    assert len(rotated) == 1 and rotated[0].startswith("pinr.")


def test_sandbox_campaign_level_report_sums_to_the_same_total(sandbox):
    # the report file is keyed by entity: at CAMPAIGN level several keys must be summed per day
    account, start, end = "549755885175", day(300), day(200)
    token = sandbox_token(sandbox)
    h = {"Authorization": f"Bearer {token}"}
    body = {**pin.build_report_body(start, end), "level": "CAMPAIGN"}
    with httpx.Client(base_url=sandbox.url) as c:
        tok = c.post(f"/v5/ad_accounts/{account}/reports", json=body, headers=h).json()["token"]
        for _ in range(sandbox.ctx.report_polls_needed):
            status = c.get(f"/v5/ad_accounts/{account}/reports", params={"token": tok}, headers=h).json()
        assert status["report_status"] == "FINISHED"
        report = c.get(status["url"]).json()
    assert len(report) == 2
    total = sum(pin.parse_report_file(report).values())
    assert str(total) == sandbox.sandbox.expected_total("pinterest", account, start, end)["spend"]


def sandbox_token(sb) -> str:
    creds = sandbox_creds()
    basic = base64.b64encode(f"{creds['PINTEREST_APP_ID']}:{creds['PINTEREST_APP_SECRET']}".encode()).decode()
    r = httpx.post(
        sb.url + "/v5/oauth/token",
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "refresh_token", "refresh_token": creds["PINTEREST_REFRESH_TOKEN"]},
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_sandbox_serves_a_paused_day_as_a_row_without_the_spend_column(sandbox):
    account, start, end = "549755885175", day(12), day(2)  # 11 days: one paused day at least
    with httpx.Client(base_url=sandbox.url) as c:
        rows = c.get(
            f"/v5/ad_accounts/{account}/analytics",
            headers={"Authorization": f"Bearer {sandbox_token(sandbox)}"},
            params={
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "granularity": "DAY",
                "columns": "SPEND_IN_MICRO_DOLLAR",
            },
        ).json()
    assert [r["DATE"] for r in rows] == [(start + dt.timedelta(days=i)).isoformat() for i in range(11)]
    bare = [r for r in rows if "SPEND_IN_MICRO_DOLLAR" not in r]
    expected = sandbox.sandbox.expected_total("pinterest", account, start, end)["days"]
    assert bare and all(set(r) == {"AD_ACCOUNT_ID", "DATE"} and Decimal(expected[r["DATE"]]) == 0 for r in bare)
    assert pin.parse_analytics(rows, account) == {dt.date.fromisoformat(k): Decimal(v) for k, v in expected.items()}


def test_sandbox_rejects_what_pinterest_rejects(sandbox):
    token = sandbox_token(sandbox)
    h = {"Authorization": f"Bearer {token}"}
    path = f"/v5/ad_accounts/{ACCOUNT}/analytics"
    good = {
        "start_date": day(10).isoformat(),
        "end_date": day(1).isoformat(),
        "granularity": "DAY",
        "columns": "SPEND_IN_MICRO_DOLLAR",
    }
    with httpx.Client(base_url=sandbox.url) as c:
        assert c.get(path, params=good, headers=h).status_code == 200
        for bad in (
            {k: v for k, v in good.items() if k != "granularity"},
            {k: v for k, v in good.items() if k != "columns"},
            {**good, "start_date": day(91).isoformat(), "end_date": day(80).isoformat()},  # too old for sync
            {**good, "start_date": day(90).isoformat(), "end_date": day(0).isoformat()},  # 91 days
            {**good, "start_date": "2025-13-01"},
        ):
            r = c.get(path, params=bad, headers=h)
            assert r.status_code == 400 and r.json()["code"] == 400, bad
            assert r.json()["message"].startswith("Invalid ad account analytics parameters.")
        r = c.get(path, params=good)  # no bearer token
        assert r.status_code == 401 and r.json() == {"code": 2, "message": "Authentication failed."}
        # the reports endpoint takes a JSON body only, and at most 186 days
        body = pin.build_report_body(day(300), day(250))
        assert c.post(f"/v5/ad_accounts/{ACCOUNT}/reports", params=good, json=body, headers=h).status_code == 400
        long = pin.build_report_body(day(400), day(200))
        assert c.post(f"/v5/ad_accounts/{ACCOUNT}/reports", json=long, headers=h).status_code == 400
        assert (
            c.post(
                f"/v5/ad_accounts/{ACCOUNT}/reports", json={**body, "start_date": day(915).isoformat()}, headers=h
            ).status_code
            == 400
        )
        # the token endpoint wants HTTP Basic client auth
        creds = sandbox_creds()
        r = c.post(
            "/v5/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "pinr.x",
                "client_id": creds["PINTEREST_APP_ID"],
                "client_secret": creds["PINTEREST_APP_SECRET"],
            },
        )
        assert r.status_code == 401
    sandbox_token(sandbox)  # continuous refresh: the configured token is not used up


def test_sandbox_continuous_refresh_tokens(sandbox):
    """Each refresh hands out a new refresh token, and it works; a made-up one or a wrong app
    secret is refused as Pinterest refuses it."""
    creds = sandbox_creds()
    basic = base64.b64encode(f"{creds['PINTEREST_APP_ID']}:{creds['PINTEREST_APP_SECRET']}".encode()).decode()

    def grant(refresh, auth=basic):
        return httpx.post(
            sandbox.url + "/v5/oauth/token",
            headers={"Authorization": f"Basic {auth}"},
            data={"grant_type": "refresh_token", "refresh_token": refresh, "continuous_refresh": "true"},
        )

    first = grant(creds["PINTEREST_REFRESH_TOKEN"]).json()
    second = grant(first["refresh_token"]).json()
    assert second["refresh_token"].startswith("pinr.") and second["refresh_token"] != first["refresh_token"]
    assert grant(creds["PINTEREST_REFRESH_TOKEN"]).status_code == 200
    r = httpx.get(
        f"{sandbox.url}/v5/ad_accounts/{ACCOUNT}", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert r.status_code == 200 and r.json()["id"] == ACCOUNT
    made_up = grant("pinr.made-up")
    assert (made_up.status_code, made_up.json()["code"]) == (400, 400)
    wrong = base64.b64encode(f"{creds['PINTEREST_APP_ID']}:not-the-secret".encode()).decode()
    assert grant(creds["PINTEREST_REFRESH_TOKEN"], wrong).json() == {
        "code": 2,
        "message": "Authentication failed. Invalid app id or app secret.",
    }
    bogus = httpx.get(f"{sandbox.url}/v5/ad_accounts/{ACCOUNT}", headers={"Authorization": "Bearer pina_made-up"})
    assert (bogus.status_code, bogus.json()) == (401, {"code": 2, "message": "Authentication failed."})


def test_sandbox_download_link_is_pre_signed(sandbox):
    token = sandbox_token(sandbox)
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=sandbox.url) as c:
        tok = c.post(
            f"/v5/ad_accounts/{ACCOUNT}/reports", json=pin.build_report_body(day(300), day(250)), headers=h
        ).json()["token"]
        statuses = [
            c.get(f"/v5/ad_accounts/{ACCOUNT}/reports", params={"token": tok}, headers=h).json()["report_status"]
            for _ in range(sandbox.ctx.report_polls_needed)
        ]
        assert statuses == ["IN_PROGRESS"] * (sandbox.ctx.report_polls_needed - 1) + ["FINISHED"]
        url = c.get(f"/v5/ad_accounts/{ACCOUNT}/reports", params={"token": tok}, headers=h).json()["url"]
        assert c.get(url, headers=h).status_code == 400  # a bearer token next to the signature
        assert c.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
        assert c.get(url).status_code == 200
        unknown = c.get(f"/v5/ad_accounts/{ACCOUNT}/reports", params={"token": "0" * 32}, headers=h).json()
        assert unknown["report_status"] == "DOES_NOT_EXIST"


def test_sandbox_throttle_then_ok(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "throttle", "count": 1}]})
    rows = sandbox_run(sandbox, lambda api: fetch_range(api, ACCOUNT, day(20), day(1)))
    assert str(sum(rows.values())) == sandbox.sandbox.expected_total("pinterest", ACCOUNT, day(20), day(1))["spend"]
    assert sandbox.ctx.throttled["pinterest"] == 1


def test_sandbox_expired_token_refreshed(sandbox):
    sandbox.ctx.configure(
        {"faults": [{"platform": "pinterest", "kind": "expired_token", "count": 1, "account": ACCOUNT}]}
    )
    rotated = []
    # the fault hits the first API call after the first grant: a second grant uses the rotated token
    rows = sandbox_run(sandbox, lambda api: fetch_range(api, ACCOUNT, day(30), day(1)), on_rotate=rotated.append)
    assert str(sum(rows.values())) == sandbox.sandbox.expected_total("pinterest", ACCOUNT, day(30), day(1))["spend"]
    assert sandbox.ctx.token_grants["pinterest"] == 2 and len(rotated) == 2 and rotated[0] != rotated[1]


def test_sandbox_permanent_5xx_fails(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "5xx", "count": None}]})
    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, lambda api: fetch_range(api, ACCOUNT, day(20), day(1)))
    assert exc.value.kind == "server" and "503" in exc.value.message


@pytest.mark.parametrize("start,end", [(day(20), day(1)), (day(300), day(250))])
def test_sandbox_malformed_fails(sandbox, start, end):
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "malformed", "count": 1}]})
    with pytest.raises(MalformedResponse):
        sandbox_run(sandbox, lambda api: fetch_window(F, api, INFO, start, end))


def test_sandbox_report_failed(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "report_failed", "count": 1}]})
    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, lambda api: fetch_window(F, api, INFO, day(300), day(250)))
    assert exc.value.kind == "report_failed" and "FAILED" in exc.value.message


def test_sandbox_stuck_report_times_out_and_keeps_its_token(sandbox):
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "report_stuck", "count": 1}]})
    jobs = MemoryJobStore()
    with pytest.raises(FetchError) as exc:
        sandbox_run(
            sandbox,
            lambda api: fetch_window(F, api, INFO, day(300), day(250)),
            jobs=jobs,
            report=ReportPolicy(first_poll=0.01, deadline=0.2),
        )
    assert exc.value.kind == "timeout"
    kept = jobs.get(pin.report_resume_key(ACCOUNT, day(300), day(250)))
    assert kept in sandbox.ctx.jobs


def test_demo_pinterest_survives_repeated_cli_runs_against_one_sandbox(sandbox, run_cli, monkeypatch):
    """``ADSPEND_SANDBOX_URL`` set: every CLI run is a new process (it remembers no rotation) and
    sends the demo's configured refresh token to the same long-lived sandbox. Continuous refresh
    tokens are not used up, so each run is ``ok``."""
    import service.refresh as refresh_module
    from fetchers import clock

    monkeypatch.setenv("ADSPEND_SANDBOX_URL", sandbox.url)
    assert run_cli("demo").returncode == 0
    end = clock.today() - dt.timedelta(days=2)
    start = end - dt.timedelta(days=2)
    for n in range(1, 4):
        monkeypatch.setattr(refresh_module, "_SANDBOX_ROTATIONS", {})  # a fresh CLI process
        r = run_cli(
            "refresh",
            "--store",
            "demo-acme",
            "--platform",
            "pinterest",
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            "--full",
        )
        assert r.returncode == 0, (n, r)
        assert [line.split()[:3] for line in r.stdout.splitlines() if "pinterest" in line] == [
            ["demo-acme", "pinterest", "ok"]
        ], r
        assert sandbox.ctx.token_grants["pinterest"] == n
