"""The sidebar pickers shared by the pages: store (searchable by name or id) and period.

Widget state in Streamlit belongs to one page (the widget id includes the page), so each picker
mirrors its value into a plain session-state key (updated by the widget's on_change callback,
which runs before the script) and every page sets the widget's value from that mirror before
drawing it: the chosen store and period survive page switches.

Shareable state (issue 16): the store, the period and the comparison are also kept in the URL
(``?store=ID&start=YYYY-MM-DD&end=YYYY-MM-DD&compare=previous_period|previous_month|last_year``):
read once when a session starts (a shared link opens the same view) and written on every run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st

from service.dashboard import COMPARISONS, DEFAULT_COMPARISON, DEFAULT_PRESET, PRESETS, period_for
from service.facade import SpendStore, clock


@dataclass(frozen=True)
class Selection:
    store_id: str | None
    store: dict | None
    start: dt.date
    end: dt.date
    preset: str
    compare: str = DEFAULT_COMPARISON


def _restore(key: str, default) -> None:
    """Before drawing the widget: its value is the mirrored one (or the default)."""
    mirror = f"_keep_{key}"
    st.session_state[key] = st.session_state.get(mirror, default)
    st.session_state[mirror] = st.session_state[key]


def _save(key: str) -> None:
    """on_change: keep the user's new value for this and every other page; on a narrow screen the
    sidebar closes after the pick (ui.narrow)."""
    st.session_state[f"_keep_{key}"] = st.session_state[key]
    st.session_state["_picked"] = True


def today() -> dt.date:
    return clock.today()


def _url_day(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value and len(str(value)) == 10 else None
    except ValueError:
        return None


def read_url(today_: dt.date | None = None) -> None:
    """Once per session: take store, period and comparison from the URL into the mirrors (invalid
    values are ignored; an unknown store falls back to the first one)."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    qp = st.query_params
    if qp.get("store"):
        st.session_state["_keep_store_id"] = qp.get("store")
    start, end = _url_day(qp.get("start")), _url_day(qp.get("end"))
    if start and end and start <= end:
        t = today_ or today()
        preset = next((p for p in PRESETS if p != "Custom" and period_for(p, t) == (start, end)), "Custom")
        st.session_state["_keep_period"] = preset
        if preset == "Custom":
            st.session_state["_keep_custom_range"] = (start, end)
    if qp.get("compare") in COMPARISONS:
        st.session_state["_keep_compare"] = qp.get("compare")


def write_url(sel: Selection) -> None:
    """The view's state into the URL (only when it changed: no needless browser history entries)."""
    want = {
        "store": sel.store_id or st.session_state.get("_keep_store_id") or "",
        "start": sel.start.isoformat(),
        "end": sel.end.isoformat(),
        "compare": sel.compare,
    }
    want = {k: v for k, v in want.items() if v}
    if {k: st.query_params.get(k) for k in want} != want or set(st.query_params) - set(want):
        st.query_params.from_dict(want)


def store_picker(store: SpendStore) -> dict | None:
    stores = store.stores()
    if not stores:
        st.sidebar.warning("No stores yet: add one on the Accounts page.")
        return None
    by_id = {s["store_id"]: s for s in stores}
    _restore("store_id", stores[0]["store_id"])
    if st.session_state["store_id"] not in by_id:
        st.session_state["store_id"] = st.session_state["_keep_store_id"] = stores[0]["store_id"]
    st.sidebar.selectbox(
        "Store",
        list(by_id),
        key="store_id",
        on_change=_save,
        args=("store_id",),
        format_func=lambda sid: f"{by_id[sid]['name']} ({sid})" if sid in by_id else sid,
        help="Type part of the store's name or id to search.",
    )
    return by_id[st.session_state["store_id"]]


def period_picker(label: str = "Period") -> tuple[dt.date, dt.date, str] | None:
    _restore("period", DEFAULT_PRESET)
    st.sidebar.selectbox(
        label,
        PRESETS,
        key="period",
        on_change=_save,
        args=("period",),
        help="Billing periods are calendar months; 'Last N days' ends yesterday.",
    )
    preset = st.session_state["period"]
    t = today()
    if preset == "Custom":
        last_start, last_end = period_for(DEFAULT_PRESET, t)
        _restore("custom_range", (last_start, last_end))
        st.sidebar.date_input(
            "From - to", key="custom_range", format="YYYY-MM-DD", on_change=_save, args=("custom_range",)
        )
        rng = st.session_state["custom_range"]
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            st.sidebar.info("Pick an end date.")
            return None
        start, end = rng
    else:
        start, end = period_for(preset, t)
    st.sidebar.caption(f"{start} to {end}")
    return start, end, preset


def compare_picker() -> str:
    _restore("compare", DEFAULT_COMPARISON)
    if st.session_state["compare"] not in COMPARISONS:
        st.session_state["compare"] = st.session_state["_keep_compare"] = DEFAULT_COMPARISON
    st.sidebar.selectbox(
        "Compare with",
        list(COMPARISONS),
        key="compare",
        on_change=_save,
        args=("compare",),
        format_func=lambda c: COMPARISONS.get(c, c),
        help="Previous period: the calendar period before (the month before for a month), "
        "or the same number of days before a custom range.",
    )
    return st.session_state["compare"]


def sidebar_pickers(store: SpendStore, with_store: bool = True, with_compare: bool = False) -> Selection | None:
    read_url()
    meta = store_picker(store) if with_store else None
    if with_store and meta is None:
        return None
    period = period_picker()
    if period is None:
        return None
    start, end, preset = period
    from .freshness import period_note

    period_note(store, meta["store_id"] if meta else None, start, end)
    compare = compare_picker() if with_compare else st.session_state.get("_keep_compare", DEFAULT_COMPARISON)
    sel = Selection(meta["store_id"] if meta else None, meta, start, end, preset, compare)
    write_url(sel)
    if st.session_state.pop("_picked", False):
        close_sidebar_on_narrow_screens()
    return sel


#: Streamlit draws the sidebar OVER the content below this width; after a pick it stays open and
#: hides the page, so it is closed for the user (the same as tapping its close button).
NARROW_PX = 768
_CLOSE_JS = """<script>
(function () {
  if (window.innerWidth >= NARROW_PX) return;
  var tries = 0;
  (function close() {
    var bar = document.querySelector('[data-testid="stSidebar"]');
    var btn = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (bar && btn && bar.getBoundingClientRect().right > 0) { btn.click(); return; }
    if (++tries < 20) setTimeout(close, 100);
  })();
})();
</script>""".replace("NARROW_PX", str(NARROW_PX))


def close_sidebar_on_narrow_screens() -> None:
    """After a pick in the sidebar: on a narrow screen (< 768 px) close it so the page shows."""
    st.html(_CLOSE_JS, unsafe_allow_javascript=True)
