"""Pacing and alerts: what needs an account manager, computed from stored data only (no API call).

The kinds are shared/interfaces.md's, each evaluated "as of" a day D (default: yesterday):

- ``stopped``: an account spent nothing (stored zero rows, never missing ones) on 2 or more days
  running, ending on its latest stored day up to D, after spending on most (more than 7) of the 14
  days before the first zero day. ``day`` is the first zero day.
- ``spike``: a day among the last :data:`SPIKE_LOOKBACK_DAYS` up to D whose spend is above 3 x the
  account's median over the previous 14 days (at least :data:`SPIKE_MIN_HISTORY` of them stored)
  and above 50 in the account's currency. ``day`` is that day.
- ``pacing``: a budget of D's month whose projected month-end spend is more than 10% over or under
  it. ``day`` is D.
- ``stale``: a linked platform (of the store) whose latest successful fetch is older than 2 days
  now (for an earlier D: at the end of the day after D), or never happened (a platform without
  credentials and without data is ``not_configured``, not stale). ``day`` is D.
- ``failed``: an account with days (of D's and the previous calendar month, up to D) whose latest
  fetch failed. ``day`` is the first such day.

Pacing: month-to-date spend (the 1st to D) in the store's billing currency, converted exactly as
``service/report.py`` does (``fx.convert_line``, each account rounded once). The projection adds,
for every remaining day of the month and every account, the account's average spend on that
weekday so far (over its days with data and a rate); a weekday not seen yet uses the account's
average over all those days. Pace is ``over`` / ``under`` beyond 10% of the budget, else ``on``. A day without
data or an account without a rate makes the projection incomplete, and it says so.

:func:`compute_alerts` and :func:`compute_pacing` are pure (inputs in, alerts out; table-tested in
tests/test_alerts.py); :func:`collect` reads the store and calls them. :func:`send_new_alerts`
POSTs alerts not sent before to a Slack/Teams incoming webhook (``{"text": ...}``), remembering
what was sent in ``alerts_sent``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import TYPE_CHECKING

from fetchers.specs import PLATFORM_IDS, SPECS

from . import fx
from .budgets import Budget

if TYPE_CHECKING:
    from storage.db import SpendStore

log = logging.getLogger("adspend.alerts")

KINDS = ("stopped", "spike", "pacing", "stale", "failed")
STOP_DAYS = 2  # zero days running
HISTORY_DAYS = 14  # "the last 14 days" / "the previous 14 days"
SPIKE_FACTOR = Decimal(3)
SPIKE_FLOOR = Decimal(50)  # in the account's currency
SPIKE_LOOKBACK_DAYS = 7  # spike days that stay open
SPIKE_MIN_HISTORY = 7  # stored days needed for a median
PACE_BAND = Decimal("0.10")
STALE_AFTER = dt.timedelta(days=2)
UTC = dt.UTC
# Sums and products of money are exact at this precision (amount x 28-digit rate); only the
# projection's averages are estimates, rounded once at the end.
_WIDE = Context(prec=1000, rounding=ROUND_HALF_UP)


# --- inputs and outputs of the pure functions ---------------------------------------------------


@dataclass(frozen=True)
class Link:
    """An account linked to a store, with its currency (None while never fetched)."""

    store_id: str
    platform: str
    account_id: str
    currency: str | None = None


@dataclass(frozen=True)
class DayRow:
    """One stored day of one account for one store: ``amount`` in the account's currency;
    ``billing`` the exact amount in the store's billing currency (None: no exchange rate; only
    needed for days of the pacing month)."""

    store_id: str
    platform: str
    account_id: str
    day: dt.date
    amount: Decimal
    billing: Decimal | None = None


@dataclass(frozen=True)
class FetchState:
    """Per (platform, account): the latest successful fetch, and the days whose latest fetch failed."""

    platform: str
    account_id: str
    last_success: dt.datetime | None = None
    failed_days: tuple[tuple[dt.date, str], ...] = ()


@dataclass(frozen=True)
class StoreInfo:
    store_id: str
    name: str
    billing_currency: str
    unconfigured: frozenset[str] = frozenset()  # platforms without credentials (real stores)


@dataclass(frozen=True)
class Alert:
    store_id: str
    platform: str | None
    account_id: str | None
    kind: str
    day: dt.date
    detail: str
    key: str = field(default="", compare=False)  # what makes it the same alert on a later run

    def to_json(self) -> dict:
        return {
            "store_id": self.store_id,
            "platform": self.platform,
            "account_id": self.account_id,
            "kind": self.kind,
            "day": self.day.isoformat(),
            "detail": self.detail,
        }

    def link(self) -> str:
        """The store page's URL query for the day (pacing: the month so far)."""
        start = self.day.replace(day=1) if self.kind == "pacing" else self.day
        return "?" + urllib.parse.urlencode(
            {"store": self.store_id, "start": start.isoformat(), "end": self.day.isoformat()}
        )


@dataclass(frozen=True)
class Pacing:
    store_id: str
    platform: str  # '' = the whole store
    month: dt.date
    as_of: dt.date
    currency: str
    budget: Decimal | None
    month_to_date: Decimal  # rounded to the billing currency
    projected: Decimal | None  # rounded; None without any complete day
    pace: str | None  # over / on / under; None without a budget or projection
    percent: Decimal | None  # projected vs budget, one decimal (+ over, - under)
    days_elapsed: int
    days_in_month: int
    complete: bool
    note: str | None = None  # why the figures are incomplete

    @property
    def label(self) -> str:
        return "whole store" if not self.platform else SPECS[self.platform].name


# --- small helpers ---------------------------------------------------------------------------------


def _name(platform: str | None) -> str:
    return SPECS[platform].name if platform in SPECS else (platform or "")


def _money(amount: Decimal, ccy: str) -> str:
    return f"{fx.quantize(amount, ccy):,f} {ccy}"


def _plain(amount: Decimal, ccy: str) -> str:
    """An account-currency figure: in the currency's minor units, or every stored digit when it has more."""
    try:
        q = fx.quantize(amount, ccy)
    except Exception:  # noqa: BLE001 - an unknown currency code: show as stored
        q = None
    return f"{q:,f}" if q is not None and q == amount else f"{amount.normalize():,f}"


def median(values: Sequence[Decimal]) -> Decimal:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


from .periods import month_end  # noqa: E402  (one periods module)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _pct(projected: Decimal, budget: Decimal) -> Decimal | None:
    if budget == 0:
        return None
    return ((projected - budget) * 100 / budget).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# --- pacing (pure) ---------------------------------------------------------------------------------


def compute_pacing(
    store: StoreInfo,
    links: Sequence[Link],
    rows: Iterable[DayRow],
    as_of: dt.date,
    budget: Decimal | None,
    platform: str = "",
) -> Pacing:
    """Month-to-date spend against ``budget`` (billing currency) for the month of ``as_of``, and
    the weekday-aware projection of the month's end. ``platform`` '' = every platform of the store."""
    with localcontext(_WIDE):
        return _pacing(store, links, rows, as_of, budget, platform)


def _pacing(
    store: StoreInfo,
    links: Sequence[Link],
    rows: Iterable[DayRow],
    as_of: dt.date,
    budget: Decimal | None,
    platform: str,
) -> Pacing:
    ccy = store.billing_currency
    first, last = as_of.replace(day=1), month_end(as_of)
    scope = [
        (l.platform, l.account_id)
        for l in links
        if l.store_id == store.store_id and (not platform or l.platform == platform)
    ]
    wanted = set(scope)
    by_acc: dict[tuple[str, str], dict[dt.date, DayRow]] = {k: {} for k in scope}
    for r in rows:
        k = (r.platform, r.account_id)
        if r.store_id == store.store_id and k in wanted and first <= r.day <= as_of:
            by_acc[k][r.day] = r
    days = _days(first, as_of)
    mtd = Decimal(0)
    no_rate: dict[tuple[str, str], int] = {}
    not_fetched = 0
    for k in scope:
        exact = sum((r.billing for r in by_acc[k].values() if r.billing is not None), Decimal(0))
        mtd += fx.quantize(exact, ccy)
        n = sum(1 for r in by_acc[k].values() if r.billing is None)
        if n:
            no_rate[k] = n
        not_fetched += sum(1 for d in days if d not in by_acc[k])
    notes = []
    if not scope:
        notes.append("no linked accounts" + (f" on {_name(platform)}" if platform else ""))
    if not_fetched:
        notes.append(f"{not_fetched} account-day(s) of {first:%Y-%m} up to {as_of} not fetched yet")
    for (p, a), n in sorted(no_rate.items()):
        notes.append(f"no exchange rate into {ccy} for {n} day(s) of {_name(p)} account {a}")
    # each account: the average of each weekday over its days with data and a rate so far
    remaining_days = _days(as_of + dt.timedelta(days=1), last)
    remaining, projected_any = Decimal(0), False
    for k in scope:
        known = {d: r.billing for d, r in by_acc[k].items() if r.billing is not None}
        if not known:
            continue
        projected_any = True
        overall = sum(known.values(), Decimal(0)) / len(known)
        per_wd: dict[int, list[Decimal]] = {}
        for d, v in known.items():
            per_wd.setdefault(d.weekday(), []).append(v)
        avg = {wd: sum(v, Decimal(0)) / len(v) for wd, v in per_wd.items()}
        remaining += sum((avg.get(d.weekday(), overall) for d in remaining_days), Decimal(0))
    projected = fx.quantize(mtd + remaining, ccy) if projected_any else None
    if scope and not projected_any:
        notes.append("no day of the month has data yet")
    pace = percent = None
    if budget is not None and projected is not None:
        if projected > budget * (1 + PACE_BAND):
            pace = "over"
        elif projected < budget * (1 - PACE_BAND):
            pace = "under"
        else:
            pace = "on"
        percent = _pct(projected, budget)
    return Pacing(
        store.store_id,
        platform,
        first,
        as_of,
        ccy,
        budget,
        mtd,
        projected,
        pace,
        percent,
        (as_of - first).days + 1,
        last.day,
        not notes,
        "; ".join(notes) or None,
    )


# --- alerts (pure) ---------------------------------------------------------------------------------


def _stopped(link: Link, days: Mapping[dt.date, Decimal], as_of: dt.date) -> Alert | None:
    stored = [d for d in days if d <= as_of]
    if not stored:
        return None
    end = max(stored)
    d, n = end, 0
    while d in days and days[d] == 0:
        n += 1
        d -= dt.timedelta(days=1)
    if n < STOP_DAYS:
        return None
    first_zero = d + dt.timedelta(days=1)
    before = [first_zero - dt.timedelta(days=i) for i in range(1, HISTORY_DAYS + 1)]
    spent = sum(1 for x in before if days.get(x, Decimal(0)) > 0)
    if spent * 2 <= HISTORY_DAYS:  # "most": more than half
        return None
    return Alert(
        link.store_id,
        link.platform,
        link.account_id,
        "stopped",
        first_zero,
        f"{_name(link.platform)} account {link.account_id} spent nothing for {n} days running "
        f"({first_zero} to {end}) after spending on {spent} of the {HISTORY_DAYS} days before.",
        first_zero.isoformat(),
    )


def _spikes(link: Link, days: Mapping[dt.date, Decimal], as_of: dt.date) -> list[Alert]:
    out = []
    ccy = link.currency or ""
    for back in range(SPIKE_LOOKBACK_DAYS - 1, -1, -1):
        d = as_of - dt.timedelta(days=back)
        amount = days.get(d)
        if amount is None or amount <= SPIKE_FLOOR:
            continue
        history = [days[x] for x in (d - dt.timedelta(days=i) for i in range(1, HISTORY_DAYS + 1)) if x in days]
        if len(history) < SPIKE_MIN_HISTORY:
            continue
        med = median(history)
        if amount <= SPIKE_FACTOR * med:
            continue
        ratio = (
            f"{(amount / med).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} x"
            if med > 0
            else "infinitely many times"
        )
        out.append(
            Alert(
                link.store_id,
                link.platform,
                link.account_id,
                "spike",
                d,
                f"{_name(link.platform)} account {link.account_id} spent {_plain(amount, ccy)} {ccy} on {d}, "
                f"{ratio} its median of {_plain(med, ccy)} {ccy} over the previous {len(history)} days "
                f"(alert above 3 x and above 50).".replace("  ", " "),
                d.isoformat(),
            )
        )
    return out


def _failed(link: Link, state: FetchState | None, as_of: dt.date) -> Alert | None:
    if state is None:
        return None
    lo = (as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    bad = sorted((d, e) for d, e in state.failed_days if lo <= d <= as_of)
    if not bad:
        return None
    first, last, error = bad[0][0], bad[-1][0], bad[-1][1]
    error = " ".join(str(error).split())
    if len(error) > 200:
        error = error[:197] + "..."
    span = f"{first}" if first == last else f"{first} to {last}"
    return Alert(
        link.store_id,
        link.platform,
        link.account_id,
        "failed",
        first,
        f"The latest fetch of {len(bad)} day(s) of {_name(link.platform)} account {link.account_id} "
        f"failed ({span}): {error.rstrip('.')}.",
        first.isoformat(),
    )


def reference_moment(as_of: dt.date, now: dt.datetime | None = None) -> dt.datetime:
    """When data "as of" a day is judged: now, but never later than the end of the day after it
    (the day a daily job looks at it); the end of that day when ``now`` is not given."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.max, UTC)
    return end if now is None else min(now.astimezone(UTC), end)


def _stale(
    store: StoreInfo,
    platform: str,
    links: Sequence[Link],
    states: Mapping[tuple[str, str], FetchState],
    has_data: bool,
    as_of: dt.date,
    now: dt.datetime | None,
) -> Alert | None:
    if platform in store.unconfigured and not has_data:
        return None  # not_configured: never an error
    times = [
        states[(l.platform, l.account_id)].last_success
        for l in links
        if (l.platform, l.account_id) in states and states[(l.platform, l.account_id)].last_success
    ]
    if not times:
        return Alert(
            store.store_id,
            platform,
            None,
            "stale",
            as_of,
            f"{_name(platform)} has never been fetched successfully for this store.",
            "never",
        )
    last = max(times).astimezone(UTC)
    ref = reference_moment(as_of, now)
    if ref - last <= STALE_AFTER:
        return None
    return Alert(
        store.store_id,
        platform,
        None,
        "stale",
        as_of,
        f"{_name(platform)}'s latest successful fetch was at {last:%Y-%m-%d %H:%M} UTC, more than 2 days "
        f"old on {ref:%Y-%m-%d}.",
        last.date().isoformat(),
    )


def compute_alerts(
    stores: Sequence[StoreInfo],
    links: Sequence[Link],
    rows: Sequence[DayRow],
    fetch: Sequence[FetchState],
    budgets: Sequence[Budget],
    as_of: dt.date,
    now: dt.datetime | None = None,
) -> list[Alert]:
    """Every alert as of ``as_of`` (see the module doc), sorted by store, kind, platform, account, day.
    ``now`` is when it is asked (for ``stale``; see :func:`reference_moment`)."""
    states = {(s.platform, s.account_id): s for s in fetch}
    per_link: dict[tuple[str, str, str], dict[dt.date, Decimal]] = {}
    for r in rows:
        per_link.setdefault((r.store_id, r.platform, r.account_id), {})[r.day] = r.amount
    alerts: list[Alert] = []
    by_store = {s.store_id: s for s in stores}
    for link in links:
        if link.store_id not in by_store:
            continue
        days = per_link.get((link.store_id, link.platform, link.account_id), {})
        a = _stopped(link, days, as_of)
        if a:
            alerts.append(a)
        alerts.extend(_spikes(link, days, as_of))
        a = _failed(link, states.get((link.platform, link.account_id)), as_of)
        if a:
            alerts.append(a)
    for s in stores:
        mine = [l for l in links if l.store_id == s.store_id]
        for p in PLATFORM_IDS:
            plinks = [l for l in mine if l.platform == p]
            if not plinks:
                continue
            has_data = any(per_link.get((s.store_id, p, l.account_id)) for l in plinks) or any(
                states.get((p, l.account_id))
                and (states[(p, l.account_id)].last_success or states[(p, l.account_id)].failed_days)
                for l in plinks
            )
            a = _stale(s, p, plinks, states, has_data, as_of, now)
            if a:
                alerts.append(a)
        month = as_of.replace(day=1)
        for b in budgets:
            if b.store_id != s.store_id or b.month != month:
                continue
            pc = compute_pacing(s, mine, rows, as_of, b.amount, b.platform)
            if pc.pace in ("over", "under"):
                alerts.append(_pacing_alert(pc))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(alerts, key=lambda a: (a.store_id, order[a.kind], a.platform or "", a.account_id or "", a.day))


def _pacing_alert(pc: Pacing) -> Alert:
    ccy = pc.currency
    scope = "" if not pc.platform else f"{_name(pc.platform)} "
    pct = f"{abs(pc.percent)}% {pc.pace}" if pc.percent is not None else pc.pace
    detail = (
        f"Projected {scope}spend for {pc.month:%Y-%m} is {_money(pc.projected, ccy)}, {pct} the budget of "
        f"{_money(pc.budget, ccy)} (month to date {_money(pc.month_to_date, ccy)} after {pc.days_elapsed} "
        f"of {pc.days_in_month} days)"
    )
    detail += f"; incomplete: {pc.note}." if pc.note else "."
    return Alert(pc.store_id, pc.platform or None, None, "pacing", pc.as_of, detail, f"{pc.month:%Y-%m}:{pc.pace}")


# --- reading the store (no API call) ---------------------------------------------------------------


@dataclass
class Inputs:
    stores: list[StoreInfo]
    links: list[Link]
    rows: list[DayRow]
    fetch: list[FetchState]
    budgets: list[Budget]
    as_of: dt.date


_STORES = "(CAST($ids AS VARCHAR[]) IS NULL OR list_contains(CAST($ids AS VARCHAR[]), store_id))"


def load_inputs(store: SpendStore, as_of: dt.date, store_ids: Sequence[str] | None = None, settings=None) -> Inputs:
    """Everything the pure functions need, read in one connection."""
    import pyarrow as pa

    first = as_of.replace(day=1)
    lo = min(first, as_of - dt.timedelta(days=HISTORY_DAYS + SPIKE_LOOKBACK_DAYS + 14))
    fail_lo = (first - dt.timedelta(days=1)).replace(day=1)
    ids = None if store_ids is None else list(store_ids)
    p = {"ids": ids}  # NULL: every store
    with store.connect() as con:
        metas = con.execute(
            f"SELECT store_id, name, billing_currency, is_demo FROM stores WHERE {_STORES} ORDER BY store_id", p
        ).fetchall()
        links = con.execute(
            f"SELECT a.store_id, a.platform, a.account_id, coalesce(i.currency, "
            f"(SELECT max(currency) FROM daily_spend d WHERE d.platform = a.platform AND d.account_id = a.account_id)) "
            f"FROM (SELECT * FROM ad_accounts WHERE {_STORES}) a LEFT JOIN account_info i "
            "ON i.platform = a.platform AND i.account_id = a.account_id ORDER BY 1, 2, 3",
            p,
        ).fetchall()
        keys = sorted({(r[1], r[2]) for r in links})
        spend, last_ok, fails = [], [], []
        if keys:
            con.register(
                "alert_keys",
                pa.table(
                    {
                        "platform": pa.array([k[0] for k in keys], pa.string()),
                        "account_id": pa.array([k[1] for k in keys], pa.string()),
                    }
                ),
            )
            spend = con.execute(
                "SELECT d.platform, d.account_id, d.day, d.amount FROM daily_spend d SEMI JOIN alert_keys k "
                "ON k.platform = d.platform AND k.account_id = d.account_id WHERE d.day BETWEEN ? AND ? "
                "ORDER BY 1, 2, 3",
                [lo, as_of],
            ).fetchall()
            last_ok = con.execute(
                "SELECT d.platform, d.account_id, max(d.fetched_at) FROM daily_spend d SEMI JOIN alert_keys k "
                "ON k.platform = d.platform AND k.account_id = d.account_id GROUP BY ALL"
            ).fetchall()
            fails = con.execute(
                "SELECT f.platform, f.account_id, f.day, f.error FROM fetch_failures f SEMI JOIN alert_keys k "
                "ON k.platform = f.platform AND k.account_id = f.account_id WHERE f.day BETWEEN ? AND ? "
                "ORDER BY 1, 2, 3",
                [fail_lo, as_of],
            ).fetchall()
            con.unregister("alert_keys")
        budget_rows = con.execute(
            f"SELECT store_id, month, platform, amount, currency FROM budgets WHERE {_STORES} "
            "AND month = $month ORDER BY 1, 2, 3",
            {**p, "month": first},
        ).fetchall()
    stores = []
    for sid, name, ccy, is_demo in metas:
        unconfigured: set[str] = set()
        if not is_demo:
            unconfigured = _unconfigured(settings, {r[1] for r in links if r[0] == sid})
        stores.append(StoreInfo(sid, name, ccy, frozenset(unconfigured)))
    billing = {s.store_id: s.billing_currency for s in stores}
    link_objs = [Link(r[0], r[1], r[2], r[3]) for r in links]
    daily: dict[tuple[str, str], dict[dt.date, Decimal]] = {}
    for pl, acc, day, amount in spend:
        daily.setdefault((pl, acc), {})[day] = Decimal(amount)
    from .fxrates import rates_for  # the rate set spend_report uses: demo stores the demo one

    demo_of = {sid: bool(is_demo) for sid, _, _, is_demo in metas}
    rate_sets = {d: rates_for(store, d) for d in set(demo_of.values())}
    rows: list[DayRow] = []
    for link in link_objs:
        days = daily.get((link.platform, link.account_id), {})
        if not days:
            continue
        ccy, bccy = link.currency or "?", billing[link.store_id]
        month_days = {d: v for d, v in days.items() if d >= first}
        rates: Mapping = {}
        if ccy != bccy and month_days:
            rates = (
                fx.convert_line(month_days, ccy, bccy, rates=rate_sets[demo_of[link.store_id]]).rates
                if ccy != "?"
                else {}
            )
        for d, v in sorted(days.items()):
            b = None
            if d >= first:
                if ccy == bccy:
                    b = v
                elif d in rates:
                    b = _WIDE.multiply(v, rates[d].rate)  # exact, as fx.convert_line
            rows.append(DayRow(link.store_id, link.platform, link.account_id, d, v, b))
    by_key: dict[tuple[str, str], list[tuple[dt.date, str]]] = {}
    for pl, acc, day, err in fails:
        by_key.setdefault((pl, acc), []).append((day, err))
    ok = {(pl, acc): t for pl, acc, t in last_ok}
    fetch = [FetchState(pl, acc, ok.get((pl, acc)), tuple(by_key.get((pl, acc), ()))) for pl, acc in keys]
    budgets = [Budget(r[0], r[1], r[2], Decimal(r[3]), r[4]) for r in budget_rows]
    return Inputs(stores, link_objs, rows, fetch, budgets, as_of)


def _unconfigured(settings, platforms: set[str]) -> set[str]:
    if not platforms:
        return set()
    from .config import load_settings, platform_config

    settings = settings or load_settings()
    out = set()
    for p in platforms:
        cfg = platform_config(settings, p)
        if not cfg.usable and not cfg.error:
            out.add(p)
    return out


def collect(
    store: SpendStore,
    as_of: dt.date,
    store_ids: Sequence[str] | None = None,
    settings=None,
    now: dt.datetime | None = None,
) -> list[Alert]:
    """The alerts as of ``as_of`` from stored data (no API call), judged now (``fetchers.clock``)."""
    from fetchers import clock

    i = load_inputs(store, as_of, store_ids, settings)
    return compute_alerts(i.stores, i.links, i.rows, i.fetch, i.budgets, i.as_of, now or clock.now())


def store_pacing(store: SpendStore, store_id: str, as_of: dt.date, settings=None) -> list[Pacing]:
    """The store's pacing as of ``as_of``: the whole store first (with its budget, if any), then
    each platform that has a budget."""
    i = load_inputs(store, as_of, [store_id], settings)
    if not i.stores:
        return []
    s = i.stores[0]
    budgets = {b.platform: b.amount for b in i.budgets if b.store_id == store_id}
    out = [compute_pacing(s, i.links, i.rows, as_of, budgets.get(""), "")]
    out += [compute_pacing(s, i.links, i.rows, as_of, amount, p) for p, amount in sorted(budgets.items()) if p]
    return out


def portfolio_pacing(store: SpendStore, as_of: dt.date, settings=None) -> dict[str, Pacing]:
    """Whole-store pacing of every store (for the portfolio page's pace column)."""
    i = load_inputs(store, as_of, None, settings)
    budgets = {b.store_id: b.amount for b in i.budgets if not b.platform}
    return {s.store_id: compute_pacing(s, i.links, i.rows, as_of, budgets.get(s.store_id), "") for s in i.stores}


# --- the webhook ---------------------------------------------------------------------------------

WEBHOOK_ENV = "ADSPEND_ALERT_WEBHOOK_URL"
MAX_PER_MESSAGE = 25


@dataclass
class SendResult:
    new: int = 0
    sent: int = 0
    error: str | None = None


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_text(alerts: Sequence[Alert], names: Mapping[str, str] | None = None) -> str:
    names = names or {}
    head = f"Ad Spend Hub: {len(alerts)} new alert{'s' if len(alerts) != 1 else ''}"
    lines = []
    for a in alerts:
        who = names.get(a.store_id) or a.store_id
        where = " ".join(x for x in (_name(a.platform) if a.platform else "", a.account_id or "") if x)
        lines.append(f"• {a.kind} · {who}{' · ' + where if where else ''} · {a.day}: {a.detail}")
    return _slack_escape("\n".join([head, *lines]))


def _host(url: str) -> str:
    """The webhook's host only: the path of an incoming-webhook URL is its secret."""
    try:
        return urllib.parse.urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def post_webhook(
    url: str, payload: dict, *, timeout: float = 10.0, attempts: int = 3, backoff: float = 0.25
) -> str | None:
    """POST ``payload`` as JSON; retried on connection errors, timeouts, 429 and 5xx, at most
    ``attempts`` times, each with ``timeout`` seconds. Returns None on success, else one sentence
    (naming the host only, never the URL's secret path)."""
    import urllib.error
    import urllib.request

    body = json.dumps(payload).encode("utf-8")
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        return f"{WEBHOOK_ENV} is not an http(s) URL; nothing was sent"
    why = "no attempt made"
    for attempt in range(1, max(1, attempts) + 1):
        retry_after = None
        try:
            req = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "adspend-alerts"},
            )
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read(65536)
                return None
        except urllib.error.HTTPError as exc:
            why = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                return f"the alert webhook at {_host(url)} refused the message ({why}); check {WEBHOOK_ENV}"
            try:
                retry_after = float(exc.headers.get("Retry-After") or "")
            except ValueError:
                retry_after = None
        except (TimeoutError, OSError) as exc:  # URLError, timeouts, refused connections
            reason = getattr(exc, "reason", exc)
            why = (
                f"no answer within {timeout:g} s"
                if isinstance(reason, TimeoutError) or "timed out" in str(reason)
                else f"connection failed ({type(reason).__name__})"
            )
        except ValueError:
            return f"{WEBHOOK_ENV} is not a usable http(s) URL; nothing was sent"
        if attempt < attempts:
            time.sleep(min(retry_after if retry_after is not None else backoff * 2 ** (attempt - 1), 5.0))
    return f"the alert webhook at {_host(url)} failed after {attempts} attempt(s): {why}"


def _sent_keys(store: SpendStore) -> set[tuple[str, str, str, str, str]]:
    return {tuple(r) for r in store.query("SELECT store_id, platform, account_id, kind, alert_key FROM alerts_sent")}


def _key(a: Alert) -> tuple[str, str, str, str, str]:
    return (a.store_id, a.platform or "", a.account_id or "", a.kind, a.key)


def send_new_alerts(
    store: SpendStore,
    alerts: Sequence[Alert],
    url: str,
    *,
    timeout: float | None = None,
    attempts: int | None = None,
    backoff: float = 0.25,
) -> SendResult:
    """POST the alerts not sent before (in messages of at most :data:`MAX_PER_MESSAGE`) and
    remember each message's alerts once it was accepted. A failure stops there: what was not
    sent is sent by a later run."""
    import pyarrow as pa

    timeout = timeout if timeout is not None else float(os.environ.get("ADSPEND_ALERT_WEBHOOK_TIMEOUT", "10"))
    attempts = attempts if attempts is not None else int(os.environ.get("ADSPEND_ALERT_WEBHOOK_ATTEMPTS", "3"))
    sent = _sent_keys(store)
    new, seen = [], set()
    for a in alerts:
        k = _key(a)
        if k not in sent and k not in seen:
            new.append(a)
            seen.add(k)
    result = SendResult(new=len(new))
    if not new:
        return result
    names = {s["store_id"]: s["name"] for s in store.stores()}
    for i in range(0, len(new), MAX_PER_MESSAGE):
        chunk = new[i : i + MAX_PER_MESSAGE]
        error = post_webhook(
            url, {"text": message_text(chunk, names)}, timeout=timeout, attempts=attempts, backoff=backoff
        )
        if error:
            result.error = error
            break
        now = dt.datetime.now(UTC)
        with store.transaction() as con:
            con.register(
                "sent_now",
                pa.table(
                    {
                        "store_id": pa.array([a.store_id for a in chunk], pa.string()),
                        "platform": pa.array([a.platform or "" for a in chunk], pa.string()),
                        "account_id": pa.array([a.account_id or "" for a in chunk], pa.string()),
                        "kind": pa.array([a.kind for a in chunk], pa.string()),
                        "alert_key": pa.array([a.key for a in chunk], pa.string()),
                        "day": pa.array([a.day for a in chunk], pa.date32()),
                        "detail": pa.array([a.detail for a in chunk], pa.string()),
                    }
                ),
            )
            con.execute(
                "INSERT INTO alerts_sent SELECT store_id, platform, account_id, kind, alert_key, day, "
                "detail, ? FROM sent_now ON CONFLICT DO NOTHING",
                [now],
            )
            con.unregister("sent_now")
        result.sent += len(chunk)
    return result


# --- CLI ---------------------------------------------------------------------------------------------


def cmd_alerts(args) -> int:
    from fetchers import clock
    from storage.db import DatabaseBusy, DatabaseError, SpendStore

    path = args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb"
    try:
        store = SpendStore(path)
    except (DatabaseBusy, DatabaseError) as exc:
        print(f"error: {exc}", file=__import__("sys").stderr)
        return 1
    if args.store and store.store(args.store) is None:
        raise ValueError(f"unknown store {args.store!r}; see `python cli.py accounts list`")
    as_of = args.date or clock.yesterday()
    alerts = collect(store, as_of, [args.store] if args.store else None)
    if args.json:
        print(json.dumps([a.to_json() for a in alerts], indent=2))
    else:
        for a in alerts:
            where = " ".join(x for x in (a.platform or "-", a.account_id or "") if x)
            print(f"{a.store_id:<16} {a.kind:<8} {where:<40} {a.day}  {a.detail}")
        print(f"{len(alerts)} alert(s) as of {as_of}")
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url and alerts:
        res = send_new_alerts(store, alerts, url)
        import sys

        if res.error:
            print(
                f"warning: {res.error}; {res.new - res.sent} new alert(s) not sent (a later run sends them)",
                file=sys.stderr,
            )
        elif res.new and not args.json:
            print(f"sent {res.sent} new alert(s) to the webhook at {_host(url)}")
    return 1 if alerts else 0


def add_cli(subparsers, date_type, parser_class) -> None:
    """``alerts`` and ``budgets import`` (cli.py calls this)."""
    from . import budgets

    al = subparsers.add_parser("alerts", help="stopped, spike, pacing, stale and failed alerts (exit 1 when any)")
    al.add_argument("--store")
    al.add_argument("--date", type=date_type, help="as of this day (default: yesterday)")
    al.add_argument("--json", action="store_true")
    al.set_defaults(handler=cmd_alerts)
    bu = subparsers.add_parser("budgets", help="monthly spend budgets per store (and platform)")
    bsub = bu.add_subparsers(dest="action", required=True, parser_class=parser_class)
    imp = bsub.add_parser("import", help="import budgets from a CSV (store_id,month,amount[,platform])")
    imp.add_argument("file")
    imp.set_defaults(handler=budgets.cmd_import)
