"""The shared HTTP transport (fetchers/transport.py): one TLS context, a pool per platform."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from fetchers.transport import pooled_transport, tls_context


def test_every_pool_and_connection_shares_one_verifying_tls_context():
    a, b = pooled_transport(4), pooled_transport(8)
    ctx = tls_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # httpcore builds a fresh context (and loads the CA bundle) for each connection of a pool
    # that was given none
    assert a._pool._ssl_context is ctx and b._pool._ssl_context is ctx


# --- LeanPool: one connection examined per request ------------------------------------------------


class _Server:
    """HTTP/1.1 keep-alive on 127.0.0.1 that counts the connections it accepted; a path of
    /close answers with ``Connection: close``."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.connections = 0
        self.handlers: list = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer.connections += 1
                outer.handlers.append(self)

            def do_GET(self):
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if self.path == "/close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def drop_connections(self):
        import socket

        for h in self.handlers:
            h.connection.shutdown(socket.SHUT_RDWR)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.stop()


def _client(max_connections: int = 4):
    import httpx

    from fetchers.transport import PoolPerPlatform

    return httpx.AsyncClient(transport=PoolPerPlatform(max_connections))


def test_sequential_requests_reuse_one_connection(server):
    async def go():
        async with _client() as c:
            return [(await c.get(f"{server.url}/a{i}")).text for i in range(20)]

    assert asyncio.run(go()) == [f"/a{i}" for i in range(20)]
    assert server.connections == 1


def test_concurrent_requests_open_at_most_the_pools_connections_then_reuse_them(server):
    async def go():
        async with _client(4) as c:
            first = await asyncio.gather(*(c.get(f"{server.url}/b{i}") for i in range(12)))
            opened = server.connections
            second = await asyncio.gather(*(c.get(f"{server.url}/c{i}") for i in range(4)))
            return [r.text for r in first + second], opened

    texts, opened = asyncio.run(go())
    assert texts == [f"/b{i}" for i in range(12)] + [f"/c{i}" for i in range(4)]
    assert opened == 4 and server.connections == 4  # the second round used the idle four


def test_a_connection_the_server_closed_or_said_close_on_is_not_reused(server):
    import time

    async def go():
        async with _client() as c:
            assert (await c.get(f"{server.url}/x")).text == "/x"
            server.drop_connections()  # the server hangs up on the idle connection
            time.sleep(0.05)
            assert (await c.get(f"{server.url}/y")).text == "/y"  # not sent on the dead one
            assert (await c.get(f"{server.url}/close")).text == "/close"
            assert (await c.get(f"{server.url}/z")).text == "/z"
            pool = c._transport._pools[httpx_host(server.url)][0]._pool
            return sorted(len(v) for v in pool._idle.values()), len(pool._open)

    idle, open_ = asyncio.run(go())
    assert server.connections == 3  # /x; /y and /close; /z
    assert idle == [1] and open_ == 1


def test_a_failed_connect_is_not_kept_and_close_closes_every_connection(server):
    import httpx

    async def go():
        c = _client()
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:9/")
        pool9 = c._transport._pools["127.0.0.1"][0]._pool
        kept = (dict(pool9._idle), set(pool9._open))
        await asyncio.gather(*(c.get(f"{server.url}/d{i}") for i in range(3)))
        conns = list(pool9._open)
        await c.aclose()
        return kept, conns, pool9._open

    kept, conns, after = asyncio.run(go())
    assert kept == ({}, set())
    assert len(conns) == 3 and all(conn.is_closed() for conn in conns) and after == set()


def httpx_host(url: str) -> str:
    return url.split("//", 1)[1].split(":", 1)[0]
