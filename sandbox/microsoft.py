"""Microsoft Advertising emulator: the SOAP Reporting v13 and CustomerManagement v13 services as the
unmodified ``bingads`` SDK talks to them, the report download, and the Microsoft identity platform
token endpoint (rotating refresh tokens).

Written from shared/platform-apis/amazon-microsoft.md sections B and C (envelopes, fault shapes,
statuses, the CSV layout), not from the fetcher.

- ``POST /Api/Advertiser/Reporting/v13/ReportingService.svc``: ``SubmitGenerateReport`` (an
  ``AccountPerformanceReportRequest``) -> ``ReportRequestId``; ``PollGenerateReport`` -> ``Pending``
  for ``ctx.report_polls_needed`` polls, then ``Success`` with a pre-signed ``ReportDownloadUrl``
  (nil when the report has no rows) or ``Error`` (fault ``report_failed``); ``report_stuck`` stays
  ``Pending``.
- ``POST /Api/CustomerManagement/v13/CustomerManagementService.svc``: ``GetAccount``.
- ``GET /ReportDownloads/<account>/<id>.zip?sv=..&se=..&sig=..``: the zipped CSV with its header
  rows and the copyright footer.
- ``POST /common/oauth2/v2.0/token``: the refresh-token grant.

Faults come back as SOAP faults (HTTP 500): ``AdApiFaultDetail`` for auth, headers and throttling
(105, 109, 116, 117), ``ApiFaultDetail`` for report request validation (113, 2004, 2008, 2009,
2011, 2014, 2016, 2100, ...; the scope and column check codes are placeholders: the docs read here do
not list them), ``ApiFault`` for CustomerManagement. Every reply carries a SOAP Header with
a TrackingId (the SDK's header parser fails without one: B.9). SOAP requests carry the account in
a header, not the path, so generic per-account faults cannot match them; ``access_check`` and the
report faults are given the account from the CustomerAccountId header / request scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from xml.sax.saxutils import escape

from . import data
from .common import Context, Request, Response, Route, access_check, json_response

PLATFORM = "microsoft"
TOKEN_PATH = "/common/oauth2/v2.0/token"
ENV_PREFIX = "MICROSOFT_ADS"  # <P> in the product's <P>_API_BASE_URL and <P>_TOKEN_URL
#: the fake credentials this emulator accepts (tests swap values in place: read at call time)
CREDENTIALS = {
    "MICROSOFT_CLIENT_ID": "sandbox-microsoft-client",
    "MICROSOFT_CLIENT_SECRET": "sandbox-microsoft-secret",
    "MICROSOFT_DEVELOPER_TOKEN": "sandbox-microsoft-devtoken",
    "MICROSOFT_CUSTOMER_ID": "123456789",
    "MICROSOFT_REFRESH_TOKEN": "sandbox-microsoft-refresh",
}
REPORTING_PATH = "/Api/Advertiser/Reporting/v13/ReportingService.svc"
CUSTOMER_PATH = "/Api/CustomerManagement/v13/CustomerManagementService.svc"
DOWNLOAD_PREFIX = "/ReportDownloads"

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_REPORTING = "https://bingads.microsoft.com/Reporting/v13"
NS_CUSTOMER = "https://bingads.microsoft.com/Customer/v13"
NS_ENTITIES = "https://bingads.microsoft.com/Customer/v13/Entities"
NS_ADAPI = "https://adapi.microsoft.com"

DEVELOPER_TOKEN = CREDENTIALS["MICROSOFT_DEVELOPER_TOKEN"]
SCOPE_NEEDED = "msads.manage"
MAX_RETENTION_DAYS = 3 * 365 + 31  # daily data kept 36 months

# IANA zone of a sandbox account (sandbox/data.py) -> CustomerManagement TimeZoneType.
ACCOUNT_TIME_ZONE = {
    "America/New_York": "EasternTimeUSCanada",
    "America/Los_Angeles": "PacificTimeUSCanadaTijuana",
    "America/Chicago": "CentralTimeUSCanada",
    "Europe/London": "GreenwichMeanTimeDublinEdinburghLisbonLondon",
    "Europe/Berlin": "AmsterdamBerlinBernRomeStockholmVienna",
    "Asia/Tokyo": "OsakaSapporoTokyo",
    "UTC": "GreenwichMeanTimeDublinEdinburghLisbonLondon",
}
# Reporting's ReportTimeZone enum (bundled reporting WSDL).
REPORT_TIME_ZONES = frozenset(
    """Nukualofa FijiKamchatkaMarshallIsland AucklandWellington MagadanSolomonIslandNewCaledonia
Vladivostok Hobart GuamPortMoresby CanberraMelbourneSydney Brisbane Darwin Adelaide Yakutsk Seoul OsakaSapporoTokyo Taipei
Perth KualaLumpurSingapore IrkutskUlaanBataar BeijingChongqingHongKongUrumqi Krasnoyarsk BangkokHanoiJakarta Rangoon
SriJayawardenepura AstanaDhaka AlmatyNovosibirsk Kathmandu ChennaiKolkataMumbaiNewDelhi IslandamabadKarachiTashkent
Ekaterinburg Kabul BakuTbilisiYerevan AbuDhabiMuscat Tehran Nairobi MoscowStPetersburgVolgograd KuwaitRiyadh Baghdad
Jerusalem HelsinkiKyivRigaSofiaTallinnVilnius HararePretoria Cairo Bucharest AthensIslandanbulMinsk WestCentralAfrica
SarajevoSkopjeWarsawZagreb BrusselsCopenhagenMadridParis BelgradeBratislavaBudapestLjubljanaPrague
AmsterdamBerlinBernRomeStockholmVienna CasablancaMonrovia GreenwichMeanTimeDublinEdinburghLisbonLondon Azores
CapeVerdeIsland MidAtlantic Brasilia BuenosAiresGeorgetown Greenland Newfoundland AtlanticTimeCanada CaracasLaPaz Santiago
BogotaLimaQuito EasternTimeUSCanada IndianaEast CentralAmerica CentralTimeUSCanada GuadalajaraMexicoCityMonterrey
Saskatchewan Arizona ChihuahuaLaPazMazatlan MountainTimeUSCanada PacificTimeUSCanadaTijuana Alaska Hawaii
MidwayIslandandSamoa InternationalDateLineWest""".split()
)
ACCOUNT_COLUMNS = {
    "TimePeriod",
    "AccountId",
    "AccountName",
    "AccountNumber",
    "CurrencyCode",
    "Spend",
    "Impressions",
    "Clicks",
}
ATTRIBUTE_COLUMNS = {"AccountId", "AccountName", "AccountNumber", "CurrencyCode"}
AGGREGATIONS = {
    "Summary",
    "Hourly",
    "Daily",
    "Weekly",
    "Monthly",
    "Yearly",
    "HourOfDay",
    "DayOfWeek",
    "WeeklyStartingMonday",
}


# --- data ----------------------------------------------------------------------------------------


def expected_daily(account_id: str, day: dt.date, generation: int) -> Decimal:
    return data.daily_amount(PLATFORM, account_id, day, scale=2, generation=generation)


# --- SOAP rendering ------------------------------------------------------------------------------


def _envelope(body: str) -> bytes:
    tracking = uuid.uuid4()
    return (
        f'<s:Envelope xmlns:s="{NS_SOAP}"><s:Header><h:TrackingId xmlns:h="{NS_REPORTING}">{tracking}'
        f"</h:TrackingId></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _soap(body: str, status: int = 200) -> Response:
    return Response(status, _envelope(body), {"Content-Type": "text/xml; charset=utf-8"})


def adapi_fault(code: int, error_code: str, message: str) -> Response:
    """Auth, header and throttling faults: AdApiFaultDetail (B.4)."""
    return _soap(
        '<s:Fault><faultcode>s:Server</faultcode><faultstring xml:lang="en-US">Invalid client data. Check the SOAP '
        "fault details for more information.</faultstring><detail>"
        f'<AdApiFaultDetail xmlns="{NS_ADAPI}" xmlns:i="{NS_XSI}"><TrackingId>{uuid.uuid4()}</TrackingId><Errors>'
        f'<AdApiError><Code>{code}</Code><Detail i:nil="true"/><ErrorCode>{error_code}</ErrorCode>'
        f"<Message>{escape(message)}</Message></AdApiError></Errors></AdApiFaultDetail></detail></s:Fault>",
        500,
    )


def api_fault(code: int, error_code: str, message: str, service: str = "reporting") -> Response:
    """Request validation faults: ApiFaultDetail (Reporting) or ApiFault (CustomerManagement)."""
    if service == "customer":
        detail = (
            f'<ApiFault xmlns="{NS_CUSTOMER}/Exception" xmlns:i="{NS_XSI}"><TrackingId>{uuid.uuid4()}'
            f'</TrackingId><OperationErrors><OperationError><Code>{code}</Code><Details i:nil="true"/>'
            f"<Message>{escape(message)}</Message></OperationError></OperationErrors></ApiFault>"
        )
    else:
        detail = (
            f'<ApiFaultDetail xmlns="{NS_REPORTING}" xmlns:i="{NS_XSI}"><TrackingId>{uuid.uuid4()}'
            f"</TrackingId><BatchErrors/><OperationErrors><OperationError><Code>{code}</Code>"
            f'<Details i:nil="true"/><ErrorCode>{error_code}</ErrorCode><Message>{escape(message)}</Message>'
            f"</OperationError></OperationErrors></ApiFaultDetail>"
        )
    return _soap(
        '<s:Fault><faultcode>s:Server</faultcode><faultstring xml:lang="en-US">Invalid client data. '
        f"Check the SOAP fault details for more information.</faultstring><detail>{detail}</detail>"
        "</s:Fault>",
        500,
    )


def _client_fault(message: str) -> Response:
    return _soap(
        f'<s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang="en-US">{escape(message)}'
        "</faultstring></s:Fault>",
        500,
    )


def throttle_response(req: Request) -> Response:
    return adapi_fault(
        117,
        "CallRateExceeded",
        "You have exceeded the number of calls that you are allowed to "
        "make in a given time period. Please wait and try again.",
    )


# --- SOAP parsing --------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element | None, name: str) -> str | None:
    c = _child(el, name)
    if c is None or c.get(f"{{{NS_XSI}}}nil") == "true":
        return None
    return (c.text or "").strip()


class SoapRequest:
    def __init__(self, req: Request):
        root = ET.fromstring(req.body)
        if _local(root.tag) != "Envelope" or not root.tag.startswith(f"{{{NS_SOAP}}}"):
            raise ValueError("not a SOAP 1.1 envelope")
        self.headers = {_local(c.tag): (c.text or "").strip() for c in (_child(root, "Header") or [])}
        body = _child(root, "Body")
        if body is None or len(body) == 0:
            raise ValueError("the SOAP envelope has no Body operation")
        self.op = body[0]
        self.name = _local(self.op.tag)
        self.namespace = self.op.tag[1:].split("}", 1)[0] if self.op.tag.startswith("{") else ""
        self.action = (req.header("SOAPAction") or "").strip().strip('"')


def _parse_soap(req: Request, namespace: str) -> SoapRequest | Response:
    try:
        soap = SoapRequest(req)
    except (ET.ParseError, ValueError) as exc:
        return _client_fault(f"The formatter threw an exception while trying to deserialize the message: {exc}")
    if soap.namespace != namespace:
        return _client_fault(
            f"The message with Action '{soap.action}' cannot be processed at the receiver "
            "(operation in the wrong namespace)"
        )
    if not soap.action or soap.action + "Request" != soap.name:
        return _client_fault(f"The SOAPAction header {soap.action!r} does not match the body operation {soap.name!r}")
    return soap


def _check_headers(
    ctx: Context, req: Request, soap: SoapRequest, required: tuple[str, ...], account: str | None
) -> Response | None:
    missing = [h for h in required if not soap.headers.get(h)]
    if missing:
        return adapi_fault(116, "RequestMissingHeaders", f"The request is missing header(s): {', '.join(missing)}.")
    if soap.headers["DeveloperToken"] != DEVELOPER_TOKEN:
        return adapi_fault(
            105,
            "InvalidCredentials",
            "Authentication failed. Either supplied credentials are invalid or the account is inactive.",
        )
    for h in ("CustomerId", "CustomerAccountId"):
        if h in soap.headers and soap.headers[h] and not soap.headers[h].isdigit():
            return adapi_fault(105, "InvalidCredentials", f"The {h} header is not a valid id.")
    problem = access_check(ctx, req, PLATFORM, soap.headers.get("AuthenticationToken"), account)
    if problem == "expired":
        return adapi_fault(109, "AuthenticationTokenExpired", "The user's authentication token has expired.")
    if problem in ("revoked", "invalid"):
        return adapi_fault(
            105,
            "InvalidCredentials",
            "Authentication failed. Either supplied credentials are invalid or the account is inactive.",
        )
    if problem == "missing":
        return adapi_fault(116, "RequestMissingHeaders", "The request is missing the AuthenticationToken header.")
    return None


# --- reporting -----------------------------------------------------------------------------------


def _job_key(request_id: str) -> str:
    return f"{PLATFORM}:{request_id}"


def _signature(request_id: str) -> str:
    return hashlib.sha256(f"sandbox-blob|{request_id}".encode()).hexdigest()[:32]


def _download_url(req: Request, account: str, request_id: str) -> str:
    host = req.header("host") or "127.0.0.1"
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"http://{host}{DOWNLOAD_PREFIX}/{account}/{request_id}.zip?sv=2019-07-07&sr=b&se={expiry}"
        f"&sp=r&sig={_signature(request_id)}"
    )


def _date(el: ET.Element | None) -> dt.date | None | str:
    """A v13 Date element: a date, None when absent, "bad" when present but invalid (fault 113)."""
    if el is None or el.get(f"{{{NS_XSI}}}nil") == "true":
        return None
    try:
        return dt.date(int(_text(el, "Year") or ""), int(_text(el, "Month") or ""), int(_text(el, "Day") or ""))
    except ValueError:
        return "bad"


def _validate_report(soap: SoapRequest, header_account: str) -> dict | Response:
    rr = _child(soap.op, "ReportRequest")
    if rr is None:
        return api_fault(2001, "NullReportRequest", "The report request is null.")
    rtype = (rr.get(f"{{{NS_XSI}}}type") or "").split(":")[-1]
    if rtype != "AccountPerformanceReportRequest":
        return api_fault(
            2002,
            "ReportTypeNotSupported",
            f"sandbox: only AccountPerformanceReportRequest is emulated, not {rtype or 'an untyped ReportRequest'}.",
        )
    fmt = _text(rr, "Format")
    if fmt not in ("Csv", "Tsv"):
        return api_fault(2002, "InvalidReportFormat", f"Report format {fmt!r} is not valid (Csv or Tsv).")
    aggregation = _text(rr, "Aggregation")
    if aggregation not in AGGREGATIONS:
        return api_fault(2007, "InvalidReportAggregation", f"Aggregation {aggregation!r} is not valid.")
    if aggregation not in ("Daily", "Summary"):
        return api_fault(
            2007, "InvalidReportAggregation", f"sandbox: only Daily and Summary are emulated, not {aggregation}."
        )
    cols = [(c.text or "").strip() for c in (_child(rr, "Columns") or [])]
    if not cols:
        return api_fault(2014, "ReportColumnsNotSpecified", "The report request must specify columns.")
    if len(set(cols)) != len(cols):
        return api_fault(2016, "DuplicateColumns", "The report request specifies a column more than once.")
    unknown = [c for c in cols if c not in ACCOUNT_COLUMNS]
    if unknown:
        return api_fault(2015, "InvalidReportColumns", f"Column(s) not emulated or not valid: {', '.join(unknown)}.")
    if not set(cols) & ATTRIBUTE_COLUMNS:
        return api_fault(
            2015,
            "RequiredColumnsNotSelected",
            "The report must include at least one attribute column such as AccountId.",
        )
    scope = _child(rr, "Scope")
    accounts = [(c.text or "").strip() for c in (_child(scope, "AccountIds") or [])]
    if not accounts or not all(a.isdigit() for a in accounts):
        return api_fault(2020, "InvalidAccountIds", "Scope.AccountIds must list at least one account id.")
    if header_account not in accounts:
        return adapi_fault(106, "UserIsNotAuthorized", "The CustomerAccountId header does not match the report scope.")
    time = _child(rr, "Time")
    start, end = _date(_child(time, "CustomDateRangeStart")), _date(_child(time, "CustomDateRangeEnd"))
    predefined = _text(time, "PredefinedTime")
    if "bad" in (start, end):
        return api_fault(113, "InvalidDateObject", "The date object is not valid.")
    if predefined and (start or end):
        return api_fault(
            2008, "InvalidTimePeriod", "Specify either a custom date range or a predefined time, not both."
        )
    if predefined:
        return api_fault(2008, "InvalidTimePeriod", "sandbox: only custom date ranges are emulated.")
    if not (start and end):
        return api_fault(2008, "InvalidTimePeriod", "Both CustomDateRangeStart and CustomDateRangeEnd are required.")
    if end < start:
        return api_fault(2011, "InvalidCustomDateRangeEnd", "The custom date range end date is before the start date.")
    today = data.today()
    if start < today - dt.timedelta(days=MAX_RETENTION_DAYS):
        return api_fault(
            2009, "InvalidCustomDateRangeStart", "The start date is before the data retention period (36 months)."
        )
    complete_only = (_text(rr, "ReturnOnlyCompleteData") or "false").lower() == "true"
    if complete_only and end >= today:
        return api_fault(
            2004, "NoCompleteDataAvaliable", "Complete data is not yet available for the requested time period."
        )
    zone = _text(time, "ReportTimeZone")
    if zone is not None and zone not in REPORT_TIME_ZONES:
        return _client_fault(f"The value '{zone}' is not a valid ReportTimeZone.")
    return {
        "accounts": accounts,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "columns": cols,
        "aggregation": aggregation,
        "format": fmt,
        "format_version": _text(rr, "FormatVersion"),
        "report_time_zone": zone or "PacificTimeUSCanadaTijuana",
        "name": _text(rr, "ReportName") or "",
        "exclude_header": (_text(rr, "ExcludeReportHeader") or "false").lower() == "true",
        "exclude_footer": (_text(rr, "ExcludeReportFooter") or "false").lower() == "true",
        "exclude_columns": (_text(rr, "ExcludeColumnHeaders") or "false").lower() == "true",
    }


def _submit(req: Request, ctx: Context, soap: SoapRequest, account: str) -> Response:
    spec = _validate_report(soap, account)
    if isinstance(spec, Response):
        return spec
    fault = ctx.take_fault(PLATFORM, account, ("report_failed", "report_stuck"))
    with ctx.lock:
        n = sum(1 for k in ctx.jobs if k.startswith(f"{PLATFORM}:")) + 1
        request_id = f"3{n:010d}"
        ctx.jobs[_job_key(request_id)] = {
            **spec,
            "account": account,
            "polls": 0,
            "submitted": time.monotonic(),
            "fault": fault,
            "customer": soap.headers.get("CustomerId"),
        }
        ctx.log.append(
            {
                "platform": PLATFORM,
                "op": "SubmitGenerateReport",
                "request_id": request_id,
                "account": account,
                "start": spec["start"],
                "end": spec["end"],
                "report_time_zone": spec["report_time_zone"],
                "headers": dict(soap.headers),
            }
        )
    return _soap(
        f'<SubmitGenerateReportResponse xmlns="{NS_REPORTING}"><ReportRequestId>{request_id}'
        "</ReportRequestId></SubmitGenerateReportResponse>"
    )


def _status(status: str, url: str | None) -> Response:
    link = f"<ReportDownloadUrl>{escape(url)}</ReportDownloadUrl>" if url else '<ReportDownloadUrl i:nil="true"/>'
    return _soap(
        f'<PollGenerateReportResponse xmlns="{NS_REPORTING}"><ReportRequestStatus xmlns:i="{NS_XSI}">'
        f"{link}<Status>{status}</Status></ReportRequestStatus></PollGenerateReportResponse>"
    )


def _has_rows(job: dict, ctx: Context) -> bool:
    start, end = dt.date.fromisoformat(job["start"]), dt.date.fromisoformat(job["end"])
    d = start
    while d <= end:
        for a in job["accounts"]:
            if expected_daily(a, d, ctx.generation(PLATFORM, d)) != 0:
                return True
        d += dt.timedelta(days=1)
    return False


def _poll(req: Request, ctx: Context, soap: SoapRequest, account: str) -> Response:
    request_id = _text(soap.op, "ReportRequestId") or ""
    if request_id.startswith("broken-"):
        return _status("Success", _download_url(req, account, request_id))
    with ctx.lock:
        job = ctx.jobs.get(_job_key(request_id))
        if job is None:
            return api_fault(
                2100, "InvalidReportId", f"The report request id {request_id!r} is not valid or has expired."
            )
        job["polls"] += 1
        done = ctx.report_done(job)
    if job["fault"] == "report_stuck":
        return _status("Pending", None)
    if not done:
        return _status("Pending", None)
    if job["fault"] == "report_failed":
        return _status("Error", None)
    if not _has_rows(job, ctx):
        return _status("Success", None)  # no data for these parameters: a nil URL (B.7)
    return _status("Success", _download_url(req, account, request_id))


def reporting_service(req: Request, ctx: Context) -> Response:
    soap = _parse_soap(req, NS_REPORTING)
    if isinstance(soap, Response):
        return soap
    account = soap.headers.get("CustomerAccountId") or None
    problem = _check_headers(
        ctx, req, soap, ("DeveloperToken", "AuthenticationToken", "CustomerId", "CustomerAccountId"), account
    )
    if problem:
        return problem
    if soap.name == "SubmitGenerateReportRequest":
        return _submit(req, ctx, soap, account or "")
    if soap.name == "PollGenerateReportRequest":
        return _poll(req, ctx, soap, account or "")
    return _client_fault(f"sandbox: the operation {soap.action!r} is not emulated")


# --- the report file -----------------------------------------------------------------------------


def _money(amount: Decimal, format_version: str | None) -> str:
    text = f"{amount:.2f}"
    if format_version != "2.0" and abs(amount) >= 1000:  # the older format groups thousands (B.4)
        text = f"{amount:,.2f}"
    return text


def _q(cells: list[str], sep: str) -> str:
    return sep.join('"' + c.replace('"', '""') + '"' for c in cells)


def report_file(job: dict, ctx: Context) -> str:
    """The report in Microsoft's layout: metadata rows, a blank row, the column row, the data rows, a
    blank row, the copyright footer (B.6). Days without delivery have no row."""
    sep = "," if job["format"] == "Csv" else "\t"
    start, end = dt.date.fromisoformat(job["start"]), dt.date.fromisoformat(job["end"])
    rows: list[list[str]] = []
    summary: dict[str, Decimal] = {}
    for account in job["accounts"]:
        d = start
        while d <= end:
            amount = expected_daily(account, d, ctx.generation(PLATFORM, d))
            if amount != 0:
                if job["aggregation"] == "Summary":
                    summary[account] = summary.get(account, Decimal(0)) + amount
                else:
                    rows.append(_row(job, account, d, amount))
            d += dt.timedelta(days=1)
    for account, amount in summary.items():
        rows.append(_row(job, account, None, amount))
    today = data.today()
    stamp = f"{today.month}/{today.day}/{today.year} 10:15:00 AM (GMT)"
    lines: list[str] = []
    if not job["exclude_header"]:
        lines += [
            _q([f"Report Name: {job['name']}"], sep),
            _q([f"Report Time: {start.month}/{start.day}/{start.year},{end.month}/{end.day}/{end.year}"], sep),
            _q([f"Time Zone: {job['report_time_zone']}"], sep),
            _q([f"Last Completed Available Day: {stamp}"], sep),
            _q([f"Last Completed Available Hour: {stamp}"], sep),
            _q([f"Report Aggregation: {job['aggregation']}"], sep),
            _q(["Report Filter: "], sep),
            _q([f"Potential Incomplete Data: {'true' if end >= today - dt.timedelta(days=1) else 'false'}"], sep),
            _q([f"Rows: {len(rows)}"], sep),
            "",
        ]
    columns = [c for c in job["columns"] if not (c == "TimePeriod" and job["aggregation"] == "Summary")]
    if not job["exclude_columns"]:
        lines.append(_q(columns, sep))
    lines += [_q(r, sep) for r in rows]
    if not job["exclude_footer"]:
        lines += ["", _q([f"\u00a9{today.year} Microsoft Corporation. All rights reserved. "], sep)]
    return "\r\n".join(lines) + "\r\n"


def _row(job: dict, account: str, day: dt.date | None, amount: Decimal) -> list[str]:
    profile = data.account_profile(PLATFORM, account)
    values = {
        "TimePeriod": day.isoformat() if day else "",
        "AccountId": account,
        "AccountName": profile["name"],
        "AccountNumber": f"F{int(account) % 10**7:07d}",
        "CurrencyCode": profile["currency"],
        "Spend": _money(amount, job["format_version"]),
        "Impressions": "0",
        "Clicks": "0",
    }
    return [values[c] for c in job["columns"] if not (c == "TimePeriod" and day is None)]


BROKEN_REPORT = (
    '"Report Name: Ad Spend Hub daily spend"\r\n"Rows: 3"\r\n\r\n'
    '"TimePeriod","AccountId","CurrencyCode","Spend"\r\n'
    '"2026-03-01","111","USD"\r\n"2026-03-02","111","USD","1'
)


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, "\ufeff" + text)  # the service writes a UTF-8 BOM (B.6)
    return buf.getvalue()


def download(req: Request, ctx: Context) -> Response:
    request_id = req.match["job"]
    if req.arg("sig") != _signature(request_id):
        return Response(
            403,
            b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
            b"<Message>Server failed to authenticate the request.</Message></Error>",
            {"Content-Type": "application/xml"},
        )
    if request_id.startswith("broken-"):
        return Response(200, _zip(f"{request_id}.csv", BROKEN_REPORT), {"Content-Type": "application/x-zip-compressed"})
    with ctx.lock:
        job = ctx.jobs.get(_job_key(request_id))
    if job is None or job["account"] != req.match["account"]:
        return Response(
            404,
            b'<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code>'
            b"<Message>The specified blob does not exist.</Message></Error>",
            {"Content-Type": "application/xml"},
        )
    ext = "csv" if job["format"] == "Csv" else "tsv"
    return Response(
        200, _zip(f"{request_id}.{ext}", report_file(job, ctx)), {"Content-Type": "application/x-zip-compressed"}
    )


# --- customer management -------------------------------------------------------------------------


def customer_service(req: Request, ctx: Context) -> Response:
    soap = _parse_soap(req, NS_CUSTOMER)
    if isinstance(soap, Response):
        return soap
    if soap.name != "GetAccountRequest":
        return _client_fault(f"sandbox: the operation {soap.action!r} is not emulated")
    account = _text(soap.op, "AccountId") or ""
    problem = _check_headers(ctx, req, soap, ("DeveloperToken", "AuthenticationToken"), account or None)
    if problem:
        return problem
    if not account.isdigit() or int(account) == 0:
        return api_fault(1102, "InvalidAccountId", "The account identifier is not valid.", "customer")
    return _account_response(account)


def _account_response(account: str, currency: bool = True) -> Response:
    profile = data.account_profile(PLATFORM, account)
    zone = ACCOUNT_TIME_ZONE[profile["timezone"]]
    e = "e32"
    currency_el = f"<{e}:CurrencyCode>{profile['currency']}</{e}:CurrencyCode>" if currency else ""
    return _soap(
        f'<GetAccountResponse xmlns="{NS_CUSTOMER}"><Account xmlns:{e}="{NS_ENTITIES}" xmlns:i="{NS_XSI}">'
        f"<{e}:BillToCustomerId>123456789</{e}:BillToCustomerId>{currency_el}"
        f"<{e}:AccountFinancialStatus>ClearFinancialStatus</{e}:AccountFinancialStatus><{e}:Id>{account}</{e}:Id>"
        f"<{e}:Language>English</{e}:Language><{e}:Name>{escape(profile['name'])}</{e}:Name>"
        f"<{e}:Number>F{int(account) % 10**7:07d}</{e}:Number><{e}:ParentCustomerId>123456789</{e}:ParentCustomerId>"
        f"<{e}:AccountLifeCycleStatus>Active</{e}:AccountLifeCycleStatus><{e}:TimeZone>{zone}</{e}:TimeZone>"
        "</Account></GetAccountResponse>"
    )


def malformed_response(req: Request) -> Response:
    """A reply the fetcher must refuse: a GetAccount without a currency, or a report whose file is a
    broken CSV (rows short of fields, cut off before the footer)."""
    try:
        soap = SoapRequest(req)
    except (ET.ParseError, ValueError):
        return Response(200, b"<html>not soap</html>", {"Content-Type": "text/html"})
    account = soap.headers.get("CustomerAccountId") or "0"
    if soap.name == "GetAccountRequest":
        return _account_response(_text(soap.op, "AccountId") or "1", currency=False)
    if soap.name == "SubmitGenerateReportRequest":
        return _soap(
            f'<SubmitGenerateReportResponse xmlns="{NS_REPORTING}"><ReportRequestId>broken-'
            f"{uuid.uuid4().hex[:12]}</ReportRequestId></SubmitGenerateReportResponse>"
        )
    return _status("Success", _download_url(req, account, f"broken-{uuid.uuid4().hex[:12]}"))


# --- token endpoint ------------------------------------------------------------------------------


def token(req: Request, ctx: Context) -> Response:
    """Microsoft identity platform v2.0 refresh grant; the reply carries a new refresh token (B.3)."""
    form = req.form()

    def error(code: str, text: str, status: int = 400) -> Response:
        return json_response({"error": code, "error_description": text, "error_codes": [0]}, status)

    if form.get("grant_type") != "refresh_token":
        return error("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
    if not form.get("client_id"):
        return error("invalid_request", "AADSTS900144: The request body must contain the parameter: 'client_id'.")
    if not form.get("refresh_token"):
        return error("invalid_request", "AADSTS900144: The request body must contain the parameter: 'refresh_token'.")
    if SCOPE_NEEDED not in form.get("scope", ""):
        return error("invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid.")
    creds = CREDENTIALS
    if form["client_id"] != creds["MICROSOFT_CLIENT_ID"]:
        return error(
            "unauthorized_client",
            f"AADSTS700016: Application with identifier '{form['client_id'][:40]}' was not found in the directory.",
            400,
        )
    if not form.get("client_secret"):  # the demo app is a confidential (web) client: it has a secret
        return error(
            "invalid_client",
            "AADSTS7000218: The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
            401,
        )
    if form["client_secret"] != creds["MICROSOFT_CLIENT_SECRET"]:
        return error(
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
            "in the request is the client secret value, not the client secret ID.",
            401,
        )
    if form["refresh_token"].startswith("revoked") or not ctx.refresh_token_ok(PLATFORM, form["refresh_token"]):
        return error("invalid_grant", "AADSTS70000: The provided grant has expired or been revoked.")
    access = ctx.issue_token(PLATFORM)
    with ctx.lock:
        ctx.log.append(
            {
                "platform": PLATFORM,
                "op": "token",
                "refresh_token": form["refresh_token"],
                "scope": form.get("scope"),
                "client_id": form.get("client_id"),
            }
        )
    return json_response(
        {
            "token_type": "Bearer",
            "scope": "https://ads.microsoft.com/msads.manage",
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
            "refresh_token": ctx.issue_refresh_token(PLATFORM, "M.C5"),
        }
    )


PATH_SPACE = rf"/Api/|/common/oauth2/|{DOWNLOAD_PREFIX}/"


def unrouted(req: Request, status: int, message: str) -> Response:
    """A path or method the sandbox does not emulate, in this platform's own error format."""
    resp = _client_fault(message)
    resp.status = status
    return resp


def routes() -> list[Route]:
    return [
        Route("POST", REPORTING_PATH, reporting_service),
        Route("POST", CUSTOMER_PATH, customer_service),
        Route("GET", DOWNLOAD_PREFIX + r"/(?P<account>\d+)/(?P<job>[A-Za-z0-9_-]+)\.zip", download, api=False),
        Route("POST", TOKEN_PATH, token, api=False),
    ]
