"""Formatting for display. Amounts stay exact: a Decimal is quantized to its currency's minor
units and printed with thousands separators; nothing passes through float."""
from __future__ import annotations

from decimal import Decimal

from service import fx

BADGE_COLORS = {"ok": "green", "stale": "orange", "partial": "orange", "fx_missing": "orange",
                "missing": "red", "failed": "red", "not_configured": "gray"}


def money(amount: Decimal, ccy: str) -> str:
    """``EUR 12,345.67`` / ``JPY 1,234,567``: exact, in the currency's minor units."""
    q = fx.quantize(amount, ccy)
    return f"{ccy} {q:,}"


def escape_md(text: str) -> str:
    """Make arbitrary text (an API error, an account name) inert in st.markdown / st.caption."""
    out = []
    for ch in str(text):
        if ch in "\\`*_{}[]()<>#+-.!|:$~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out).replace("\n", " ")


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
