"""The shared HTTP transport (fetchers/transport.py): one TLS context, a pool per platform."""

from __future__ import annotations

import ssl

from fetchers.transport import pooled_transport, tls_context


def test_every_pool_and_connection_shares_one_verifying_tls_context():
    a, b = pooled_transport(4), pooled_transport(8)
    ctx = tls_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    # httpcore builds a fresh context (and loads the CA bundle) for each connection of a pool
    # that was given none
    assert a._pool._ssl_context is ctx and b._pool._ssl_context is ctx
