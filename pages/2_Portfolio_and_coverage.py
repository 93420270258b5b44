"""Portfolio & coverage (leadership): integration status by tier, the share-of-spend coverage
assumption, the stores x platforms matrix, and spend share and monthly trend across all stores."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

import ui
from service import dashboard as dash
from service import readcache
from service.facade import PLATFORM_IDS, SPECS
from ui.alerts import with_pace

store = ui.bootstrap("Portfolio & coverage")

if store is not None:
    with ui.guard("the portfolio page"):
        sel = ui.sidebar_pickers(store, with_store=False)
        st.title("Portfolio & coverage")

        st.subheader("Integration status")
        status = dash.integration_status(ui.settings_described())
        st.dataframe(
            pd.DataFrame(
                [{k: r[k] for k in ("tier", "name", "implemented", "configured", "runs as", "missing")} for r in status]
            ),
            hide_index=True,
            key="integration_table",
            column_config={"missing": st.column_config.TextColumn("missing", width="large")},
        )
        st.caption(
            "Tier 0 is billed today (Meta, Google); tiers 1-3 follow the expansion plan. "
            "'configured' means every required credential is set (live API); demo stores always use "
            "the built-in sandbox."
        )

        st.subheader("Coverage of clients' digital ad spend")
        st.caption(
            "Assumptions from the expansion plan (Meta + Google about 65% of a typical client's digital "
            "ad spend, about 95% with TikTok, LinkedIn, Amazon and Microsoft); edit them to test others."
        )
        defaults = pd.DataFrame(
            [
                {"platform": SPECS[p].name, "tier": SPECS[p].tier, "share %": float(dash.DEFAULT_SHARES[p])}
                for p in PLATFORM_IDS
            ]
        )
        edited = st.data_editor(
            defaults,
            hide_index=True,
            key="shares_editor",
            disabled=["platform", "tier"],
            column_config={"share %": st.column_config.NumberColumn(min_value=0.0, max_value=100.0, step=0.5)},
        )
        shares = {}
        for pid, value in zip(PLATFORM_IDS, edited["share %"]):
            try:
                shares[pid] = Decimal(str(value)) if value is not None and value == value else Decimal(0)
            except InvalidOperation:
                shares[pid] = Decimal(0)
        summary = dash.coverage_summary(shares, status)
        cols = st.columns(len(summary))
        for col, (label, value) in zip(cols, summary):
            col.metric(label, f"{value.normalize():f}%")
        total_share = dash.coverage(shares, PLATFORM_IDS)
        if total_share != 100:
            st.caption(f"The shares add up to {total_share.normalize():f}%, not 100%.")

        st.subheader("Stores x platforms")
        st.dataframe(
            pd.DataFrame(with_pace(store, readcache.portfolio_matrix(store))),
            hide_index=True,
            key="matrix_table",
            column_config={
                SPECS[p].name: st.column_config.TextColumn(SPECS[p].name.split(" ")[0], help=SPECS[p].name)
                for p in PLATFORM_IDS
            },
        )
        st.caption(
            "Each cell: linked accounts · status of their latest refresh (ok, failed, partly refreshed, "
            "never refreshed; '—' = not linked). Pace: this month's projected spend against the "
            "store's budget, as of yesterday (Alerts page)."
        )

        if sel is not None:
            currency = st.selectbox("Report currency", ["USD", "EUR", "GBP", "JPY"], key="portfolio_ccy")
            spend = readcache.portfolio_spend(store, sel.start, sel.end, currency)
            st.subheader(f"Spend across all stores, {sel.start} to {sel.end} ({currency})")
            st.metric(f"Total spend ({currency})", ui.money(spend.total, currency))
            if spend.fx_missing_days:
                st.warning(
                    f"{spend.fx_missing_days} account-day(s) have no exchange rate to {currency} and are "
                    "left out (the shipped ECB rates end on "
                    f"{dash.fx.data_range()[1]})."
                )
            if spend.days_with_data < spend.days_expected:
                st.warning(
                    f"Data covers {spend.days_with_data} of {spend.days_expected} account-days of the "
                    "period: refresh the stores for complete figures."
                )
            if spend.by_platform:
                ui.portfolio_charts(spend, sel.start, sel.end)
            else:
                st.info("No spend stored for this period yet.")
            ui.page_state(
                f"portfolio | {sel.start}..{sel.end} | {currency} {dash.fx.format_amount(spend.total, currency)}"
            )
