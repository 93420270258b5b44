"""Freshness on the pages (service/freshness.py computes; this only draws): the store page's
"data as of" per platform, retention notes, the sidebar's note on periods past what a platform
serves, and the first start of the demo (its stores fetched once, with the progress shown)."""

from __future__ import annotations

import threading

import streamlit as st

from service import freshness
from service.facade import SpendStore, clock

_first_fetch_lock = threading.Lock()
_first_fetch_started: set[str] = set()  # databases whose first demo fetch this process started


def data_as_of(store: SpendStore, store_id: str) -> None:
    """One line per linked platform, the same values as ``cli.py status --json``."""
    lines = freshness.data_as_of(store, store_id)
    if not lines:
        return
    with st.expander("Data as of, per platform", expanded=False, icon=":material/schedule:"):
        for _pid, name, text in lines:
            st.caption(f"{name}: {text}")


def retention_notes(store: SpendStore, store_id: str, start, end) -> None:
    """A warning per platform whose missing days of the period it no longer serves."""
    for note in freshness.retention_notes(store, store_id, start, end):
        st.warning(note.message, icon=":material/history_toggle_off:")


def period_note(store: SpendStore, store_id: str | None, start, end) -> None:
    """Under the period picker: the period reaches past a linked platform's retention."""
    platforms = {a["platform"] for a in store.accounts([store_id])} if store_id else set(freshness.PLATFORM_IDS)
    note = freshness.period_note(start, end, platforms)
    if note:
        st.sidebar.caption(note)


def first_start(store: SpendStore) -> None:
    """On the first start of the dashboard, fetch the demo stores for the default period (progress
    shown), so the first screen has numbers; never again once they were fetched (or tried)."""
    if st.session_state.get("_demo_first_fetch_checked"):
        return
    st.session_state["_demo_first_fetch_checked"] = True
    ids = freshness.demo_never_fetched(store)
    if not ids:
        return
    key = str(store.path.resolve())
    with _first_fetch_lock:
        if key in _first_fetch_started:  # another browser tab is already doing it
            return
        _first_fetch_started.add(key)
    from service.dashboard import DEFAULT_PRESET, period_for
    from service.refresh import refresh

    from . import fx_rates
    from .progress import run_with_progress

    start, end = period_for(DEFAULT_PRESET, clock.today())
    fx_warnings: list[str] = []
    out, error, status = run_with_progress(
        f"First start: fetching the {len(ids)} demo stores for {start} to {end} from the built-in sandbox...",
        fx_rates.with_rate_update(
            store,
            ids,
            lambda progress: refresh(store, ids, start, end, progress=progress, trigger="dashboard"),
            fx_warnings,
        ),
    )
    fx_rates.show_warnings(fx_warnings)
    if error is not None:
        status.update(label=f"The first fetch of the demo stores failed: {error}", state="error", expanded=True)
    else:
        status.update(
            label=f"Demo stores fetched for {start} to {end}: {out.status} in {out.seconds:.1f} s, "
            f"{out.requests} requests",
            state="complete" if out.status == "ok" else "error",
            expanded=False,
        )
