"""Meta (Facebook/Instagram) Marketing API: daily account spend from Ads Insights.

Facts: shared/platform-apis/meta-google-tiktok-linkedin-snapchat-pinterest-reddit.md, section 1
(cited below as "§1.x")."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from . import clock
from .base import AccountInfo, Api, MalformedResponse, PageRequest, Verdict
from .core import StaticTokenAuth, credential, default_verdict, fetch_pages, json_body, parse_day, parse_decimal, redact
from .specs import SPECS

PLATFORM = "meta"
# Graph API version. v25.0 was "Latest Graph API Version" on Meta's docs (§1.1); v22.0-v26.0 are
# live in late 2026. Meta retires a version about two years after release, so v25.0 is expected
# to stop working in early 2028 (exact sunset date UNCONFIRMED, §9): a retired version answers
# error 2635, which classify() reports as a configuration problem naming this constant.
API_VERSION = "v25.0"
API_VERSION_SUNSET = "about two years after release, early 2028 (UNCONFIRMED, §1.1)"
# The synchronous insights call has no documented range cap (§0); long spans risk error
# 100/1504018 (request timed out, §1.5), so one request asks for at most 90 days.
MAX_DAYS = 90
PAGE_LIMIT = 100  # rows a page; Meta's default (~25) is UNCONFIRMED, so ask explicitly (§1.4)
MAX_PAGES = 1000  # a cursor chain longer than this is a paging loop, not data

INSIGHTS_FIELDS = "account_id,account_currency,spend,date_start,date_stop"
ACCOUNT_FIELDS = "currency,timezone_name,name"

# §1.5: Airbyte's retry list. 80000-80014 are the Business Use Case throttles.
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
THROTTLE_SUBCODES = frozenset({2446079, 1487742, 1504022, 1504039})
TRANSIENT_CODES = frozenset({2, 960})
TOKEN_CODE = 190  # 463 expired, 460 password changed / session invalidated, 467 invalid
TOKEN_SUBCODES = {
    463: "it has expired",
    460: "the user changed their password or the session was invalidated",
    467: "it is invalid",
}
RETIRED_VERSION_CODE = 2635
PERMISSION_CODES = frozenset({10, 200, 294})

_ACCOUNT_RE = re.compile(r"^(?:act_)?(\d{1,20})$")


# --- ids and auth -------------------------------------------------------------------------------


def normalize_account_id(raw: str) -> str:
    m = _ACCOUNT_RE.match(str(raw).strip())
    if not m:
        raise ValueError(
            f"meta: {raw!r} is not a Meta ad account id; expected digits such as 1234567890 or act_1234567890"
        )
    return m.group(1)


def appsecret_proof(token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the access token keyed with the app secret, hex (§1.1)."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


async def common_params(api: Api) -> dict[str, str]:
    """``appsecret_proof`` when ``META_APP_SECRET`` is set. Required only when the app turns on
    "Require App Secret" (UNCONFIRMED default, §1.1); sending it whenever we can is always accepted."""
    secret = api.credentials.get("META_APP_SECRET")
    if not secret:
        return {}
    proof = appsecret_proof(await api.access_token(), secret)
    redact.add(proof)
    return {"appsecret_proof": proof}


# --- requests -----------------------------------------------------------------------------------


def insights_path(account_id: str) -> str:
    return f"/{API_VERSION}/act_{account_id}/insights"


def build_insights_params(start: dt.date, end: dt.date, after: str | None = None) -> dict[str, str]:
    params = {
        "level": "account",
        "fields": INSIGHTS_FIELDS,
        "time_range": json.dumps({"since": start.isoformat(), "until": end.isoformat()}, separators=(",", ":")),
        "time_increment": "1",
        "limit": str(PAGE_LIMIT),
    }
    if after:
        params["after"] = after
    return params


def build_account_and_insights_params(start: dt.date, end: dt.date) -> dict[str, str]:
    """The ad account node with its insights edge expanded in the same request (Graph's field
    expansion: the edge's parameters as ``.name(value)`` modifiers, its fields in braces): the
    account's currency and time zone (§1.7) come with the first page of days, so a first fetch
    needs no separate lookup. The modifiers are exactly the edge request's parameters, so the
    edge's own cursor continues it (``InsightsPages``)."""
    edge = build_insights_params(start, end)
    expansion = (
        f"insights.level({edge['level']}).time_range({edge['time_range']})"
        f".time_increment({edge['time_increment']}).limit({edge['limit']}){{{edge['fields']}}}"
    )
    return {"fields": f"{ACCOUNT_FIELDS},{expansion}"}


class InsightsPages:
    """Insights paged by cursor: the next page is the same request with ``after`` (§1.4)."""

    what = "meta insights"

    def __init__(self, account: AccountInfo, start: dt.date, end: dt.date, extra: Mapping[str, str]):
        self.account, self.start, self.end, self.extra = account, start, end, extra

    def _request(self, after: str | None) -> PageRequest:
        return PageRequest(
            "GET",
            insights_path(self.account.account_id),
            params={**build_insights_params(self.start, self.end, after), **self.extra},
        )

    def first(self) -> PageRequest:
        return self._request(None)

    def read(self, body: Any) -> tuple[dict[dt.date, Decimal], PageRequest | None]:
        rows, after = parse_insights_page(body, self.account.currency)
        return rows, (self._request(after) if after else None)


class AccountAndInsightsPages(InsightsPages):
    """The first page from the account node with its insights expanded (the account's info read
    from it, ``info``); the next pages from the insights edge by cursor, as ``InsightsPages``."""

    what = "meta ad account with insights"

    def __init__(self, account_id: str, start: dt.date, end: dt.date, extra: Mapping[str, str]):
        super().__init__(AccountInfo(account_id, "", ""), start, end, extra)
        self.info: AccountInfo | None = None

    def first(self) -> PageRequest:
        account_id = self.account.account_id
        params = {**build_account_and_insights_params(self.start, self.end), **self.extra}
        return PageRequest("GET", f"/{API_VERSION}/act_{account_id}", params=params)

    def read(self, body: Any) -> tuple[dict[dt.date, Decimal], PageRequest | None]:
        if self.info is not None:
            return super().read(body)
        self.info = self.account = parse_account(body, self.account.account_id)
        edge = body.get("insights")
        if edge is None:  # Graph leaves an edge with no rows out of the node's answer
            return {}, None
        rows, after = parse_insights_page(edge, self.info.currency)
        return rows, (self._request(after) if after else None)


def utc_today() -> dt.date:
    return clock.today()


# --- parsing ------------------------------------------------------------------------------------


def _date(value: Any, what: str) -> dt.date:
    return parse_day(value, f"meta insights {what}")


def parse_insights_page(body: Any, currency: str) -> tuple[dict[dt.date, Decimal], str | None]:
    """One insights page: the days it carries and the cursor of the next page (None on the last).

    Every row must be one day (``date_start == date_stop``) with a ``spend`` decimal string in the
    account currency; anything else is malformed, never zero."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponse("meta insights answer has no 'data' list")
    rows: dict[dt.date, Decimal] = {}
    for row in body["data"]:
        if not isinstance(row, dict):
            raise MalformedResponse("meta insights row is not an object")
        day = _date(row.get("date_start"), "date_start")
        if row.get("date_stop") != row.get("date_start"):
            raise MalformedResponse(
                f"meta insights row {day} spans {row.get('date_start')}..{row.get('date_stop')}, "
                "expected one day (time_increment=1)"
            )
        if "spend" not in row:
            raise MalformedResponse(f"meta insights row for {day} has no 'spend' field")
        # account_currency is asked for (INSIGHTS_FIELDS, §1.7): it cross-checks the stored
        # currency on every row; a row without it, or in another currency, is never stored
        row_currency = row.get("account_currency")
        if row_currency is None:
            raise MalformedResponse(f"meta insights row for {day} has no 'account_currency' field")
        if row_currency != currency:
            raise MalformedResponse(
                f"meta insights row for {day} is in {row_currency}, but the account's currency is {currency}"
            )
        if day in rows:
            raise MalformedResponse(f"meta insights returned {day} twice at level=account")
        rows[day] = parse_decimal(row["spend"], f"meta spend for {day}")
    paging = body.get("paging")
    if paging is None:
        return rows, None
    if not isinstance(paging, dict):
        raise MalformedResponse("meta insights 'paging' is not an object")
    if not paging.get("next"):  # §1.4: stop when next is absent
        return rows, None
    after = (paging.get("cursors") or {}).get("after") if isinstance(paging.get("cursors"), dict) else None
    if not isinstance(after, str) or not after:
        raise MalformedResponse("meta insights has paging.next but no paging.cursors.after")
    return rows, after


def parse_account(body: Any, account_id: str) -> AccountInfo:
    if not isinstance(body, dict):
        raise MalformedResponse("meta ad account answer is not an object")
    currency, tz = body.get("currency"), body.get("timezone_name")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedResponse(f"meta ad account act_{account_id} has no ISO currency (got {str(currency)[:20]!r})")
    if not isinstance(tz, str) or not tz:
        raise MalformedResponse(f"meta ad account act_{account_id} has no timezone_name")
    name = body.get("name")
    return AccountInfo(account_id, currency, tz, name if isinstance(name, str) else "")


def _error_of(resp: httpx.Response) -> dict | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def regain_access_seconds(resp: httpx.Response) -> float | None:
    """Meta sends no Retry-After (§1.5); X-Business-Use-Case-Usage carries
    ``estimated_time_to_regain_access`` in minutes. None when absent or zero."""
    raw = resp.headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = max(
            int(entry.get("estimated_time_to_regain_access") or 0) for entries in usage.values() for entry in entries
        )
    except (ValueError, TypeError, AttributeError):
        return None
    return minutes * 60.0 if minutes > 0 else None


def classify(resp: httpx.Response) -> Verdict:
    """Graph errors arrive as ``{"error": {"code", "error_subcode", "message", ...}}`` with HTTP
    400/403 (sometimes 500 or 200); the code, not the status, says what happened (§1.5)."""
    err = _error_of(resp)
    if err is None:
        return default_verdict(resp)
    code, sub = _int(err.get("code")), _int(err.get("error_subcode"))
    msg = redact(str(err.get("message") or "no message"))[:300]
    if code in THROTTLE_CODES or sub in THROTTLE_SUBCODES:
        return Verdict("retry", "throttled", f"Meta throttled the request: {msg}", regain_access_seconds(resp))
    if code == TOKEN_CODE:
        why = TOKEN_SUBCODES.get(sub, "it was rejected")
        return Verdict(
            "fail",
            "auth",
            f"the Meta access token is unusable ({why}; error 190"
            f"{'/' + str(sub) if sub else ''}): issue a new system-user or "
            "long-lived token and set META_ACCESS_TOKEN",
        )
    if code == 104:
        return Verdict("fail", "auth", f"Meta received no access token ({msg}): check META_ACCESS_TOKEN")
    if code == RETIRED_VERSION_CODE:
        return Verdict(
            "fail", "config", f"Meta retired Graph API {API_VERSION} ({msg}): update fetchers/meta.py API_VERSION"
        )
    if code in TRANSIENT_CODES or (code == 1 and sub == 99) or err.get("is_transient") is True:
        return Verdict("retry", "server", f"Meta transient error {code}: {msg}")
    if code in PERMISSION_CODES:
        return Verdict(
            "fail",
            "request",
            f"Meta denied access (error {code}): {msg}; the token's user needs ads_read on this ad account",
        )
    if resp.status_code >= 500:
        return Verdict("retry", "server", f"Meta HTTP {resp.status_code}, error {code}: {msg}")
    return Verdict("fail", "request", f"Meta error {code}{'/' + str(sub) if sub else ''}: {msg}")


# --- the fetcher --------------------------------------------------------------------------------


class MetaFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["meta"].lookback_days
    day_basis = SPECS["meta"].day_basis
    history_days = SPECS["meta"].history_days

    def normalize_account_id(self, raw: str) -> str:
        return normalize_account_id(raw)

    def auth_headers(self, token: str) -> dict[str, str]:
        # The header keeps the token out of URLs and logs (§1.1); paging re-sends it, so we build
        # the next request from the cursor instead of following paging.next.
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> StaticTokenAuth:
        token = credential(PLATFORM, credentials, "META_ACCESS_TOKEN")
        redact.add(credentials.get("META_APP_SECRET"))
        return StaticTokenAuth(token)  # Meta has no refresh grant (§1.6)

    def classify(self, response: httpx.Response) -> Verdict:
        return classify(response)

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        account_id = normalize_account_id(account_id)
        resp = await api.request(
            "GET", f"/{API_VERSION}/act_{account_id}", params={"fields": ACCOUNT_FIELDS, **await common_params(api)}
        )
        return parse_account(json_body(resp, PLATFORM), account_id)

    async def fetch_daily_and_info(
        self, api: Api, account_id: str, start: dt.date, end: dt.date
    ) -> tuple[AccountInfo, dict[dt.date, Decimal]]:
        """The account's info and its days from one request (``AccountAndInsightsPages``), then the
        edge's further pages, if any."""
        account_id = normalize_account_id(account_id)
        end = min(end, utc_today())  # as fetch_daily
        if start > end:
            return await self.account_info(api, account_id), {}
        pages = AccountAndInsightsPages(account_id, start, end, await common_params(api))
        rows = await fetch_pages(api, pages, MAX_PAGES)
        assert pages.info is not None  # the first page was read
        return pages.info, rows

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        # A 2026 report says an `until` of today is refused for accounts ahead of UTC, the check
        # running against the UTC date (UNCONFIRMED, §1.2): never ask past the UTC date; later
        # days are not over yet and the next refresh's lookback fetches them.
        end = min(end, utc_today())
        if start > end:
            return {}
        return await fetch_pages(api, InsightsPages(account, start, end, await common_params(api)), MAX_PAGES)


FETCHER = MetaFetcher()
