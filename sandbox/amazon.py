"""Amazon Ads emulator: profiles, sponsored ads reporting v3 (async reports) and the LWA token
endpoint, written from platform-apis/amazon-microsoft.md section A (not from our client).

- ``POST /auth/o2/token``: Login-with-Amazon refresh-token grant (access tokens last an hour).
- ``GET /v2/profiles`` and ``GET /v2/profiles/{profileId}``: currencyCode and timezone.
- ``POST /reporting/reports``: strict validation of the vendor content type, headers and body
  (31 days at most, ``date`` and ``cost`` columns, ``timeUnit: DAILY``, ``GZIP_JSON``);
  an identical report still running answers 425 naming it.
- ``GET /reporting/reports/{reportId}``: PENDING -> PROCESSING -> COMPLETED over
  ``ctx.report_polls_needed`` polls (FAILED with a failureReason, or never done, by fault).
- ``GET /offline-report-storage/...json.gz?X-Amz-...``: the pre-signed-style download: gzip
  JSON, one row per campaign per day with activity. Refuses an Authorization header, as S3 does.

Which ad products a profile runs (deterministic from the id): a profile id ending in 0 or 5 runs
Sponsored Products only, one ending in 1 or 6 runs Products and Display, every other all three.
A profile without Sponsored Brands is refused SB reports with Amazon's "do not have access to
Sponsored Brands functionality" 400; one without Display gets an empty SD report.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response
from .credentials import demo_value

PLATFORM = "amazon"
TOKEN_PATH = "/auth/o2/token"
ENV_PREFIX = "AMAZON_ADS"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "AMAZON_CLIENT_ID": "amzn1.application-oa2-client.sandbox",
    "AMAZON_CLIENT_SECRET": "sandbox-amazon-secret",
    "AMAZON_REFRESH_TOKEN": "Atzr|sandbox-amazon-refresh",
}
DOWNLOAD_PREFIX = "/offline-report-storage-sandbox"

CREATE_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
MAX_DAYS = 31
PRODUCTS = {  # adProduct -> (reportTypeId, part code, retention days)
    "SPONSORED_PRODUCTS": ("spCampaigns", "sp", 95),
    "SPONSORED_BRANDS": ("sbCampaigns", "sb", 60),
    "SPONSORED_DISPLAY": ("sdCampaigns", "sd", 65),
}
ALLOWED_COLUMNS = {
    "date",
    "campaignId",
    "campaignName",
    "campaignStatus",
    "campaignBudgetCurrencyCode",
    "campaignBudgetAmount",
    "impressions",
    "clicks",
    "cost",
}
SP_ONLY_COLUMNS = {"spend"}
_SIGNING_KEY = b"adspend-sandbox-amazon-presign"
MARKETPLACES = {
    "USD": ("US", "ATVPDKIKX0DER"),
    "EUR": ("DE", "A1PA6795UKMFR9"),
    "GBP": ("UK", "A1F83G8C2ARO7P"),
    "JPY": ("JP", "A1VC38T7YXB528"),
    "CAD": ("CA", "A2EUQ1WTGCTBG2"),
    "AUD": ("AU", "A39IBJ37TRP1C6"),
}
DEMO_PROFILES = ("3312456789012348", "3312456789012341", "3312456789012340", "4412345678901978")


# --- the data a profile serves ------------------------------------------------------------------


def ad_products(profile_id: str) -> tuple[str, ...]:
    """Part codes of the ad products a sandbox profile runs."""
    last = profile_id[-1:] if profile_id[-1:].isdigit() else "9"
    if last in "05":
        return ("sp",)
    if last in "16":
        return ("sp", "sd")
    return ("sp", "sb", "sd")


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return sum(
        (
            data.daily_amount(PLATFORM, account_id, day, scale=2, part=p, generation=generation)
            for p in ad_products(account_id)
        ),
        Decimal(0),
    )


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def campaign_costs(profile_id: str, part: str, day: dt.date, amount: Decimal) -> list[tuple[int, Decimal]]:
    """A day's cost split over one to four campaigns, summing exactly to ``amount``."""
    if amount == 0:
        return []
    n = 1 + _h(profile_id, part, day, "n") % 4
    quantum = Decimal(1) if data.account_currency(profile_id) == "JPY" else Decimal("0.01")
    weights = [1 + _h(profile_id, part, day, i) % 9 for i in range(n)]
    out, left = [], amount
    for i, w in enumerate(weights):
        cost = left if i == n - 1 else (amount * w / sum(weights)).quantize(quantum)
        cost = min(cost, left)
        left -= cost
        out.append((100000000000000 + _h(profile_id, part, "campaign", i) % 899999999999999, cost))
    return out


def _number(d: Decimal) -> str:
    """A JSON number as Amazon writes it: 14.5, 9.45, 12 (no trailing zeros, never an exponent)."""
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def report_file(job: dict, ctx: Context) -> bytes:
    """The gzip JSON array for a completed report: one object per campaign per active day."""
    profile, part = job["profile"], PRODUCTS[job["config"]["adProduct"]][1]
    columns = job["config"]["columns"]
    rows = []
    if part in ad_products(profile):
        day, end = dt.date.fromisoformat(job["startDate"]), dt.date.fromisoformat(job["endDate"])
        while day <= end:
            amount = data.daily_amount(
                PLATFORM, profile, day, scale=2, part=part, generation=ctx.generation(PLATFORM, day)
            )
            for cid, cost in campaign_costs(profile, part, day, amount):
                values = {
                    "date": json.dumps(day.isoformat()),
                    "campaignId": str(cid),
                    "campaignName": json.dumps(f"{part.upper()} campaign {cid % 1000}"),
                    "campaignStatus": '"ENABLED"',
                    "campaignBudgetCurrencyCode": json.dumps(data.account_currency(profile)),
                    "campaignBudgetAmount": "100",
                    "impressions": str(_h(cid, day) % 5000),
                    "clicks": str(_h(cid, day, "c") % 60),
                    "cost": _number(cost),
                    "spend": _number(cost),
                }
                rows.append("{" + ", ".join(f'"{c}": {values[c]}' for c in columns) + "}")
            day += dt.timedelta(days=1)
    return gzip.compress(("[" + ",\n".join(rows) + "]").encode())


# --- rendering Amazon's answers ---------------------------------------------------------------


def error(status: int, detail: str, headers: dict | None = None) -> Response:
    """The reporting v3 error body: ``{"code": "<status>", "detail": "..."}`` (A.8)."""
    return json_response({"code": str(status), "detail": detail}, status, headers)


def v2_error(status: int, code: str, details: str) -> Response:
    return json_response({"code": code, "details": details}, status)


def throttle_response(req: Request) -> Response:
    return error(429, "Too Many Requests", {"Retry-After": "1"})


def malformed_response(req: Request) -> Response:
    if req.path.startswith("/v2/profiles"):
        return json_response(
            {"profileId": int(req.path.rsplit("/", 1)[-1]) if req.path[-1:].isdigit() else 0, "countryCode": "US"}
        )
    if req.method == "POST":
        return json_response({"status": "PENDING", "configuration": None})
    return json_response({"reportId": req.path.rsplit("/", 1)[-1], "status": "DONE", "url": None})


def account_of(req: Request) -> str | None:
    """The profile a request is for: Amazon carries it in a header, not in the path."""
    return req.header("amazon-advertising-api-scope")


def _auth(req: Request, ctx: Context, scoped: bool) -> Response | None:
    """Headers every API call needs (A.2): bearer token, LWA client id, and the profile scope."""
    profile = account_of(req)
    problem = access_check(ctx, req, PLATFORM, req.bearer(), profile)
    if problem == "missing":
        return error(401, "Missing or malformed Authorization header; expected 'Bearer <access token>'")
    if problem == "revoked":
        with ctx.lock:  # revoking the grant also kills the refresh token (A.2)
            ctx.platform_state.setdefault(PLATFORM, {})["grant_revoked"] = True
    if problem == "invalid":
        return v2_error(401, "UNAUTHORIZED", "Not authorized to access this advertiser")
    if problem in ("expired", "revoked"):
        return error(
            401,
            "The access token has expired or is invalid"
            if problem == "expired"
            else "The access token has been revoked",
        )
    client_id = req.header("amazon-advertising-api-clientid") or ""
    if not client_id.startswith("amzn1.application-oa2-client."):
        return error(400, "Missing or invalid Amazon-Advertising-API-ClientId header")
    if client_id != demo_value(PLATFORM, "_CLIENT_ID"):  # another app's id: not the token's
        return v2_error(401, "UNAUTHORIZED", "Not authorized to access this advertiser")
    if scoped:
        if not profile:
            return error(400, "Missing Amazon-Advertising-API-Scope header")
        if not profile_granted(profile):
            return v2_error(401, "UNAUTHORIZED", f"Not authorized to access scope {profile[:40]}")
    return None


def profile_granted(profile: str) -> bool:
    """The profiles the demo grant may use: the listed demo profiles and every profile id of the
    sandbox's demo range (10 to 16 digits, starting with 3 or 4). Another id is another
    advertiser's: Amazon answers 401 for a scope the token was not granted."""
    return profile in DEMO_PROFILES or bool(re.fullmatch(r"[34]\d{9,15}", profile))


# --- handlers -----------------------------------------------------------------------------------


def token(req: Request, ctx: Context) -> Response:
    form = req.form()
    if form.get("grant_type") != "refresh_token":
        return json_response(
            {"error": "unsupported_grant_type", "error_description": "grant_type must be refresh_token"}, 400
        )
    if form.get("client_id") != demo_value(PLATFORM, "_CLIENT_ID") or form.get("client_secret") != demo_value(
        PLATFORM, "_CLIENT_SECRET"
    ):
        return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
    if not form.get("refresh_token"):
        return json_response(
            {
                "error": "invalid_request",
                "error_description": "The request is missing a required parameter : refresh_token",
            },
            400,
        )
    if not ctx.refresh_token_ok(PLATFORM, form["refresh_token"]) or ctx.platform_state.get(PLATFORM, {}).get(
        "grant_revoked"
    ):
        return json_response({"error": "invalid_grant", "error_description": "The request has an invalid grant"}, 400)
    return json_response(
        {
            "access_token": ctx.issue_token(PLATFORM),
            "refresh_token": form["refresh_token"],
            "token_type": "bearer",
            "expires_in": 3600,
        }
    )


def profile_body(profile_id: str) -> dict:
    prof = data.account_profile(PLATFORM, profile_id)
    country, marketplace = MARKETPLACES.get(prof["currency"], ("US", "ATVPDKIKX0DER"))
    return {
        "profileId": int(profile_id),
        "countryCode": country,
        "currencyCode": prof["currency"],
        "dailyBudget": 0.0,
        "timezone": prof["timezone"],
        "accountInfo": {
            "marketplaceStringId": marketplace,
            "id": f"A{_h(profile_id) % 10**12:012d}",
            "type": "seller",
            "name": prof["name"],
            "validPaymentMethod": True,
        },
    }


def list_profiles(req: Request, ctx: Context) -> Response:
    problem = _auth(req, ctx, scoped=False)
    if problem:
        return problem
    access, program = req.arg("accessLevel"), req.arg("apiProgram")
    if access is not None and access not in ("edit", "view"):
        return v2_error(400, "INVALID_ARGUMENT", "accessLevel must be one of edit, view")
    if program is not None and program not in (
        "billing",
        "campaign",
        "paymentMethod",
        "store",
        "report",
        "account",
        "posts",
    ):
        return v2_error(400, "INVALID_ARGUMENT", f"unknown apiProgram {program}")
    return json_response([profile_body(p) for p in DEMO_PROFILES])


def get_profile(req: Request, ctx: Context) -> Response:
    problem = _auth(req, ctx, scoped=False)
    if problem:
        return problem
    profile_id = req.match["account"]
    scope = account_of(req)
    if scope and scope != profile_id:
        return v2_error(401, "UNAUTHORIZED", f"Not authorized to access scope {scope}")
    return json_response(profile_body(profile_id))


def _validate_report_request(body: object, today: dt.date) -> str | None:
    """Amazon's checks on a create request (A.4, A.5, A.11); the problem, or None."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    for key in ("startDate", "endDate", "configuration"):
        if key not in body:
            return f"Missing required field: {key}"
    cfg = body["configuration"]
    if not isinstance(cfg, dict):
        return "configuration must be an object"
    for key in ("adProduct", "reportTypeId", "groupBy", "columns", "timeUnit", "format"):
        if key not in cfg:
            return f"Missing required field: configuration.{key}"
    if cfg["adProduct"] not in PRODUCTS:
        return (
            f"Invalid adProduct {str(cfg['adProduct'])[:40]}; allowed values: "
            f"{', '.join(PRODUCTS)}, SPONSORED_TELEVISION, DEMAND_SIDE_PLATFORM, ALL"
        )
    report_type, _, retention = PRODUCTS[cfg["adProduct"]]
    if cfg["reportTypeId"] != report_type:
        return f"reportTypeId {str(cfg['reportTypeId'])[:40]} is not valid for adProduct {cfg['adProduct']}"
    if cfg["groupBy"] != ["campaign"]:
        return f"groupBy {cfg['groupBy']!r} is not supported by {report_type}; allowed: campaign"
    if cfg["format"] != "GZIP_JSON":
        return f"format {str(cfg['format'])[:20]} is not supported for {report_type}; allowed: GZIP_JSON"
    if cfg["timeUnit"] != "DAILY":
        return "timeUnit must be DAILY (SUMMARY reports have no daily rows)"
    columns = cfg["columns"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return "columns must be an array of column names"
    allowed = ALLOWED_COLUMNS | (SP_ONLY_COLUMNS if report_type == "spCampaigns" else set())
    bad = [c for c in columns if c not in allowed]
    if bad:
        return (
            f"configuration columns includes invalid values: ({', '.join(bad)}). "
            f"Allowed values: ({', '.join(sorted(allowed))})"
        )
    if "date" not in columns:
        return "columns must include date when timeUnit is DAILY"
    if "cost" not in columns:
        return "columns must include cost"
    try:
        start, end = dt.date.fromisoformat(body["startDate"]), dt.date.fromisoformat(body["endDate"])
    except (TypeError, ValueError):
        return "startDate and endDate must be dates in YYYY-MM-DD format"
    if start > end:
        return "startDate must be on or before endDate"
    if (end - start).days + 1 > MAX_DAYS:
        return f"Date range between startDate and endDate must not exceed {MAX_DAYS} days"
    if start < today - dt.timedelta(days=retention):
        return f"Report date is too far in the past. Reports are only available for {retention} days."
    return None


def _report_view(job: dict, host: str) -> dict:
    view = {
        "reportId": job["id"],
        "name": job.get("name"),
        "startDate": job["startDate"],
        "endDate": job["endDate"],
        "configuration": {**job["config"], "filters": None},
        "status": job["status"],
        "createdAt": job["createdAt"],
        "updatedAt": job["updatedAt"],
        "generatedAt": None,
        "fileSize": None,
        "url": None,
        "urlExpiresAt": None,
        "failureReason": None,
    }
    if job["status"] == "COMPLETED":
        path = f"{DOWNLOAD_PREFIX}/{job['profile']}/{job['id']}/report-{job['id']}.json.gz"
        query = urllib.parse.urlencode(
            {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "3599", "X-Amz-Signature": _signature(path)}
        )
        view.update(
            generatedAt=job["updatedAt"],
            fileSize=job.get("fileSize"),
            url=f"http://{host}{path}?{query}",
            urlExpiresAt=job["updatedAt"],
        )
    if job["status"] == "FAILED":
        view["failureReason"] = "Report generation failed due to an internal error. Please retry"
    return view


def _signature(path: str) -> str:
    return hmac.new(_SIGNING_KEY, path.encode(), hashlib.sha256).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_report(req: Request, ctx: Context) -> Response:
    problem = _auth(req, ctx, scoped=True)
    if problem:
        return problem
    content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != CREATE_CONTENT_TYPE:
        return error(415, f"Content-Type must be {CREATE_CONTENT_TYPE}; got {content_type or 'none'}")
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        return error(400, "Request body is not valid JSON")
    problem_text = _validate_report_request(body, data.today())
    if problem_text:
        return error(400, problem_text)
    profile = account_of(req)
    part = PRODUCTS[body["configuration"]["adProduct"]][1]
    if part == "sb" and "sb" not in ad_products(profile):
        return error(
            400,
            f"Marketplace {profile_body(profile)['accountInfo']['marketplaceStringId']} "
            "do not have access to Sponsored Brands functionality",
        )
    signature = json.dumps([profile, body["startDate"], body["endDate"], body["configuration"]], sort_keys=True)
    with ctx.lock:
        for job in ctx.jobs.values():
            if (
                job.get("platform") == PLATFORM
                and job["signature"] == signature
                and job["status"] in ("PENDING", "PROCESSING")
            ):
                return error(425, f"The Request is a duplicate of : {job['id']}")
        faults = {k for k in ("report_failed", "report_stuck", "duplicate") if ctx.take_fault(PLATFORM, profile, (k,))}
        now = _now()
        job = {
            "platform": PLATFORM,
            "id": str(uuid.uuid4()),
            "profile": profile,
            "signature": signature,
            "name": body.get("name"),
            "startDate": body["startDate"],
            "endDate": body["endDate"],
            "config": body["configuration"],
            "status": "PENDING",
            "polls": 0,
            "submitted": time.monotonic(),
            "createdAt": now,
            "updatedAt": now,
            "fail": "report_failed" in faults,
            "stuck": "report_stuck" in faults,
        }
        ctx.jobs[job["id"]] = job
    if "duplicate" in faults:
        # the same report was already requested (by an earlier, interrupted run): Amazon names it
        return error(425, f"The Request is a duplicate of : {job['id']}")
    return json_response(_report_view(job, req.header("host") or "127.0.0.1"))


def get_report(req: Request, ctx: Context) -> Response:
    problem = _auth(req, ctx, scoped=True)
    if problem:
        return problem
    with ctx.lock:
        job = ctx.jobs.get(req.match["report"])
        if not job or job.get("platform") != PLATFORM or job["profile"] != account_of(req):
            return error(404, f"Report {req.match['report'][:60]} not found")
        if job["status"] in ("PENDING", "PROCESSING"):
            job["polls"] += 1
            if job["stuck"]:
                job["status"] = "PROCESSING"
            elif ctx.report_done(job):
                job["status"] = "FAILED" if job["fail"] else "COMPLETED"
            elif job["polls"] > 1:
                job["status"] = "PROCESSING"
            job["updatedAt"] = _now()
            if job["status"] == "COMPLETED":
                job["fileSize"] = len(report_file(job, ctx))
        return json_response(_report_view(job, req.header("host") or "127.0.0.1"))


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>SBX{uuid.uuid4().hex[:13].upper()}</RequestId></Error>"
    )
    return Response(status, body.encode(), {"Content-Type": "application/xml"})


def download(req: Request, ctx: Context) -> Response:
    if req.header("authorization"):
        return _s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm "
            "query parameter, Signature query string parameter or the "
            "Authorization header should be specified",
        )
    if req.arg("X-Amz-Signature") != _signature(req.path):
        return _s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    with ctx.lock:
        job = ctx.jobs.get(req.match["report"])
        if not job or job.get("platform") != PLATFORM or job["status"] != "COMPLETED":
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        body = report_file(job, ctx)
    return Response(200, body, {"Content-Type": "application/octet-stream"})


PATH_SPACE = rf"/v2/|/reporting/|/auth/o2/|{re.escape(DOWNLOAD_PREFIX)}/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return v2_error(status, "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED", message)


def routes() -> list[Route]:
    return [
        Route("POST", re.escape(TOKEN_PATH), token, api=False),
        Route("GET", r"/v2/profiles", list_profiles),
        Route("GET", r"/v2/profiles/(?P<account>\d{1,20})", get_profile),
        Route("POST", r"/reporting/reports", create_report),
        Route("GET", r"/reporting/reports/(?P<report>[A-Za-z0-9-]{1,80})", get_report),
        Route(
            "GET",
            re.escape(DOWNLOAD_PREFIX) + r"/(?P<account>\d{1,20})/(?P<report>[A-Za-z0-9-]{1,80})/"
            r"report-(?P=report)\.json\.gz",
            download,
            api=False,
        ),
    ]
