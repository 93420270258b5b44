"""Secret hygiene: a full demo refresh, a live refresh (with faults) and every export, with
recognisable fake secrets, then a search of everything the product writes or shows.

Every secret credential of the nine platforms gets a recognisable value (``...-S3CRET-<n>``, the
sandbox accepts exactly these), plus every access token the sandbox issues and every rotated
refresh token. None may appear in: log lines (DEBUG, every logger), the CLI's output and error
messages, the DuckDB file (raw bytes and every text column of every table), exports (invoice CSV,
mapping CSV), ``accounts list --json``, or any rendered dashboard page. The token cache is
readable by its owner only and holds rotated refresh tokens and fingerprints, never a configured
secret.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path

import pytest

from fetchers.specs import SPECS

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
LIVE = [
    ("meta", "1000000041"),
    ("google", "1234567041"),
    ("tiktok", "7100000000000041"),
    ("linkedin", "urn:li:sponsoredAccount:500041"),
    ("amazon", "3000000041"),
    ("microsoft", "41000041"),
    ("snapchat", "8f2a6c1e-0000-4000-8000-000000000041"),
    ("pinterest", "549000000041"),
    ("reddit", "a2_hyg0041"),
]


@pytest.fixture
def secrets(monkeypatch, sandbox):
    """Recognisable values for every secret credential, in the sandbox's own table (so it accepts
    them) and therefore in the demo configuration and in the environment a live store uses."""
    from sandbox.credentials import FAKE_CREDENTIALS, sandbox_env

    values = []
    for p, creds in FAKE_CREDENTIALS.items():
        for key in SPECS[p].secret_keys:
            if key in creds:
                new = f"{creds[key]}-S3CRET-{len(values):02d}"
                monkeypatch.setitem(creds, key, new)
                values.append(new)
    import sandbox.microsoft as ms_emulator  # the emulator keeps its developer token in a constant

    monkeypatch.setattr(ms_emulator, "DEVELOPER_TOKEN", FAKE_CREDENTIALS["microsoft"]["MICROSOFT_DEVELOPER_TOKEN"])
    for k, v in sandbox_env(sandbox.url).items():
        monkeypatch.setenv(k, v)
    # (the sandbox accepts only its configured refresh tokens and the ones it issued: the live store
    # uses the same S3CRET values as the demo stores, and its rotations come from the sandbox)
    monkeypatch.setenv("ADSPEND_SANDBOX_URL", sandbox.url)
    for s in SPECS.values():
        monkeypatch.setenv(s.rpm_var, "100000")
    monkeypatch.setenv("ADSPEND_LOG_LEVEL", "DEBUG")
    return values


def _page_texts(db_path) -> dict[str, str]:
    """Every page of the dashboard rendered (AppTest, switching pages as a user would): the text
    of every element's protobuf (tables included)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    out = {}
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    for script in [None, *sorted((ROOT / "pages").glob("*.py"))]:
        if script is not None:
            at.switch_page(f"pages/{script.name}").run()
        name = script.name if script else "app.py"
        assert not at.exception, (name, [e.value for e in at.exception])
        parts = []

        def walk(node, parts=parts):
            proto = getattr(node, "proto", None)
            if proto is not None:
                parts.append(str(proto))
            children = getattr(node, "children", None)
            for child in children.values() if isinstance(children, dict) else []:
                walk(child)

        walk(at._tree)
        out[name] = "\n".join(parts)
        assert len(out[name]) > 200, name  # the page really rendered something
    st.cache_resource.clear()
    return out


@pytest.fixture
def product_log():
    """Every log line as the product's own handler writes it (the CLI and the dashboard put
    ``RedactingFilter`` on their handler), at DEBUG, third-party libraries included. suds' WSDL
    parsing chatter (megabytes of schema) is left out; its client and transport loggers (the SOAP
    envelopes, with their tokens) are kept."""
    import io

    from fetchers.core import RedactingFilter

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved = root.level, {n: logging.getLogger(n).level for n in ("suds", "suds.client", "suds.transport")}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("suds").setLevel(logging.INFO)
    logging.getLogger("suds.client").setLevel(logging.DEBUG)
    logging.getLogger("suds.transport").setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for n, level in saved[1].items():
            logging.getLogger(n).setLevel(level)


def test_no_secret_anywhere_it_should_not_be(
    secrets, sandbox, run_cli, db_path, tmp_path, product_log, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG, logger="adspend")
    # the SDK in this process, so its SOAP envelopes reach the log handlers searched below (in its
    # worker process nothing is logged at all: test_the_sdk_worker_logs_nothing)
    monkeypatch.setenv("ADSPEND_MICROSOFT_SDK_PROCESS", "0")
    outputs = []

    def cli(*args):
        r = run_cli(*args)
        outputs.append(f"$ {args}\n{r.stdout}\n{r.stderr}")
        return r

    # a demo refresh (sandbox mode) and a live store (environment credentials), all nine platforms
    assert cli("demo").returncode == 0
    csv = tmp_path / "live.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"live,Live Co,{p},{a}\n" for p, a in LIVE))
    assert cli("accounts", "import", csv).returncode == 0
    r = cli("refresh", "--all", "--start", START.isoformat(), "--end", END.isoformat())
    assert r.returncode == 0, r.stdout
    # failures carry messages: make every platform fail once in some way and refresh again
    sandbox.ctx.configure(
        {
            "faults": [
                {"platform": p, "kind": k, "count": 1} for p in SPECS for k in ("expired_token", "malformed", "5xx")
            ]
            + [
                {"platform": "meta", "kind": "revoked", "count": None},
                {"platform": "tiktok", "kind": "revoked", "count": None},
            ]
        }
    )
    cli("refresh", "--all", "--start", START.isoformat(), "--end", END.isoformat(), "--full", "--json")
    # a revoked refresh token: the token endpoint's refusal becomes a message
    monkeypatch.setenv("GOOGLE_ADS_REFRESH_TOKEN", "google-refresh-revoked-S3CRET-99")
    secrets.append("google-refresh-revoked-S3CRET-99")
    cli("refresh", "--store", "live", "--start", START.isoformat(), "--end", END.isoformat(), "--full")
    monkeypatch.delenv("GOOGLE_ADS_REFRESH_TOKEN")

    # everything the product writes or shows
    exports = {}
    for store_id in ("live", "demo-acme"):
        out = tmp_path / f"{store_id}.csv"
        cli(
            "export",
            "--store",
            store_id,
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
            "--out",
            out,
            "--allow-incomplete",
        )
        exports[store_id] = out.read_text()
    out = tmp_path / "all.csv"
    cli("export", "--all", "--start", START.isoformat(), "--end", END.isoformat(), "--out", out, "--allow-incomplete")
    exports["all"] = out.read_text()
    from service.accounts import export_mapping_csv
    from storage.db import SpendStore

    store = SpendStore(db_path)
    exports["mapping"] = export_mapping_csv(store).decode()
    cli("accounts", "list", "--json")
    cli("accounts", "list")
    for sid in ("live", "demo-acme", "demo-fjord", "demo-sakura"):
        cli("spend", "--store", sid, "--start", START.isoformat(), "--end", END.isoformat(), "--json")

    tables = [t for (t,) in store.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")]
    dump = []
    for t in tables:
        cols = [
            c
            for (c,) in store.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND data_type = 'VARCHAR'", [t]
            )
        ]
        for c in cols:
            dump.extend(str(v) for (v,) in store.query(f'SELECT DISTINCT "{c}" FROM "{t}"'))
    assert len(dump) > 50
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    pages = _page_texts(db_path)

    # the secrets: configured ones, every access token the sandbox issued, every rotated refresh token
    with sandbox.ctx.lock:
        issued = list(sandbox.ctx._issued)
    import json

    cache_path = Path(os.environ["ADSPEND_TOKEN_CACHE"])
    cache = json.loads(cache_path.read_text())
    rotated = [v["refresh_token"] for k, v in cache.items() if isinstance(v, dict) and "refresh_token" in v]
    assert issued and rotated and len(secrets) >= 20
    every_secret = secrets + issued + rotated

    places = {
        "log lines": product_log.getvalue(),
        "log records before any filter (the product's own loggers)": "\n".join(
            rec.getMessage() + "\n" + (rec.exc_text or "") for rec in caplog.records if rec.name.startswith("adspend")
        ),
        "cli output and errors": "\n".join(outputs),
        "database (text columns)": "\n".join(dump),
        **{f"export {k}": v for k, v in exports.items()},
        **{f"page {k}": v for k, v in pages.items()},
    }
    raw_db = db_path.read_bytes() + (
        Path(str(db_path) + ".wal").read_bytes() if Path(str(db_path) + ".wal").exists() else b""
    )
    leaks = [(where, s) for where, text in places.items() for s in every_secret if s in text]
    leaks += [("database file bytes", s) for s in every_secret if s.encode() in raw_db]
    assert not leaks, leaks[:10]
    # the searches can find things: the logs and outputs are not empty, and they name the keys
    # the search could have found them: the SOAP envelopes (with their DeveloperToken and
    # AuthenticationToken headers) were logged, with the values cut out
    assert len(places["log lines"]) > 10000 and "DeveloperToken" in places["log lines"]
    assert "[redacted]" in places["log lines"]
    assert "GOOGLE_ADS_REFRESH_TOKEN" in places["cli output and errors"]

    # the token cache: owner-only, rotated tokens and fingerprints only, never a configured secret
    assert stat.S_IMODE(os.stat(cache_path).st_mode) == 0o600
    cache_text = cache_path.read_text()
    assert not [s for s in secrets if s in cache_text]
    assert set(rotated) <= set(r for r in rotated if r in cache_text)
