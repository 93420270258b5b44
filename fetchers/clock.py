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
import re
from collections.abc import Iterator

UTC = dt.UTC
_pinned: list[dt.date] = []


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def strict_day(value: str) -> dt.date:
    """A day written exactly ``YYYY-MM-DD`` (``date.fromisoformat`` alone also takes ``20261001`` and
    ``2026-W40-1``); ValueError otherwise. The one date parser for the CLI, imports and the wire."""
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        raise ValueError(f"{str(value)[:30]!r} is not a date in the form YYYY-MM-DD")
    return dt.date.fromisoformat(value.strip())


def _env_day() -> dt.date | None:
    raw = os.environ.get("ADSPEND_TODAY", "").strip()
    if not raw:
        return None
    try:
        return strict_day(raw)
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
