"""Revenue impact (leadership): the expansion plan's business-impact model, interactive, and the
same model filled from the stored data."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

import ui
from service import dashboard as dash
from ui import fees as fee_ui

store = ui.bootstrap("Revenue impact")


def model_table(rows):
    return pd.DataFrame(
        [
            {
                "platform": r.label,
                "avg client spend / month": dash.usd_short(r.spend),
                "net profit": f"{(r.net_profit_share * 100).normalize():f}%",
                "success fee": f"{(r.fee_rate * 100).normalize():f}%",
                "fee / month": dash.usd_short(r.fee_per_month),
                "clients": r.clients,
                "annual revenue": dash.usd_short(r.annual),
            }
            for r in rows
        ]
    )


def totals_row(totals):
    return {
        "avg client spend / month": dash.usd_short(totals.spend),
        "fee / month": dash.usd_short(totals.fee_per_month),
        "annual revenue": dash.usd_short(totals.annual),
        "uplift from new platforms": "+" + dash.usd_short(totals.uplift),
    }


if store is not None:
    with ui.guard("the revenue page"):
        sel = ui.sidebar_pickers(store, with_store=False)
        st.title("Revenue impact")
        st.caption(
            "Success fee per month = client spend x net profit share x success-fee rate; annual revenue "
            "= fee x 12 x clients."
        )
        c1, c2, c3 = st.columns(3)
        net = c1.number_input(
            "Net profit (% of spend)", min_value=0.0, max_value=100.0, value=20.0, step=1.0, key="net_profit"
        )
        fee = c2.number_input(
            "Success-fee rate (% of net profit)", min_value=0.0, max_value=100.0, value=20.0, step=1.0, key="fee_rate"
        )
        clients = c3.number_input("Clients", min_value=0, value=dash.PLAN_CLIENTS, step=10, key="clients")
        net_d, fee_d = Decimal(str(net)) / 100, Decimal(str(fee)) / 100

        st.subheader("The plan's assumptions")
        spend_in = pd.DataFrame(
            [{"platform": label, "avg client spend / month ($)": int(spend)} for label, _p, spend in dash.PLAN_ROWS]
        )
        edited = st.data_editor(spend_in, hide_index=True, key="plan_spend", disabled=["platform"])
        rows = [
            dash.RevenueRow(label, ps, Decimal(str(int(v))), net_d, fee_d, int(clients))
            for (label, ps, _s), v in zip(dash.PLAN_ROWS, edited["avg client spend / month ($)"])
        ]
        totals = dash.revenue_totals(rows)
        st.dataframe(model_table(rows), hide_index=True, key="plan_table")
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Total client spend / month", dash.usd_short(totals.spend))
        m2.metric("Fee / month", dash.usd_short(totals.fee_per_month))
        m3.metric("Annual revenue", dash.usd_short(totals.annual))
        m4.metric("Uplift from the four new platforms", "+" + dash.usd_short(totals.uplift))
        st.warning(
            f'The plan labels these yearly figures "per 100 clients", but $600 x 12 x 100 is $720K, '
            f"not $7.2M: its figures correspond to {dash.PLAN_CLIENTS:,} clients, which is this page's "
            "default. If the plan really means 100 clients, its yearly figures are overstated 10x."
        )

        if sel is not None:
            st.subheader(f"From the stored data, {sel.start} to {sel.end}")
            observed, model, n_stores = dash.observed_model(store, sel.start, sel.end, "USD", net_d, fee_d)
            if not observed:
                st.info("No spend stored for this period yet: refresh the stores first.")
            else:
                st.caption(
                    f"Observed average monthly spend per client (stores with spend on the platform) over "
                    f"{dash.months_in(sel.start, sel.end).normalize():f} month(s), in USD at ECB rates; "
                    f"{n_stores} stores in total. Tier 3 platforms included."
                )
                obs_totals = dash.revenue_totals(model)
                st.dataframe(model_table(model), hide_index=True, key="observed_table")
                o1, o2, o3 = st.columns(3)
                fee_ui.observed_fee_metrics(o1, o2, store, sel.start, sel.end, net_d, fee_d, model)  # real fees
                o3.metric("Of which new platforms", "+" + dash.usd_short(obs_totals.uplift))
                if any(o.fx_missing_days for o in observed):
                    st.warning(
                        "Some account-days have no USD exchange rate and are left out (the shipped ECB "
                        f"rates end on {dash.fx.data_range()[1]})."
                    )
                pairs = dash.plan_vs_observed(store, sel.start, sel.end, rows, "USD")
                st.plotly_chart(
                    ui.charts.plan_bars(pairs, "Average client spend per month: plan vs observed"), key="observed_chart"
                )
                st.caption(
                    'Each plan row beside the platforms it means ("Meta + Google" is both together, over '
                    "the stores with spend on either); platforms the plan does not list follow."
                )
            ui.page_state(
                f"revenue | {sel.start}..{sel.end} | clients {int(clients)} | annual {dash.usd_short(totals.annual)}"
            )
