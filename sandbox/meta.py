"""Meta Graph API emulator: the ad account object and Ads Insights (sync, cursor paging).

Written from shared/platform-apis/...md section 1, not from fetchers/meta.py. Errors use Graph's
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` shape."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import urllib.parse
from decimal import Decimal

from . import data
from .common import Context, Request, Response, Route, access_check, json_response

PLATFORM = "meta"
TOKEN_PATH = ""  # Meta has no refresh grant (long-lived / system-user tokens)
ENV_PREFIX = "META"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {"META_ACCESS_TOKEN": "sandbox-meta-token"}
VERSIONS = {"v22.0", "v23.0", "v24.0", "v25.0", "v26.0"}  # live in 2025-2026 (§1.1)
LATEST = "v26.0"
DEFAULT_LIMIT = 25  # Meta's default page size (~25, §1.4)
MAX_LIMIT = 500
RETENTION_MONTHS = 37  # §1.2
INSIGHTS_FIELDS = {"account_id", "account_name", "account_currency", "spend", "date_start", "date_stop"}
ACCOUNT_FIELDS = {
    "id",
    "account_id",
    "name",
    "currency",
    "timezone_name",
    "timezone_offset_hours_utc",
    "account_status",
}
# the insights edge's parameters a field expansion may carry as modifiers (``.limit(100)``)
INSIGHTS_MODIFIERS = {"level", "time_range", "date_preset", "time_increment", "limit"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def graph_error(
    message: str,
    code: int,
    status: int = 400,
    subcode: int | None = None,
    type_: str = "OAuthException",
    transient: bool = False,
    headers: dict | None = None,
) -> Response:
    err = {"message": message, "type": type_, "code": code, "is_transient": transient, "fbtrace_id": "AsbxTrace0000"}
    if subcode is not None:
        err["error_subcode"] = subcode
    return json_response({"error": err}, status, headers)


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, account_id, day, scale=2, generation=generation)


def _token(req: Request) -> str | None:
    return req.bearer() or req.arg("access_token")


def _check(req: Request, ctx: Context) -> Response | None:
    """Version, token and appsecret_proof, as Graph checks them before anything else."""
    version = req.match["version"]
    if version not in VERSIONS:
        return graph_error(
            f"(#2635) You are calling a deprecated version of the Ads API. Please update to "
            f"the latest version: {LATEST}.",
            2635,
        )
    token = _token(req)
    problem = access_check(ctx, req, PLATFORM, token, req.match.get("account"))
    if problem == "missing":
        return graph_error("An active access token must be used to query information about the current user.", 104)
    if problem == "invalid":
        return graph_error("Invalid OAuth access token - Cannot parse access token", 190, 400)
    if problem == "expired":
        return graph_error(
            "Error validating access token: Session has expired on Thursday, 01-Jan-26 00:00:00 PST.",
            190,
            401,
            subcode=463,
        )
    if problem == "revoked":
        return graph_error(
            "Error validating access token: The session has been invalidated because the user "
            "changed their password or Facebook has changed the session for security reasons.",
            190,
            401,
            subcode=460,
        )
    proof = req.arg("appsecret_proof")
    if proof is not None and not _HEX64.match(proof):
        return graph_error("Invalid appsecret_proof provided in the API argument", 100)
    return None


def _fields(raw: str | None, allowed: set[str], default: list[str]) -> list[str] | Response:
    if raw is None:
        return default
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    bad = [f for f in fields if f not in allowed]
    if bad:
        return graph_error(
            f"(#100) {bad[0]} is not valid for fields param. please check "
            "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
            "for all valid values",
            100,
        )
    return fields


def _split_top(raw: str, sep: str = ",") -> list[str] | None:
    """``raw`` split at the ``sep`` outside (), {} and quoted strings; None when they do not pair."""
    parts, depth, quote, start = [], [], "", 0
    closing = {"(": ")", "{": "}"}
    for i, ch in enumerate(raw):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in closing:
            depth.append(closing[ch])
        elif ch in ")}":
            if not depth or depth.pop() != ch:
                return None
        elif ch == sep and not depth:
            parts.append(raw[start:i].strip())
            start = i + 1
    if depth or quote:
        return None
    parts.append(raw[start:].strip())
    return [p for p in parts if p]


_EXPANSION = re.compile(r"^(?P<name>[a-z_]+)(?P<mods>(?:\.[a-z_]+\(.*?\))*)(?:\{(?P<sub>.*)\})?$", re.S)
_MODIFIER = re.compile(r"([a-z_]+)\((.*)\)", re.S)


def _modifiers(mods: str) -> dict[str, str] | None:
    """``.time_range({...}).limit(100)`` as {"time_range": "{...}", "limit": "100"} (None: unreadable)."""
    parts = _split_top(mods[1:], ".") if mods else []
    if parts is None:
        return None
    found = [_MODIFIER.fullmatch(part) for part in parts]
    if not all(found):
        return None
    return {m.group(1): m.group(2) for m in found}


def _syntax_error(raw: str) -> Response:
    return graph_error(f'(#100) Syntax error in the fields parameter: "{raw[:80]}"', 100)


def account(req: Request, ctx: Context) -> Response:
    """The ad account node (§1.7), with Graph's field expansion for its ``insights`` edge:
    ``fields=currency,insights.time_range({...}).time_increment(1).limit(100){spend,...}`` answers
    the edge's first page under ``"insights"``, or no ``"insights"`` key when the edge has no rows
    (Graph leaves an empty edge out); its ``paging.next`` is the edge's own URL."""
    if (bad := _check(req, ctx)) is not None:
        return bad
    acc = req.match["account"]
    raw = req.arg("fields")
    parts = _split_top(raw) if raw is not None else []
    if parts is None:
        return _syntax_error(raw or "")
    plain, expanded = [], None
    for part in parts:
        if "." not in part and "{" not in part:
            plain.append(part)
            continue
        m = _EXPANSION.match(part)
        mods = _modifiers(m.group("mods")) if m else None
        if m is None or mods is None:
            return _syntax_error(part)
        if m.group("name") != "insights":
            return graph_error(f"sandbox: field expansion is emulated only for insights, not {m.group('name')}", 100)
        bad_mod = sorted(set(mods) - INSIGHTS_MODIFIERS)
        if bad_mod:
            return graph_error(f"(#100) {bad_mod[0]} is not a valid parameter of the insights edge", 100)
        expanded = {**mods, **({"fields": m.group("sub")} if m.group("sub") is not None else {})}
    fields = _fields(",".join(plain) if raw is not None else None, ACCOUNT_FIELDS, ["id", "account_id"])
    if isinstance(fields, Response):
        return fields
    prof = data.account_profile(PLATFORM, acc)
    full = {
        "id": f"act_{acc}",
        "account_id": acc,
        "name": prof["name"],
        "currency": prof["currency"],
        "timezone_name": prof["timezone"],
        "timezone_offset_hours_utc": 0,
        "account_status": 1,
    }
    body = {k: full[k] for k in ["id", *fields] if k in full}
    if expanded is not None:
        edge = _insights_body(req, ctx, acc, expanded, f"/{req.match['version']}/act_{acc}/insights")
        if isinstance(edge, Response):
            return edge
        if edge["data"]:
            body["insights"] = edge
    return json_response(body)


def _time_range(args: dict[str, str]) -> tuple[dt.date, dt.date] | Response:
    raw = args.get("time_range")
    today = data.today()
    if raw is None:
        if args.get("date_preset") not in (None, "last_30d"):
            return graph_error("sandbox: only date_preset=last_30d or a time_range is emulated", 100)
        return today - dt.timedelta(days=30), today - dt.timedelta(days=1)  # Graph's default: last_30d
    if args.get("date_preset"):
        return graph_error("(#100) time_range and date_preset cannot be used together", 100)
    try:
        obj = json.loads(raw)
        since, until = dt.date.fromisoformat(obj["since"]), dt.date.fromisoformat(obj["until"])
    except (ValueError, KeyError, TypeError):
        return graph_error(
            "(#100) param time_range must be a JSON object with keys since and until, each YYYY-MM-DD", 100
        )
    if since > until:
        return graph_error("(#100) time_range: since must not be after until", 100)
    year, month0 = divmod(today.year * 12 + today.month - 1 - RETENTION_MONTHS, 12)
    oldest = dt.date(year, month0 + 1, 1)
    if since < oldest:
        return graph_error(
            "(#3018) The start date of the time range cannot be beyond 37 months from the current date", 3018
        )
    return since, until


def _cursor(i: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{i}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.split(":", 1)[1]) if raw.startswith("offset:") else None
    except (ValueError, UnicodeDecodeError):
        return None


def insights(req: Request, ctx: Context) -> Response:
    if (bad := _check(req, ctx)) is not None:
        return bad
    args = {k: v[0] for k, v in req.query.items()}
    body = _insights_body(req, ctx, req.match["account"], args, req.path)
    return body if isinstance(body, Response) else json_response(body)


def _insights_body(req: Request, ctx: Context, acc: str, args: dict[str, str], edge_path: str) -> dict | Response:
    """One page of an account's insights edge, asked for with ``args`` (the edge's query, or the
    modifiers of a field expansion); ``paging.next`` is the edge's URL at ``edge_path``."""
    if args.get("level", "account") != "account":
        return graph_error("sandbox: only level=account is emulated", 100)
    fields = _fields(args.get("fields"), INSIGHTS_FIELDS, ["date_start", "date_stop"])
    if isinstance(fields, Response):
        return fields
    rng = _time_range(args)
    if isinstance(rng, Response):
        return rng
    since, until = rng
    increment = args.get("time_increment", "all_days")
    try:
        limit = int(args.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return graph_error("(#100) param limit must be an integer", 100)
    if limit < 1:
        return graph_error("(#100) param limit must be a positive integer", 100)
    limit = min(limit, MAX_LIMIT)
    prof = data.account_profile(PLATFORM, acc)

    def row(d0: dt.date, d1: dt.date, spend: Decimal) -> dict:
        full = {
            "account_id": acc,
            "account_name": prof["name"],
            "account_currency": prof["currency"],
            "spend": str(spend),
            "date_start": d0.isoformat(),
            "date_stop": d1.isoformat(),
        }
        return {k: full[k] for k in fields}

    days = [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]
    amounts = [(d, expected_daily(acc, d, ctx.generation(PLATFORM, d))) for d in days]
    if increment == "1":
        rows = [row(d, d, a) for d, a in amounts if a]  # no delivery: no row (§1.3)
    elif increment == "all_days":  # Graph's default: one row for the range
        total = sum((a for _, a in amounts), Decimal(0))
        rows = [row(since, until, total)] if total else []
    else:
        return graph_error("sandbox: only time_increment=1 or all_days is emulated", 100)

    start = 0
    if args.get("after"):
        start = _offset(args["after"])
        if start is None or start > len(rows):
            return graph_error("(#100) Invalid cursor for param after", 100)
    page = rows[start : start + limit]
    body: dict = {"data": page}
    if rows:
        body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}}
        if start + limit < len(rows):
            query = {k: v for k, v in args.items() if k not in ("after", "access_token")}
            query["after"] = _cursor(start + len(page))
            host = req.header("host", "graph.facebook.com")
            body["paging"]["next"] = f"http://{host}{edge_path}?{urllib.parse.urlencode(query)}"
    return body


def throttle_response(req: Request) -> Response:
    # §1.5: throttling is an error body with HTTP 400 and no Retry-After; the usage header says how
    # long until access returns (0 minutes here: retry soon).
    usage = {
        "123456789": [
            {
                "type": "ads_insights",
                "call_count": 100,
                "total_cputime": 40,
                "total_time": 60,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }
    return graph_error(
        "(#17) User request limit reached",
        17,
        400,
        subcode=2446079,
        transient=True,
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
    )


def malformed_response(req: Request) -> Response:
    if req.path.endswith("/insights"):  # a row without its spend
        return json_response(
            {
                "data": [
                    {"account_id": req.match.get("account", ""), "date_start": "2026-01-01", "date_stop": "2026-01-01"}
                ]
            }
        )
    return json_response({"id": f"act_{req.match.get('account', '')}"})  # no currency, no timezone


PATH_SPACE = r"/v\d+\.\d+(/|$)"  # graph.facebook.com/vNN.N/...


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    # Graph answers an unknown edge or an unsupported method with 400 and code 100
    return graph_error(message, 100, 400, subcode=33 if status == 405 else None)


def routes() -> list[Route]:
    v, a = r"/(?P<version>v\d+\.\d+)", r"act_(?P<account>\d+)"
    # a node's path may end in "/" (facebook-business asks for the node as /act_<id>/)
    return [Route("GET", f"{v}/{a}/insights", insights), Route("GET", f"{v}/{a}/?", account)]
