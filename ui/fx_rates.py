"""Exchange rates on the pages: the daily rate update around a dashboard refresh, and the
Invoicing page's coverage line with its "Update exchange rates" button (service/fxrates.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from service import fxrates
from service.facade import SpendStore

from .format import escape_md


def with_rate_update(
    store: SpendStore, store_ids: Sequence[str] | None, job: Callable[[Callable], Any], warnings: list[str]
) -> Callable[[Callable], Any]:
    """``job`` preceded by the refresh's daily rate update (runs in the refresh's worker thread).
    A failed update goes into ``warnings`` (shown by :func:`show_warnings`), never fails the job."""

    def run(progress: Callable) -> Any:
        try:
            warnings.extend(fxrates.auto_update_for_stores(store, store_ids))
        except Exception as exc:  # noqa: BLE001 - rates never fail a refresh
            warnings.append(f"exchange rates not updated: {exc}")
        return job(progress)

    return run


def show_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        st.warning(escape_md(w[0].upper() + w[1:]), icon=":material/currency_exchange:")


def coverage(store: SpendStore) -> None:
    """ "ECB rates to 2026-11-30, updated ..." (and, when there are demo stores, that they use the
    demo rates), with the "Update exchange rates" button (``fx update`` from ADSPEND_FX_URL)."""
    text, button = st.columns([4, 1], vertical_alignment="center")
    line = fxrates.coverage_sentence(store, demo=False) + "."
    if any(s["is_demo"] for s in store.stores()):
        demo = fxrates.coverage_sentence(store, demo=True)
        line += (
            f" Demo stores use the sandbox's made-up demo rates instead ({demo[0].lower()}{demo[1:]}): not ECB figures."
        )
    text.caption(
        escape_md(line),
        help="Each day is converted with that day's ECB euro reference rate; real "
        "stores use only rates published by the ECB (the history shipped with this build, "
        "`python cli.py fx update` or `fx import`).",
    )
    if button.button(
        "Update exchange rates",
        key="fx_update",
        icon=":material/currency_exchange:",
        help=f"Download the ECB's rate history from {fxrates.fx_url()} and store the new rates.",
    ):
        try:
            result = fxrates.update(store, trigger="update")
        except fxrates.RatesError as exc:
            st.session_state["fx_msg"] = ("error", str(exc))
        else:
            st.session_state["fx_msg"] = (
                "success",
                f"{result.rates_added} new rate(s); ECB rates now cover {result.first} to {result.last}.",
            )
        st.rerun()
    msg = st.session_state.pop("fx_msg", None)
    if msg:
        getattr(st, msg[0])(escape_md(msg[1]))
