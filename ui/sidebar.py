"""The sidebar pickers shared by the pages: store (searchable by name or id) and period.

Widget state in Streamlit belongs to one page (the widget id includes the page), so each picker
mirrors its value into a plain session-state key (updated by the widget's on_change callback,
which runs before the script) and every page sets the widget's value from that mirror before
drawing it: the chosen store and period survive page switches."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import streamlit as st

from fetchers import clock
from service.dashboard import DEFAULT_PRESET, PRESETS, period_for
from storage.db import SpendStore


@dataclass(frozen=True)
class Selection:
    store_id: str | None
    store: dict | None
    start: dt.date
    end: dt.date
    preset: str


def _restore(key: str, default) -> None:
    """Before drawing the widget: its value is the mirrored one (or the default)."""
    mirror = f"_keep_{key}"
    st.session_state[key] = st.session_state.get(mirror, default)
    st.session_state[mirror] = st.session_state[key]


def _save(key: str) -> None:
    """on_change: keep the user's new value for this and every other page."""
    st.session_state[f"_keep_{key}"] = st.session_state[key]


def today() -> dt.date:
    return clock.today()


def store_picker(store: SpendStore) -> dict | None:
    stores = store.stores()
    if not stores:
        st.sidebar.warning("No stores yet: add one on the Accounts page.")
        return None
    by_id = {s["store_id"]: s for s in stores}
    _restore("store_id", stores[0]["store_id"])
    if st.session_state["store_id"] not in by_id:
        st.session_state["store_id"] = st.session_state["_keep_store_id"] = stores[0]["store_id"]
    st.sidebar.selectbox("Store", list(by_id), key="store_id", on_change=_save, args=("store_id",),
                         format_func=lambda sid: f"{by_id[sid]['name']} ({sid})" if sid in by_id else sid,
                         help="Type part of the store's name or id to search.")
    return by_id[st.session_state["store_id"]]


def period_picker(label: str = "Period") -> tuple[dt.date, dt.date, str] | None:
    _restore("period", DEFAULT_PRESET)
    st.sidebar.selectbox(label, PRESETS, key="period", on_change=_save, args=("period",),
                         help="Billing periods are calendar months; 'Last N days' ends yesterday.")
    preset = st.session_state["period"]
    t = today()
    if preset == "Custom":
        last_start, last_end = period_for(DEFAULT_PRESET, t)
        _restore("custom_range", (last_start, last_end))
        st.sidebar.date_input("From - to", key="custom_range", format="YYYY-MM-DD", on_change=_save,
                              args=("custom_range",))
        rng = st.session_state["custom_range"]
        if not isinstance(rng, (tuple, list)) or len(rng) != 2:
            st.sidebar.info("Pick an end date.")
            return None
        start, end = rng
    else:
        start, end = period_for(preset, t)
    st.sidebar.caption(f"{start} to {end}")
    return start, end, preset


def sidebar_pickers(store: SpendStore, with_store: bool = True) -> Selection | None:
    meta = store_picker(store) if with_store else None
    if with_store and meta is None:
        return None
    period = period_picker()
    if period is None:
        return None
    start, end, preset = period
    return Selection(meta["store_id"] if meta else None, meta, start, end, preset)
