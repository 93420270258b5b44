"""Snapchat Marketing API: daily spend of one ad account from the ad-account stats endpoint.

Facts: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md, section 5.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .base import AccountInfo, Api, FetchError, MalformedResponse, Verdict
from .core import OAuthRefreshAuth, credential, default_verdict, json_body, micros_to_decimal
from .specs import SPECS

PLATFORM = "snapchat"
API_VERSION = "v1"  # Snap versions the path only as /v1/; no sunset announced (§5.1)
# Snap publishes no maximum span for granularity=DAY (§5.2, §9 UNCONFIRMED). Community tools stay
# within 31 days and the singer tap uses 30: we take the smaller, safer 30.
MAX_DAYS = 30

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- ids and auth -------------------------------------------------------------------------------


def normalize_account_id(raw: str) -> str:
    value = str(raw).strip().lower()
    if not _UUID_RE.match(value):
        raise ValueError(
            f"snapchat: {str(raw)!r} is not a Snapchat ad account id; expected the ad account "
            "UUID as Ads Manager shows it, e.g. 8adc3db7-8148-4fbf-999c-8d2266369d74"
        )
    return value


# --- request building ---------------------------------------------------------------------------


def account_zone(account: AccountInfo) -> ZoneInfo:
    try:
        return ZoneInfo(account.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MalformedResponse(
            f"snapchat ad account {account.account_id} has an unknown timezone {account.timezone!r}"
        ) from None


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant of ``day`` in ``zone``, with that instant's own UTC offset (DST-correct).

    Where midnight does not exist (a DST jump at 00:00), the day starts at the first real instant."""
    wall = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    return wall.astimezone(dt.UTC).astimezone(zone)


def build_stats_params(zone: ZoneInfo, start: dt.date, end: dt.date) -> dict[str, str]:
    """Query for the inclusive days [start, end]: end_time is exclusive, so it is the next midnight (§5.2)."""
    return {
        "granularity": "DAY",
        "fields": "spend",
        "start_time": local_midnight(start, zone).isoformat(),
        "end_time": local_midnight(end + dt.timedelta(days=1), zone).isoformat(),
        "omit_empty": "false",
    }


# --- parsing ------------------------------------------------------------------------------------


def _success(status: Any) -> bool:
    # docs examples show "success", fixtures "SUCCESS" (§5.3)
    return isinstance(status, str) and status.upper() == "SUCCESS"


def error_message(body: Any) -> str:
    """Snap's error body: request_status ERROR with display/debug message and an error code (§5.5)."""
    if not isinstance(body, dict):
        return ""
    text = body.get("display_message") or body.get("debug_message") or ""
    code = body.get("error_code")
    return f"{text} ({code})" if code and text else str(text or code or "")


def parse_account(body: Any, account_id: str) -> AccountInfo:
    try:
        entry = body["adaccounts"][0]
        account = entry["adaccount"]
    except (KeyError, IndexError, TypeError):
        raise MalformedResponse(
            f"snapchat ad account {account_id}: the answer has no adaccounts[0].adaccount"
        ) from None
    if "sub_request_status" in entry and not _success(entry["sub_request_status"]):
        raise FetchError(
            "request",
            f"snapchat ad account {account_id}: {entry.get('sub_request_reason') or entry['sub_request_status']}",
        )
    currency, timezone = account.get("currency"), account.get("timezone")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MalformedResponse(f"snapchat ad account {account_id}: currency missing or not an ISO code ({currency!r})")
    if not isinstance(timezone, str) or not timezone:
        raise MalformedResponse(f"snapchat ad account {account_id}: timezone missing")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MalformedResponse(f"snapchat ad account {account_id}: unknown timezone {timezone!r}") from None
    return AccountInfo(
        account_id=account_id, currency=currency.upper(), timezone=timezone, name=str(account.get("name") or "")
    )


def parse_stats(body: Any, zone: ZoneInfo, account_id: str) -> dict[dt.date, Decimal]:
    """Daily spend from one stats answer: each bucket's local start date -> micros / 1e6."""
    where = f"snapchat stats for ad account {account_id}"
    if not isinstance(body, dict) or not _success(body.get("request_status")):
        raise MalformedResponse(
            f"{where}: request_status is {body.get('request_status') if isinstance(body, dict) else None!r}, "
            "expected SUCCESS"
        )
    stats = body.get("timeseries_stats")
    if not isinstance(stats, list) or not stats:
        raise MalformedResponse(f"{where}: timeseries_stats missing or empty")
    out: dict[dt.date, Decimal] = {}
    for entry in stats:
        if not isinstance(entry, dict):
            raise MalformedResponse(f"{where}: timeseries_stats entry is not an object")
        if not _success(entry.get("sub_request_status")):
            raise FetchError(
                "request",
                f"{where}: sub-request {entry.get('sub_request_status')!r}: "
                f"{entry.get('sub_request_reason') or 'no reason given'}",
            )
        stat = entry.get("timeseries_stat")
        series = stat.get("timeseries") if isinstance(stat, dict) else None
        if not isinstance(series, list):
            raise MalformedResponse(f"{where}: timeseries_stat.timeseries missing")
        if str(stat.get("granularity", "DAY")).upper() != "DAY":
            raise MalformedResponse(f"{where}: granularity {stat.get('granularity')!r}, expected DAY")
        for row in series:
            if not isinstance(row, dict) or not isinstance(row.get("stats"), dict):
                raise MalformedResponse(f"{where}: a timeseries row has no stats object")
            try:
                started = dt.datetime.fromisoformat(str(row["start_time"]))
            except (KeyError, ValueError):
                raise MalformedResponse(f"{where}: a timeseries row has no readable start_time") from None
            if started.tzinfo is None:
                raise MalformedResponse(f"{where}: start_time {row['start_time']!r} has no UTC offset")
            local = started.astimezone(zone)
            day = local.date()
            if local != local_midnight(day, zone):
                raise MalformedResponse(
                    f"{where}: bucket {row['start_time']!r} does not start at the account's midnight"
                )
            if "spend" not in row["stats"]:
                raise MalformedResponse(f"{where}: the {day} bucket has no spend")
            if day in out:
                raise MalformedResponse(f"{where}: {day} appears twice")
            out[day] = micros_to_decimal(row["stats"]["spend"], f"{where}: spend on {day}")
    return out


# --- the fetcher --------------------------------------------------------------------------------


class SnapchatFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["snapchat"].lookback_days
    day_basis = SPECS["snapchat"].day_basis
    history_days = SPECS["snapchat"].history_days

    def normalize_account_id(self, raw: str) -> str:
        return normalize_account_id(raw)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        # refresh grant with client id and secret in the form body (§5.6); Snap's refresh token does
        # not rotate, but should a reply carry a new one, on_rotate keeps it
        return OAuthRefreshAuth(
            platform=PLATFORM,
            token_url=token_url,
            client_id=credential(PLATFORM, credentials, "SNAPCHAT_CLIENT_ID"),
            client_secret=credential(PLATFORM, credentials, "SNAPCHAT_CLIENT_SECRET"),
            refresh_token=credential(PLATFORM, credentials, "SNAPCHAT_REFRESH_TOKEN"),
            access_token=(credentials.get("SNAPCHAT_ACCESS_TOKEN") or None),
            client_auth="body",
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
            if isinstance(body, dict) and str(body.get("request_status", "")).upper() == "ERROR":
                return Verdict("fail", "request", f"Snapchat refused the request: {message or 'no reason given'}")
            return verdict
        if status == 429 and verdict.retry_after is None:
            # Snap's rate-limit headers (§5.5, UNCONFIRMED): X-Rate-Limit-Reset is epoch seconds
            reset = response.headers.get("X-Rate-Limit-Reset", "")
            if re.fullmatch(r"\d+(\.\d+)?", reset.strip()):
                value = float(reset)
                wait = value - time.time() if value > 1e9 else value
                return Verdict("retry", "throttled", "HTTP 429", max(0.0, min(wait, 60.0)))
            return verdict
        if status == 401:
            return Verdict("refresh", "auth", f"HTTP 401: access token rejected ({message or 'unauthorised'})")
        if status == 403:
            return Verdict(
                "fail",
                "request",
                f"HTTP 403: no access to this ad account ({message or 'forbidden'}); "
                "check that the authorising Snapchat user is a member of it",
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
        resp = await api.request("GET", f"/{API_VERSION}/adaccounts/{account_id}")
        return parse_account(json_body(resp, PLATFORM), account_id)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        zone = account_zone(account)
        # stats are not paginated (§5.4): one request per window
        resp = await api.request(
            "GET", f"/{API_VERSION}/adaccounts/{account.account_id}/stats", params=build_stats_params(zone, start, end)
        )
        return parse_stats(json_body(resp, PLATFORM), zone, account.account_id)


FETCHER = SnapchatFetcher()
