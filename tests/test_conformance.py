"""Conformance: the platforms' own Python clients drive the sandbox, and get exact totals.

The sandbox is written from the platforms' documentation; the product's fetchers are written from
the same documentation. Had both misread it the same way, the fetchers' tests could not tell. So
here the platforms' own clients (test-only dependencies, pinned in requirements.txt) talk to the
sandbox on 127.0.0.1, unmodified, each pointed at it through its public configuration:

- Meta: ``facebook-business`` (``AdAccount.get_insights``, cursor paging through ``paging.next``;
  ``AdAccount.api_get`` with the insights edge expanded);
- TikTok: ``tiktok-business-api-sdk`` (``ReportingApi.report_integrated_get``; installs and imports
  on Python 3.11 as ``business_api_client``);
- Amazon: ``python-amazon-ad-api`` (``Reports`` v3: create, poll, download);
- Microsoft: ``bingads`` (``ReportingServiceManager.download_report`` with the suds ``location``
  option, as Microsoft's section C of the platform notes describes);
- Pinterest: ``pinterest-api-sdk`` (its OAuth refresh, then the generated ``AdAccountsApi.ad_account_analytics``);
- LinkedIn: ``linkedin-api-client`` (``RestliClient.finder`` on ``/adAnalytics``, finder ``analytics``);
- Vault: ``hvac`` against the KV v2 stand-in (``tests/vault_standin.py``).

No official Python client exists for the others, so they are not here: Snapchat (no Python SDK
for the Marketing API; its docs show plain HTTP), Reddit (Ads API v3 has no official client;
plain HTTP with a descriptive User-Agent), and Google Ads (``google-ads`` speaks gRPC only, while the
sandbox serves the REST/JSON transport of the same API, ``googleAds:searchStream``).

Each test asserts the exact total the sandbox's deterministic data gives (``/_sandbox/totals``),
and what the platform answers a made-up token, a wrong Google developer token or a wrong client
secret. Dates are relative to the sandbox's today, so the tests pass on any date.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from sandbox.credentials import FAKE_CREDENTIALS


def _totals(sandbox, platform: str, account: str, start: dt.date, end: dt.date) -> dict:
    r = httpx.get(
        f"{sandbox.url}/_sandbox/totals",
        params={"platform": platform, "account": account, "start": start.isoformat(), "end": end.isoformat()},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _days_back(first: int, last: int) -> tuple[dt.date, dt.date]:
    from sandbox.data import today

    return today() - dt.timedelta(days=first), today() - dt.timedelta(days=last)


def _zero_days(body: dict) -> int:
    return sum(1 for v in body["days"].values() if Decimal(v) == 0)


# --- Meta: facebook-business ---------------------------------------------------------------------


def _meta_api(sandbox, token: str):
    from facebook_business.api import FacebookAdsApi

    api = FacebookAdsApi(
        __import__("facebook_business.session", fromlist=["FacebookSession"]).FacebookSession(access_token=token),
        api_version="v25.0",
    )
    api._session.GRAPH = sandbox.url  # the SDK's Graph host (FacebookSession.GRAPH)
    return api


def test_facebook_business_insights_with_cursor_paging(sandbox):
    from facebook_business.adobjects.adaccount import AdAccount

    account = "1234567890"
    start, end = _days_back(70, 1)
    api = _meta_api(sandbox, FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"])
    cursor = AdAccount(f"act_{account}", api=api).get_insights(
        fields=["spend", "date_start", "date_stop"],
        params={
            "level": "account",
            "time_increment": 1,
            "limit": 25,
            "time_range": {"since": start.isoformat(), "until": end.isoformat()},
        },
    )
    rows = list(cursor)  # the SDK follows paging.next: three pages here
    expected = _totals(sandbox, "meta", account, start, end)
    assert sandbox.ctx.requests["meta"] == 3
    assert len(rows) == 70 - _zero_days(expected)  # days without delivery have no row
    assert str(sum(Decimal(r["spend"]) for r in rows)) == expected["spend"]
    assert {r["date_start"]: r["spend"] for r in rows} == {d: v for d, v in expected["days"].items() if Decimal(v)}


def test_facebook_business_account_node_with_insights_expanded(sandbox):
    """Graph's field expansion, as the product's first Meta fetch sends it: the account node's
    currency and time zone with the first page of its insights edge; the SDK then pages the edge
    on from that page's cursor."""
    from facebook_business.adobjects.adaccount import AdAccount

    account = "1234567978"
    start, end = _days_back(60, 1)
    api = _meta_api(sandbox, FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"])
    time_range = json.dumps({"since": start.isoformat(), "until": end.isoformat()}, separators=(",", ":"))
    expansion = (
        f"insights.level(account).time_range({time_range}).time_increment(1).limit(25)"
        "{account_currency,spend,date_start,date_stop}"
    )
    with pytest.warns(UserWarning, match="does not allow field insights"):  # the SDK's field list is flat
        node = AdAccount(f"act_{account}", api=api).api_get(fields=["currency", "timezone_name", expansion])
    assert (node["currency"], node["timezone_name"]) == ("EUR", "Europe/Berlin")
    first = node["insights"]
    rows = list(first["data"])
    rows += list(
        AdAccount(f"act_{account}", api=api).get_insights(
            fields=["account_currency", "spend", "date_start", "date_stop"],
            params={
                "level": "account",
                "time_increment": 1,
                "limit": 25,
                "time_range": {"since": start.isoformat(), "until": end.isoformat()},
                "after": first["paging"]["cursors"]["after"],
            },
        )
    )
    expected = _totals(sandbox, "meta", account, start, end)
    assert len(first["data"]) == 25 and len(rows) == 60 - _zero_days(expected)
    assert {r["account_currency"] for r in rows} == {"EUR"}
    assert str(sum(Decimal(r["spend"]) for r in rows)) == expected["spend"]
    assert {r["date_start"]: r["spend"] for r in rows} == {d: v for d, v in expected["days"].items() if Decimal(v)}


def test_facebook_business_made_up_token_is_oauth_exception_190(sandbox):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.exceptions import FacebookRequestError

    with pytest.raises(FacebookRequestError) as err:
        list(
            AdAccount("act_1234567890", api=_meta_api(sandbox, "EAAmadeup")).get_insights(
                fields=["spend"], params={"time_increment": 1}
            )
        )
    assert (err.value.http_status(), err.value.api_error_code(), err.value.api_error_type()) == (
        400,
        190,
        "OAuthException",
    )


def test_facebook_business_unknown_path_is_a_graph_error(sandbox):
    """A 404 in Graph's own error shape: the SDK raises its error instead of crashing on the body."""
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.exceptions import FacebookRequestError

    with pytest.raises(FacebookRequestError) as err:
        list(
            AdAccount(
                "act_1234567890", api=_meta_api(sandbox, FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"])
            ).get_campaigns(fields=["name"])
        )
    assert err.value.http_status() == 400 and err.value.api_error_code() == 100
    assert err.value.api_error_message().startswith("sandbox:")


# --- TikTok: tiktok-business-api-sdk -------------------------------------------------------------


def _tiktok_reporting(sandbox):
    from business_api_client.api.reporting_api import ReportingApi
    from business_api_client.api_client import ApiClient
    from business_api_client.configuration import Configuration

    conf = Configuration()
    conf.host = sandbox.url
    return ReportingApi(ApiClient(conf))


def test_tiktok_sdk_report_integrated_get_pages_to_the_exact_total(sandbox):
    advertiser = "7000000000001"
    start, end = _days_back(40, 11)  # 30 days: TikTok's span for daily rows
    api = _tiktok_reporting(sandbox)
    rows, page = [], 1
    while True:
        body = api.report_integrated_get(
            advertiser,
            "BASIC",
            ["advertiser_id", "stat_time_day"],
            FAKE_CREDENTIALS["tiktok"]["TIKTOK_ACCESS_TOKEN"],
            data_level="AUCTION_ADVERTISER",
            metrics=["spend"],
            start_date=start.isoformat(),
            end_date=end.isoformat(),
            page=page,
            page_size=10,
        )
        rows += body["data"]["list"]
        if page >= body["data"]["page_info"]["total_page"]:
            break
        page += 1
    expected = _totals(sandbox, "tiktok", advertiser, start, end)
    assert page == -(-(30 - _zero_days(expected)) // 10)
    assert str(sum(Decimal(r["metrics"]["spend"]) for r in rows)) == expected["spend"]


def test_tiktok_sdk_made_up_token_is_40105_in_a_200(sandbox):
    """The SDK reads the code in the 200 body and raises its own error with it."""
    from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

    with pytest.raises(
        TiktokSDKError,
        match=r"^Error Code: 40105, message: Access token is incorrect or has been "
        r"revoked\., request_id: \d+$",
    ):
        _tiktok_reporting(sandbox).report_integrated_get(
            "7000000000001",
            "BASIC",
            ["advertiser_id", "stat_time_day"],
            "made-up-token",
            data_level="AUCTION_ADVERTISER",
            metrics=["spend"],
            start_date="2026-01-01",
            end_date="2026-01-02",
        )


# --- Amazon: python-amazon-ad-api ----------------------------------------------------------------

CREATE_TYPE = "application/vnd.createasyncreportrequest.v3+json"


def _amazon_reports(sandbox, *, secret: str | None = None, vendor_type: bool = True, profile: str):
    """``ad_api``'s v3 ``Reports`` client at the sandbox. Amazon's docs (A.11) require the vendor
    Content-Type on create; the client sends ``application/json`` on every call, so the documented
    type is set through the client's ``headers`` (a subclass), the one thing changed."""
    from ad_api.api.reports import Reports
    from ad_api.auth import access_token_client

    access_token_client.cache.clear()  # the client caches tokens process-wide by refresh token
    creds = FAKE_CREDENTIALS["amazon"]
    credentials = {
        "refresh_token": creds["AMAZON_REFRESH_TOKEN"],
        "client_id": creds["AMAZON_CLIENT_ID"],
        "client_secret": secret or creds["AMAZON_CLIENT_SECRET"],
        "profile_id": profile,
    }

    class DocumentedReports(Reports):
        @property
        def headers(self):
            h = super().headers
            return {**h, "Content-Type": CREATE_TYPE} if vendor_type else h

    client = DocumentedReports(credentials=credentials)
    host = sandbox.url.split("://", 1)[1]
    client.endpoint = sandbox.url
    client._auth.scheme, client._auth.host = "http://", host
    return client


def _amazon_body(start: dt.date, end: dt.date) -> dict:
    return {
        "name": "conformance",
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "reportTypeId": "spCampaigns",
            "groupBy": ["campaign"],
            "columns": ["date", "campaignId", "cost"],
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }


def test_amazon_ad_api_report_create_poll_download(sandbox):
    profile = "3312456789012340"  # a profile running Sponsored Products only
    start, end = _days_back(20, 2)
    client = _amazon_reports(sandbox, profile=profile)
    created = client.post_report(body=json.dumps(_amazon_body(start, end))).payload
    report_id = created["reportId"]
    for _ in range(sandbox.ctx.report_polls_needed):
        status = client.get_report(reportId=report_id).payload
    assert status["status"] == "COMPLETED" and status["url"]
    rows = client.download_report(url=status["url"], format="data").payload  # gunzipped, parsed
    expected = _totals(sandbox, "amazon", profile, start, end)
    assert str(sum((Decimal(str(r["cost"])) for r in rows), Decimal(0))) == expected["spend"]
    assert {r["date"] for r in rows} == {d for d, v in expected["days"].items() if Decimal(v)}


def test_amazon_ad_api_application_json_on_create_is_refused_as_the_docs_say(sandbox):
    from ad_api.base import exceptions

    client = _amazon_reports(sandbox, profile="3312456789012341", vendor_type=False)
    with pytest.raises(exceptions.AdvertisingApiException) as err:
        client.post_report(body=json.dumps(_amazon_body(*_days_back(5, 2))))
    assert err.value.code == 415
    assert err.value.error == {"code": "415", "detail": f"Content-Type must be {CREATE_TYPE}; got application/json"}


def test_amazon_ad_api_wrong_secret_and_foreign_profile_are_refused(sandbox):
    from ad_api.auth.exceptions import AuthorizationError
    from ad_api.base import exceptions

    with pytest.raises(AuthorizationError) as err:
        _amazon_reports(sandbox, profile="3312456789012341", secret="amzn1.oa2-cs.v1.wrong").get_report(reportId="x")
    assert (err.value.status_code, err.value.error_code, err.value.message) == (
        401,
        "invalid_client",
        "Client authentication failed",
    )
    with pytest.raises(exceptions.AdvertisingApiUnauthorizedException) as err:
        _amazon_reports(sandbox, profile="1234").get_report(reportId="x")
    assert err.value.error == {"code": "UNAUTHORIZED", "details": "Not authorized to access scope 1234"}


# --- Microsoft: bingads ---------------------------------------------------------------------------


def _bingads_auth(sandbox, monkeypatch, secret: str | None = None):
    """``OAuthWebAuthCodeGrant`` refreshing at the sandbox (the SDK has no public option for the
    token URL: its table of token URLs is pointed at the sandbox, as the platform notes (C) do)."""
    from bingads import authorization
    from bingads.authorization import OAuthWebAuthCodeGrant

    table = authorization._UriOAuthService.AUTH_TOKEN_URI
    for key in list(table):
        monkeypatch.setitem(table, key, sandbox.url + "/common/oauth2/v2.0/token")
    creds = FAKE_CREDENTIALS["microsoft"]
    auth = OAuthWebAuthCodeGrant(
        creds["MICROSOFT_CLIENT_ID"], secret or creds["MICROSOFT_CLIENT_SECRET"], "http://localhost/callback"
    )
    auth.request_oauth_tokens_by_refresh_token(creds["MICROSOFT_REFRESH_TOKEN"])
    return auth


def _bingads_request(manager, account: int, start: dt.date, end: dt.date):
    f = manager.service_client.factory
    req = f.create("AccountPerformanceReportRequest")
    req.Format, req.ReportName, req.ReturnOnlyCompleteData, req.Aggregation = "Csv", "Daily spend", False, "Daily"
    req.ExcludeReportHeader = req.ExcludeReportFooter = req.ExcludeColumnHeaders = False
    req.Filter = None
    scope = f.create("AccountReportScope")
    scope.AccountIds = {"long": [account]}
    req.Scope = scope
    t = f.create("ReportTime")
    s, e = f.create("Date"), f.create("Date")
    s.Day, s.Month, s.Year = start.day, start.month, start.year
    e.Day, e.Month, e.Year = end.day, end.month, end.year
    t.CustomDateRangeStart, t.CustomDateRangeEnd, t.PredefinedTime = s, e, None
    t.ReportTimeZone = "PacificTimeUSCanadaTijuana"
    req.Time = t
    cols = f.create("ArrayOfAccountPerformanceReportColumn")
    cols.AccountPerformanceReportColumn.append(["TimePeriod", "AccountId", "CurrencyCode", "Spend"])
    req.Columns = cols
    return req


def test_bingads_reporting_service_manager_download(sandbox, monkeypatch, tmp_path):
    from bingads.authorization import AuthorizationData
    from bingads.util import _PollingBlocker
    from bingads.v13.reporting import ReportingDownloadParameters, ReportingServiceManager

    monkeypatch.setattr(_PollingBlocker, "INITIAL_STATUS_CHECK_INTERVAL_IN_MS", 20)
    creds = FAKE_CREDENTIALS["microsoft"]
    account = 41000001
    start, end = _days_back(40, 2)
    data = AuthorizationData(
        account_id=account,
        customer_id=int(creds["MICROSOFT_CUSTOMER_ID"]),
        developer_token=creds["MICROSOFT_DEVELOPER_TOKEN"],
        authentication=_bingads_auth(sandbox, monkeypatch),
    )
    manager = ReportingServiceManager(
        data,
        poll_interval_in_milliseconds=20,
        environment="production",
        location=sandbox.url + "/Api/Advertiser/Reporting/v13/ReportingService.svc",
    )
    container = manager.download_report(
        ReportingDownloadParameters(
            report_request=_bingads_request(manager, account, start, end),
            result_file_directory=str(tmp_path),
            result_file_name="spend.csv",
            overwrite_result_file=True,
            timeout_in_milliseconds=20_000,
        )
    )
    try:
        spend = {r.value("TimePeriod"): Decimal(r.value("Spend").replace(",", "")) for r in container.report_records}
    finally:
        container.close()
    expected = _totals(sandbox, "microsoft", str(account), start, end)
    assert str(sum(spend.values())) == expected["spend"]
    assert sandbox.ctx.token_grants["microsoft"] == 1


def test_bingads_wrong_client_secret_is_aadsts7000215(sandbox, monkeypatch):
    from bingads.exceptions import OAuthTokenRequestException

    with pytest.raises(OAuthTokenRequestException) as err:
        _bingads_auth(sandbox, monkeypatch, secret="not-the-secret")
    assert err.value.error_code == "invalid_client"
    assert err.value.error_description.startswith("AADSTS7000215: Invalid client secret provided.")


def test_bingads_made_up_token_is_fault_105(sandbox):
    from bingads.authorization import AuthorizationData, OAuthDesktopMobileImplicitGrant, OAuthTokens
    from bingads.service_client import ServiceClient
    from suds import WebFault

    creds = FAKE_CREDENTIALS["microsoft"]
    auth = OAuthDesktopMobileImplicitGrant(creds["MICROSOFT_CLIENT_ID"], oauth_tokens=OAuthTokens("made-up"))
    data = AuthorizationData(
        account_id=41000001,
        customer_id=int(creds["MICROSOFT_CUSTOMER_ID"]),
        developer_token=creds["MICROSOFT_DEVELOPER_TOKEN"],
        authentication=auth,
    )
    client = ServiceClient(
        "CustomerManagementService",
        13,
        data,
        "production",
        location=sandbox.url + "/Api/CustomerManagement/v13/CustomerManagementService.svc",
    )
    with pytest.raises(WebFault) as err:
        client.GetAccount(AccountId=41000001)
    error = err.value.fault.detail.AdApiFaultDetail.Errors.AdApiError
    assert (str(error.Code), str(error.ErrorCode)) == ("105", "InvalidCredentials")


# --- Pinterest: pinterest-api-sdk ----------------------------------------------------------------


def test_pinterest_sdk_refresh_then_analytics(sandbox):
    from openapi_generated.pinterest_client.api.ad_accounts_api import AdAccountsApi
    from pinterest.client import PinterestSDKClient
    from pinterest.utils.refresh_access_token import get_new_access_token

    creds = FAKE_CREDENTIALS["pinterest"]
    token = get_new_access_token(
        app_id=creds["PINTEREST_APP_ID"],
        app_secret=creds["PINTEREST_APP_SECRET"],
        refresh_access_token=creds["PINTEREST_REFRESH_TOKEN"],
        host=sandbox.url + "/v5",
    )
    client = PinterestSDKClient(access_token=token)
    client.configuration.host = sandbox.url + "/v5"
    account = "549000000001"
    start, end = _days_back(60, 1)
    rows = AdAccountsApi(client).ad_account_analytics(account, start, end, ["SPEND_IN_MICRO_DOLLAR"], "DAY").value
    expected = _totals(sandbox, "pinterest", account, start, end)
    # a paused day comes back as a row without the column ("columns with no value may be left out")
    micros = {r["DATE"].isoformat(): int(r["SPEND_IN_MICRO_DOLLAR"]) for r in rows if "SPEND_IN_MICRO_DOLLAR" in r}
    bare = {r["DATE"].isoformat() for r in rows if "SPEND_IN_MICRO_DOLLAR" not in r}
    assert str(Decimal(sum(micros.values())).scaleb(-6)) == expected["spend"]
    assert set(micros) == {d for d, v in expected["days"].items() if Decimal(v)}
    assert bare and bare == {d for d, v in expected["days"].items() if not Decimal(v)}


def test_pinterest_sdk_wrong_app_secret_and_made_up_token(sandbox):
    from openapi_generated.pinterest_client.api.ad_accounts_api import AdAccountsApi
    from openapi_generated.pinterest_client.exceptions import UnauthorizedException
    from pinterest.client import PinterestSDKClient
    from pinterest.utils.refresh_access_token import get_new_access_token
    from pinterest.utils.sdk_exceptions import SdkException

    creds = FAKE_CREDENTIALS["pinterest"]
    with pytest.raises(SdkException) as err:
        get_new_access_token(
            app_id=creds["PINTEREST_APP_ID"],
            app_secret="not-the-secret",
            refresh_access_token=creds["PINTEREST_REFRESH_TOKEN"],
            host=sandbox.url + "/v5",
        )
    assert err.value.status == 401 and json.loads(err.value.body) == {  # http_resp set: the raw body
        "code": 2,
        "message": "Authentication failed. Invalid app id or app secret.",
    }
    client = PinterestSDKClient(access_token="pina_made-up")
    client.configuration.host = sandbox.url + "/v5"
    with pytest.raises(UnauthorizedException) as err:
        AdAccountsApi(client).ad_accounts_get("549000000001")
    assert err.value.status == 401 and json.loads(err.value.body) == {"code": 2, "message": "Authentication failed."}


# --- LinkedIn: linkedin-api-client ---------------------------------------------------------------


def _linkedin(sandbox, monkeypatch):
    from linkedin_api.clients.restli.client import RestliClient
    from linkedin_api.common import constants

    monkeypatch.setattr(constants, "VERSIONED_BASE_URL", sandbox.url + "/rest")
    return RestliClient()


def test_linkedin_api_client_finder_ad_analytics(sandbox, monkeypatch):
    """The client encodes Rest.li objects with their keys sorted: ``dateRange=(end:(day:..,month:..,
    year:..),start:(...))``. The real API reads any key order, so must the sandbox."""
    from sandbox.linkedin import active_versions

    start, end = _days_back(30, 1)
    bound = lambda d: {"year": d.year, "month": d.month, "day": d.day}  # noqa: E731
    response = _linkedin(sandbox, monkeypatch).finder(
        resource_path="/adAnalytics",
        finder_name="analytics",
        access_token=FAKE_CREDENTIALS["linkedin"]["LINKEDIN_ACCESS_TOKEN"],
        query_params={
            "pivot": "ACCOUNT",
            "timeGranularity": "DAILY",
            "dateRange": {"start": bound(start), "end": bound(end)},
            "accounts": ["urn:li:sponsoredAccount:500001"],
            "fields": "costInLocalCurrency,dateRange,pivotValues",
        },
        version_string=max(active_versions()),
    )
    assert response.status_code == 200, response.response.text
    expected = _totals(sandbox, "linkedin", "500001", start, end)
    assert str(sum(Decimal(e["costInLocalCurrency"]) for e in response.elements)) == expected["spend"]
    assert len(response.elements) == 30 - _zero_days(expected)


def test_linkedin_api_client_made_up_token_is_65600(sandbox, monkeypatch):
    from sandbox.linkedin import active_versions

    response = _linkedin(sandbox, monkeypatch).finder(
        resource_path="/adAnalytics",
        finder_name="analytics",
        access_token="AQmadeup",
        query_params={"pivot": "ACCOUNT"},
        version_string=max(active_versions()),
    )
    assert (response.status_code, response.response.json()) == (
        401,
        {"status": 401, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token", "serviceErrorCode": 65600},
    )


# --- Google (no Python client for the REST transport): developer token and client secret --------


def _google_token(sandbox, secret: str | None = None) -> httpx.Response:
    creds = FAKE_CREDENTIALS["google"]
    return httpx.post(
        sandbox.url + "/token",
        data={
            "grant_type": "refresh_token",
            "client_id": creds["GOOGLE_ADS_CLIENT_ID"],
            "client_secret": secret or creds["GOOGLE_ADS_CLIENT_SECRET"],
            "refresh_token": creds["GOOGLE_ADS_REFRESH_TOKEN"],
        },
    )


def test_google_wrong_developer_token_made_up_token_and_wrong_secret(sandbox):
    wrong_secret = _google_token(sandbox, "not-the-secret")
    assert (wrong_secret.status_code, wrong_secret.json()) == (
        401,
        {"error": "invalid_client", "error_description": "The OAuth client was not found."},
    )
    token = _google_token(sandbox).json()["access_token"]
    url = f"{sandbox.url}/v26/customers/1234567890/googleAds:searchStream"
    query = {"query": "SELECT customer.id FROM customer"}

    def call(access: str, devtoken: str) -> httpx.Response:
        return httpx.post(url, json=query, headers={"Authorization": f"Bearer {access}", "developer-token": devtoken})

    ok = call(token, FAKE_CREDENTIALS["google"]["GOOGLE_ADS_DEVELOPER_TOKEN"])
    assert ok.status_code == 200 and ok.json()[0]["results"][0]["customer"]["id"] == "1234567890"
    wrong_dev = call(token, "not-the-developer-token").json()["error"]
    assert (wrong_dev["code"], wrong_dev["status"]) == (401, "UNAUTHENTICATED")
    assert wrong_dev["details"][0]["errors"][0]["errorCode"] == {"authenticationError": "DEVELOPER_TOKEN_INVALID"}
    made_up = call("ya29.made-up", FAKE_CREDENTIALS["google"]["GOOGLE_ADS_DEVELOPER_TOKEN"]).json()["error"]
    assert (made_up["code"], made_up["status"]) == (401, "UNAUTHENTICATED")
    assert made_up["details"][0]["errors"][0]["errorCode"] == {"authenticationError": "OAUTH_TOKEN_INVALID"}


# --- Vault: hvac against the stand-in -------------------------------------------------------------


def test_hvac_reads_what_the_stand_in_holds_and_its_credentials_fetch_exact_totals(sandbox):
    """hvac writes the demo's Meta credentials to KV v2 and reads them back; the token read from
    Vault fetches the exact total (facebook-business); a wrong Vault token is ``Forbidden``."""
    import hvac
    import hvac.exceptions
    from facebook_business.adobjects.adaccount import AdAccount
    from vault_standin import VaultStandIn

    vault = VaultStandIn(token="s.conformance").start()
    try:
        client = hvac.Client(url=vault.url, token="s.conformance")
        token = FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"]
        written = client.secrets.kv.v2.create_or_update_secret(
            path="adspend/meta", secret={"META_ACCESS_TOKEN": token}, cas=0, mount_point="secret"
        )
        assert written["data"]["version"] == 1
        read = client.secrets.kv.v2.read_secret_version(
            path="adspend/meta", mount_point="secret", raise_on_deleted_version=True
        )
        assert read["data"]["data"] == {"META_ACCESS_TOKEN": token} and read["data"]["metadata"]["version"] == 1
        with pytest.raises(hvac.exceptions.InvalidRequest):  # a stale check-and-set
            client.secrets.kv.v2.create_or_update_secret(path="adspend/meta", secret={}, cas=0, mount_point="secret")
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac.Client(url=vault.url, token="s.wrong").secrets.kv.v2.read_secret_version(
                path="adspend/meta", mount_point="secret", raise_on_deleted_version=True
            )
    finally:
        vault.stop()
    start, end = _days_back(10, 1)
    rows = list(
        AdAccount("act_1000000001", api=_meta_api(sandbox, read["data"]["data"]["META_ACCESS_TOKEN"])).get_insights(
            fields=["spend", "date_start"],
            params={"time_increment": 1, "time_range": {"since": start.isoformat(), "until": end.isoformat()}},
        )
    )
    assert str(sum(Decimal(r["spend"]) for r in rows)) == _totals(sandbox, "meta", "1000000001", start, end)["spend"]


# --- token endpoints without a Python client here: the client id and secret are checked -----------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


UA = {"User-Agent": "python:adspend-conformance:1.0 (by /u/adspend)"}
TOKEN_CASES = {
    # platform: (path, how the client authenticates, the refusal a wrong secret gets)
    "linkedin": (
        "/oauth/v2/accessToken",
        "form",
        401,
        {"error": "invalid_client", "error_description": "Client authentication failed"},
    ),
    "snapchat": (
        "/login/oauth2/access_token",
        "form",
        401,
        {"error": "invalid_client", "error_description": "Invalid client credentials"},
    ),
    "reddit": ("/api/v1/access_token", "basic", 401, {"message": "Unauthorized", "error": 401}),
    "microsoft": ("/common/oauth2/v2.0/token", "form", 401, None),
}


@pytest.mark.parametrize("platform", sorted(TOKEN_CASES))
def test_token_endpoint_refuses_a_wrong_client_secret_and_accepts_the_demo_one(sandbox, platform):
    path, how, status, body = TOKEN_CASES[platform]
    creds = {k.split("_", 1)[1]: v for k, v in FAKE_CREDENTIALS[platform].items()}  # CLIENT_ID, ...
    client_id, secret, refresh = creds["CLIENT_ID"], creds["CLIENT_SECRET"], creds["REFRESH_TOKEN"]

    def grant(secret_sent: str) -> httpx.Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "scope": "https://ads.microsoft.com/msads.manage",
        }
        headers = dict(UA)
        if how == "basic":
            headers["Authorization"] = _basic(client_id, secret_sent)
        else:
            form.update(client_id=client_id, client_secret=secret_sent)
        return httpx.post(sandbox.url + path, data=form, headers=headers)

    wrong = grant("not-the-secret")
    assert wrong.status_code == status
    if body is not None:
        assert wrong.json() == body
    else:
        assert wrong.json()["error"] == "invalid_client" and wrong.json()["error_description"].startswith(
            "AADSTS7000215"
        )
    ok = grant(secret)
    assert ok.status_code == 200 and ok.json()["access_token"].startswith(f"sbx-{platform}-at-")
    assert sandbox.ctx.token_grants[platform] == 1


def test_reddit_made_up_token_and_made_up_refresh_token(sandbox):
    creds = FAKE_CREDENTIALS["reddit"]
    r = httpx.get(f"{sandbox.url}/api/v3/ad_accounts/a2_conf0001", headers={**UA, "Authorization": "Bearer made-up"})
    assert (r.status_code, r.json()) == (
        401,
        {"success": False, "error": {"reason": "UNAUTHORIZED", "explanation": "invalid access token"}},
    )
    made_up = httpx.post(
        f"{sandbox.url}/api/v1/access_token",
        data={"grant_type": "refresh_token", "refresh_token": "made-up"},
        headers={**UA, "Authorization": _basic(creds["REDDIT_CLIENT_ID"], creds["REDDIT_CLIENT_SECRET"])},
    )
    assert (made_up.status_code, made_up.json()) == (400, {"error": "invalid_grant"})


def test_microsoft_token_endpoint_without_a_secret_is_aadsts7000218(sandbox):
    creds = FAKE_CREDENTIALS["microsoft"]
    r = httpx.post(
        f"{sandbox.url}/common/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": creds["MICROSOFT_CLIENT_ID"],
            "refresh_token": creds["MICROSOFT_REFRESH_TOKEN"],
            "scope": "https://ads.microsoft.com/msads.manage",
        },
    )
    assert r.status_code == 401 and r.json()["error_description"].startswith("AADSTS7000218")


@pytest.mark.parametrize(
    "path, method, check",
    [
        (
            "/v25.0/act_1/campaigns",
            "GET",
            lambda b: b["error"]["code"] == 100 and b["error"]["type"] == "OAuthException",
        ),
        ("/v26/customers/1234567890/googleAds:mutate", "POST", lambda b: b["error"]["status"] == "NOT_FOUND"),
        ("/open_api/v1.3/campaign/get/", "GET", lambda b: b["code"] == 40400 and b["data"] == {}),
        ("/rest/adCampaigns", "GET", lambda b: b["status"] == 404 and b["code"] == "NOT_FOUND"),
        ("/v2/sp/campaigns", "GET", lambda b: b["code"] == "NOT_FOUND"),
        ("/v1/adaccounts/x/campaigns", "GET", lambda b: b["request_status"] == "ERROR"),
        ("/v5/boards", "GET", lambda b: b["code"] == 404),
        ("/api/v3/me", "GET", lambda b: b["error"]["code"] == 404),
        ("/v5/ad_accounts/549000000001/analytics", "POST", lambda b: b["code"] == 405),
    ],
)
def test_unknown_paths_and_methods_answer_in_the_platforms_own_format(sandbox, path, method, check):
    r = httpx.request(method, sandbox.url + path)
    assert r.status_code in (400, 404, 405)
    body = r.json()
    assert check(body), body
    assert "sandbox: " in r.text
