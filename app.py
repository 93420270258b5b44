"""Ad Spend Hub dashboard: `streamlit run app.py`. This file is the default page, Store spend.

Multipage layout (decision): Streamlit's file-based multipage app. This script is the default page
and every other page is a script in ``pages/`` (``2_Portfolio_and_coverage.py`` ... and the
invoicing page). We deliberately do NOT call ``st.navigation``: with a ``pages/`` folder next to the
entrypoint Streamlit runs its built-in v1 page router, and combining it with ``st.navigation`` is
the trap of shared/streamlit-recipe.md §2 (page scripts run without the entrypoint; first widget
change lost on a fresh server). Shared pieces (page config, access gate, banner, sidebar pickers)
come from ``ui.bootstrap`` / ``ui.sidebar_pickers`` that each page calls; the sidebar's own page
list is hidden (``client.showSidebarNavigation = false``) and drawn by ``ui`` with readable labels.
The store and period survive page switches (ui/sidebar.py mirrors them in session state). Checked by
tests/test_app_pages.py (``at.switch_page``) and tests/test_browser.py (first change on a fresh server).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
import ui.freshness as ui_freshness
from service import dashboard as dash
from service.export import render_csv
from service.readcache import spend_report  # cached on the data version
from service.refresh import refresh
from ui import alerts as ui_alerts
from ui import fx_rates

store = ui.bootstrap("Store spend")


def run_refresh(store, sel) -> None:
    """Run the refresh in a worker thread and show its progress per platform x account."""
    fx_warnings: list[str] = []
    out, error, status = ui.run_with_progress(
        f"Refreshing {ui.escape_md(sel.store['name'])} for {sel.start} to {sel.end}...",
        fx_rates.with_rate_update(
            store,
            [sel.store_id],
            lambda progress: refresh(store, [sel.store_id], sel.start, sel.end, progress=progress, trigger="dashboard"),
            fx_warnings,
        ),
    )
    fx_rates.show_warnings(fx_warnings)
    with status:
        if error is not None:
            status.update(label=f"Refresh failed: {ui.escape_md(error)}", state="error", expanded=True)
            st.session_state["last_refresh"] = f"Last refresh failed: {error}"
            return
        lines = [
            {
                "platform": dash.SPECS[p.platform].name,
                "status": p.status,
                "error": p.error or "",
                "accounts": len(p.accounts),
                "seconds": round(p.seconds, 1),
            }
            for p in out.platforms
        ]
        if lines:
            st.dataframe(pd.DataFrame(lines), hide_index=True)
        summary, state = dash.refresh_summary(out)
        status.update(
            label=ui.escape_md(summary), state="error" if state == "error" else "complete", expanded=state == "error"
        )
        if state == "info":
            st.info(ui.escape_md(summary))
        st.session_state["last_refresh"] = f"Last refresh ({sel.store_id}, {sel.start} to {sel.end}): {summary}"


if store is not None:
    with ui.guard("the store spend page"):
        sel = ui.sidebar_pickers(store, with_compare=True)
        if sel is not None:
            ccy = sel.store["billing_currency"]
            st.title(ui.escape_md(sel.store["name"]))
            head, button = st.columns([4, 1], vertical_alignment="bottom")
            head.caption(f"Store {ui.escape_md(sel.store_id)} · billed in {ccy} · {sel.start} to {sel.end}")
            if button.button(
                "Refresh",
                key="refresh",
                type="primary",
                icon=":material/sync:",
                help="Fetch this store's spend for the period from every linked platform.",
            ):
                run_refresh(store, sel)
            elif st.session_state.get("last_refresh"):
                st.caption(ui.escape_md(st.session_state["last_refresh"]))

            report = spend_report(store, sel.store_id, sel.start, sel.end)
            prev_start, prev_end = dash.comparison_period(sel.start, sel.end, sel.compare)
            previous = spend_report(store, sel.store_id, prev_start, prev_end)
            cmp = dash.compare(report, previous, sel.compare)
            has_data = any(pl.status not in ("missing", "not_configured") for pl in report.platforms.values())
            c1, c2 = st.columns([2, 3])
            ui.spend_metric(c1, report, cmp, has_data)
            with c2:
                chips = dash.chips(report)
                if chips:
                    st.markdown(" ".join(ui.badge_markdown(f"{c.name}: {c.label}", c.state) for c in chips))
                    for c in chips:
                        if c.detail and c.state != "not_configured":
                            st.caption(f"{ui.escape_md(c.name)}: {ui.escape_md(c.detail)}")
                else:
                    st.info("This store has no linked ad accounts: link them on the Accounts page.")
            if not report.complete and report.platforms:
                st.warning(
                    "These numbers are not complete: "
                    + "; ".join(f"{c.name} {c.label}" for c in chips if c.state not in ("ok", "stale"))
                    + ". Missing spend is not counted as zero: refresh or check the platform."
                )
            for note in dash.fx_notes(report):
                st.warning(ui.escape_md(note))
            ui_freshness.retention_notes(store, sel.store_id, sel.start, sel.end)
            ui_freshness.data_as_of(store, sel.store_id)
            with ui.guard("the pacing and alerts"):
                ui_alerts.store_block(store, sel.store_id, sel.store["name"])

            rows = dash.breakdown(report, previous if cmp.shown else None)
            ui.spend_charts(store, report, rows)
            st.subheader("By platform and account")
            ui.breakdown_table(rows, ccy, cmp)

            with st.expander("Account details (currencies, exchange rates, days covered)"):
                ui.account_table(dash.account_rows(report), ccy)
            st.download_button(
                "Download CSV",
                data=render_csv([report]),
                file_name=f"spend_{sel.store_id}_{sel.start}_{sel.end}.csv",
                mime="text/csv",
                on_click="ignore",
                key="download_csv",
                icon=":material/download:",
            )
            # LAST element on purpose: browser tests wait for it (recipe §7b); hidden from users
            ui.page_state(
                f"store {sel.store_id} | {sel.start}..{sel.end} | total {ccy} "
                f"{dash.fx.format_amount(report.total, ccy)} | complete {str(report.complete).lower()} | "
                f"compare {sel.compare} {'shown' if cmp.shown else 'none'}"
            )
