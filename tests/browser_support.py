"""Support for the dashboard's tests: a demo database filled through the CLI, a Streamlit server
on a free loopback port (started, waited for, stopped), Debian's chromium through Playwright, and
small page helpers. Reusable by other page tests (e.g. tests/test_browser_invoicing.py):

    from browser_support import streamlit_server, browser, page, wait_caption   # noqa: F401

Fixtures here are plain pytest fixtures; importing them into a test module registers them there.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # gitignored: screenshots, server logs
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Environment for every dashboard test: fast retries/polls, no real budgets or .env.
FAST_ENV = {"ADSPEND_RETRY_BASE_SECONDS": "0.01", "ADSPEND_REPORT_POLL_SECONDS": "0.02", "ADSPEND_NO_DOTENV": "1"}


# --- CLI --------------------------------------------------------------------------------------------


def cli(db: Path, *args: str) -> tuple[int, str, str]:
    """``python cli.py --db DB ARGS`` in this process; (exit code, stdout, stderr)."""
    import cli as cli_module

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_module.main(["--db", str(db), *map(str, args)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def reset_sandbox() -> None:
    """Reset the in-process sandbox between refreshes of one test process.

    Work-around: demo (sandbox-mode) refreshes do not keep Pinterest's rotated refresh token
    (service/refresh.py uses the token cache only in live mode) and the long-lived in-process
    sandbox retires the used token, so a second refresh of a store with Pinterest in the same
    process fails there. A reset forgets the retired tokens."""
    from service.sandbox_runtime import running_server

    server = running_server()
    if server is not None:
        server.ctx.reset()


def make_demo_db(db: Path, refreshes: list[tuple[str, str, str]] = ()) -> Path:
    """Create the demo stores in ``db`` and refresh (store, start, end) through the CLI."""
    code, out, err = cli(db, "demo")
    assert code == 0, (out, err)
    for store_id, start, end in refreshes:
        reset_sandbox()
        code, out, err = cli(db, "refresh", "--store", store_id, "--start", start, "--end", end)
        assert code == 0, (out, err)
    return db


# --- server and browser -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


@contextlib.contextmanager
def run_streamlit(db: Path, log_path: Path, extra_env: dict | None = None):
    """``streamlit run app.py`` on 127.0.0.1:<free port> with ADSPEND_DB=db; yields the URL."""
    port = free_port()
    env = {**os.environ, **FAST_ENV, "ADSPEND_DB": str(db), **(extra_env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.fileWatcherType",
                "none",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def require_chromium() -> None:
    """Browser tests skip on a developer machine without chromium; in CI (which installs it) a
    missing chromium is a failure, so the browser tests can never be skipped there unnoticed."""
    if CHROMIUM:
        return
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: .ci/run installs it with apt-get (chromium chromium-driver)")
    pytest.skip("chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    # module scope: Playwright's sync API leaves an event loop running in the main thread while it
    # lives, which breaks every later asyncio.run() (each CLI refresh) in the same process
    require_chromium()
    pw_api = pytest.importorskip("playwright.sync_api")
    with pw_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def fresh_server(browser, tmp_path):
    """A dashboard server on a FRESH database (no file yet) and its database path."""
    db = tmp_path / "fresh.duckdb"
    with run_streamlit(db, ARTIFACTS / "streamlit-fresh.log") as url:
        yield url, db


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


# --- page helpers -----------------------------------------------------------------------------------


def main_area(page):
    return page.locator('[data-testid="stMain"]')


def wait_caption(page, text: str, timeout: float = 30_000):
    """Wait for the page's state (its last element, hidden from users: ui.page_state) to show
    ``text``."""
    page.locator('[data-testid="stMain"] .adspend-state').filter(has_text=text).last.wait_for(
        state="attached", timeout=timeout
    )


wait_state = wait_caption


def app_state(at) -> str:
    """AppTest: the page's state text (ui.page_state), the hook tests read instead of a caption."""
    import html
    import re

    bodies = [h.proto.body for h in at.get("html") if 'class="adspend-state"' in h.proto.body]
    assert bodies, "the page drew no state (ui.page_state)"
    return html.unescape(re.sub(r"<[^>]+>", "", bodies[-1]))


def metric_value(page, label: str) -> str:
    return (
        page.locator('[data-testid="stMetric"]')
        .filter(has_text=label)
        .locator('[data-testid="stMetricValue"]')
        .first.inner_text()
    )


def pick_sidebar_option(page, label: str, option: str) -> None:
    """Open the sidebar selectbox with ``label`` and choose ``option`` (typed to search)."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.keyboard.type(option.split(" (")[0][:12])
    page.get_by_role("option", name=option).click()


def go_to(page, label: str) -> None:
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]').get_by_text(label, exact=True).click()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
