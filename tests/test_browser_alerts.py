"""Real browser (Playwright + Debian's chromium): the Alerts page on a real Streamlit server.

The database holds every kind of alert for demo-acme as of 2026-03-18 (tests/test_app_alerts.py
make_db); the server's clock is pinned with ADSPEND_TODAY=2026-03-19. In the browser: go to the
Alerts page, see as many alerts as `cli.py alerts --json` and filter by kind. The browser runs
in a worker thread with its own Playwright (see tests/test_browser_invoicing.py for why)."""

from __future__ import annotations

import json
import threading

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    cli,
    go_to,
    no_exception,
    require_chromium,
    run_streamlit,
    screenshot,
    wait_caption,
)
from test_app_alerts import TODAY, make_db

pytestmark = pytest.mark.browser


def in_thread(fn, *args):
    out: dict = {}

    def work():
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out["error"] = exc

    t = threading.Thread(target=work, name="browser-alerts")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def drive(url: str, total: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]').first.wait_for()
            go_to(page, "Alerts")
            wait_caption(page, f"alerts | as of 2026-03-18 | {total} of {total} shown")
            no_exception(page)
            page.locator('[data-testid="stDataFrame"]').first.wait_for()
            kind = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Kind")
            kind.click()
            page.get_by_role("option", name="spike").click()
            page.keyboard.press("Escape")
            wait_caption(page, f"alerts | as of 2026-03-18 | 1 of {total} shown")
            no_exception(page)
            screenshot(page, "alerts_page")
        finally:
            browser.close()


def test_alerts_page_in_a_browser(tmp_path, monkeypatch):
    require_chromium()
    pytest.importorskip("playwright.sync_api")
    db = tmp_path / "alerts.duckdb"
    make_db(db)
    monkeypatch.setenv("ADSPEND_TODAY", TODAY)
    code, out, err = cli(db, "alerts", "--json")
    total = len(json.loads(out))
    assert code == 1 and total > 1, err
    with run_streamlit(db, ARTIFACTS / "streamlit-alerts.log", {"ADSPEND_TODAY": TODAY}) as url:
        in_thread(drive, url, total)
