"""service/periods.py: the one periods module the dashboard, invoicing, freshness and alerts share."""

from __future__ import annotations

import datetime as dt

import pytest

from service import alerts, dashboard, freshness, invoices, periods

D = dt.date


def test_calendar_months():
    assert periods.month_bounds(D(2028, 2, 10)) == (D(2028, 2, 1), D(2028, 2, 29))
    assert periods.month_end(D(2026, 12, 31)) == D(2026, 12, 31)
    assert periods.previous_month_start(D(2026, 1, 31)) == D(2025, 12, 1)
    assert periods.previous_month(D(2026, 3, 31)) == (D(2026, 2, 1), D(2026, 2, 28))
    assert periods.month_period("2026-02") == periods.month_bounds(D(2026, 2, 14)) == (D(2026, 2, 1), D(2026, 2, 28))
    assert periods.recent_months(14, D(2026, 2, 1))[-2:] == ["2025-02", "2025-01"]
    with pytest.raises(ValueError, match="out of range"):
        periods.month_period("1969-12")


def test_the_dashboards_last_month_is_the_invoicing_previous_month():
    for day in (D(2026, 1, 1), D(2026, 3, 31), D(2028, 3, 1)):
        assert periods.period_for("Last month", day) == periods.previous_month(day)


def test_one_implementation_behind_every_old_name():
    assert dashboard.period_for is periods.period_for and dashboard.comparison_period is periods.comparison_period
    assert dashboard.months_in is periods.months_in and dashboard.PRESETS is periods.PRESETS
    assert invoices.month_period is periods.month_period and invoices.recent_months is periods.recent_months
    assert invoices.previous_month is periods.previous_month
    assert freshness.previous_month_start is periods.previous_month_start
    assert alerts.month_end is periods.month_end
