"""Real browser (issue 16): Debian's chromium against `streamlit run app.py` with the date pinned
(ADSPEND_TODAY=2026-10-15) on a store written directly (USD only): a drop is drawn with a DOWN
arrow, the URL holds store, period and comparison (and a link opens the same view), nothing of the
tests' state is visible, and at 420 px the sidebar closes after a pick. Screenshots of every page
at 1440 and 420 px go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import csv
import io

import pytest
from browser_support import (  # noqa: F401
    ARTIFACTS,
    browser,
    main_area,
    metric_value,
    no_exception,
    pick_sidebar_option,
    run_streamlit,
    screenshot,
    wait_caption,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_dashboard_views import build_store

pytestmark = pytest.mark.browser
PAGES = [
    ("", "store s1 | "),
    ("Portfolio_and_coverage", "portfolio | "),
    ("Revenue_impact", "revenue | "),
    ("Accounts", "accounts | "),
    ("Refresh_history", "history"),
    ("Invoicing", "invoicing | "),
]


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    db = tmp_path_factory.mktemp("dash") / "dash.duckdb"
    store = build_store(db, demo=False)
    store.unlink_account("s1", "amazon", "333")
    store.save_store("s2", "Zed Empty Shop", "USD", False)
    with run_streamlit(db, ARTIFACTS / "streamlit-dashboard.log", {"ADSPEND_TODAY": "2026-10-15"}) as url:
        yield url


@pytest.fixture
def wide(browser):
    """A page at 1440 px, the account managers' screen."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 1600}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


def test_drop_down_arrow_url_state_and_no_test_text(server, wide):
    page = wide
    page.add_init_script("delete window.showSaveFilePicker;")  # the grid's CSV: an ordinary download
    page.goto(server)
    wait_caption(
        page, "store s1 | 2026-09-01..2026-09-30 | total USD 4503.15 | complete true | compare previous_period shown"
    )
    no_exception(page)
    screenshot(page, "i16_1440_store")
    delta = (
        page.locator('[data-testid="stMetric"]')
        .filter(has_text="Total spend (USD)")
        .locator('[data-testid="stMetricDelta"]')
    )
    assert delta.inner_text().strip() == "USD -148.40"
    assert delta.locator('[data-testid="stMetricDeltaIcon-Down"]').count() == 1
    assert delta.locator('[data-testid="stMetricDeltaIcon-Up"]').count() == 0
    assert metric_value(page, "Total spend (USD)") == "USD 4,503.15"
    # the state the tests read is in the page but never visible
    state = page.locator(".adspend-state").last
    assert not state.is_visible()
    assert "complete true" not in main_area(page).inner_text()
    assert page.url.endswith("/?store=s1&start=2026-09-01&end=2026-09-30&compare=previous_period")
    # the breakdown grid's own CSV holds numbers, not text: it sorts and sums as numbers
    grid = page.locator('[data-testid="stDataFrame"]').filter(has_text="platform / account").first
    with page.expect_download() as dl:
        # the toolbar shows while the pointer is over the grid; while the grid is still settling its
        # scroller can take the click, so hover and click again (as a user would) until it lands
        button = grid.get_by_role("button", name="Download as CSV")
        for attempt in range(4):
            grid.hover()
            try:
                button.click(timeout=7_000)
                break
            except PlaywrightTimeout:
                if attempt == 3:
                    raise
    text = open(dl.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["platform / account"].strip(), r["spend"], r["previous"], r["Δ"], r["Δ %"]) for r in rows] == [
        ("Meta", "3003", "2791.55", "211.45", "7.6"),
        ("↳ 111 · Meta main", "3003", "2791.55", "211.45", "7.6"),
        ("Google Ads", "1500.15", "1860", "-359.85", "-19.3"),
        ("↳ 222 · google acct", "1500.15", "1860", "-359.85", "-19.3"),
    ]
    # a change goes into the URL; the URL opens the same view in a new tab
    pick_sidebar_option(page, "Compare with", "Same period last year")
    wait_caption(page, "compare last_year none")
    page.wait_for_function("() => location.search.includes('compare=last_year')")
    assert page.get_by_text(
        "No comparison: 2025-09-01 to 2025-09-30 lacks Meta (not configured), Google Ads (not configured)."
    ).is_visible()
    shared = page.url
    other = page.context.new_page()
    other.goto(shared.replace("start=2026-09-01", "start=2026-09-10").replace("end=2026-09-30", "end=2026-09-16"))
    wait_caption(other, "store s1 | 2026-09-10..2026-09-16 | total USD 1050.74 | complete true | compare last_year")
    other.close()


@pytest.mark.parametrize("width", [420])  # 1440 px: test_browser.py takes every page at 1400 px
def test_every_page_renders_screenshots(server, browser, width):
    ctx = browser.new_context(viewport={"width": width, "height": 2200 if width > 500 else 2600})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    try:
        for n, (path, state) in enumerate(PAGES):
            pg.goto(f"{server}/{path}?store=s1&start=2026-09-01&end=2026-09-30")
            wait_caption(pg, state)
            no_exception(pg)
            screenshot(pg, f"i16_{width}_{n}_{path or 'store'}")
    finally:
        ctx.close()


def test_narrow_screen_sidebar_closes_after_a_pick(server, browser):
    ctx = browser.new_context(viewport={"width": 420, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    try:
        pg.goto(f"{server}/?store=s1")
        wait_caption(pg, "store s1 | ")
        sidebar = pg.locator('[data-testid="stSidebar"]')
        assert sidebar.bounding_box()["x"] < 0  # closed on a narrow screen
        pg.locator('[data-testid="stExpandSidebarButton"]').click()
        pg.wait_for_function("() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().x >= 0")
        pick_sidebar_option(pg, "Period", "Last 7 days")
        wait_caption(pg, "store s1 | 2026-10-08..2026-10-14 | ")
        pg.wait_for_function(
            "() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right <= 0"
        )
        assert pg.locator('[data-testid="stMetric"]').filter(has_text="Total spend (USD)").is_visible()
        screenshot(pg, "i16_420_after_pick")
    finally:
        ctx.close()
