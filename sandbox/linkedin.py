"""LinkedIn Marketing API emulator: versioned REST ``adAnalytics``, ``adAccounts`` and the OAuth
refresh grant.

Written from shared/platform-apis/...md section 4, not from fetchers/linkedin.py. Errors are HTTP
statuses with a ``{"status", "code", "message"}`` body; the 426 ``NONEXISTENT_VERSION`` body is the
confirmed one (§4.1), the other codes follow LinkedIn's naming (UNCONFIRMED, §4.5).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response
from .credentials import FAKE_CREDENTIALS

PLATFORM = "linkedin"
TOKEN_PATH = "/oauth/v2/accessToken"
ACCESS_TOKEN_SECONDS = 5_184_000          # 60 days (§4.6)
REFRESH_TOKEN_SECONDS = 31_536_000        # 365 days
ACTIVE_VERSION_MONTHS = 12                # each monthly version lives about a year (§4.1)
MAX_FIELDS = 20
USD_RATE = {"USD": Decimal("1"), "EUR": Decimal("1.0835"), "GBP": Decimal("1.2650"), "JPY": Decimal("0.00665"),
            "CAD": Decimal("0.7310"), "AUD": Decimal("0.6540")}

URN_PREFIX = "urn:li:sponsoredAccount:"
_DATE = r"\(year:(\d{4}),month:(\d{1,2}),day:(\d{1,2})\)"
_DATE_RANGE = re.compile(rf"^\(start:{_DATE}(?:,end:{_DATE})?\)$")
_ACCOUNTS = re.compile(r"^List\((urn:li:sponsoredAccount:\d+(?:,urn:li:sponsoredAccount:\d+)*)\)$")
# What the raw (undecoded) query must look like: syntax characters bare, URN colons as %3A (§4.2).
_RAW_DATE_RANGE = re.compile(r"^\(start:\(year:\d+,month:\d+,day:\d+\)(?:,end:\(year:\d+,month:\d+,day:\d+\))?\)$")
_RAW_ACCOUNTS = re.compile(r"^List\(urn%3Ali%3AsponsoredAccount%3A\d+(?:,urn%3Ali%3AsponsoredAccount%3A\d+)*\)$",
                           re.IGNORECASE)


def error(status: int, code: str, message: str, service_code: int | None = None) -> Response:
    body = {"status": status, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return json_response(body, status)


def _digits(account: str) -> str:
    account = str(account)
    return account[len(URN_PREFIX):] if account.startswith(URN_PREFIX) else account


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, _digits(account_id), day, scale=2, generation=generation)


def _plain(amount: Decimal) -> str:
    """LinkedIn drops trailing zeros ("98.7", §4.3)."""
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def active_versions(today: dt.date | None = None) -> set[str]:
    today = today or dt.datetime.now(dt.timezone.utc).date()
    y, m, out = today.year, today.month, set()
    for _ in range(ACTIVE_VERSION_MONTHS):
        out.add(f"{y}{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out


def _gateway_checks(req: Request, ctx: Context, account: str | None) -> Response | None:
    """Version header, token, Rest.li protocol header: what every versioned call goes through."""
    version = req.header("linkedin-version")
    if not version:
        return error(400, "VERSION_MISSING", "A version must be present. Please specify a version by adding the "
                                             "LinkedIn-Version header.")
    if version not in active_versions():
        return error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem in ("missing", "invalid"):
        return error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
    if problem == "expired":
        return error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65601)
    if problem == "revoked":
        return error(401, "REVOKED_ACCESS_TOKEN", "The token used in the request has been revoked by the user", 65602)
    if req.header("x-restli-protocol-version") != "2.0.0":
        # Without the 2.0.0 header LinkedIn parses the query as Rest.li 1.0 and the 2.0 syntax fails.
        return error(400, "ILLEGAL_ARGUMENT", "Invalid query parameters passed to request "
                                              "(send X-Restli-Protocol-Version: 2.0.0)")
    return None


def _raw_param(raw_query: str, name: str) -> str | None:
    for pair in raw_query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return None


def _date(y: str, m: str, d: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def analytics(req: Request, ctx: Context) -> Response:
    accounts_arg = req.arg("accounts") or ""
    m_acc = _ACCOUNTS.match(accounts_arg)
    first = m_acc.group(1).split(",")[0] if m_acc else None
    bad = _gateway_checks(req, ctx, _digits(first) if first else None)
    if bad:
        return bad
    raw = getattr(req, "raw_query", None)     # only when the server hands the undecoded query on
    if raw is not None:
        raw_range, raw_accounts = _raw_param(raw, "dateRange"), _raw_param(raw, "accounts")
        if raw_range is not None and not _RAW_DATE_RANGE.match(raw_range):
            return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: dateRange (Rest.li syntax characters "
                                                  "( ) , : must not be percent-encoded)")
        if raw_accounts is not None and not _RAW_ACCOUNTS.match(raw_accounts):
            return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: accounts (expected "
                                                  "List(urn%3Ali%3AsponsoredAccount%3A<id>))")
    q = req.arg("q")
    if q != "analytics":
        return error(400, "ILLEGAL_ARGUMENT", "Missing or unsupported finder: q=analytics" if q is None else
                     f"sandbox serves the analytics finder only, not q={q}")
    if req.arg("pivot") != "ACCOUNT":
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: pivot (sandbox serves pivot=ACCOUNT)")
    if req.arg("timeGranularity") != "DAILY":
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: timeGranularity (sandbox serves DAILY)")
    m_range = _DATE_RANGE.match(req.arg("dateRange") or "")
    if not m_range:
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: dateRange")
    start = _date(*m_range.group(1, 2, 3))
    end = _date(*m_range.group(4, 5, 6)) if m_range.group(4) else data.today()   # open end: up to now
    if start is None or end is None or end < start:
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: dateRange (not a valid range)")
    if not m_acc:
        # Raw colons or a double-encoded URN arrive here as something other than List(urn:li:...).
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: accounts")
    fields_arg = req.arg("fields")
    # Without `fields` only impressions and clicks come back (§4.2, linkedin-api-js-client #23).
    fields = fields_arg.split(",") if fields_arg else ["impressions", "clicks"]
    if len(fields) > MAX_FIELDS:
        return error(400, "ILLEGAL_ARGUMENT", f"Too many fields requested: at most {MAX_FIELDS}")

    elements = []
    for urn in m_acc.group(1).split(","):
        acc = _digits(urn)
        currency = data.account_currency(acc)
        day = start
        while day <= end:
            cost = data.daily_amount(PLATFORM, acc, day, scale=2, generation=ctx.generation(PLATFORM, day))
            if cost:                             # no activity, no element
                bound = {"year": day.year, "month": day.month, "day": day.day}
                full = {"pivotValues": [urn], "dateRange": {"start": bound, "end": dict(bound)},
                        "costInLocalCurrency": _plain(cost),
                        "costInUsd": _plain((cost * USD_RATE.get(currency, Decimal(1))).quantize(Decimal("0.01"))),
                        "impressions": int(cost * 41), "clicks": int(cost / 4)}
                elements.append({f: full[f] for f in fields if f in full})
            day += dt.timedelta(days=1)
    return json_response({"paging": {"start": 0, "count": 10, "links": []}, "elements": elements})


def ad_account(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    bad = _gateway_checks(req, ctx, account)
    if bad:
        return bad
    if not account.isdigit():
        return error(400, "ILLEGAL_ARGUMENT", f"Invalid sponsored account id {account}")
    prof = data.account_profile(PLATFORM, account)
    return json_response({"id": int(account), "name": prof["name"], "currency": prof["currency"],
                          "status": "ACTIVE", "type": "BUSINESS", "test": False,
                          "reference": f"urn:li:organization:{int(account) % 100000}",
                          "servingStatuses": ["RUNNABLE"]})


def token(req: Request, ctx: Context) -> Response:
    if "application/x-www-form-urlencoded" not in (req.header("content-type") or ""):
        return json_response({"error": "invalid_request",
                              "error_description": "Content-Type must be application/x-www-form-urlencoded"}, 400)
    form = req.form()
    creds = FAKE_CREDENTIALS[PLATFORM]
    if form.get("grant_type") != "refresh_token":
        return json_response({"error": "unsupported_grant_type",
                              "error_description": "sandbox: only grant_type=refresh_token is emulated"}, 400)
    for key in ("refresh_token", "client_id", "client_secret"):
        if not form.get(key):
            return json_response({"error": "invalid_request",
                                  "error_description": f"A required parameter \"{key}\" is missing"}, 400)
    if form["client_id"] != creds["LINKEDIN_CLIENT_ID"] or form["client_secret"] != creds["LINKEDIN_CLIENT_SECRET"]:
        return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
    if form["refresh_token"] != creds["LINKEDIN_REFRESH_TOKEN"]:
        return json_response({"error": "invalid_grant",
                              "error_description": "The provided authorization grant or refresh token is invalid, "
                                                   "expired or revoked"}, 400)
    # LinkedIn hands back the same refresh token; refreshing does not extend its life (§4.6).
    return json_response({"access_token": ctx.issue_token(PLATFORM), "expires_in": ACCESS_TOKEN_SECONDS,
                          "refresh_token": form["refresh_token"], "refresh_token_expires_in": REFRESH_TOKEN_SECONDS})


def throttle_response(req: Request) -> Response:
    """429; LinkedIn documents no Retry-After (§4.5, UNCONFIRMED), so none is sent."""
    return error(429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION DAY limit for calls to this "
                                           "resource is reached.")


def malformed_response(req: Request) -> Response:
    """Shape drift: a daily row without costInLocalCurrency, or an account without currency."""
    if req.path.startswith("/rest/adAccounts/"):
        return json_response({"name": "Demo account", "status": "ACTIVE", "type": "BUSINESS"})
    m = _DATE_RANGE.match(req.arg("dateRange") or "")
    day = (_date(*m.group(1, 2, 3)) if m else None) or data.today()
    bound = {"year": day.year, "month": day.month, "day": day.day}
    return json_response({"paging": {"start": 0, "count": 10, "links": []},
                          "elements": [{"dateRange": {"start": bound, "end": bound}, "costInUsd": "12.5"}]})


PATH_SPACE = r"/rest/|/oauth/v2/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return error(status, "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED", message)


def routes() -> list[Route]:
    return [Route("GET", r"/rest/adAnalytics", analytics),
            Route("GET", r"/rest/adAccounts/(?P<account>[^/]+)", ad_account),
            Route("POST", TOKEN_PATH, token, api=False)]
