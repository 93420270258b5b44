"""Pinterest API v5 emulator: ad account, sync analytics, async reports, continuous refresh tokens.

Written from shared/platform-apis part 1, section 6 (the official OpenAPI file v5.23.0):

- ``GET /v5/ad_accounts/{id}``: the AdAccount (currency; no timezone: reporting days are UTC).
- ``GET /v5/ad_accounts/{id}/analytics``: a top-level array of daily rows; ``columns`` is one
  comma-separated string; at most 90 days back and 90 days per request.
- ``POST /v5/ad_accounts/{id}/reports`` (JSON body only) -> ``{"report_status", "token"}``;
  ``GET /v5/ad_accounts/{id}/reports?token=`` until ``FINISHED`` with a pre-signed ``url`` valid
  5 minutes; the JSON file is keyed by entity id and leaves out all-zero rows. 914 days back,
  186 days per report.
- ``POST /v5/oauth/token``: HTTP Basic client auth (the demo app id and secret), form body; every
  refresh returns a NEW refresh token (continuous refresh tokens, 60 days from issue). Accepted:
  the configured demo refresh token and every refresh token this sandbox issued.
- Errors: ``{"code": <int>, "message": "..."}`` with the HTTP status; throttling is 429 with code
  2726 and the wait inside the message (no Retry-After header).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response, parse_iso_date

PLATFORM = "pinterest"
TOKEN_PATH = "/v5/oauth/token"
ENV_PREFIX = "PINTEREST"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "PINTEREST_APP_ID": "sandbox-pinterest-app",
    "PINTEREST_APP_SECRET": "sandbox-pinterest-secret",
    "PINTEREST_REFRESH_TOKEN": "pinr.sandbox-pinterest-refresh",
}
DOWNLOAD_PREFIX = "/_pinterest-reports"

SYNC_BACK_DAYS = 90
SYNC_RANGE_DAYS = 90
REPORT_BACK_DAYS = 914
REPORT_RANGE_DAYS = 186
URL_TTL_SECONDS = 300
REPORT_TTL_SECONDS = 3600
GRANULARITIES = ("TOTAL", "DAY", "HOUR", "WEEK", "MONTH")
LEVELS = ("ADVERTISER", "CAMPAIGN", "AD_GROUP", "PIN_PROMOTION", "PRODUCT_GROUP", "PRODUCT_ITEM", "KEYWORD")
SPEND_COLUMNS = ("SPEND_IN_MICRO_DOLLAR", "SPEND_IN_DOLLAR")
CAMPAIGNS = 2  # every account spends through two campaigns (summed at ADVERTISER level)
_SIGNING_KEY = secrets.token_hex(16)


def _error(status: int, code: int, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


def _auth_error(problem: str) -> Response:
    # Pinterest answers a missing, expired or revoked token alike (401, code 2)
    return _error(401, 2, "Authentication failed.")


def _bad_params(message: str) -> Response:
    return _error(400, 400, f"Invalid ad account analytics parameters. {message}")


# --- data ---------------------------------------------------------------------------------------


def _campaign_ids(account: str) -> list[str]:
    return [f"{account[-6:]}{i:06d}" for i in range(1, CAMPAIGNS + 1)]


def _campaign_micros(account: str, day: dt.date, generation: int) -> dict[str, int]:
    return {
        cid: int(data.daily_amount(PLATFORM, account, day, scale=6, part=cid, generation=generation) * 1_000_000)
        for cid in _campaign_ids(account)
    }


def expected_daily(account_id: str, day: dt.date, generation: int) -> Decimal:
    return sum((Decimal(m) / 1_000_000 for m in _campaign_micros(account_id, day, generation).values()), Decimal(0))


def _columns_row(micros: int, columns: list[str]) -> dict:
    row: dict = {}
    if "SPEND_IN_MICRO_DOLLAR" in columns:
        row["SPEND_IN_MICRO_DOLLAR"] = micros
    if "SPEND_IN_DOLLAR" in columns:
        row["SPEND_IN_DOLLAR"] = float(Decimal(micros) / 1_000_000)  # the wire carries a JSON number
    return row


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    last = min(end, data.today())
    return [start + dt.timedelta(days=i) for i in range((last - start).days + 1)]


# --- shared validation --------------------------------------------------------------------------


def _check_range(start_raw, end_raw, back_days: int, range_days: int, what: str) -> tuple | Response:
    start, end = parse_iso_date(start_raw), parse_iso_date(end_raw)
    if start_raw is None or end_raw is None:
        return _bad_params("start_date and end_date are required.")
    if start is None or end is None:
        return _bad_params("start_date and end_date must be dates in YYYY-MM-DD format.")
    if end < start:
        return _bad_params("end_date must not be before start_date.")
    if (end - start).days + 1 > range_days:
        return _bad_params(f"The {what} date range may span at most {range_days} days.")
    if start < data.today() - dt.timedelta(days=back_days):
        return _bad_params(f"The {what} start_date may be at most {back_days} days in the past.")
    return start, end


def _check_columns(columns) -> list[str] | Response:
    if not columns:
        return _bad_params("At least one column is required.")
    unknown = [c for c in columns if c not in SPEND_COLUMNS]
    if unknown:
        return _error(
            400,
            400,
            f"sandbox: only the columns {', '.join(SPEND_COLUMNS)} are emulated, not {', '.join(unknown)[:80]}.",
        )
    return list(columns)


# --- handlers -----------------------------------------------------------------------------------


def _ad_account(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem:
        return _auth_error(problem)
    profile = data.account_profile(PLATFORM, account)
    return json_response(
        {
            "id": account,
            "name": profile["name"],
            "owner": {"username": "sandbox"},
            "country": "US",
            "currency": profile["currency"],
            "permissions": ["ADMIN"],
            "created_time": 1600000000,
            "updated_time": 1700000000,
        }
    )


def _analytics(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem:
        return _auth_error(problem)
    checked = _check_range(req.arg("start_date"), req.arg("end_date"), SYNC_BACK_DAYS, SYNC_RANGE_DAYS, "analytics")
    if isinstance(checked, Response):
        return checked
    start, end = checked
    granularity = req.arg("granularity")
    if granularity not in GRANULARITIES:
        return _bad_params(f"granularity must be one of {', '.join(GRANULARITIES)}.")
    if granularity != "DAY":
        return _error(400, 400, "sandbox: only granularity=DAY is emulated.")
    # explode: false -> one comma-separated value; a repeated parameter is not the documented form
    if len(req.query.get("columns", [])) > 1:
        return _bad_params("columns must be one comma-separated value.")
    columns = _check_columns([c for c in (req.arg("columns") or "").split(",") if c])
    if isinstance(columns, Response):
        return columns
    rows = []
    for day in _days(start, end):
        micros = sum(_campaign_micros(account, day, ctx.generation(PLATFORM, day)).values())
        # A day without delivery still has its row, but "columns with no value may be left out of
        # a row" (section 6.3): the spend columns are absent, not 0.
        rows.append(
            {"AD_ACCOUNT_ID": account, "DATE": day.isoformat(), **(_columns_row(micros, columns) if micros else {})}
        )
    return json_response(rows)


def _create_report(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem:
        return _auth_error(problem)
    if req.query:
        return _bad_params("The reports endpoint takes a JSON body; query parameters are not accepted.")
    if "application/json" not in (req.header("content-type") or ""):
        return _error(415, 415, "Content-Type must be application/json.")
    try:
        body = req.json()
    except ValueError:
        return _error(400, 400, "Request body is not valid JSON.")
    if not isinstance(body, dict):
        return _error(400, 400, "Request body must be a JSON object.")
    checked = _check_range(body.get("start_date"), body.get("end_date"), REPORT_BACK_DAYS, REPORT_RANGE_DAYS, "report")
    if isinstance(checked, Response):
        return checked
    if body.get("granularity") not in GRANULARITIES:
        return _bad_params(f"granularity must be one of {', '.join(GRANULARITIES)}.")
    if body.get("granularity") != "DAY":
        return _error(400, 400, "sandbox: only granularity=DAY is emulated.")
    if body.get("level") not in LEVELS:
        return _bad_params(f"level must be one of {', '.join(LEVELS)}.")
    if body.get("level") not in ("ADVERTISER", "CAMPAIGN"):
        return _error(400, 400, "sandbox: only level ADVERTISER and CAMPAIGN are emulated.")
    if not isinstance(body.get("columns"), list):
        return _bad_params("columns must be a list of column names.")
    columns = _check_columns(body["columns"])
    if isinstance(columns, Response):
        return columns
    if body.get("report_format", "JSON") != "JSON":
        return _error(400, 400, "sandbox: only report_format JSON is emulated.")
    fault = ctx.take_fault(PLATFORM, account, ("report_failed", "report_stuck"))
    token = secrets.token_hex(16)
    with ctx.lock:
        ctx.jobs[token] = {
            "platform": PLATFORM,
            "account": account,
            "start": checked[0],
            "end": checked[1],
            "level": body["level"],
            "columns": columns,
            "polls": 0,
            "submitted": time.monotonic(),
            "fault": fault,
            "created": time.time(),
        }
    return json_response({"report_status": "IN_PROGRESS", "token": token, "message": None})


def _sign(token: str, issued: int) -> str:
    return hashlib.sha256(f"{_SIGNING_KEY}|{token}|{issued}".encode()).hexdigest()


def _report_status(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem:
        return _auth_error(problem)
    token = req.arg("token")
    if not token:
        return _bad_params("token is required.")
    with ctx.lock:
        job = ctx.jobs.get(token)
        if not job or job.get("platform") != PLATFORM or job["account"] != account:
            return json_response({"report_status": "DOES_NOT_EXIST", "url": None, "size": None})
        if time.time() - job["created"] > REPORT_TTL_SECONDS:
            return json_response({"report_status": "EXPIRED", "url": None, "size": None})
        job["polls"] += 1
        done = ctx.report_done(job)
        fault = job["fault"]
    if fault == "report_stuck" or not done:
        return json_response({"report_status": "IN_PROGRESS", "url": None, "size": None})
    if fault == "report_failed":
        return json_response({"report_status": "FAILED", "url": None, "size": None})
    issued = int(time.time())
    host = req.header("host") or "127.0.0.1"
    url = (
        f"http://{host}{DOWNLOAD_PREFIX}/{token}.json?X-Amz-Date={issued}"
        f"&X-Amz-Expires={URL_TTL_SECONDS}&X-Amz-Signature={_sign(token, issued)}"
    )
    return json_response({"report_status": "FINISHED", "url": url, "size": len(_report_file(job, ctx))})


def _report_file(job: dict, ctx: Context) -> bytes:
    account, out = job["account"], {}
    for day in _days(job["start"], job["end"]):
        per_campaign = _campaign_micros(account, day, ctx.generation(PLATFORM, day))
        if job["level"] == "ADVERTISER":
            per_entity = {account: sum(per_campaign.values())}
            id_field = "ADVERTISER_ID"
        else:
            per_entity, id_field = per_campaign, "CAMPAIGN_ID"
        for entity, micros in per_entity.items():
            if micros:  # JSON reports leave out rows whose every column is 0
                out.setdefault(entity, []).append(
                    {id_field: entity, "DATE": day.isoformat(), **_columns_row(micros, job["columns"])}
                )
    return json.dumps(out).encode()


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(status, body.encode(), {"Content-Type": "application/xml"})


def _download(req: Request, ctx: Context) -> Response:
    if req.header("authorization"):
        return _s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm "
            "query parameter, Signature query string parameter or the "
            "Authorization header should be specified",
        )
    token = req.match["token"]
    try:
        issued = int(req.arg("X-Amz-Date") or "")
    except ValueError:
        return _s3_error(
            403,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    if req.arg("X-Amz-Signature") != _sign(token, issued):
        return _s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if time.time() - issued > URL_TTL_SECONDS:
        return _s3_error(403, "AccessDenied", "Request has expired")
    with ctx.lock:
        job = ctx.jobs.get(token)
    if not job:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(200, _report_file(job, ctx), {"Content-Type": "application/json"})


# --- OAuth --------------------------------------------------------------------------------------


def _token(req: Request, ctx: Context) -> Response:
    creds = CREDENTIALS
    expected = base64.b64encode(f"{creds['PINTEREST_APP_ID']}:{creds['PINTEREST_APP_SECRET']}".encode()).decode()
    auth = req.header("authorization") or ""
    if not auth.startswith("Basic "):
        return _error(401, 2, "Authentication failed. Send the app id and secret with HTTP Basic auth.")
    if auth[6:].strip() != expected:
        return _error(401, 2, "Authentication failed. Invalid app id or app secret.")
    if "application/x-www-form-urlencoded" not in (req.header("content-type") or ""):
        return _error(400, 400, "Content-Type must be application/x-www-form-urlencoded.")
    form = req.form()
    if form.get("grant_type") != "refresh_token":
        return _error(
            400,
            400,
            "sandbox: only grant_type=refresh_token is emulated (Pinterest also takes "
            "authorization_code and client_credentials).",
        )
    if form.get("continuous_refresh", "true") not in ("true", "false"):
        return _error(400, 400, "continuous_refresh must be true or false.")
    refresh = form.get("refresh_token") or ""
    if not ctx.refresh_token_ok(PLATFORM, refresh):
        return _error(400, 400, "invalid_grant: the refresh token is invalid or expired.")
    # Continuous refresh (§6.6): each refresh hands out a new refresh token, valid 60 days from
    # its issue. The one it replaced is not retired (the docs say it expires, not that it is
    # used up); the configured demo token counts as freshly issued, so the demo keeps working
    # across any number of runs against one sandbox.
    new_refresh = ctx.issue_refresh_token(PLATFORM, "pinr.sbx-")
    return json_response(
        {
            "access_token": ctx.issue_token(PLATFORM),
            "token_type": "bearer",
            "expires_in": 2592000,
            "scope": "ads:read",
            "refresh_token": new_refresh,
            "refresh_token_expires_in": 5184000,
            "refresh_token_expires_at": int(time.time()) + 5184000,
        }
    )


# --- the platform's own throttle and malformed answers ------------------------------------------


def throttle_response(req: Request) -> Response:
    if req.path.endswith(("/analytics", "/reports")):
        return _error(429, 2726, "Reporting query cost limit exceeded. Retry after 1 seconds")
    return _error(429, 8, "You have exceeded your rate limit. Try again later.")


def malformed_response(req: Request) -> Response:
    if req.path.endswith("/analytics"):  # a DAY row without its DATE (a row without the spend
        # column is Pinterest's documented zero day, so that is not the damaged shape)
        return json_response([{"AD_ACCOUNT_ID": req.match.get("account"), "SPEND_IN_MICRO_DOLLAR": 1_500_000}])
    if req.path.endswith("/reports"):
        return json_response({"report_status": "READY", "message": None})
    return json_response({"id": req.match.get("account"), "name": "no currency"})


PATH_SPACE = rf"/v5/|{DOWNLOAD_PREFIX}/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return _error(status, status, message)


def routes() -> list[Route]:
    acct = r"/v5/ad_accounts/(?P<account>\d+)"
    return [
        Route("POST", TOKEN_PATH, _token, api=False),
        Route("GET", acct, _ad_account),
        Route("GET", acct + "/analytics", _analytics),
        Route("POST", acct + "/reports", _create_report),
        Route("GET", acct + "/reports", _report_status),
        Route("GET", DOWNLOAD_PREFIX + r"/(?P<token>[0-9a-f]{32})\.json", _download, api=False),
    ]
