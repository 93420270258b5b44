"""The Store spend page's pieces (app.py calls them): the total with its comparison, the charts
and the breakdown tables. Figures come from service/dashboard.py; numbers stay numeric in the
tables (sortable) and are formatted by Streamlit with the currency and thousands separators."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from service import dashboard as dash

from . import charts
from .format import display_number, money, number_format, pct

BREAKDOWN_COLUMNS = ("platform / account", "spend", "Δ %", "share", "previous", "Δ", "status")  # key columns first
ACCOUNT_TABLE_ORDER = (
    "platform",
    "account",
    "billing amount",
    "spend",
    "currency",
    "name",
    "fx rate",
    "days covered",
    "status",
    "last fetched",
)


def spend_metric(col, report, cmp: dash.Comparison, has_data: bool) -> None:
    """The total, and its change as a NUMBER (Streamlit reads the sign: a drop gets a down arrow);
    spend going up is neither good nor bad, so the delta is grey."""
    ccy = report.billing_currency
    value = money(report.total, ccy) if has_data else "no data"
    label = f"Total spend ({ccy})"
    helptext = f"Compared with {cmp.label.lower()}: {cmp.start} to {cmp.end}." + (
        "" if report.complete else " Incomplete: see the platform statuses."
    )
    if cmp.shown:
        col.metric(
            label,
            value,
            delta=cmp.delta,
            delta_color="off",
            format=number_format(ccy),
            delta_description=(f"{pct(cmp.percent)} " if cmp.percent is not None else "")
            + f"vs {cmp.start} to {cmp.end}",
            help=helptext,
        )
        col.caption(f"{cmp.label}, {cmp.start} to {cmp.end}: {money(cmp.previous, ccy)}")
    else:
        col.metric(label, value, help=helptext)
        col.caption(cmp.note)


def spend_charts(store, report, rows) -> None:
    """Spend over time (daily/weekly/monthly) and the platform share: both add up to the total."""
    ccy = report.billing_currency
    left, right = st.columns([3, 2])
    g = (
        left.segmented_control(
            "Granularity",
            list(dash.GRANULARITIES),
            format_func=dash.GRANULARITIES.get,
            key="granularity",
            default="day",
            label_visibility="collapsed",
        )
        or "day"
    )
    series = dash.spend_series(store, report, g)
    if series.points:
        status = {p: pl.status for p, pl in report.platforms.items()}
        left.plotly_chart(
            charts.spend_bars(series, f"{dash.GRANULARITIES[g]} spend by platform: {money(series.total, ccy)}", status),
            key="daily_chart",
        )
        if any(b in series.partial for b, *_ in series.points):
            left.caption("Hatched bars: a period that is not whole (cut by the chosen dates, or not over yet).")
    else:
        left.info(dash.empty_chart_reason(report))
    if series.left_out:
        left.caption(
            "Not drawn and not in the total (no exchange rate): "
            + "; ".join(f"{dash.SPECS[p].name} {a}" for p, a, _why in series.left_out)
            + "."
        )
    shares = [(r.platform, r.spend) for r in rows if r.level == "platform" and r.spend]
    if shares:
        right.plotly_chart(
            charts.share_donut(shares, ccy, f"Platform share of {money(report.total, ccy)}"), key="share_chart"
        )


def table_height(n_rows: int, cap: int = 30) -> int:
    """Tall enough to show every row (up to ``cap``) without an inner scroll bar."""
    return 38 + 35 * min(max(n_rows, 1), cap)


def breakdown_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "platform / account": r.platform_name
                if r.level == "platform"
                else "   ↳ " + (f"{r.account} · {r.account_name}" if r.account_name else r.account),
                "spend": display_number(r.spend),
                "share": display_number(r.share),
                "previous": display_number(r.previous),
                "Δ": display_number(r.delta),
                "Δ %": display_number(r.delta_pct),
                "status": r.status.replace("_", " "),
            }
            for r in rows
        ],
        columns=list(BREAKDOWN_COLUMNS),
    )


def breakdown_table(rows, ccy: str, cmp: dash.Comparison) -> None:
    st.dataframe(
        breakdown_frame(rows),
        hide_index=True,
        key="breakdown_table",
        placeholder="—",
        height=table_height(len(rows)),
        column_order=BREAKDOWN_COLUMNS,
        column_config={
            "platform / account": st.column_config.TextColumn("platform / account", width="medium"),
            "spend": st.column_config.NumberColumn(f"spend ({ccy})", format=number_format(ccy)),
            "share": st.column_config.NumberColumn("share", format="%.1f%%"),
            "previous": st.column_config.NumberColumn(
                f"previous ({ccy})", format=number_format(ccy), help=f"{cmp.start} to {cmp.end}"
            ),
            "Δ": st.column_config.NumberColumn(f"Δ ({ccy})", format=number_format(ccy, signed=True)),
            "Δ %": st.column_config.NumberColumn("Δ %", format="%+.1f%%"),
            "status": st.column_config.TextColumn("status"),
        },
    )
    st.caption(
        f"Previous: {cmp.label.lower()}, {cmp.start} to {cmp.end}; shown where the platform or account "
        "is complete in both periods. — means not known, never zero."
    )


def account_frame(rows, ccy: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {**r, "spend": display_number(r["spend"]), "billing amount": display_number(r["billing amount"])}
            for r in rows
        ],
        columns=list(dash.ACCOUNT_COLUMNS),
    )


def account_table(rows, ccy: str) -> None:
    st.dataframe(
        account_frame(rows, ccy),
        hide_index=True,
        key="accounts_table",
        placeholder="—",
        column_order=ACCOUNT_TABLE_ORDER,
        column_config={
            "billing amount": st.column_config.NumberColumn(f"billing amount ({ccy})", format=number_format(ccy)),
            "spend": st.column_config.NumberColumn("spend (account currency)", format="%,.2f"),
            "status": st.column_config.TextColumn("status", width="large"),
        },
    )


def portfolio_charts(spend, start, end) -> None:
    """The portfolio's platform share and monthly trend (months not whole are hatched and say
    "(partial)"), and its per-platform table with numeric, formatted amounts."""
    ccy = spend.currency
    left, right = st.columns(2)
    shares = [(p, v) for p, v in spend.by_platform.items() if v]
    if shares:
        left.plotly_chart(
            charts.share_donut(shares, ccy, f"Spend share of {money(spend.total, ccy)}"), key="portfolio_share"
        )
    right.plotly_chart(
        charts.monthly_bars(spend.by_month, dash.partial_months(start, end), ccy, f"Monthly spend ({ccy})"),
        key="portfolio_trend",
    )
    total = spend.total
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "platform": dash.SPECS[p].name,
                    "spend": display_number(v),
                    "share": display_number((v / total * 100).quantize(dash.Decimal("0.1")) if total else None),
                }
                for p, v in spend.by_platform.items()
            ],
            columns=["platform", "spend", "share"],
        ),
        hide_index=True,
        key="portfolio_table",
        placeholder="—",
        column_config={
            "spend": st.column_config.NumberColumn(f"spend ({ccy})", format=number_format(ccy)),
            "share": st.column_config.NumberColumn("share", format="%.1f%%"),
        },
    )
