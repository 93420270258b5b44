"""Vault misconfigured or misbehaving (issue 15, items 2 and 3).

- Anything at VAULT_ADDR that is not a working Vault (an ordinary web server's HTML 200s, its 404
  pages, JSON that is not Vault's) is an error naming Vault, never "no credentials": the platforms
  that depended on it are ``failed`` and ``refresh`` exits 1 with one line.
- The token travelling over plain http to a host that is not this machine is warned about once.
- Every Vault call has a total deadline (VAULT_CLIENT_TIMEOUT): a server that sends its headers and
  then one byte a second, or that drips its headers, does not hold a refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.config import describe_platforms, load_settings, platform_config
from service.vault import VaultError, VaultSource, plain_http_warning

TOKEN = "hvs.hostile-test-token-5c1e"
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=2)
START = END - dt.timedelta(days=4)

# (status, content type, body) an ordinary web server might answer to any path
ANSWERS = {
    "html_200": (200, "text/html; charset=utf-8", b"<!doctype html><html><body>Welcome to nginx!</body></html>"),
    "html_404": (404, "text/html", b"<html><body><h1>404 Not Found</h1></body></html>"),
    "json_404": (404, "application/json", b'{"detail": "Not Found"}'),
    "json_200": (200, "application/json", b'{"status": "ok", "items": []}'),
    "json_200_data": (200, "application/json", b'{"data": [1, 2, 3]}'),
    "plain_403": (403, "text/plain", b"Forbidden"),
}


class _Server:
    """A loopback HTTP server answering every request with ``answer`` (or dripping, see ``drip``)."""

    def __init__(self, answer=None, drip: str | None = None, seconds: int = 60):
        outer = self
        self.stop_event = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _do(self):
                if drip == "body":  # headers at once, then one byte a second
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(seconds))
                    self.end_headers()
                    self.wfile.flush()
                    for _ in range(seconds):
                        if outer.stop_event.wait(1):
                            return
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    return
                if drip == "headers":  # the status line and headers a byte a second
                    for ch in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"[:seconds]:
                        self.wfile.write(bytes([ch]))
                        self.wfile.flush()
                        if outer.stop_event.wait(1):
                            return
                    return
                status, ctype, body = answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _do

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web():
    servers = []

    def make(*a, **kw):
        servers.append(_Server(*a, **kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_a_web_server_at_vault_addr_is_an_error_not_no_credentials(web, tmp_path, case):
    srv = web(ANSWERS[case])
    s = load_settings(environ={"VAULT_ADDR": srv.url, "VAULT_TOKEN": TOKEN}, root=tmp_path)
    for pid in ("meta", "tiktok"):
        cfg = platform_config(s, pid)
        assert not cfg.usable and cfg.error is not None
        assert cfg.error.startswith(f"Vault at {srv.url} did not answer as Vault (")
        assert cfg.error.endswith(
            "check that VAULT_ADDR is the address of Vault's API, such as "
            "https://vault.example.com:8200, not another web server"
        )
    assert s.vault_error == platform_config(s, "meta").error and "\n" not in s.vault_error
    assert TOKEN not in s.vault_error
    assert all(d["error"] == s.vault_error for d in describe_platforms(s))


def test_a_real_vaults_missing_secret_is_still_not_configured(tmp_path):
    from vault_standin import VaultStandIn

    v = VaultStandIn(token=TOKEN).start()
    try:
        s = load_settings(environ={"VAULT_ADDR": v.url, "VAULT_TOKEN": TOKEN}, root=tmp_path)
        cfg = platform_config(s, "meta")
        assert (cfg.mode, cfg.error, s.vault_error) == ("not_configured", None, None)
    finally:
        v.stop()


def _import(tmp_path, run_cli):
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id\ns1,Acme,tiktok,7123456789012345\ns1,Acme,meta,1000000001\n"
    )
    assert run_cli("accounts", "import", csv).returncode == 0


@pytest.mark.parametrize("case", ["html_200", "html_404", "json_404"])
def test_cli_refresh_against_a_web_server_exits_1_naming_vault(web, tmp_path, run_cli, monkeypatch, case):
    srv = web(ANSWERS[case])
    _import(tmp_path, run_cli)
    monkeypatch.setenv("VAULT_ADDR", srv.url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat())
    assert r.returncode == 1, r
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: Vault at {srv.url} did not answer as Vault ("), r
    lines = {ln.split()[1]: ln.split()[2] for ln in r.stdout.splitlines() if ln.startswith("s1 ")}
    assert lines == {"meta": "failed", "tiktok": "failed"}
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    assert doc["complete"] is False
    assert {p: v["status"] for p, v in doc["platforms"].items()} == {"meta": "failed", "tiktok": "failed"}


@pytest.mark.parametrize(
    "addr,warned",
    [
        ("http://vault.example.com:8200", True),
        ("http://10.0.0.5:8200", True),
        ("HTTP://Vault.Internal", True),
        ("https://vault.example.com:8200", False),
        ("http://127.0.0.1:8200", False),
        ("http://localhost:8200", False),
        ("http://[::1]:8200", False),
        ("http://127.5.0.1", False),
    ],
)
def test_plain_http_to_a_remote_host_is_warned(addr, warned):
    w = plain_http_warning(addr)
    assert (w is not None) is warned
    if warned:
        assert w == (
            f"VAULT_ADDR {addr} is plain http to another host: VAULT_TOKEN and the secrets travel "
            "unencrypted; use https://"
        )


def test_plain_http_warning_once_on_stderr_and_in_accounts_list(run_cli, monkeypatch, caplog):
    import service.vault as vault_mod

    monkeypatch.setattr(vault_mod, "_warned", set())
    monkeypatch.setenv("VAULT_ADDR", "http://vault.invalid:8200")
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    monkeypatch.setenv("VAULT_CLIENT_TIMEOUT", "1")
    caplog.set_level(logging.WARNING, logger="adspend.vault")
    r = run_cli("accounts", "list")
    vault_line = [ln for ln in r.stdout.splitlines() if ln.startswith("    vault ")]
    assert (
        len(vault_line) == 1
        and "WARNING: VAULT_ADDR http://vault.invalid:8200 is plain http to another host" in vault_line[0]
    ), r
    run_cli("accounts", "list")
    warned = [rec for rec in caplog.records if "plain http" in rec.getMessage()]
    assert len(warned) == 1 and TOKEN not in caplog.text
    assert (
        load_settings(environ={"VAULT_ADDR": "http://vault.invalid:8200", "VAULT_TOKEN": TOKEN})
        .vault.describe()["warning"]
        .startswith("VAULT_ADDR http://vault.invalid:8200 is plain http")
    )


# --- the total deadline ------------------------------------------------------------------------------


@pytest.mark.parametrize("drip", ["body", "headers"])
def test_every_vault_call_has_a_total_deadline(web, drip):
    srv = web(drip=drip, seconds=30)  # would take 30 s to answer in full
    src = VaultSource.from_settings({"VAULT_ADDR": srv.url, "VAULT_TOKEN": TOKEN, "VAULT_CLIENT_TIMEOUT": "1"})
    t0 = time.monotonic()
    with pytest.raises(VaultError) as exc:
        src.read("meta")
    elapsed = time.monotonic() - t0
    assert str(exc.value) == (
        f"Vault at {srv.url} did not answer within 1 s (VAULT_CLIENT_TIMEOUT); check that "
        "Vault is healthy and reachable from this machine"
    )
    assert elapsed < 10  # bounded by the deadline, not by the server's 30 s
    with pytest.raises(VaultError):  # down for the rest of the run: not asked again
        src.read("tiktok")
    assert time.monotonic() - t0 < 10


def test_cli_refresh_against_a_dripping_vault_ends_within_the_deadline(web, tmp_path, run_cli, monkeypatch):
    srv = web(drip="body", seconds=60)
    _import(tmp_path, run_cli)
    monkeypatch.setenv("VAULT_ADDR", srv.url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    monkeypatch.setenv("VAULT_CLIENT_TIMEOUT", "1")
    t0 = time.monotonic()
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat())
    assert time.monotonic() - t0 < 15
    assert r.returncode == 1, r
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert err == [
        f"error: Vault at {srv.url} did not answer within 1 s (VAULT_CLIENT_TIMEOUT); check that Vault "
        "is healthy and reachable from this machine"
    ], r
