"""Amazon Ads: the reporting v3 fetcher against respx fakes, and against the sandbox emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import re
import time
from decimal import Decimal

import httpx
import pytest
import respx

from fetchers import get_fetcher
from fetchers.base import AccountInfo, FetchError, MalformedResponse
from fetchers.core import MemoryJobStore, PlatformApi, RateBudget, ReportPolicy, fetch_window, plan_windows

HOST = "https://advertising-api.amazon.com"
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
S3 = "https://offline-report-storage-us-east-1-prod.s3.amazonaws.com"
CREDS = {
    "AMAZON_CLIENT_ID": "amzn1.application-oa2-client.test",
    "AMAZON_CLIENT_SECRET": "amzn1.oa2-cs.v1.s3cr3t",
    "AMAZON_REFRESH_TOKEN": "Atzr|refresh-t0ken",
}
PROFILE = AccountInfo("3312456789012345", "USD", "America/Los_Angeles")
FETCHER = get_fetcher("amazon")
REPORT_TYPES = {
    "SPONSORED_PRODUCTS": "spCampaigns",
    "SPONSORED_BRANDS": "sbCampaigns",
    "SPONSORED_DISPLAY": "sdCampaigns",
}


def D(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def gz(rows) -> bytes:
    return gzip.compress((rows if isinstance(rows, str) else json.dumps(rows)).encode(), mtime=0)


class FakeAmazon:
    """Enough of the reporting v3 API for respx: create -> status -> pre-signed gzip download.

    ``files`` maps reportTypeId to the report file (a list of rows, raw bytes, or a callable of
    the create body); ``statuses`` maps reportTypeId to the status sequence the polls see."""

    def __init__(self, files=None, statuses=None):
        self.files = files or {}
        self.statuses = statuses or {}
        self.created: list[dict] = []  # create bodies in order
        self.reports: dict[str, dict] = {}  # id -> create body
        self.polls: dict[str, int] = {}
        self.tokens = 0

    def install(self, mock: respx.MockRouter) -> FakeAmazon:
        self.token_route = mock.post(TOKEN_URL).mock(side_effect=self.token)
        self.create_route = mock.post(f"{HOST}/reporting/reports").mock(side_effect=self.create)
        self.status_route = mock.get(url__regex=rf"^{re.escape(HOST)}/reporting/reports/[\w-]+$").mock(
            side_effect=self.status
        )
        self.download_route = mock.get(url__startswith=S3).mock(side_effect=self.download)
        return self

    def token(self, request):
        self.tokens += 1
        return httpx.Response(
            200,
            json={
                "access_token": f"Atza|access-{self.tokens}",
                "refresh_token": CREDS["AMAZON_REFRESH_TOKEN"],
                "token_type": "bearer",
                "expires_in": 3600,
            },
        )

    def create(self, request):
        body = json.loads(request.content)
        rid = f"{body['configuration']['reportTypeId']}-{body['startDate']}-{len(self.created)}"
        self.created.append(body)
        self.reports[rid] = body
        return httpx.Response(200, json={"reportId": rid, "status": "PENDING", **body})

    def status(self, request):
        rid = request.url.path.rsplit("/", 1)[-1]
        body = self.reports.get(rid)
        if body is None:
            return httpx.Response(404, json={"code": "404", "detail": f"Report {rid} not found"})
        n = self.polls[rid] = self.polls.get(rid, 0) + 1
        seq = self.statuses.get(body["configuration"]["reportTypeId"], ["PENDING", "COMPLETED"])
        status = seq[min(n, len(seq)) - 1]
        out = {"reportId": rid, "status": status, "url": None, "failureReason": None}
        if status == "COMPLETED":
            out["url"] = f"{S3}/{rid}/report-{rid}.json.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123"
        if status == "FAILED":
            out["failureReason"] = "Report generation failed due to an internal error. Please retry"
        return httpx.Response(200, json=out)

    def download(self, request):
        rid = request.url.path.split("/")[1]
        body = self.reports[rid]
        f = self.files.get(body["configuration"]["reportTypeId"], [])
        f = f(body) if callable(f) else f
        return httpx.Response(
            200, content=f if isinstance(f, bytes) else gz(f), headers={"Content-Type": "application/octet-stream"}
        )


def run(fn, *, jobs=None, report=None, creds=CREDS, base_url=HOST, token_url=TOKEN_URL):
    async def go():
        async with httpx.AsyncClient() as client:
            auth = FETCHER.build_auth(creds, token_url, None)
            api = PlatformApi(
                FETCHER,
                client,
                base_url=base_url,
                credentials=creds,
                auth=auth,
                budget=RateBudget(60000),
                jobs=jobs,
                report=report,
            )
            return await fn(api)

    return asyncio.run(go())


def window(start, end, account=PROFILE, **kw):
    return run(lambda api: fetch_window(FETCHER, api, account, D(start), D(end)), **kw)


SP_ROWS = [
    {"date": "2026-03-01", "campaignId": 158410630682987, "campaignBudgetCurrencyCode": "USD", "cost": 14.5},
    {"date": "2026-03-01", "campaignId": 204112330682112, "campaignBudgetCurrencyCode": "USD", "cost": 9.45},
    {"date": "2026-03-03", "campaignId": 158410630682987, "campaignBudgetCurrencyCode": "USD", "cost": 12.02},
]
SB_ROWS = [
    {"date": "2026-03-01", "campaignId": 1, "campaignBudgetCurrencyCode": "USD", "cost": 0.1},
    {"date": "2026-03-01", "campaignId": 2, "campaignBudgetCurrencyCode": "USD", "cost": 0.2},
]
SD_ROWS = [{"date": "2026-03-03", "campaignId": 3, "campaignBudgetCurrencyCode": "USD", "cost": 1000000.07}]


# --- unit: requests -----------------------------------------------------------------------------


def test_create_poll_download_exact_requests_and_sum():
    with respx.mock(assert_all_called=True) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS, "sbCampaigns": SB_ROWS, "sdCampaigns": SD_ROWS}).install(mock)
        rows = window("2026-03-01", "2026-03-03")
    # campaigns summed per day across SP, SB and SD; exact decimals (0.1 + 0.2 is 0.3, not a float)
    assert rows == {
        D("2026-03-01"): Decimal("24.25"),
        D("2026-03-02"): Decimal("0"),
        D("2026-03-03"): Decimal("1000012.09"),
    }
    assert all(type(v) is Decimal for v in rows.values())

    creates = [c.request for c in fake.create_route.calls]
    assert sorted(json.loads(r.content)["configuration"]["reportTypeId"] for r in creates) == [
        "sbCampaigns",
        "sdCampaigns",
        "spCampaigns",
    ]
    sp = next(r for r in creates if b"spCampaigns" in r.content)
    assert json.loads(sp.content) == {
        "name": "adspend spCampaigns daily 2026-03-01..2026-03-03",
        "startDate": "2026-03-01",
        "endDate": "2026-03-03",
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "reportTypeId": "spCampaigns",
            "groupBy": ["campaign"],
            "columns": ["date", "campaignId", "campaignBudgetCurrencyCode", "cost"],
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }
    for r in creates:
        assert r.headers["Content-Type"] == "application/vnd.createasyncreportrequest.v3+json"
        assert r.headers["Accept"] == "application/vnd.createasyncreportresponse.v3+json"
        assert r.headers["Authorization"] == "Bearer Atza|access-1"
        assert r.headers["Amazon-Advertising-API-ClientId"] == "amzn1.application-oa2-client.test"
        assert r.headers["Amazon-Advertising-API-Scope"] == "3312456789012345"
        body = json.loads(r.content)
        assert body["configuration"]["adProduct"] in REPORT_TYPES
        assert REPORT_TYPES[body["configuration"]["adProduct"]] == body["configuration"]["reportTypeId"]
    for c in fake.status_route.calls:
        assert c.request.headers["Authorization"] == "Bearer Atza|access-1"
        assert c.request.headers["Amazon-Advertising-API-Scope"] == "3312456789012345"
        assert c.request.headers["Amazon-Advertising-API-ClientId"] == "amzn1.application-oa2-client.test"
    # the pre-signed download carries no Authorization and no Amazon headers
    assert fake.download_route.call_count == 3
    for c in fake.download_route.calls:
        sent = {k.lower() for k in c.request.headers}
        assert "authorization" not in sent
        assert not any(k.startswith("amazon-advertising-api") for k in sent)
        assert c.request.url.params["X-Amz-Signature"] == "abc123"
    # one LWA refresh-token grant with the client credentials in the form body
    token_req = fake.token_route.calls[0].request
    assert dict(x.split("=", 1) for x in token_req.content.decode().split("&")) == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr%7Crefresh-t0ken",
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": "amzn1.oa2-cs.v1.s3cr3t",
    }
    assert fake.token_route.call_count == 1


def test_45_days_is_two_windows_of_three_reports():
    def rows_for(body):
        s, e = D(body["startDate"]), D(body["endDate"])
        return [
            {"date": (s + dt.timedelta(days=i)).isoformat(), "campaignId": 1, "cost": 1.25}
            for i in range((e - s).days + 1)
        ]

    windows = plan_windows(D("2026-09-01"), D("2026-10-15"), FETCHER.max_days)
    assert windows == [(D("2026-09-01"), D("2026-10-01")), (D("2026-10-02"), D("2026-10-15"))]
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({t: rows_for for t in REPORT_TYPES.values()}).install(mock)
        total = Decimal(0)
        for s, e in windows:
            total += sum(window(s.isoformat(), e.isoformat()).values())
    assert sorted((b["startDate"], b["endDate"], b["configuration"]["reportTypeId"]) for b in fake.created) == [
        ("2026-09-01", "2026-10-01", "sbCampaigns"),
        ("2026-09-01", "2026-10-01", "sdCampaigns"),
        ("2026-09-01", "2026-10-01", "spCampaigns"),
        ("2026-10-02", "2026-10-15", "sbCampaigns"),
        ("2026-10-02", "2026-10-15", "sdCampaigns"),
        ("2026-10-02", "2026-10-15", "spCampaigns"),
    ]
    assert total == Decimal("168.75")  # 45 days x 3 products x 1.25


def test_window_over_31_days_is_refused_before_any_request():
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon().install(mock)
        with pytest.raises(ValueError):
            window("2026-03-01", "2026-04-01")
        assert len(mock.calls) == 0


def test_account_info_reads_the_profile():
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon().install(mock)
        route = mock.get(f"{HOST}/v2/profiles/3312456789012345").respond(
            200,
            json={
                "profileId": 3312456789012345,
                "countryCode": "DE",
                "currencyCode": "eur",
                "dailyBudget": 0.0,
                "timezone": "Europe/Berlin",
                "accountInfo": {
                    "marketplaceStringId": "A1PA6795UKMFR9",
                    "id": "A1",
                    "type": "seller",
                    "name": "Beispiel",
                    "validPaymentMethod": True,
                },
            },
        )
        info = run(lambda api: FETCHER.account_info(api, " 3312456789012345 "))
    assert info == AccountInfo("3312456789012345", "EUR", "Europe/Berlin", "Beispiel")
    req = route.calls[0].request
    assert req.headers["Authorization"] == "Bearer Atza|access-1"
    assert req.headers["Amazon-Advertising-API-ClientId"] == "amzn1.application-oa2-client.test"


@pytest.mark.parametrize(
    "body",
    [
        {"profileId": 3312456789012345, "timezone": "Europe/Berlin"},  # no currency
        {"profileId": 3312456789012345, "currencyCode": "EUR"},  # no timezone
        {"profileId": 999, "currencyCode": "EUR", "timezone": "Europe/Berlin"},  # someone else
        [{"profileId": 3312456789012345, "currencyCode": "EUR", "timezone": "Europe/Berlin"}],
    ],
)
def test_account_info_malformed(body):
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon().install(mock)
        mock.get(f"{HOST}/v2/profiles/3312456789012345").respond(200, json=body)
        with pytest.raises(MalformedResponse):
            run(lambda api: FETCHER.account_info(api, "3312456789012345"))


def test_agency_profile_is_refused_with_a_reason():
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon().install(mock)
        mock.get(f"{HOST}/v2/profiles/3312456789012345").respond(
            200,
            json={
                "profileId": 3312456789012345,
                "currencyCode": "USD",
                "timezone": "America/New_York",
                "accountInfo": {"type": "agency", "name": "DSP entity"},
            },
        )
        with pytest.raises(FetchError) as exc:
            run(lambda api: FETCHER.account_info(api, "3312456789012345"))
    assert exc.value.kind == "request" and "agency" in str(exc.value)


@pytest.mark.parametrize(
    "raw,stored",
    [("3312456789012345", "3312456789012345"), (" 777777777\n", "777777777"), (3312456789012345, "3312456789012345")],
)
def test_normalize_good(raw, stored):
    assert FETCHER.normalize_account_id(raw) == stored


@pytest.mark.parametrize(
    "raw", ["", "amzn1.ads-account.g.abc", "3312-4567", "-12", "A1B2C3D4E5F6G7", "123456789012345678901"]
)
def test_normalize_bad(raw):
    with pytest.raises(ValueError) as exc:
        FETCHER.normalize_account_id(raw)
    assert "amazon" in str(exc.value) and repr(str(raw)) in str(exc.value) and "profile id" in str(exc.value)


def test_region_picks_the_host_and_token_url():
    from fetchers.specs import SPECS

    spec = SPECS["amazon"]
    assert spec.default_urls({}) == (HOST, TOKEN_URL)
    assert spec.default_urls({"AMAZON_ADS_REGION": "eu"}) == (
        "https://advertising-api-eu.amazon.com",
        "https://api.amazon.co.uk/auth/o2/token",
    )
    assert spec.default_urls({"AMAZON_ADS_REGION": "FE"}) == (
        "https://advertising-api-fe.amazon.com",
        "https://api.amazon.co.jp/auth/o2/token",
    )
    # an unknown region does not break configuration; the first call for a profile refuses it
    assert spec.default_urls({"AMAZON_ADS_REGION": "APAC"}) == (HOST, TOKEN_URL)
    assert SPECS["meta"].default_urls({"AMAZON_ADS_REGION": "eu"}) == ("https://graph.facebook.com", "")
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon().install(mock)
        with pytest.raises(FetchError) as exc:
            run(lambda api: FETCHER.account_info(api, "3312456789012345"), creds={**CREDS, "AMAZON_ADS_REGION": "APAC"})
        assert len(mock.calls) == 0
    assert exc.value.kind == "config" and exc.value.platform_wide and "NA, EU, FE" in str(exc.value)


def test_constants():
    assert (FETCHER.platform, FETCHER.max_days, FETCHER.lookback_days, FETCHER.day_basis, FETCHER.history_days) == (
        "amazon",
        31,
        3,
        "account",
        60,
    )


# --- unit: async report behaviour ---------------------------------------------------------------


def test_425_reuses_the_running_report_id():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        fake.reports["8adca409-98e1-442c-9e74-28147f9f7bc8"] = {"configuration": {"reportTypeId": "spCampaigns"}}

        def create(request):
            body = json.loads(request.content)
            fake.created.append(body)
            if body["configuration"]["reportTypeId"] == "spCampaigns":
                return httpx.Response(
                    425,
                    json={
                        "code": "425",
                        "detail": "The Request is a duplicate of : 8adca409-98e1-442c-9e74-28147f9f7bc8",
                    },
                )
            return FakeAmazon.create(fake, request)

        fake.create_route.mock(side_effect=create)
        rows = window("2026-03-01", "2026-03-03")
    assert rows[D("2026-03-01")] == Decimal("23.95")
    sp_creates = [b for b in fake.created if b["configuration"]["reportTypeId"] == "spCampaigns"]
    assert len(sp_creates) == 1  # no second POST for SP
    assert fake.polls["8adca409-98e1-442c-9e74-28147f9f7bc8"] == 2


def test_425_without_an_id_waits_and_retries():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        answers = iter([httpx.Response(425, json={"code": "425", "detail": "Too Early"})])

        def create(request):
            if b"spCampaigns" in request.content:
                nxt = next(answers, None)
                if nxt is not None:
                    return nxt
            return FakeAmazon.create(fake, request)

        fake.create_route.mock(side_effect=create)
        rows = window("2026-03-01", "2026-03-03")
    assert sum(rows.values()) == Decimal("35.97")


def test_429_honours_retry_after_then_succeeds():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        throttled = {"n": 0}

        def create(request):
            if b"spCampaigns" in request.content and throttled["n"] == 0:
                throttled["n"] += 1
                return httpx.Response(
                    429, json={"code": "429", "detail": "Too Many Requests"}, headers={"Retry-After": "0.3"}
                )
            return FakeAmazon.create(fake, request)

        fake.create_route.mock(side_effect=create)
        t0 = time.monotonic()
        rows = window("2026-03-01", "2026-03-03")
        elapsed = time.monotonic() - t0
    assert sum(rows.values()) == Decimal("35.97")
    assert elapsed >= 0.3
    assert len([b for b in fake.created if b["configuration"]["reportTypeId"] == "spCampaigns"]) == 1
    assert fake.create_route.call_count == 4


def test_failed_report_is_report_failed_with_the_reason():
    jobs = MemoryJobStore()
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon({"spCampaigns": SP_ROWS}, {"sbCampaigns": ["PENDING", "FAILED"]}).install(mock)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03", jobs=jobs)
    assert exc.value.kind == "report_failed"
    assert "Report generation failed due to an internal error. Please retry" in str(exc.value)
    assert jobs.get("amazon:3312456789012345:sbCampaigns:2026-03-01:2026-03-03") is None


def test_stuck_report_times_out_keeps_ids_and_the_next_run_resumes_without_posting():
    jobs = MemoryJobStore()
    policy = ReportPolicy(first_poll=0.01, max_poll=0.02, deadline=0.15)
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon(
            {"spCampaigns": SP_ROWS}, {t: ["PENDING"] + ["PROCESSING"] * 1000 for t in REPORT_TYPES.values()}
        ).install(mock)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03", jobs=jobs, report=policy)
        assert exc.value.kind == "timeout"
        ids = {k: jobs.get(f"amazon:3312456789012345:{k}:2026-03-01:2026-03-03") for k in REPORT_TYPES.values()}
        assert all(ids.values()) and set(ids.values()) == set(fake.reports)
        assert fake.create_route.call_count == 3

        fake.statuses = {}  # Amazon finished them meanwhile
        rows = window("2026-03-01", "2026-03-03", jobs=jobs, report=policy)
        assert fake.create_route.call_count == 3  # resumed by id: no second POST
    assert sum(rows.values()) == Decimal("35.97")
    assert all(jobs.get(f"amazon:3312456789012345:{k}:2026-03-01:2026-03-03") is None for k in REPORT_TYPES.values())


def test_resumed_id_unknown_to_amazon_is_requested_again():
    jobs = MemoryJobStore()
    jobs.put("amazon:3312456789012345:spCampaigns:2026-03-01:2026-03-03", "gone-report-id")
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        rows = window("2026-03-01", "2026-03-03", jobs=jobs)
    assert sum(rows.values()) == Decimal("35.97")
    assert fake.create_route.call_count == 3


def test_expired_token_mid_run_is_refreshed():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        seen = {"n": 0}

        def status(request):
            seen["n"] += 1
            if request.headers["Authorization"] == "Bearer Atza|access-1" and seen["n"] >= 2:
                return httpx.Response(401, json={"code": "401", "detail": "Unauthorized"})
            return FakeAmazon.status(fake, request)

        fake.status_route.mock(side_effect=status)
        rows = window("2026-03-01", "2026-03-03")
    assert sum(rows.values()) == Decimal("35.97")
    assert fake.token_route.call_count == 2
    assert fake.status_route.calls[-1].request.headers["Authorization"] == "Bearer Atza|access-2"


def test_401_after_refresh_is_an_auth_failure():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)
        fake.create_route.respond(401, json={"code": "401", "detail": "Unauthorized"})
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "auth" and exc.value.platform_wide
    assert "re-authorise" in str(exc.value)
    assert fake.token_route.call_count >= 2  # refreshed once (per concurrent report), then gave up


def test_refused_refresh_token_is_auth_and_never_shows_secrets():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)
        fake.token_route.respond(
            400, json={"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"}
        )
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "auth" and "invalid_grant" in str(exc.value)
    for secret in CREDS.values():
        assert secret not in str(exc.value)


def test_profile_not_in_scope_is_an_actionable_request_error():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)
        fake.create_route.respond(
            401, json={"code": "401", "detail": "Not authorized to access scope 3312456789012345"}
        )
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "request" and "AMAZON_ADS_REGION" in str(exc.value)
    assert fake.token_route.call_count == 1  # not an expired token: no refresh


def test_bad_request_is_a_request_error_with_amazons_detail():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)
        fake.create_route.respond(
            400,
            json={
                "code": "400",
                "detail": "Report date is too far in the past. Reports are only available for 60 days.",
            },
        )
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "request" and "too far in the past" in str(exc.value)


def test_profile_without_sponsored_brands_has_no_brands_spend():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS, "sdCampaigns": []}).install(mock)

        def create(request):
            if b"sbCampaigns" in request.content:
                return httpx.Response(
                    400,
                    json={"code": "400", "detail": "KDP authors do not have access to Sponsored Brands functionality"},
                )
            return FakeAmazon.create(fake, request)

        fake.create_route.mock(side_effect=create)
        rows = window("2026-03-01", "2026-03-03")
    assert rows == {D("2026-03-01"): Decimal("23.95"), D("2026-03-02"): Decimal(0), D("2026-03-03"): Decimal("12.02")}


def test_no_access_to_another_product_than_requested_is_not_swallowed():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon({"spCampaigns": SP_ROWS}).install(mock)

        def create(request):
            if b"sdCampaigns" in request.content:
                return httpx.Response(
                    400,
                    json={
                        "code": "400",
                        "detail": "Marketplace X do not have access to Sponsored Brands functionality",
                    },
                )
            return FakeAmazon.create(fake, request)

        fake.create_route.mock(side_effect=create)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "request"


def test_wrong_currency_rows_are_refused():
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon(
            {"spCampaigns": [{"date": "2026-03-01", "campaignId": 1, "campaignBudgetCurrencyCode": "EUR", "cost": 5}]}
        ).install(mock)
        with pytest.raises(MalformedResponse):
            window("2026-03-01", "2026-03-03")


# --- unit: malformed answers are failures, never zero -------------------------------------------


@pytest.mark.parametrize(
    "file",
    ids=lambda f: f"{len(f)}-bytes",
    argvalues=[
        b"\x1f\x8b\x08\x00not really gzip",  # broken gzip
        b'[{"date": "2026-03-01", "cost": 1.5}]',  # not gzip at all
        gzip.compress(b"<html>Access Denied</html>", mtime=0),  # gzip, not JSON
        gzip.compress(b'[{"date": "2026-03-01", "cost": 1.5}', mtime=0),  # truncated JSON
        gz({"rows": []}),  # not an array
        gz([{"date": "2026-03-01", "campaignId": 1}]),  # no cost
        gz([{"date": "2026-03-01", "cost": None}]),  # null cost
        gz([{"date": "2026-03-01", "cost": "12,50"}]),  # not a number
        gz([{"date": "2026-03-01", "cost": True}]),  # wrong type
        gz([{"campaignId": 1, "cost": 2}]),  # no date
        gz([{"date": "03/01/2026", "cost": 2}]),  # bad date
        gz([{"date": "2026-04-01", "cost": 2}]),  # outside the window
        gz(["2026-03-01", 2]),  # rows not objects
        gzip.compress(b'[{"date": "2026-03-01", "cost": NaN}]', mtime=0),  # not a finite number
    ],
)
def test_malformed_report_file_fails(file):
    with respx.mock(assert_all_called=False) as mock:
        FakeAmazon({"spCampaigns": file}).install(mock)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "malformed"


def test_gzip_declared_as_content_encoding_is_read():
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)

        def download(request):
            return httpx.Response(200, content=gz(SP_ROWS), headers={"Content-Encoding": "gzip"})

        fake.download_route.mock(side_effect=download)
        rows = window("2026-03-01", "2026-03-03")
    assert sum(rows.values()) == Decimal("35.97") * 3


@pytest.mark.parametrize(
    "status_body",
    [
        {"reportId": "x", "status": "DONE"},  # unknown status
        {"reportId": "x"},  # no status
        {"reportId": "x", "status": "COMPLETED", "url": None},  # done without a file
        ["COMPLETED"],
    ],
)
def test_malformed_status_fails(status_body):
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)
        fake.status_route.respond(200, json=status_body)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "malformed"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"status": "PENDING"}),
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json={"reportId": 12345}),
    ],
)
def test_malformed_create_answer_fails(response):
    with respx.mock(assert_all_called=False) as mock:
        fake = FakeAmazon().install(mock)
        fake.create_route.mock(return_value=response)
        with pytest.raises(FetchError) as exc:
            window("2026-03-01", "2026-03-03")
    assert exc.value.kind == "malformed"


def test_classify_table():
    def resp(status, body=None, method="GET", path="/reporting/reports/abc", headers=None):
        return httpx.Response(status, json=body, headers=headers, request=httpx.Request(method, f"{HOST}{path}"))

    c = FETCHER.classify
    assert c(resp(200, {})).action == "ok"
    assert (
        c(
            resp(
                425, {"code": "425", "detail": "The Request is a duplicate of : abc-123"}, "POST", "/reporting/reports"
            )
        ).action
        == "ok"
    )
    v = c(resp(425, {"code": "425", "detail": "busy"}, "POST", "/reporting/reports", {"Retry-After": "7"}))
    assert (v.action, v.retry_after) == ("retry", 7.0)
    v = c(resp(429, {"code": "429"}, headers={"Retry-After": "3"}))
    assert (v.action, v.kind, v.retry_after) == ("retry", "throttled", 3.0)
    assert c(resp(503, {})).action == "retry"
    assert c(resp(401, {"code": "401", "detail": "Unauthorized"})).action == "refresh"
    assert (c(resp(403, {"code": "403", "detail": "Not authorized to access scope 1"})).kind) == "request"
    assert c(resp(404, {"code": "404", "detail": "Report not found"})).kind == "request"
    # "no access to this ad product" is only an answer on create; anywhere else it fails
    no_sb = {"code": "400", "detail": "KDP authors do not have access to Sponsored Brands functionality"}
    assert c(resp(400, no_sb, "POST", "/reporting/reports")).action == "ok"
    assert c(resp(400, no_sb)).action == "fail"


# --- sandbox ------------------------------------------------------------------------------------


@pytest.fixture
def quick(sandbox):
    """Reports complete on their first poll (the full PENDING -> PROCESSING -> COMPLETED walk is
    exercised by the exact-totals test)."""
    sandbox.ctx.configure({"report_polls_needed": 1})
    return sandbox


@pytest.fixture
def sandbox_env(sandbox):
    from sandbox.credentials import sandbox_env as make_env

    return make_env(sandbox.url, ["amazon"])


def sandbox_creds(env):
    return {k: v for k, v in env.items() if k in ("AMAZON_CLIENT_ID", "AMAZON_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN")}


def sandbox_run(sandbox, env, fn, **kw):
    return run(
        fn,
        creds=sandbox_creds(env),
        base_url=env["AMAZON_ADS_API_BASE_URL"],
        token_url=env["AMAZON_ADS_TOKEN_URL"],
        **kw,
    )


def sandbox_range(days=45):
    from sandbox import data

    end = data.today() - dt.timedelta(days=2)
    return end - dt.timedelta(days=days - 1), end


def expected_spend(sandbox, profile, start, end) -> Decimal:
    return Decimal(sandbox.sandbox.expected_total("amazon", profile, start, end)["spend"])


def fetch_range(sandbox, env, profile, start, end, **kw):
    async def go(api):
        info = await FETCHER.account_info(api, profile)
        out = {}
        for s, e in plan_windows(start, end, FETCHER.max_days):
            out.update(await fetch_window(FETCHER, api, info, s, e))
        return info, out, api.request_count

    return sandbox_run(sandbox, env, go, **kw)


def test_sandbox_exact_totals_over_45_days(sandbox, sandbox_env):
    from sandbox import amazon as emulator

    start, end = sandbox_range(45)
    for profile, products in [
        ("3312456789012348", ("sp", "sb", "sd")),
        ("3312456789012341", ("sp", "sd")),
        ("4412345678901978", ("sp", "sb", "sd")),
    ]:
        assert emulator.ad_products(profile) == products
        info, rows, _ = fetch_range(sandbox, sandbox_env, profile, start, end)
        expected = sandbox.sandbox.expected_total("amazon", profile, start, end)
        assert sum(rows.values()) == Decimal(expected["spend"]) > 0
        assert {d.isoformat(): v for d, v in rows.items()} == {d: Decimal(v) for d, v in expected["days"].items()}
        assert info.currency == expected["currency"]
        # two windows; SP and SD reports always run (an empty SD file when the profile has none),
        # SB only where the profile has Sponsored Brands
        assert len([j for j in sandbox.ctx.jobs.values() if j["profile"] == profile]) == 2 * (2 + ("sb" in products))
    assert info.currency == "EUR" and info.timezone == "Europe/Berlin"
    assert sandbox.ctx.report_polls_needed == 3


def test_sandbox_sponsored_products_only_profile(quick, sandbox_env):
    from sandbox import amazon as emulator

    start, end = sandbox_range(10)
    assert emulator.ad_products("3312456789012340") == ("sp",)
    _, rows, _ = fetch_range(quick, sandbox_env, "3312456789012340", start, end)
    assert sum(rows.values()) == expected_spend(quick, "3312456789012340", start, end) > 0


def test_sandbox_several_campaigns_per_day_are_summed():
    from sandbox import amazon as emulator

    start, end = sandbox_range(20)
    costs = [
        emulator.campaign_costs("3312456789012348", "sp", start + dt.timedelta(days=i), Decimal("100.00"))
        for i in range(20)
    ]
    assert any(len(c) > 1 for c in costs) and all(sum(x for _, x in c) == Decimal("100.00") for c in costs)


def test_sandbox_restatement_is_picked_up(quick, sandbox, sandbox_env):
    start, end = sandbox_range(10)
    _, before, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    sandbox.ctx.configure({"restate": {"amazon": {"from": start.isoformat(), "generation": 1}}})
    _, after, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert sum(after.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    assert sum(after.values()) > sum(before.values())


def _raw(sandbox, method, path, headers=None, body=None):
    client = getattr(sandbox, "_amazon_test_client", None)
    if client is None:
        client = sandbox._amazon_test_client = httpx.Client(base_url=sandbox.url)
    return client.request(method, path, headers=headers, content=body)


def _token(sandbox, env):
    r = _raw(
        sandbox,
        "POST",
        "/auth/o2/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        f"grant_type=refresh_token&refresh_token={env['AMAZON_REFRESH_TOKEN']}&client_id={env['AMAZON_CLIENT_ID']}"
        f"&client_secret={env['AMAZON_CLIENT_SECRET']}".encode(),
    )
    assert r.status_code == 200 and r.json()["expires_in"] == 3600 and r.json()["token_type"] == "bearer"
    return r.json()["access_token"]


def _good_body(days=31, **cfg):
    from sandbox import data

    end = data.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    conf = {
        "adProduct": "SPONSORED_PRODUCTS",
        "reportTypeId": "spCampaigns",
        "groupBy": ["campaign"],
        "columns": ["date", "cost"],
        "timeUnit": "DAILY",
        "format": "GZIP_JSON",
        **cfg,
    }
    return {"startDate": start.isoformat(), "endDate": end.isoformat(), "configuration": conf}


def test_sandbox_rejects_what_amazon_rejects(sandbox, sandbox_env):
    tok = _token(sandbox, sandbox_env)
    h = {
        "Authorization": f"Bearer {tok}",
        "Amazon-Advertising-API-ClientId": sandbox_env["AMAZON_CLIENT_ID"],
        "Amazon-Advertising-API-Scope": "3312456789012348",
        "Content-Type": "application/vnd.createasyncreportrequest.v3+json",
    }

    def create(body, headers=h):
        return _raw(sandbox, "POST", "/reporting/reports", headers, json.dumps(body).encode())

    cases = [
        (create(_good_body(32)), 400, "must not exceed 31 days"),
        (create(_good_body(columns=["date", "impressions"])), 400, "cost"),
        (create(_good_body(columns=["cost"])), 400, "date"),
        (create(_good_body(timeUnit="SUMMARY")), 400, "DAILY"),
        (create(_good_body(format="CSV")), 400, "GZIP_JSON"),
        (create(_good_body(reportTypeId="sbCampaigns")), 400, "reportTypeId"),
        (create(_good_body(columns=["date", "cost", "sales7d"])), 400, "sales7d"),
        (create({k: v for k, v in _good_body().items() if k != "endDate"}), 400, "endDate"),
        (create(_good_body(), {**h, "Content-Type": "application/json"}), 415, "createasyncreportrequest"),
        (create(_good_body(), {k: v for k, v in h.items() if k != "Amazon-Advertising-API-Scope"}), 400, "Scope"),
        (create(_good_body(), {k: v for k, v in h.items() if k != "Amazon-Advertising-API-ClientId"}), 400, "ClientId"),
        (create(_good_body(), {k: v for k, v in h.items() if k != "Authorization"}), 401, "Authorization"),
        (_raw(sandbox, "GET", "/reporting/reports/nope", h), 404, "not found"),
    ]
    for resp, status, text in cases:
        assert resp.status_code == status, resp.text
        assert resp.json()["code"] == str(status) and text in resp.json()["detail"]
    far = _good_body(5)
    far["startDate"], far["endDate"] = "2020-01-01", "2020-01-05"
    assert "too far in the past" in create(far).json()["detail"]
    # an identical report still running is a 425 naming it
    first = create(_good_body(7))
    assert first.status_code == 200 and first.json()["status"] == "PENDING"
    dup = create(_good_body(7))
    assert (
        dup.status_code == 425 and dup.json()["detail"] == f"The Request is a duplicate of : {first.json()['reportId']}"
    )
    # a profile without Sponsored Brands is refused SB reports
    no_sb = create(
        _good_body(adProduct="SPONSORED_BRANDS", reportTypeId="sbCampaigns"),
        {**h, "Amazon-Advertising-API-Scope": "3312456789012340"},
    )
    assert no_sb.status_code == 400 and "do not have access to Sponsored Brands functionality" in no_sb.json()["detail"]


def test_sandbox_download_refuses_auth_headers(sandbox, sandbox_env):
    sandbox.ctx.configure({"report_polls_needed": 1})
    tok = _token(sandbox, sandbox_env)
    h = {
        "Authorization": f"Bearer {tok}",
        "Amazon-Advertising-API-ClientId": sandbox_env["AMAZON_CLIENT_ID"],
        "Amazon-Advertising-API-Scope": "3312456789012348",
    }
    rid = _raw(
        sandbox,
        "POST",
        "/reporting/reports",
        {**h, "Content-Type": "application/vnd.createasyncreportrequest.v3+json"},
        json.dumps(_good_body(3)).encode(),
    ).json()["reportId"]
    done = _raw(sandbox, "GET", f"/reporting/reports/{rid}", h).json()
    assert done["status"] == "COMPLETED" and "X-Amz-Signature=" in done["url"]
    with httpx.Client() as c:
        assert c.get(done["url"], headers={"Authorization": f"Bearer {tok}"}).status_code == 400
        assert c.get(done["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
        ok = c.get(done["url"])
    assert ok.status_code == 200 and ok.content[:2] == b"\x1f\x8b"
    assert all(set(r) == {"date", "cost"} for r in json.loads(gzip.decompress(ok.content)))


def test_sandbox_token_endpoint_validates_the_grant(sandbox, sandbox_env):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bad_grant = _raw(sandbox, "POST", "/auth/o2/token", form, b"grant_type=client_credentials")
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "unsupported_grant_type"
    no_client = _raw(sandbox, "POST", "/auth/o2/token", form, b"grant_type=refresh_token&refresh_token=x")
    assert no_client.status_code == 401 and no_client.json()["error"] == "invalid_client"


def test_sandbox_throttle_then_ok(quick, sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "throttle", "count": 1}]})
    start, end = sandbox_range(10)
    _, rows, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert sum(rows.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    assert sandbox.ctx.throttled["amazon"] == 1


def test_sandbox_expired_token_is_refreshed(quick, sandbox, sandbox_env):
    sandbox.ctx.configure(
        {"faults": [{"platform": "amazon", "kind": "expired_token", "count": 1, "account": "3312456789012348"}]}
    )
    start, end = sandbox_range(10)
    _, rows, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert sum(rows.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    assert sandbox.ctx.token_grants["amazon"] == 2


def test_sandbox_revoked_grant_is_an_auth_failure(sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "revoked", "count": 1}]})
    start, end = sandbox_range(5)
    with pytest.raises(FetchError) as exc:
        fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert exc.value.kind == "auth" and "invalid_grant" in str(exc.value)


def test_sandbox_faults_for_another_profile_do_not_touch_this_one(quick, sandbox, sandbox_env):
    sandbox.ctx.configure(
        {"faults": [{"platform": "amazon", "kind": "5xx", "count": None, "account": "3312456789012341"}]}
    )
    start, end = sandbox_range(5)
    _, rows, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert sum(rows.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    with pytest.raises(FetchError) as exc:
        fetch_range(sandbox, sandbox_env, "3312456789012341", start, end)
    assert exc.value.kind == "server"


def test_sandbox_permanent_5xx_fails(quick, sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "5xx", "count": None}]})
    start, end = sandbox_range(5)
    with pytest.raises(FetchError) as exc:
        fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert exc.value.kind == "server" and "503" in str(exc.value)


@pytest.mark.parametrize("broken", ["profile", "report"])
def test_sandbox_malformed_fails(sandbox, sandbox_env, broken):
    start, end = sandbox_range(5)

    async def go(api):
        if broken == "profile":
            sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "malformed", "count": 1}]})
        info = await FETCHER.account_info(api, "3312456789012348")
        sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "malformed", "count": 1}]})
        return await fetch_window(FETCHER, api, info, start, end)

    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, sandbox_env, go)
    assert exc.value.kind == "malformed"


def test_sandbox_truncated_status_fails(sandbox, sandbox_env):
    start, end = sandbox_range(5)

    async def go(api):
        info = await FETCHER.account_info(api, "3312456789012348")
        sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "truncated", "count": 1}]})
        return await fetch_window(FETCHER, api, info, start, end)

    with pytest.raises(FetchError) as exc:
        sandbox_run(sandbox, sandbox_env, go)
    assert exc.value.kind == "malformed"


def test_sandbox_report_failed(quick, sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "report_failed", "count": 1}]})
    start, end = sandbox_range(5)
    with pytest.raises(FetchError) as exc:
        fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert exc.value.kind == "report_failed" and "internal error" in str(exc.value)


def test_sandbox_stuck_report_times_out_then_resumes_by_id(sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "report_stuck", "count": 1}]})
    jobs = MemoryJobStore()
    policy = ReportPolicy(first_poll=0.01, max_poll=0.02, deadline=0.3)
    start, end = sandbox_range(5)
    with pytest.raises(FetchError) as exc:
        fetch_range(sandbox, sandbox_env, "3312456789012348", start, end, jobs=jobs, report=policy)
    assert exc.value.kind == "timeout" and "resumes" in str(exc.value)
    stuck = [j for j in sandbox.ctx.jobs.values() if j.get("stuck")]
    assert len(stuck) == 1
    key = f"amazon:3312456789012348:{stuck[0]['config']['reportTypeId']}:{start}:{end}"
    assert jobs.get(key) == stuck[0]["id"]
    report_type = stuck[0]["config"]["reportTypeId"]

    def requested():
        return [j for j in sandbox.ctx.jobs.values() if j["config"]["reportTypeId"] == report_type]

    with pytest.raises(FetchError) as exc:  # still stuck: resumed by id, not requested again
        fetch_range(sandbox, sandbox_env, "3312456789012348", start, end, jobs=jobs, report=policy)
    assert exc.value.kind == "timeout"
    assert len(requested()) == 1
    with sandbox.ctx.lock:  # Amazon finally finishes it
        stuck[0]["stuck"] = False
    _, rows, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end, jobs=jobs, report=policy)
    assert requested() == stuck
    assert sum(rows.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    assert jobs.get(key) is None


def test_sandbox_duplicate_reuses_the_running_report(quick, sandbox, sandbox_env):
    sandbox.ctx.configure({"faults": [{"platform": "amazon", "kind": "duplicate", "count": 1}]})
    start, end = sandbox_range(5)
    _, rows, _ = fetch_range(sandbox, sandbox_env, "3312456789012348", start, end)
    assert sum(rows.values()) == expected_spend(sandbox, "3312456789012348", start, end)
    assert len([j for j in sandbox.ctx.jobs.values() if j.get("platform") == "amazon"]) == 3
