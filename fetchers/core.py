"""Everything the nine fetchers share, written once.

- ``plan_windows`` / ``contiguous_ranges``: date windows within a platform's per-request cap.
- ``parse_decimal`` / ``micros_to_decimal``: money off the wire, exactly, never through float.
- ``RateBudget``: the per-platform request budget, shared by every account and store in a run.
- ``missing_credentials`` / ``credential`` and ``redact``: re-exported from ``fetchers/secrets.py``.
- ``StaticTokenAuth`` / ``OAuthRefreshAuth``: access tokens, refreshed before expiry and once
  more on a 401, rotated refresh tokens handed to a callback (the token cache).
- ``PlatformApi``: the handle a fetcher gets: budget + auth + retries with backoff and jitter on
  429/5xx/timeouts (honouring Retry-After) + the platform's own classifier for errors that arrive
  inside HTTP 200 bodies, in one loop (``CallLoop.call``) that HTTP requests, SDK (SOAP) calls
  and OAuth token grants share;
  and ``run_report_job`` for submit -> poll -> download with a deadline.
- ``fetch_pages``: the one paging loop (page cap, loop and shape guards) behind every paged report.
- ``fetch_window``: one account, one window, the platform's rows with omitted days as zeros.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime as dt
import email.utils
import importlib.util
import logging
import os
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import httpx

# httpcore runs ``import sniffio`` for every lock it creates (several per request); when sniffio
# is not installed that failed import searches sys.path each time, about half a millisecond of
# CPU a request. A None entry makes the failed import instant; httpcore then assumes asyncio,
# which is what we run under.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

from .base import (
    AccountInfo,
    Action,
    Api,
    ErrorKind,
    FetchError,
    JobState,
    JobStatus,
    MalformedResponse,
    PageRequest,
    Paginator,
    PlatformFetcher,
    Verdict,
)
from .clock import strict_day
from .secrets import RedactingFilter, Redactor, credential, missing_credentials, redact  # noqa: F401
from .specs import SPECS

log = logging.getLogger("adspend.fetchers")
T = TypeVar("T")

# --- date windows -------------------------------------------------------------------------------


def plan_windows(start: dt.date, end: dt.date, max_days: int) -> list[tuple[dt.date, dt.date]]:
    """Inclusive [start, end] cut into consecutive inclusive windows of at most ``max_days``."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    out, cur = [], start
    while cur <= end:
        stop = min(end, cur + dt.timedelta(days=max_days - 1))
        out.append((cur, stop))
        cur = stop + dt.timedelta(days=1)
    return out


def contiguous_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted runs of consecutive days: {1,2,3,7,8} -> [(1,3), (7,8)]."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(days)):
        if out and out[-1][1] + dt.timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def days_in(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# --- money --------------------------------------------------------------------------------------

_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")
MICROS = Decimal(1_000_000)


def parse_decimal(value: Any, what: str = "amount") -> Decimal:
    """A decimal string (or int) from the wire as an exact Decimal.

    Floats are refused: a float has already lost the platform's exact figure. So are NaN,
    infinities, exponents and empty strings: they are malformed, never zero."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MalformedResponse(f"{what} is a {type(value).__name__} ({value!r}), expected a decimal string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_RE.match(value.strip()):
        return Decimal(value.strip())
    raise MalformedResponse(f"{what} is not a decimal number: {str(value)[:40]!r}")


def micros_to_decimal(value: Any, what: str = "amount in micros") -> Decimal:
    """Micro-units (an int, or an int sent as a string) divided exactly by 1,000,000."""
    if isinstance(value, bool) or isinstance(value, float):
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)  # JSON numbers like 1500000.0 are still whole micros
        else:
            raise MalformedResponse(f"{what} is not a whole number of micros: {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise MalformedResponse(f"{what} is not a whole number of micros: {value[:40]!r}")
        value = int(value.strip())
    if not isinstance(value, int):
        raise MalformedResponse(f"{what} is not a number: {str(value)[:40]!r}")
    return Decimal(value) / MICROS


_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: Any, what: str) -> dt.date:
    """A ``YYYY-MM-DD`` day from the wire, or a MalformedResponse naming ``what`` (never a guess)."""
    try:
        return strict_day(value)
    except ValueError:
        pass
    raise MalformedResponse(f"{what} is not a YYYY-MM-DD day: {str(value)[:30]!r}")


# What one account can have spent in one day, exclusive, in any currency: 10^12 units (40 million
# US dollars in Vietnamese dong). The store keeps each month's days in DECIMAL(18, 6), which holds
# exactly this range; a larger figure is a broken answer, refused with its window.
MAX_DAILY_AMOUNT = Decimal(10**12)
_MICRO = Decimal("0.000001")


def fill_zeros(
    rows: Mapping[dt.date, Decimal], start: dt.date, end: dt.date, platform: str = ""
) -> dict[dt.date, Decimal]:
    """Every day of [start, end]: the platform's amount, or an explicit zero for a day it left
    out (a day with no delivery). A day outside the window means the parse went wrong, and so
    does an amount the store cannot hold exactly (finer than a millionth, or 10^12 and over)."""
    name = platform or "platform"
    for d, amount in rows.items():
        if not (start <= d <= end):
            raise MalformedResponse(f"{name} returned a row for {d}, outside {start}..{end}")
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise MalformedResponse(f"{name} amount for {d} is not an exact decimal")
        if abs(amount) >= MAX_DAILY_AMOUNT:
            raise MalformedResponse(f"{name} amount for {d} ({amount:f}) is not a plausible day's spend")
        if amount != amount.quantize(_MICRO):
            raise MalformedResponse(f"{name} amount for {d} ({amount:f}) is finer than a millionth")
    return {d: rows.get(d, Decimal(0)) for d in days_in(start, end)}


# --- rate budget --------------------------------------------------------------------------------


class Slot:
    """One released slot of a :class:`RateBudget`, until its request reaches the wire."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


_current_slot: contextvars.ContextVar[Slot | None] = contextvars.ContextVar("adspend_budget_slot", default=None)
# requests made in a ``background`` task: served only when no other request waits for the budget
_background: contextvars.ContextVar[bool] = contextvars.ContextVar("adspend_background", default=False)


def background(coro) -> asyncio.Task:
    """Run ``coro`` as a task whose requests take the platform's budget only when nothing else is
    waiting for it (an account lookup whose answer is needed only when the data is written: it
    fills the gaps between a report's polls instead of delaying the reports)."""
    ctx = contextvars.copy_context()
    ctx.run(_background.set, True)
    return asyncio.get_running_loop().create_task(coro, context=ctx)


ANCHOR_BELOW_PER_MINUTE = 240  # see RateBudget


class RateBudget:
    """Requests spread evenly over the minute a little under the budget, with bursts of at most
    an eighth of a second's worth.

    Generic cell rate algorithm: each request reserves the next slot; a caller sleeps until its
    slot. Shared by every account and store of one platform in a run.

    A platform's limiter counts arrivals, not our schedule, and a token bucket that holds one
    request (a low budget at half a second's worth) throttles any two arrivals closer than one
    interval. So slots are ``PACE`` of the budget apart (the margin absorbs the jitter between
    our send and the platform's count), and releases also follow when earlier requests really
    went out (``sent``): no more than a burst is released and not yet on the wire (a new
    connection, an SDK client being built, a busy event loop), and a budget under 240 a minute
    releases one paced interval after the previous request went out, whatever the schedule said
    (above it, half a second of the platform's limit holds two requests or more: anchoring there
    too would turn every late wake-up of a busy loop into lost throughput).
    ``pause`` (Retry-After, a throttle) holds back every waiter, including those already asleep on
    slots reserved before it; a waiter woken long after its slot (the process stalled) queues
    again rather than joining a burst."""

    PACE = 0.97  # the share of the budget we schedule: 3% margin for arrival jitter

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0:
            raise ValueError("a request budget must be a positive number per minute")
        self.per_minute = per_minute
        self.interval = 60.0 / (per_minute * self.PACE)
        self.burst = max(1, int(per_minute / 480))  # an eighth of a second's worth
        # A limiter holding half a second's worth (the tightest we design for) absorbs one early
        # arrival from 240 a minute on; below that, each release waits one interval after the
        # previous request really went out.
        self.anchored = per_minute < ANCHOR_BELOW_PER_MINUTE
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next slot
        self._paused_until = 0.0
        self._went_out = -float("inf")  # when the latest request really went out
        self._unsent: set[Slot] = set()  # released, not yet on the wire
        self._on_wire: asyncio.Event | None = None
        self.waited = 0.0

    def reserve(self) -> float:
        """Reserve a slot; returns how long to wait before using it."""
        now = self._clock()
        tau = (self.burst - 1) * self.interval
        tat = max(self._tat, now, self._paused_until)
        allowed_at = tat - tau
        self._tat = tat + self.interval
        return max(0.0, allowed_at - now)

    def _hold(self, due: float) -> float:
        """How much longer a waiter woken now (its slot was ``due``) must wait: 0 to go, a
        positive time to sleep on, or -1 to reserve a new slot."""
        now = self._clock()
        if now < self._paused_until or now - due > self.interval * self.burst:
            return -1.0  # paused while it slept, or woken long after its slot (a stall)
        if self.anchored:  # one interval after the last one really went out
            return max(0.0, self._went_out + self.interval - now)
        return 0.0

    async def acquire(self) -> Slot:
        """Wait for a slot. The caller's request marks it ``sent`` when it reaches the wire
        (``PlatformApi`` does: httpcore's trace, an SDK call's wire marker, or the attempt's end).
        In a ``background`` task, a slot is reserved only once no slot is booked ahead (every
        earlier reservation's time has come): other requests, even later ones, go first."""
        if _background.get():
            # one interval first: requests that reach the budget at about the same time (the
            # windows started with the lookup, all waiting for one token grant) book before it
            await asyncio.sleep(self.interval)
            while (ahead := self._tat - self.interval - self._clock()) > 0:
                self.waited += ahead
                await asyncio.sleep(ahead)
        while True:
            wait = self.reserve()
            due = self._clock() + wait
            if wait > 0:
                self.waited += wait
                await asyncio.sleep(wait)
            while True:
                if len(self._unsent) >= self.burst:  # a burst's worth released, not all on the wire yet
                    started = self._clock()
                    if self._on_wire is None:
                        self._on_wire = asyncio.Event()
                    self._on_wire.clear()
                    await self._on_wire.wait()
                    self.waited += self._clock() - started
                    continue
                hold = self._hold(due)
                if hold <= 0:
                    break
                self.waited += hold
                await asyncio.sleep(hold)
                due += hold
            if hold == 0:
                slot = Slot()
                self._unsent.add(slot)
                return slot

    def sent(self, slot: Slot, at: float | None = None) -> None:
        """``slot``'s request really went out (its headers reached the socket, or an SDK call
        began) at ``at`` (now when None). A second mark of the same slot is ignored."""
        if slot.sent:
            return
        slot.sent = True
        self._unsent.discard(slot)
        self._went_out = max(self._went_out, self._clock() if at is None else at)
        if len(self._unsent) < self.burst and self._on_wire is not None:
            self._on_wire.set()

    def pause(self, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused_until = max(self._paused_until, until)
        self._tat = max(self._tat, until)


# --- auth ---------------------------------------------------------------------------------------


class StaticTokenAuth:
    """A long-lived token we cannot refresh (Meta system-user tokens, TikTok access tokens)."""

    can_refresh = False

    def __init__(self, token: str):
        self._token = token
        redact.add(token)

    async def token(self, http: httpx.AsyncClient) -> str:
        return self._token

    async def refresh(self, http: httpx.AsyncClient, failed: str | None = None) -> str:
        raise FetchError("auth", "the access token was rejected and cannot be refreshed: issue a new token")


@dataclass
class OAuthRefreshAuth:
    """The OAuth 2.0 refresh-token grant.

    Refreshes before expiry (``skew`` seconds early), once more when the API answers 401, and
    hands a rotated refresh token to ``on_rotate`` so the next run uses it. Concurrent accounts
    share one refresh; a refreshed token is reused for the rest of the run."""

    platform: str
    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    client_auth: str = "body"  # "body" or "basic" (HTTP Basic client auth)
    extra_form: Mapping[str, str] = field(default_factory=dict)
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    on_rotate: Callable[[str], None] | None = None
    skew: float = 120.0
    expires_at: float = 0.0
    grants: int = 0
    can_refresh = True

    def __post_init__(self) -> None:
        redact.add(self.client_secret, self.refresh_token, self.access_token)
        self._lock = asyncio.Lock()
        self._refused: tuple[str, FetchError] | None = None
        if self.access_token:
            self.expires_at = float("inf")  # trust a configured token until it is refused

    async def token(self, http: httpx.AsyncClient) -> str:
        if self.access_token and time.monotonic() < self.expires_at - self.skew:
            return self.access_token
        return await self.refresh(http, self.access_token)

    async def refresh(self, http: httpx.AsyncClient, failed: str | None = None) -> str:
        async with self._lock:
            if self._refused is not None and self._refused[0] == self.refresh_token:
                raise self._refused[1]  # the platform already refused this refresh token
            if self.access_token and self.access_token != failed and time.monotonic() < self.expires_at - self.skew:
                return self.access_token  # someone else refreshed while we waited
            self.access_token = await self._grant(http)
            return self.access_token

    async def _grant(self, http: httpx.AsyncClient) -> str:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, **self.extra_form}
        headers = {"Accept": "application/json", **self.extra_headers}
        if self.client_auth == "basic":
            raw = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret

        async def send(_token: str | None) -> httpx.Response:
            return await http.post(self.token_url, data=form, headers=headers)

        def classify(resp: httpx.Response) -> Verdict:
            # 429 and 5xx are retried like any call; every other answer is read below
            s = resp.status_code
            if s == 429 or s >= 500:
                kind = ErrorKind.THROTTLED if s == 429 else ErrorKind.SERVER
                return Verdict(Action.RETRY, kind, f"HTTP {s}", retry_after_seconds(resp))
            return Verdict.ok()

        loop = CallLoop(self.platform, retry=RetryPolicy(max_attempts=4), client=http)
        try:
            resp = await loop.call(
                send,
                classify=classify,
                on_error=transport_verdict,
                authed=False,
                budgeted=False,
                counted=False,
            )
        except FetchError as exc:  # the endpoint kept failing: no token, so no account can go on
            raise FetchError(
                ErrorKind.AUTH,
                redact(f"no access token: the {self.platform} token endpoint kept failing ({exc.message})"),
            ) from None
        self.grants += 1
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            code = body.get("error") if isinstance(body, dict) else None
            refused = FetchError(
                "auth",
                redact(
                    f"{self.platform} refused the refresh token (HTTP {resp.status_code}"
                    f"{', ' + str(code) if code else ''}): re-authorise the app and update "
                    f"{self.platform.upper()} refresh token"
                ),
            )
            self._refused = (self.refresh_token, refused)  # every other account gets the same answer
            raise refused
        token = str(body["access_token"])
        redact.add(token)
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self.expires_at = time.monotonic() + lifetime
        new_refresh = body.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and new_refresh != self.refresh_token:
            redact.add(new_refresh)
            self.refresh_token = new_refresh
            if self.on_rotate:
                self.on_rotate(new_refresh)
        return token


# --- classification -----------------------------------------------------------------------------


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    raw = resp.headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def body_snippet(resp: httpx.Response, limit: int = 200) -> str:
    try:
        text = resp.text
    except Exception:  # pragma: no cover
        return ""
    return redact(" ".join(text.split())[:limit])


def default_verdict(resp: httpx.Response) -> Verdict:
    """The HTTP-status map every platform starts from (platforms add their in-body codes)."""
    s = resp.status_code
    if 200 <= s < 300:
        return Verdict.ok()
    if s == 429:
        return Verdict(Action.RETRY, ErrorKind.THROTTLED, "HTTP 429", retry_after_seconds(resp))
    if s >= 500:
        return Verdict(Action.RETRY, ErrorKind.SERVER, f"HTTP {s}", retry_after_seconds(resp))
    if s == 401:
        return Verdict(Action.REFRESH, ErrorKind.AUTH, "HTTP 401: the access token was rejected")
    if s == 403:
        return Verdict(Action.FAIL, ErrorKind.REQUEST, f"HTTP 403: no access ({body_snippet(resp)})")
    return Verdict(Action.FAIL, ErrorKind.REQUEST, f"HTTP {s}: {body_snippet(resp)}")


def json_body(resp: httpx.Response, platform: str = "") -> Any:
    """The body as JSON, or a MalformedResponse that says so (never an empty result)."""
    try:
        return resp.json()
    except ValueError:
        raise MalformedResponse(
            f"{platform or 'platform'} sent a body that is not JSON "
            f"(HTTP {resp.status_code}, {len(resp.content)} bytes)"
        ) from None


# --- the per-platform API handle ----------------------------------------------------------------


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class RetryPolicy:
    """How long to keep trying. Test suites shorten the waits with ``ADSPEND_RETRY_BASE_SECONDS``."""

    max_attempts: int = 6
    base: float = field(default_factory=lambda: _env_float("ADSPEND_RETRY_BASE_SECONDS", 1.0))
    cap: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))  # full jitter


@dataclass
class ReportPolicy:
    first_poll: float = field(default_factory=lambda: _env_float("ADSPEND_REPORT_POLL_SECONDS", 2.0))
    max_poll: float = 30.0
    factor: float = 1.5
    deadline: float = field(default_factory=lambda: _env_float("ADSPEND_REPORT_DEADLINE_SECONDS", 900.0))


_request_tallies: contextvars.ContextVar[tuple[list[int], ...]] = contextvars.ContextVar(
    "adspend_request_tallies", default=()
)


@contextlib.contextmanager
def count_requests():
    """Count the requests sent by this task and the tasks it starts (``cell[0]``). Tallies nest:
    an account's count includes its windows'. Concurrent accounts never count each other's."""
    cell = [0]
    token = _request_tallies.set(_request_tallies.get() + (cell,))
    try:
        yield cell
    finally:
        _request_tallies.reset(token)


class MemoryJobStore:
    def __init__(self) -> None:
        self._d: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._d.get(key)

    def put(self, key: str, job_id: str) -> None:
        self._d[key] = job_id

    def drop(self, key: str) -> None:
        self._d.pop(key, None)


class CallLoop:
    """The one retry/classify loop: every call to a platform goes through ``call``, whether an
    API request (``PlatformApi``), an SDK's SOAP call or an OAuth token grant."""

    def __init__(
        self,
        platform: str,
        *,
        retry: RetryPolicy | None = None,
        auth: StaticTokenAuth | OAuthRefreshAuth | None = None,
        budget: RateBudget | None = None,
        client: httpx.AsyncClient | None = None,
    ):
        self.platform = platform
        self.retry = retry or RetryPolicy()
        self.auth = auth
        self.budget = budget
        self.client = client
        self.request_count = 0
        self.throttled_count = 0

    def note_request(self) -> None:
        """Count one request sent (fetchers that send through an SDK call this themselves)."""
        self.request_count += 1
        for cell in _request_tallies.get():
            cell[0] += 1

    async def access_token(self) -> str:
        if self.auth is None:
            raise FetchError("auth", f"{self.platform}: no credentials configured")
        return await self.auth.token(self.client)

    async def call(
        self,
        send: Callable[[str | None], Awaitable[T]],
        *,
        classify: Callable[[T], Verdict] | None = None,
        on_error: Callable[[Exception], Verdict | None] | None = None,
        authed: bool = True,
        budgeted: bool = True,
        counted: bool = True,
    ) -> T:
        """One call to the platform, HTTP or not (an SDK's SOAP call in a thread), tried until it
        succeeds or fails for good. Every attempt gets the access token (``send(token)``; None
        when ``authed`` is false), a slot of the rate budget and a count. ``classify`` sorts a
        result and ``on_error`` an exception ``send`` raised into a :class:`Verdict` (``on_error``
        returning None lets the exception through; a FetchError always goes through):

        - ``retry``: wait what the platform asked (Retry-After, pausing the whole budget; a wait
          past ``max_retry_after`` is a ``throttled`` failure) or back off with full jitter (a
          throttle pauses the budget for that backoff too), then try again;
        - ``refresh``: refresh the access token once and try again; refused again after the
          refresh (or no refresh possible) is an ``auth`` failure that names the credential;
        - ``fail``: a FetchError of the verdict's kind and message.

        After ``max_attempts`` the last retry's kind and reason become a FetchError. Messages
        pass through ``redact``."""
        refreshed = 0  # refreshes (and race retries) made for this call
        kind, last = ErrorKind.SERVER, ""
        for attempt in range(self.retry.max_attempts):
            token = await self.access_token() if authed else None
            slot = await self.budget.acquire() if budgeted and self.budget is not None else None
            if counted:
                self.note_request()
            result: Any = None
            marked = _current_slot.set(slot)
            try:
                result = await send(token)
            except FetchError:
                raise
            except Exception as exc:
                verdict = on_error(exc) if on_error is not None else None
                if verdict is None:
                    raise
            else:
                verdict = classify(result) if classify is not None else Verdict.ok()
            finally:
                _current_slot.reset(marked)
                if slot is not None:
                    self.budget.sent(slot)  # if nothing marked it on the way out: now, at the latest
            if verdict.action == Action.OK:
                return result
            if verdict.action == Action.REFRESH and authed:
                current = getattr(self.auth, "access_token", None)
                if refreshed and current and current != token and refreshed < 3:
                    # another request of this run refreshed after we read the token: a race, not a
                    # refused credential; retry with the current token (bounded)
                    refreshed += 1
                    continue
                if refreshed or self.auth is None or not self.auth.can_refresh:
                    spec = SPECS.get(self.platform)
                    key = (spec.refresh_token_key if spec else "") or "the credentials"
                    raise FetchError(
                        ErrorKind.AUTH,
                        redact(
                            f"{self.platform}: {verdict.message or 'access token rejected'}; "
                            + (
                                f"refused again after a refresh: re-authorise and update {key}"
                                if refreshed
                                else "re-authorise and update the credentials"
                            )
                        ),
                    )
                await self.auth.refresh(self.client, token)
                refreshed = 1
                continue
            if verdict.action == Action.RETRY:
                kind = ErrorKind(verdict.kind or ErrorKind.SERVER)
                last = verdict.message or (
                    f"HTTP {result.status_code}" if isinstance(result, httpx.Response) else "no reason given"
                )
                if kind == ErrorKind.THROTTLED:
                    self.throttled_count += 1
                wait = verdict.retry_after
                if wait is not None:
                    if wait > self.retry.max_retry_after:
                        raise FetchError(
                            ErrorKind.THROTTLED,
                            f"{self.platform} asked us to wait {wait:.0f} s ({last}); try again later",
                        )
                else:
                    wait = self.retry.backoff(attempt)
                if slot is not None and (verdict.retry_after is not None or kind == ErrorKind.THROTTLED):
                    self.budget.pause(wait)
                await asyncio.sleep(wait)
                continue
            raise FetchError(verdict.kind or ErrorKind.REQUEST, redact(f"{self.platform}: {verdict.message}"))
        raise FetchError(kind, redact(f"{self.platform}: gave up after {self.retry.max_attempts} attempts ({last})"))


def transport_verdict(exc: Exception, seconds: float | None = None) -> Verdict | None:
    """Timeouts and transport failures are retried; any other exception is not ours to sort."""
    if isinstance(exc, httpx.TimeoutException):
        within = f" within {seconds:.0f} s" if seconds else " in time"
        return Verdict(Action.RETRY, ErrorKind.TIMEOUT, f"no answer{within}")
    if isinstance(exc, httpx.TransportError):
        return Verdict(Action.RETRY, ErrorKind.SERVER, f"connection failed ({type(exc).__name__})")
    return None


class PlatformApi(CallLoop):
    """The ``Api`` a fetcher gets for one run (see ``fetchers/base.py``)."""

    def __init__(
        self,
        fetcher: PlatformFetcher,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: Mapping[str, str],
        auth: StaticTokenAuth | OAuthRefreshAuth | None,
        budget: RateBudget,
        retry: RetryPolicy | None = None,
        report: ReportPolicy | None = None,
        jobs: Any = None,
        timeout: float = 30.0,
    ):
        super().__init__(fetcher.platform, retry=retry, auth=auth, budget=budget, client=client)
        self.fetcher = fetcher
        self.budget: RateBudget = budget  # always set here (a bare CallLoop may have none)
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.report = report or ReportPolicy()
        self.jobs = jobs if jobs is not None else MemoryJobStore()
        self.timeout = timeout

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def _trace(self, event: str, info: Any) -> None:
        """httpcore's trace hook: the moment a budgeted request's headers start on the wire."""
        if event == "http11.send_request_headers.started":
            slot = _current_slot.get()
            if slot is not None:
                self.budget.sent(slot)

    def wire_marker(self) -> Callable[[], None]:
        """For a call an SDK sends from a worker thread: call the marker (from that thread) just
        before the request leaves, after any slow preparation (see ``RateBudget.sent``). The
        thread runs in a copy of the calling task's context, which names the attempt's slot."""
        loop = asyncio.get_running_loop()
        clock, sent = self.budget._clock, self.budget.sent

        def mark() -> None:
            slot = _current_slot.get()
            if slot is not None:
                loop.call_soon_threadsafe(sent, slot, clock())

        return mark

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
    ) -> httpx.Response:
        """One HTTP request through :meth:`call`: the fetcher's ``auth_headers`` and ``classify``;
        timeouts and transport errors are retried."""
        full = self.url(url)
        seconds = timeout or self.timeout
        extensions: dict[str, Any] = {"adspend_pool": self.platform}
        if budgeted:
            extensions["trace"] = self._trace

        async def send(token: str | None) -> httpx.Response:
            hdrs = dict(headers or {})
            if token is not None:
                hdrs.update(self.fetcher.auth_headers(token))
            return await self.client.request(
                method,
                full,
                params=params,
                json=json,
                content=content,
                headers=hdrs,
                timeout=seconds,
                extensions=extensions,
            )

        return await self.call(
            send,
            classify=self.fetcher.classify,
            on_error=lambda exc: transport_verdict(exc, seconds),
            authed=authed,
            budgeted=budgeted,
        )

    async def run_report_job(
        self,
        *,
        submit: Callable[[], Awaitable[str]],
        poll: Callable[[str], Awaitable[JobStatus]],
        download: Callable[[JobStatus], Awaitable[Any]],
        resume_key: str | None = None,
        deadline_seconds: float | None = None,
    ) -> Any:
        """Submit (or resume by id), poll with growing intervals to a terminal state, download.

        A new job is first polled ``first_poll`` after its submit: a report is never ready as it
        is asked for, and a poll then would be a request spent for nothing. A resumed job (its id
        kept from an earlier refresh) is polled at once. A job still running at the deadline
        keeps its id in the job store, so the next refresh resumes it instead of asking for the
        same report again."""
        job_id = self.jobs.get(resume_key) if resume_key else None
        resumed = job_id is not None
        deadline = time.monotonic() + (deadline_seconds or self.report.deadline)
        wait = self.report.first_poll

        async def pause() -> None:  # the next wait, then a longer one after it
            nonlocal wait
            await asyncio.sleep(wait)
            wait = min(self.report.max_poll, wait * self.report.factor)

        if job_id is None:
            job_id = await submit()
            if resume_key:
                self.jobs.put(resume_key, job_id)
            await pause()  # a new job: not polled as it is asked for
        while True:
            try:
                status = await poll(job_id)
            except FetchError as exc:
                if resumed and exc.kind == ErrorKind.REQUEST:  # the platform no longer knows that id
                    resumed = False
                    if resume_key:
                        self.jobs.drop(resume_key)
                    job_id = await submit()
                    if resume_key:
                        self.jobs.put(resume_key, job_id)
                    await pause()  # a new job: not polled as it is asked for
                    continue
                raise
            if status.state == JobState.DONE:
                result = await download(status)
                if resume_key:
                    self.jobs.drop(resume_key)
                return result
            if status.state == JobState.FAILED:
                if resume_key:
                    self.jobs.drop(resume_key)
                raise FetchError(
                    ErrorKind.REPORT_FAILED,
                    redact(f"{self.platform} report {job_id} failed: {status.message or 'no reason given'}"),
                )
            if time.monotonic() + wait > deadline:
                raise FetchError(
                    ErrorKind.TIMEOUT,
                    f"{self.platform} report {job_id} was still {status.state} at the "
                    "deadline; the next refresh resumes it",
                )
            await pause()

    async def to_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)


DEFAULT_MAX_PAGES = 1000  # a chain of pages longer than this is a paging loop, not data


async def fetch_pages(api: Api, pages: Paginator, max_pages: int = DEFAULT_MAX_PAGES) -> dict[dt.date, Decimal]:
    """Every page of one paged report (see ``base.Paginator``), its days merged.

    Refused as malformed, never read as fewer days: a body that is not JSON, a body the
    paginator cannot read (its shape is not the documented one), a day on two pages, a next
    request that repeats an earlier one, more than ``max_pages`` pages. Each page goes through
    ``api.request`` (budget, retries, classify)."""
    out: dict[dt.date, Decimal] = {}
    listed: set[dt.date] = set()
    sent: set[str] = set()
    request: PageRequest | None = pages.first()
    for n in range(1, max_pages + 1):
        assert request is not None
        key = request.key()
        if key in sent:
            raise MalformedResponse(f"{pages.what}: page {n} repeats an earlier page's request (a paging loop)")
        sent.add(key)
        resp = await api.request(
            request.method, request.url, params=request.params, json=request.json, headers=request.headers
        )
        body = json_body(resp, api.platform)
        try:
            rows, request = pages.read(body)
        except FetchError:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
            raise MalformedResponse(
                f"{pages.what}: page {n} does not have the documented shape ({type(exc).__name__})"
            ) from None
        for day, amount in rows.items():
            if day in listed:
                raise MalformedResponse(f"{pages.what}: {day} appears on two pages")
            listed.add(day)
            if amount is not None:
                out[day] = amount
        if request is None:
            return out
    raise MalformedResponse(f"{pages.what}: paging did not end after {max_pages} pages")


async def fetch_window(
    fetcher: PlatformFetcher, api: PlatformApi, account: AccountInfo, start: dt.date, end: dt.date
) -> dict[dt.date, Decimal]:
    """One account over one window: every day, with the days the platform left out as zeros.

    A window asks for as much as the platform documents (``max_days``); where the platform answers
    that a range or its answer is too large (a ``too_large`` failure, from its ``classify``), the
    window is halved and each half fetched the same way, down to single days."""
    if (end - start).days + 1 > fetcher.max_days:
        raise ValueError(f"{fetcher.platform}: window {start}..{end} exceeds {fetcher.max_days} days")
    try:
        rows = await fetcher.fetch_daily(api, account, start, end)
    except FetchError as exc:
        if exc.kind != ErrorKind.TOO_LARGE or start == end:
            raise
        mid = start + dt.timedelta(days=(end - start).days // 2)
        log.info("%s: %s..%s was too large for one request; asking for it in two halves", fetcher.platform, start, end)
        return {
            **await fetch_window(fetcher, api, account, start, mid),
            **await fetch_window(fetcher, api, account, mid + dt.timedelta(days=1), end),
        }
    return fill_zeros(rows, start, end, fetcher.platform)


async def fetch_window_and_info(
    fetcher: PlatformFetcher, api: PlatformApi, account_id: str, start: dt.date, end: dt.date
) -> tuple[AccountInfo, dict[dt.date, Decimal]]:
    """One account's first window when its info is not known yet, for a platform whose spend
    answer carries it (``PlatformSpec.info_in_data``, ``fetch_daily_and_info`` in base.py): the
    info read from that answer, or when it had no rows to read it from, from ``account_info``;
    and every day of the window, zero-filled like :func:`fetch_window`."""
    if not SPECS[fetcher.platform].info_in_data:
        raise ValueError(f"{fetcher.platform}: its spend answer does not carry the account's info")
    if (end - start).days + 1 > fetcher.max_days:
        raise ValueError(f"{fetcher.platform}: window {start}..{end} exceeds {fetcher.max_days} days")
    try:
        info, rows = await fetcher.fetch_daily_and_info(api, account_id, start, end)  # type: ignore[attr-defined]
    except FetchError as exc:
        if exc.kind != ErrorKind.TOO_LARGE:
            raise
        info = await fetcher.account_info(api, account_id)  # then the window in halves
        return info, await fetch_window(fetcher, api, info, start, end)
    if info is None:
        info = await fetcher.account_info(api, account_id)
    return info, fill_zeros(rows, start, end, fetcher.platform)
