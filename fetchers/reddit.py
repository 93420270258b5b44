"""Reddit Ads API v3: daily spend of one ad account from the reports endpoint.

Facts: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md, section 7.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .base import AccountInfo, Api, MalformedResponse, PageRequest, Verdict
from .core import OAuthRefreshAuth, credential, default_verdict, fetch_pages, json_body, micros_to_decimal, parse_day
from .specs import SPECS

PLATFORM = "reddit"
API_VERSION = "v3"  # /api/v3; no sunset announced (§7.1)
API_PREFIX = f"/api/{API_VERSION}"
# No documented maximum range per report (§7.2, §9 UNCONFIRMED), and a report pages
# (``pagination.next_url``): one report per account for any range Reddit still serves (24 months).
MAX_DAYS = 730
PAGE_SIZE = 1000  # page.size goes up to 1000 (§7.4)
MAX_PAGES = 500
# A unique, descriptive User-Agent is required on API and token calls (§7.1, §7.6).
USER_AGENT = "server:ad-spend-hub:1.0 (daily ad spend sync)"

_ID_RE = re.compile(r"^(a2|t2)_([A-Za-z0-9][A-Za-z0-9_-]*)$", re.IGNORECASE)


# --- ids and auth -------------------------------------------------------------------------------


def normalize_account_id(raw: str) -> str:
    m = _ID_RE.match(str(raw).strip())
    if not m:
        raise ValueError(
            f"reddit: {str(raw)!r} is not a Reddit ad account id; expected the id as Reddit Ads "
            "shows it: a2_ or t2_ followed by letters and digits, e.g. a2_abc123"
        )
    return f"{m.group(1).lower()}_{m.group(2)}"


# --- request building ---------------------------------------------------------------------------


def _zone(name: str, account_id: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MalformedResponse(f"reddit ad account {account_id} has an unknown time zone {name!r}") from None


def _floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def report_range(zone: ZoneInfo, start: dt.date, end: dt.date) -> tuple[str, str]:
    """starts_at / ends_at for the inclusive days [start, end] of an account in ``zone``.

    Whether ends_at is exclusive, and whether a "Z" time is read as an instant or as wall time in
    time_zone_id, is UNCONFIRMED (§7.2, §9). So the range spans both readings: from the earlier
    of (local midnight of start, start 00:00Z) to the later of (local midnight after end,
    end+1 00:00Z), on whole hours (§7.2: times must fall on the hour). Every requested day is
    then whole under either reading; the partial neighbour days this may add are dropped by
    ``parse_report_page``, so nothing is lost or counted twice."""
    utc = dt.UTC

    def local(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(utc)

    def wall(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=utc)

    after = end + dt.timedelta(days=1)
    lo = _floor_hour(min(local(start), wall(start)))
    hi = _ceil_hour(max(local(after), wall(after)))
    return lo.strftime("%Y-%m-%dT%H:00:00Z"), hi.strftime("%Y-%m-%dT%H:00:00Z")


def build_report_body(account: AccountInfo, start: dt.date, end: dt.date) -> dict:
    starts_at, ends_at = report_range(_zone(account.timezone, account.account_id), start, end)
    return {
        "data": {
            "starts_at": starts_at,
            "ends_at": ends_at,
            "breakdowns": ["DATE"],
            "fields": ["SPEND"],
            "time_zone_id": account.timezone,
        }
    }


def next_page_path(next_url: Any, account_id: str) -> str | None:
    """The path+query of ``pagination.next_url`` (None on the last page).

    It is resolved against our configured base URL, so the bearer token only goes to the host we
    were told to use; it must name the same reports endpoint."""
    if next_url is None or next_url == "":
        return None
    if not isinstance(next_url, str):
        raise MalformedResponse(f"reddit report for {account_id}: pagination.next_url is not a URL")
    parts = urllib.parse.urlsplit(next_url)
    if parts.path != f"{API_PREFIX}/ad_accounts/{account_id}/reports":
        raise MalformedResponse(
            f"reddit report for {account_id}: pagination.next_url points elsewhere ({parts.path[:80]!r})"
        )
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- parsing ------------------------------------------------------------------------------------


def error_message(body: Any) -> str:
    """Both of Reddit's error shapes (§7.5): error.code/message and success=false error.reason/explanation."""
    if not isinstance(body, dict):
        return ""
    err = body.get("error")
    if isinstance(err, dict):
        text = err.get("message") or err.get("explanation") or ""
        reason = err.get("reason") or ""
        return f"{reason}: {text}" if reason and text else str(text or reason or err.get("code") or "")
    if isinstance(err, str):
        return err
    return str(body.get("message") or "")


def parse_account(body: Any, account_id: str) -> AccountInfo:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise MalformedResponse(f"reddit ad account {account_id}: the answer has no data object")
    currency, timezone = data.get("currency"), data.get("time_zone_id")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MalformedResponse(f"reddit ad account {account_id}: currency missing or not an ISO code ({currency!r})")
    if not isinstance(timezone, str) or not timezone:
        raise MalformedResponse(f"reddit ad account {account_id}: time_zone_id missing")
    _zone(timezone, account_id)
    return AccountInfo(
        account_id=account_id, currency=currency.upper(), timezone=timezone, name=str(data.get("name") or "")
    )


def parse_report_page(body: Any, start: dt.date, end: dt.date, account_id: str) -> tuple[dict[dt.date, Decimal], Any]:
    """Daily spend (micros / 1e6) of the rows dated inside [start, end], and ``pagination.next_url``."""
    where = f"reddit report for {account_id}"
    data = body.get("data") if isinstance(body, dict) else None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, list):
        raise MalformedResponse(f"{where}: data.metrics missing")
    pagination = body.get("pagination")
    if pagination is not None and not isinstance(pagination, dict):
        raise MalformedResponse(f"{where}: pagination is not an object")
    out: dict[dt.date, Decimal] = {}
    for row in metrics:
        if not isinstance(row, dict):
            raise MalformedResponse(f"{where}: a metrics row is not an object")
        day = parse_day(row.get("date"), f"{where}: a metrics row's date")
        if "spend" not in row:
            raise MalformedResponse(f"{where}: the {day} row has no spend")
        amount = micros_to_decimal(row["spend"], f"{where}: spend on {day}")
        if not (start <= day <= end):
            continue  # a partial neighbour day of the widened range (see report_range)
        if day in out:
            raise MalformedResponse(f"{where}: {day} appears twice")
        out[day] = amount
    return out, (pagination or {}).get("next_url")


class ReportPages:
    """The report paged by next URL: every page is a POST of the same body to
    ``pagination.next_url``, which carries page.token (§7.4)."""

    def __init__(self, account: AccountInfo, start: dt.date, end: dt.date):
        self.account_id, self.start, self.end = account.account_id, start, end
        self.what = f"reddit report for {account.account_id}"
        self.body = build_report_body(account, start, end)

    def first(self) -> PageRequest:
        return PageRequest(
            "POST",
            f"{API_PREFIX}/ad_accounts/{self.account_id}/reports",
            params={"page.size": str(PAGE_SIZE)},
            json=self.body,
        )

    def read(self, body: Any) -> tuple[dict[dt.date, Decimal], PageRequest | None]:
        rows, next_url = parse_report_page(body, self.start, self.end, self.account_id)
        path = next_page_path(next_url, self.account_id)
        return rows, (PageRequest("POST", path, json=self.body) if path is not None else None)


# --- the fetcher --------------------------------------------------------------------------------


class RedditFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["reddit"].lookback_days
    day_basis = SPECS["reddit"].day_basis
    history_days = SPECS["reddit"].history_days

    def normalize_account_id(self, raw: str) -> str:
        return normalize_account_id(raw)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        # HTTP Basic client auth and a User-Agent on the token call; the reply may carry a new
        # refresh token, which on_rotate persists (§7.6)
        return OAuthRefreshAuth(
            platform=PLATFORM,
            token_url=token_url,
            client_id=credential(PLATFORM, credentials, "REDDIT_CLIENT_ID"),
            client_secret=credential(PLATFORM, credentials, "REDDIT_CLIENT_SECRET"),
            refresh_token=credential(PLATFORM, credentials, "REDDIT_REFRESH_TOKEN"),
            access_token=(credentials.get("REDDIT_ACCESS_TOKEN") or None),
            client_auth="basic",
            extra_headers={"User-Agent": USER_AGENT},
            on_rotate=on_rotate,
        )

    def classify(self, response: httpx.Response) -> Verdict:
        verdict = default_verdict(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        message = error_message(body)
        status = response.status_code
        if verdict.action == "ok":
            if isinstance(body, dict) and body.get("success") is False:
                return Verdict("fail", "request", f"Reddit refused the request: {message or 'no reason given'}")
            return verdict
        if status == 401:
            return Verdict("refresh", "auth", f"HTTP 401: access token rejected ({message or 'unauthorised'})")
        if status == 403 and "scope" in message.lower():
            return Verdict("fail", "auth", f"HTTP 403: {message}; re-authorise with the adsread scope")
        if status == 403:
            return Verdict(
                "fail",
                "request",
                f"HTTP 403: no access to this ad account ({message or 'forbidden'}); "
                "check that the authorising Reddit user can see it",
            )
        if status == 404:
            return Verdict(
                "fail", "request", f"HTTP 404: ad account not found ({message or 'not found'}); check the id"
            )
        if verdict.action == "fail" and message:
            return Verdict("fail", verdict.kind, f"HTTP {status}: {message}")
        return verdict

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        account_id = normalize_account_id(account_id)
        resp = await api.request("GET", f"{API_PREFIX}/ad_accounts/{account_id}")
        return parse_account(json_body(resp, PLATFORM), account_id)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        return await fetch_pages(api, ReportPages(account, start, end), MAX_PAGES)


FETCHER = RedditFetcher()
