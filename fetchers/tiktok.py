"""TikTok API for Business v1.3: daily advertiser spend from the synchronous integrated report.

Source: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md section 3.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from .base import AccountInfo, FetchError, MalformedResponse, PageRequest, Verdict
from .core import StaticTokenAuth, credential, default_verdict, fetch_pages, json_body, parse_decimal
from .specs import SPECS

PLATFORM = "tiktok"
API_VERSION = "v1.3"  # TikTok announces no sunset date for v1.3 (none published, §3.1)
REPORT_PATH = f"/open_api/{API_VERSION}/report/integrated/get/"  # the trailing slash matters (§3.1)
ADVERTISER_INFO_PATH = f"/open_api/{API_VERSION}/advertiser/info/"
MAX_DAYS = 30  # "max time span is 30 days when use stat_time_day" (§3.2)
PAGE_SIZE = 1000  # the largest page TikTok serves (§3.4)
MAX_PAGES = 1000  # total_page past this is a paging loop, not data

DIMENSIONS = ("advertiser_id", "stat_time_day")
METRICS = ("spend",)  # spend = cash_spend + voucher_spend: the whole billed figure (§3.3)

# In-body codes (HTTP 200, `code` != 0; §3.5, official SDK tiktok_code.py).
THROTTLE_CODES = {40100, 40132, 40133, 61000}
TRANSIENT_CODES = {50000, 50002}  # and every 51xxx
EXPIRED_TOKEN_CODES = {40102}
BAD_TOKEN_CODES = {
    40101: "the app id/secret is invalid",
    40104: "no access token was sent",
    40105: "the access token is incorrect or has been revoked",
}
PERMISSION_CODES = {40001}

_DIGITS = re.compile(r"^\d{6,20}$")
_DAY_LABEL = re.compile(r"^(\d{4}-\d{2}-\d{2})(?: 00:00:00)?$")


def json_array(values) -> str:
    """TikTok's array parameters travel as JSON text inside the query string (§3.2)."""
    return json.dumps(list(values), separators=(",", ":"))


def build_report_params(
    advertiser_id: str, start: dt.date, end: dt.date, page: int, page_size: int = PAGE_SIZE
) -> dict[str, str]:
    return {
        "advertiser_id": advertiser_id,
        "service_type": "AUCTION",
        "report_type": "BASIC",
        "data_level": "AUCTION_ADVERTISER",
        "dimensions": json_array(DIMENSIONS),
        "metrics": json_array(METRICS),
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "page": str(page),
        "page_size": str(page_size),
    }


def build_advertiser_info_params(advertiser_id: str) -> dict[str, str]:
    return {
        "advertiser_ids": json_array([advertiser_id]),
        "fields": json_array(["advertiser_id", "name", "currency", "timezone", "display_timezone"]),
    }


def _data(body: Any, what: str) -> dict:
    if not isinstance(body, dict) or body.get("code") != 0 or not isinstance(body.get("data"), dict):
        raise MalformedResponse(f"tiktok {what}: the body has no `code: 0` envelope with a `data` object")
    return body["data"]


def parse_report_page(body: Any, advertiser_id: str) -> tuple[list[tuple[dt.date, Decimal | None]], int, int]:
    """One page of the integrated report: ([(day, spend or None for an empty metric)], total_page,
    total_number)."""
    data = _data(body, "report")
    rows, info = data.get("list"), data.get("page_info")
    if not isinstance(rows, list) or not isinstance(info, dict):
        raise MalformedResponse("tiktok report: `data.list` or `data.page_info` is missing")
    total_page, total_number = info.get("total_page"), info.get("total_number")
    if (
        not isinstance(total_page, int)
        or isinstance(total_page, bool)
        or not isinstance(total_number, int)
        or isinstance(total_number, bool)
    ):
        raise MalformedResponse("tiktok report: `page_info.total_page`/`total_number` are not integers")
    out = []
    for row in rows:
        dims = row.get("dimensions") if isinstance(row, dict) else None
        metrics = row.get("metrics") if isinstance(row, dict) else None
        if not isinstance(dims, dict) or not isinstance(metrics, dict):
            raise MalformedResponse("tiktok report: a row has no `dimensions`/`metrics` object")
        if str(dims.get("advertiser_id")) != advertiser_id:
            raise MalformedResponse(
                f"tiktok report: a row belongs to advertiser {dims.get('advertiser_id')!r}, not {advertiser_id}"
            )
        label = dims.get("stat_time_day")
        m = _DAY_LABEL.match(label) if isinstance(label, str) else None
        if not m:
            raise MalformedResponse(f"tiktok report: stat_time_day {str(label)[:30]!r} is not a day label")
        day = dt.date.fromisoformat(m.group(1))
        if "spend" not in metrics:
            raise MalformedResponse(f"tiktok report: the row for {day} has no `spend` metric")
        spend = metrics["spend"]
        # "-" is TikTok's empty metric (§3.3): no spend recorded, the same as an omitted day.
        out.append((day, None if spend == "-" else parse_decimal(spend, f"tiktok spend for {day}")))
    return out, total_page, total_number


class ReportPages:
    """The integrated report paged by number (``page`` 1..``page_info.total_page``, §3.4)."""

    what = "tiktok report"

    def __init__(self, advertiser_id: str, start: dt.date, end: dt.date, page_size: int = PAGE_SIZE):
        self.advertiser_id, self.start, self.end, self.page_size = advertiser_id, start, end, page_size
        self.page, self.rows = 1, 0
        self.total_number: int | None = None  # page_info.total_number of the first page

    def _request(self) -> PageRequest:
        return PageRequest(
            "GET",
            REPORT_PATH,
            params=build_report_params(self.advertiser_id, self.start, self.end, self.page, self.page_size),
        )

    def first(self) -> PageRequest:
        return self._request()

    def read(self, body: Any) -> tuple[dict[dt.date, Decimal | None], PageRequest | None]:
        rows, total_page, total_number = parse_report_page(body, self.advertiser_id)
        # The report is not a snapshot: rows can move between pages (§3.4). A changed total means
        # the pages no longer add up, so refuse rather than drop or double-count a day.
        if self.total_number is None:
            self.total_number = total_number
        elif total_number != self.total_number:
            raise FetchError(
                "server",
                f"tiktok: the report for advertiser {self.advertiser_id} changed while it was being paged; try again",
            )
        days: dict[dt.date, Decimal | None] = {}
        for day, spend in rows:
            if day in days:
                raise MalformedResponse(f"tiktok report: day {day} appears twice for advertiser {self.advertiser_id}")
            days[day] = spend
        self.rows += len(days)
        if self.page < total_page:
            self.page += 1
            return days, self._request()
        if self.rows != self.total_number:
            raise MalformedResponse(f"tiktok report: {self.rows} rows arrived but page_info said {self.total_number}")
        return days, None


def parse_advertiser_info(body: Any, advertiser_id: str) -> AccountInfo:
    rows = _data(body, "advertiser/info").get("list")
    if not isinstance(rows, list):
        raise MalformedResponse("tiktok advertiser/info: `data.list` is missing")
    row = next((r for r in rows if isinstance(r, dict) and str(r.get("advertiser_id")) == advertiser_id), None)
    if row is None:
        raise FetchError(
            "request",
            f"tiktok: advertiser {advertiser_id} is not among the advertisers this "
            "access token may read; authorise it for the app",
        )
    currency = row.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedResponse(f"tiktok advertiser/info: currency {str(currency)[:10]!r} is not an ISO code")
    # `timezone` is a "timezone code"; `display_timezone` as an IANA name is UNCONFIRMED (§3.7, §9):
    # take whichever is a real IANA zone, preferring the display name, and refuse to guess otherwise.
    for key in ("display_timezone", "timezone"):
        tz = row.get(key)
        if isinstance(tz, str) and tz:
            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
            return AccountInfo(advertiser_id, currency, tz, str(row.get("name") or ""))
    raise MalformedResponse(
        f"tiktok advertiser/info: no IANA timezone for advertiser {advertiser_id} "
        f"(timezone={str(row.get('timezone'))[:40]!r})"
    )


QUERY_TOO_LARGE = 40067  # "Your query is too large": halve the window and ask again (§3.5)


def verdict_for_code(code: int, message: str, request_id: str = "") -> Verdict:
    """The action for one in-body TikTok code (§3.5)."""
    detail = f"code {code}: {message}" + (f" (request_id {request_id})" if request_id else "")
    if code == 0:
        return Verdict.ok()
    if code in THROTTLE_CODES:
        return Verdict("retry", "throttled", f"rate limited ({detail})")
    if code in TRANSIENT_CODES or 51000 <= code < 52000:
        return Verdict("retry", "server", f"TikTok system error ({detail})")
    if code in EXPIRED_TOKEN_CODES:
        # Advertiser tokens have no refresh flow (§3.6): the core turns this into an auth failure.
        return Verdict("refresh", "auth", f"the access token has expired ({detail}); set a new TIKTOK_ACCESS_TOKEN")
    if code in BAD_TOKEN_CODES:
        return Verdict(
            "fail",
            "auth",
            f"{BAD_TOKEN_CODES[code]} ({detail}); re-authorise the app and set "
            "TIKTOK_ACCESS_TOKEN" + ("/TIKTOK_APP_SECRET" if code == 40101 else ""),
        )
    if code == QUERY_TOO_LARGE:
        return Verdict("fail", "too_large", f"the query is too large ({detail})")
    if code in PERMISSION_CODES:
        return Verdict(
            "fail",
            "request",
            f"no permission for this advertiser ({detail}); authorise the advertiser for this app's access token",
        )
    return Verdict("fail", "request", f"TikTok refused the request ({detail})")


class TikTokFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["tiktok"].lookback_days
    day_basis = SPECS["tiktok"].day_basis
    history_days = SPECS["tiktok"].history_days
    page_size = PAGE_SIZE

    def normalize_account_id(self, raw: str) -> str:
        value = str(raw).strip()
        if not _DIGITS.match(value):
            raise ValueError(
                f"tiktok: {str(raw)!r} is not a TikTok advertiser id; expected digits such as 7123456789012345"
            )
        return value

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Access-Token": token}  # not Authorization: Bearer (§3.1)

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> StaticTokenAuth:
        return StaticTokenAuth(credential(PLATFORM, credentials, "TIKTOK_ACCESS_TOKEN"))

    def classify(self, response: httpx.Response) -> Verdict:
        verdict = default_verdict(response)
        if verdict.action != "ok":
            return verdict
        try:
            body = response.json()
        except ValueError:
            return Verdict(
                "fail",
                "malformed",
                f"sent a body that is not JSON (HTTP {response.status_code}, {len(response.content)} bytes)",
            )
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return Verdict("fail", "malformed", "the body has no integer `code` (TikTok's error envelope)")
        return verdict_for_code(code, str(body.get("message", ""))[:200], str(body.get("request_id", "")))

    async def account_info(self, api, account_id: str) -> AccountInfo:
        advertiser_id = self.normalize_account_id(account_id)
        resp = await api.request("GET", ADVERTISER_INFO_PATH, params=build_advertiser_info_params(advertiser_id))
        return parse_advertiser_info(json_body(resp, PLATFORM), advertiser_id)

    async def fetch_daily(self, api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        return await fetch_pages(api, ReportPages(account.account_id, start, end, self.page_size), MAX_PAGES)


FETCHER = TikTokFetcher()
