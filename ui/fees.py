"""Success-fee sections of the dashboard: the fee preview (or the frozen fee statement) on the
Invoicing page, and the observed fee on the Revenue-impact page. Everything is computed by
service/fees.py; these functions only draw it (no SQL here)."""

from __future__ import annotations

from decimal import Decimal

import streamlit as st

from service import dashboard as dash
from service import fees

from .format import escape_md

LABELS = (("revenue", "Revenue"), ("ad_spend", "Ad spend"), ("costs", "Costs"), ("net_profit", "Net profit"))


def _metrics(amounts: dict, ccy: str, rate: str, provisional: bool) -> None:
    cols = st.columns(6)
    for col, (key, label) in zip(cols, LABELS):
        col.metric(f"{label} ({ccy})", amounts[key])
    cols[4].metric("Fee rate", f"{rate}%")
    cols[5].metric(
        f"Success fee ({ccy})",
        amounts["fee"] + (" *" if provisional else ""),
        help="rate x net profit when net profit is positive, else 0; rounded once to the currency's "
        "minor units (ROUND_HALF_UP). * provisional.",
    )


def fee_section(store, r, start, end) -> None:
    """The Invoicing page's fee part for one store and period (``r``: service.invoices.Readiness)."""
    rep = r.report
    ccy = rep.billing_currency
    if r.invoice is not None:
        snap = fees.fee_snapshot_content(store, r.invoice.number)
        if snap is None:
            st.caption(f"{r.invoice.invoice} was finalized before fee statements existed: it has no frozen fee.")
            return
        st.subheader(f"Success fee (frozen with {r.invoice.invoice})")
        _metrics(snap, ccy, snap["fee_rate"], snap["status"] == "provisional")
        st.caption(f"Status: {escape_md(snap['note'])}.")
        st.download_button(
            f"Download fee statement of {r.invoice.invoice}",
            data=fees.fee_csv(store, r.invoice.number),
            file_name=f"fee_{r.invoice.invoice}_{rep.store_id}_{start}_{end}.csv",
            mime="text/csv",
            on_click="ignore",
            key="fee_dl_invoice",
            icon=":material/download:",
        )
        change = fees.fee_diff(store, r.invoice.number)
        if change and change["changed"]:
            d, c = change["difference"], change["current"]
            st.caption(
                f"Since finalize the fee would be {c['fee']} {ccy} ({d['fee']} {ccy}; net profit "
                f"{d['net_profit']} {ccy}): see `python cli.py invoice diff --number {r.invoice.invoice}`."
            )
        return
    s = fees.preview_report(store, rep)
    if not s.revenue_days:
        st.caption(
            f"Success fee: no revenue imported for {escape_md(rep.store_id)} in this period; import it with "
            "`python cli.py revenue import FILE.csv` (store_id,day,revenue[,costs]) to see the fee."
        )
        return
    st.subheader("Success fee preview")
    _metrics(s.amounts(), ccy, s.fee_rate, s.provisional)
    if len(s.segments) > 1:
        st.caption(
            "The rate changed in this period; it is prorated by days: "
            + ", ".join(f"{fees._pct(g.percent)}% for {g.start}..{g.end} ({g.days} days)" for g in s.segments)
            + "."
        )
    if s.provisional:
        st.warning(f"Provisional fee: {escape_md(s.note.removeprefix('provisional: '))}.")
    elif s.loss:
        st.info(f"No fee for this period: {fees.ZERO_RISK}.")
    st.caption("Finalizing the invoice freezes this statement with it.")


def observed_fee_metrics(c1, c2, store, start, end, net_profit_share: Decimal, fee_rate: Decimal, model) -> None:
    """The Revenue-impact page's observed fee a month and annual revenue: real fees for the stores
    with revenue in the period, the model's estimate for the others."""
    model_fee = sum((r.fee_per_month * r.clients for r in model), Decimal(0))
    obs = fees.observed_fees(store, start, end, "USD")
    fee = fees.blended_fee_per_month(model_fee, obs, dash.months_in(start, end), net_profit_share, fee_rate)
    c1.metric("Observed fee / month (all clients)", dash.usd_short(fee))
    c2.metric("Observed annual revenue", dash.usd_short(fee * 12))
    if obs.with_revenue:
        st.caption(
            f"Real success fees for {obs.with_revenue} of {obs.stores} stores (revenue imported for this "
            f"period{f'; {obs.provisional} provisional' if obs.provisional else ''}), converted to USD at "
            "the ECB rate of the period's last day; the model's estimate for the others."
        )
    else:
        st.caption(
            f"Revenue imported for 0 of {obs.stores} stores in this period: every fee is the model's "
            "estimate (import revenue with `python cli.py revenue import`)."
        )
    if obs.fx_missing:
        st.caption(f"No USD rate for {len(obs.fx_missing)} store(s) with revenue; they are estimated.")
