"""Invoicing: pick a month, see every store's readiness and totals, refresh what is missing,
finalize, download per store or all at once, and see restatements since finalize.

The rules live in service/invoices.py (the CLI's `invoice` commands follow the same ones); this
page only draws what that module and service/invoicing_view.py return."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import streamlit as st

import ui
from service import invoices as inv
from service import invoicing_view as view
from ui import fees as fee_ui
from ui import fx_rates

CUSTOM = "Custom range"
store = ui.bootstrap("Invoicing")


def pick_period() -> tuple[dt.date, dt.date] | None:
    months = inv.recent_months(24)
    if "inv_month" not in st.session_state:
        st.session_state["inv_month"] = months[1]  # last month: the latest complete billing period
    choice = st.selectbox(
        "Billing period",
        months + [CUSTOM],
        key="inv_month",
        help="Billing periods are calendar months; pick a custom range for anything else.",
    )
    if choice != CUSTOM:
        return inv.month_period(choice)
    if "inv_range" not in st.session_state:
        st.session_state["inv_range"] = inv.previous_month()
    rng = st.date_input("From - to (inclusive)", key="inv_range", format="YYYY-MM-DD")
    if not isinstance(rng, (tuple, list)) or len(rng) != 2:
        st.info("Pick an end date.")
        return None
    return rng[0], rng[1]


def run_plan(plan: inv.RefreshPlan) -> None:
    """Run the refresh in a worker thread and show progress per platform x account."""
    fx_warnings: list[str] = []
    out, error, status = ui.run_with_progress(
        f"Refreshing {len(plan.store_ids)} store(s) for {plan.start} to {plan.end}...",
        fx_rates.with_rate_update(
            store, plan.store_ids, lambda progress: inv.run_refresh(store, plan, progress=progress), fx_warnings
        ),
    )
    if fx_warnings:
        st.session_state["fx_msg"] = ("warning", "; ".join(fx_warnings))
    with status:
        if error is not None:
            status.update(label=f"Refresh failed: {ui.escape_md(error)}", state="error")
            st.session_state["inv_msg"] = ("error", f"Refresh failed: {error}")
            return
        label = f"Refresh {out.status} in {out.seconds:.1f} s" + (f": {out.error}" if out.error else "")
        status.update(label=ui.escape_md(label), state="complete" if out.status == "ok" else "error")
        st.session_state["inv_msg"] = ("success" if out.status == "ok" else "warning", label)


def show_message() -> None:
    msg = st.session_state.pop("inv_msg", None)
    if msg:  # errors quote platform messages: shown as inert text
        getattr(st, msg[0])(ui.escape_md(msg[1]))


def store_detail(r: inv.Readiness, start: dt.date, end: dt.date) -> None:
    rep = r.report
    ccy = rep.billing_currency
    st.subheader(ui.escape_md(f"{rep.store_name} ({rep.store_id})"))
    c1, c2, c3 = st.columns(3)
    if r.invoice is not None:  # what was invoiced, not today's restated figures
        c1.metric(
            f"Total ({ccy})",
            ui.money(Decimal(r.invoice.total), ccy),
            help=f"As invoiced on {r.invoice.invoice}; restatements since are shown below.",
        )
    else:
        has_data = any(pl.status not in ("missing", "not_configured") for pl in rep.platforms.values())
        c1.metric(
            f"Total ({ccy})",
            ui.money(rep.total, ccy) if has_data else "no data",
            help="Sum of the printed lines, each rounded once to the billing currency.",
        )
        if not rep.complete:
            c1.caption("Incomplete: not every linked account has every day (see below).")
    c2.metric("State", r.state)
    c3.metric("Invoice", r.invoice.invoice if r.invoice else "-")
    if r.invoice is None:
        if r.issues:
            st.warning(
                "Not ready to invoice: every linked account must be ok for every day, with data fetched "
                "after the period ended. What is missing:"
            )
            st.dataframe(
                pd.DataFrame(view.issue_rows(r), columns=list(view.ISSUE_COLUMNS)),
                hide_index=True,
                key="inv_issues",
                column_order=("platform", "account", "problem", "refresh fixes it", "detail"),
                column_config={"detail": st.column_config.TextColumn("detail", width="large")},
            )
        elif r.invoices:
            st.warning(
                f"This period overlaps {', '.join(i.invoice for i in r.invoices)}: the same spend is never "
                "invoiced twice."
            )
        ui.money_table(
            view.line_rows(r),
            view.LINE_COLUMNS,
            key="inv_lines",
            money_columns=view.MONEY_COLUMNS,
            billing=ccy,
            wide=("note",),
            order=(
                "platform",
                "account",
                "billing",
                "status",
                "spend",
                "currency",
                "fx_rate",
                "days",
                "day_basis",
                "name",
                "note",
            ),
        )
        st.caption(f"Rounding: {inv.ROUNDING_RULE}.")
        fee_ui.fee_section(store, r, start, end)  # success fee: the preview of this period
        finalize_form(r, start, end)
        st.download_button(
            "Download draft CSV" if not rep.complete else "Download CSV",
            data=inv.store_csv(store, rep.store_id, start, end),
            file_name=f"invoice_{rep.store_id}_{start}_{end}.csv",
            mime="text/csv",
            on_click="ignore",
            key="inv_dl_store",
            icon=":material/download:",
        )
        return

    d = inv.diff(store, r.invoice.number)
    st.markdown(f"**As invoiced on {r.invoice.invoice}**, with today's restated figures beside it")
    totals = view.snapshot_totals(d)
    t1, t2, t3 = st.columns(3)
    t1.metric(f"Invoiced ({ccy})", ui.money(totals.invoiced, ccy))
    t2.metric(
        f"Restated now ({ccy})",
        "not known" if totals.restated is None else ui.money(totals.restated, ccy),
        help="The same lines from the data stored today."
        + ("" if totals.restated is not None else " Some line cannot be converted or has no data."),
    )
    t3.metric(
        f"Difference ({ccy})",
        ui.money(totals.difference, ccy),
        delta=totals.difference if d.changed else None,
        delta_color="off",
        format=ui.number_format(ccy),
    )
    ui.money_table(
        view.snapshot_rows(d), view.SNAPSHOT_COLUMNS, key="inv_snapshot", money_columns=view.MONEY_COLUMNS, billing=ccy
    )
    st.download_button(
        f"Download {r.invoice.invoice}",
        data=inv.invoice_csv(store, r.invoice.number),
        file_name=f"{r.invoice.invoice}_{rep.store_id}_{start}_{end}.csv",
        mime="text/csv",
        on_click="ignore",
        key="inv_dl_invoice",
        icon=":material/download:",
    )
    st.caption(
        f"Finalized {r.invoice.finalized_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC by "
        f"{ui.escape_md(r.invoice.finalized_by)}; the download is the same file every time."
    )
    st.subheader("Restatements since finalize")
    if not d.changed:
        st.success(f"No change since {r.invoice.invoice} was finalized.")
    else:
        st.warning(
            f"The platforms restated spend since {r.invoice.invoice}: total difference "
            f"{ui.money(d.total_difference, ccy)}"
            + ("" if d.current_complete and d.exact else " (current data incomplete)")
        )
    ui.money_table(view.diff_rows(d), view.DIFF_COLUMNS, key="inv_diff", money_columns=view.MONEY_COLUMNS, billing=ccy)
    if d.changed:
        try:
            adj = d.adjustment_csv()
        except inv.IncompleteAdjustment as exc:
            st.info(ui.escape_md(str(exc)))
        else:
            st.download_button(
                f"Download adjustment to {r.invoice.invoice}",
                data=adj,
                file_name=f"adjustment_{r.invoice.invoice}.csv",
                mime="text/csv",
                on_click="ignore",
                key="inv_dl_adjustment",
                icon=":material/download:",
            )
    fee_ui.fee_section(store, r, start, end)  # the fee statement frozen with the invoice


def finalize_form(r: inv.Readiness, start: dt.date, end: dt.date) -> None:
    """Finalizing cannot be undone: it asks for the name of the person (no default) and an explicit
    confirmation, and refuses without either."""
    rep = r.report
    if not r.finalizable:
        st.button(
            ui.escape_md(f"Finalize {rep.store_id} {start} to {end}"),
            key="inv_finalize",
            disabled=True,
            icon=":material/lock:",
            help="Not ready: see what is missing above.",
        )
        return
    with st.container(border=True):
        st.markdown(
            f"**Finalize {ui.escape_md(rep.store_id)} for {start} to {end}** as the next numbered invoice: the lines, "
            f"rates and total ({ui.money(rep.total, rep.billing_currency)}) are frozen and cannot be changed "
            "afterwards."
        )
        who = st.text_input(
            "Your name",
            value="",
            key="inv_by",
            placeholder="who is finalizing",
            help="Recorded on the invoice as 'finalized by'.",
        )
        sure = st.checkbox("I checked the lines above; finalize them.", key="inv_confirm")
        if st.button(
            ui.escape_md(f"Finalize {rep.store_id} {start} to {end}"),
            key="inv_finalize",
            type="primary",
            icon=":material/lock:",
        ):
            if not who.strip():
                st.error("Not finalized: enter your name first.")
                return
            if not sure:
                st.error("Not finalized: tick the confirmation first (finalizing cannot be undone).")
                return
            try:
                invoice = inv.finalize(store, rep.store_id, start, end, by=who.strip(), source="dashboard")
            except (inv.NotReady, inv.AlreadyFinalized, ValueError) as exc:
                st.session_state["inv_msg"] = ("error", str(exc))
            else:
                s = invoice.summary
                st.session_state["inv_msg"] = (
                    "success",
                    f"Finalized {s.invoice}: {ui.money(Decimal(s.total), s.billing_currency)}",
                )
            st.rerun()


if store is not None:
    with ui.guard("the invoicing page"):
        st.title("Invoicing")
        show_message()
        fx_rates.coverage(store)
        period = pick_period()
        if period is not None and period[0] > period[1]:
            st.error(f"The start {period[0]} is after the end {period[1]}.")
            period = None
        if period is not None:
            start, end = period
            items = inv.month_overview(store, start, end)
            n = view.counts(items)
            m1, m2, m3, m4 = st.columns(4)
            m1.metric("Stores", n["stores"])
            m2.metric("Ready to finalize", n["ready"])
            m3.metric("Finalized", n["finalized"])
            m4.metric("Not ready", n["not ready"])
            ui.money_table(
                view.overview_rows(items),
                view.OVERVIEW_COLUMNS,
                key="inv_overview",
                money_columns=view.MONEY_COLUMNS,
                order=("store", "total", "currency", "state", "data", "name", "invoice", "restated since", "problems"),
            )

            plan = inv.refresh_plan(items)
            if plan is not None:
                st.info(
                    f"A refresh would fix the missing or stale data of {len(plan.store_ids)} store(s): "
                    f"`{plan.command()}`"
                    + (
                        f" (days before {plan.start} cannot be fetched any more: a platform no longer serves them)"
                        if plan.start > start
                        else ""
                    )
                )
                if st.button("Refresh what is missing", key="inv_refresh", icon=":material/sync:"):
                    run_plan(plan)
                    st.rerun()
            incomplete = [r.store_id for r in items if not r.report.complete]
            st.download_button(
                f"Download all stores ({start} to {end})",
                data=inv.all_stores_csv(store, start, end),
                file_name=f"invoices_all_{start}_{end}.csv",
                mime="text/csv",
                on_click="ignore",
                key="inv_dl_all",
                icon=":material/download:",
                help="One CSV, each store's lines followed by its TOTAL row.",
            )
            if incomplete:
                st.caption(
                    f"{len(incomplete)} store(s) are incomplete ({ui.escape_md(', '.join(incomplete[:10]))}): their "
                    "rows say so in the status column."
                )

            if items:
                ids = [r.store_id for r in items]
                names = {r.store_id: r.report.store_name for r in items}
                if st.session_state.get("inv_store") not in ids:
                    st.session_state["inv_store"] = ids[0]
                sid = st.selectbox("Store", ids, key="inv_store", format_func=lambda s: f"{names[s]} ({s})")
                store_detail(next(r for r in items if r.store_id == sid), start, end)

            st.subheader("Finalized invoices")
            invoices = inv.list_invoices(store)
            if invoices:
                ui.money_table(
                    view.invoice_rows(invoices), view.INVOICE_COLUMNS, key="inv_list", money_columns=view.MONEY_COLUMNS
                )
            else:
                st.caption("No invoice has been finalized yet.")
            # LAST element on purpose: browser tests wait for it (recipe §7b)
            ui.page_state(
                f"invoicing | {start}..{end} | {n['stores']} stores | ready {n['ready']} | "
                f"finalized {n['finalized']} | not ready {n['not ready']}"
            )
