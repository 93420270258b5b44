"""Refresh history: recent runs, with per-platform and per-account results, errors and durations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from service import dashboard as dash

store = ui.bootstrap("Refresh history")

if store is not None:
    with ui.guard("the refresh history"):
        st.title("Refresh history")
        store.mark_interrupted_runs()
        runs = dash.run_rows(store, 50)
        if not runs:
            st.info("No refresh has run yet: press Refresh on the Store spend page or run `python cli.py refresh`.")
            ui.page_state("history | 0 runs")
        else:
            st.dataframe(pd.DataFrame(runs), hide_index=True, key="runs_table")
            run_id = st.selectbox(
                "Run",
                [r["run"] for r in runs],
                key="history_run",
                format_func=lambda r: next(
                    f"{x['started']} · {x['status']} · {x['stores']}" for x in runs if x["run"] == r
                ),
            )
            run = next(r for r in runs if r["run"] == run_id)
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Status", run["status"])
            c2.metric("Requests", run["requests"])
            c3.metric("Duration", run["duration"] or "running")
            c4.metric("Period", run["period"])
            if run["error"]:
                st.error(ui.escape_md(run["error"]))
            platforms, accounts = dash.run_detail(store, run_id)
            st.subheader("Per platform")
            st.dataframe(pd.DataFrame(platforms), hide_index=True, key="run_platforms")
            st.subheader("Per account")
            st.dataframe(pd.DataFrame(accounts), hide_index=True, key="run_accounts")
            ui.page_state(f"history | run {run_id} | {run['status']}")
