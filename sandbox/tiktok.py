"""TikTok API for Business v1.3 emulator: the synchronous integrated report and advertiser info.

Written from shared/platform-apis/...md section 3, not from fetchers/tiktok.py. TikTok answers
every error as HTTP 200 with a non-zero ``code`` in its ``code``/``message``/``request_id``
envelope; every parameter is in the query string, arrays as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response

PLATFORM = "tiktok"
TOKEN_PATH = ""  # advertiser tokens are long-lived; no refresh grant (§3.6)
ENV_PREFIX = "TIKTOK"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "TIKTOK_APP_ID": "sandbox-tiktok-app",
    "TIKTOK_APP_SECRET": "sandbox-tiktok-secret",
    "TIKTOK_ACCESS_TOKEN": "sandbox-tiktok-token",
}
VERSION = "v1.3"
MAX_SPAN_DAYS = 30
DEFAULT_PAGE_SIZE = 10  # the SDK's default (§3.4)
MAX_PAGE_SIZE = 1000

DATA_LEVELS = {"AUCTION_ADVERTISER", "AUCTION_CAMPAIGN", "AUCTION_ADGROUP", "AUCTION_AD"}
ADVERTISER_DIMENSIONS = {"advertiser_id", "stat_time_day", "stat_time_hour"}
METRICS = {"spend", "cash_spend", "voucher_spend", "impressions", "clicks"}
INFO_FIELDS = {"advertiser_id", "name", "currency", "timezone", "display_timezone", "status"}


def _request_id() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}{random.randrange(10**16):016d}"


def envelope(code: int, message: str, payload: dict | None = None) -> Response:
    return json_response({"code": code, "message": message, "request_id": _request_id(), "data": payload or {}})


def param_error(message: str) -> Response:
    return envelope(40002, message)


def _token_error(state: str) -> Response:
    return {
        "missing": envelope(40104, "Access token is null, please check your access token."),
        "expired": envelope(40102, "Access token has expired."),
        "revoked": envelope(40105, "Access token is incorrect or has been revoked."),
        "invalid": envelope(40105, "Access token is incorrect or has been revoked."),
    }[state]


def _json_list(req: Request, name: str, required: bool = True) -> list[str] | None | Response:
    raw = req.arg(name)
    if raw is None:
        return param_error(f"{name}: Missing data for required field.") if required else None
    try:
        value = json.loads(raw)
    except ValueError:
        return param_error(f"{name}: Not a valid list.")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return param_error(f"{name}: Not a valid list.")
    return value


def _int_arg(req: Request, name: str, default: int) -> int | None:
    raw = req.arg(name)
    if raw is None:
        return default
    return int(raw) if re.fullmatch(r"\d{1,9}", raw) else None


def _parts(account: str, day: dt.date, generation: int) -> tuple[Decimal, Decimal]:
    """(cash_spend, voucher_spend) of one advertiser-day; spend is their sum (§3.3)."""
    spend = data.daily_amount(PLATFORM, account, day, scale=2, generation=generation)
    voucher = (spend * Decimal(day.day % 4) / 20).quantize(Decimal("0.01"))
    return spend - voucher, voucher


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    cash, voucher = _parts(str(account_id), day, generation)
    return cash + voucher


def _version_ok(req: Request) -> Response | None:
    if req.match.get("version") != VERSION:
        return json_response({"code": 40400, "message": f"API version {req.match.get('version')} not found"}, 404)
    return None


def report(req: Request, ctx: Context) -> Response:
    bad = _version_ok(req)
    if bad:
        return bad
    advertiser = req.arg("advertiser_id")
    problem = access_check(ctx, req, PLATFORM, req.header("access-token"), advertiser)
    if problem:
        return _token_error(problem)
    if not advertiser:
        return param_error("advertiser_id: Missing data for required field.")
    if not re.fullmatch(r"\d{6,20}", advertiser):
        return param_error("advertiser_id: Not a valid integer.")
    if req.arg("service_type", "AUCTION") != "AUCTION":
        return param_error("service_type: Must be one of: AUCTION, RESERVATION.")
    if req.arg("report_type") != "BASIC":
        return param_error(
            "report_type: Missing data for required field."
            if req.arg("report_type") is None
            else "sandbox: only report_type BASIC is emulated."
        )
    data_level = req.arg("data_level")
    if data_level not in DATA_LEVELS:
        return param_error(f"data_level: Must be one of: {', '.join(sorted(DATA_LEVELS))}.")
    dims = _json_list(req, "dimensions")
    if isinstance(dims, Response):
        return dims
    metrics = _json_list(req, "metrics", required=False)
    if isinstance(metrics, Response):
        return metrics
    metrics = metrics or ["spend", "impressions", "clicks"]
    if data_level != "AUCTION_ADVERTISER" or set(dims) != {"advertiser_id", "stat_time_day"}:
        unknown = [d for d in dims if d not in ADVERTISER_DIMENSIONS]
        return param_error(
            f"dimensions: invalid dimension(s) {unknown} for {data_level}."
            if unknown
            else "sandbox: only dimensions advertiser_id + stat_time_day at AUCTION_ADVERTISER are emulated."
        )
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        return param_error(f"metrics: invalid metric(s) {unknown}.")
    try:
        start = dt.date.fromisoformat(req.arg("start_date") or "")
        end = dt.date.fromisoformat(req.arg("end_date") or "")
    except ValueError:
        return param_error("start_date/end_date: Missing or not a valid date (YYYY-MM-DD).")
    if end < start:
        return param_error("end_date must be later than or equal to start_date.")
    if (end - start).days + 1 > MAX_SPAN_DAYS:
        return param_error("max time span is 30 days when use stat_time_day")
    if ctx.take_fault(PLATFORM, advertiser, ("too_large",)):  # switchable: TikTok's 40067 (§3.5)
        return envelope(40067, "Your query is too large. Please reduce the date range or dimensions.")
    page = _int_arg(req, "page", 1)
    page_size = _int_arg(req, "page_size", DEFAULT_PAGE_SIZE)
    if page is None or page < 1:
        return param_error("page: Must be greater than or equal to 1.")
    if page_size is None or not 1 <= page_size <= MAX_PAGE_SIZE:
        return param_error("page_size: Must be between 1 and 1000.")

    rows = []
    day = start
    while day <= end:
        cash, voucher = _parts(advertiser, day, ctx.generation(PLATFORM, day))
        spend = cash + voucher
        if spend:
            values = {
                "spend": f"{spend:.2f}",
                "cash_spend": f"{cash:.2f}",
                "voucher_spend": f"{voucher:.2f}",
                "impressions": str(int(spend * 37)),
                "clicks": int(spend / 3),
            }  # mixed types (§3.3)
        elif day.toordinal() % 2:
            values = None  # a day with no delivery left out ...
        else:  # ... or its row with every metric empty: "-" (§3.3)
            values = {m: "-" for m in METRICS}
        if values is not None:
            rows.append(
                {
                    "dimensions": {"advertiser_id": advertiser, "stat_time_day": f"{day} 00:00:00"},
                    "metrics": {m: values[m] for m in metrics},
                }
            )
        day += dt.timedelta(days=1)
    total_page = math.ceil(len(rows) / page_size)
    chunk = rows[(page - 1) * page_size : page * page_size]
    return envelope(
        0,
        "OK",
        {
            "list": chunk,
            "page_info": {"page": page, "page_size": page_size, "total_number": len(rows), "total_page": total_page},
        },
    )


def advertiser_info(req: Request, ctx: Context) -> Response:
    bad = _version_ok(req)
    if bad:
        return bad
    ids = _json_list(req, "advertiser_ids")
    if isinstance(ids, Response):
        return ids
    problem = access_check(ctx, req, PLATFORM, req.header("access-token"), ids[0] if len(ids) == 1 else None)
    if problem:
        return _token_error(problem)
    if not 1 <= len(ids) <= 100 or not all(re.fullmatch(r"\d{6,20}", a) for a in ids):
        return param_error("advertiser_ids: between 1 and 100 numeric advertiser ids.")
    fields = _json_list(req, "fields", required=False)
    if isinstance(fields, Response):
        return fields
    fields = fields or ["advertiser_id", "name", "currency", "timezone"]
    unknown = [f for f in fields if f not in INFO_FIELDS]
    if unknown:
        return param_error(f"fields: invalid field(s) {unknown}.")
    out = []
    for a in ids:
        prof = data.account_profile(PLATFORM, a)
        full = {
            "advertiser_id": a,
            "name": prof["name"],
            "currency": prof["currency"],
            "timezone": prof["timezone"],
            "display_timezone": prof["timezone"],
            "status": "STATUS_ENABLE",
        }
        out.append({f: full[f] for f in fields})
    return envelope(0, "OK", {"list": out})


def throttle_response(req: Request) -> Response:
    """TikTok throttles with HTTP 200 and code 40100, no Retry-After (§3.5)."""
    return envelope(40100, "Too many requests. Please retry in some time.")


def malformed_response(req: Request) -> Response:
    """A report row without its spend metric (shape drift): must never read as zero."""
    advertiser = req.arg("advertiser_id") or "7000000000001"
    day = req.arg("start_date") or data.today().isoformat()
    return envelope(
        0,
        "OK",
        {
            "list": [
                {
                    "dimensions": {"advertiser_id": advertiser, "stat_time_day": f"{day} 00:00:00"},
                    "metrics": {"impressions": "1200"},
                }
            ],
            "page_info": {"page": 1, "page_size": 10, "total_number": 1, "total_page": 1},
        },
    )


PATH_SPACE = r"/open_api/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return json_response(
        {"code": 40400 if status == 404 else 40000, "message": message, "request_id": _request_id(), "data": {}}, status
    )


def routes() -> list[Route]:
    return [
        Route("GET", r"/open_api/(?P<version>v[\d.]+)/report/integrated/get/", report),
        Route("GET", r"/open_api/(?P<version>v[\d.]+)/advertiser/info/", advertiser_info),
    ]
