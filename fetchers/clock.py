"""The one answer to "what day is it?" for the product (fetchers, service, CLI, dashboard).

Every "today", "yesterday" and "now" in the product comes from here, so a test (or an operator
replaying a day) can move the clock in one place:

- ``ADSPEND_TODAY=YYYY-MM-DD`` in the environment pins the date (the time of day stays the real one);
- ``with clock.pinned(date(2027, 12, 3)): ...`` does the same inside a process (tests).

Without either, the system clock in UTC answers (so Debian's ``faketime`` moves it too).
The sandbox keeps its own clock (``sandbox/data.py``): it stands for the outside world.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
from typing import Iterator

UTC = dt.timezone.utc
_pinned: list[dt.date] = []


def _env_day() -> dt.date | None:
    raw = os.environ.get("ADSPEND_TODAY", "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def now() -> dt.datetime:
    """The current moment, timezone-aware UTC (on the pinned day when one is pinned)."""
    real = dt.datetime.now(UTC)
    day = _pinned[-1] if _pinned else _env_day()
    return real if day is None else dt.datetime.combine(day, real.timetz())


def today() -> dt.date:
    """Today's date in UTC."""
    return now().date()


def yesterday() -> dt.date:
    return today() - dt.timedelta(days=1)


@contextlib.contextmanager
def pinned(day: dt.date) -> Iterator[dt.date]:
    """Within the block, ``today()`` is ``day`` (nested blocks stack)."""
    _pinned.append(day)
    try:
        yield day
    finally:
        _pinned.pop()
