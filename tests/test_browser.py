"""Real browser: Debian's chromium driven by Playwright against `streamlit run app.py` on a free
port with a FRESH database. Demo stores appear already fetched (first start), the first widget
change on the fresh server takes effect, Refresh shows progress, and the totals and the CSV
download equal `cli.py spend --json`. Screenshots of every page go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest
from browser_support import (  # noqa: F401
    ARTIFACTS,
    FAST_ENV,
    ROOT,
    browser,
    fresh_server,
    go_to,
    metric_value,
    no_exception,
    page,
    pick_sidebar_option,
    screenshot,
    wait_caption,
)

from service import dashboard as dash

pytestmark = pytest.mark.browser


def cli_json(db, *args) -> dict:
    out = subprocess.run(
        [sys.executable, "cli.py", "--db", str(db), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, **FAST_ENV},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sandbox_config(url: str, cfg: dict) -> None:
    req = urllib.request.Request(
        f"{url}/_sandbox/config",
        data=json.dumps(cfg).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_fresh_server_demo_refresh_totals_csv_and_pages(fresh_server, page, tmp_path):
    url, db = fresh_server
    today = dt.datetime.now(dt.UTC).date()
    start, end = dash.period_for("Last month", today)

    # the grid's own "Download as CSV" uses the File System Access API when present; without it,
    # it falls back to an ordinary download that Playwright can catch
    page.add_init_script("delete window.showSaveFilePicker;")
    # the dashboard works offline: nothing it loads (scripts, fonts, icons) comes from off the machine
    off_machine: list[str] = []
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("data:", "blob:"))
            or urllib.parse.urlsplit(r.url).hostname in ("127.0.0.1", "localhost")
            else off_machine.append(r.url)
        ),
    )
    page.goto(url)
    wait_caption(page, f"store demo-acme | {start}..{end} | ")
    banner = page.locator('[data-testid="stAlertContentInfo"]').filter(has_text="Demo data").first.inner_text()
    m = re.search(r"built-in sandbox at (http://127\.0\.0\.1:\d+)", banner)
    assert m, banner
    sandbox_url = m.group(1)
    no_exception(page)
    # the demo opens on data: its stores were fetched for the default period on this first start
    page.get_by_text(re.compile(rf"^Demo stores fetched for {start} to {end}: ")).first.wait_for()
    assert metric_value(page, "Total spend (USD)") != "no data"
    screenshot(page, "01_store_spend_fresh")

    # the FIRST widget change on a freshly started server must not be lost (recipe §2 trap)
    pick_sidebar_option(page, "Store", "Blue Fjord Apparel (demo) (demo-fjord)")
    wait_caption(page, f"store demo-fjord | {start}..{end} | total EUR ", timeout=15_000)
    assert metric_value(page, "Total spend (EUR)").startswith("EUR ")

    # slow the sandbox a little so the progress is visible while the refresh runs
    sandbox_config(
        sandbox_url, {"latency_ms": {p: [250, 400] for p in ("meta", "google", "tiktok", "amazon", "pinterest")}}
    )
    page.get_by_role("button", name="Refresh").click()
    page.get_by_text("Refreshing Blue Fjord Apparel (demo)").wait_for()
    page.get_by_text(re.compile(r"\d of 6 accounts finished")).first.wait_for()
    screenshot(page, "02_refresh_in_progress")
    wait_caption(page, f"store demo-fjord | {start}..{end} | total EUR", timeout=60_000)
    page.get_by_text(re.compile(r"^Refresh ok in [\d.]+ s, \d+ requests$")).first.wait_for()
    no_exception(page)
    screenshot(page, "03_store_spend_after_refresh")

    # the totals on screen equal `cli.py spend --json` for the same store and period
    doc = cli_json(db, "spend", "--store", "demo-fjord", "--start", str(start), "--end", str(end), "--json")
    assert doc["complete"] is True
    shown = metric_value(page, "Total spend (EUR)")
    assert shown == "EUR " + f"{__import__('decimal').Decimal(doc['total_spend']):,}"
    wait_caption(page, f"total EUR {doc['total_spend']} | complete true")
    chips = (
        page.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"]')
        .filter(has_text="Meta: ok")
        .first.inner_text()
    )
    for pid in doc["platforms"]:
        assert f"{dash.SPECS[pid].name}: ok" in chips

    # the CSV download equals what the page shows (and the CLI's numbers)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.name == f"spend_demo-fjord_{start}_{end}.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    total = rows[-1]
    assert total["platform"] == "TOTAL" and total["billing_amount"] == doc["total_spend"]
    assert shown == "EUR " + f"{__import__('decimal').Decimal(total['billing_amount']):,}"
    by_account = {(r["platform"], r["account_id"]): r for r in rows[:-1]}
    expected = {(pid, a["account_id"]): a for pid, pl in doc["platforms"].items() for a in pl["accounts"]}
    assert set(by_account) == set(expected)
    for key, a in expected.items():
        assert by_account[key]["spend"] == a["spend"]
        assert by_account[key]["billing_amount"] == a["billing_amount"]
        assert by_account[key]["fx_rate"] == a["fx_rate"]
    # (the account grid's own "Download as CSV" holding numbers is tested in test_browser_dashboard.py)
    page.get_by_text("Account details (currencies, exchange rates, days covered)").click()
    screenshot(page, "04_store_spend_table")

    # every page renders in the browser; screenshots for the record
    for n, (label, caption) in enumerate(
        [
            ("Portfolio & coverage", f"portfolio | {start}..{end} | USD"),
            ("Revenue impact", f"revenue | {start}..{end} | clients 1000"),
            ("Accounts", "accounts | 3 stores | 21 links"),
            ("Refresh history", "history | run "),
            ("Store spend", f"store demo-fjord | {start}..{end} | total EUR {doc['total_spend']}"),
        ],
        start=5,
    ):
        go_to(page, label)
        wait_caption(page, caption)
        no_exception(page)
        screenshot(page, f"{n:02d}_{label.lower().replace(' & ', '_').replace(' ', '_')}")
    assert metric_value(page, "Total spend (EUR)") == shown
    assert ARTIFACTS.is_dir()
    assert off_machine == []
