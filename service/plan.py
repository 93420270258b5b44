"""Planning one account's part of a refresh: pure, no I/O and no clock (``oldest`` is passed in).

``plan_account`` takes the days that need fetching (``SpendStore.days_to_fetch`` or
``freshness.recent_days`` chose them), the platform's window cap (``max_days``) and the oldest day
it still serves (``freshness.oldest_servable``), and returns the windows to fetch and the windows
to fail without a request because the platform no longer serves them. ``tests/test_refresh_plan.py``
lists cases and their exact windows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from fetchers.core import contiguous_ranges, plan_windows

Window = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class AccountPlan:
    fetch: list[Window]  # windows to ask the platform for, each within max_days, in day order
    too_old: list[Window]  # windows before the oldest servable day: failed without a request


def plan_account(days: Iterable[dt.date], max_days: int, oldest: dt.date | None) -> AccountPlan:
    """Runs of consecutive days cut into windows of at most ``max_days``; days before ``oldest``
    (None: the platform serves every day) go to ``too_old``, cut the same way."""
    days = sorted(set(days))
    old = [d for d in days if oldest is not None and d < oldest]
    new = days[len(old) :]

    def windows(ds: list[dt.date]) -> list[Window]:
        return [w for lo, hi in contiguous_ranges(ds) for w in plan_windows(lo, hi, max_days)]

    return AccountPlan(windows(new), windows(old))
