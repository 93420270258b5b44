"""Amazon Ads: daily spend per profile from sponsored ads reporting v3 (asynchronous reports).

One profile's spend for a day is the sum of its Sponsored Products, Sponsored Brands and
Sponsored Display campaign reports (platform-apis/amazon-microsoft.md A.4). Each report is
created with ``POST /reporting/reports``, polled at ``GET /reporting/reports/{id}`` and, once
``COMPLETED``, downloaded as gzip JSON from a pre-signed URL without Amazon's headers (A.4-A.7).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from .base import AccountInfo, Api, FetchError, JobStatus, MalformedResponse, Verdict
from .core import (
    OAuthRefreshAuth,
    body_snippet,
    credential,
    default_verdict,
    json_body,
    parse_day,
    parse_decimal,
    retry_after_seconds,
)
from .specs import SPECS

PLATFORM = "amazon"
API_VERSION = "reporting v3"
# No sunset announced for /reporting/reports; an "Ads API v1" reporting successor is rumoured
# (A.11, D.3 UNCONFIRMED), so re-check the release notes before relying on v3 past 2027.
API_SUNSET: dt.date | None = None
MAX_DAYS = 31  # per report, every campaign report type (A.5)


REPORTS_PATH = "/reporting/reports"
CREATE_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
CREATE_ACCEPT = "application/vnd.createasyncreportresponse.v3+json"
REPORT_COLUMNS = ["date", "campaignId", "campaignBudgetCurrencyCode", "cost"]


@dataclass(frozen=True)
class AdProduct:
    code: str  # short name used in resume keys and messages
    ad_product: str  # configuration.adProduct
    report_type: str  # configuration.reportTypeId
    label: str  # the name Amazon uses in its messages


AD_PRODUCTS = (
    AdProduct("sp", "SPONSORED_PRODUCTS", "spCampaigns", "Sponsored Products"),
    AdProduct("sb", "SPONSORED_BRANDS", "sbCampaigns", "Sponsored Brands"),
    AdProduct("sd", "SPONSORED_DISPLAY", "sdCampaigns", "Sponsored Display"),
)

RUNNING, DONE, FAILED = ("PENDING", "PROCESSING"), "COMPLETED", "FAILED"

# 425 names the report already running: "The Request is a duplicate of : <reportId>" (A.8;
# wording UNCONFIRMED, so matched loosely; without an id we wait and retry instead).
_DUPLICATE_RE = re.compile(r"duplicate of\s*:?\s*([A-Za-z0-9-]{6,})", re.I)
# How a profile that may not run an ad product is refused, e.g. "KDP authors do not have access
# to Sponsored Brands functionality" (airbyte skips these as "no report"; no Amazon doc lists
# them). Only this exact form counts as "no spend in that product"; anything else fails.
_NO_ACCESS_RE = re.compile(r"do(?:es)? not have access to (Sponsored (?:Products|Brands|Display)) functionality", re.I)
_SCOPE_RE = re.compile(r"not authorized to access scope", re.I)
_PROFILE_ID_RE = re.compile(r"^\d{1,20}$")


# --- request building ---------------------------------------------------------------------------


def region_urls(region: str | None) -> tuple[str, str]:
    urls = SPECS[PLATFORM].region_urls(region)
    if urls is None:
        raise FetchError(
            "config",
            f"AMAZON_ADS_REGION is {region!r}; expected one of {', '.join(r for r, _, _ in SPECS[PLATFORM].regions)}",
        )
    return urls


def api_headers(credentials: Mapping[str, str], profile_id: str | None = None) -> dict[str, str]:
    """The Amazon headers besides Authorization: the LWA client id and the profile scope (A.2)."""
    headers = {"Amazon-Advertising-API-ClientId": credentials.get("AMAZON_CLIENT_ID", "")}
    if profile_id is not None:
        headers["Amazon-Advertising-API-Scope"] = profile_id
    return headers


def build_report_request(product: AdProduct, start: dt.date, end: dt.date) -> dict[str, Any]:
    return {
        "name": f"adspend {product.report_type} daily {start.isoformat()}..{end.isoformat()}",
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "configuration": {
            "adProduct": product.ad_product,
            "reportTypeId": product.report_type,
            "groupBy": ["campaign"],
            "columns": list(REPORT_COLUMNS),
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }


def resume_key(profile_id: str, product: AdProduct, start: dt.date, end: dt.date) -> str:
    return f"{PLATFORM}:{profile_id}:{product.report_type}:{start.isoformat()}:{end.isoformat()}"


# --- parsing ------------------------------------------------------------------------------------


def error_detail(resp: httpx.Response) -> str:
    """Amazon's error text: ``{"code": "400", "detail": "..."}`` (v3) or ``"details"`` (v2)."""
    try:
        body = resp.json()
    except ValueError:
        return body_snippet(resp)
    if isinstance(body, dict):
        for key in ("detail", "details", "message"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:300]
    return body_snippet(resp)


def duplicate_report_id(resp: httpx.Response) -> str | None:
    m = _DUPLICATE_RE.search(error_detail(resp)) if resp.status_code == 425 else None
    return m.group(1) if m else None


def not_entitled_product(resp: httpx.Response) -> str | None:
    """The ad product a create request was refused for because the profile cannot use it."""
    if resp.status_code != 400:
        return None
    m = _NO_ACCESS_RE.search(error_detail(resp))
    return m.group(1).title() if m else None


def parse_create_response(resp: httpx.Response) -> str:
    body = json_body(resp, PLATFORM)
    report_id = body.get("reportId") if isinstance(body, dict) else None
    if not isinstance(report_id, str) or not report_id:
        raise MalformedResponse("amazon create-report answer has no reportId")
    return report_id


def parse_report_status(body: Any) -> JobStatus:
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise MalformedResponse("amazon report status answer has no status field")
    status = body["status"]
    if status in RUNNING:
        return JobStatus("pending", {"status": status})
    if status == DONE:
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MalformedResponse("amazon report is COMPLETED but has no download url")
        return JobStatus("done", {"url": url})
    if status == FAILED:
        return JobStatus("failed", message=str(body.get("failureReason") or "no failureReason given"))
    raise MalformedResponse(
        f"amazon report status {status[:40]!r} is not one of PENDING, PROCESSING, COMPLETED, FAILED"
    )


def _no_constant(name: str) -> Any:
    raise MalformedResponse(f"amazon report holds the non-number {name}")


def decode_report_file(resp: httpx.Response) -> Any:
    """The report file: gzip-compressed JSON (A.7). httpx has already inflated it when the
    server declared ``Content-Encoding: gzip``; otherwise the body must carry the gzip magic.
    Numbers are read as Decimal, never float."""
    raw = resp.content
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise MalformedResponse(f"amazon report file is not valid gzip ({len(resp.content)} bytes)") from None
    elif "gzip" not in resp.headers.get("content-encoding", "").lower():
        raise MalformedResponse(f"amazon report file is not gzip ({len(raw)} bytes)")
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        raise MalformedResponse("amazon report file is not JSON after gunzip") from None


def _cost(value: Any, where: str) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MalformedResponse(f"amazon cost {where} is not a finite number")
        return value
    return parse_decimal(value, f"amazon cost {where}")  # ints; decimal strings; refuses the rest


def parse_report_rows(rows: Any, currency: str | None = None) -> dict[dt.date, Decimal]:
    """Daily spend from one campaign report: ``cost`` summed over the campaigns of each ``date``.
    A campaign appears only on days it had activity (A.7); a day with no rows is absent."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"amazon report file is a {type(rows).__name__}, expected a JSON array of rows")
    out: dict[dt.date, Decimal] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedResponse(f"amazon report row {i} is not an object")
        day = parse_day(row.get("date"), f"amazon report row {i}'s date")
        if "cost" not in row or row["cost"] is None:
            raise MalformedResponse(f"amazon report row {i} ({day}) has no cost")
        row_currency = row.get("campaignBudgetCurrencyCode")
        if currency and isinstance(row_currency, str) and row_currency and row_currency.upper() != currency:
            raise MalformedResponse(
                f"amazon report row {i} ({day}) is in {row_currency}, but the profile's currency is {currency}"
            )
        out[day] = out.get(day, Decimal(0)) + _cost(row["cost"], f"in row {i} ({day})")
    return out


def parse_profile(body: Any, profile_id: str) -> AccountInfo:
    if not isinstance(body, dict):
        raise MalformedResponse("amazon profile answer is not a JSON object")
    if str(body.get("profileId")) != profile_id:
        raise MalformedResponse(f"amazon answered for profile {str(body.get('profileId'))[:24]!r}, not {profile_id}")
    currency, timezone = body.get("currencyCode"), body.get("timezone")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MalformedResponse(f"amazon profile {profile_id} has no valid currencyCode")
    if not isinstance(timezone, str) or not timezone:
        raise MalformedResponse(f"amazon profile {profile_id} has no timezone")
    info = body.get("accountInfo") if isinstance(body.get("accountInfo"), dict) else {}
    if info.get("type") == "agency":  # agency profiles serve DSP only (A.3), never sponsored ads
        raise FetchError(
            "request",
            f"amazon profile {profile_id} is an agency (DSP) profile; link the "
            "seller or vendor profile that runs the sponsored ads",
        )
    name = info.get("name") if isinstance(info.get("name"), str) else ""
    return AccountInfo(profile_id, currency.upper(), timezone, name)


def _is_create(resp: httpx.Response) -> bool:
    try:
        request = resp.request
    except RuntimeError:
        return False
    return request.method == "POST" and request.url.path.endswith(REPORTS_PATH)


class _NotEntitled(Exception):
    """The profile cannot use this ad product: it has no spend there (not a failure)."""


# --- the fetcher --------------------------------------------------------------------------------


class AmazonFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["amazon"].lookback_days
    day_basis = SPECS["amazon"].day_basis
    history_days = SPECS["amazon"].history_days

    def normalize_account_id(self, raw: str) -> str:
        value = str(raw).strip()
        if not _PROFILE_ID_RE.match(value):
            raise ValueError(
                f"amazon account id {str(raw)!r} is not an Amazon Ads profile id; "
                "expected the profile id in digits (e.g. 3312456789012345)"
            )
        return value

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        # LWA refresh-token grant with the client credentials in the form body (A.2)
        return OAuthRefreshAuth(
            PLATFORM,
            token_url,
            credential(PLATFORM, credentials, "AMAZON_CLIENT_ID"),
            credential(PLATFORM, credentials, "AMAZON_CLIENT_SECRET"),
            credential(PLATFORM, credentials, "AMAZON_REFRESH_TOKEN"),
            access_token=credentials.get("AMAZON_ACCESS_TOKEN") or None,
            on_rotate=on_rotate,
        )

    def classify(self, resp: httpx.Response) -> Verdict:
        s = resp.status_code
        if 200 <= s < 300:
            return Verdict.ok()
        if s == 425:
            if duplicate_report_id(resp):
                return Verdict.ok()  # the caller adopts the running report's id
            return Verdict(
                "retry",
                "throttled",
                "HTTP 425: an identical report is still being generated",
                retry_after_seconds(resp),
            )
        if s == 400 and _is_create(resp) and not_entitled_product(resp):
            return Verdict.ok()  # the caller records "no spend in this product"
        if s in (401, 403) and _SCOPE_RE.search(error_detail(resp)):
            return Verdict(
                "fail",
                "request",
                f"HTTP {s}: {error_detail(resp)}: these credentials cannot read this profile in "
                "the configured region; check the profile id and AMAZON_ADS_REGION",
            )
        if s == 401:
            return Verdict("refresh", "auth", f"HTTP 401: {error_detail(resp)}")
        if s == 429 or s >= 500:
            return default_verdict(resp)
        return Verdict("fail", "request", f"HTTP {s}: {error_detail(resp)}")

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        profile_id = self.normalize_account_id(account_id)
        region_urls(api.credentials.get("AMAZON_ADS_REGION"))  # a bad region fails as config
        resp = await api.request(
            "GET",
            f"/v2/profiles/{profile_id}",
            headers={"Accept": "application/json", **api_headers(api.credentials, profile_id)},
        )
        return parse_profile(json_body(resp, PLATFORM), profile_id)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        tasks = [asyncio.ensure_future(self.fetch_product(api, account, p, start, end)) for p in AD_PRODUCTS]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:  # a report still running keeps its id for the next run
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        total: dict[dt.date, Decimal] = {}
        for part in parts:
            for day, amount in part.items():
                total[day] = total.get(day, Decimal(0)) + amount
        return total

    async def fetch_product(
        self, api: Api, account: AccountInfo, product: AdProduct, start: dt.date, end: dt.date
    ) -> dict[dt.date, Decimal]:
        """One ad product's daily cost over one window: create (or resume) the report, poll it,
        download it. A profile that cannot use the product has no spend in it."""
        profile_id = account.account_id
        headers = api_headers(api.credentials, profile_id)

        async def submit() -> str:
            resp = await api.request(
                "POST",
                REPORTS_PATH,
                content=json.dumps(build_report_request(product, start, end)).encode(),
                headers={**headers, "Content-Type": CREATE_CONTENT_TYPE, "Accept": CREATE_ACCEPT},
            )
            if resp.status_code == 425:
                return duplicate_report_id(resp) or parse_create_response(resp)
            if resp.status_code == 400:
                refused = not_entitled_product(resp)
                if refused != product.label:
                    raise FetchError(
                        "request", f"amazon refused the {product.report_type} report: {error_detail(resp)}"
                    )
                raise _NotEntitled(refused)
            return parse_create_response(resp)

        async def poll(report_id: str) -> JobStatus:
            resp = await api.request("GET", f"{REPORTS_PATH}/{report_id}", headers=headers)
            return parse_report_status(json_body(resp, PLATFORM))

        async def download(status: JobStatus) -> dict[dt.date, Decimal]:
            # pre-signed S3 URL: the signature is in the query; no Amazon or auth headers (A.7)
            resp = await api.request("GET", status.detail["url"], authed=False, budgeted=False)
            return parse_report_rows(decode_report_file(resp), account.currency)

        try:
            rows = await api.run_report_job(
                submit=submit, poll=poll, download=download, resume_key=resume_key(profile_id, product, start, end)
            )
        except _NotEntitled:
            return {}
        outside = [d for d in rows if not (start <= d <= end)]
        if outside:
            raise MalformedResponse(f"amazon {product.report_type} report for {start}..{end} holds {outside[0]}")
        return rows


FETCHER = AmazonFetcher()
