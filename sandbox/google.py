"""Google Ads API (REST) emulator: ``googleAds:searchStream`` over a small GAQL subset, and the
OAuth token endpoint.

Written from shared/platform-apis/...md section 2, not from fetchers/google.py. Errors are
``google.rpc.Status`` bodies carrying a ``GoogleAdsFailure``; searchStream wraps them in a
one-element array (§2.5). The developer-token header is required as it was before its 2026-09-09
sunset (§2.1): stricter than today's servers, so a client that passes here works on either side."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response, text_response

PLATFORM = "google"
TOKEN_PATH = "/token"  # oauth2.googleapis.com/token
ENV_PREFIX = "GOOGLE_ADS"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "sandbox-google-devtoken",
    "GOOGLE_ADS_CLIENT_ID": "sandbox-google-client",
    "GOOGLE_ADS_CLIENT_SECRET": "sandbox-google-secret",
    "GOOGLE_ADS_REFRESH_TOKEN": "sandbox-google-refresh",
}
VERSIONS = {"v23", "v24", "v25", "v26"}  # each sunset about a year after release (§2.1)
BATCH_ROWS = 10  # rows a stream batch (small, so streams have several)
MICROS = Decimal(1_000_000)

# GAQL fields this emulator serves: name -> (REST JSON path, how to get the value)
FIELDS = {
    "segments.date": ("segments", "date"),
    "metrics.cost_micros": ("metrics", "costMicros"),
    "customer.id": ("customer", "id"),
    "customer.resource_name": ("customer", "resourceName"),
    "customer.currency_code": ("customer", "currencyCode"),
    "customer.time_zone": ("customer", "timeZone"),
    "customer.descriptive_name": ("customer", "descriptiveName"),
}
_QUERY_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.I | re.S,
)
_BETWEEN_RE = re.compile(r"^segments\.date\s+BETWEEN\s+'([^']*)'\s+AND\s+'([^']*)'$", re.I)


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, account_id, day, scale=6, generation=generation)


def rpc_error(
    http: int,
    status: str,
    message: str,
    family: str | None = None,
    value: str | None = None,
    detail: str = "",
    version: str = "v26",
    extra: dict | None = None,
    stream: bool = True,
) -> Response:
    err: dict = {"code": http, "message": message, "status": status}
    if family:
        e: dict = {"errorCode": {family: value}, "message": detail or message}
        if extra:
            e["details"] = extra
        err["details"] = [
            {
                "@type": f"type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure",
                "errors": [e],
                "requestId": "sbxReq0000",
            }
        ]
    return json_response([{"error": err}] if stream else {"error": err}, http)


def _invalid(message: str, family: str, value: str, version: str) -> Response:
    return rpc_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", family, value, message, version)


def parse_query(query: str, version: str) -> dict | Response:
    m = _QUERY_RE.match(query)
    if not m:
        return _invalid(f"Error in query: unexpected input {query[:40]!r}.", "queryError", "UNEXPECTED_INPUT", version)
    fields = [f.strip() for f in m["fields"].split(",")]
    for f in fields:
        if f not in FIELDS:
            return _invalid(
                f"Error in SELECT clause: unrecognized field '{f}'.", "queryError", "UNRECOGNIZED_FIELD", version
            )
    if m["resource"] != "customer":
        return _invalid(
            f"sandbox: only FROM customer is emulated, not '{m['resource']}'.",
            "queryError",
            "INVALID_RESOURCE_NAME",
            version,
        )
    rng = None
    if m["where"]:
        w = _BETWEEN_RE.match(m["where"].strip())
        if not w:
            return _invalid(
                "sandbox: only a WHERE clause segments.date BETWEEN 'a' AND 'b' is emulated.",
                "queryError",
                "UNEXPECTED_INPUT",
                version,
            )
        try:
            rng = dt.date.fromisoformat(w[1]), dt.date.fromisoformat(w[2])
        except ValueError:
            return _invalid(
                f"Error in WHERE clause: invalid date in BETWEEN '{w[1]}' AND '{w[2]}'.",
                "queryError",
                "INVALID_VALUE_WITH_BETWEEN_OPERATOR",
                version,
            )
        if rng[0] > rng[1]:
            return _invalid(
                "Error in WHERE clause: BETWEEN range starts after it ends.",
                "queryError",
                "INVALID_VALUE_WITH_BETWEEN_OPERATOR",
                version,
            )
    has_date, has_metric = "segments.date" in fields, any(f.startswith("metrics.") for f in fields)
    if has_date and rng is None:
        return _invalid(
            "A finite date range filter on segments.date is required when segments.date is selected.",
            "queryError",
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            version,
        )
    if has_metric and not has_date:
        return _invalid(
            "sandbox: only metrics segmented by segments.date are emulated.",
            "queryError",
            "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE",
            version,
        )
    return {"fields": fields, "range": rng}


def _nest(fields: list[str], values: dict[str, object]) -> dict:
    row: dict = {}
    for f in fields:
        if f in values:
            top, leaf = FIELDS[f]
            row.setdefault(top, {})[leaf] = values[f]
    return row


def search_stream(req: Request, ctx: Context) -> Response:
    version, cid = req.match["version"], req.match["account"]
    if version not in VERSIONS:  # a sunset version is gone from the URL space: Google's HTML 404
        return text_response(
            f"<!DOCTYPE html><title>Error 404 (Not Found)!!1</title><p>The requested URL "
            f"<code>{req.path}</code> was not found on this server.",
            404,
            "text/html",
        )
    if len(cid) != 10:
        return _invalid(f"Invalid customer ID '{cid}'.", "requestError", "INVALID_CUSTOMER_ID", version)
    problem = access_check(ctx, req, PLATFORM, req.bearer(), cid)
    if problem:
        text = {
            "missing": "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
            "expired": "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "revoked": "Request had invalid authentication credentials. The token has been revoked.",
            "invalid": "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
        }[problem]
        if problem == "invalid":
            return rpc_error(
                401,
                "UNAUTHENTICATED",
                text,
                "authenticationError",
                "OAUTH_TOKEN_INVALID",
                "Oauth token is invalid.",
                version,
                stream=False,
            )
        return rpc_error(401, "UNAUTHENTICATED", text, stream=False)
    if not req.header("developer-token"):
        return _invalid(
            "The developer token is not included in the request.",
            "requestError",
            "DEVELOPER_TOKEN_PARAMETER_MISSING",
            version,
        )
    if req.header("developer-token") != CREDENTIALS["GOOGLE_ADS_DEVELOPER_TOKEN"]:
        return rpc_error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected "
            "OAuth 2 access token, login cookie or other valid authentication credential.",
            "authenticationError",
            "DEVELOPER_TOKEN_INVALID",
            "The developer token is not valid.",
            version,
            stream=False,
        )
    login = req.header("login-customer-id")
    if login is not None and not re.fullmatch(r"\d{10}", login):
        return _invalid(
            f"Invalid login-customer-id header '{login}': expected 10 digits, no dashes.",
            "requestError",
            "INVALID_CUSTOMER_ID",
            version,
        )
    if "application/json" not in (req.header("content-type") or ""):
        return rpc_error(
            400, "INVALID_ARGUMENT", "Invalid JSON payload: Content-Type must be application/json.", stream=False
        )
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        return rpc_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", stream=False)
    if not isinstance(body, dict):
        return rpc_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.", stream=False)
    unknown = set(body) - {"query", "summaryRowSetting"}
    if unknown:
        return rpc_error(
            400,
            "INVALID_ARGUMENT",
            f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}".',
            stream=False,
        )
    if not isinstance(body.get("query"), str) or not body["query"].strip():
        return _invalid("The query is required.", "requestError", "REQUIRED_FIELD_MISSING", version)
    q = parse_query(body["query"], version)
    if isinstance(q, Response):
        return q

    prof = data.account_profile(PLATFORM, cid)
    base = {
        "customer.id": cid,
        "customer.resource_name": f"customers/{cid}",
        "customer.currency_code": prof["currency"],
        "customer.time_zone": prof["timezone"],
        "customer.descriptive_name": prof["name"],
    }
    fields = (
        ["customer.resource_name", *q["fields"]] if any(f.startswith("customer.") for f in q["fields"]) else q["fields"]
    )
    results = []
    if q["range"] is None:
        results.append(_nest(fields, base))
    else:
        d, end = q["range"]
        while d <= end:
            amount = expected_daily(cid, d, ctx.generation(PLATFORM, d))
            values = {**base, "segments.date": d.isoformat()}
            if amount:
                values["metrics.cost_micros"] = str(int(amount * MICROS))
                results.append(_nest(fields, values))
            elif d.toordinal() % 2:  # zero cost: the field is left out, or the whole day is (§2.3)
                row = _nest(fields, values)
                if "metrics.cost_micros" in fields:
                    row["metrics"] = {}
                results.append(row)
            d += dt.timedelta(days=1)
    mask = ",".join(".".join(FIELDS[f]) for f in q["fields"])
    batches = [
        {"results": results[i : i + BATCH_ROWS], "fieldMask": mask, "requestId": f"sbxReq{i:04d}"}
        for i in range(0, len(results), BATCH_ROWS)
    ] or [{"fieldMask": mask, "requestId": "sbxReq0000"}]
    batches[-1]["queryResourceConsumption"] = str(len(results) * 10)
    return json_response(batches)


def token(req: Request, ctx: Context) -> Response:
    """Google's OAuth token endpoint, refresh-token grant with client credentials in the form (§2.6)."""
    form = req.form()
    want = CREDENTIALS
    if form.get("grant_type") != "refresh_token":
        return json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, 400)
    if (
        form.get("client_id") != want["GOOGLE_ADS_CLIENT_ID"]
        or form.get("client_secret") != want["GOOGLE_ADS_CLIENT_SECRET"]
    ):
        return json_response({"error": "invalid_client", "error_description": "The OAuth client was not found."}, 401)
    if form.get("refresh_token") != want["GOOGLE_ADS_REFRESH_TOKEN"]:
        return json_response({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, 400)
    return json_response(
        {
            "access_token": ctx.issue_token(PLATFORM),
            "expires_in": 3599,
            "scope": "https://www.googleapis.com/auth/adwords",
            "token_type": "Bearer",
        }
    )


def throttle_response(req: Request) -> Response:
    return rpc_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        "quotaError",
        "RESOURCE_TEMPORARILY_EXHAUSTED",
        "Too many requests. Retry in 1 seconds.",
        req.match.get("version", "v26"),
        extra={
            "quotaErrorDetails": {
                "rateScope": "DEVELOPER",
                "rateName": "Number of operations for basic access",
                "retryDelay": "1s",
            }
        },
    )


def malformed_response(req: Request) -> Response:
    return json_response({"results": "unexpected"})  # an object where the stream's array belongs


PATH_SPACE = r"/v\d+/customers(/|$)|/token$"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return rpc_error(status, "NOT_FOUND" if status == 404 else "UNIMPLEMENTED", message, stream=False)


def routes() -> list[Route]:
    return [
        Route("POST", r"/(?P<version>v\d+)/customers/(?P<account>\d+)/googleAds:searchStream", search_stream),
        Route("POST", TOKEN_PATH, token, api=False),
    ]
