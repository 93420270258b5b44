"""Deterministic demo data: every sandbox platform draws its accounts and daily spend from here.

The same (platform, account, day) always gives the same amount, so tests can compute the exact
totals the sandbox serves (``expected_total``) and compare them to what the product stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from decimal import Decimal

# An account id that ends in an ISO 4217 numeric code gets that currency; every other is USD.
CURRENCY_BY_SUFFIX = {"978": "EUR", "826": "GBP", "392": "JPY", "124": "CAD", "036": "AUD"}
MINOR_UNITS = {"JPY": 0}
TIMEZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "UTC",
    "Asia/Tokyo",
    "America/Chicago",
]
_WEEKDAY_FACTOR = [
    Decimal("1.00"),
    Decimal("1.05"),
    Decimal("1.10"),
    Decimal("1.08"),
    Decimal("1.15"),
    Decimal("0.70"),
    Decimal("0.60"),
]


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def account_currency(account_id: str) -> str:
    digits = "".join(ch for ch in str(account_id) if ch.isdigit())
    return CURRENCY_BY_SUFFIX.get(digits[-3:], "USD") if len(digits) >= 3 else "USD"


def account_profile(platform: str, account_id: str) -> dict:
    """Currency, timezone and display name of a sandbox account."""
    currency = account_currency(account_id)
    tz = (
        "Asia/Tokyo"
        if currency == "JPY"
        else (
            "Europe/Berlin"
            if currency == "EUR"
            else ("Europe/London" if currency == "GBP" else TIMEZONES[_h(platform, account_id, "tz") % 2])
        )
    )
    return {"currency": currency, "timezone": tz, "name": f"Demo {platform.title()} {str(account_id)[-4:]}"}


def today() -> dt.date:
    """The sandbox's today (UTC). ``ADSPEND_SANDBOX_TODAY`` pins it for reproducible runs."""
    pinned = os.environ.get("ADSPEND_SANDBOX_TODAY")
    return dt.date.fromisoformat(pinned) if pinned else dt.datetime.now(dt.UTC).date()


PAUSE_EVERY = 11


def paused(platform: str, account_id: str, day: dt.date) -> bool:
    """Accounts that spend through several campaigns or ad products (Pinterest, Amazon) also
    pause as a whole one day in eleven, at an offset of their own, so their account-level
    zero-spend days (which a per-campaign draw alone almost never gives) are in every window of
    11 days or more. (Single-stream accounts have their one-in-eleven idle days anyway.)"""
    return (day.toordinal() + _h(platform, account_id, "pause")) % PAUSE_EVERY == 0


def daily_amount(
    platform: str, account_id: str, day: dt.date, *, scale: int = 2, part: str = "", generation: int = 0
) -> Decimal:
    """Spend of one account on one day in the account's currency (0 = no delivery that day).

    ``scale`` is the number of decimal places the platform's wire format carries (2 for decimal
    strings, 6 for micro-units). ``generation`` > 0 is a restatement: a different figure."""
    if day > today():
        return Decimal(0)
    event = _event(platform, account_id, day)
    # a "stop" switch, or every campaign / ad product of the account idle that day
    if event == "stop" or (event is None and part and paused(platform, account_id, day)):
        return Decimal(0)
    seed = _h(platform, account_id, day.isoformat(), part)
    if seed % 11 == 0 and event is None:  # about one day in eleven without delivery
        return Decimal(0)
    currency = account_currency(account_id)
    base_units = 40 + (_h(platform, account_id, "size") % 400)  # 40..440 a day
    if currency == "JPY":
        base_units *= 150
    minor = MINOR_UNITS.get(currency, 2)
    places = min(scale, minor) if currency == "JPY" else scale
    quantum = Decimal(1).scaleb(-places)
    jitter = Decimal(seed % 10_000_000) / Decimal(10_000_000)  # 0..1
    amount = Decimal(base_units) * _WEEKDAY_FACTOR[day.weekday()] * (Decimal("0.75") + jitter / 2)
    if event is not None:  # a spike: the factor times the account's size, whatever the jitter
        amount = Decimal(base_units) * event
    if generation:
        amount *= Decimal(1) + Decimal(generation) / Decimal(50)  # restated: 2% more a generation
    return amount.quantize(quantum)


def restated_generation(restate: dict | None, day: dt.date) -> int:
    """The generation in force for ``day`` under a restatement switch ``{"from": date, "generation": n}``."""
    if not restate:
        return 0
    start = restate.get("from")
    start = dt.date.fromisoformat(start) if isinstance(start, str) else start
    return int(restate.get("generation", 1)) if (start is None or day >= start) else 0


# Demo switches for alerts (POST /_sandbox/config {"events": [...]}; cleared by /_sandbox/reset):
# {"platform", "account", "kind": "stop", "from": day[, "to": day]} serves zero spend on those days;
# {"platform", "account", "kind": "spike", "day": day[, "factor": 10]} serves factor x the account's
# usual size that day. Module-level, so every sandbox of this process serves them.
_EVENTS: list[tuple[str, str, str, dt.date, dt.date, Decimal]] = []


def set_events(events) -> None:
    parsed = []
    for e in events or ():
        kind = e["kind"]
        if kind not in ("stop", "spike"):
            raise ValueError(f"unknown event kind {kind!r}; one of stop, spike")
        lo = dt.date.fromisoformat(e["from"] if kind == "stop" else e["day"])
        hi = dt.date.fromisoformat(e["to"]) if e.get("to") else (dt.date.max if kind == "stop" else lo)
        parsed.append((e["platform"], str(e["account"]), kind, lo, hi, Decimal(str(e.get("factor", 10)))))
    _EVENTS[:] = parsed


def _event(platform: str, account_id: str, day: dt.date):
    """ "stop", a spike's factor, or None for (platform, account, day). LinkedIn passes the digits of its URN."""
    for p, acc, kind, lo, hi, factor in _EVENTS:
        if p == platform and (acc == str(account_id) or acc.rsplit(":", 1)[-1] == str(account_id)) and lo <= day <= hi:
            return "stop" if kind == "stop" else factor
    return None
