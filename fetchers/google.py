"""Google Ads API over REST: daily customer cost from ``googleAds:searchStream`` with GAQL.

Facts: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md, section 2
(cited below as "§2.x")."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from .base import AccountInfo, Api, FetchError, MalformedResponse, Verdict
from .core import (
    OAuthRefreshAuth,
    credential,
    default_verdict,
    json_body,
    micros_to_decimal,
    parse_day,
    redact,
    retry_after_seconds,
)
from .specs import SPECS

PLATFORM = "google"
# Google ships several versions a year and sunsets each about a year after release (§2.1); v26 is
# "the latest active version" in late-2026 docs, so expect it to be retired around late 2027
# (exact date UNCONFIRMED). A retired version answers 404, reported as a config error naming this.
API_VERSION = "v26"
API_VERSION_SUNSET = "about a year after release, late 2027 (UNCONFIRMED, §2.1)"
# No documented cap on a customer-level daily range (§0, §2.2: "use BETWEEN"): one request per
# account for any range we ask; searchStream splits a long answer into batches (§2.4).
MAX_DAYS = 10_000

# REST JSON is camelCase (§2.3). The customer's currency and time zone ride along in every row of
# the spend query (§2.2), so a window's answer also says what the account is.
SPEND_FIELDS = ("segments.date", "metrics.costMicros")
CUSTOMER_FIELDS = ("customer.currencyCode", "customer.timeZone")
# §2.5: error families are the keys of errorCode; these values need the operator, not a retry.
DEVELOPER_TOKEN_ERRORS = frozenset(
    {
        "DEVELOPER_TOKEN_PARAMETER_MISSING",
        "DEVELOPER_TOKEN_INVALID",
        "DEVELOPER_TOKEN_PROHIBITED",
        "DEVELOPER_TOKEN_HEADER_INVALID",
    }
)
PROJECT_ACCESS_ERRORS = frozenset(
    {"DEVELOPER_TOKEN_NOT_APPROVED", "CLOUD_PROJECT_NOT_APPROVED_FOR_PRODUCTION", "ACTION_NOT_PERMITTED"}
)
TRANSIENT_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"})

_ACCOUNT_RE = re.compile(r"^(\d{3})-?(\d{3})-?(\d{4})$")
_DELAY_RE = re.compile(r"^(\d+)(?:\.(\d+))?s$")  # protobuf Duration JSON: "60s", "0.5s"


# --- ids, headers, auth -------------------------------------------------------------------------


def normalize_account_id(raw: str) -> str:
    m = _ACCOUNT_RE.match(str(raw).strip())
    if not m:
        raise ValueError(
            f"google: {raw!r} is not a Google Ads customer id; expected 10 digits such as 123-456-7890 or 1234567890"
        )
    return "".join(m.groups())


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    """``developer-token`` and, when set, ``login-customer-id`` (the manager account, digits only).

    Since 2026-09-09 Google ignores the developer-token header, and a later version may reject it
    (UNCONFIRMED, §2.1); while that is unconfirmed we keep sending the configured token, which every
    version before the sunset required."""
    headers: dict[str, str] = {}
    dev = credentials.get("GOOGLE_ADS_DEVELOPER_TOKEN")
    if dev:
        headers["developer-token"] = dev
    login = credentials.get("GOOGLE_ADS_LOGIN_CUSTOMER_ID")
    if login:
        try:
            headers["login-customer-id"] = normalize_account_id(login)
        except ValueError:
            raise FetchError(
                "config",
                f"google: GOOGLE_ADS_LOGIN_CUSTOMER_ID {login!r} is not a customer id; "
                "expected the manager account's 10 digits, e.g. 123-456-7890",
            ) from None
    return headers


def search_stream_path(customer_id: str) -> str:
    return f"/{API_VERSION}/customers/{customer_id}/googleAds:searchStream"


def build_spend_query(start: dt.date, end: dt.date) -> str:
    # FROM customer covers every campaign type; ad-level reports under-count (§2.8).
    return (
        "SELECT segments.date, customer.currency_code, customer.time_zone, customer.descriptive_name, "
        "metrics.cost_micros FROM customer "
        f"WHERE segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}' "
        "ORDER BY segments.date"
    )


ACCOUNT_QUERY = (
    "SELECT customer.id, customer.currency_code, customer.time_zone, customer.descriptive_name FROM customer"
)


# --- errors -------------------------------------------------------------------------------------


def rpc_error(body: Any) -> dict | None:
    """The google.rpc.Status of an error answer: ``{"error": {...}}``, or for searchStream the same
    wrapped in an array, possibly after result batches (§2.5)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    if isinstance(body, list):
        for item in body:
            if isinstance(item, dict) and isinstance(item.get("error"), dict):
                return item["error"]
    return None


def _duration(value: Any) -> float | None:
    m = _DELAY_RE.match(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    whole, frac = m.group(1), m.group(2) or ""
    return int(whole) + (int(frac) / 10 ** len(frac) if frac else 0)


def failure_details(err: dict) -> tuple[list[str], list[str], float | None]:
    """(error code values as ``family.VALUE``, their messages, retryDelay seconds) of a Status."""
    codes, messages, delay = [], [], None
    for detail in err.get("details") or []:
        if not isinstance(detail, dict):
            continue
        delay = delay if delay is not None else _duration(detail.get("retryDelay"))  # google.rpc.RetryInfo
        for e in detail.get("errors") or []:  # GoogleAdsFailure
            if not isinstance(e, dict):
                continue
            for family, value in (e.get("errorCode") or {}).items():
                codes.append(f"{family}.{value}")
            if e.get("message"):
                messages.append(str(e["message"]))
            quota = (e.get("details") or {}).get("quotaErrorDetails") or {}
            if delay is None and isinstance(quota, dict):
                delay = _duration(quota.get("retryDelay"))
    return codes, messages, delay


def classify(resp: httpx.Response) -> Verdict:
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = rpc_error(body)
    if err is None:
        if resp.status_code == 404:
            return Verdict(
                "fail",
                "config",
                f"Google Ads answered HTTP 404 for API {API_VERSION}: the version may be "
                "retired (update API_VERSION in fetchers/google.py) or "
                "GOOGLE_ADS_API_BASE_URL points at the wrong host",
            )
        return default_verdict(resp)
    status = str(err.get("status") or "")
    codes, messages, delay = failure_details(err)
    values = {c.split(".", 1)[1] for c in codes}
    what = redact("; ".join([str(err.get("message") or status or "error"), *messages, *codes]))[:400]
    if status == "RESOURCE_EXHAUSTED" or resp.status_code == 429 or any(c.startswith("quotaError.") for c in codes):
        return Verdict(
            "retry", "throttled", f"Google Ads quota: {what}", delay if delay is not None else retry_after_seconds(resp)
        )
    if values & DEVELOPER_TOKEN_ERRORS:
        return Verdict(
            "fail", "auth", f"Google Ads refused the developer token ({what}): check GOOGLE_ADS_DEVELOPER_TOKEN"
        )
    if values & PROJECT_ACCESS_ERRORS:
        return Verdict(
            "fail",
            "config",
            f"Google Ads refused this app's access level ({what}): the Google Cloud "
            "project / developer token needs Explorer or Basic access for "
            "production accounts",
        )
    if "LOGIN_CUSTOMER_ID_PARAMETER_MISSING" in values:
        return Verdict(
            "fail",
            "request",
            f"Google Ads needs the manager account ({what}): set "
            "GOOGLE_ADS_LOGIN_CUSTOMER_ID to the manager's 10-digit id",
        )
    if status == "UNAUTHENTICATED" or resp.status_code == 401:
        return Verdict("refresh", "auth", f"Google Ads rejected the access token ({what})")
    if "USER_PERMISSION_DENIED" in values:
        return Verdict(
            "fail",
            "request",
            f"Google Ads: the authorised user cannot reach this customer ({what}); "
            "if it is managed through a manager account, set "
            "GOOGLE_ADS_LOGIN_CUSTOMER_ID to that manager's id",
        )
    if "CUSTOMER_NOT_ENABLED" in values:
        return Verdict("fail", "request", f"Google Ads customer is not enabled (cancelled or suspended): {what}")
    if status in TRANSIENT_STATUSES or resp.status_code >= 500:
        return Verdict("retry", "server", f"Google Ads {status or resp.status_code}: {what}", retry_after_seconds(resp))
    return Verdict("fail", "request", f"Google Ads {status or 'HTTP ' + str(resp.status_code)}: {what}")


# --- parsing ------------------------------------------------------------------------------------


def stream_results(body: Any, required: tuple[str, ...] = ()) -> list[dict]:
    """Every result of a searchStream answer: a JSON array of batches, each with optional
    ``results`` and the ``fieldMask`` of what was selected (§2.3, §2.4: no paging)."""
    if not isinstance(body, list):
        raise MalformedResponse("google searchStream answer is not a JSON array of batches")
    if (err := rpc_error(body)) is not None:
        raise FetchError("request", redact(f"google: error inside the stream: {err.get('message') or err}")[:300])
    out: list[dict] = []
    for batch in body:
        if not isinstance(batch, dict):
            raise MalformedResponse("google searchStream batch is not an object")
        results = batch.get("results", [])
        if not isinstance(results, list):
            raise MalformedResponse("google searchStream 'results' is not a list")
        if results and required:
            mask = batch.get("fieldMask")
            selected = set(mask.split(",")) if isinstance(mask, str) else set()
            missing = [f for f in required if f not in selected]
            if missing:
                raise MalformedResponse(
                    f"google searchStream batch does not carry {', '.join(missing)} (fieldMask {str(mask)[:80]!r})"
                )
        for r in results:
            if not isinstance(r, dict):
                raise MalformedResponse("google searchStream result is not an object")
            out.append(r)
    return out


def parse_daily_cost(body: Any) -> dict[dt.date, Decimal]:
    """Cost per day (see :func:`parse_daily_and_info`)."""
    return parse_daily_and_info(body, "")[1]


def _customer_info(customer: Any, customer_id: str) -> AccountInfo:
    if not isinstance(customer, dict):
        raise MalformedResponse(f"google customer {customer_id}: a result has no 'customer' object")
    currency, tz = customer.get("currencyCode"), customer.get("timeZone")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedResponse(f"google customer {customer_id} has no ISO currency (got {str(currency)[:20]!r})")
    if not isinstance(tz, str) or not tz:
        raise MalformedResponse(f"google customer {customer_id} has no time zone")
    name = customer.get("descriptiveName")
    return AccountInfo(customer_id, currency, tz, name if isinstance(name, str) else "")


def parse_daily_and_info(body: Any, customer_id: str) -> tuple[AccountInfo | None, dict[dt.date, Decimal]]:
    """The customer's info (None when the stream had no rows to read it from) and its cost per day.

    REST JSON leaves out default values, so a result whose metrics lack ``costMicros``
    (``"metrics": {}``) is a day that cost 0 (§2.3); the fieldMask proves the cost was selected, so
    an absent value is that zero and not a query that forgot the metric. When the fieldMask says
    the customer's currency and time zone were selected, every row must carry the same ones."""
    rows: dict[dt.date, Decimal] = {}
    info: AccountInfo | None = None
    for r in stream_results(body, SPEND_FIELDS):
        if "customer" in r or info is not None:
            row_info = _customer_info(r.get("customer"), customer_id)
            if info is not None and (row_info.currency, row_info.timezone) != (info.currency, info.timezone):
                raise MalformedResponse(
                    f"google customer {customer_id}: rows disagree on currency or time zone "
                    f"({info.currency} {info.timezone} vs {row_info.currency} {row_info.timezone})"
                )
            info = info or row_info
        segments, metrics = r.get("segments"), r.get("metrics", {})
        if not isinstance(segments, dict) or not isinstance(metrics, dict):
            raise MalformedResponse("google result has no 'segments' object or a 'metrics' that is not an object")
        day = parse_day(segments.get("date"), "google segments.date")
        if day in rows:
            raise MalformedResponse(f"google returned {day} twice for one customer")
        rows[day] = (
            micros_to_decimal(metrics["costMicros"], f"google costMicros for {day}")
            if "costMicros" in metrics
            else Decimal(0)
        )
    return info, rows


def parse_customer(body: Any, customer_id: str) -> AccountInfo:
    results = stream_results(body, CUSTOMER_FIELDS)
    if len(results) != 1 or not isinstance(results[0].get("customer"), dict):
        raise MalformedResponse(f"google customer {customer_id}: expected one customer row, got {len(results)}")
    return _customer_info(results[0]["customer"], customer_id)


# --- the fetcher --------------------------------------------------------------------------------


class GoogleAdsFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["google"].lookback_days
    day_basis = SPECS["google"].day_basis
    history_days = SPECS["google"].history_days

    def normalize_account_id(self, raw: str) -> str:
        return normalize_account_id(raw)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        redact.add(credentials.get("GOOGLE_ADS_DEVELOPER_TOKEN"))
        return OAuthRefreshAuth(
            PLATFORM,
            token_url,
            credential(PLATFORM, credentials, "GOOGLE_ADS_CLIENT_ID"),
            credential(PLATFORM, credentials, "GOOGLE_ADS_CLIENT_SECRET"),
            credential(PLATFORM, credentials, "GOOGLE_ADS_REFRESH_TOKEN"),
            client_auth="body",
            on_rotate=on_rotate,
        )

    def classify(self, response: httpx.Response) -> Verdict:
        return classify(response)

    async def _search_stream(self, api: Api, customer_id: str, query: str) -> Any:
        resp = await api.request(
            "POST", search_stream_path(customer_id), json={"query": query}, headers=request_headers(api.credentials)
        )
        return json_body(resp, PLATFORM)

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        cid = normalize_account_id(account_id)
        return parse_customer(await self._search_stream(api, cid, ACCOUNT_QUERY), cid)

    async def fetch_daily_and_info(
        self, api: Api, account_id: str, start: dt.date, end: dt.date
    ) -> tuple[AccountInfo | None, dict[dt.date, Decimal]]:
        """One searchStream: the days and, read from its rows, the customer's currency and time
        zone (§2.2), so no separate customer lookup (None when no row came back)."""
        cid = normalize_account_id(account_id)
        return parse_daily_and_info(await self._search_stream(api, cid, build_spend_query(start, end)), cid)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        info, rows = await self.fetch_daily_and_info(api, account.account_id, start, end)
        if info is not None and info.currency != account.currency:
            # never store one currency's amounts under another: the stored info is stale
            raise MalformedResponse(
                f"google customer {account.account_id} reports in {info.currency}, "
                f"but its stored currency is {account.currency}"
            )
        return rows


FETCHER = GoogleAdsFetcher()
