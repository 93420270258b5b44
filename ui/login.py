"""Throttling of the dashboard's password gate (ADSPEND_APP_PASSWORD).

After a failed attempt a client must wait before its next one is even checked, and the wait
doubles with each failure in a row: 1 s, 2 s, 4 s ... up to 5 minutes; a success resets it.
"Client" is the IP address Streamlit sees for the browser (``st.context.ip_address``; behind a
reverse proxy that is the proxy, so the brake is then shared by everyone behind it), or the
Streamlit session when the address is unknown. On top of that a process-wide brake: more than
``GLOBAL_THRESHOLD`` failures within ``GLOBAL_WINDOW`` seconds, from any clients, make every
client wait the same doubling delay (guessing from many addresses gains nothing).

Every failure is logged (logger ``adspend.dashboard``, WARNING) with the client and the count,
never the password or any part of it; an attempt made while the client must still wait is
refused without checking the password, and logged too.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("adspend.dashboard")

BASE_SECONDS = 1.0
CAP_SECONDS = 300.0
GLOBAL_THRESHOLD = 20
GLOBAL_WINDOW = 600.0
_MAX_CLIENTS = 10_000


@dataclass
class _Client:
    failures: int = 0
    next_allowed: float = 0.0
    last: float = 0.0


class LoginThrottle:
    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._clients: dict[str, _Client] = {}
        self._recent: collections.deque[float] = collections.deque()
        self._global_next = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def delay(failures: int) -> float:
        return min(BASE_SECONDS * 2 ** max(0, failures - 1), CAP_SECONDS)

    def wait_seconds(self, client: str) -> float:
        """How long ``client`` must still wait before an attempt is checked (0: now)."""
        now = self.clock()
        with self._lock:
            c = self._clients.get(client)
            until = max(c.next_allowed if c else 0.0, self._global_next)
        return max(0.0, until - now)

    def failed(self, client: str) -> float:
        """Record a failed attempt; the delay before the next one."""
        now = self.clock()
        with self._lock:
            c = self._clients.setdefault(client, _Client())
            c.failures += 1
            c.last = now
            c.next_allowed = now + self.delay(c.failures)
            self._recent.append(now)
            while self._recent and self._recent[0] < now - GLOBAL_WINDOW:
                self._recent.popleft()
            if len(self._recent) > GLOBAL_THRESHOLD:
                self._global_next = now + self.delay(len(self._recent) - GLOBAL_THRESHOLD)
            if len(self._clients) > _MAX_CLIENTS:  # forget clients idle for a long time
                for key in [k for k, v in self._clients.items() if v.last < now - GLOBAL_WINDOW]:
                    del self._clients[key]
            return c.next_allowed - now

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


THROTTLE = LoginThrottle()


def client_key() -> str:
    """The browser's IP address as Streamlit sees it, else this Streamlit session."""
    import streamlit as st

    try:
        ip = st.context.ip_address
    except Exception:  # outside a browser session (AppTest)
        ip = None
    if isinstance(ip, str) and ip:
        return f"ip {ip}"
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return f"session {ctx.session_id[:8]}" if ctx is not None else "session unknown"


def check(given: str, password: str, client: str) -> tuple[bool, str | None]:
    """(accepted, message to show): the throttle first, then a constant-time comparison."""
    import hmac

    wait = THROTTLE.wait_seconds(client)
    if wait > 0:
        log.warning(
            "dashboard login refused for %s: %d s left of the wait after failed attempts", client, int(wait + 0.999)
        )
        return False, (f"Too many failed attempts: wait {int(wait + 0.999)} s before trying again.")
    if hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
        THROTTLE.succeeded(client)
        log.info("dashboard login succeeded for %s", client)
        return True, None
    delay = THROTTLE.failed(client)
    log.warning("dashboard login failed for %s; next attempt checked in %d s", client, int(delay + 0.999))
    return False, f"Wrong password. Wait {int(delay + 0.999)} s before trying again."
