"""A page's state for tests, invisible to users.

Each page ends with ``page_state("store demo-fjord | 2026-10-01..2026-10-31 | ...")``: a hidden
element (``<div class="adspend-state" hidden>``) that browser tests wait for (it is the page's LAST
element, so once it shows the new state everything above it has been redrawn; recipe §7b) and
AppTest reads (``browser_support.app_state``). Nothing of it is shown on screen."""

from __future__ import annotations

import html

import streamlit as st


def page_state(text: str) -> None:
    st.html(f'<div class="adspend-state" hidden style="display:none">{html.escape(text)}</div>')
