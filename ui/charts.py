"""Plotly figures for the pages, built from the service layer's exact figures: one colour per
platform (ui/colors.py), tooltips with thousands separators and the currency, month ticks, and
partial periods drawn hatched and labelled. Amounts become floats here only to be drawn."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import plotly.graph_objects as go

from service.facade import PLATFORM_IDS, SPECS

from .colors import PLAN_COLOR, platform_color
from .format import d3_format

PARTIAL_PATTERN = "/"
_TICKS = {"day": ("%b %d", "%Y-%m-%d"), "week": ("%b %d", "week of %Y-%m-%d"), "month": ("%b %Y", "%B %Y")}


def _layout(fig: go.Figure, title: str, ccy: str) -> go.Figure:
    fig.update_layout(
        title=title,
        margin=dict(l=10, r=10, t=50, b=10),
        legend_title_text="",
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0, traceorder="normal"),
        hoverlabel=dict(namelength=-1),
        separators=".,",
    )
    fig.update_yaxes(title_text=ccy, tickformat=",.0f" if ccy != "%" else None)
    return fig


def spend_bars(series, title: str, status: dict[str, str] | None = None) -> go.Figure:
    """Stacked bars of a ``service.dashboard.SpendSeries``; buckets not whole (cut by the period
    or not over yet) are hatched and say "(partial)" in the tooltip. A platform whose data is not
    complete says so in its legend entry."""
    ccy, g = series.currency, series.granularity
    tick, hover = _TICKS[g]
    fig = go.Figure()
    status = status or {}
    for pid in PLATFORM_IDS:
        pts = [(b, v) for b, p, v in series.points if p == pid]
        if not pts:
            continue
        name = SPECS[pid].name + ("" if status.get(pid, "ok") == "ok" else f" ({status[pid].replace('_', ' ')})")
        partial = [b in series.partial for b, _ in pts]
        fig.add_bar(
            x=[b for b, _ in pts],
            y=[float(v) for _, v in pts],
            name=name,  # display only
            marker=dict(color=platform_color(pid), pattern=dict(shape=[PARTIAL_PATTERN if p else "" for p in partial])),
            customdata=[" (partial)" if p else "" for p in partial],
            hovertemplate=f"%{{x|{hover}}}%{{customdata}}<br>{name}: {ccy} %{{y:{d3_format(ccy)}}}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(tickformat=tick, **({"dtick": "M1"} if g == "month" else {}))
    return _layout(fig, title, ccy)


def share_donut(shares: Sequence[tuple[str, Decimal]], ccy: str, title: str) -> go.Figure:
    """Platform shares (platform id, amount): the same amounts as the table and the total."""
    fig = go.Figure(
        go.Pie(
            labels=[SPECS[p].name for p, _ in shares],
            values=[float(v) for _, v in shares],
            hole=0.5,
            sort=False,
            marker=dict(colors=[platform_color(p) for p, _ in shares]),
            hovertemplate=f"%{{label}}: {ccy} %{{value:{d3_format(ccy)}}} (%{{percent}})<extra></extra>",
        )
    )
    return _layout(fig, title, ccy)


def monthly_bars(by_month: dict[tuple[str, str], Decimal], partial: set[str], ccy: str, title: str) -> go.Figure:
    """Stacked monthly bars (``YYYY-MM``, platform id) -> amount; months not whole are hatched and
    labelled "(partial)" on the axis."""
    months = sorted({m for m, _ in by_month})
    labels = {
        m: dt.date.fromisoformat(m + "-01").strftime("%b %Y") + (" (partial)" if m in partial else "") for m in months
    }
    fig = go.Figure()
    for pid in PLATFORM_IDS:
        pts = [(m, by_month[(m, pid)]) for m in months if (m, pid) in by_month]
        if not pts:
            continue
        fig.add_bar(
            x=[labels[m] for m, _ in pts],
            y=[float(v) for _, v in pts],
            name=SPECS[pid].name,
            marker=dict(
                color=platform_color(pid), pattern=dict(shape=[PARTIAL_PATTERN if m in partial else "" for m, _ in pts])
            ),
            hovertemplate=f"%{{x}}<br>{SPECS[pid].name}: {ccy} %{{y:{d3_format(ccy)}}}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=[labels[m] for m in months])
    return _layout(fig, title, ccy)


def plan_bars(pairs, title: str) -> go.Figure:
    """The plan's average client spend beside the observed one, one pair per plan row."""
    x = [p.label for p in pairs]
    fig = go.Figure()
    fig.add_bar(
        x=x,
        y=[None if p.plan is None else float(p.plan) for p in pairs],
        name="plan",
        marker=dict(color=PLAN_COLOR),
        hovertemplate="%{x}, plan: USD %{y:,.2f}<extra></extra>",
    )
    fig.add_bar(
        x=x,
        y=[None if p.observed is None else float(p.observed) for p in pairs],
        name="observed",
        marker=dict(color=[platform_color(p.platforms[0]) if len(p.platforms) == 1 else "#5F6368" for p in pairs]),
        customdata=[p.clients for p in pairs],
        hovertemplate="%{x}, observed: USD %{y:,.2f} (%{customdata} clients)<extra></extra>",
    )
    fig.update_layout(barmode="group")
    return _layout(fig, title, "USD")
