"""Real browser (Playwright + Debian's chromium): the Invoicing page on a real Streamlit server.

Stores are imported and refreshed for December 2025 from the test's sandbox through the CLI; the
server (a subprocess) reads the same database. In the browser: open the app, go to Invoicing, pick
2025-12, download the all-stores CSV (must equal `cli.py export --all` byte for byte), finalize a
store, and download its invoice (must equal `cli.py invoice export`).

The browser is driven from a worker thread with its own Playwright instance: Playwright's sync API
runs an event loop in the thread that started it, which would block the refresh's ``asyncio.run``
(and a second Playwright) in the main thread. So this module leaves nothing running behind it and
works whether or not another module's session-wide browser is alive.
"""

from __future__ import annotations

import re
import threading

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    go_to,
    no_exception,
    require_chromium,
    run_streamlit,
    screenshot,
    wait_caption,
)
from test_invoices import MIXED, setup_store

pytestmark = pytest.mark.browser


def in_thread(fn, *args):
    """Run ``fn(*args)`` in a fresh thread (no event loop running there) and return its result."""
    out: dict = {}

    def work():
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            out["error"] = exc

    t = threading.Thread(target=work, name="browser-invoicing")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def pick_main_option(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()


def download(page, name: str, to) -> bytes:
    # a download button with help text is drawn twice (one copy hidden): click the visible one
    button = page.locator('[data-testid="stDownloadButton"] button').filter(has_text=name)
    with page.expect_download() as dl:
        button.filter(visible=True).first.click()
    path = to / dl.value.suggested_filename
    dl.value.save_as(path)
    return path.read_bytes()


def drive(url: str, downloads) -> dict[str, bytes]:
    """The browser session: month overview, all-stores download, finalize, invoice download."""
    from playwright.sync_api import sync_playwright

    got: dict[str, bytes] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]').first.wait_for()
            go_to(page, "Invoicing")
            wait_caption(page, "invoicing | ")
            pick_main_option(page, "Billing period", "2025-12")
            wait_caption(page, "invoicing | 2025-12-01..2025-12-31 | 2 stores | ready 2 | finalized 0 | not ready 0")
            no_exception(page)
            screenshot(page, "invoicing_month")
            got["all"] = download(page, "Download all stores (2025-12-01 to 2025-12-31)", downloads)

            pick_main_option(page, "Store", "Mixed Shop (s1)")
            finalize = page.get_by_role("button", name=re.compile(r"Finalize s1 2025-12-01 to 2025-12-31"))
            # irreversible: without a name (no OS-user default) it is refused
            assert page.get_by_role("textbox", name="Your name").input_value() == ""
            finalize.click()
            page.get_by_text("Not finalized: enter your name first.").wait_for()
            page.get_by_role("textbox", name="Your name").fill("Dana Finance")
            page.get_by_role("textbox", name="Your name").press("Enter")
            page.get_by_text("I checked the lines above; finalize them.").click()
            finalize.click()
            wait_caption(page, "invoicing | 2025-12-01..2025-12-31 | 2 stores | ready 1 | finalized 1 | not ready 0")
            page.get_by_text("Finalized INV-000001: USD 31,665.86").wait_for()
            # the detail shows the invoice as invoiced
            assert (
                page.locator('[data-testid="stMetric"]')
                .filter(has_text="Invoiced (USD)")
                .locator('[data-testid="stMetricValue"]')
                .inner_text()
                == "USD 31,665.86"
            )
            no_exception(page)
            screenshot(page, "invoicing_finalized")
            got["invoice"] = download(page, "Download INV-000001", downloads)
            ctx.close()
        finally:
            browser.close()
    return got


def test_invoicing_page_downloads_all_stores_and_finalizes(sandbox, sandbox_env, run_cli, db_path, tmp_path):
    require_chromium()
    pytest.importorskip("playwright.sync_api")
    in_thread(setup_store, run_cli, tmp_path, MIXED + [("s2", "Second Shop", "meta", "1000000002", "EUR")])
    expected_all = tmp_path / "expected_all.csv"
    assert (
        in_thread(
            run_cli, "export", "--all", "--start", "2025-12-01", "--end", "2025-12-31", "--out", expected_all
        ).returncode
        == 0
    )

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with run_streamlit(db_path, ARTIFACTS / "streamlit-invoicing.log") as url:
        got = in_thread(drive, url, downloads)

    assert got["all"] == expected_all.read_bytes()
    text = got["all"].decode("utf-8")
    assert text.splitlines()[0] == (
        "store_id,store_name,period_start,period_end,platform,account_id,account_name,account_currency,spend,"
        "fx_rate,billing_currency,billing_amount,day_basis,status"
    )
    assert "s1,Mixed Shop,2025-12-01,2025-12-31,TOTAL,,,,,,USD,31665.86,,ok" in text.splitlines()
    exported = tmp_path / "inv1.csv"
    assert in_thread(run_cli, "invoice", "export", "--number", "INV-000001", "--out", exported).returncode == 0
    assert got["invoice"] == exported.read_bytes()
    [entry] = in_thread(run_cli, "invoice", "list", "--json").json()
    assert (entry["store_id"], entry["total"], entry["finalized_by"]) == ("s1", "31665.86", "Dana Finance")
