"""Microsoft Advertising: the bingads SOAP fetcher, its parsers and fault mapping, and the unmodified
SDK end to end against the sandbox emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import re
import threading
import time
import urllib.error
import xml.sax
import zipfile
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import respx

from fetchers import get_fetcher
from fetchers import microsoft as ms
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import MemoryJobStore, PlatformApi, RateBudget, ReportPolicy, fetch_window, plan_windows

DATA = Path(__file__).parent / "data" / "microsoft"
EUR_ACCOUNT = "4455667978"  # ends in 978: EUR, Europe/Berlin in the sandbox
USD_ACCOUNT = "4455667001"
F = get_fetcher("microsoft")


def read_layout(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8-sig")


# --- ids, constants ---------------------------------------------------------------------------------


def test_constants():
    assert (F.platform, F.max_days, F.lookback_days, F.day_basis, F.history_days) == (
        "microsoft",
        1095,
        30,
        "account",
        1095,
    )


@pytest.mark.parametrize("raw,stored", [("149123456", "149123456"), (" 149123456 ", "149123456")])
def test_account_id_good(raw, stored):
    assert F.normalize_account_id(raw) == stored


@pytest.mark.parametrize("raw", ["F1234ABC", "", "12-34", "act_123", "0", "1" * 20])
def test_account_id_bad(raw):
    with pytest.raises(ValueError) as e:
        F.normalize_account_id(raw)
    assert "microsoft" in str(e.value) and repr(raw) in str(e.value) and "digits" in str(e.value)


def test_time_zone_tables_cover_both_wsdl_enums():
    wsdl = Path(__import__("bingads").__file__).parent / "v13" / "proxies" / "production"
    cm = (wsdl / "customermanagement_service.xml").read_text()
    rep = (wsdl / "reporting_service.xml").read_text()

    def enum(text: str, name: str) -> set[str]:
        m = re.search(r'<xs:simpleType name="%s">(.*?)</xs:simpleType>' % name, text, re.S)  # noqa: UP031
        return set(re.findall(r'value="([^"]+)"', m.group(1)))

    assert set(ms.TIME_ZONES) == enum(cm, "TimeZoneType")
    assert {r for r, _ in ms.TIME_ZONES.values()} == enum(rep, "ReportTimeZone")
    assert len(ms.REPORT_TIME_ZONE_BY_IANA) == len(ms.TIME_ZONES)  # IANA names are unique
    from zoneinfo import ZoneInfo

    for _, iana in ms.TIME_ZONES.values():
        ZoneInfo(iana)


def test_customer_management_host():
    assert (
        ms.customer_management_url("https://reporting.api.bingads.microsoft.com")
        == "https://clientcenter.api.bingads.microsoft.com/Api/CustomerManagement/v13/CustomerManagementService.svc"
    )
    assert (
        ms.customer_management_url("http://127.0.0.1:8765/")
        == "http://127.0.0.1:8765/Api/CustomerManagement/v13/CustomerManagementService.svc"
    )
    assert (
        ms.reporting_url("http://127.0.0.1:8765")
        == "http://127.0.0.1:8765/Api/Advertiser/Reporting/v13/ReportingService.svc"
    )


# --- the report file --------------------------------------------------------------------------------


def test_parse_layout_with_copyright_footer():
    rows = ms.parse_report_csv(read_layout("daily_copyright_footer.csv"), "111111", "USD")
    assert rows == {
        dt.date(2026, 3, 1): Decimal("73.16"),
        dt.date(2026, 3, 3): Decimal("73.79"),
        dt.date(2026, 3, 4): Decimal("29.92"),
        dt.date(2026, 3, 5): Decimal("244.90"),
        dt.date(2026, 3, 7): Decimal("189.72"),
    }
    assert sum(rows.values()) == Decimal("611.49")
    assert all(isinstance(v, Decimal) for v in rows.values())


def test_parse_layout_with_at_footer_and_thousands_separator():
    rows = ms.parse_report_csv(read_layout("daily_at_footer_thousands.csv"), "222978", "EUR")
    assert rows == {dt.date(2026, 3, 1): Decimal("1234.50"), dt.date(2026, 3, 3): Decimal("0.07")}


def test_parse_no_rows_is_empty_not_error():
    assert ms.parse_report_csv(read_layout("daily_no_rows.csv"), "111111", "USD") == {}


def test_omitted_days_become_explicit_zeros_via_fetch_window():
    class OneShot(ms.MicrosoftFetcher):
        async def fetch_daily(self, api, account, start, end):
            return ms.parse_report_csv(read_layout("daily_copyright_footer.csv"), "111111", "USD")

    info = AccountInfo("111111", "USD", "America/Los_Angeles")
    out = asyncio.run(fetch_window(OneShot(), None, info, dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    assert out[dt.date(2026, 3, 2)] == Decimal(0) and out[dt.date(2026, 3, 6)] == Decimal(0)
    assert len(out) == 7 and sum(out.values()) == Decimal("611.49")


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda t: t.replace('"Rows: 5"', '"Rows: 6"'), "Rows: 6"),
        (lambda t: t.split('\r\n\r\n"©')[0], "footer"),  # cut off
        (lambda t: t.replace('"244.90"', '"--"'), "Spend on 2026-03-05"),  # never a silent zero
        (lambda t: t.replace('"244.90"', '""'), "Spend on 2026-03-05"),
        (lambda t: t.replace('"244.90"', '"2.449E2"'), "Spend on 2026-03-05"),
        (lambda t: t.replace('"2026-03-04","111111","USD"', '"2026-03-04","111111","EUR"'), "EUR"),
        (lambda t: t.replace('"2026-03-04","111111"', '"2026-03-04","999999"'), "999999"),
        (lambda t: t.replace('"2026-03-04"', '"3/4/2026"'), "YYYY-MM-DD"),
        (lambda t: t.replace(',"Spend"', ""), "Spend"),
        (lambda t: t.replace('"TimePeriod",', ""), "TimePeriod"),
        (lambda t: t.replace(',"189.72"', ""), "fields"),
        (lambda t: t + '"2026-03-08","111111","USD","1.00"\r\n', "after its copyright footer"),
    ],
)
def test_parse_refuses_broken_files(mutate, needle):
    with pytest.raises(MalformedResponse) as e:
        ms.parse_report_csv(mutate(read_layout("daily_copyright_footer.csv")), "111111", "USD")
    assert needle in str(e.value)


def test_unzip_report():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("30000000001.csv", (DATA / "daily_copyright_footer.csv").read_bytes())
    assert ms.unzip_report(buf.getvalue()).startswith('"Report Name: Daily spend"')
    with pytest.raises(MalformedResponse, match="not a zip"):
        ms.unzip_report(b"<Error>AuthenticationFailed</Error>")


# --- the request the SDK sends ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _capture_manager():
    from bingads.authorization import AuthorizationData, OAuthDesktopMobileImplicitGrant, OAuthTokens
    from bingads.v13.reporting import ReportingServiceManager

    data = AuthorizationData(
        account_id="4455667978",
        customer_id="123456789",
        developer_token="DEV",
        authentication=OAuthDesktopMobileImplicitGrant("cid", oauth_tokens=OAuthTokens("AT")),
    )
    return ReportingServiceManager(
        data, environment="production", nosend=True, location="http://127.0.0.1:9" + ms.REPORTING_PATH
    )


def test_report_request_on_the_wire():
    manager = _capture_manager()
    req = ms.build_report_request(
        manager.service_client.factory,
        "4455667978",
        dt.date(2026, 2, 1),
        dt.date(2026, 3, 3),
        "AmsterdamBerlinBernRomeStockholmVienna",
    )
    manager.normalize_request(req)
    sent = manager.service_client.SubmitGenerateReport(req).envelope.decode()
    body = re.sub(r"ns\d:", "", sent)
    assert 'ReportRequest xsi:type="AccountPerformanceReportRequest"' in body
    for element in [
        "<Format>Csv</Format>",
        "<FormatVersion>2.0</FormatVersion>",
        "<Aggregation>Daily</Aggregation>",
        "<ReturnOnlyCompleteData>false</ReturnOnlyCompleteData>",
        "<ExcludeReportHeader>false</ExcludeReportHeader>",
        "<ExcludeReportFooter>false</ExcludeReportFooter>",
        "<ExcludeColumnHeaders>false</ExcludeColumnHeaders>",
        "<Columns><AccountPerformanceReportColumn>TimePeriod</AccountPerformanceReportColumn>"
        "<AccountPerformanceReportColumn>AccountId</AccountPerformanceReportColumn>"
        "<AccountPerformanceReportColumn>CurrencyCode</AccountPerformanceReportColumn>"
        "<AccountPerformanceReportColumn>Spend</AccountPerformanceReportColumn></Columns>",
        "<Scope><AccountIds><long>4455667978</long></AccountIds></Scope>",
        "<CustomDateRangeEnd><Day>3</Day><Month>3</Month><Year>2026</Year></CustomDateRangeEnd>",
        "<CustomDateRangeStart><Day>1</Day><Month>2</Month><Year>2026</Year></CustomDateRangeStart>",
        "<ReportTimeZone>AmsterdamBerlinBernRomeStockholmVienna</ReportTimeZone>",
    ]:
        assert element in body, element
    assert "<Filter" not in body and "PredefinedTime" not in body
    for header in [
        "<tns:AuthenticationToken>AT</tns:AuthenticationToken>",
        "<tns:DeveloperToken>DEV</tns:DeveloperToken>",
        "<tns:CustomerId>123456789</tns:CustomerId>",
        "<tns:CustomerAccountId>4455667978</tns:CustomerAccountId>",
    ]:
        assert header in sent, header


def test_token_refresh_form_and_rotation():
    rotated = []
    auth = F.build_auth(
        {
            "MICROSOFT_CLIENT_ID": "cid",
            "MICROSOFT_CLIENT_SECRET": "csecret-1",
            "MICROSOFT_REFRESH_TOKEN": "M.C5-old",
            "MICROSOFT_DEVELOPER_TOKEN": "d",
            "MICROSOFT_CUSTOMER_ID": "1",
        },
        "https://login.example/common/oauth2/v2.0/token",
        rotated.append,
    )

    async def go():
        with respx.mock(assert_all_called=True) as mock:
            route = mock.post("https://login.example/common/oauth2/v2.0/token").respond(
                200,
                json={"token_type": "Bearer", "expires_in": 3600, "access_token": "AT-1", "refresh_token": "M.C5-new"},
            )
            async with httpx.AsyncClient() as client:
                assert await auth.token(client) == "AT-1"
            return route.calls[0].request

    request = asyncio.run(go())
    form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": "M.C5-old",
        "client_id": "cid",
        "client_secret": "csecret-1",
        "scope": "https%3A%2F%2Fads.microsoft.com%2Fmsads.manage+offline_access",
    }
    assert rotated == ["M.C5-new"] and auth.refresh_token == "M.C5-new"


def test_token_refresh_without_client_secret_for_public_clients():
    auth = F.build_auth({"MICROSOFT_CLIENT_ID": "cid", "MICROSOFT_REFRESH_TOKEN": "M.C5-old"}, "https://t", None)
    assert auth.client_secret == "" and auth.extra_form == {"scope": ms.OAUTH_SCOPE}


# --- faults and errors ------------------------------------------------------------------------------


def _webfault(resp):
    """A real suds WebFault, parsed by the SDK's client from a fault envelope the emulator renders."""
    from suds import WebFault

    manager = _capture_manager()
    ctx = manager.service_client.PollGenerateReport("1")
    with pytest.raises(WebFault) as e:
        ctx.process_reply(resp.body, resp.status, "Internal Server Error")
    return e.value


def test_fault_mapping():
    import sandbox.microsoft as emu

    cases = {
        117: emu.throttle_response(None),
        109: emu.adapi_fault(109, "AuthenticationTokenExpired", "The user's authentication token has expired."),
        105: emu.adapi_fault(105, "InvalidCredentials", "Authentication failed."),
        106: emu.adapi_fault(106, "UserIsNotAuthorized", "The user does not represent a authorized developer."),
        2011: emu.api_fault(2011, "InvalidCustomDateRangeEnd", "The end date is before the start date."),
        2004: emu.api_fault(2004, "NoCompleteDataAvaliable", "Complete data is not yet available."),
        1102: emu.api_fault(1102, "InvalidAccountId", "The account identifier is not valid.", "customer"),
    }
    verdicts = {code: ms.fault_verdict(ms.fault_errors(_webfault(r).fault)) for code, r in cases.items()}
    assert (verdicts[117].action, verdicts[117].kind) == ("retry", "throttled")
    assert verdicts[109].action == "refresh"
    for code in (105, 106):
        assert (verdicts[code].action, verdicts[code].kind) == ("fail", "auth")
        assert "MICROSOFT_DEVELOPER_TOKEN" in verdicts[code].message
    assert (verdicts[2011].action, verdicts[2011].kind) == ("fail", "request")
    assert "2011 InvalidCustomDateRangeEnd: The end date is before the start date." in verdicts[2011].message
    assert "2004 NoCompleteDataAvaliable" in verdicts[2004].message
    assert "1102" in verdicts[1102].message and verdicts[1102].kind == "request"


def test_exception_mapping():
    assert (
        ms.exception_verdict(Exception((503, "Service Unavailable"))).action,
        ms.exception_verdict(Exception((503, "Service Unavailable"))).kind,
    ) == ("retry", "server")
    assert ms.exception_verdict(Exception((429, "Too Many"))).kind == "throttled"
    assert ms.exception_verdict(Exception((400, "Bad Request"))).action == "fail"
    assert ms.exception_verdict(urllib.error.URLError(ConnectionRefusedError())).action == "retry"
    assert ms.exception_verdict(urllib.error.URLError(TimeoutError())).kind == "timeout"
    v = ms.exception_verdict(xml.sax.SAXException("junk"))
    assert (v.action, v.kind) == ("fail", "malformed")


def test_poll_status_and_account_parsing():
    class S:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    assert ms.parse_poll_status(S(Status="Pending", ReportDownloadUrl=None), "1").state == "pending"
    done = ms.parse_poll_status(S(Status="Success", ReportDownloadUrl="https://blob/x.zip?sig=1"), "1")
    assert (done.state, done.detail["url"]) == ("done", "https://blob/x.zip?sig=1")
    assert ms.parse_poll_status(S(Status="Success", ReportDownloadUrl=None), "1").detail["url"] == ""
    assert ms.parse_poll_status(S(Status="Error", ReportDownloadUrl=None), "1").state == "failed"
    with pytest.raises(MalformedResponse, match="unknown status"):
        ms.parse_poll_status(S(Status="Queued"), "1")
    good = S(Id=149, CurrencyCode="EUR", TimeZone="AmsterdamBerlinBernRomeStockholmVienna", Name="Shop")
    assert ms.parse_account(good, "149") == AccountInfo("149", "EUR", "Europe/Berlin", "Shop")
    with pytest.raises(MalformedResponse, match="currency"):
        ms.parse_account(S(Id=149, CurrencyCode=None, TimeZone="Seoul"), "149")
    with pytest.raises(MalformedResponse, match="time zone"):
        ms.parse_account(S(Id=149, CurrencyCode="USD", TimeZone="Mars"), "149")
    with pytest.raises(MalformedResponse, match="returned account 150"):
        ms.parse_account(S(Id=150, CurrencyCode="USD", TimeZone="Seoul"), "149")


# --- the SDK end to end against the sandbox -----------------------------------------------------------


def _creds(sandbox_env: dict) -> dict:
    return {k: v for k, v in sandbox_env.items() if k.startswith("MICROSOFT_") and not k.startswith("MICROSOFT_ADS_")}


def _api(client, sandbox, env, creds=None, rotated=None, deadline=None, jobs=None):
    creds = creds or _creds(env)
    auth = F.build_auth(creds, env["MICROSOFT_ADS_TOKEN_URL"], (rotated.append if rotated is not None else None))
    report = ReportPolicy(deadline=deadline) if deadline else None
    return PlatformApi(
        F,
        client,
        base_url=sandbox.url,
        credentials=creds,
        auth=auth,
        budget=RateBudget(60000),
        report=report,
        jobs=jobs,
    )


def _run(coro_fn):
    async def go():
        async with httpx.AsyncClient() as client:
            return await coro_fn(client)

    return asyncio.run(go())


def _range(days: int = 45) -> tuple[dt.date, dt.date]:
    from sandbox.data import today

    end = today() - dt.timedelta(days=40)
    return end - dt.timedelta(days=days - 1), end


async def _fetch_range(api, account_id, start, end):
    info = await F.account_info(api, account_id)
    total, days = Decimal(0), 0
    for s, e in plan_windows(start, end, F.max_days):
        rows = await fetch_window(F, api, info, s, e)
        total += sum(rows.values())
        days += len(rows)
    return info, total, days


@pytest.fixture(scope="module")
def _shared_sandbox():
    """One sandbox for the module: the conftest ``sandbox`` fixture costs 0.5 s a test to stop (the
    server's shutdown poll interval), which would make this file slow."""
    from sandbox.server import SandboxServer

    with SandboxServer(0) as server:
        yield server


@pytest.fixture
def fast_reports(_shared_sandbox):
    _shared_sandbox.ctx.reset()
    _shared_sandbox.ctx.configure({"report_polls_needed": 2})
    return _shared_sandbox


@pytest.fixture
def sandbox_env(fast_reports):
    """The sandbox's endpoint variables and fake credentials (passed explicitly, not via os.environ)."""
    from sandbox.credentials import sandbox_env as make_env

    return make_env(fast_reports.url, ["microsoft"])


def test_sandbox_45_days_eur_exact(fast_reports, sandbox_env):
    sandbox = fast_reports
    start, end = _range(45)
    rotated: list[str] = []
    holder = {}

    async def go(client):
        api = _api(client, sandbox, sandbox_env, rotated=rotated)
        holder["api"] = api
        return await _fetch_range(api, EUR_ACCOUNT, start, end)

    info, total, days = _run(go)
    expected = sandbox.sandbox.expected_total("microsoft", EUR_ACCOUNT, start, end)
    assert info == AccountInfo(EUR_ACCOUNT, "EUR", "Europe/Berlin", f"Demo Microsoft {EUR_ACCOUNT[-4:]}")
    assert str(total) == expected["spend"] and expected["currency"] == "EUR" and days == 45
    submits = [e for e in sandbox.ctx.log if e.get("op") == "SubmitGenerateReport"]
    # no documented range cap: one report for the whole period
    assert [(e["start"], e["end"]) for e in submits] == [(start.isoformat(), end.isoformat())]
    assert {e["report_time_zone"] for e in submits} == {"AmsterdamBerlinBernRomeStockholmVienna"}
    h = submits[0]["headers"]
    assert (h["DeveloperToken"], h["CustomerId"], h["CustomerAccountId"]) == (
        "sandbox-microsoft-devtoken",
        "123456789",
        EUR_ACCOUNT,
    )
    # GetAccount, then the one report (no range cap): a submit, two polls and the download
    assert holder["api"].request_count == 1 + 4
    grants = [e for e in sandbox.ctx.log if e.get("op") == "token"]
    assert len(grants) == 1 and grants[0]["refresh_token"] == "sandbox-microsoft-refresh"
    assert "msads.manage" in grants[0]["scope"] and len(rotated) == 1 and rotated[0].startswith("M.C5")


def test_sdk_polling_waits_are_never_used(fast_reports, sandbox_env, monkeypatch):
    """Polling is ours (core.run_report_job: ADSPEND_REPORT_POLL_SECONDS, deadline, resume), not the
    SDK's track() with its fixed 1 s waits (_PollingBlocker), so tests need no SDK timing patch."""
    from bingads.util import _PollingBlocker

    def refuse(self):
        raise AssertionError("the SDK's own polling wait was used")

    monkeypatch.setattr(_PollingBlocker, "wait", refuse)
    start, end = _range(3)
    info = AccountInfo(USD_ACCOUNT, "USD", "America/New_York")
    rows = _run(lambda c: fetch_window(F, _api(c, fast_reports, sandbox_env), info, start, end))
    assert str(sum(rows.values())) == fast_reports.sandbox.expected_total("microsoft", USD_ACCOUNT, start, end)["spend"]


def test_unknown_account_time_zone_is_refused_before_any_call(fast_reports, sandbox_env):
    info = AccountInfo(USD_ACCOUNT, "USD", "Europe/Vatican")
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.fetch_daily(_api(c, fast_reports, sandbox_env), info, *_range(3)))
    assert e.value.kind == "request" and "Europe/Vatican" in e.value.message
    assert fast_reports.ctx.requests.get("microsoft", 0) == 0


def test_sandbox_no_data_range_is_zeros(fast_reports, sandbox_env):
    from sandbox.data import today

    start = today() + dt.timedelta(days=2)
    end = start + dt.timedelta(days=4)

    async def go(client):
        api = _api(client, fast_reports, sandbox_env)
        info = await F.account_info(api, USD_ACCOUNT)
        return await F.fetch_daily(api, info, start, end), await fetch_window(F, api, info, start, end)

    raw, filled = _run(go)
    assert raw == {} and set(filled.values()) == {Decimal(0)} and len(filled) == 5


def test_sandbox_throttle_then_ok(fast_reports, sandbox_env):
    sandbox = fast_reports
    sandbox.ctx.configure({"faults": [{"platform": "microsoft", "kind": "throttle", "count": 2}]})
    start, end = _range(10)
    _, total, _ = _run(lambda c: _fetch_range(_api(c, sandbox, sandbox_env), USD_ACCOUNT, start, end))
    assert str(total) == sandbox.sandbox.expected_total("microsoft", USD_ACCOUNT, start, end)["spend"]
    assert sandbox.ctx.throttled["microsoft"] == 2


def test_sandbox_expired_token_mid_run_is_refreshed(fast_reports, sandbox_env):
    sandbox = fast_reports
    start, end = _range(45)
    holder = {}

    async def go(client):
        api = _api(client, sandbox, sandbox_env)
        holder["api"] = api
        info = await F.account_info(api, EUR_ACCOUNT)
        sandbox.ctx.configure({"faults": [{"platform": "microsoft", "kind": "expired_token", "count": 1}]})
        total = Decimal(0)
        for s, e in plan_windows(start, end, F.max_days):
            total += sum((await fetch_window(F, api, info, s, e)).values())
        return total

    total = _run(go)
    assert str(total) == sandbox.sandbox.expected_total("microsoft", EUR_ACCOUNT, start, end)["spend"]
    assert sandbox.ctx.token_grants["microsoft"] == 2
    grants = [e["refresh_token"] for e in sandbox.ctx.log if e.get("op") == "token"]
    assert grants[0] == "sandbox-microsoft-refresh" and grants[1].startswith("M.C5")  # the rotated one is used


def test_sandbox_token_refused_after_refresh_is_auth_error(fast_reports, sandbox_env):
    fast_reports.ctx.configure({"faults": [{"platform": "microsoft", "kind": "expired_token", "count": None}]})
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env), USD_ACCOUNT))
    assert e.value.kind == "auth" and "MICROSOFT_REFRESH_TOKEN" in e.value.message
    assert fast_reports.ctx.token_grants["microsoft"] == 2


def test_sandbox_wrong_developer_token_is_auth_error(fast_reports, sandbox_env):
    creds = {**_creds(sandbox_env), "MICROSOFT_DEVELOPER_TOKEN": "not-the-devtoken"}
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env, creds=creds), USD_ACCOUNT))
    assert e.value.kind == "auth" and "105 InvalidCredentials" in e.value.message
    assert "not-the-devtoken" not in e.value.message


def test_sandbox_config_error_inside_the_sdk_call_stays_a_config_error(fast_reports, sandbox_env):
    # raised in the worker thread while the SDK session is built: the shared loop lets a FetchError
    # through as it is (soap_call's own loop read it as an unreadable SOAP reply, kind malformed)
    creds = {**_creds(sandbox_env), "MICROSOFT_CUSTOMER_ID": "cid-123"}
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env, creds=creds), USD_ACCOUNT))
    assert e.value.kind == "config" and "MICROSOFT_CUSTOMER_ID must be the numeric customer id" in e.value.message


def test_sandbox_revoked_refresh_token_is_auth_error(fast_reports, sandbox_env):
    creds = {**_creds(sandbox_env), "MICROSOFT_REFRESH_TOKEN": "revoked-token-1"}
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env, creds=creds), USD_ACCOUNT))
    assert e.value.kind == "auth" and "revoked-token-1" not in str(e.value)


def test_sandbox_permanent_5xx_is_server_error(fast_reports, sandbox_env):
    fast_reports.ctx.configure({"faults": [{"platform": "microsoft", "kind": "5xx", "count": None}]})
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env), USD_ACCOUNT))
    assert e.value.kind == "server" and "HTTP 503" in e.value.message


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_sandbox_malformed_is_never_zero(fast_reports, sandbox_env, skip):
    """The malformed fault on GetAccount (no currency), on the submit, or on a poll (a broken CSV)."""
    sandbox = fast_reports
    start, end = _range(5)

    async def go(client):
        api = _api(client, sandbox, sandbox_env)
        info = AccountInfo(USD_ACCOUNT, "USD", "America/New_York")
        if skip == 0:
            sandbox.ctx.configure({"faults": [{"platform": "microsoft", "kind": "malformed"}]})
            info = await F.account_info(api, USD_ACCOUNT)
        elif skip == 1:
            sandbox.ctx.configure({"faults": [{"platform": "microsoft", "kind": "malformed"}]})
        else:
            sandbox.ctx.configure(
                {
                    "faults": [
                        {"platform": "microsoft", "kind": "throttle", "count": 1},
                        {"platform": "microsoft", "kind": "malformed", "count": 1},
                    ]
                }
            )
        return await fetch_window(F, api, info, start, end)

    with pytest.raises(MalformedResponse) as e:
        _run(go)
    assert e.value.kind == "malformed"


def test_sandbox_truncated_soap_reply_is_malformed(fast_reports, sandbox_env):
    fast_reports.ctx.configure({"faults": [{"platform": "microsoft", "kind": "truncated"}]})
    with pytest.raises(FetchError) as e:
        _run(lambda c: F.account_info(_api(c, fast_reports, sandbox_env), USD_ACCOUNT))
    assert e.value.kind == "malformed"


def test_sandbox_failed_report(fast_reports, sandbox_env):
    fast_reports.ctx.configure({"faults": [{"platform": "microsoft", "kind": "report_failed"}]})
    start, end = _range(5)
    info = AccountInfo(USD_ACCOUNT, "USD", "America/New_York")
    with pytest.raises(FetchError) as e:
        _run(lambda c: fetch_window(F, _api(c, fast_reports, sandbox_env), info, start, end))
    assert e.value.kind == "report_failed" and "status Error" in e.value.message


def test_sandbox_stuck_report_times_out_and_resumes(fast_reports, sandbox_env):
    sandbox = fast_reports
    sandbox.ctx.configure({"faults": [{"platform": "microsoft", "kind": "report_stuck"}]})
    start, end = _range(5)
    info = AccountInfo(USD_ACCOUNT, "USD", "America/New_York")
    jobs = MemoryJobStore()
    with pytest.raises(FetchError) as e:
        _run(lambda c: fetch_window(F, _api(c, sandbox, sandbox_env, deadline=0.2, jobs=jobs), info, start, end))
    assert e.value.kind == "timeout"
    (key,) = jobs._d
    # the next run resumes the stored id; an id the service no longer knows (2100) is submitted again
    jobs.put(key, "39999999999")
    rows = _run(lambda c: fetch_window(F, _api(c, sandbox, sandbox_env, jobs=jobs), info, start, end))
    assert str(sum(rows.values())) == sandbox.sandbox.expected_total("microsoft", USD_ACCOUNT, start, end)["spend"]
    assert len([x for x in sandbox.ctx.log if x.get("op") == "SubmitGenerateReport"]) == 2 and not jobs._d


def test_sandbox_refuses_end_before_start_with_its_message(fast_reports, sandbox_env):
    async def go(client):
        api = _api(client, fast_reports, sandbox_env)
        return await ms.soap_call(
            api, USD_ACCOUNT, "submit", dt.date(2026, 3, 5), dt.date(2026, 3, 1), "EasternTimeUSCanada"
        )

    with pytest.raises(FetchError) as e:
        _run(go)
    assert e.value.kind == "request" and "2011 InvalidCustomDateRangeEnd" in e.value.message


def test_sandbox_rejects_missing_headers_and_wrong_action(fast_reports):
    sandbox = fast_reports
    envelope = (
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:ns1="https://bingads.microsoft.com/Reporting/v13"><SOAP-ENV:Header>'
        "<ns1:AuthenticationToken>x</ns1:AuthenticationToken></SOAP-ENV:Header><SOAP-ENV:Body>"
        "<ns1:PollGenerateReportRequest><ns1:ReportRequestId>1</ns1:ReportRequestId>"
        "</ns1:PollGenerateReportRequest></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    url = sandbox.url + ms.REPORTING_PATH
    r = httpx.post(
        url, content=envelope, headers={"SOAPAction": '"PollGenerateReport"', "Content-Type": "text/xml; charset=utf-8"}
    )
    assert r.status_code == 500 and "<Code>116</Code>" in r.text and "DeveloperToken" in r.text
    r = httpx.post(url, content=envelope, headers={"SOAPAction": '"SubmitGenerateReport"'})
    assert r.status_code == 500 and "does not match" in r.text
    assert httpx.get(url).status_code == 405
    r = httpx.post(
        sandbox.url + "/common/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": "c", "refresh_token": "r"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_sandbox_download_needs_its_signature(fast_reports, sandbox_env):
    start, end = _range(3)
    info = AccountInfo(USD_ACCOUNT, "USD", "America/New_York")
    _run(lambda c: fetch_window(F, _api(c, fast_reports, sandbox_env), info, start, end))
    r = httpx.get(f"{fast_reports.url}/ReportDownloads/{USD_ACCOUNT}/30000000001.zip")
    assert r.status_code == 403 and "AuthenticationFailed" in r.text


def test_report_csv_that_csv_cannot_read_is_malformed_not_a_crash():
    from fetchers.base import MalformedResponse
    from fetchers.microsoft import parse_report_csv

    with pytest.raises(MalformedResponse, match="not valid CSV"):
        parse_report_csv('"Report Name: x"\n"TimePeriod","AccountId"\n2026-10-01,41000001\r0\n', "41000001", "USD")


def test_a_soap_call_is_marked_on_the_wire_when_suds_sends_its_envelope(fast_reports, sandbox_env, monkeypatch):
    """The budget hears that a SOAP call went out from suds's ``sending`` hook, after the envelope
    is marshalled: marked before the call, the mark was early by the serialisation, and at 120 a
    minute a bucket holding half a second has only a 15 ms margin (a rare throttle at the default
    budget)."""
    from suds import WebFault
    from suds.plugin import MessagePlugin
    from suds.transport.http import HttpTransport

    events: list[str] = []
    real_send = HttpTransport.send
    monkeypatch.setattr(HttpTransport, "send", lambda self, request: events.append("send") or real_send(self, request))

    class Spy(MessagePlugin):
        def marshalled(self, context):
            events.append("marshalled")

    pool = ms.SessionPool(_creds(sandbox_env), fast_reports.url, 1)
    session = pool._checkout()
    session.customer._options["plugins"].append(Spy())
    pool._checkin(session)
    with pytest.raises(WebFault, match="Invalid client data"):  # a made-up token: the sandbox's auth fault
        pool.call("get_account", "not-a-token", EUR_ACCOUNT, lambda: events.append("on the wire"))
    assert events == ["marshalled", "on the wire", "send"]
    assert getattr(ms._wire, "mark", None) is None


def test_sdk_clients_are_built_with_the_cyclic_collector_paused_then_frozen(sandbox_env, monkeypatch):
    """Parsing the SDK's WSDLs makes ~100,000 long-lived objects a client; full collections while
    they are made stopped the whole refresh for about a second. Built with the collector paused
    (while any thread builds), then frozen out of later collections; the collector's state before
    is restored."""
    import gc
    import threading

    import bingads.service_client

    seen: list[bool] = []

    class Spy(bingads.service_client.ServiceClient):
        def __init__(self, *args, **kwargs):
            seen.append(gc.isenabled())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bingads.service_client, "ServiceClient", Spy)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        session = ms.SdkSession(_creds(sandbox_env), "http://127.0.0.1:9")
        assert session.reporting is not None and session.customer is not None  # both built now
        assert seen == [False, False] and gc.isenabled()
        assert gc.get_freeze_count() > frozen

        # two builders at once: paused until the last one is done
        first_in, release = threading.Event(), threading.Event()

        def hold():
            with ms._building_sdk_objects():
                first_in.set()
                release.wait(5)

        t = threading.Thread(target=hold)
        t.start()
        first_in.wait(5)
        with ms._building_sdk_objects():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other builder is still at work
        release.set()
        t.join(5)
        assert gc.isenabled()

        gc.disable()  # a process that runs without the collector keeps it off
        with ms._building_sdk_objects():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


class _FakeSession:
    """Stands in for ``SdkSession`` in the pool tests: records what was built; the first build
    waits on ``gate`` and any build raises ``fail`` when set."""

    made: list = []
    gate: threading.Event | None = None
    fail: Exception | None = None

    def __init__(self, credentials, base_url):
        type(self).made.append(self)
        if len(type(self).made) == 1 and type(self).gate is not None:
            assert type(self).gate.wait(10)
        if type(self).fail is not None:
            raise type(self).fail
        self.clients: list[str] = []

    def client_for(self, method):
        self.clients.append(method)

    def prepare(self, token, account_id):
        pass

    def get_account(self):
        return self


@pytest.fixture
def fake_sessions(monkeypatch):
    monkeypatch.setattr(ms, "SdkSession", _FakeSession)
    monkeypatch.setattr(_FakeSession, "made", [])
    monkeypatch.setattr(_FakeSession, "gate", threading.Event())
    return _FakeSession


def _prebuilding(pool, fake_sessions) -> threading.Thread:
    """``pool.prebuild`` started in a thread, returned once its first build has begun (and waits
    on the gate)."""
    builder = threading.Thread(target=pool.prebuild)
    builder.start()
    while not fake_sessions.made:
        time.sleep(0.01)
    return builder


def test_prebuild_makes_every_session_with_both_clients_and_a_call_meanwhile_waits_for_one(fake_sessions):
    """The SDK worker builds its sessions as it starts. A call that comes while the first is being
    built waits for it instead of parsing the WSDLs beside it (which made every call late)."""
    pool = ms.SessionPool({}, "http://127.0.0.1:9", 3)
    builder = _prebuilding(pool, fake_sessions)
    got: list = []
    caller = threading.Thread(target=lambda: got.append(pool.call("get_account", "token", "1", lambda: None)))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive() and len(fake_sessions.made) == 1  # waiting, not building its own
    fake_sessions.gate.set()
    builder.join(10)
    caller.join(10)
    assert len(fake_sessions.made) == 3 and len(got) == 1 and got[0] in fake_sessions.made
    # each prebuilt session has both clients; the call then asked its session for the one it uses
    assert sorted(s.clients for s in fake_sessions.made) == [
        ["get_account", "submit"],
        ["get_account", "submit"],
        ["get_account", "submit", "get_account"],
    ]
    assert pool._made == 3 and len(pool._idle) == 3


def test_a_prebuild_that_fails_gives_its_slots_back_and_a_waiting_call_meets_the_error(fake_sessions, monkeypatch):
    monkeypatch.setattr(_FakeSession, "fail", FetchError("auth", "MICROSOFT_DEVELOPER_TOKEN is not set"))
    pool = ms.SessionPool({}, "http://127.0.0.1:9", 2)
    builder = _prebuilding(pool, fake_sessions)
    errors: list = []

    def call():
        try:
            pool.call("get_account", "token", "1", lambda: None)
        except FetchError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    fake_sessions.gate.set()
    builder.join(10)
    caller.join(10)
    assert not caller.is_alive()  # woken, built its own, and failed as the build did
    assert [e.kind for e in errors] == ["auth"]
    assert pool._made == 0 and pool._idle == []
