"""Formatting for display. Amounts stay exact: a Decimal is quantized to its currency's minor
units and printed with thousands separators; nothing passes through float."""

from __future__ import annotations

import re
from decimal import Decimal

from service import fx

BADGE_COLORS = {
    "ok": "green",
    "stale": "orange",
    "partial": "orange",
    "fx_missing": "orange",
    "missing": "red",
    "failed": "red",
    "not_configured": "gray",
}


def money(amount: Decimal, ccy: str) -> str:
    """``EUR 12,345.67`` / ``JPY 1,234,567``: exact, in the currency's minor units."""
    q = fx.quantize(amount, ccy)
    return f"{ccy} {q:,}"


_ALWAYS = set("\\`*~$<[]")
_WWW = re.compile(r"(?i)(?<![A-Za-z0-9])www(?=\.)")
_LINE_START = re.compile(r"^(\s*)([-+#>=]|\d+(?=[.)]))")


def escape_md(text) -> str:
    """Arbitrary text (a store, account or display name, an id, an API error) made inert wherever
    Streamlit renders Markdown (st.title/header/subheader/caption/markdown/info/warning/error/
    success, widget and status labels): it then shows exactly as typed, never as an image, a
    link, emphasis, a heading, a colored or icon directive, LaTeX or HTML, and on one line.

    Only what can start Markdown is escaped (backslash escapes, which render as the bare
    character): always `` \\ ` * ~ $ < [ ] ``; ``_`` unless it sits inside a word;
    ``:`` when followed by a non-space (``:red[``, ``:smile:``, ``http://``); ``&`` starting an
    entity; ``www.`` (autolink); and a list/heading/quote marker at the start. Ordinary sentences
    ("Saved store shop-42 (Shop 42, GBP).") come out unchanged."""
    t = str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    out = []
    n = len(t)
    for i, ch in enumerate(t):
        prev = t[i - 1] if i else ""
        nxt = t[i + 1] if i + 1 < n else ""
        if ch in _ALWAYS:
            out.append("\\" + ch)
        elif ch == "_" and not (prev.isalnum() and nxt.isalnum()):
            out.append("\\_")
        elif ch == ":" and nxt and not nxt.isspace():
            out.append("\\:")
        elif ch == "&" and re.match(r"&#?[A-Za-z0-9]+;", t[i:]):
            out.append("\\&")
        else:
            out.append(ch)
    s = "".join(out)
    s = _WWW.sub(lambda m: m.group(0) + "\\", s)
    m = _LINE_START.match(s)
    if m:
        marker = m.group(2)
        if marker[0].isdigit():  # "1." / "1)" would start an ordered list
            end = m.end(2)
            s = s[:end] + "\\" + s[end:]
        else:
            s = s[: m.start(2)] + "\\" + s[m.start(2) :]
    return s


def badge_markdown(text: str, state: str) -> str:
    color = BADGE_COLORS.get(state, "gray")
    safe = str(text).replace("[", "(").replace("]", ")")
    return f":{color}-badge[{safe}]"


def number_format(ccy: str, signed: bool = False) -> str:
    """The printf format Streamlit applies to a numeric cell or metric delta in ``ccy``:
    ``EUR %,.2f`` shows ``EUR 12,345.67`` (``%+,.2f`` with a sign), the same text as :func:`money`."""
    return f"{ccy} %{'+' if signed else ''},.{fx.minor_units(ccy)}f"


def d3_format(ccy: str) -> str:
    """The plotly (d3) format of an amount in ``ccy``, for hover templates: ``,.2f``."""
    return f",.{fx.minor_units(ccy)}f"


def pct(value: Decimal | None) -> str:
    """``+7.6%`` / ``-19.3%``; ``""`` when there is no percentage."""
    return "" if value is None else f"{value:+}%"


def display_number(amount: Decimal | None) -> float | None:
    """An exact amount as a float for DISPLAY ONLY (a numeric, sortable table cell or a chart);
    it is never computed with or written anywhere."""
    return None if amount is None else float(amount)
