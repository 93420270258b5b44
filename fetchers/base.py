"""The small protocol every platform fetcher implements, and the types it speaks.

A platform module (``fetchers/<platform>.py``) holds only what is particular to its platform:
how to build its requests and how to parse what comes back. Everything else (HTTP client, rate
budget, retries, token refresh, report jobs, date windows, zero-filling) lives in
``fetchers/core.py`` and reaches the platform through the :class:`Api` handle it is given.

Fetchers know nothing of DuckDB or Streamlit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# --- the words the core speaks ---------------------------------------------------------------
# StrEnums: each member is equal to (and formats as) its string, which is what is stored and shown.


class Action(StrEnum):
    """What the core does with one answer (``Verdict.action``)."""

    OK = "ok"
    RETRY = "retry"  # throttle or transient: back off and try again
    REFRESH = "refresh"  # access token expired: refresh once, then retry
    FAIL = "fail"  # give up with the verdict's kind and message


class ErrorKind(StrEnum):
    """``FetchError.kind``: what the operator should do about a failed fetch."""

    AUTH = "auth"  # credentials missing, expired or revoked: re-authorise (platform-wide)
    THROTTLED = "throttled"  # the platform kept throttling after every retry: try again later
    SERVER = "server"  # 5xx or transport failures after every retry
    TIMEOUT = "timeout"  # a request or a report job ran past its deadline
    MALFORMED = "malformed"  # the body did not have the documented shape: never read as zero
    REQUEST = "request"  # the platform refused the request (bad id, no access, bad parameter)
    REPORT_FAILED = "report_failed"  # an asynchronous report ended in a failed state
    CONFIG = "config"  # our own configuration is wrong (e.g. an API version the platform retired)
    TOO_LARGE = "too_large"  # the platform said the range or answer is too large: the core halves the window


class JobState(StrEnum):
    """``JobStatus.state``: one poll of an asynchronous report."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


# --- errors -----------------------------------------------------------------------------------


class FetchError(Exception):
    """A fetch that did not produce trustworthy numbers.

    ``kind`` (an :class:`ErrorKind`) says what the operator should do about it.

    The message must be safe to show to users: no secret values, no raw URLs with tokens.
    """

    PLATFORM_WIDE = frozenset({ErrorKind.AUTH, ErrorKind.CONFIG})

    def __init__(self, kind: ErrorKind | str, message: str):
        super().__init__(message)
        self.kind = ErrorKind(kind)  # an unknown kind is a bug: ValueError here, not later
        self.message = message

    @property
    def platform_wide(self) -> bool:
        """True when no other account of the same platform can succeed in this run either."""
        return self.kind in self.PLATFORM_WIDE

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class MalformedResponse(FetchError):
    def __init__(self, message: str):
        super().__init__(ErrorKind.MALFORMED, message)


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountInfo:
    """What a platform says about one ad account: the context every amount is stored with."""

    account_id: str  # normalised id as stored (see interfaces.md)
    currency: str  # ISO 4217 code, upper case
    timezone: str  # IANA name of the account's reporting timezone
    name: str = ""


@dataclass(frozen=True)
class Verdict:
    """How the core should treat one answer (an HTTP response, a SOAP call's result or error).

    ``action`` is an :class:`Action` (``ok``, ``retry``, ``refresh``, ``fail``); ``kind`` the
    :class:`ErrorKind` a failure gets (empty for ``ok``). Plain strings are accepted and checked.
    """

    action: Action
    kind: ErrorKind | str = ""
    message: str = ""
    retry_after: float | None = None  # seconds, when the body says how long to wait

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if self.kind:
            object.__setattr__(self, "kind", ErrorKind(self.kind))

    @staticmethod
    def ok() -> Verdict:
        return Verdict(Action.OK)


# --- the handle a fetcher is given ------------------------------------------------------------


class ReportJobStore(Protocol):
    """Remembers report ids between runs so an interrupted refresh resumes instead of
    requesting the same report again. Keys are opaque strings built by the fetcher."""

    def get(self, key: str) -> str | None: ...
    def put(self, key: str, job_id: str) -> None: ...
    def drop(self, key: str) -> None: ...


class Api(Protocol):
    """What ``fetchers/core.py`` hands a platform fetcher for one run.

    ``request`` (and ``call``, its loop, for a call that is not HTTP) applies the platform's rate
    budget, auth headers (via ``PlatformFetcher.auth_headers``), retries with backoff on
    429/5xx/timeouts (honouring ``Retry-After``), the platform's ``classify`` verdicts, and one
    token refresh on expiry.
    It returns a response whose verdict was ``ok`` or raises :class:`FetchError`.
    """

    platform: str
    base_url: str  # scheme://host[:port], no trailing slash
    credentials: Mapping[str, str]  # the platform's keys from interfaces.md
    jobs: ReportJobStore
    request_count: int  # requests sent in this run by this handle

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        authed: bool = True,
        budgeted: bool = True,
        timeout: float | None = None,
    ) -> Any: ...  # httpx.Response

    async def call(
        self,
        send: Callable[[str | None], Awaitable[Any]],
        *,
        classify: Callable[[Any], Verdict] | None = None,
        on_error: Callable[[Exception], Verdict | None] | None = None,
        authed: bool = True,
        budgeted: bool = True,
    ) -> Any:
        """What ``request`` does, for a call that is not an httpx request (an SDK's SOAP call):
        ``send(token)`` makes one attempt; ``classify`` sorts its result, ``on_error`` an
        exception it raised (None: not ours to sort, raised as it is). Same budget, count,
        retries, backoff, token refresh and errors as ``request``."""
        ...

    async def access_token(self) -> str: ...

    def note_request(self) -> None:
        """Count a request the fetcher sent itself (through an SDK, not ``request``)."""
        ...

    def wire_marker(self) -> Callable[[], None]:
        """A thread-safe callable for an SDK call made in a worker thread: call it just before
        the request leaves (after any slow preparation), so the rate budget spaces the next
        request from when this one really went out. ``request`` does this itself."""
        ...

    async def run_report_job(
        self,
        *,
        submit: Callable[[], Awaitable[str]],
        poll: Callable[[str], Awaitable[JobStatus]],
        download: Callable[[JobStatus], Awaitable[Any]],
        resume_key: str | None = None,
        deadline_seconds: float | None = None,
    ) -> Any: ...

    async def to_thread(self, fn: Callable[..., Any], *args: Any) -> Any: ...


@dataclass(frozen=True)
class JobStatus:
    """One poll of an asynchronous report. ``state`` is a :class:`JobState`: ``pending``,
    ``done`` or ``failed``."""

    state: JobState
    detail: Mapping[str, Any] = field(default_factory=dict)  # e.g. the download URL
    message: str = ""  # the failure reason, if failed

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", JobState(self.state))


# --- paging -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """One page's request, as ``Api.request`` takes it."""

    method: str
    url: str  # a path under the base URL (or a whole URL)
    params: Any = None
    json: Any = None
    headers: Mapping[str, str] | None = None

    def key(self) -> str:
        """What makes two page requests the same request (a paging loop)."""
        params = sorted(self.params.items()) if isinstance(self.params, Mapping) else self.params
        return repr((self.method, self.url, params, self.json))


class Paginator(Protocol):
    """How one platform pages one report: the first request, and from each page's JSON body its
    rows and the next request (a cursor, a page number or a next URL). ``core.fetch_pages`` runs
    the loop: the page cap, repeated requests, bodies that are not JSON or not the documented
    shape, and a day on two pages are its to refuse. A paginator serves one fetch (it may keep
    state across pages, e.g. a total to check)."""

    what: str  # names the report in error messages, e.g. "meta insights"

    def first(self) -> PageRequest: ...

    def read(self, body: Any) -> tuple[Mapping[dt.date, Decimal | None], PageRequest | None]:
        """This page's days (None: a day listed without an amount) and the next page's request
        (None on the last page)."""
        ...


# --- the protocol -----------------------------------------------------------------------------


@runtime_checkable
class PlatformFetcher(Protocol):
    """One platform. Attributes are the platform's constants; methods are request building and
    parsing. ``fetch_daily`` returns the days the platform reported inside [start, end]; the
    core fills the days it left out with explicit zeros."""

    platform: str  # one of the nine ids
    max_days: int  # the most days one request (or report) may span
    lookback_days: int  # how many days after a day the platform may still restate it
    day_basis: str  # "account" (the account's timezone) or "UTC"
    history_days: int | None  # how far back the platform serves data (None: no documented cap)

    def normalize_account_id(self, raw: str) -> str:
        """The stored form of an id as a user pastes it; ValueError naming the expected form."""
        ...

    def auth_headers(self, token: str) -> dict[str, str]:
        """Headers that carry the access token (and any fixed per-request credentials)."""
        ...

    def build_auth(
        self, credentials: Mapping[str, str], token_url: str, on_rotate: Callable[[str], None] | None
    ) -> Any:
        """The auth object for this platform: ``core.StaticTokenAuth`` or ``core.OAuthRefreshAuth``
        (built from the platform's credential variables; ``on_rotate`` receives a rotated
        refresh token so the token cache can keep it for the next run)."""
        ...

    # Default hosts come from the registry (``PlatformSpec.default_urls``: Amazon's by region);
    # the ``<P>_API_BASE_URL`` / ``<P>_TOKEN_URL`` overrides always win.

    def classify(self, response: Any) -> Verdict:
        """Sort a response into ok / retry / refresh / fail (in-body error codes included)."""
        ...

    async def account_info(self, api: Api, account_id: str) -> AccountInfo: ...

    # Optional, declared by ``PlatformSpec.info_in_data`` (fetchers/specs.py), never guessed with
    # hasattr: a platform whose spend answer also carries the account's currency and time zone
    # (Google's ``customer.currency_code`` / ``customer.time_zone`` in the same GAQL query, §2.2;
    # Meta's ad account node with its insights edge expanded, §1.7)
    # implements
    #
    #     async def fetch_daily_and_info(self, api, account_id, start, end)
    #         -> tuple[AccountInfo | None, Mapping[dt.date, Decimal]]
    #
    # returning the days as ``fetch_daily`` does and the account's info read from the same answer
    # (None when the answer had no rows to read it from). ``core.fetch_window_and_info`` calls it
    # and falls back to ``account_info`` when it carried none, so a first fetch needs no lookup.

    # Optional, declared by ``PlatformSpec.warm_up``: a platform whose first call waits on something
    # slow to start (Microsoft's SDK worker process) implements
    #
    #     def warm_up(self, api) -> None
    #
    # which starts it without waiting for it and raises nothing (a failure to start is left for
    # the first call to meet and report). The refresh calls it once a run's plan has days to fetch
    # for the platform, before the first request.

    async def fetch_daily(
        self, api: Api, account: AccountInfo, start: dt.date, end: dt.date
    ) -> Mapping[dt.date, Decimal]: ...
