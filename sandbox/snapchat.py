"""Snapchat Marketing API emulator: ad account lookup, ad-account stats (DAY), refresh grant.

Written from shared/platform-apis/...-snapchat-...md section 5, not from the fetcher.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from . import data
from .common import Context, Request, Response, Route, access_check, json_response
from .credentials import demo_value

PLATFORM = "snapchat"
TOKEN_PATH = "/login/oauth2/access_token"
ENV_PREFIX = "SNAPCHAT"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "SNAPCHAT_CLIENT_ID": "sandbox-snapchat-client",
    "SNAPCHAT_CLIENT_SECRET": "sandbox-snapchat-secret",
    "SNAPCHAT_REFRESH_TOKEN": "sandbox-snapchat-refresh",
}
MAX_DAY_SPAN = 31  # what community tools stay within for DAY (the real cap is undocumented)
GRANULARITIES = ("TOTAL", "DAY", "HOUR")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def _rid() -> str:
    return uuid.uuid4().hex[:24]


def error(status: int, code: str, message: str) -> Response:
    return json_response(
        {
            "request_status": "ERROR",
            "request_id": _rid(),
            "debug_message": message,
            "display_message": message,
            "error_code": code,
        },
        status,
    )


def _auth_problem(ctx: Context, req: Request, account: str | None) -> Response | None:
    problem = access_check(ctx, req, PLATFORM, req.bearer(), account)
    if problem is None:
        return None
    text = {
        "missing": "Missing access token",
        "invalid": "Invalid access token",
        "expired": "The access token has expired",
        "revoked": "The access token has been revoked",
    }[problem]
    return error(401, "E3001", f"Unauthorized: {text}")


def expected_daily(account_id: str, day: dt.date, generation: int = 0) -> Decimal:
    return data.daily_amount(PLATFORM, account_id, day, scale=6, generation=generation)


def _micros(amount: Decimal) -> int:
    return int((amount * 1_000_000).to_integral_value())


def _ts(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC).astimezone(zone)


# --- handlers -----------------------------------------------------------------------------------


def token(req: Request, ctx: Context) -> Response:
    form = req.form()
    if form.get("grant_type") != "refresh_token":
        return json_response(
            {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be refresh_token or authorization_code",
            },
            400,
        )
    if form.get("client_id") != demo_value(PLATFORM, "_CLIENT_ID") or form.get("client_secret") != demo_value(
        PLATFORM, "_CLIENT_SECRET"
    ):
        return json_response({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
    if not ctx.refresh_token_ok(PLATFORM, form.get("refresh_token")):
        return json_response({"error": "invalid_grant", "error_description": "Invalid refresh token"}, 400)
    return json_response(
        {
            "access_token": ctx.issue_token(PLATFORM),
            "token_type": "Bearer",
            "expires_in": 1800,
            "refresh_token": form["refresh_token"],
            "scope": "snapchat-marketing-api",
        }
    )


def adaccount(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    denied = _auth_problem(ctx, req, account)
    if denied:
        return denied
    if not re.fullmatch(_UUID, account):
        return error(400, "E1001", f"Invalid ad account id: {account}")
    profile = data.account_profile(PLATFORM, account)
    return json_response(
        {
            "request_status": "SUCCESS",
            "request_id": _rid(),
            "adaccounts": [
                {
                    "sub_request_status": "SUCCESS",
                    "adaccount": {
                        "id": account,
                        "name": profile["name"],
                        "type": "PARTNER",
                        "status": "ACTIVE",
                        "organization_id": "0f3a1c2e-5d6b-4a7c-9e8f-1a2b3c4d5e6f",
                        "currency": profile["currency"],
                        "timezone": profile["timezone"],
                        "created_at": "2021-01-05T10:00:00.000Z",
                        "updated_at": "2025-01-05T10:00:00.000Z",
                    },
                }
            ],
        }
    )


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def stats(req: Request, ctx: Context) -> Response:
    account = req.match["account"]
    denied = _auth_problem(ctx, req, account)
    if denied:
        return denied
    if not re.fullmatch(_UUID, account):
        return error(400, "E1001", f"Invalid ad account id: {account}")
    granularity = (req.arg("granularity") or "").upper()
    if not granularity:
        return error(400, "E1001", "granularity is required (TOTAL, DAY or HOUR)")
    if granularity not in GRANULARITIES:
        return error(400, "E1001", f"Invalid granularity: {req.arg('granularity')}")
    if granularity != "DAY":
        return error(400, "E1001", "sandbox: only granularity=DAY is emulated")
    fields = [f.strip() for f in (req.arg("fields") or "").split(",") if f.strip()]
    if fields and fields != ["spend"]:
        return error(400, "E1001", f"Invalid fields for an ad account: {','.join(fields)}; only spend is supported")
    start, end = _parse_time(req.arg("start_time")), _parse_time(req.arg("end_time"))
    if start is None or end is None:
        return error(400, "E1001", "start_time and end_time are required ISO-8601 timestamps with an offset")
    profile = data.account_profile(PLATFORM, account)
    zone = ZoneInfo(profile["timezone"])
    for name, moment in (("Start", start), ("End", end)):
        local = moment.astimezone(zone)
        if local != _midnight(local.date(), zone):
            return error(
                400,
                "E1004",
                f"{name} time should start at the beginning of a day in the ad account's "
                f"timezone ({profile['timezone']})",
            )
    if end <= start:
        return error(400, "E1008", "End time should be after start time")
    first, stop = start.astimezone(zone).date(), end.astimezone(zone).date()
    if (stop - first).days > MAX_DAY_SPAN:
        return error(400, "E1004", f"Time range for DAY granularity cannot exceed {MAX_DAY_SPAN} days")
    series, day = [], first
    while day < stop:
        amount = expected_daily(account, day, ctx.generation(PLATFORM, day))
        nxt = day + dt.timedelta(days=1)
        series.append(
            {
                "start_time": _ts(_midnight(day, zone)),
                "end_time": _ts(_midnight(nxt, zone)),
                "stats": {"spend": _micros(amount)},
            }
        )  # omit_empty=false: zero days too
        day = nxt
    finalized = min(end, dt.datetime.now(dt.UTC).astimezone(zone) - dt.timedelta(hours=48))
    return json_response(
        {
            "request_status": "SUCCESS",
            "request_id": _rid(),
            "timeseries_stats": [
                {
                    "sub_request_status": "SUCCESS",
                    "timeseries_stat": {
                        "id": account,
                        "type": "AD_ACCOUNT",
                        "granularity": "DAY",
                        "start_time": _ts(start.astimezone(zone)),
                        "end_time": _ts(end.astimezone(zone)),
                        "finalized_data_end_time": _ts(finalized.replace(minute=0, second=0, microsecond=0)),
                        "timeseries": series,
                    },
                }
            ],
        }
    )


def throttle_response(req: Request) -> Response:
    return error(429, "E3007", "Too many requests, please retry later")


def malformed_response(req: Request) -> Response:
    """A stats answer whose bucket carries no spend (must never be read as zero)."""
    return json_response(
        {
            "request_status": "SUCCESS",
            "request_id": _rid(),
            "timeseries_stats": [
                {
                    "sub_request_status": "SUCCESS",
                    "timeseries_stat": {
                        "id": req.match.get("account", ""),
                        "type": "AD_ACCOUNT",
                        "granularity": "DAY",
                        "timeseries": [
                            {
                                "start_time": "2025-03-01T00:00:00.000-08:00",
                                "end_time": "2025-03-02T00:00:00.000-08:00",
                                "stats": {},
                            }
                        ],
                    },
                }
            ],
        }
    )


PATH_SPACE = r"/v1/|/login/oauth2/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    return error(status, "E1001" if status == 404 else "E1002", message)


def routes() -> list[Route]:
    return [
        Route("POST", re.escape(TOKEN_PATH), token, api=False),
        Route("GET", r"/v1/adaccounts/(?P<account>[^/]+)", adaccount),
        Route("GET", r"/v1/adaccounts/(?P<account>[^/]+)/stats", stats),
    ]
