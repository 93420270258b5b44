"""Tables whose amounts stay numbers (sortable) and are shown with thousands separators and the
currency: ``money_table(rows, columns, ...)`` for rows of Decimal amounts (service/invoicing_view.py)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

from .format import display_number, number_format


def money_frame(rows: list[dict], columns, money_columns=()) -> pd.DataFrame:
    """Decimal amounts as numbers (display only); an unknown amount (None) is an empty cell of a
    numeric column, never 0 and never the text "None"."""
    df = pd.DataFrame(
        [{k: display_number(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows],
        columns=list(columns),
    )
    for col in money_columns:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def money_table(
    rows: list[dict],
    columns,
    *,
    key: str,
    money_columns: dict[str, str],
    billing: str | None = None,
    wide: tuple[str, ...] = (),
    order: tuple[str, ...] | None = None,
) -> None:
    """``money_columns``: column -> "billing" (formatted in ``billing``) or "own" (the row's own
    currency, given in its ``currency`` column: thousands separators only)."""
    config = {}
    for col in columns:
        kind = money_columns.get(col)
        if kind == "billing" and billing:
            config[col] = st.column_config.NumberColumn(f"{col} ({billing})", format=number_format(billing))
        elif kind:
            config[col] = st.column_config.NumberColumn(col, format="%,.2f")
        elif col in wide:
            config[col] = st.column_config.TextColumn(col, width="large")
    st.dataframe(
        money_frame(rows, columns, [c for c in columns if c in money_columns]),
        hide_index=True,
        key=key,
        column_config=config,
        placeholder="—",
        column_order=order or tuple(columns),
    )
