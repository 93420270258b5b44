"""The shared HTTP client's transport: keep-alive connection pools tuned for a few hundred
requests a second (one pool per platform, one connection examined per request, a cheap
idle-connection check).

``PoolPerPlatform`` is what the refresh hands to its one ``httpx.AsyncClient``; ``PlatformApi``
names the pool of each request (``extensions["adspend_pool"]``).
"""

from __future__ import annotations

import asyncio
import functools
import select
import ssl

import httpcore
import httpx

MAX_CONNECTIONS = 32  # connections in each platform's pool; more requests wait their turn
KEEPALIVE_EXPIRY = 5.0  # seconds an idle pooled connection is kept


class SocketStream(httpcore.AsyncNetworkStream):
    """httpcore's anyio stream with its socket looked up once. Before an idle connection is
    reused it is asked "is_readable" (did the server close it?); anyio answers by rebuilding its
    whole attribute table (getpeername and friends). The check itself is one poll(0) on the
    socket."""

    def __init__(self, inner: httpcore.AsyncNetworkStream):
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> SocketStream:
        return SocketStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        if info == "socket":
            return self._sock
        if info == "is_readable":
            sock = self._sock
            if sock is None or sock.fileno() < 0:
                return True
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return self._inner.get_extra_info(info)


class PollingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        return SocketStream(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        return SocketStream(await self._inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context (certificate verification on) for every pool and connection of the
    process: building one loads the CA bundle, ~20 ms of CPU, and httpcore's pool without one
    builds a new context for every connection it opens."""
    return httpx.create_ssl_context()


class LeanPool:
    """A keep-alive pool that touches one connection per request (httpcore's request interface,
    in place of its ``AsyncConnectionPool`` inside an httpx transport).

    httpcore's pool re-examines every connection it holds whenever a request starts or ends: an
    expiry check on each (a poll(0) system call on each idle socket) and a count of the idle ones
    per connection, quadratic in the pool's size. At a few hundred requests a second over 32
    connections a platform that was about 1.3 ms of CPU a request, half the refresh process's
    own work, every system call also a GIL hand-off to whatever SDK thread was parsing. Here idle
    connections wait on a stack per origin; a request pops the most recently used one, checks
    that one (not expired, not closed by the server) and uses it, or opens a new connection. How
    many are in use at once is bounded by the caller (``PoolPerPlatform``'s semaphore), so there
    is no queue. A connection goes back on the stack when its response is closed, if it is idle
    (keep-alive); a closed one is forgotten."""

    def __init__(self, ssl_context: ssl.SSLContext, keepalive_expiry: float, network_backend):
        self._ssl_context, self._expiry, self._backend = ssl_context, keepalive_expiry, network_backend
        # idle connections by origin (scheme, host, port): httpcore's Origin is not hashable
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}
        self._open: set[httpcore.AsyncHTTPConnection] = set()

    async def _take(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(_key(origin))
        while stack:
            conn = stack.pop()
            if conn.is_idle() and not conn.has_expired():
                return conn
            await self._drop(conn)
        conn = httpcore.AsyncHTTPConnection(
            origin=origin, ssl_context=self._ssl_context, keepalive_expiry=self._expiry, network_backend=self._backend
        )
        self._open.add(conn)
        return conn

    async def _drop(self, conn: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(conn)
        await conn.aclose()

    async def _release(self, conn: httpcore.AsyncHTTPConnection, origin: httpcore.Origin) -> None:
        if conn.is_idle() and not conn.is_closed():  # (a connection that never connected is both)
            self._idle.setdefault(_key(origin), []).append(conn)
        elif conn in self._open:
            await self._drop(conn)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        conn = await self._take(origin)
        try:
            response = await conn.handle_async_request(request)
        except BaseException:
            await self._release(conn, origin)  # a failed request leaves it closed: forgotten
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_ReleasingStream(response.stream, lambda: self._release(conn, origin)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        conns, self._open, self._idle = list(self._open), set(), {}
        for conn in conns:
            await conn.aclose()

    async def __aenter__(self) -> LeanPool:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class _ReleasingStream:
    """A response body that hands its connection back to the pool once it is closed."""

    def __init__(self, stream, release):
        self._stream, self._release = stream, release

    async def __aiter__(self):
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            await release()


def pooled_transport(max_connections: int) -> httpx.AsyncHTTPTransport:
    """An httpx transport (its request and exception mapping) around a ``LeanPool``; at most
    ``max_connections`` requests at once is the caller's to keep (``PoolPerPlatform``)."""
    transport = httpx.AsyncHTTPTransport(
        verify=tls_context(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):  # httpx 0.28 layout
        transport._pool = LeanPool(tls_context(), KEEPALIVE_EXPIRY, PollingBackend())
    return transport


class PoolPerPlatform(httpx.AsyncBaseTransport):
    """The shared client's transport: a keep-alive connection pool per platform.

    httpcore scans every connection of a pool (a socket check on each idle one) whenever a
    request starts or ends, so one pool holding every platform's connections costs CPU in
    proportion to all of them for every request; at a few hundred requests a second that alone
    saturated a core. A pool per platform (named by ``PlatformApi`` in the request's extensions;
    the host otherwise) keeps each scan to the connections that platform's budget keeps busy.
    Requests beyond a pool's connections wait on a semaphore here, not in httpcore's queue
    (which is rescanned, request by connection, on every event); each body is read before the
    slot is given back."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS):
        self._max = max_connections
        self._pools: dict[str, tuple[httpx.AsyncHTTPTransport, asyncio.Semaphore]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.extensions.get("adspend_pool") or request.url.host
        entry = self._pools.get(key)
        if entry is None:
            entry = self._pools[key] = (pooled_transport(self._max), asyncio.Semaphore(self._max))
        pool, slots = entry
        async with slots:
            response = await pool.handle_async_request(request)
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
            return response

    async def aclose(self) -> None:
        for pool, _slots in self._pools.values():
            await pool.aclose()
