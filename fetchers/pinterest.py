"""Pinterest API v5: daily spend of one ad account.

Recent windows use the synchronous ``GET /v5/ad_accounts/{id}/analytics`` (at most 90 days back,
90 days per request); older windows go through the asynchronous report
(``POST /v5/ad_accounts/{id}/reports``, poll by token, download a JSON file), which reaches 914
days back with 186 days per report. Facts: shared/platform-apis part 1, section 6.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from . import clock
from .base import AccountInfo, Api, FetchError, JobStatus, MalformedResponse, Verdict
from .core import (
    OAuthRefreshAuth,
    credential,
    default_verdict,
    json_body,
    micros_to_decimal,
    parse_day,
    retry_after_seconds,
)
from .specs import SPECS

API_VERSION = "v5"  # no sunset announced (OpenAPI v5.23.0, 2025-12-11)
MAX_DAYS = 90  # sync range cap (section 6.2); the async cap (186) is wider
SYNC_HISTORY_DAYS = 89  # sync reaches "at most 90 days" back: stay one day inside it (section 6.2)

SPEND_COLUMN = "SPEND_IN_MICRO_DOLLAR"  # micro-units of the ad account's currency, not USD (section 6.3)
REPORT_PENDING = {"IN_PROGRESS"}
REPORT_FAILED = {"FAILED", "CANCELLED"}
REPORT_GONE = {"DOES_NOT_EXIST", "EXPIRED"}  # a report lives one hour (section 6.2): ask again
THROTTLE_CODES = {8, 2726}  # 2726: "Reporting query cost limit exceeded" (section 6.5)
RETRY_400_CODES = {1, 12}  # "Retry after 5 seconds", "Something went wrong on our end"
_ID_RE = re.compile(r"^\d{1,20}$")
_RETRY_AFTER_RE = re.compile(r"(?i)retry after (\d+) seconds?")


# --- requests ---------------------------------------------------------------------------------


def utc_today() -> dt.date:
    return clock.today()


def uses_async_report(start: dt.date, today: dt.date) -> bool:
    """A window reaching further back than the sync endpoint serves goes through a report."""
    return start < today - dt.timedelta(days=SYNC_HISTORY_DAYS)


def analytics_path(account_id: str) -> str:
    return f"/{API_VERSION}/ad_accounts/{account_id}/analytics"


def reports_path(account_id: str) -> str:
    return f"/{API_VERSION}/ad_accounts/{account_id}/reports"


def build_analytics_params(start: dt.date, end: dt.date) -> dict[str, str]:
    return {"start_date": start.isoformat(), "end_date": end.isoformat(), "granularity": "DAY", "columns": SPEND_COLUMN}


def build_report_body(start: dt.date, end: dt.date) -> dict[str, Any]:
    # JSON body only: the reports endpoint accepts no query parameters (section 6.1)
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "granularity": "DAY",
        "level": "ADVERTISER",
        "columns": [SPEND_COLUMN],
        "report_format": "JSON",
    }


def report_resume_key(account_id: str, start: dt.date, end: dt.date) -> str:
    return f"pinterest:{account_id}:{start.isoformat()}:{end.isoformat()}:{SPEND_COLUMN}:ADVERTISER:DAY"


# --- parsing ----------------------------------------------------------------------------------


def _error_fields(resp: Any) -> tuple[Any, str]:
    try:
        body = resp.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    return body.get("code"), str(body.get("message") or "")


def parse_daily_rows(rows: Any, where: str) -> dict[dt.date, Decimal]:
    """Rows of ``{"DATE": "YYYY-MM-DD", "SPEND_IN_MICRO_DOLLAR": <number>, ...}`` as spend per day.

    Pinterest leaves out a column that has no value (section 6.3: "Columns with no value may be
    left out of a row"; JSON reports "do not zero-fill", section 6.2): a dated row without the
    spend column is a day that spent nothing. A spend column that is present must be a number;
    ``null``, text or a row without its ``DATE`` is refused, never read as zero."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"pinterest {where} is a {type(rows).__name__}, expected a list of daily rows")
    out: dict[dt.date, Decimal] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedResponse(f"pinterest {where} row {i} is not an object")
        day = parse_day(row.get("DATE"), f"pinterest {where} row {i}'s DATE")
        if day in out:
            raise MalformedResponse(f"pinterest {where} has two rows for {day}")
        if SPEND_COLUMN not in row:
            if any(k.startswith("SPEND_IN_") for k in row):
                # another spend column came back with a value while ours did not: not an empty day
                raise MalformedResponse(
                    f"pinterest {where} row for {day} carries "
                    f"{', '.join(sorted(k for k in row if k.startswith('SPEND_IN_')))} "
                    f"but not {SPEND_COLUMN}"
                )
            out[day] = Decimal(0)  # the column left out: no spend that day
            continue
        out[day] = micros_to_decimal(row[SPEND_COLUMN], f"pinterest {SPEND_COLUMN} for {day}")
    return out


def parse_analytics(body: Any, account_id: str) -> dict[dt.date, Decimal]:
    """The sync answer: a top-level array, one row per day with delivery (section 6.3)."""
    days = parse_daily_rows(body, "analytics")
    for row in body:
        if str(row.get("AD_ACCOUNT_ID", account_id)) != account_id:
            raise MalformedResponse(
                f"pinterest analytics returned a row of ad account "
                f"{str(row.get('AD_ACCOUNT_ID'))[:24]}, asked for {account_id}"
            )
    return days


def parse_report_file(body: Any) -> dict[dt.date, Decimal]:
    """The downloaded JSON report: ``{"<entity id>": [row, ...]}``; all-zero rows left out
    (section 6.2). Spend per day is summed over the entities."""
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"pinterest report file is a {type(body).__name__}, expected an object keyed by entity id"
        )
    out: dict[dt.date, Decimal] = {}
    for entity, rows in body.items():
        for day, amount in parse_daily_rows(rows, f"report rows of {str(entity)[:24]}").items():
            out[day] = out.get(day, Decimal(0)) + amount
    return out


def parse_report_status(body: Any, account_id: str) -> JobStatus:
    if not isinstance(body, dict) or not isinstance(body.get("report_status"), str):
        raise MalformedResponse("pinterest report status has no report_status")
    status = body["report_status"]
    if status == "FINISHED":
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise MalformedResponse("pinterest report is FINISHED but has no download url")
        return JobStatus("done", {"url": url})
    if status in REPORT_PENDING:
        return JobStatus("pending")
    if status in REPORT_FAILED:
        return JobStatus("failed", message=f"{status}: {body.get('message') or 'no reason given'}")
    if status in REPORT_GONE:
        # kind "request" lets run_report_job submit a fresh report when it resumed an old token
        raise FetchError("request", f"pinterest report for ad account {account_id} is {status}")
    raise MalformedResponse(f"pinterest report_status {status[:40]!r} is not one Pinterest documents")


def parse_account(body: Any, account_id: str) -> AccountInfo:
    if not isinstance(body, dict):
        raise MalformedResponse("pinterest ad account answer is not an object")
    currency = body.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MalformedResponse(f"pinterest ad account {account_id} has no ISO currency ({str(currency)[:12]!r})")
    name = body.get("name")
    # v5 AdAccount has no timezone field: reporting days are UTC (section 6.7)
    return AccountInfo(account_id, currency.upper(), "UTC", name if isinstance(name, str) else "")


# --- the fetcher ------------------------------------------------------------------------------


class PinterestFetcher:
    platform = "pinterest"
    max_days = MAX_DAYS
    lookback_days = SPECS["pinterest"].lookback_days
    day_basis = SPECS["pinterest"].day_basis
    history_days = SPECS["pinterest"].history_days

    def normalize_account_id(self, raw: str) -> str:
        value = str(raw).strip()
        if not _ID_RE.fullmatch(value):
            raise ValueError(
                f"pinterest: {str(raw)!r} is not a Pinterest ad account id; expected the "
                "ad account id in digits, e.g. 549755885175"
            )
        return value

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        # HTTP Basic client auth, form body (section 6.6). Apps created before 2025-09-25 must
        # ask for continuous refresh tokens explicitly; sending it is the safe choice for all.
        return OAuthRefreshAuth(
            platform=self.platform,
            token_url=token_url,
            client_id=credential(self.platform, credentials, "PINTEREST_APP_ID"),
            client_secret=credential(self.platform, credentials, "PINTEREST_APP_SECRET"),
            refresh_token=credential(self.platform, credentials, "PINTEREST_REFRESH_TOKEN"),
            access_token=credentials.get("PINTEREST_ACCESS_TOKEN") or None,
            client_auth="basic",
            extra_form={"continuous_refresh": "true"},
            on_rotate=on_rotate,
        )

    def classify(self, response: Any) -> Verdict:
        verdict = default_verdict(response)
        if verdict.action == "ok":
            return verdict
        status = response.status_code
        code, message = _error_fields(response)
        said = f"code {code}: {message}" if code is not None else (message or f"HTTP {status}")
        wait = retry_after_seconds(response)
        if wait is None:
            # the wait sits inside the message, no Retry-After header (section 6.5)
            m = _RETRY_AFTER_RE.search(message)
            wait = int(m.group(1)) if m else None
        if status == 429 or code in THROTTLE_CODES:
            return Verdict("retry", "throttled", f"HTTP {status}, {said}", wait)
        if status == 400 and code in RETRY_400_CODES:
            return Verdict("retry", "server", f"HTTP 400, {said}", wait)
        if status == 401:
            return Verdict("refresh", "auth", f"HTTP 401, {said}")
        if status == 403:
            return Verdict(
                "fail",
                "request",
                f"HTTP 403, {said}: the user who authorised the app needs "
                "Owner, Admin, Analyst or Campaign Manager access to this ad account",
            )
        if status >= 500:
            return verdict
        return Verdict("fail", "request", f"HTTP {status}, {said}")

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        resp = await api.request("GET", f"/{API_VERSION}/ad_accounts/{account_id}")
        return parse_account(json_body(resp, self.platform), account_id)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        # days beyond history_days never get here: the refresh plans windows within the spec's limit
        if uses_async_report(start, utc_today()):
            return await self._fetch_report(api, account.account_id, start, end)
        resp = await api.request("GET", analytics_path(account.account_id), params=build_analytics_params(start, end))
        return parse_analytics(json_body(resp, self.platform), account.account_id)

    async def _fetch_report(self, api: Api, account_id: str, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        path = reports_path(account_id)

        async def submit() -> str:
            body = json_body(await api.request("POST", path, json=build_report_body(start, end)), self.platform)
            token = body.get("token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise MalformedResponse("pinterest report request was answered without a token")
            if body.get("report_status") in REPORT_FAILED:
                raise FetchError("report_failed", f"pinterest refused the report: {body.get('message')}")
            return token

        async def poll(token: str) -> JobStatus:
            resp = await api.request("GET", path, params={"token": token})
            return parse_report_status(json_body(resp, self.platform), account_id)

        async def download(status: JobStatus) -> dict[dt.date, Decimal]:
            # a pre-signed URL, valid 5 minutes: no bearer token, no budget
            try:
                resp = await api.request("GET", status.detail["url"], authed=False, budgeted=False)
            except FetchError as exc:
                if exc.kind != "request":
                    raise
                raise FetchError(
                    "request",
                    "pinterest refused the report download (its link lasts 5 "
                    "minutes); the next refresh polls the report for a new link",
                ) from None
            return parse_report_file(json_body(resp, self.platform))

        return await api.run_report_job(
            submit=submit, poll=poll, download=download, resume_key=report_resume_key(account_id, start, end)
        )


FETCHER = PinterestFetcher()
