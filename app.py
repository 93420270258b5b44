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
import plotly.express as px
import streamlit as st

import ui
from service import dashboard as dash
from service.export import render_csv
from service.refresh import refresh
from service.report import spend_report

store = ui.bootstrap("Store spend", ":material/payments:")


def run_refresh(store, sel) -> None:
    """Run the refresh in a worker thread and show its progress per platform x account."""
    out, error, status = ui.run_with_progress(
        f"Refreshing {ui.escape_md(sel.store['name'])} for {sel.start} to {sel.end}...",
        lambda progress: refresh(store, [sel.store_id], sel.start, sel.end, progress=progress, trigger="dashboard"))
    with status:
        if error is not None:
            status.update(label=f"Refresh failed: {ui.escape_md(error)}", state="error", expanded=True)
            st.session_state["last_refresh"] = f"Last refresh failed: {error}"
            return
        lines = [{"platform": p.platform, "status": p.status, "error": p.error or "",
                  "accounts": len(p.accounts), "seconds": round(p.seconds, 1)} for p in out.platforms]
        st.dataframe(pd.DataFrame(lines), hide_index=True)
        summary = (f"Refresh {out.status} in {out.seconds:.1f} s, {out.requests} requests"
                   + (f": {out.error}" if out.error else ""))
        status.update(label=ui.escape_md(summary), state="complete" if out.status == "ok" else "error", expanded=out.failed)
        st.session_state["last_refresh"] = f"Last refresh ({sel.store_id}, {sel.start} to {sel.end}): {summary}"


if store is not None:
    with ui.guard("the store spend page"):
        sel = ui.sidebar_pickers(store)
        if sel is not None:
            ccy = sel.store["billing_currency"]
            st.title(ui.escape_md(sel.store["name"]))
            head, button = st.columns([4, 1], vertical_alignment="bottom")
            head.caption(f"Store {ui.escape_md(sel.store_id)} · billed in {ccy} · {sel.start} to {sel.end}")
            if button.button("Refresh", key="refresh", type="primary", icon=":material/sync:",
                             help="Fetch this store's spend for the period from every linked platform."):
                run_refresh(store, sel)
            elif st.session_state.get("last_refresh"):
                st.caption(ui.escape_md(st.session_state["last_refresh"]))

            report = spend_report(store, sel.store_id, sel.start, sel.end)
            prev_start, prev_end = dash.previous_period(sel.start, sel.end)
            change = dash.change(report, spend_report(store, sel.store_id, prev_start, prev_end))
            c1, c2 = st.columns([2, 3])
            delta = None
            if change.delta is not None:
                delta = f"{ui.money(change.delta, ccy)}" + (f" ({change.percent:+}%)" if change.percent is not None
                                                            else "")
            has_data = any(pl.status not in ("missing", "not_configured") for pl in report.platforms.values())
            c1.metric(f"Total spend ({ccy})", ui.money(report.total, ccy) if has_data else "no data", delta=delta,
                      help=f"Compared with {prev_start} to {prev_end} (same length)."
                      + ("" if report.complete else " Incomplete: see the platform statuses."))
            c1.caption(change.note or f"vs {prev_start} to {prev_end}: {ui.money(change.previous, ccy)}")
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
                st.warning("These numbers are not complete: "
                           + "; ".join(f"{c.name} {c.label}" for c in chips if c.state not in ("ok", "stale"))
                           + ". Missing spend is not counted as zero: refresh or check the platform.")
            for note in dash.fx_notes(report):
                st.warning(ui.escape_md(note))

            daily = dash.daily_by_platform(store, sel.store_id, sel.start, sel.end, ccy)
            left, right = st.columns([3, 2])
            if daily.rows:
                df = pd.DataFrame([{"day": d, "platform": dash.SPECS[p].name, "spend": float(v)}   # chart only
                                   for d, p, v in daily.rows])
                fig = px.bar(df, x="day", y="spend", color="platform", barmode="stack",
                             labels={"spend": f"spend ({ccy})"}, title=f"Daily spend by platform ({ccy})")
                left.plotly_chart(fig, key="daily_chart")
            else:
                left.info("No daily spend stored for this period yet: press Refresh.")
            shares = dash.platform_shares(report)
            if shares:
                pie = px.pie(pd.DataFrame([{"platform": n, "spend": float(v)} for n, v in shares]),
                             names="platform", values="spend", hole=0.5, title="Platform share of spend")
                right.plotly_chart(pie, key="share_chart")

            st.subheader("Accounts")
            st.dataframe(pd.DataFrame(dash.account_rows(report), columns=list(dash.ACCOUNT_COLUMNS)),
                         hide_index=True, key="accounts_table")
            st.download_button("Download CSV", data=render_csv([report]),
                               file_name=f"spend_{sel.store_id}_{sel.start}_{sel.end}.csv", mime="text/csv",
                               on_click="ignore", key="download_csv", icon=":material/download:")
            # LAST element on purpose: browser tests wait for it (recipe §7b)
            st.caption(f"store {ui.escape_md(sel.store_id)} | {sel.start}..{sel.end} | total {ccy} "
                       f"{dash.fx.format_amount(report.total, ccy)} | complete {str(report.complete).lower()}")
