"""Scheduled refresh and data freshness: what ``refresh --recent`` fetches, what ``status``
reports, and what a platform no longer serves (retention).

The daily job (``python cli.py refresh --all --recent``) needs no dates. Per platform and
account it fetches

- the platform's restatement window up to yesterday: the ``lookback_days`` days before today
  (a day can still change until ``lookback_days`` after it), always;
- every earlier day of the current and previous calendar month that is missing, failed, or was
  fetched while it could still change, as long as the platform still serves it
  (``history_days``: Amazon Ads keeps 60 days).

So a second run on the same day asks for nothing but each platform's restatement window.

``store_status`` answers, per store and platform: the last day with stored data, when it was
last fetched successfully, the pending days (missing or failed days of the current and previous
month that a refresh can still fetch) and the unfetchable days (missing or failed days that the
platform no longer serves). ``cli.py status`` and the store page's "data as of" both read it.

"Today" is ``fetchers.clock.today()`` (UTC) everywhere here, as in the refresh service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fetchers import clock
from fetchers.specs import PLATFORM_IDS, SPECS
from storage.db import SpendStore

DAY = dt.timedelta(days=1)


# --- platform limits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    platform: str
    lookback_days: int  # a day may still change this many days after it
    history_days: int | None  # how far back the platform serves data (None: no known cap)


def limits(platform: str) -> Limits:
    """The platform's restatement window and retention, from its registry entry."""
    s = SPECS[platform]
    return Limits(platform, s.lookback_days, s.history_days or None)


def oldest_servable(platform: str, today: dt.date | None = None) -> dt.date | None:
    """The oldest day the platform still serves (``history_days`` before today), or None."""
    history = limits(platform).history_days
    if not history:
        return None
    return (today or clock.today()) - dt.timedelta(days=history)


def keeps(platform: str) -> str:
    """``Amazon Ads keeps 60 days``."""
    return f"{SPECS[platform].name} keeps {limits(platform).history_days} days"


def cannot_fetch(platform: str) -> str:
    """The one phrase for days older than the platform serves: never "a refresh fixes it"."""
    return f"cannot be fetched any more ({keeps(platform)})"


from .periods import month_start, previous_month_start  # noqa: E402,F401  (one periods module)

# --- the plan of `refresh --recent` ------------------------------------------------------------


@dataclass(frozen=True)
class RecentBounds:
    """What ``refresh --recent`` looks at for one platform on one day (all inclusive)."""

    window_start: dt.date  # [window_start, end] is the restatement window: always fetched
    scan_start: dt.date  # [scan_start, end]: missing, failed or unsettled days are fetched
    end: dt.date  # yesterday

    @property
    def start(self) -> dt.date:
        return min(self.window_start, self.scan_start)


def recent_bounds(lookback_days: int, history_days: int | None, today: dt.date) -> RecentBounds:
    """Pure: the restatement window (``lookback_days`` days up to yesterday) and the scan range
    (the current and previous calendar month up to yesterday), both cut at the oldest day the
    platform serves."""
    end = today - DAY
    window_start = today - dt.timedelta(days=max(1, int(lookback_days)))
    scan_start = previous_month_start(today)
    if history_days:
        oldest = today - dt.timedelta(days=int(history_days))
        window_start, scan_start = max(window_start, oldest), max(scan_start, oldest)
    return RecentBounds(window_start, scan_start, end)


def recent_period(today: dt.date | None = None, platforms: Iterable[str] = PLATFORM_IDS) -> tuple[dt.date, dt.date]:
    """The whole range a ``--recent`` run may touch (recorded as the run's period)."""
    today = today or clock.today()
    known = [p for p in platforms if p in SPECS] or list(PLATFORM_IDS)  # unknown ids: refresh says so
    bounds = [recent_bounds(lim.lookback_days, lim.history_days, today) for lim in map(limits, known)]
    return min(b.start for b in bounds), today - DAY


def recent_days(
    store: SpendStore, accounts: Sequence[tuple[str, str]], today: dt.date | None = None, now: dt.datetime | None = None
) -> dict[tuple[str, str], list[dt.date]]:
    """Per (platform, account_id): the days ``refresh --recent`` fetches (see the module doc).
    One query (``SpendStore.days_to_fetch``) for every account."""
    today = today or clock.today()
    now = now or clock.now()
    if not accounts:
        return {}
    bounds = {}
    for p, a in accounts:
        lim = limits(p)
        bounds[(p, a)] = (lim.lookback_days, recent_bounds(lim.lookback_days, lim.history_days, today))
    lo = min(b.start for _, b in bounds.values())
    end = today - DAY
    need = store.days_to_fetch([(p, a, lb) for (p, a), (lb, _) in bounds.items()], lo, end, now=now)
    out: dict[tuple[str, str], list[dt.date]] = {}
    for key, (_lb, b) in bounds.items():
        days = {d for d in need.get(key, []) if b.scan_start <= d <= b.end}
        d = b.window_start
        while d <= b.end:
            days.add(d)
            d += DAY
        out[key] = sorted(days)
    return out


# --- status ----------------------------------------------------------------------------------------


@dataclass
class AccountFreshness:
    account_id: str
    last_day: dt.date | None
    fetched_at: dt.datetime | None
    pending: set[dt.date] = field(default_factory=set)
    unfetchable: set[dt.date] = field(default_factory=set)

    def to_json(self) -> dict:
        return {
            "account_id": self.account_id,
            "last_day": _iso(self.last_day),
            "fetched_at": _iso(self.fetched_at),
            "pending_days": len(self.pending),
            "unfetchable_days": len(self.unfetchable),
        }


@dataclass
class PlatformFreshness:
    platform: str
    accounts: list[AccountFreshness]
    oldest_servable: dt.date | None

    @property
    def last_day(self) -> dt.date | None:
        """The day up to which every account has stored data (the oldest account's last day)."""
        days = [a.last_day for a in self.accounts]
        return None if not days or None in days else min(days)

    @property
    def fetched_at(self) -> dt.datetime | None:
        """The oldest of the accounts' latest successful fetches (None if one never succeeded)."""
        times = [a.fetched_at for a in self.accounts]
        return None if not times or None in times else min(times)

    @property
    def pending_days(self) -> int:
        return len(set().union(*(a.pending for a in self.accounts)))

    @property
    def unfetchable_days(self) -> int:
        return len(set().union(*(a.unfetchable for a in self.accounts)))

    @property
    def name(self) -> str:
        return SPECS[self.platform].name if self.platform in SPECS else self.platform

    def as_of(self) -> str:
        """``data as of 2026-12-02 (fetched 2026-12-03 05:10 UTC); 3 day(s) pending``."""
        if self.last_day is None:
            text = "no data yet" if all(a.last_day is None for a in self.accounts) else "no data yet for some accounts"
        else:
            text = f"data as of {self.last_day}"
        if self.fetched_at is not None:
            text += f" (fetched {self.fetched_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)"
        if self.pending_days:
            text += f"; {self.pending_days} day(s) to fetch"
        if self.unfetchable_days:
            text += f"; {self.unfetchable_days} day(s) {cannot_fetch(self.platform)}"
        return text

    def to_json(self) -> dict:
        return {
            "last_day": _iso(self.last_day),
            "fetched_at": _iso(self.fetched_at),
            "pending_days": self.pending_days,
            "unfetchable_days": self.unfetchable_days,
            "oldest_servable": _iso(self.oldest_servable),
            "accounts": [a.to_json() for a in self.accounts],
        }


@dataclass
class StoreFreshness:
    store_id: str
    name: str
    platforms: dict[str, PlatformFreshness]

    def to_json(self) -> dict:
        return {
            "store_id": self.store_id,
            "name": self.name,
            "platforms": {p: pf.to_json() for p, pf in self.platforms.items()},
        }


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


_STATUS_SQL = """
    WITH acc AS (SELECT DISTINCT platform, account_id FROM ad_accounts WHERE {store_filter}),
    last AS (SELECT d.platform, d.account_id, max(d.day) AS last_day, max(d.fetched_at) AS fetched_at
             FROM daily_spend d SEMI JOIN acc a ON a.platform = d.platform AND a.account_id = d.account_id
             GROUP BY ALL)
    SELECT a.platform, a.account_id, l.last_day, l.fetched_at FROM acc a
    LEFT JOIN last l ON l.platform = a.platform AND l.account_id = a.account_id"""

_GAPS_SQL = """
    WITH acc AS (SELECT DISTINCT platform, account_id FROM ad_accounts WHERE {store_filter}),
    days AS (SELECT CAST(d AS DATE) AS day FROM generate_series(CAST($lo AS DATE), CAST($hi AS DATE),
                                                                 INTERVAL 1 DAY) t(d))
    SELECT a.platform, a.account_id, days.day FROM acc a CROSS JOIN days
    LEFT JOIN daily_spend s ON s.platform = a.platform AND s.account_id = a.account_id AND s.day = days.day
    LEFT JOIN fetch_failures f ON f.platform = a.platform AND f.account_id = a.account_id AND f.day = days.day
    WHERE s.day IS NULL OR f.day IS NOT NULL
    UNION
    SELECT f.platform, f.account_id, f.day FROM fetch_failures f
    SEMI JOIN acc a ON a.platform = f.platform AND a.account_id = f.account_id
    WHERE f.day < $lo"""


def store_status(
    store: SpendStore, store_ids: Sequence[str] | None = None, today: dt.date | None = None
) -> list[StoreFreshness]:
    """Freshness of every store (or of ``store_ids``), per linked platform, in store id order.

    Pending: the missing or failed days of the current and previous calendar month up to
    yesterday that the platform still serves. Unfetchable: missing or failed days it no longer
    serves (those of the two months, and any older recorded failure)."""
    today = today or clock.today()
    lo, hi = previous_month_start(today), today - DAY
    ids = None if store_ids is None else list(store_ids)
    store_filter = "TRUE" if ids is None else "list_contains($ids, store_id)"  # code, never a value
    params: dict = {} if ids is None else {"ids": ids}
    with store.connect() as con:
        stores = con.execute(
            f"SELECT store_id, name FROM stores WHERE {store_filter} ORDER BY store_id", params
        ).fetchall()
        links = con.execute(
            f"SELECT store_id, platform, account_id FROM ad_accounts WHERE {store_filter} "
            "ORDER BY store_id, platform, account_id",
            params,
        ).fetchall()
        last = {
            (p, a): (d, f)
            for p, a, d, f in con.execute(_STATUS_SQL.format(store_filter=store_filter), params).fetchall()
        }
        gaps: dict[tuple[str, str], list[dt.date]] = {}
        for p, a, d in con.execute(
            _GAPS_SQL.format(store_filter=store_filter), {**params, "lo": lo, "hi": hi}
        ).fetchall():
            gaps.setdefault((p, a), []).append(d)
    oldest = {p: oldest_servable(p, today) for p in {lk[1] for lk in links}}
    accounts: dict[tuple[str, str, str], AccountFreshness] = {}
    for sid, p, a in links:
        d, f = last.get((p, a), (None, None))
        acc = accounts[(sid, p, a)] = AccountFreshness(a, d, f)
        for day in gaps.get((p, a), []):
            if oldest[p] is not None and day < oldest[p]:
                acc.unfetchable.add(day)
            elif day >= lo:  # older failures a refresh could still fix are outside the scope
                acc.pending.add(day)
    out = []
    for sid, name in stores:
        platforms: dict[str, PlatformFreshness] = {}
        for pid in PLATFORM_IDS:
            accs = [acc for (s, p, _a), acc in accounts.items() if s == sid and p == pid]
            if accs:
                platforms[pid] = PlatformFreshness(pid, accs, oldest[pid])
        out.append(StoreFreshness(sid, name, platforms))
    return out


def status_json(store: SpendStore, store_ids: Sequence[str] | None = None, today: dt.date | None = None) -> dict:
    """The ``status --json`` document (shared/interfaces.md)."""
    return {
        "today": (today or clock.today()).isoformat(),
        "stores": [s.to_json() for s in store_status(store, store_ids, today)],
    }


def data_as_of(store: SpendStore, store_id: str, today: dt.date | None = None) -> list[tuple[str, str, str]]:
    """The store page's "data as of" lines: (platform id, platform name, text), from ``store_status``."""
    found = store_status(store, [store_id], today)
    if not found:
        return []
    return [(p, pf.name, pf.as_of()) for p, pf in found[0].platforms.items()]


# --- retention: days a platform no longer serves ------------------------------------------------

_LOST_SQL = """
    WITH lost_keys AS (SELECT unnest($platform::VARCHAR[]) AS platform, unnest($account_id::VARCHAR[]) AS account_id,
                              unnest($lo::DATE[]) AS lo, unnest($hi::DATE[]) AS hi, unnest($oldest::DATE[]) AS oldest),
    days AS (SELECT k.platform, k.account_id, CAST(t.d AS DATE) AS day, k.oldest FROM lost_keys k,
                  generate_series(CAST(k.lo AS DATE), CAST(k.hi AS DATE), INTERVAL 1 DAY) t(d)),
    -- the period's rows of these accounts only (a range on ``day``: zonemaps skip the rest)
    s AS (SELECT d.platform, d.account_id, d.day FROM daily_spend d
          SEMI JOIN lost_keys k ON k.platform = d.platform AND k.account_id = d.account_id
          WHERE d.day BETWEEN $first AND $last),
    f AS (SELECT d.platform, d.account_id, d.day FROM fetch_failures d
          SEMI JOIN lost_keys k ON k.platform = d.platform AND k.account_id = d.account_id
          WHERE d.day BETWEEN $first AND $last)
    SELECT days.platform, days.account_id, count(*) FILTER (WHERE days.day < days.oldest),
           count(*) FILTER (WHERE days.day >= days.oldest)
    FROM days
    LEFT JOIN s ON s.platform = days.platform AND s.account_id = days.account_id AND s.day = days.day
    LEFT JOIN f ON f.platform = days.platform AND f.account_id = days.account_id AND f.day = days.day
    WHERE s.day IS NULL OR f.day IS NOT NULL
    GROUP BY ALL"""


@dataclass(frozen=True)
class Lost:
    """Of one account's missing or failed days in a period: how many the platform no longer
    serves, and how many a refresh can still fetch."""

    lost: int
    fixable: int
    oldest: dt.date


def lost_days(
    con,
    keys: Iterable[tuple[str, str]],
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
    complete: Iterable[tuple[str, str]] = (),
) -> dict[tuple[str, str], Lost]:
    """Per (platform, account_id) whose platform's retention cuts into ``start..end``: the missing
    or failed days before the oldest servable day (``lost``) and from it on (``fixable``).
    Accounts of platforms without a cut inside the period are left out. ``complete``: keys the
    caller knows have every day of the period stored and none failed (nothing to count: no
    query for them). ``con``: an open connection (this runs inside the caller's)."""
    today = today or clock.today()
    whole = set(complete)
    rows, out = [], {}
    for p, a in sorted(set(keys)):
        oldest = oldest_servable(p, today) if p in SPECS else None
        if oldest is not None and start < oldest:
            if (p, a) in whole:
                out[(p, a)] = Lost(0, 0, oldest)
            else:
                rows.append((p, a, start, end, oldest))
    if not rows:
        return out
    # the keys as list parameters: a registered Arrow table imports pandas (0.25 s of a CLI run)
    params: dict = {
        name: [r[i] for r in rows] for i, name in enumerate(("platform", "account_id", "lo", "hi", "oldest"))
    }
    params["first"], params["last"] = start, end
    found = {(p, a): (int(n_lost), int(n_fix)) for p, a, n_lost, n_fix in con.execute(_LOST_SQL, params).fetchall()}
    out.update({(p, a): Lost(*found.get((p, a), (0, 0)), cut) for p, a, _lo, _hi, cut in rows})
    return out


def retention_error(
    platform: str, status: str, error: str | None, lost: Lost, start: dt.date, end: dt.date
) -> str | None:
    """A spend report line's error, told honestly when some of its days are past retention."""
    if not lost.lost:
        return error
    if status == "missing":
        if not lost.fixable:
            return f"never fetched for {start}..{end}, and these days {cannot_fetch(platform)}"
        return (
            f"never fetched for {start}..{end}: a refresh fetches the days from {lost.oldest}; the "
            f"{lost.lost} day(s) before {lost.oldest} {cannot_fetch(platform)}"
        )
    return (f"{error}; " if error else "") + f"{lost.lost} day(s) before {lost.oldest} {cannot_fetch(platform)}"


@dataclass(frozen=True)
class RetentionNote:
    platform: str
    oldest: dt.date
    days: int  # missing or failed days of the period before ``oldest``
    message: str


def retention_notes(
    store: SpendStore, store_id: str, start: dt.date, end: dt.date, today: dt.date | None = None
) -> list[RetentionNote]:
    """Per linked platform whose retention cuts into the period and leaves days missing or
    failed there: one sentence saying those days cannot be fetched any more."""
    keys = [(r["platform"], r["account_id"]) for r in store.accounts([store_id])]
    with store.connect() as con:
        lost = lost_days(con, keys, start, end, today)
    by_platform: dict[str, list[Lost]] = {}
    for (p, _a), lo in lost.items():
        by_platform.setdefault(p, []).append(lo)
    notes = []
    for p in PLATFORM_IDS:
        items = by_platform.get(p)
        if not items or not any(x.lost for x in items):
            continue
        oldest = items[0].oldest
        n = max(x.lost for x in items)
        last = min(end, oldest - DAY)
        notes.append(
            RetentionNote(
                p,
                oldest,
                n,
                f"{SPECS[p].name}: {n} day(s) of {start}..{last} {cannot_fetch(p)}; a refresh cannot fix them.",
            )
        )
    return notes


def period_note(start: dt.date, end: dt.date, platforms: Iterable[str], today: dt.date | None = None) -> str | None:
    """For a period picker: which platforms' retention the period reaches past, or None."""
    today = today or clock.today()
    past, linked = [], set(platforms)
    for p in PLATFORM_IDS:
        if p not in linked:
            continue
        oldest = oldest_servable(p, today)
        if oldest is not None and start < oldest:
            past.append(f"{SPECS[p].name} keeps {limits(p).history_days} days (nothing before {oldest})")
    if not past:
        return None
    return (
        "This period reaches past what the platforms serve: "
        + "; ".join(past)
        + ". Days before that which are not stored cannot be fetched any more."
    )


# --- the demo's first start ------------------------------------------------------------------------


def demo_never_fetched(store: SpendStore) -> list[str]:
    """The demo store ids when no demo store was ever refreshed (no run named one, and nothing is
    stored for their accounts); [] otherwise (or when there are no demo stores)."""
    with store.connect() as con:
        ids = [r[0] for r in con.execute("SELECT store_id FROM stores WHERE is_demo ORDER BY store_id").fetchall()]
        if not ids:
            return []
        tried = con.execute(
            "SELECT count(*) FROM refresh_runs WHERE len(list_intersect(string_split(stores, ','), $ids)) > 0",
            {"ids": ids},
        ).fetchone()[0]
        stored = con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM daily_spend d SEMI JOIN ad_accounts a ON a.platform = d.platform "
            "AND a.account_id = d.account_id AND list_contains($ids, a.store_id) LIMIT 1)",
            {"ids": ids},
        ).fetchone()[0]
    return [] if tried or stored else ids
