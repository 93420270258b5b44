"""User-supplied text is shown as text everywhere in the dashboard (issue 15, item 12): a store
or account name holding Markdown or HTML (an image that would make every viewer's browser fetch
a URL, a link, bold, a Streamlit color/icon directive) shows exactly as typed.

AppTest sees the Markdown source each element is given: every element that Streamlit renders as
Markdown must carry the user's text escaped (``ui.escape_md``), none unescaped. The browser test
renders the page in chromium and checks the text and that the image URL is never fetched."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import streamlit as st
from browser_support import ARTIFACTS, ROOT, browser, page, run_streamlit, wait_caption  # noqa: F401
from streamlit.testing.v1 import AppTest

from service import dashboard as dash
from storage.db import SpendStore
from ui.format import escape_md

APP = str(ROOT / "app.py")
EVIL = "Evil ![x](http://127.0.0.1:9/beacon.png) <img src=http://127.0.0.1:9/b.png> **bold** :red[red] _it_ $x$"
EVIL_DISPLAY = "[click](http://127.0.0.1:9/phish) `code` ~~gone~~"


def test_escape_md_leaves_sentences_alone_and_neutralises_markdown():
    assert escape_md("Saved store shop-42 (Shop 42, GBP).") == "Saved store shop-42 (Shop 42, GBP)."
    assert escape_md("snake_case_name: 12 s") == "snake_case_name: 12 s"
    assert escape_md(EVIL) == (
        "Evil !\\[x\\](http\\://127.0.0.1\\:9/beacon.png) \\<img src=http\\://127.0.0.1\\:9/b.png> "
        "\\*\\*bold\\*\\* \\:red\\[red\\] \\_it\\_ \\$x\\$"
    )
    assert escape_md("# title") == "\\# title" and escape_md("- item") == "\\- item"
    assert escape_md("1. first") == "1\\. first" and escape_md("> quote") == "\\> quote"
    assert escape_md("see www.evil.example") == "see www\\.evil.example"
    assert escape_md("a &amp; b & c") == "a \\&amp; b & c"
    assert escape_md("two\nlines") == "two lines"


# what the user's text would do if it reached Markdown unescaped (fixed markup such as the
# sidebar's "**Ad Spend Hub**" is not the user's)
_HAZARDS = ("![x]", "](http", "**bold", "<img", ":red[", "`code`", "~~gone", "$x$", "_it_", "[click]")


def _markdown_sources(at) -> list[str]:
    """The Markdown source of every element Streamlit renders as Markdown (bodies and labels)."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            for fd, value in proto.ListFields():
                if fd.name in ("body", "label") and isinstance(value, str):
                    out.append(value)
        for child in (
            getattr(node, "children", {}).values() if isinstance(getattr(node, "children", None), dict) else []
        ):
            walk(child)

    walk(at._tree)
    return out


@pytest.fixture
def hostile_db(tmp_path, monkeypatch):
    db = tmp_path / "hostile.duckdb"
    store = SpendStore(db)
    store.save_store("evil-1", EVIL, "USD")
    dash.link_account(store, "evil-1", "meta", "1000000001", EVIL_DISPLAY)
    monkeypatch.setenv("ADSPEND_DB", str(db))
    monkeypatch.setenv("ADSPEND_NO_DOTENV", "1")
    st.cache_resource.clear()
    return db


@pytest.mark.parametrize(
    "page_file",
    [
        None,
        "pages/4_Accounts.py",
        "pages/6_Invoicing.py",
        "pages/2_Portfolio_and_coverage.py",
        "pages/5_Refresh_history.py",
    ],
)
def test_hostile_names_are_shown_as_text_on_every_page(hostile_db, page_file):
    at = AppTest.from_file(APP, default_timeout=90).run()
    if page_file:
        at = at.switch_page(page_file).run()
    assert not at.exception, [e.value for e in at.exception]
    if page_file is None:
        assert [t.value for t in at.title] == [escape_md(EVIL)]
    sources = _markdown_sources(at)
    assert sources, "no Markdown element found"
    unescaped = [re.sub(r"\\.", "\u2400", s) for s in sources]  # an escaped character is inert
    leaks = [s for s, u in zip(sources, unescaped) if any(h in u for h in _HAZARDS)]
    assert leaks == []
    assert not at.get("imgs")
    # the names are on the page (escaped where Markdown renders them)
    text = " ".join(sources)
    if page_file in (None, "pages/6_Invoicing.py"):
        assert escape_md(EVIL) in text


class _Beacon:
    def __init__(self):
        self.hits = []
        beacon = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                beacon.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.browser
def test_browser_renders_a_hostile_store_name_literally_and_fetches_nothing(browser, page, tmp_path):  # noqa: F811
    beacon = _Beacon()
    try:
        name = (
            f"Evil ![x](http://127.0.0.1:{beacon.port}/beacon.png) <img src=http://127.0.0.1:{beacon.port}/b.png> "
            "**bold** :red[red]"
        )
        db = tmp_path / "browser.duckdb"
        SpendStore(db).save_store("evil-1", name, "USD")
        with run_streamlit(db, ARTIFACTS / "streamlit-hostile.log") as url:
            page.goto(url)
            wait_caption(page, "store evil-1 | ")
            h1 = page.locator('[data-testid="stMain"] h1').first
            assert h1.inner_text().strip() == name
            assert page.locator(f'img[src*="127.0.0.1:{beacon.port}"]').count() == 0
            assert page.locator('[data-testid="stMain"] strong').filter(has_text="bold").count() == 0
            page.wait_for_timeout(500)
        assert beacon.hits == []
    finally:
        beacon.close()
