"""Shared pieces of the sandbox: request/response types, the router, tokens, faults, stats.

Each platform emulator (``sandbox/<platform>.py``) exposes ``PLATFORM`` (its id) and
``routes() -> list[Route]``; handlers take ``(req, ctx)`` and return a :class:`Response`.
Emulators also expose ``expected_daily(account_id, day, generation) -> Decimal`` (what one
account spent that day, all of its parts summed) so ``/_sandbox/totals`` can answer tests.

Nothing here imports ``fetchers/``: the sandbox is written from the platforms' documentation,
not from our client code, so it cannot agree with the client's mistakes.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: dict[str, str] = field(default_factory=dict)
    raw_query: str = ""  # the query string exactly as sent (before percent-decoding)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def bearer(self) -> str | None:
        auth = self.header("authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a "hung" connection)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


def text_response(text: str, status: int = 200, content_type: str = "text/plain") -> Response:
    return Response(status, text.encode(), {"Content-Type": content_type})


@dataclass
class Route:
    method: str
    pattern: str
    handler: Callable[[Request, Context], Response]
    platform: str = ""
    api: bool = True  # False for token endpoints and downloads: no rate limit, no chaos

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)


# --- faults --------------------------------------------------------------------------------------

FAULT_KINDS = (
    "429",
    "429_no_retry_after",
    "throttle",
    "5xx",
    "expired_token",
    "revoked",
    "malformed",
    "truncated",
    "hang",
    "report_failed",
    "report_stuck",
    "duplicate",
    "too_large",  # the platform's "query too large" answer (TikTok 40067), where it documents one
)
CHAOS_KINDS = (
    "429",
    "429_no_retry_after",
    "throttle",
    "5xx",
    "expired_token",
    "malformed",
    "truncated",
    "hang",
    "report_failed",
    "report_stuck",
)


@dataclass
class Fault:
    platform: str
    kind: str
    count: int | None = 1  # None: every matching request, until reset
    account: str | None = None  # only requests for this account id
    used: int = 0


class Context:
    """The sandbox's mutable state. One per server; guarded by a lock (the server is threaded)."""

    def __init__(self, report_seconds: float | None = None) -> None:
        # the report timing a reset returns to: None, done after report_polls_needed polls (the
        # tests' sandboxes); the demo's sandbox completes reports by time (``DEMO_REPORT_SECONDS``)
        self._default_report_seconds = report_seconds
        self.lock = threading.RLock()
        self.static_token_platforms: set[str] = set()  # no refresh grant (set by the server)
        # Every token this sandbox ever issued (access and refresh), by token -> platform. Not
        # cleared by ``reset``: a reset forgets faults and expiries, not what the server handed out.
        self._ever_issued: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.faults: list[Fault] = []
            self.restate: dict[str, dict] = {}
            self.latency: dict[str, tuple[float, float]] = {}
            self.rate_limit: dict[str, float] = {}
            self.bucket_seconds = 0.5  # a platform's bucket holds this many seconds of its rate
            self._buckets: dict[str, list[float]] = {}
            self.chaos: dict | None = None
            self._chaos_draws: dict[tuple[str, str], int] = {}
            self.requests: dict[str, int] = {}
            self.throttled: dict[str, int] = {}
            self.token_grants: dict[str, int] = {}
            self.log: list[dict] = []
            # the API requests as they arrived: (platform, method, path), the latest 10,000
            self.arrivals: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=10_000)
            self._token_gen: dict[str, int] = {}
            self._issued: dict[str, tuple[str, int]] = {}
            self._token_uses: dict[str, int] = {}
            self._revoked: set[str] = set()
            self.jobs: dict[str, dict] = {}  # report jobs, any platform
            self.platform_state: dict[str, dict] = {}  # per-emulator state, cleared on reset
            self.hang_seconds = 35.0
            self.report_polls_needed = 3  # polls before a report completes
            # when set, a report completes this many seconds after its submit however often it is
            # polled, as a real platform's does (the bench's "2 s report jobs"); polls then count
            # for nothing
            self.report_seconds: float | None = self._default_report_seconds
            from .data import set_events

            set_events([])  # the alert demo switches (data.set_events)

    # configuration -----------------------------------------------------------------------------
    def configure(self, cfg: dict) -> None:
        with self.lock:
            for f in cfg.get("faults", []):
                if f["kind"] not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {f['kind']!r}; one of {FAULT_KINDS}")
                self.faults.append(Fault(f["platform"], f["kind"], f.get("count", 1), f.get("account")))
            for p, r in cfg.get("restate", {}).items():
                self.restate[p] = r
            for p, (lo, hi) in cfg.get("latency_ms", {}).items():
                self.latency[p] = (lo / 1000.0, hi / 1000.0)
            for p, rpm in cfg.get("rate_limit_rpm", {}).items():
                self.rate_limit[p] = float(rpm)
            if "rate_limit_bucket_seconds" in cfg:
                seconds = float(cfg["rate_limit_bucket_seconds"])
                if not 0 < seconds <= 60:
                    raise ValueError("rate_limit_bucket_seconds must be more than 0 and at most 60")
                self.bucket_seconds = seconds
                self._buckets = {}
            if "chaos" in cfg:
                chaos = cfg["chaos"]
                if chaos is not None:
                    unknown = [k for k in chaos.get("kinds", ()) if k not in CHAOS_KINDS]
                    if unknown:
                        raise ValueError(f"unknown chaos kind(s) {unknown}; one of {CHAOS_KINDS}")
                    if not 0 <= float(chaos.get("rate", 0)) <= 1:
                        raise ValueError("chaos rate must be between 0 and 1")
                self.chaos = chaos
                self._chaos_draws = {}
            if "hang_seconds" in cfg:
                self.hang_seconds = float(cfg["hang_seconds"])
            if "report_polls_needed" in cfg:
                self.report_polls_needed = int(cfg["report_polls_needed"])
            if "report_seconds" in cfg:
                seconds = cfg["report_seconds"]
                if seconds is not None and not 0 <= float(seconds) <= 3600:
                    raise ValueError("report_seconds must be null or between 0 and 3600")
                self.report_seconds = None if seconds is None else float(seconds)
            if "events" in cfg:
                from .data import set_events

                set_events(cfg["events"])

    def report_done(self, job: dict) -> bool:
        """Whether a report job is complete at this poll (under ``self.lock``, its ``polls``
        already counted): ``report_seconds`` after its ``submitted`` time when set, else after
        ``report_polls_needed`` polls."""
        if self.report_seconds is not None:
            return time.monotonic() - job["submitted"] >= self.report_seconds
        return job["polls"] >= self.report_polls_needed

    # faults ------------------------------------------------------------------------------------
    def take_fault(
        self, platform: str, account: str | None = None, kinds: tuple[str, ...] = FAULT_KINDS, token: str | None = None
    ) -> str | None:
        """The fault this request must show, if any (switched faults first, then chaos)."""
        with self.lock:
            for f in self.faults:
                if f.platform not in (platform, "*") or f.kind not in kinds:
                    continue
                if f.account and account and f.account != account:
                    continue
                if f.count is not None and f.used >= f.count:
                    continue
                f.used += 1
                return f.kind
            if self.chaos:
                return self._chaos_draw(platform, account, kinds, token)
        return None

    def _chaos_draw(
        self, platform: str, account: str | None, kinds: tuple[str, ...], token: str | None = None
    ) -> str | None:
        """One chaos draw. Each (platform, account) has its own sequence of draws, seeded from
        (seed, platform, account, n), so the threaded server's interleaving of other accounts'
        requests does not change which faults an account sees. A draw picks a fault with
        probability ``rate`` and then one kind among all chaos kinds; a kind this call site cannot
        show (``kinds``) means no fault here, so each request sees at most ``rate`` faults in all.
        Platforms whose configured token cannot be refreshed (no token endpoint) are not sent
        ``expired_token`` by chaos: that is a permanent credential failure, tested on its own.
        Nor is a token that has served fewer than ``token_min_uses`` requests (default 200): a
        real access token lives for an hour, so one just granted does not expire at once."""
        key = (platform, account or "")
        n = self._chaos_draws.get(key, 0)
        self._chaos_draws[key] = n + 1
        rng = random.Random(f"{self.chaos.get('seed', 0)}|{platform}|{account or ''}|{n}")
        if rng.random() >= float(self.chaos.get("rate", 0)):
            return None
        kind = rng.choice(list(self.chaos.get("kinds", CHAOS_KINDS)))
        if kind == "expired_token" and (
            platform in self.static_token_platforms
            or self._token_uses.get(token or "", 0) < int(self.chaos.get("token_min_uses", 200))
        ):
            return None
        return kind if kind in kinds else None

    def over_rate_limit(self, platform: str) -> bool:
        """Token bucket holding ``bucket_seconds`` (default half a second) of the platform's allowed
        rate, never less than one request: a client that sends in bursts is throttled, as the
        platforms' own limiters throttle it."""
        rpm = self.rate_limit.get(platform)
        if not rpm:
            return False
        with self.lock:
            rate = rpm / 60.0
            cap = max(1.0, rate * self.bucket_seconds)
            tokens, last = self._buckets.get(platform, [cap, time.monotonic()])
            now = time.monotonic()
            tokens = min(cap, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[platform] = [tokens, now]
                return True
            self._buckets[platform] = [tokens - 1.0, now]
            return False

    def count(self, platform: str, throttled: bool = False) -> None:
        with self.lock:
            self.requests[platform] = self.requests.get(platform, 0) + 1
            if throttled:
                self.throttled[platform] = self.throttled.get(platform, 0) + 1

    def delay_for(self, platform: str) -> float:
        lo_hi = self.latency.get(platform)
        return random.uniform(*lo_hi) if lo_hi else 0.0

    # tokens ------------------------------------------------------------------------------------
    def issue_token(self, platform: str) -> str:
        with self.lock:
            gen = self._token_gen.get(platform, 0)
            n = self.token_grants.get(platform, 0) + 1
            self.token_grants[platform] = n
            token = f"sbx-{platform}-at-{n}-{random.randrange(16**8):08x}"
            self._issued[token] = (platform, gen)
            self._ever_issued[token] = platform
            return token

    def issue_refresh_token(self, platform: str, prefix: str) -> str:
        """A new refresh token (for platforms that rotate them), remembered as issued here."""
        with self.lock:
            token = f"{prefix}{random.randrange(16**24):024x}"
            self._ever_issued[token] = platform
            return token

    def issued_here(self, platform: str, token: str | None) -> bool:
        with self.lock:
            return bool(token) and self._ever_issued.get(token) == platform

    def refresh_token_ok(self, platform: str, token: str | None) -> bool:
        """A refresh token the platform would accept: the configured demo one, or one issued here."""
        from .credentials import demo_refresh_tokens

        return bool(token) and (token in demo_refresh_tokens(platform) or self.issued_here(platform, token))

    def token_state(self, platform: str, token: str | None) -> str:
        """``ok``, ``missing``, ``invalid``, ``expired`` or ``revoked``. Accepted: the tokens this
        sandbox issued for ``platform`` and the platform's configured demo access token
        (``sandbox/credentials.py``), each until an expiry fault retires it; anything else is
        ``invalid``, as the platform answers a made-up token."""
        from .credentials import demo_access_tokens

        if not token:
            return "missing"
        with self.lock:
            if token in self._revoked:
                return "revoked"
            if self._ever_issued.get(token) != platform and token not in demo_access_tokens(platform):
                return "invalid"
            plat, gen = self._issued.get(token, (platform, 0))
            return "ok" if gen >= self._token_gen.get(platform, 0) else "expired"

    def expire_tokens(self, platform: str) -> None:
        with self.lock:
            self._token_gen[platform] = self._token_gen.get(platform, 0) + 1

    def revoke(self, token: str) -> None:
        with self.lock:
            self._revoked.add(token)

    def generation(self, platform: str, day: dt.date) -> int:
        from .data import restated_generation

        return restated_generation(self.restate.get(platform), day)


def access_check(
    ctx: Context, req: Request, platform: str, token: str | None, account: str | None = None
) -> str | None:
    """Apply the fault switches that concern auth and return the token problem, if any:
    ``missing``, ``invalid``, ``expired`` or ``revoked`` (the emulator renders it in its own protocol)."""
    if token:
        with ctx.lock:
            ctx._token_uses[token] = ctx._token_uses.get(token, 0) + 1
    fault = ctx.take_fault(platform, account, ("expired_token", "revoked"), token)
    if fault == "expired_token":
        ctx.expire_tokens(platform)
    elif fault == "revoked" and token:
        ctx.revoke(token)
    state = ctx.token_state(platform, token)
    return None if state == "ok" else state


def iso(d: dt.date) -> str:
    return d.isoformat()


def parse_iso_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
