"""LinkedIn Marketing API emulator: versioned REST ``adAnalytics``, ``adAccounts`` and the OAuth
refresh grant.

Written from shared/platform-apis/...md section 4, not from fetchers/linkedin.py. Errors are HTTP
statuses with a ``{"status", "code", "message"}`` body; the 426 ``NONEXISTENT_VERSION`` body is the
confirmed one (§4.1), the other codes follow LinkedIn's naming (UNCONFIRMED, §4.5).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response

PLATFORM = "linkedin"
TOKEN_PATH = "/oauth/v2/accessToken"
ENV_PREFIX = "LINKEDIN"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "LINKEDIN_CLIENT_ID": "sandbox-linkedin-client",
    "LINKEDIN_CLIENT_SECRET": "sandbox-linkedin-secret",
    "LINKEDIN_ACCESS_TOKEN": "sandbox-linkedin-token",
    "LINKEDIN_REFRESH_TOKEN": "sandbox-linkedin-refresh",
}
ACCESS_TOKEN_SECONDS = 5_184_000  # 60 days (§4.6)
REFRESH_TOKEN_SECONDS = 31_536_000  # 365 days
ACTIVE_VERSION_MONTHS = 12  # each monthly version lives about a year (§4.1)
MAX_FIELDS = 20
USD_RATE = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.0835"),
    "GBP": Decimal("1.2650"),
    "JPY": Decimal("0.00665"),
    "CAD": Decimal("0.7310"),
    "AUD": Decimal("0.6540"),
}

URN_PREFIX = "urn:li:sponsoredAccount:"
_URN = re.compile(r"^urn:li:sponsoredAccount:(\d+)$")
# Percent-encoded Rest.li syntax characters: ( ) , anywhere, and : too where no URN is expected.
_ENCODED_SYNTAX = {
    "dateRange": re.compile(r"%2[89C]|%3A", re.IGNORECASE),
    "accounts": re.compile(r"%2[89C]", re.IGNORECASE),
}


class RestliError(ValueError):
    """A query value that is not Rest.li 2.0 syntax."""


def parse_restli(raw: str):
    """Decode one Rest.li 2.0 query value as LinkedIn reads it: ``(k:v,...)`` is an object whose
    keys may come in any order, ``List(a,b)`` a list, anything else a string. The syntax
    characters ``( ) , :`` must arrive bare; inside a string a reserved character is
    percent-encoded (a URN's colons travel as ``%3A``), so strings are percent-decoded after
    parsing. Raises :class:`RestliError` for anything else."""
    pos = 0

    def value():
        nonlocal pos
        if raw.startswith("List(", pos):
            pos += 5
            items = []
            if raw.startswith(")", pos):
                pos += 1
                return items
            while True:
                items.append(value())
                if pos < len(raw) and raw[pos] == ",":
                    pos += 1
                    continue
                expect(")")
                return items
        if raw.startswith("(", pos):
            pos += 1
            obj: dict = {}
            if raw.startswith(")", pos):
                pos += 1
                return obj
            while True:
                key = string()
                if not key:
                    raise RestliError(f"an empty key at position {pos}")
                expect(":")
                if key in obj:
                    raise RestliError(f"the key {key!r} appears twice")
                obj[key] = value()
                if pos < len(raw) and raw[pos] == ",":
                    pos += 1
                    continue
                expect(")")
                return obj
        return string()

    def string() -> str:
        nonlocal pos
        start = pos
        while pos < len(raw) and raw[pos] not in "(),:":
            pos += 1
        return urllib.parse.unquote(raw[start:pos])

    def expect(ch: str) -> None:
        nonlocal pos
        if pos >= len(raw) or raw[pos] != ch:
            found = repr(raw[pos]) if pos < len(raw) else "the end"
            raise RestliError(f"expected {ch!r} at position {pos}, found {found}")
        pos += 1

    out = value()
    if pos != len(raw):
        raise RestliError(f"unexpected {raw[pos]!r} at position {pos}")
    return out


def _restli_error(name: str, raw: str, why: str, expected: str) -> Response:
    if _ENCODED_SYNTAX[name].search(raw):
        why = "Rest.li syntax characters ( ) , : must not be percent-encoded"
    return error(400, "ILLEGAL_ARGUMENT", f"Invalid value for param: {name} ({why}; expected {expected})")


def _restli_date(obj) -> dt.date | None:
    if not isinstance(obj, dict) or set(obj) != {"year", "month", "day"}:
        return None
    if not all(isinstance(v, str) and v.isdigit() for v in obj.values()):
        return None
    return _date(obj["year"], obj["month"], obj["day"])


def parse_date_range(raw: str) -> tuple[dt.date, dt.date | None] | str:
    """``(start:(year,month,day)[,end:(...)])`` with keys in any order: (start, end or None) or
    why it is not one."""
    try:
        obj = parse_restli(raw)
    except RestliError as exc:
        return str(exc)
    if not isinstance(obj, dict) or "start" not in obj or not set(obj) <= {"start", "end"}:
        return "a dateRange is an object with start and an optional end"
    start = _restli_date(obj["start"])
    end = _restli_date(obj["end"]) if "end" in obj else None
    if start is None or ("end" in obj and end is None):
        return "each bound is (year:YYYY,month:M,day:D)"
    return start, end


def parse_accounts(raw: str) -> list[str] | str:
    """``List(urn%3Ali%3AsponsoredAccount%3A<id>,...)``: the account ids, or why not."""
    try:
        items = parse_restli(raw)
    except RestliError as exc:
        return str(exc)
    if not isinstance(items, list) or not items:
        return "accounts is a non-empty List(...) of sponsoredAccount URNs"
    ids = []
    for item in items:
        m = _URN.match(item) if isinstance(item, str) else None
        if not m:
            return f"{str(item)[:60]!r} is not a urn:li:sponsoredAccount URN"
        ids.append(m.group(1))
    return ids


def error(status: int, code: str, message: str, service_code: int | None = None) -> Response:
    body = {"status": status, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return json_response(body, status)


def _digits(account: str) -> str:
    account = str(account)
    return account[len(URN_PREFIX) :] if account.startswith(URN_PREFIX) else account


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, _digits(account_id), day, scale=2, generation=generation)


def _plain(amount: Decimal) -> str:
    """LinkedIn drops trailing zeros ("98.7", §4.3)."""
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def active_versions(today: dt.date | None = None) -> set[str]:
    """The LinkedIn-Version values LinkedIn accepts on ``today`` (the last ACTIVE_VERSION_MONTHS months).
    ``ADSPEND_SANDBOX_VERSION_TODAY=YYYY-MM-DD`` fixes the day this check uses (CI's year-ahead run:
    a version pinned in fetchers/linkedin.py really retires after a year; that run is about dates of
    data, and the run on the real date checks the version)."""
    pinned = os.environ.get("ADSPEND_SANDBOX_VERSION_TODAY", "").strip()
    today = today or (dt.date.fromisoformat(pinned) if pinned else dt.datetime.now(dt.UTC).date())
    y, m, out = today.year, today.month, set()
    for _ in range(ACTIVE_VERSION_MONTHS):
        out.add(f"{y}{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out


def _gateway_checks(req: Request, ctx: Context, account: str | None) -> Response | None:
    """Version header, token, Rest.li protocol header: what every versioned call goes through."""
    version = req.header("linkedin-version")
    if not version:
        return error(
            400,
            "VERSION_MISSING",
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        )
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
        return error(
            400,
            "ILLEGAL_ARGUMENT",
            "Invalid query parameters passed to request (send X-Restli-Protocol-Version: 2.0.0)",
        )
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
    # Rest.li values are read from the query exactly as sent (before percent-decoding); a server
    # that cannot hand it on gets the decoded value quoted back the way a client would send it.
    raw_query = getattr(req, "raw_query", "") or ""
    raw_range, raw_accounts = _raw_param(raw_query, "dateRange"), _raw_param(raw_query, "accounts")
    if raw_accounts is None and req.arg("accounts") is not None:
        raw_accounts = urllib.parse.quote(req.arg("accounts"), safe="(),")
    if raw_range is None and req.arg("dateRange") is not None:
        raw_range = urllib.parse.quote(req.arg("dateRange"), safe="(),:")
    accounts = parse_accounts(raw_accounts) if raw_accounts is not None else "the accounts parameter is required"
    bad = _gateway_checks(req, ctx, accounts[0] if isinstance(accounts, list) else None)
    if bad:
        return bad
    q = req.arg("q")
    if q != "analytics":
        return error(
            400,
            "ILLEGAL_ARGUMENT",
            "Missing or unsupported finder: q=analytics"
            if q is None
            else f"sandbox: only the analytics finder is emulated, not q={q}",
        )
    pivot, granularity = req.arg("pivot"), req.arg("timeGranularity")
    if pivot is None or granularity is None:
        return error(
            400, "ILLEGAL_ARGUMENT", f"Missing required param: {'pivot' if pivot is None else 'timeGranularity'}"
        )
    if pivot != "ACCOUNT":
        return error(400, "ILLEGAL_ARGUMENT", f"sandbox: only pivot=ACCOUNT is emulated, not pivot={pivot}")
    if granularity != "DAILY":
        return error(400, "ILLEGAL_ARGUMENT", f"sandbox: only timeGranularity=DAILY is emulated, not {granularity}")
    if raw_range is None:
        return error(400, "ILLEGAL_ARGUMENT", "Missing required param: dateRange")
    rng = parse_date_range(raw_range)
    if isinstance(rng, str):
        return _restli_error("dateRange", raw_range, rng, "(start:(year:Y,month:M,day:D),end:(...))")
    start, end = rng[0], rng[1] or data.today()  # open end: up to now
    if end < start:
        return error(400, "ILLEGAL_ARGUMENT", "Invalid value for param: dateRange (end is before start)")
    if isinstance(accounts, str):
        return _restli_error("accounts", raw_accounts or "", accounts, "List(urn%3Ali%3AsponsoredAccount%3A<id>)")
    fields_arg = req.arg("fields")
    # Without `fields` only impressions and clicks come back (§4.2, linkedin-api-js-client #23).
    fields = fields_arg.split(",") if fields_arg else ["impressions", "clicks"]
    if len(fields) > MAX_FIELDS:
        return error(400, "ILLEGAL_ARGUMENT", f"Too many fields requested: at most {MAX_FIELDS}")

    elements = []
    for acc in accounts:
        urn = URN_PREFIX + acc
        currency = data.account_currency(acc)
        day = start
        while day <= end:
            cost = data.daily_amount(PLATFORM, acc, day, scale=2, generation=ctx.generation(PLATFORM, day))
            if cost:  # no activity, no element
                bound = {"year": day.year, "month": day.month, "day": day.day}
                full = {
                    "pivotValues": [urn],
                    "dateRange": {"start": bound, "end": dict(bound)},
                    "costInLocalCurrency": _plain(cost),
                    "costInUsd": _plain((cost * USD_RATE.get(currency, Decimal(1))).quantize(Decimal("0.01"))),
                    "impressions": int(cost * 41),
                    "clicks": int(cost / 4),
                }
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
    return json_response(
        {
            "id": int(account),
            "name": prof["name"],
            "currency": prof["currency"],
            "status": "ACTIVE",
            "type": "BUSINESS",
            "test": False,
            "reference": f"urn:li:organization:{int(account) % 100000}",
            "servingStatuses": ["RUNNABLE"],
        }
    )


def token(req: Request, ctx: Context) -> Response:
    if "application/x-www-form-urlencoded" not in (req.header("content-type") or ""):
        return json_response(
            {"error": "invalid_request", "error_description": "Content-Type must be application/x-www-form-urlencoded"},
            400,
        )
    form = req.form()
    creds = CREDENTIALS
    if form.get("grant_type") != "refresh_token":
        return json_response(
            {
                "error": "unsupported_grant_type",
                "error_description": "sandbox: only grant_type=refresh_token is emulated",
            },
            400,
        )
    for key in ("refresh_token", "client_id", "client_secret"):
        if not form.get(key):
            return json_response(
                {"error": "invalid_request", "error_description": f'A required parameter "{key}" is missing'}, 400
            )
    if form["client_id"] != creds["LINKEDIN_CLIENT_ID"] or form["client_secret"] != creds["LINKEDIN_CLIENT_SECRET"]:
        return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
    if form["refresh_token"] != creds["LINKEDIN_REFRESH_TOKEN"]:
        return json_response(
            {
                "error": "invalid_grant",
                "error_description": "The provided authorization grant or refresh token is invalid, expired or revoked",
            },
            400,
        )
    # LinkedIn hands back the same refresh token; refreshing does not extend its life (§4.6).
    return json_response(
        {
            "access_token": ctx.issue_token(PLATFORM),
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": form["refresh_token"],
            "refresh_token_expires_in": REFRESH_TOKEN_SECONDS,
        }
    )


def throttle_response(req: Request) -> Response:
    """429; LinkedIn documents no Retry-After (§4.5, UNCONFIRMED), so none is sent."""
    return error(
        429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."
    )


def malformed_response(req: Request) -> Response:
    """Shape drift: a daily row without costInLocalCurrency, or an account without currency."""
    if req.path.startswith("/rest/adAccounts/"):
        return json_response({"name": "Demo account", "status": "ACTIVE", "type": "BUSINESS"})
    rng = parse_date_range(_raw_param(getattr(req, "raw_query", "") or "", "dateRange") or "")
    day = rng[0] if isinstance(rng, tuple) else data.today()
    bound = {"year": day.year, "month": day.month, "day": day.day}
    return json_response(
        {
            "paging": {"start": 0, "count": 10, "links": []},
            "elements": [{"dateRange": {"start": bound, "end": bound}, "costInUsd": "12.5"}],
        }
    )


PATH_SPACE = r"/rest/|/oauth/v2/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return error(status, "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED", message)


def routes() -> list[Route]:
    return [
        Route("GET", r"/rest/adAnalytics", analytics),
        Route("GET", r"/rest/adAccounts/(?P<account>[^/]+)", ad_account),
        Route("POST", TOKEN_PATH, token, api=False),
    ]
