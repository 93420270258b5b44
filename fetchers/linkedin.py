"""LinkedIn Marketing API (versioned REST): daily account spend from ``/rest/adAnalytics``.

Source: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md section 4.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from .base import AccountInfo, FetchError, MalformedResponse, Verdict
from .core import OAuthRefreshAuth, StaticTokenAuth, credential, default_verdict, json_body, parse_decimal
from .specs import SPECS

PLATFORM = "linkedin"
# Monthly versions live about a year (§4.1): 202609 goes away around 2027-09 (sunset date not
# published; estimate from "roughly a year"). Bump it every 6-9 months (§4.8).
LINKEDIN_VERSION = "202609"
LINKEDIN_VERSION_SUNSET = dt.date(2027, 9, 1)
# An operator can move to a newer monthly version without a release: LINKEDIN_API_VERSION=YYYYMM.
VERSION_ENV = "LINKEDIN_API_VERSION"
RESTLI_PROTOCOL_VERSION = "2.0.0"
ANALYTICS_PATH = "/rest/adAnalytics"
AD_ACCOUNT_PATH = "/rest/adAccounts/{id}"
# adAnalytics does not page and documents no range cap (§4.4); an answer holds at most 15,000
# elements, and one account's DAILY rows are one element a day: any range we ask fits one request.
# The 30-day windows of other connectors are a convention (§8), not a limit.
MAX_DAYS = 15_000

# costInLocalCurrency is the billed figure in the account's currency; costInUsd is a conversion
# and never used for billing (§4.3). Without `fields` only impressions and clicks come back (§4.2).
FIELDS = ("dateRange", "pivotValues", "costInLocalCurrency")

URN_PREFIX = "urn:li:sponsoredAccount:"
_ACCOUNT = re.compile(r"^(?:urn:li:sponsoredAccount:)?(\d{1,20})$")


def account_number(urn: str) -> str:
    return urn[len(URN_PREFIX) :] if urn.startswith(URN_PREFIX) else urn


def restli_date(d: dt.date) -> str:
    return f"(year:{d.year},month:{d.month},day:{d.day})"


def build_analytics_query(account_urn: str, start: dt.date, end: dt.date) -> str:
    """The raw query string. Rest.li 2.0 syntax characters ( ) , : travel unencoded, but the URN's
    colons inside List(...) must be %3A (§4.2): a generic encoder gets one of the two wrong, so the
    string is built here and handed to httpx whole."""
    return "&".join(
        [
            "q=analytics",
            "pivot=ACCOUNT",
            "timeGranularity=DAILY",
            f"dateRange=(start:{restli_date(start)},end:{restli_date(end)})",  # end is inclusive
            f"accounts=List({urllib.parse.quote(account_urn, safe='')})",
            "fields=" + ",".join(FIELDS),
        ]
    )


def linkedin_version() -> str:
    """The ``LinkedIn-Version`` sent: ``LINKEDIN_API_VERSION`` when set (``YYYYMM``), else the
    version this release was written against."""
    raw = os.environ.get(VERSION_ENV, "").strip()
    if not raw:
        return LINKEDIN_VERSION
    if not re.fullmatch(r"20\d{2}(0[1-9]|1[0-2])", raw):
        raise FetchError(
            "config",
            f"{VERSION_ENV} must be a LinkedIn monthly version YYYYMM such as {LINKEDIN_VERSION}, not {raw[:20]!r}",
        )
    return raw


def version_headers() -> dict[str, str]:
    return {"LinkedIn-Version": linkedin_version(), "X-Restli-Protocol-Version": RESTLI_PROTOCOL_VERSION}


def _date_of(value: Any) -> dt.date:
    if not isinstance(value, dict):
        raise MalformedResponse("linkedin adAnalytics: a dateRange bound is not an object")
    try:
        parts = [value[k] for k in ("year", "month", "day")]
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
            raise TypeError
        return dt.date(*parts)
    except (KeyError, TypeError, ValueError):
        raise MalformedResponse(f"linkedin adAnalytics: {str(value)[:60]!r} is not a year/month/day date") from None


def parse_analytics(body: Any, account_urn: str) -> dict[dt.date, Decimal]:
    """Daily rows of one account: {UTC day: costInLocalCurrency}."""
    elements = body.get("elements") if isinstance(body, dict) else None
    if not isinstance(elements, list):
        raise MalformedResponse("linkedin adAnalytics: the body has no `elements` list")
    paging = body.get("paging")
    links = paging.get("links") if isinstance(paging, dict) else None
    # adAnalytics is documented not to page (§4.4); a "next" link would mean rows we would drop.
    if isinstance(links, list) and any(isinstance(l, dict) and l.get("rel") == "next" for l in links):
        raise MalformedResponse(
            "linkedin adAnalytics: the response is paged, which the API documents it never is; refusing to drop rows"
        )
    out: dict[dt.date, Decimal] = {}
    for el in elements:
        if not isinstance(el, dict):
            raise MalformedResponse("linkedin adAnalytics: an element is not an object")
        pivots = el.get("pivotValues")
        if pivots is not None and pivots != [account_urn]:
            raise MalformedResponse(f"linkedin adAnalytics: a row belongs to {str(pivots)[:80]}, not {account_urn}")
        rng = el.get("dateRange")
        if not isinstance(rng, dict):
            raise MalformedResponse("linkedin adAnalytics: a row has no dateRange (was `fields` dropped?)")
        day, last = _date_of(rng.get("start")), _date_of(rng.get("end", rng.get("start")))
        if day != last:
            raise MalformedResponse(f"linkedin adAnalytics: row {day}..{last} is not one day (DAILY granularity)")
        if "costInLocalCurrency" not in el:
            raise MalformedResponse(
                f"linkedin adAnalytics: the row for {day} has no costInLocalCurrency "
                "(only impressions/clicks come back when `fields` is lost, §4.8)"
            )
        if day in out:
            raise MalformedResponse(f"linkedin adAnalytics: day {day} appears twice for {account_urn}")
        out[day] = parse_decimal(el["costInLocalCurrency"], f"linkedin costInLocalCurrency for {day}")
    return out


def parse_ad_account(body: Any, account_urn: str) -> AccountInfo:
    if not isinstance(body, dict):
        raise MalformedResponse("linkedin adAccounts: the body is not an object")
    currency = body.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedResponse(f"linkedin adAccounts: currency {str(currency)[:10]!r} is not an ISO code")
    # The ad account has no timezone field; reporting days are UTC (§4.7).
    return AccountInfo(account_urn, currency, "UTC", str(body.get("name") or ""))


def _error_fields(resp: httpx.Response) -> tuple[str, str]:
    try:
        body = resp.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("code") or ""), str(body.get("message") or "")[:200]


class LinkedInFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["linkedin"].lookback_days
    day_basis = SPECS["linkedin"].day_basis
    history_days = SPECS["linkedin"].history_days

    def normalize_account_id(self, raw: str) -> str:
        m = _ACCOUNT.match(str(raw).strip())
        if not m:
            raise ValueError(
                f"linkedin: {str(raw)!r} is not a LinkedIn ad account id; expected "
                "urn:li:sponsoredAccount:123456 or 123456"
            )
        return URN_PREFIX + m.group(1)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> StaticTokenAuth | OAuthRefreshAuth:
        access = credentials.get("LINKEDIN_ACCESS_TOKEN") or None
        refresh, cid, secret = (
            credentials.get(k) for k in ("LINKEDIN_REFRESH_TOKEN", "LINKEDIN_CLIENT_ID", "LINKEDIN_CLIENT_SECRET")
        )
        if refresh and cid and secret and token_url:
            # Refresh grant: form-encoded, client id and secret in the body (§4.6).
            return OAuthRefreshAuth(
                PLATFORM, token_url, cid, secret, refresh, access_token=access, client_auth="body", on_rotate=on_rotate
            )
        return StaticTokenAuth(credential(PLATFORM, credentials, "LINKEDIN_ACCESS_TOKEN"))

    def classify(self, response: httpx.Response) -> Verdict:
        verdict = default_verdict(response)
        if verdict.action == "ok":
            return verdict
        code, message = _error_fields(response)
        detail = f"{code}: {message}" if code else message or f"HTTP {response.status_code}"
        if response.status_code == 426 or code == "NONEXISTENT_VERSION":
            return Verdict(
                "fail",
                "config",
                f"LinkedIn-Version {linkedin_version()} is no longer active ({detail}); "
                f"set {VERSION_ENV} to a current YYYYMM (or bump LINKEDIN_VERSION "
                "in fetchers/linkedin.py)",
            )
        if response.status_code == 401:
            return Verdict("refresh", "auth", f"HTTP 401, the access token was rejected ({detail})")
        if response.status_code == 403:
            return Verdict(
                "fail",
                "request",
                f"HTTP 403, no access to this ad account ({detail}); the token needs "
                "r_ads and r_ads_reporting and a role on the account",
            )
        if verdict.action == "fail":
            return Verdict("fail", verdict.kind, f"HTTP {response.status_code}: {detail}")
        return verdict

    async def account_info(self, api, account_id: str) -> AccountInfo:
        urn = self.normalize_account_id(account_id)
        # Also the access check: adAnalytics answers an empty list, not an error, for an account
        # the token cannot read (§4.3), while adAccounts/{id} refuses it.
        resp = await api.request("GET", AD_ACCOUNT_PATH.format(id=account_number(urn)), headers=version_headers())
        return parse_ad_account(json_body(resp, PLATFORM), urn)

    async def fetch_daily(self, api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        query = build_analytics_query(account.account_id, start, end)
        resp = await api.request("GET", f"{ANALYTICS_PATH}?{query}", headers=version_headers())
        return parse_analytics(json_body(resp, PLATFORM), account.account_id)


FETCHER = LinkedInFetcher()
