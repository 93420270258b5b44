"""Conformance: the platforms' own Python clients drive the sandbox, and get exact totals.

The sandbox is written from the platforms' documentation; the product's fetchers are written from
the same documentation. Had both misread it the same way, the fetchers' tests could not tell. So
here the platforms' own clients (test-only dependencies, pinned in requirements.txt) talk to the
sandbox on 127.0.0.1, unmodified, each pointed at it through its public configuration:

- Meta: ``facebook-business`` (``AdAccount.get_insights``, cursor paging through ``paging.next``);
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
    r = httpx.get(f"{sandbox.url}/_sandbox/totals", params={"platform": platform, "account": account,
                                                            "start": start.isoformat(), "end": end.isoformat()})
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
    api = FacebookAdsApi(__import__("facebook_business.session", fromlist=["FacebookSession"])
                         .FacebookSession(access_token=token), api_version="v25.0")
    api._session.GRAPH = sandbox.url          # the SDK's Graph host (FacebookSession.GRAPH)
    return api


def test_facebook_business_insights_with_cursor_paging(sandbox):
    from facebook_business.adobjects.adaccount import AdAccount
    account = "1234567890"
    start, end = _days_back(70, 1)
    api = _meta_api(sandbox, FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"])
    cursor = AdAccount(f"act_{account}", api=api).get_insights(
        fields=["spend", "date_start", "date_stop"],
        params={"level": "account", "time_increment": 1, "limit": 25,
                "time_range": {"since": start.isoformat(), "until": end.isoformat()}})
    rows = list(cursor)                       # the SDK follows paging.next: three pages here
    expected = _totals(sandbox, "meta", account, start, end)
    assert sandbox.ctx.requests["meta"] == 3
    assert len(rows) == 70 - _zero_days(expected)           # days without delivery have no row
    assert str(sum(Decimal(r["spend"]) for r in rows)) == expected["spend"]
    assert {r["date_start"]: r["spend"] for r in rows} == {d: v for d, v in expected["days"].items() if Decimal(v)}


def test_facebook_business_made_up_token_is_oauth_exception_190(sandbox):
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.exceptions import FacebookRequestError
    with pytest.raises(FacebookRequestError) as err:
        list(AdAccount("act_1234567890", api=_meta_api(sandbox, "EAAmadeup")).get_insights(
            fields=["spend"], params={"time_increment": 1}))
    assert (err.value.http_status(), err.value.api_error_code(), err.value.api_error_type()) == (
        400, 190, "OAuthException")


def test_facebook_business_unknown_path_is_a_graph_error(sandbox):
    """A 404 in Graph's own error shape: the SDK raises its error instead of crashing on the body."""
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.exceptions import FacebookRequestError
    with pytest.raises(FacebookRequestError) as err:
        list(AdAccount("act_1234567890", api=_meta_api(sandbox, FAKE_CREDENTIALS["meta"]["META_ACCESS_TOKEN"]))
             .get_campaigns(fields=["name"]))
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
    start, end = _days_back(40, 11)                          # 30 days: TikTok's span for daily rows
    api = _tiktok_reporting(sandbox)
    rows, page = [], 1
    while True:
        body = api.report_integrated_get(advertiser, "BASIC", ["advertiser_id", "stat_time_day"],
                                         FAKE_CREDENTIALS["tiktok"]["TIKTOK_ACCESS_TOKEN"],
                                         data_level="AUCTION_ADVERTISER", metrics=["spend"],
                                         start_date=start.isoformat(), end_date=end.isoformat(),
                                         page=page, page_size=10)
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
    with pytest.raises(TiktokSDKError, match=r"^Error Code: 40105, message: Access token is incorrect or has been "
                                             r"revoked\., request_id: \d+$"):
        _tiktok_reporting(sandbox).report_integrated_get(
            "7000000000001", "BASIC", ["advertiser_id", "stat_time_day"], "made-up-token",
            data_level="AUCTION_ADVERTISER", metrics=["spend"], start_date="2026-01-01", end_date="2026-01-02")


# --- Amazon: python-amazon-ad-api ----------------------------------------------------------------

CREATE_TYPE = "application/vnd.createasyncreportrequest.v3+json"


def _amazon_reports(sandbox, *, secret: str | None = None, vendor_type: bool = True, profile: str):
    """``ad_api``'s v3 ``Reports`` client at the sandbox. Amazon's docs (A.11) require the vendor
    Content-Type on create; the client sends ``application/json`` on every call, so the documented
    type is set through the client's ``headers`` (a subclass), the one thing changed."""
    from ad_api.api.reports import Reports
    from ad_api.auth import access_token_client
    access_token_client.cache.clear()          # the client caches tokens process-wide by refresh token
    creds = FAKE_CREDENTIALS["amazon"]
    credentials = {"refresh_token": creds["AMAZON_REFRESH_TOKEN"], "client_id": creds["AMAZON_CLIENT_ID"],
                   "client_secret": secret or creds["AMAZON_CLIENT_SECRET"], "profile_id": profile}

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
    return {"name": "conformance", "startDate": start.isoformat(), "endDate": end.isoformat(),
            "configuration": {"adProduct": "SPONSORED_PRODUCTS", "reportTypeId": "spCampaigns",
                              "groupBy": ["campaign"], "columns": ["date", "campaignId", "cost"],
                              "timeUnit": "DAILY", "format": "GZIP_JSON"}}


def test_amazon_ad_api_report_create_poll_download(sandbox):
    profile = "3312456789012340"                                  # a profile running Sponsored Products only
    start, end = _days_back(20, 2)
    client = _amazon_reports(sandbox, profile=profile)
    created = client.post_report(body=json.dumps(_amazon_body(start, end))).payload
    report_id = created["reportId"]
    for _ in range(sandbox.ctx.report_polls_needed):
        status = client.get_report(reportId=report_id).payload
    assert status["status"] == "COMPLETED" and status["url"]
    rows = client.download_report(url=status["url"], format="data").payload     # gunzipped, parsed
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
        401, "invalid_client", "Client authentication failed")
    with pytest.raises(exceptions.AdvertisingApiUnauthorizedException) as err:
        _amazon_reports(sandbox, profile="1234").get_report(reportId="x")
    assert err.value.error == {"code": "UNAUTHORIZED", "details": "Not authorized to access scope 1234"}
