"""Billing and reporting periods, one place for the dashboard and invoicing.

Periods are inclusive date ranges; billing periods are calendar months. "Today" comes from
``fetchers/clock.py`` so every helper here is testable on any date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal

from fetchers import clock

# --- calendar months --------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the calendar month of ``day``."""
    return month_start(day), month_end(day)


def previous_month_start(today: dt.date) -> dt.date:
    """The first day of the month before ``today``'s."""
    return month_start(month_start(today) - dt.timedelta(days=1))


def previous_month(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The calendar month before ``today``'s (default: ``clock.today()``): the last billing period."""
    return month_bounds(previous_month_start(today or clock.today()))


# --- the dashboard's presets ----------------------------------------------------------------------

PRESETS = ("Last month", "This month", "Last 7 days", "Last 30 days", "Last 90 days", "Custom")
DEFAULT_PRESET = "Last month"  # a complete billing period (calendar month)


def period_for(preset: str, today: dt.date, custom: tuple[dt.date, dt.date] | None = None) -> tuple[dt.date, dt.date]:
    """The inclusive date range of a period preset. Billing periods are calendar months:
    "This month" is the whole current month (its days not over yet show as partial);
    "Last N days" are the N complete days before today."""
    if preset == "This month":
        return month_bounds(today)
    if preset == "Last month":
        return previous_month(today)
    m = re.fullmatch(r"Last (\d+) days", preset)
    if m:
        n = int(m.group(1))
        return today - dt.timedelta(days=n), today - dt.timedelta(days=1)
    if preset == "Custom":
        if not custom:
            raise ValueError("choose a start and an end date")
        start, end = custom
        if start > end:
            raise ValueError(f"the start date {start} is after the end date {end}")
        return start, end
    raise ValueError(f"unknown period {preset!r}")


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of equal length that ends the day before ``start``."""
    n = (end - start).days + 1
    prev_end = start - dt.timedelta(days=1)
    return prev_end - dt.timedelta(days=n - 1), prev_end


def months_in(start: dt.date, end: dt.date) -> Decimal:
    """How many months the period spans: whole calendar months count 1, partial ones pro rata."""
    total = Decimal(0)
    d = start
    while d <= end:
        first, last = month_bounds(d)
        seg_end = min(last, end)
        total += Decimal((seg_end - d).days + 1) / Decimal(last.day)
        d = seg_end + dt.timedelta(days=1)
    return total


# --- comparisons (issue 16) -------------------------------------------------------------------------

#: URL value -> label. "previous_period": the period just before (the previous calendar period
#: when the period is whole calendar months, else the same number of days); "previous_month": the
#: same days one month earlier; "last_year": the same days one year earlier.
COMPARISONS = {
    "previous_period": "Previous period",
    "previous_month": "Previous month",
    "last_year": "Same period last year",
}
DEFAULT_COMPARISON = "previous_period"


_month_end = month_end  # the dashboard's old private name


def shift_months(day: dt.date, months: int, keep_month_end: bool = False) -> dt.date:
    """``day`` moved by ``months`` calendar months; a day past the target month's end (31 Jan -> Feb)
    becomes that month's last day, and so does a month end when ``keep_month_end``."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(y, m + 1)[1]
    if keep_month_end and day == month_end(day):
        return dt.date(y, m + 1, last)
    return dt.date(y, m + 1, min(day.day, last))


def whole_months(start: dt.date, end: dt.date) -> int | None:
    """How many calendar months ``start..end`` is, when it is whole months (1st to a month end)."""
    if start.day != 1 or end != month_end(end) or end < start:
        return None
    return (end.year - start.year) * 12 + end.month - start.month + 1


def comparison_period(start: dt.date, end: dt.date, mode: str = DEFAULT_COMPARISON) -> tuple[dt.date, dt.date]:
    """The period ``start..end`` is compared with (see :data:`COMPARISONS`)."""
    if mode == "previous_period":
        n = whole_months(start, end)
        if n:
            return shift_months(start, -n), start - dt.timedelta(days=1)
        return previous_period(start, end)
    if mode in ("previous_month", "last_year"):
        k = -1 if mode == "previous_month" else -12
        whole = whole_months(start, end) is not None
        return shift_months(start, k), shift_months(end, k, keep_month_end=whole)
    raise ValueError(f"unknown comparison {mode!r}; use one of {', '.join(COMPARISONS)}")


# --- invoicing months -------------------------------------------------------------------------------


def month_period(month: str | dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of a calendar month given as ``YYYY-MM`` (or any date in it)."""
    if isinstance(month, str):
        m = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", month)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"{month!r} is not a month in the form YYYY-MM")
        if not 1970 <= int(m.group(1)) <= 2999:
            raise ValueError(f"{month.strip()} is out of range; use a month between 1970-01 and 2999-12")
        first = dt.date(int(m.group(1)), int(m.group(2)), 1)
    else:
        first = month.replace(day=1)
    return month_bounds(first)


def recent_months(n: int = 12, today: dt.date | None = None) -> list[str]:
    """``YYYY-MM`` of the last ``n`` months, newest first, the current month included."""
    today = today or clock.today()
    out, d = [], month_start(today)
    for _ in range(n):
        out.append(d.strftime("%Y-%m"))
        d = previous_month_start(d)
    return out
