"""The shared HTTP client's transport: keep-alive connection pools tuned for a few hundred
requests a second (one pool per platform, a cheap idle-connection check).

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
    """httpcore's anyio stream with its socket looked up once. httpcore asks every idle pooled
    connection "is_readable" (did the server close it?) on every request; anyio answers each
    such question by rebuilding its whole attribute table (getpeername and friends), which at a
    few hundred requests a second cost a core. The check itself is one poll(0) on the socket."""

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


def pooled_transport(max_connections: int) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(
        verify=tls_context(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):  # httpx 0.28 layout
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
            network_backend=PollingBackend(),
        )
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
