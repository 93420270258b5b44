"""Dashboard pieces for budgets, pacing and alerts (service/alerts.py, service/budgets.py):

- :func:`store_block` on the store page: the month's pacing (month to date, budget, projection,
  pace) and the store's open alerts;
- :func:`alerts_page` (pages/7_Alerts.py): every store's open alerts, filtered by store, platform
  and kind, each linking to the store view of its day (``?store=ID&start=...&end=...``);
- :func:`budget_editor` on the Accounts page: the store's budgets, saved through the import's
  validation;
- :func:`with_pace` adds a pace column to the portfolio page's stores table.

Every figure comes from the service layer (the same function as ``cli.py alerts``), as of
yesterday by ``fetchers/clock.py``."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from service import alerts as svc
from service import budgets as bsvc
from service.facade import PLATFORM_IDS, SPECS, SpendStore, clock

from .format import escape_md, money
from .state import page_state

COLUMNS = ["store", "platform", "account", "kind", "day", "open", "detail"]


def as_of() -> dt.date:
    return clock.yesterday()


def _rows(alerts, names: dict[str, str]) -> list[dict]:
    return [
        {
            "store": f"{names.get(a.store_id, a.store_id)} ({a.store_id})",
            "platform": SPECS[a.platform].name if a.platform in SPECS else "",
            "account": a.account_id or "",
            "kind": a.kind,
            "day": a.day.isoformat(),
            "detail": a.detail,
            "open": "./" + a.link(),
        }
        for a in alerts
    ]


def alerts_table(alerts, names: dict[str, str], key: str, show_store: bool = True) -> None:
    config = {
        "open": st.column_config.LinkColumn("open", display_text="store view"),
        "detail": st.column_config.TextColumn("detail", width="large"),
    }
    if not show_store:
        config["store"] = None  # hidden (the store page is that store's)
    st.dataframe(pd.DataFrame(_rows(alerts, names), columns=COLUMNS), hide_index=True, key=key, column_config=config)


def _pace_text(pc: svc.Pacing) -> str:
    if pc.pace is None:
        return "no budget" if pc.budget is None else "no projection yet"
    pct = f" {pc.percent:+}%" if pc.percent is not None else ""
    return f"{pc.pace}{pct}"


def pacing_block(pacings: list[svc.Pacing]) -> None:
    if not pacings:
        return
    main = pacings[0]
    ccy = main.currency
    st.subheader(f"Pacing, {main.month:%Y-%m} (as of {main.as_of})")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        f"Month to date ({ccy})",
        money(main.month_to_date, ccy),
        help=f"{main.month} to {main.as_of}: {main.days_elapsed} of {main.days_in_month} days.",
    )
    c2.metric(
        f"Budget ({ccy})",
        money(main.budget, ccy) if main.budget is not None else "none",
        help="Set budgets on the Accounts page or with `python cli.py budgets import`.",
    )
    c3.metric(
        f"Projected month end ({ccy})",
        money(main.projected, ccy) if main.projected is not None else "—",
        help="Month to date plus, for each remaining day, the average spend of that weekday so far.",
    )
    c4.metric("Pace", _pace_text(main), help="over / under: the projection is more than 10% off the budget.")
    if main.note:
        st.warning(f"The projection is incomplete: {escape_md(main.note)}.")
    if len(pacings) > 1:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "platform": pc.label,
                        f"budget ({ccy})": money(pc.budget, ccy),
                        f"month to date ({ccy})": money(pc.month_to_date, ccy),
                        f"projected ({ccy})": (money(pc.projected, ccy) if pc.projected is not None else "—"),
                        "pace": _pace_text(pc),
                        "incomplete": pc.note or "",
                    }
                    for pc in pacings[1:]
                ]
            ),
            hide_index=True,
            key="pacing_table",
        )


def store_block(store: SpendStore, store_id: str, name: str) -> None:
    """The store page's pacing block and open alerts (as of yesterday)."""
    day = as_of()
    pacing_block(svc.store_pacing(store, store_id, day))
    alerts = svc.collect(store, day, [store_id])
    st.subheader(f"Open alerts ({len(alerts)})")
    if alerts:
        alerts_table(alerts, {store_id: name}, "store_alerts", show_store=False)
    else:
        st.caption(f"No alerts as of {day}.")


def alerts_page(store: SpendStore) -> None:
    st.title("Alerts")
    stores = {s["store_id"]: s["name"] for s in store.stores()}
    day = st.date_input(
        "As of",
        value=as_of(),
        key="alerts_as_of",
        format="YYYY-MM-DD",
        help="Alerts as of the end of this day (default: yesterday), as `python cli.py alerts`.",
    )
    if not isinstance(day, dt.date):
        day = as_of()
    alerts = svc.collect(store, day)
    f1, f2, f3 = st.columns(3)
    pick_stores = f1.multiselect(
        "Store", list(stores), key="alerts_store", format_func=lambda s: f"{stores.get(s, s)} ({s})"
    )
    pick_platforms = f2.multiselect(
        "Platform", list(PLATFORM_IDS), key="alerts_platform", format_func=lambda p: SPECS[p].name
    )
    pick_kinds = f3.multiselect("Kind", list(svc.KINDS), key="alerts_kind")
    shown = [
        a
        for a in alerts
        if (not pick_stores or a.store_id in pick_stores)
        and (not pick_platforms or a.platform in pick_platforms)
        and (not pick_kinds or a.kind in pick_kinds)
    ]
    counts = {k: sum(1 for a in alerts if a.kind == k) for k in svc.KINDS}
    st.caption(" · ".join(f"{k}: {n}" for k, n in counts.items()))
    if shown:
        alerts_table(shown, stores, "alerts_table")
    else:
        st.success(f"No open alerts as of {day}" + (" for these filters." if alerts else "."))
    # LAST element on purpose: browser tests wait for it
    page_state(f"alerts | as of {day} | {len(shown)} of {len(alerts)} shown")  # for tests; hidden


def budget_editor(store: SpendStore, store_id: str, currency: str) -> None:
    """The store's monthly budgets; saved through the import's validation (all or nothing)."""
    st.subheader("Budgets")
    st.caption(
        f"Monthly spend budgets in {currency} (the store's billing currency): month YYYY-MM, platform empty "
        "for the whole store. The same rules as `python cli.py budgets import`; a table with any bad row "
        "saves nothing. Remove a row to delete that budget."
    )
    rows = bsvc.editor_rows(store, store_id)
    df = pd.DataFrame(rows, columns=["month", "platform", "amount"]).astype(str)
    version = st.session_state.get(f"_budget_version_{store_id}", 0)  # a new editor after each save
    edited = st.data_editor(
        df,
        num_rows="dynamic",
        hide_index=True,
        key=f"budget_editor_{store_id}_{version}",
        column_config={
            "month": st.column_config.TextColumn("month", help="YYYY-MM"),
            "platform": st.column_config.SelectboxColumn("platform", options=["", *PLATFORM_IDS]),
            "amount": st.column_config.TextColumn("amount", help=f"in {currency}, e.g. 1500.00"),
        },
    )
    if st.button("Save budgets", key=f"save_budgets_{store_id}"):
        try:
            res = bsvc.save_editor_rows(store, store_id, edited.to_dict("records"))
            st.session_state["accounts_flash"] = (
                "success",
                f"Saved budgets of {store_id}: {res.added} new, {res.changed} changed, {res.unchanged} unchanged.",
            )
            st.session_state[f"_budget_version_{store_id}"] = version + 1
            st.rerun()
        except bsvc.BudgetError as exc:
            st.error(str(exc))


def with_pace(store: SpendStore, rows: list[dict]) -> list[dict]:
    """The portfolio's stores rows with this month's whole-store pace (as of yesterday)."""
    pacing = svc.portfolio_pacing(store, as_of())
    by_label = {f"{s['name']} ({s['store_id']})": s["store_id"] for s in store.stores()}
    out = []
    for r in rows:
        pc = pacing.get(by_label.get(r.get("store"), ""))
        out.append({**r, "pace": _pace_text(pc) if pc else ""})
    return out
