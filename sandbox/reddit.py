"""Reddit Ads API v3 emulator: ad account lookup, reports (DATE breakdown, paged), refresh grant.

Written from shared/platform-apis/...-reddit.md section 7, not from the fetcher. Where the doc
leaves a fact open, the emulator takes one reading and is strict about it: ``starts_at`` /
``ends_at`` are instants and ``ends_at`` is exclusive; DATE rows are days in ``time_zone_id``
(default: the account's); a day only partly inside the range reports only that part of its
spend (spread evenly over the day); days without spend are left out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import urllib.parse
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import data
from .common import Context, Request, Response, Route, access_check, json_response
from .credentials import demo_value

PLATFORM = "reddit"
TOKEN_PATH = "/api/v1/access_token"
ENV_PREFIX = "REDDIT"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "REDDIT_CLIENT_ID": "sandbox-reddit-client",
    "REDDIT_CLIENT_SECRET": "sandbox-reddit-secret",
    "REDDIT_REFRESH_TOKEN": "sandbox-reddit-refresh",
}
DEFAULT_PAGE_SIZE = 7  # small, so paging is exercised whenever a client relies on the default
MAX_PAGE_SIZE = 1000
BREAKDOWNS = {
    "DATE",
    "HOUR",
    "CAMPAIGN_ID",
    "AD_GROUP_ID",
    "AD_ID",
    "COUNTRY",
    "REGION",
    "COMMUNITY",
    "KEYWORD",
    "PLACEMENT",
    "GENDER",
    "OS_TYPE",
}
FIELDS = {"SPEND", "IMPRESSIONS", "CLICKS", "CPC", "ECPM", "REACH", "CTR"}
_ID = re.compile(r"(a2|t2)_[A-Za-z0-9][A-Za-z0-9_-]*")
_GENERIC_UA = re.compile(
    r"^(python-httpx|python-requests|python-urllib|curl|java|go-http-client|okhttp)", re.IGNORECASE
)


def error(status: int, message: str) -> Response:
    return json_response({"error": {"code": status, "message": message}}, status)


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, account_id, day, scale=6, generation=generation)


def _user_agent_problem(req: Request) -> Response | None:
    ua = (req.header("user-agent") or "").strip()
    if not ua or _GENERIC_UA.match(ua):
        return error(403, "Forbidden: a unique and descriptive User-Agent is required")
    return None


def _auth_problem(ctx: Context, req: Request, account: str | None) -> Response | None:
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem is None:
        return None
    text = {
        "missing": "no access token",
        "invalid": "invalid access token",
        "expired": "access token expired",
        "revoked": "access token revoked",
    }[problem]
    return json_response({"success": False, "error": {"reason": "UNAUTHORIZED", "explanation": text}}, 401)


# --- token endpoint -----------------------------------------------------------------------------


def token(req: Request, ctx: Context) -> Response:
    bad_ua = _user_agent_problem(req)
    if bad_ua:
        return bad_ua
    auth = req.header("authorization") or ""
    try:
        client_id, _, secret = (
            base64.b64decode(auth[6:]).decode().partition(":") if auth.lower().startswith("basic ") else ("", "", "")
        )
    except ValueError:
        client_id, secret = "", ""
    if client_id != demo_value(PLATFORM, "_CLIENT_ID") or secret != demo_value(PLATFORM, "_CLIENT_SECRET"):
        return json_response({"message": "Unauthorized", "error": 401}, 401)
    form = req.form()
    if form.get("grant_type") != "refresh_token":
        return json_response({"error": "unsupported_grant_type"}, 400)
    if not ctx.refresh_token_ok(PLATFORM, form.get("refresh_token")):
        return json_response({"error": "invalid_grant"}, 400)
    access = ctx.issue_token(PLATFORM)
    # Reddit may hand back a new refresh token (doc §7.6): this emulator always rotates it
    rotated = ctx.issue_refresh_token(PLATFORM, "sbx-reddit-rt-")
    return json_response(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": 86400,
            "refresh_token": rotated,
            "scope": "adsread",
        }
    )


# --- ad account ---------------------------------------------------------------------------------


def ad_account(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    refused = _user_agent_problem(req) or _auth_problem(ctx, req, account)
    if refused:
        return refused
    if not _ID.fullmatch(account):
        return error(400, "invalid ad_account identifier")
    profile = data.account_profile(PLATFORM, account)
    return json_response(
        {
            "data": {
                "id": account,
                "name": profile["name"],
                "currency": profile["currency"],
                "time_zone_id": profile["timezone"],
                "attribution_type": "CLICK_THROUGH",
                "click_attribution_window": "DAY_28",
                "view_attribution_window": "DAY_1",
                "configured_status": "ACTIVE",
                "effective_status": "ACTIVE",
            }
        }
    )


# --- reports ------------------------------------------------------------------------------------


def _instant(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _page_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}).encode()
    raw += b" " * ((1 - len(raw)) % 3)  # always padded: "=" travels URL-encoded as %3D (doc §7.4)
    return base64.b64encode(raw).decode()


def _read_page_token(token: str) -> dict | None:
    try:
        value = json.loads(base64.b64decode(token, validate=True))
        return value if isinstance(value, dict) and isinstance(value.get("o"), int) else None
    except (ValueError, TypeError):
        return None


def _day_span(day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    utc = dt.UTC
    return (
        dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(utc),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(utc),
    )


def daily_rows(
    account: str, start: dt.datetime, end: dt.datetime, report_zone: ZoneInfo, ctx: Context
) -> dict[dt.date, Decimal]:
    """Spend per ``report_zone`` date over the instants [start, end), from the account's days
    (each spread evenly over its own length; a day wholly inside keeps its exact amount)."""
    account_zone = ZoneInfo(data.account_profile(PLATFORM, account)["timezone"])
    out: dict[dt.date, Decimal] = {}
    day, last = (
        start.astimezone(account_zone).date(),
        (end - dt.timedelta(microseconds=1)).astimezone(account_zone).date(),
    )
    while day <= last:
        a, b = _day_span(day, account_zone)
        amount = expected_daily(account, day, ctx.generation(PLATFORM, day))
        lo, hi = max(a, start), min(b, end)
        label, label_last = (
            lo.astimezone(report_zone).date(),
            (hi - dt.timedelta(microseconds=1)).astimezone(report_zone).date(),
        )
        while label <= label_last:
            c, d = _day_span(label, report_zone)
            overlap = min(hi, d) - max(lo, c)
            if overlap == b - a and label == day:
                part = amount
            else:
                part = (amount * Decimal(overlap.total_seconds()) / Decimal((b - a).total_seconds())).quantize(
                    Decimal("0.000001"), ROUND_HALF_EVEN
                )
            out[label] = out.get(label, Decimal(0)) + part
            label += dt.timedelta(days=1)
        day += dt.timedelta(days=1)
    return out


def reports(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    refused = _user_agent_problem(req) or _auth_problem(ctx, req, account)
    if refused:
        return refused
    if not _ID.fullmatch(account):
        return error(400, "invalid ad_account identifier")
    if "application/json" not in (req.header("content-type") or ""):
        return error(400, "Content-Type must be application/json")
    try:
        body = req.json()
    except ValueError:
        return error(400, "request body is not valid JSON")
    spec = body.get("data") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        return error(400, "request body must be wrapped in a data object")
    start, end = _instant(spec.get("starts_at")), _instant(spec.get("ends_at"))
    if start is None or end is None:
        return error(400, "starts_at and ends_at are required ISO 8601 timestamps")
    for name, moment in (("starts_at", start), ("ends_at", end)):
        if (moment.minute, moment.second, moment.microsecond) != (0, 0, 0):
            return error(400, f"{name} must be on the hour")
    if end <= start:
        return error(400, "ends_at must be after starts_at")
    breakdowns = spec.get("breakdowns")
    if not isinstance(breakdowns, list) or not breakdowns or not all(isinstance(b, str) for b in breakdowns):
        return error(400, "breakdowns is required: a list of up to 3 dimensions")
    upper = [b.upper() for b in breakdowns]
    if len(upper) > 3 or any(b not in BREAKDOWNS for b in upper):
        return error(400, f"invalid breakdowns: {breakdowns}")
    if "DATE" in upper and "HOUR" in upper:
        return error(400, "DATE and HOUR breakdowns cannot be combined")
    if upper != ["DATE"]:
        return error(400, "sandbox: only the DATE breakdown is emulated")
    fields = spec.get("fields")
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(x, str) and x.upper() in FIELDS for x in fields)
    ):
        return error(400, f"fields is required: a list of metrics such as SPEND (got {fields!r})")
    zone_name = spec.get("time_zone_id") or data.account_profile(PLATFORM, account)["timezone"]
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return error(400, f"invalid time_zone_id: {zone_name!r}")
    size_raw = req.arg("page.size")
    if size_raw is None:
        size = DEFAULT_PAGE_SIZE
    elif not size_raw.isdigit() or not 1 <= int(size_raw) <= MAX_PAGE_SIZE:
        return error(400, f"page.size must be between 1 and {MAX_PAGE_SIZE}")
    else:
        size = int(size_raw)
    fingerprint, offset = _fingerprint(spec), 0
    token = req.arg("page.token")
    if token is not None:
        page = _read_page_token(token)
        if page is None or page.get("f") != fingerprint:
            return error(400, "invalid page.token for this request")
        offset = page["o"]

    spend = daily_rows(account, start, end, zone, ctx)
    rows = []
    for day in sorted(spend):
        if spend[day] == 0:
            continue  # no delivery: no row
        micros = int(spend[day] * 1_000_000)
        row = {"date": day.isoformat()}
        for name in fields:
            key = name.lower()
            row[key] = micros if key == "spend" else 0
        rows.append(row)
    chunk = rows[offset : offset + size]
    next_url = None
    if offset + size < len(rows):
        query = urllib.parse.urlencode({"page.size": size, "page.token": _page_token(offset + size, fingerprint)})
        next_url = f"http://{req.header('host') or '127.0.0.1'}{req.path}?{query}"
    return json_response({"data": {"metrics": chunk}, "pagination": {"next_url": next_url}})


def throttle_response(req: Request) -> Response:
    # no Retry-After: the doc only says Reddit answers 429 (§7.5); clients must back off themselves
    return error(429, "Too Many Requests")


def malformed_response(req: Request) -> Response:
    """A page whose row has no spend, or an account without currency (never read as zero)."""
    if req.path.endswith("/reports"):
        return json_response(
            {"data": {"metrics": [{"date": "2025-03-01", "impressions": 1000}]}, "pagination": {"next_url": None}}
        )
    return json_response({"data": {"id": req.match.get("account", ""), "name": "no currency"}})


PATH_SPACE = r"/api/v3/|/api/v1/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return error(status, message)


def routes() -> list[Route]:
    return [
        Route("POST", re.escape(TOKEN_PATH), token, api=False),
        Route("GET", r"/api/v3/ad_accounts/(?P<account>[^/]+)", ad_account),
        Route("POST", r"/api/v3/ad_accounts/(?P<account>[^/]+)/reports", reports),
    ]
