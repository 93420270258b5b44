"""The built-in sandbox as a background service for demo stores.

``ADSPEND_SANDBOX_URL`` points at a sandbox that is already running (``python cli.py sandbox``);
otherwise one is started in this process on a free loopback port, once, and lives as long as the
process (the CLI run, or the dashboard server)."""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_server = None


def sandbox_url() -> str:
    url = os.environ.get("ADSPEND_SANDBOX_URL")
    if url:
        return url.rstrip("/")
    global _server
    with _lock:
        if _server is None:
            from sandbox.server import DEMO_REPORT_SECONDS, SandboxServer

            _server = SandboxServer(0, report_seconds=DEMO_REPORT_SECONDS).start()
        return _server.url


def running_server():
    """The in-process sandbox server, if this process started one."""
    return _server
