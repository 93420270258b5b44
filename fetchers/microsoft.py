"""Microsoft Advertising: daily spend of one account from the Reporting v13 SOAP service, through
Microsoft's own ``bingads`` SDK (13.0.30.1).

Facts: shared/platform-apis/amazon-microsoft.md, sections B (the service and the SDK), C (pointing the
unmodified SDK at another endpoint with the suds ``location`` option) and D (open questions).

How the pieces split:

- the SDK builds and sends every SOAP call (``ReportingServiceManager.submit_download`` for
  ``SubmitGenerateReport``, the operation's service client for ``PollGenerateReport``, the
  CustomerManagement client for ``GetAccount``); each blocking call runs in a thread of the SDK's
  worker process (``fetchers/soap_worker.py``; with ``ADSPEND_MICROSOFT_SDK_PROCESS=0``, in a
  thread of this process);
- our code owns the OAuth refresh (``core.OAuthRefreshAuth`` at ``MICROSOFT_ADS_TOKEN_URL``: the SDK
  offers no public way to change its token URL, B.3) and hands the SDK a bare access token in an
  authentication object that never refreshes by itself; SOAP faults 117/109/105/106 are mapped here;
- ``core.PlatformApi.run_report_job`` does the polling (deadline, resume by ReportRequestId), and the
  zipped CSV behind the pre-signed ``ReportDownloadUrl`` is fetched with ``api.request`` (no auth: the
  SDK's own download is a plain unauthenticated GET, B.5) and parsed here, exactly, into Decimals.

``bingads`` takes about half a second to import (B.1), so it is imported only when a call is made.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import hashlib
import http.client
import io
import os
import re
import socket
import threading
import urllib.error
import zipfile
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .base import AccountInfo, Api, FetchError, JobStatus, MalformedResponse, Verdict
from .core import OAuthRefreshAuth, credential, default_verdict, parse_day, parse_decimal, redact
from .specs import SPECS

PLATFORM = "microsoft"
API_VERSION = 13  # Reporting v13 and CustomerManagement v13 (bingads 13.0.30.1, B.1)
API_SUNSET = None  # Microsoft has announced no retirement of the v13 SOAP services
# No per-request cap on a custom date range is documented (section 0): one report per account for
# any range Microsoft still keeps (36 months of daily Account Performance data, B.7).
MAX_DAYS = 3 * 365

REPORTING_PATH = "/Api/Advertiser/Reporting/v13/ReportingService.svc"
CUSTOMER_PATH = "/Api/CustomerManagement/v13/CustomerManagementService.svc"
# Production hosts: the reporting host is MICROSOFT_ADS_API_BASE_URL's default; CustomerManagement
# lives on its own host (B.8). With a base URL override (a proxy, the built-in sandbox) both paths go
# to that one base, which is how the sandbox serves them.
REPORTING_HOST = SPECS[PLATFORM].default_base_url
CUSTOMER_HOST = "https://clientcenter.api.bingads.microsoft.com"
VENDOR_SANDBOX_HOSTS = {
    "https://reporting.api.sandbox.bingads.microsoft.com": "https://clientcenter.api.sandbox.bingads.microsoft.com"
}
# The refresh grant must name the scope (B.3: what the SDK itself sends for msads.manage).
OAUTH_SCOPE = "https://ads.microsoft.com/msads.manage offline_access"

REPORT_COLUMNS = ("TimePeriod", "AccountId", "CurrencyCode", "Spend")
REPORT_NAME = "Ad Spend Hub daily spend"
SOAP_TIMEOUT_SECONDS = 60.0  # suds' own default is 90 s; a report call answers in seconds
SDK_PROCESS_VAR = "ADSPEND_MICROSOFT_SDK_PROCESS"  # "0": the SDK in threads of this process
SDK_SESSIONS = 4  # SOAP calls in flight per process (each session parses the WSDLs once)

# Fault codes (B.7, operation-error-codes.md).
THROTTLED = {"117"}  # CallRateExceeded
TOKEN_EXPIRED = {"109"}  # AuthenticationTokenExpired
CREDENTIALS = {"105", "106"}  # InvalidCredentials, UserIsNotAuthorized
TRANSIENT = {"0"}  # InternalError: "try again"
REPORT_ID_UNKNOWN = {"2100"}  # InvalidReportId (e.g. a resumed id older than 2 days)

# CustomerManagement TimeZoneType -> (Reporting ReportTimeZone, IANA zone). The two services spell
# four zones differently (bundled WSDLs); the pairs below are matched by their city lists.
TIME_ZONES: dict[str, tuple[str, str]] = {
    "AbuDhabiMuscat": ("AbuDhabiMuscat", "Asia/Dubai"),
    "Adelaide": ("Adelaide", "Australia/Adelaide"),
    "Alaska": ("Alaska", "America/Anchorage"),
    "AlmatyNovosibirsk": ("AlmatyNovosibirsk", "Asia/Almaty"),
    "AmsterdamBerlinBernRomeStockholmVienna": ("AmsterdamBerlinBernRomeStockholmVienna", "Europe/Berlin"),
    "Arizona": ("Arizona", "America/Phoenix"),
    "AstanaDhaka": ("AstanaDhaka", "Asia/Dhaka"),
    "AthensBuckarestIstanbul": ("AthensIslandanbulMinsk", "Europe/Athens"),
    "AtlanticTimeCanada": ("AtlanticTimeCanada", "America/Halifax"),
    "AucklandWellington": ("AucklandWellington", "Pacific/Auckland"),
    "Azores": ("Azores", "Atlantic/Azores"),
    "Baghdad": ("Baghdad", "Asia/Baghdad"),
    "BakuTbilisiYerevan": ("BakuTbilisiYerevan", "Asia/Baku"),
    "BangkokHanoiJakarta": ("BangkokHanoiJakarta", "Asia/Bangkok"),
    "BeijingChongqingHongKongUrumqi": ("BeijingChongqingHongKongUrumqi", "Asia/Shanghai"),
    "BelgradeBratislavaBudapestLjubljanaPrague": ("BelgradeBratislavaBudapestLjubljanaPrague", "Europe/Budapest"),
    "BogotaLimaQuito": ("BogotaLimaQuito", "America/Bogota"),
    "Brasilia": ("Brasilia", "America/Sao_Paulo"),
    "Brisbane": ("Brisbane", "Australia/Brisbane"),
    "BrusselsCopenhagenMadridParis": ("BrusselsCopenhagenMadridParis", "Europe/Paris"),
    "Bucharest": ("Bucharest", "Europe/Bucharest"),
    "BuenosAiresGeorgetown": ("BuenosAiresGeorgetown", "America/Argentina/Buenos_Aires"),
    "Cairo": ("Cairo", "Africa/Cairo"),
    "CanberraMelbourneSydney": ("CanberraMelbourneSydney", "Australia/Sydney"),
    "CapeVerdeIsland": ("CapeVerdeIsland", "Atlantic/Cape_Verde"),
    "CaracasLaPaz": ("CaracasLaPaz", "America/Caracas"),
    "CasablancaMonrovia": ("CasablancaMonrovia", "Africa/Casablanca"),
    "CentralAmerica": ("CentralAmerica", "America/Guatemala"),
    "CentralTimeUSCanada": ("CentralTimeUSCanada", "America/Chicago"),
    "ChennaiKolkataMumbaiNewDelhi": ("ChennaiKolkataMumbaiNewDelhi", "Asia/Kolkata"),
    "ChihuahuaLaPazMazatlan": ("ChihuahuaLaPazMazatlan", "America/Mazatlan"),
    "Darwin": ("Darwin", "Australia/Darwin"),
    "EasternTimeUSCanada": ("EasternTimeUSCanada", "America/New_York"),
    "Ekaterinburg": ("Ekaterinburg", "Asia/Yekaterinburg"),
    "FijiKamchatkaMarshallIsland": ("FijiKamchatkaMarshallIsland", "Pacific/Fiji"),
    "Greenland": ("Greenland", "America/Nuuk"),
    "GreenwichMeanTimeDublinEdinburghLisbonLondon": ("GreenwichMeanTimeDublinEdinburghLisbonLondon", "Europe/London"),
    "GuadalajaraMexicoCityMonterrey": ("GuadalajaraMexicoCityMonterrey", "America/Mexico_City"),
    "GuamPortMoresby": ("GuamPortMoresby", "Pacific/Port_Moresby"),
    "HararePretoria": ("HararePretoria", "Africa/Johannesburg"),
    "Hawaii": ("Hawaii", "Pacific/Honolulu"),
    "HelsinkiKyivRigaSofiaTallinnVilnius": ("HelsinkiKyivRigaSofiaTallinnVilnius", "Europe/Helsinki"),
    "Hobart": ("Hobart", "Australia/Hobart"),
    "IndianaEast": ("IndianaEast", "America/Indiana/Indianapolis"),
    "InternationalDateLineWest": ("InternationalDateLineWest", "Etc/GMT+12"),
    "IrkutskUlaanBataar": ("IrkutskUlaanBataar", "Asia/Irkutsk"),
    "IslamabadKarachiTashkent": ("IslandamabadKarachiTashkent", "Asia/Karachi"),
    "Jerusalem": ("Jerusalem", "Asia/Jerusalem"),
    "Kabul": ("Kabul", "Asia/Kabul"),
    "Kathmandu": ("Kathmandu", "Asia/Kathmandu"),
    "Krasnoyarsk": ("Krasnoyarsk", "Asia/Krasnoyarsk"),
    "KualaLumpurSingapore": ("KualaLumpurSingapore", "Asia/Singapore"),
    "KuwaitRiyadh": ("KuwaitRiyadh", "Asia/Riyadh"),
    "SolomonIslandNewCaledonia": ("MagadanSolomonIslandNewCaledonia", "Pacific/Guadalcanal"),
    "MidAtlantic": ("MidAtlantic", "Atlantic/South_Georgia"),
    "MidwayIslandAndSamoa": ("MidwayIslandandSamoa", "Pacific/Pago_Pago"),
    "MoscowStPetersburgVolgograd": ("MoscowStPetersburgVolgograd", "Europe/Moscow"),
    "MountainTimeUSCanada": ("MountainTimeUSCanada", "America/Denver"),
    "Nairobi": ("Nairobi", "Africa/Nairobi"),
    "Newfoundland": ("Newfoundland", "America/St_Johns"),
    "Nukualofa": ("Nukualofa", "Pacific/Tongatapu"),
    "OsakaSapporoTokyo": ("OsakaSapporoTokyo", "Asia/Tokyo"),
    "PacificTimeUSCanadaTijuana": ("PacificTimeUSCanadaTijuana", "America/Los_Angeles"),
    "Perth": ("Perth", "Australia/Perth"),
    "Rangoon": ("Rangoon", "Asia/Yangon"),
    "Santiago": ("Santiago", "America/Santiago"),
    "SarajevoSkopjeWarsawZagreb": ("SarajevoSkopjeWarsawZagreb", "Europe/Warsaw"),
    "Saskatchewan": ("Saskatchewan", "America/Regina"),
    "Seoul": ("Seoul", "Asia/Seoul"),
    "SriJayawardenepura": ("SriJayawardenepura", "Asia/Colombo"),
    "Taipei": ("Taipei", "Asia/Taipei"),
    "Tehran": ("Tehran", "Asia/Tehran"),
    "Vladivostok": ("Vladivostok", "Asia/Vladivostok"),
    "WestCentralAfrica": ("WestCentralAfrica", "Africa/Lagos"),
    "Yakutsk": ("Yakutsk", "Asia/Yakutsk"),
}
REPORT_TIME_ZONE_BY_IANA = {iana: report_tz for report_tz, iana in TIME_ZONES.values()}

_DIGITS_RE = re.compile(r"^\d{1,19}$")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
# "©2026 Microsoft Corporation. All rights reserved." (SDK parser) or "@2020 ..." (the docs): B.6, D.5.
_FOOTER_RE = re.compile(r"^\s*[©@]\s*\d{4}\s+Microsoft Corporation", re.IGNORECASE)
_ROWS_RE = re.compile(r"^Rows:\s*(\d[\d,]*)\s*$")


# --- ids, auth, endpoints -----------------------------------------------------------------------


def normalize_account_id(raw: str) -> str:
    value = str(raw).strip()
    if not _DIGITS_RE.match(value) or int(value) == 0:
        raise ValueError(
            f"microsoft: {str(raw)!r} is not a Microsoft Advertising account id; expected the "
            "numeric account id (digits, e.g. 149123456), not the account number (e.g. F1234ABC)"
        )
    return value


def customer_id(credentials: Mapping[str, str]) -> str:
    value = credential(PLATFORM, credentials, "MICROSOFT_CUSTOMER_ID")
    if not _DIGITS_RE.match(value):
        raise FetchError(
            "config",
            "microsoft: MICROSOFT_CUSTOMER_ID must be the numeric customer id "
            "(digits, as shown in the Microsoft Advertising UI URL as cid=...)",
        )
    return value


def reporting_url(base_url: str) -> str:
    return base_url.rstrip("/") + REPORTING_PATH


def customer_management_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base == REPORTING_HOST:
        base = CUSTOMER_HOST
    base = VENDOR_SANDBOX_HOSTS.get(base, base)
    return base + CUSTOMER_PATH


# --- SOAP faults and errors ---------------------------------------------------------------------


def fault_errors(fault: Any) -> list[tuple[str, str, str]]:
    """(Code, ErrorCode, Message) of every error in a SOAP fault's detail, whichever of Microsoft's
    detail types carries them: AdApiFaultDetail (auth, headers, throttling), ApiFaultDetail
    (reporting request validation), ApiFault (CustomerManagement)."""
    detail = getattr(fault, "detail", None)
    out: list[tuple[str, str, str]] = []
    for holder, group, item in (
        ("AdApiFaultDetail", "Errors", "AdApiError"),
        ("ApiFaultDetail", "OperationErrors", "OperationError"),
        ("ApiFaultDetail", "BatchErrors", "BatchError"),
        ("ApiFault", "OperationErrors", "OperationError"),
    ):
        node = getattr(getattr(getattr(detail, holder, None), group, None), item, None)
        if node is None:
            continue
        for err in node if isinstance(node, list) else [node]:
            code, name, message = (
                str(getattr(err, attr, None) or "").strip() for attr in ("Code", "ErrorCode", "Message")
            )
            out.append((code, name, message))
    return out


def fault_verdict(errors: list[tuple[str, str, str]], faultstring: str = "") -> Verdict:
    """What to do about a SOAP fault: 117 -> retry, 109 -> refresh our token once, 105/106 -> auth,
    anything else -> fail with Microsoft's own message (B.4, B.7)."""
    codes = {code for code, _, _ in errors}
    described = "; ".join(f"{code} {name}: {msg}".strip() for code, name, msg in errors) or (
        faultstring or "SOAP fault without error details"
    )
    if codes & THROTTLED:
        return Verdict("retry", "throttled", f"fault {described}")
    if codes & TOKEN_EXPIRED:
        return Verdict("refresh", "auth", f"fault {described}")
    if codes & CREDENTIALS:
        return Verdict(
            "fail",
            "auth",
            f"credentials refused (fault {described}); check MICROSOFT_DEVELOPER_TOKEN "
            "and MICROSOFT_CUSTOMER_ID, that the signed-in user can access this "
            "account, and re-authorise to renew MICROSOFT_REFRESH_TOKEN",
        )
    if codes and codes <= TRANSIENT:
        return Verdict("retry", "server", f"fault {described}")
    return Verdict("fail", "request", f"request refused (fault {described})")


def exception_verdict(exc: BaseException) -> Verdict:
    """Errors the SDK raises that are not SOAP faults: HTTP status errors, transport errors, replies
    that are not SOAP."""
    import xml.sax

    args = getattr(exc, "args", ())
    if args and isinstance(args[0], tuple) and len(args[0]) == 2 and isinstance(args[0][0], int):
        status = args[0][0]  # suds: Exception((status, reason)) for non-SOAP replies
        if status == 429:
            return Verdict("retry", "throttled", "HTTP 429")
        if status >= 500:
            return Verdict("retry", "server", f"HTTP {status}")
        return Verdict("fail", "request", f"HTTP {status} ({args[0][1]})")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Verdict("retry", "timeout", f"no answer within {SOAP_TIMEOUT_SECONDS:.0f} s")
    if isinstance(exc, urllib.error.URLError) and isinstance(
        getattr(exc, "reason", None), (socket.timeout, TimeoutError)
    ):
        return Verdict("retry", "timeout", f"no answer within {SOAP_TIMEOUT_SECONDS:.0f} s")
    if isinstance(exc, (urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        return Verdict("retry", "server", f"connection failed ({type(exc).__name__})")
    if isinstance(exc, xml.sax.SAXException):
        return Verdict("fail", "malformed", "the SOAP reply is not well-formed XML (cut off or not SOAP)")
    return Verdict("fail", "malformed", f"the SOAP reply could not be read ({type(exc).__name__}: {exc})")


# --- the SDK, behind a thread (of the worker process, or of this one) -----------------------------


def _suds_options(location: str) -> dict[str, Any]:
    """``location`` sends the unmodified SDK to our endpoint (C). No WSDL cache shared between
    clients: with one shared ``DictCache`` the second report's polling client sent no SOAP headers
    at all (fault 116), because the clients then share parsed WSDL objects that the SDK mutates."""
    return {"location": location, "timeout": SOAP_TIMEOUT_SECONDS}


_wire = threading.local()  # .mark: the running call's wire marker (``SessionPool.call``)
_WIRE_PLUGIN: Any = None


def _wire_plugin() -> Any:
    """A suds message plugin whose ``sending`` hook (called with the marshalled envelope, just
    before suds hands it to its transport) marks the call as on the wire. Marking before the call
    instead was early by the envelope's serialisation (10-30 ms on a busy machine), and at 120 a
    minute a bucket holding half a second has a 15 ms margin."""
    global _WIRE_PLUGIN
    if _WIRE_PLUGIN is None:
        from suds.plugin import MessagePlugin

        class WirePlugin(MessagePlugin):
            def sending(self, context: Any) -> None:
                mark = getattr(_wire, "mark", None)
                if mark is not None:
                    _wire.mark = None
                    mark()

        _WIRE_PLUGIN = WirePlugin()
    return _WIRE_PLUGIN


_GC_LOCK = threading.Lock()
_gc_builders = 0  # SDK clients being built now (``_building_sdk_objects``)
_gc_was_enabled = True


@contextlib.contextmanager
def _building_sdk_objects():
    """Build SDK objects with the cyclic garbage collector paused, and freeze what was built.

    Importing the SDK and parsing each client's WSDL make some 100,000 long-lived objects apiece
    (about 600,000 for a run's sessions). While they are made, every 25 % of growth triggers a
    full collection that scans all of them: 0.06-0.27 s each, about 1.1 s of the whole process
    stopped in the first 3.4 s of a refresh, every platform's requests held up with it. Paused
    while any thread builds, then ``gc.freeze()``: the finished objects (and whatever else is
    alive then) move to the permanent generation, which collections no longer scan. Sessions are
    kept for the process's life, so this happens a few times per process; a cycle frozen then and
    dropped later is not collected (reference counting still frees everything else)."""
    global _gc_builders, _gc_was_enabled
    with _GC_LOCK:
        if _gc_builders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_builders += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_builders -= 1
            if _gc_builders == 0:
                gc.freeze()
                if _gc_was_enabled:
                    gc.enable()


class SdkSession:
    """One set of SDK clients (Reporting, Customer Management), reused across accounts and runs.
    Blocking; used by one worker thread at a time (``SessionPool`` hands it out).

    Building an SDK client parses its bundled WSDL (0.5-0.9 s of CPU), so clients are made once per
    session, not per account or per report. The account travels in the ``CustomerAccountId``
    header, set from ``self.data.account_id`` before each call. The SDK gets our access token before
    every call, in an authentication object that cannot refresh (an implicit-grant object whose
    token has no expiry), and its own automatic refresh is switched off so a fault 109 reaches us
    instead of the SDK's refresh (B.3). Reports are submitted and polled on the Reporting client
    itself, not through ``submit_download``/``ReportingDownloadOperation``: those build a polling
    client per report and ``get_status()`` retries on its own with 15-25 s sleeps (B.5)."""

    def __init__(self, credentials: Mapping[str, str], base_url: str):
        with _building_sdk_objects():
            from bingads.authorization import AuthorizationData

        self.client_id = credential(PLATFORM, credentials, "MICROSOFT_CLIENT_ID")
        self.base_url = base_url
        self.data = AuthorizationData(
            account_id=None,
            customer_id=customer_id(credentials),
            developer_token=credential(PLATFORM, credentials, "MICROSOFT_DEVELOPER_TOKEN"),
        )
        self._reporting: Any = None
        self._customer: Any = None

    def prepare(self, token: str, account_id: str) -> None:
        from bingads.authorization import OAuthDesktopMobileImplicitGrant, OAuthTokens

        self.data.authentication = OAuthDesktopMobileImplicitGrant(self.client_id, oauth_tokens=OAuthTokens(token))
        self.data.account_id = int(account_id)

    def _client(self, service: str, location: str) -> Any:
        with _building_sdk_objects():
            from bingads.service_client import ServiceClient

            client = ServiceClient(service, API_VERSION, self.data, "production", **_suds_options(location))
        client.refresh_oauth_tokens_automatically = False
        # The SDK puts its own header plugin in the suds options it re-applies before every call;
        # ours goes in the same list, so suds tells us when each envelope is about to be sent.
        client._options["plugins"].append(_wire_plugin())
        return client

    def client_for(self, method: str) -> Any:
        """The SDK client ``method`` uses, built now if this session has none yet."""
        return self.customer if method == "get_account" else self.reporting

    @property
    def customer(self) -> Any:
        if self._customer is None:
            self._customer = self._client("CustomerManagementService", customer_management_url(self.base_url))
        return self._customer

    @property
    def reporting(self) -> Any:
        if self._reporting is None:
            self._reporting = self._client("ReportingService", reporting_url(self.base_url))
        return self._reporting

    def submit(self, start: dt.date, end: dt.date, report_time_zone: str) -> str:
        request = build_report_request(self.reporting.factory, str(self.data.account_id), start, end, report_time_zone)
        return self.reporting.SubmitGenerateReport(ReportRequest=request)

    def poll(self, request_id: str) -> Any:
        return self.reporting.PollGenerateReport(ReportRequestId=request_id)

    def get_account(self) -> Any:
        return self.customer.GetAccount(AccountId=self.data.account_id)


class SessionPool:
    """At most ``size`` SDK sessions per endpoint and credentials, shared by every account of every
    run in this process: a handful of WSDL parses in all, and that many SOAP calls in flight."""

    def __init__(self, credentials: Mapping[str, str], base_url: str, size: int):
        self.credentials, self.base_url, self.size = dict(credentials), base_url, size
        self._idle: list[SdkSession] = []  # the most recently used last
        self._made = 0  # sessions built or being built
        self._changed = threading.Condition()

    def call(self, method: str, token: str, account_id: str, on_wire: Callable[[], None], *args: Any) -> Any:
        """Run ``SdkSession.<method>(*args)`` for ``account_id`` on a free session (blocking).
        ``on_wire`` is called when the call's envelope is about to be sent (``_wire_plugin``)."""
        session = self._checkout()
        try:
            session.prepare(token, account_id)
            session.client_for(method)  # a first use parses the WSDL: before the request, not in it
            _wire.mark = on_wire
            return getattr(session, method)(*args)
        finally:
            _wire.mark = None  # a call that failed before sending: the attempt's end marks it
            self._checkin(session)

    def start(self) -> None:
        """Nothing to start: in this process, building sessions ahead would hold the GIL that the
        event loop needs (the worker process builds them ahead, ``prebuild``)."""

    def prebuild(self) -> None:
        """Build every session not yet made, both clients each, one after another. Calls that come
        meanwhile wait for the first one ready instead of each parsing the WSDLs beside it (which,
        on a busy machine, made all of them late). A build that fails gives its slots back: the
        calls then build their own and meet the error themselves."""
        with self._changed:
            todo = self.size - self._made
            self._made = self.size
        for built in range(todo):
            try:
                session = SdkSession(self.credentials, self.base_url)
                session.client_for("get_account")
                session.client_for("submit")
            except Exception:  # noqa: BLE001 - the calls report it (they build and fail alike)
                with self._changed:
                    self._made -= todo - built
                    self._changed.notify_all()
                return
            self._checkin(session)

    def _checkin(self, session: SdkSession) -> None:
        with self._changed:
            self._idle.append(session)
            self._changed.notify()

    def _checkout(self) -> SdkSession:
        with self._changed:
            while not self._idle and self._made >= self.size:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._made += 1
        try:
            return SdkSession(self.credentials, self.base_url)
        except BaseException:
            with self._changed:
                self._made -= 1
                self._changed.notify()
            raise


_POOLS: dict[tuple, Any] = {}  # SessionPool or soap_worker.RemotePool
_POOLS_LOCK = threading.Lock()


def session_pool(credentials: Mapping[str, str], base_url: str) -> Any:
    """The process's SDK sessions for these credentials: in a worker process (``soap_worker``,
    so the SDK's CPU stays off the event loop's GIL), or with ``ADSPEND_MICROSOFT_SDK_PROCESS=0``
    in threads of this process."""
    in_process = os.environ.get(SDK_PROCESS_VAR, "1") == "0"
    key = (
        in_process,
        base_url,
        hashlib.sha256(
            "|".join(
                f"{k}={credentials.get(k, '')}"
                for k in ("MICROSOFT_CLIENT_ID", "MICROSOFT_CUSTOMER_ID", "MICROSOFT_DEVELOPER_TOKEN")
            ).encode()
        ).hexdigest(),
    )
    with _POOLS_LOCK:
        if key not in _POOLS:
            if in_process:
                _POOLS[key] = SessionPool(credentials, base_url, SDK_SESSIONS)
            else:
                from .soap_worker import RemotePool

                _POOLS[key] = RemotePool(credentials, base_url, SDK_SESSIONS, 2 * SOAP_TIMEOUT_SECONDS)
        return _POOLS[key]


def build_report_request(factory: Any, account_id: str, start: dt.date, end: dt.date, report_time_zone: str) -> Any:
    """The AccountPerformanceReportRequest for one account's daily spend over [start, end] (B.4)."""
    req = factory.create("AccountPerformanceReportRequest")
    req.Format = "Csv"
    req.FormatVersion = "2.0"  # no thousands separators in money columns (B.4)
    req.ReportName = REPORT_NAME
    req.ReturnOnlyCompleteData = False  # True with a range touching today is fault 2004 (B.4)
    req.ExcludeReportHeader = False  # keep "Rows: N" to check the file is whole
    req.ExcludeReportFooter = False  # keep the copyright row: a file without it was cut off
    req.ExcludeColumnHeaders = False  # columns are read by name
    req.Aggregation = "Daily"
    req.Filter = None  # the factory pre-builds an empty filter (B.9)
    scope = factory.create("AccountReportScope")
    scope.AccountIds = {"long": [int(account_id)]}
    req.Scope = scope
    time = factory.create("ReportTime")
    first, last = factory.create("Date"), factory.create("Date")
    first.Day, first.Month, first.Year = start.day, start.month, start.year
    last.Day, last.Month, last.Year = end.day, end.month, end.year
    time.CustomDateRangeStart, time.CustomDateRangeEnd = first, last
    time.PredefinedTime = None  # custom range and predefined period are exclusive
    time.ReportTimeZone = report_time_zone
    req.Time = time
    columns = factory.create("ArrayOfAccountPerformanceReportColumn")
    columns.AccountPerformanceReportColumn.append(list(REPORT_COLUMNS))
    req.Columns = columns
    return req


def soap_verdict(exc: Exception) -> Verdict:
    """Any error an SDK call raised: a SOAP fault by its codes, everything else by ``exception_verdict``."""
    from suds import WebFault

    from .soap_worker import RemoteVerdict

    if isinstance(exc, RemoteVerdict):  # sorted in the SDK's worker process, where it was raised
        return exc.verdict
    if isinstance(exc, WebFault):
        return fault_verdict(fault_errors(exc.fault), str(getattr(exc.fault, "faultstring", "") or ""))
    return exception_verdict(exc)


async def soap_call(api: Api, account_id: str, method: str, *args: Any) -> Any:
    """One SDK call (``SdkSession.<method>``) in a worker thread, through the core's loop
    (``api.call``): budget, request count, our token, 117 retried with backoff (pausing the
    budget), 109 -> refresh our token and retry once, transport errors retried, faults mapped."""
    pool = session_pool(api.credentials, api.base_url)
    on_wire = api.wire_marker()

    async def send(token: str | None) -> Any:
        assert token is not None  # authed: the core always hands a token
        return await api.to_thread(pool.call, method, token, account_id, on_wire, *args)

    return await api.call(send, on_error=soap_verdict)


# --- parsing ------------------------------------------------------------------------------------


def parse_account(account: Any, account_id: str) -> AccountInfo:
    """AccountInfo from CustomerManagement GetAccount's AdvertiserAccount (B.8)."""
    if account is None or isinstance(account, (str, bytes)):
        raise MalformedResponse(f"microsoft: GetAccount for {account_id} returned no account")
    returned_id = str(getattr(account, "Id", "") or "").strip()
    if returned_id != account_id:
        raise MalformedResponse(
            f"microsoft: GetAccount for {account_id} returned account {returned_id or 'without an Id'}"
        )
    currency = str(getattr(account, "CurrencyCode", "") or "").strip()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedResponse(f"microsoft: account {account_id} has no ISO currency code (got {currency[:20]!r})")
    zone = str(getattr(account, "TimeZone", "") or "").strip()
    if zone not in TIME_ZONES:
        raise MalformedResponse(
            f"microsoft: account {account_id} has time zone {zone[:60]!r}, which is not one of "
            "the v13 TimeZoneType values this version knows"
        )
    return AccountInfo(account_id, currency, TIME_ZONES[zone][1], str(getattr(account, "Name", "") or ""))


def report_time_zone(account: AccountInfo) -> str:
    try:
        return REPORT_TIME_ZONE_BY_IANA[account.timezone]
    except KeyError:
        raise FetchError(
            "request",
            f"microsoft: account {account.account_id} has time zone {account.timezone!r}, "
            "which has no Microsoft ReportTimeZone; refresh its account info",
        ) from None


def parse_poll_status(status: Any, request_id: str) -> JobStatus:
    """PollGenerateReport's ReportRequestStatus: Pending | Success | Error (B.4)."""
    state = str(getattr(status, "Status", "") or "").strip()
    if state == "Pending":
        return JobStatus("pending")
    if state == "Success":
        url = getattr(status, "ReportDownloadUrl", None)
        return JobStatus("done", {"url": str(url).strip() if url else ""})
    if state == "Error":
        return JobStatus(
            "failed",
            message=f"Microsoft reported status Error for report request {request_id}; "
            "the next refresh requests it again",
        )
    raise MalformedResponse(f"microsoft: report request {request_id} has an unknown status {state[:40]!r}")


def unzip_report(body: bytes) -> str:
    """The CSV inside the downloaded zip (first member, as the SDK reads it), BOM removed."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            names = z.namelist()
            if not names:
                raise MalformedResponse("microsoft: the report download is an empty zip")
            raw = z.read(names[0])
    except zipfile.BadZipFile:
        raise MalformedResponse(f"microsoft: the report download is not a zip file ({len(body)} bytes)") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedResponse("microsoft: the report file is not UTF-8 text") from None


def parse_spend(value: str, day: dt.date) -> Decimal:
    text = value.strip()
    if _THOUSANDS_RE.match(text):  # older FormatVersion puts separators in money (B.4)
        text = text.replace(",", "")
    return parse_decimal(text, f"microsoft Spend on {day}")


def parse_report_csv(text: str, account_id: str, currency: str) -> dict[dt.date, Decimal]:
    """Daily spend from the report file: metadata rows, the column row, data rows, the copyright
    footer (B.6). Checks the file is whole (``Rows:`` count and footer), every row is this account in
    its currency, and every Spend is an exact decimal. Days without a row are simply absent."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # e.g. a stray carriage return inside a field
        raise MalformedResponse(f"microsoft: the report CSV is not valid CSV ({exc})") from None
    declared: int | None = None
    i = 0
    while i < len(rows) and "TimePeriod" not in [c.strip() for c in rows[i]]:
        cells = [c for c in rows[i] if c.strip()]
        if len(cells) == 1:
            m = _ROWS_RE.match(cells[0].strip())
            if m:
                declared = int(m.group(1).replace(",", ""))
        i += 1
    if i == len(rows):
        raise MalformedResponse("microsoft: the report file has no column row with TimePeriod")
    header = [c.strip() for c in rows[i]]
    missing = [c for c in REPORT_COLUMNS if c not in header]
    if missing:
        raise MalformedResponse(f"microsoft: the report file lacks the column(s) {', '.join(missing)}")
    col = {name: header.index(name) for name in REPORT_COLUMNS}
    out: dict[dt.date, Decimal] = {}
    count, footer = 0, False
    for row in rows[i + 1 :]:
        cells = [c for c in row if c.strip()]
        if not cells:
            continue
        if footer:
            raise MalformedResponse("microsoft: the report file has rows after its copyright footer")
        if len(cells) == 1 and _FOOTER_RE.match(cells[0]):
            footer = True
            continue
        if row[0].strip().startswith("Total"):
            continue
        if len(row) != len(header):
            raise MalformedResponse(f"microsoft: a report row has {len(row)} fields, the header has {len(header)}")
        count += 1
        day = parse_day(row[col["TimePeriod"]], "microsoft: TimePeriod")
        if row[col["AccountId"]].strip() != account_id:
            raise MalformedResponse(
                f"microsoft: the report for {account_id} has a row for account {row[col['AccountId']][:30]!r}"
            )
        if row[col["CurrencyCode"]].strip() != currency:
            raise MalformedResponse(
                f"microsoft: account {account_id} reported spend in "
                f"{row[col['CurrencyCode']][:10]!r}, expected {currency}"
            )
        out[day] = out.get(day, Decimal(0)) + parse_spend(row[col["Spend"]], day)
    if not footer:
        raise MalformedResponse("microsoft: the report file has no copyright footer; it was cut off")
    if declared is not None and declared != count:
        raise MalformedResponse(f"microsoft: the report file says Rows: {declared} but holds {count} data rows")
    return out


# --- the fetcher --------------------------------------------------------------------------------


class MicrosoftFetcher:
    platform = PLATFORM
    max_days = MAX_DAYS
    lookback_days = SPECS["microsoft"].lookback_days
    day_basis = SPECS["microsoft"].day_basis
    history_days = SPECS["microsoft"].history_days

    def normalize_account_id(self, raw: str) -> str:
        return normalize_account_id(raw)

    def auth_headers(self, token: str) -> dict[str, str]:
        # SOAP calls carry the token as the AuthenticationToken SOAP header, set by the SDK
        # (SdkSession.set_token); the only plain HTTP call, the pre-signed download, is unauthenticated.
        return {}

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> OAuthRefreshAuth:
        # Microsoft rotates refresh tokens (B.3): on_rotate keeps the new one for the next run.
        # MICROSOFT_CLIENT_SECRET is optional: desktop (public) clients have none.
        return OAuthRefreshAuth(
            platform=PLATFORM,
            token_url=token_url,
            client_id=credential(PLATFORM, credentials, "MICROSOFT_CLIENT_ID"),
            client_secret=(credentials.get("MICROSOFT_CLIENT_SECRET") or "").strip(),
            refresh_token=credential(PLATFORM, credentials, "MICROSOFT_REFRESH_TOKEN"),
            access_token=(credentials.get("MICROSOFT_ACCESS_TOKEN") or "").strip() or None,
            extra_form={"scope": OAUTH_SCOPE},
            on_rotate=on_rotate,
        )

    def classify(self, response: Any) -> Verdict:
        # Only the report download goes through api.request; SOAP faults are sorted by fault_verdict.
        return default_verdict(response)

    def warm_up(self, api: Api) -> None:
        """Start the SDK's worker process (``PlatformSpec.warm_up``): it imports the SDK and parses
        its WSDLs while the refresh's other requests go out. Starting it can fail only as its first
        call would (no Python to run it), so a failure is left to that call to report."""
        try:
            session_pool(api.credentials, api.base_url).start()
        except OSError:
            pass

    async def account_info(self, api: Api, account_id: str) -> AccountInfo:
        """Currency and time zone from CustomerManagement GetAccount (B.8): the report's CurrencyCode
        column is absent when an account had no delivery, and the time zone is needed before the
        report is requested."""
        account_id = normalize_account_id(account_id)
        redact.add((api.credentials.get("MICROSOFT_DEVELOPER_TOKEN") or "").strip())
        account = await soap_call(api, account_id, "get_account")
        return parse_account(account, account_id)

    async def fetch_daily(self, api: Api, account: AccountInfo, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
        zone = report_time_zone(account)
        redact.add((api.credentials.get("MICROSOFT_DEVELOPER_TOKEN") or "").strip())

        async def submit() -> str:
            for _ in range(2):  # an empty ReportRequestId is a failed submit: try once more (B.9)
                request_id = await soap_call(api, account.account_id, "submit", start, end, zone)
                if request_id and str(request_id).strip():
                    return str(request_id).strip()
            raise MalformedResponse(
                f"microsoft: SubmitGenerateReport for {account.account_id} returned no ReportRequestId"
            )

        async def poll(request_id: str) -> JobStatus:
            return parse_poll_status(await soap_call(api, account.account_id, "poll", request_id), request_id)

        async def download(status: JobStatus) -> str | None:
            url = status.detail.get("url")
            if not url:
                return None  # Success without a URL: no data for these parameters (B.7)
            resp = await api.request("GET", url, authed=False, budgeted=False)
            return unzip_report(resp.content)

        text = await api.run_report_job(
            submit=submit,
            poll=poll,
            download=download,
            resume_key=f"{PLATFORM}:{account.account_id}:{start}:{end}:{zone}",
        )
        if text is None:
            return {}
        return parse_report_csv(text, account.account_id, account.currency)


FETCHER = MicrosoftFetcher()
