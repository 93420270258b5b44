"""The built-in sandbox: one loopback HTTP server that speaks every platform's protocol.

Every platform emulator is mounted at the paths its real API documents, so the product reaches
it just by pointing ``<P>_API_BASE_URL`` / ``<P>_TOKEN_URL`` at ``http://127.0.0.1:PORT``.

Control endpoints (for tests, the bench and the dashboard's demo mode):

- ``GET  /_sandbox/health``
- ``POST /_sandbox/reset``: clear faults, restatements, counters, jobs
- ``POST /_sandbox/config``: ``{"faults": [{"platform", "kind", "count", "account"}],
  "restate": {platform: {"from": "YYYY-MM-DD", "generation": 1}},
  "latency_ms": {platform: [lo, hi]}, "rate_limit_rpm": {platform: n},
  "rate_limit_bucket_seconds": 0.5 (each platform's bucket holds this many seconds of its rate),
  "chaos": {"seed": 1, "rate": 0.2}, "hang_seconds": 35, "report_polls_needed": 3,
  "report_seconds": null (or seconds: a report is done that long after its submit, polls aside),
  "events": [{"platform", "account", "kind": "stop", "from"}, {..., "kind": "spike", "day", "factor"}]}``
  (events: see ``sandbox/data.py`` set_events)
- ``GET  /_sandbox/totals?platform=&account=&start=&end=``: the exact spend the sandbox serves
- ``GET  /_sandbox/stats``: requests and throttle responses per platform, token grants

Demo exchange rates (ECB format, made up after the shipped history; ``sandbox/fxfeed.py``):
``GET /stats/eurofxref/eurofxref-hist.zip``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
import urllib.parse
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import data, fxfeed
from .common import Context, Request, Response, Route, json_response
from .emulators import emulators

log = logging.getLogger("adspend.sandbox")


def load_emulators() -> dict:
    """Platform id -> emulator module: every platform module of this package (``sandbox/emulators.py``)."""
    return dict(emulators())


# The demo's report jobs (the dashboard's own sandbox and ``python cli.py sandbox``) are done this
# long after their submit, as a real platform's are by time, not by how often they are polled: the
# product's first poll (2 s after the submit) finds them done.
DEMO_REPORT_SECONDS = 1.0


class Sandbox:
    """Routing and state, independent of the socket server (so tests can call ``handle``)."""

    def __init__(self, report_seconds: float | None = None) -> None:
        self.ctx = Context(report_seconds)
        self.emulators = load_emulators()
        self.routes: list[Route] = []
        self.ctx.static_token_platforms = {n for n, m in self.emulators.items() if not m.TOKEN_PATH}
        for name, mod in self.emulators.items():
            for r in mod.routes():
                r.platform = r.platform or name
                self.routes.append(r)

    # -- control --------------------------------------------------------------------------------
    def expected_total(self, platform: str, account: str, start: dt.date, end: dt.date) -> dict:
        mod = self.emulators[platform]
        days, total = {}, Decimal(0)
        d = start
        while d <= end:
            amt = mod.expected_daily(account, d, self.ctx.generation(platform, d))
            days[d.isoformat()] = str(amt)
            total += amt
            d += dt.timedelta(days=1)
        return {
            "platform": platform,
            "account": account,
            "currency": data.account_currency(account),
            "spend": str(total),
            "days": days,
        }

    def _control(self, req: Request) -> Response:
        action = req.path[len("/_sandbox/") :]
        if action == "health":
            return json_response({"ok": True, "platforms": sorted(self.emulators)})
        if action == "reset" and req.method == "POST":
            self.ctx.reset()
            return json_response({"ok": True})
        if action == "config" and req.method == "POST":
            try:
                self.ctx.configure(req.json())
            except (ValueError, KeyError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
            return json_response({"ok": True})
        if action == "totals":
            try:
                return json_response(
                    self.expected_total(
                        req.arg("platform"),
                        req.arg("account"),
                        dt.date.fromisoformat(req.arg("start")),
                        dt.date.fromisoformat(req.arg("end")),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                return json_response({"error": f"bad totals query: {exc}"}, 400)
        if action == "stats":
            with self.ctx.lock:
                return json_response(
                    {
                        "requests": self.ctx.requests,
                        "throttled": self.ctx.throttled,
                        "token_grants": self.ctx.token_grants,
                        "jobs": len(self.ctx.jobs),
                    }
                )
        return json_response({"error": f"sandbox: no control endpoint {req.path}"}, 404)

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path.startswith("/_sandbox/"):
            return self._control(req)
        if req.path == fxfeed.PATH and req.method in ("GET", "HEAD"):  # demo exchange rates
            self.ctx.fx_feed_requests = getattr(self.ctx, "fx_feed_requests", 0) + 1
            return fxfeed.response()
        allowed = set()
        for route in self.routes:
            m = route.regex.fullmatch(req.path)
            if not m:
                continue
            if route.method != req.method:
                allowed.add(route.method)
                continue
            req.match = {k: v for k, v in m.groupdict().items() if v is not None}
            return self._dispatch(route, req)
        if allowed:
            use = ", ".join(sorted(allowed))
            return self._unrouted(
                req, 405, f"sandbox: {req.method} is not emulated at {req.path}; use {use}", {"Allow": use}
            )
        return self._unrouted(req, 404, f"sandbox: {req.method} {req.path} is not emulated")

    def _unrouted(self, req: Request, status: int, message: str, headers: dict | None = None) -> Response:
        """404/405 in the error format of the platform whose URL space the path is in."""
        for mod in self.emulators.values():
            space = getattr(mod, "PATH_SPACE", None)
            if space and re.match(space, req.path) and hasattr(mod, "unrouted"):
                resp = mod.unrouted(req, status, message)
                resp.headers.update(headers or {})
                return resp
        return json_response({"error": message}, status, headers)

    def _dispatch(self, route: Route, req: Request) -> Response:
        p, mod, ctx = route.platform, self.emulators[route.platform], self.ctx
        if not route.api:
            return route.handler(req, ctx)
        delay = ctx.delay_for(p)
        if ctx.over_rate_limit(p):
            ctx.count(p, throttled=True)
            resp = (
                mod.throttle_response(req)
                if hasattr(mod, "throttle_response")
                else json_response({"error": "rate limited"}, 429, {"Retry-After": "1"})
            )
            resp.delay += delay
            return resp
        ctx.count(p)
        ctx.arrivals.append((p, req.method, req.path))
        account = getattr(mod, "account_of", lambda _r: None)(req) or req.match.get("account")
        fault = ctx.take_fault(
            p, account, ("429", "429_no_retry_after", "5xx", "hang", "throttle", "malformed", "truncated")
        )
        if fault == "429":
            ctx.throttled[p] = ctx.throttled.get(p, 0) + 1
            return Response(
                429, b'{"error": "too many requests"}', {"Content-Type": "application/json", "Retry-After": "1"}, delay
            )
        if fault == "429_no_retry_after":
            ctx.throttled[p] = ctx.throttled.get(p, 0) + 1
            return Response(429, b'{"error": "too many requests"}', {"Content-Type": "application/json"}, delay)
        if fault == "5xx":
            return Response(503, b"Service Unavailable", {"Content-Type": "text/plain"}, delay)
        if fault == "hang":
            return Response(504, b"Gateway Timeout", {"Content-Type": "text/plain"}, ctx.hang_seconds)
        if fault == "throttle":
            ctx.throttled[p] = ctx.throttled.get(p, 0) + 1
            resp = (
                mod.throttle_response(req)
                if hasattr(mod, "throttle_response")
                else Response(429, b"{}", {"Content-Type": "application/json", "Retry-After": "1"})
            )
            resp.delay += delay
            return resp
        if fault == "malformed" and hasattr(mod, "malformed_response"):
            resp = mod.malformed_response(req)
        elif fault == "malformed":
            resp = json_response({"unexpected": "shape"})
        else:
            resp = route.handler(req, ctx)
        if fault == "truncated" and len(resp.body) > 2:
            resp = Response(resp.status, resp.body[: len(resp.body) // 2], resp.headers)
        resp.delay += delay
        return resp


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small responses go out at once (no 40 ms delayed-ACK stall)
    sandbox: Sandbox

    def _serve(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            self.command,
            parsed.path,
            urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            raw_query=parsed.query,
        )
        try:
            resp = self.sandbox.handle(req)
        except Exception as exc:  # an emulator bug shows as a 500, like a real server's
            log.exception("sandbox handler failed")
            resp = json_response({"error": f"sandbox internal error: {type(exc).__name__}"}, 500)
        if resp.delay:
            time.sleep(resp.delay)
        try:
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, fmt: str, *args) -> None:  # quiet; requests are counted in ctx
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (timed out on a hung answer, or closed its pool) is normal here:
        no traceback on stderr. Anything else is logged."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        log.error("sandbox connection from %s failed: %r", client_address[0], exc)


class SandboxServer:
    """The sandbox on 127.0.0.1 in a background thread: ``with SandboxServer() as sb: sb.url``."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", report_seconds: float | None = None):
        self.sandbox = Sandbox(report_seconds)
        handler = type("Handler", (_Handler,), {"sandbox": self.sandbox})
        self.httpd = _Server((host, port), handler)
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def ctx(self) -> Context:
        return self.sandbox.ctx

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="adspend-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)


def run(port: int = 8765) -> None:
    server = SandboxServer(port, report_seconds=DEMO_REPORT_SECONDS)
    print(
        f"Ad Spend Hub sandbox on {server.url} (platforms: {', '.join(sorted(server.sandbox.emulators))})", flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


def env_for(url: str, platforms=None) -> dict[str, str]:
    """Environment that points the product's platforms (default: every emulated one) at a sandbox
    URL, with sandbox credentials."""
    from .credentials import sandbox_env

    return sandbox_env(url, platforms)


__all__ = ["DEMO_REPORT_SECONDS", "Sandbox", "SandboxServer", "run", "env_for", "json"]
