"""Shared fixtures: a sandbox on a free loopback port, its environment, fast retries."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Retries and report polls wait milliseconds in tests, not seconds.
os.environ.setdefault("ADSPEND_RETRY_BASE_SECONDS", "0.01")
os.environ.setdefault("ADSPEND_REPORT_POLL_SECONDS", "0.02")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's real credentials, .env or token cache."""
    from fetchers.specs import SPECS

    for s in SPECS.values():
        for key in (*s.all_keys, s.base_url_var, s.token_url_var, s.rpm_var):
            monkeypatch.delenv(key, raising=False)
    for key in (
        "ADSPEND_DB",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
        "ADSPEND_VAULT_PATH",
        "ADSPEND_ENV",
        "LINKEDIN_API_VERSION",
        "ADSPEND_APP_PASSWORD",
        "ADSPEND_INVOICE_KEY",
        "ADSPEND_RUN_LEASE_SECONDS",
        "VAULT_CLIENT_TIMEOUT",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ADSPEND_TOKEN_CACHE", str(tmp_path / "token_cache.json"))
    monkeypatch.setenv("ADSPEND_NO_DOTENV", "1")
    # a refresh's daily ECB rate update would reach the internet: off unless a test turns it on
    monkeypatch.setenv("ADSPEND_FX_AUTO_UPDATE", "0")
    monkeypatch.delenv("ADSPEND_FX_URL", raising=False)
    yield


def keep_linkedin_version_current(monkeypatch) -> None:
    """LinkedIn retires each monthly API version after about a year, and the sandbox does too. So
    that tests about the protocol pass on any date (CI also runs them a year ahead), the fetcher
    is pointed at a version the sandbox holds active today when the shipped one has aged out, as
    an operator would with LINKEDIN_API_VERSION; the retirement itself is tested on its own."""
    from fetchers import linkedin as li
    from sandbox.linkedin import active_versions

    if li.LINKEDIN_VERSION not in active_versions() and not os.environ.get(li.VERSION_ENV):
        monkeypatch.setenv(li.VERSION_ENV, max(active_versions()))


@pytest.fixture
def sandbox(monkeypatch):
    """A fresh sandbox server on 127.0.0.1:<free port>, stopped after the test."""
    from sandbox.server import SandboxServer

    keep_linkedin_version_current(monkeypatch)
    server = SandboxServer(0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_env(sandbox, monkeypatch):
    """Point every platform at the sandbox with its fake credentials (in this process's env)."""
    from fetchers.specs import SPECS
    from sandbox.credentials import sandbox_env as make_env

    env = make_env(sandbox.url)
    # the real platforms' budgets (e.g. Amazon's 60 a minute) would only slow tests down here;
    # tests about pacing set their own <P>_REQUESTS_PER_MINUTE
    env.update({s.rpm_var: "60000" for s in SPECS.values()})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err

    def json(self):
        import json

        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"CliResult(rc={self.returncode}, stdout={self.stdout[-800:]!r}, stderr={self.stderr[-800:]!r})"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "adspend.duckdb"


@pytest.fixture
def run_cli(db_path):
    """Run ``python cli.py --db <tmp db> ARGS...`` in this process (fast) and capture its output.

    The environment is this process's (use ``sandbox_env`` / monkeypatch to configure it)."""
    import contextlib
    import io

    def run(*args: str, db=None) -> CliResult:
        import cli

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(["--db", str(db or db_path), *map(str, args)])
            except SystemExit as exc:  # argparse errors
                code = exc.code if isinstance(exc.code, int) else 2
        return CliResult(code, out.getvalue(), err.getvalue())

    return run
