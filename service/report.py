"""What a store spent in a period, read from the spend store only (no API call).

``spend_report`` builds the ``spend --json`` document of shared/interfaces.md: per platform a
status and the spend in the store's billing currency, per account the spend in the account's
currency with the effective FX rate, and ``complete`` only when every linked platform is ``ok``.
Statuses are derived from what is stored, never guessed:

- ``failed``: the latest fetch of some day failed (its earlier amount, if any, is still shown);
- ``missing``: linked but never fetched for the whole range;
- ``partial``: some days (or some accounts) have no data, including days not yet over;
- ``fx_missing``: no exchange rate for some day;
- ``not_configured``: no credentials, and nothing stored for the range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from fetchers import clock
from fetchers.specs import PLATFORM_IDS, SPECS
from storage.db import SpendStore

from . import freshness, fx
from .config import Settings, load_settings, platform_config

if TYPE_CHECKING:
    import pyarrow as pa

STATUS_ORDER = ("failed", "fx_missing", "missing", "partial", "ok", "not_configured")


@dataclass
class AccountLine:
    platform: str
    account_id: str
    account_name: str
    currency: str
    spend: Decimal  # exact, account currency
    billing_amount: Decimal | None  # rounded to the billing currency; None when fx_missing
    fx_rate: Decimal | None
    days: int  # days with data in the range
    days_expected: int
    failed_days: int
    status: str
    error: str | None
    day_basis: str
    timezone: str
    last_fetched: dt.datetime | None
    first_fetched: dt.datetime | None
    fx_note: str | None = None
    lost_days: int = 0  # missing or failed days older than the platform serves
    fixable: bool = True  # can a refresh fix this line's problem days?
    oldest_servable: dt.date | None = None  # set when the platform's retention cuts into the period


@dataclass
class PlatformLine:
    platform: str
    status: str
    error: str | None
    spend: Decimal  # billing currency, sum of rounded account lines
    accounts: list[AccountLine] = field(default_factory=list)


@dataclass
class SpendReport:
    store_id: str
    store_name: str
    start: dt.date
    end: dt.date
    billing_currency: str
    platforms: dict[str, PlatformLine]
    total: Decimal
    rates: fx.RateSet | None = field(default=None, repr=False, compare=False)  # the rates converted with

    @property
    def complete(self) -> bool:
        # a linked platform that is not configured is spend we do not know: not complete
        return bool(self.platforms) and all(p.status == "ok" for p in self.platforms.values())

    def to_json(self) -> dict:
        ccy = self.billing_currency
        platforms = {}
        for pid, pl in self.platforms.items():
            entry = {
                "status": pl.status,
                "spend": str(fx.quantize(pl.spend, ccy)),
                "accounts": [
                    {
                        "account_id": a.account_id,
                        "account_name": a.account_name,
                        "currency": a.currency,
                        "spend": str(fx.quantize(a.spend, a.currency)),
                        "fx_rate": _fmt_rate(a.fx_rate),
                        "billing_amount": None if a.billing_amount is None else str(a.billing_amount),
                        "days": a.days,
                        "status": a.status,
                        "day_basis": a.day_basis,
                        "last_fetched": a.last_fetched.isoformat() if a.last_fetched else None,
                        **({"error": a.error} if a.error else {}),
                        **({"fx_note": a.fx_note} if a.fx_note else {}),
                    }
                    for a in pl.accounts
                ],
            }
            if pl.status not in ("ok", "not_configured"):
                entry["error"] = pl.error or pl.status
            platforms[pid] = entry
        return {
            "store_id": self.store_id,
            "store_name": self.store_name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "billing_currency": ccy,
            "complete": self.complete,
            "platforms": platforms,
            "total_spend": str(fx.quantize(self.total, ccy)),
        }


def _fmt_rate(rate: Decimal | None) -> str | None:
    if rate is None:
        return None
    if rate == 1:
        return "1"
    return format(rate, "f")  # as the CSV and the page print it (10 significant digits)


class UnknownStore(LookupError):
    pass


def spend_report(
    store: SpendStore,
    store_id: str,
    start: dt.date,
    end: dt.date,
    settings: Settings | None = None,
    today: dt.date | None = None,
) -> SpendReport:
    reports = spend_reports(store, [store_id], start, end, settings, today)
    if store_id not in reports:
        raise UnknownStore(f"unknown store {store_id!r}; see `python cli.py accounts list`")
    return reports[store_id]


def whole_months(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """``[first, stop)``: the calendar months lying wholly inside ``start..end`` (empty when
    ``first >= stop``). Their totals are read from ``monthly_spend``; the days of the period
    outside them (``start..first-1`` and ``stop..end``) from ``daily_spend``."""
    first = start if start.day == 1 else (start.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    stop = (end + dt.timedelta(days=1)).replace(day=1)
    return first, max(first, stop)


def period_params(start: dt.date, end: dt.date) -> dict:
    """The named parameters of ``_ACCOUNTS_SQL`` and ``PORTFOLIO_SQL`` for ``start..end``."""
    first, stop = whole_months(start, end)
    return {
        "start": start,
        "end": end,
        "wm_first": first,
        "wm_stop": stop,
        "head_end": min(end, first - dt.timedelta(days=1)),
        "tail_start": max(start, stop),
    }


# Whole months from the monthly totals; the period's other days (at most two partial months at
# its edges) from the daily rows, each a range on ``day`` that the zonemaps narrow to those days.
_PERIOD_ROWS = """
        SELECT m.platform, m.account_id, m.currency, m.amount, m.days, m.first_fetched, m.last_fetched
        FROM monthly_spend m SEMI JOIN keys k ON k.platform = m.platform AND k.account_id = m.account_id
        WHERE m.month >= $wm_first AND m.month < $wm_stop
        UNION ALL
        SELECT d.platform, d.account_id, d.currency, d.amount, 1, d.fetched_at, d.fetched_at
        FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
        WHERE d.day BETWEEN $start AND $head_end
        UNION ALL
        SELECT d.platform, d.account_id, d.currency, d.amount, 1, d.fetched_at, d.fetched_at
        FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
        WHERE d.day BETWEEN $tail_start AND $end"""

# The period's daily amounts of the accounts in ``keys``: whole months from the lists kept in the
# monthly totals (one row a month), the partial months at the edges from the daily rows.
_DAYS_SQL = """
    WITH keys AS ({keys})
    -- amounts as text: DuckDB hands a DECIMAL to Python three times slower than its exact digits
    SELECT platform, account_id, day, CAST(amount AS VARCHAR) FROM (
    SELECT m.platform, m.account_id, unnest(m.day_amounts, recursive := true)
    FROM monthly_spend m SEMI JOIN keys k ON k.platform = m.platform AND k.account_id = m.account_id
    WHERE m.month >= $wm_first AND m.month < $wm_stop
    UNION ALL
    SELECT d.platform, d.account_id, d.day, d.amount
    FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
    WHERE d.day BETWEEN $start AND $head_end
    UNION ALL
    SELECT d.platform, d.account_id, d.day, d.amount
    FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
    WHERE d.day BETWEEN $tail_start AND $end)"""

_ACCOUNTS_SQL = (
    """
    WITH acc AS (
        SELECT store_id, platform, account_id, display_name FROM ad_accounts
        WHERE {store_filter}),
    keys AS (SELECT DISTINCT platform, account_id FROM acc),
    spend AS (
        SELECT platform, account_id, sum(amount) AS amount, sum(days) AS days, max(last_fetched) AS last_f,
               min(first_fetched) AS first_f, max(currency) AS currency
        FROM ("""
    + _PERIOD_ROWS
    + """) p(platform, account_id, currency, amount, days, first_fetched, last_fetched)
        GROUP BY ALL),
    fails AS (
        SELECT f.platform, f.account_id, count(*) AS n, arg_max(f.error, f.failed_at) AS error
        FROM fetch_failures f SEMI JOIN keys k ON k.platform = f.platform AND k.account_id = f.account_id
        WHERE f.day BETWEEN $start AND $end GROUP BY ALL)
    SELECT a.store_id, a.platform, a.account_id, coalesce(a.display_name, i.name, ''),
           coalesce(i.currency, s.currency), coalesce(i.day_basis, ''), coalesce(i.timezone, ''),
           coalesce(s.amount, 0), coalesce(s.days, 0), s.last_f, s.first_f, coalesce(f.n, 0), f.error
    FROM acc a
    LEFT JOIN account_info i ON i.platform = a.platform AND i.account_id = a.account_id
    LEFT JOIN spend s ON s.platform = a.platform AND s.account_id = a.account_id
    LEFT JOIN fails f ON f.platform = a.platform AND f.account_id = a.account_id
    ORDER BY a.store_id, a.platform, a.account_id"""
)


def spend_reports(
    store: SpendStore,
    store_ids: Sequence[str] | None,
    start: dt.date,
    end: dt.date,
    settings: Settings | None = None,
    today: dt.date | None = None,
) -> dict[str, SpendReport]:
    """``spend_report`` for many stores (``None``: every store) at once, in store id order.

    DuckDB answers for all of them in one connection: one query for the stores, one aggregate
    query for every linked account of every store, and (only for accounts whose currency differs
    from their store's billing currency) one query for their daily amounts, which are converted
    day by day in Python (the exact FX rule of ``service/fx.py``). Unknown ids are left out."""
    if start > end:
        raise ValueError(f"the start date {start} is after the end date {end}")
    today = today or clock.today()
    ids = None if store_ids is None else list(store_ids)
    params: dict = period_params(start, end)
    if ids is not None:
        params["ids"] = ids
    store_filter = "TRUE" if ids is None else "list_contains($ids, store_id)"
    with store.connect() as con:
        metas = {
            r[0]: dict(store_id=r[0], name=r[1], billing_currency=r[2], is_demo=r[3])
            for r in con.execute(
                f"SELECT store_id, name, billing_currency, is_demo FROM stores WHERE {store_filter} ORDER BY store_id",
                {"ids": ids} if ids is not None else {},
            ).fetchall()
        }
        rows = con.execute(_ACCOUNTS_SQL.format(store_filter=store_filter), params).fetchall() if metas else []
        # per-day amounts, only for accounts whose currency differs from their store's billing currency
        foreign = sorted({(r[1], r[2]) for r in rows if r[4] and r[4] != metas[r[0]]["billing_currency"] and r[8]})
        daily: dict[tuple[str, str], dict[dt.date, Decimal]] = {}
        if foreign:
            # the keys as list parameters, not a registered Arrow table (register imports pandas: 0.25 s a CLI run)
            for p, a, d, amt in con.execute(
                _DAYS_SQL.format(
                    keys="SELECT unnest($fp::VARCHAR[]) AS platform, unnest($fa::VARCHAR[]) AS account_id"
                ),
                {**period_params(start, end), "fp": [k[0] for k in foreign], "fa": [k[1] for k in foreign]},
            ).fetchall():
                daily.setdefault((p, a), {})[d] = Decimal(amt)
        # an account with every day of the period stored and none failed has nothing to count
        n_days = (end - start).days + 1
        whole = [(r[1], r[2]) for r in rows if r[8] == n_days and not r[11]]
        lost = freshness.lost_days(con, [(r[1], r[2]) for r in rows], start, end, today, complete=whole)
        from .fxrates import rates_for  # demo stores: the demo rate set; real stores: ECB only

        rate_sets = {demo: rates_for(store, demo, con) for demo in {bool(m["is_demo"]) for m in metas.values()}}
    settings = settings or load_settings()
    usable: dict[str, tuple[bool, str | None]] = {}
    by_store: dict[str, list[tuple]] = {}
    for r in rows:
        by_store.setdefault(r[0], []).append(r[1:])
    return {
        sid: _build_report(
            meta,
            by_store.get(sid, []),
            daily,
            start,
            end,
            today,
            settings,
            usable,
            lost,
            rates=rate_sets[bool(meta["is_demo"])],
        )
        for sid, meta in metas.items()
    }


def _build_report(
    meta: dict,
    rows: list[tuple],
    daily: dict,
    start: dt.date,
    end: dt.date,
    today: dt.date,
    settings: Settings,
    usable: dict[str, tuple[bool, str | None]],
    lost: dict | None = None,
    rates: fx.RateSet | None = None,
) -> SpendReport:
    store_id = meta["store_id"]
    billing = meta["billing_currency"]
    n_days = (end - start).days + 1
    lines: dict[str, list[AccountLine]] = {}
    for p, a, name, ccy, basis, tz, spend, days, last_f, first_f, failed_days, last_error in rows:
        spend = Decimal(spend)
        status, error = "ok", None
        billing_amount: Decimal | None
        fx_rate: Decimal | None
        fx_note = None
        if not ccy:
            ccy = "?"
        if ccy == billing:
            billing_amount, fx_rate = fx.quantize(spend, billing), Decimal(1)
        elif days == 0:
            billing_amount, fx_rate = Decimal(0), None
        else:
            try:
                conv = fx.convert_line(daily.get((p, a), {}), ccy, billing, rates=rates)
            except fx.FxMissing as exc:
                conv = None
                status, error = "fx_missing", str(exc)
            if conv is not None and conv.missing_days:
                status = "fx_missing"
                error = (
                    f"no {ccy}->{billing} exchange rate for {len(conv.missing_days)} day(s) from {conv.missing_days[0]}"
                )
            billing_amount = conv.billing_amount if conv is not None and status != "fx_missing" else None
            fx_rate = conv.fx_rate if conv is not None and status != "fx_missing" else None
            if conv is not None and conv.fallback_days:
                fx_note = f"{len(conv.fallback_days)} day(s) without a published ECB rate used the last earlier rate"
        expected = n_days
        if failed_days:
            status = "failed"
            error = f"{last_error} ({failed_days} of {n_days} days failed"
            error += f"; earlier data kept for {days} days)" if days else ")"
        elif days == 0:
            status, error = "missing", f"never fetched for {start}..{end}: run a refresh"
        elif days < expected:
            future = max(0, (end - max(today, start - dt.timedelta(days=1))).days) if end > today else 0
            status = "partial"
            error = f"{days} of {expected} days fetched" + (f" ({future} day(s) are not over yet)" if future else "")
        cut = (lost or {}).get((p, a))  # days past the platform's retention: never "run a refresh"
        if cut is not None and status != "ok":
            error = freshness.retention_error(p, status, error, cut, start, end)
        lines.setdefault(p, []).append(
            AccountLine(
                p,
                a,
                name,
                ccy,
                spend,
                billing_amount,
                fx_rate,
                int(days),
                expected,
                int(failed_days),
                status,
                error,
                basis or _day_basis(p),
                tz,
                last_f,
                first_f,
                fx_note,
                cut.lost if cut else 0,
                not (cut and cut.lost and not cut.fixable),
                cut.oldest if cut else None,
            )
        )

    platforms: dict[str, PlatformLine] = {}
    for pid in PLATFORM_IDS:
        accs = lines.get(pid)
        if not accs:
            continue
        total = sum((a.billing_amount or Decimal(0) for a in accs), Decimal(0))
        statuses = {a.status for a in accs}
        cfg_demo = meta["is_demo"]
        if not cfg_demo and pid not in usable:
            cfg = platform_config(settings, pid)
            usable[pid] = (cfg.usable, cfg.error)
        configured, cfg_error = (True, None) if cfg_demo else usable[pid]
        if not configured and all(a.days == 0 and a.failed_days == 0 for a in accs):
            if cfg_error:  # e.g. Vault unreachable: the credentials may exist, we cannot read them
                platforms[pid] = PlatformLine(pid, "failed", cfg_error, Decimal(0), [])
            else:
                platforms[pid] = PlatformLine(pid, "not_configured", None, Decimal(0), [])
            continue
        if statuses == {"missing"}:
            status = "missing"
        else:
            status = next(s for s in STATUS_ORDER if s in statuses)
            if status == "missing":
                status = "partial"
        errors = [f"{a.account_id}: {a.error}" for a in accs if a.error and a.status != "ok"]
        platforms[pid] = PlatformLine(pid, status, "; ".join(errors) or None, total, accs)
    grand = sum((pl.spend for pl in platforms.values()), Decimal(0))
    return SpendReport(store_id, meta["name"], start, end, billing, platforms, grand, rates)


def _day_basis(platform: str) -> str:
    """The platform's day basis, for an account whose details were never fetched."""
    s = SPECS.get(platform)
    return s.day_basis if s else "account"  # a platform this build does not know: its own days


# --- portfolio totals: every linked account, per month and platform, in one currency ----------------


@dataclass
class PortfolioTotals:
    currency: str
    by_month: dict[tuple[str, str], Decimal]  # (YYYY-MM, platform) -> amount
    by_platform: dict[str, Decimal]
    total: Decimal
    fx_missing_days: int  # account-days left out: no exchange rate
    days_with_data: int


LIMB_DIGITS = 14  # amount (DECIMAL(20, 6)) x limb < 10^28: a month of them sums inside DECIMAL(38, 6)
LIMB = 10**LIMB_DIGITS

PORTFOLIO_SQL = """
    WITH keys AS (SELECT DISTINCT platform, account_id FROM ad_accounts),
    -- accounts in another currency than the report's go day by day (that day's rate)
    fdays AS (
        SELECT m.month, m.platform, m.account_id, m.currency, unnest(m.day_amounts, recursive := true)
        FROM monthly_spend m SEMI JOIN keys k ON k.platform = m.platform AND k.account_id = m.account_id
        WHERE m.month >= $wm_first AND m.month < $wm_stop AND m.currency <> $ccy
        UNION ALL
        SELECT CAST(date_trunc('month', d.day) AS DATE), d.platform, d.account_id, d.currency, d.day, d.amount
        FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
        WHERE d.day BETWEEN $start AND $head_end AND d.currency <> $ccy
        UNION ALL
        SELECT CAST(date_trunc('month', d.day) AS DATE), d.platform, d.account_id, d.currency, d.day, d.amount
        FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
        WHERE d.day BETWEEN $tail_start AND $end AND d.currency <> $ccy),
    -- one row per account-month: its days, the days with a rate, and the exact limb sums
    conv AS (
        SELECT d.month, d.platform, count(*) AS days, count(r.day) AS rated_days, {limb_sums}
        FROM fdays d LEFT JOIN fx_limbs r ON r.currency = d.currency AND r.day = d.day
        GROUP BY d.month, d.platform, d.account_id, d.currency)
    SELECT month, platform, days, rated_days, {limb_cols} FROM conv"""

# The report currency's own account-months, rounded each (as ``fx.quantize``: DuckDB's ``round`` of a
# DECIMAL takes halves away from zero) and added up per month and platform in DuckDB: a few rows.
PORTFOLIO_SAME_SQL = """
    WITH keys AS (SELECT DISTINCT platform, account_id FROM ad_accounts),
    tot AS (
        SELECT month, platform, account_id, sum(amount) AS spend, sum(days) AS days FROM (
            SELECT m.month, m.platform, m.account_id, m.amount, m.days
            FROM monthly_spend m SEMI JOIN keys k ON k.platform = m.platform AND k.account_id = m.account_id
            WHERE m.month >= $wm_first AND m.month < $wm_stop AND m.currency = $ccy
            UNION ALL
            SELECT CAST(date_trunc('month', d.day) AS DATE), d.platform, d.account_id, d.amount, 1
            FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
            WHERE d.day BETWEEN $start AND $head_end AND d.currency = $ccy
            UNION ALL
            SELECT CAST(date_trunc('month', d.day) AS DATE), d.platform, d.account_id, d.amount, 1
            FROM daily_spend d SEMI JOIN keys k ON k.platform = d.platform AND k.account_id = d.account_id
            WHERE d.day BETWEEN $tail_start AND $end AND d.currency = $ccy)
        GROUP BY ALL)
    SELECT month, platform, sum(round(spend, $minor)), sum(days) FROM tot GROUP BY ALL"""


def portfolio_params(start: dt.date, end: dt.date, currency: str) -> dict:
    return {**period_params(start, end), "ccy": currency}


def fx_limb_table(
    currencies, start: dt.date, end: dt.date, to_ccy: str, rates: fx.RateSet | None = None
) -> tuple[pa.Table, int, int]:
    """Every day's rate from each currency into ``to_ccy`` as an exact integer R (rate x 10^scale)
    cut into base-10^14 limbs, so DuckDB can sum ``amount x limb`` exactly in DECIMAL (a 28-digit
    rate times an amount does not fit DECIMAL(38)); Python puts the limbs back together:
    sum(amount x rate) = sum_k sum(amount x limb_k) x 10^(14k) / 10^scale, exactly.
    Days without a rate have no row. Returns (table, number of limbs, scale)."""
    import pyarrow as pa

    quotes: list[tuple[str, dt.date, Decimal]] = []
    for ccy in sorted(set(currencies)):
        if ccy == to_ccy:
            continue
        d = start
        while d <= end:
            try:
                quotes.append((ccy, d, fx.quote(ccy, to_ccy, d, rates).rate))
            except fx.FxMissing:
                pass
            d += dt.timedelta(days=1)
    scale = max((max(0, -q[2].as_tuple().exponent) for q in quotes), default=0)
    ints = [int(q[2].scaleb(scale)) for q in quotes]
    for q, r in zip(quotes, ints):
        if Decimal(r).scaleb(-scale) != q[2] or r < 0:
            raise ValueError(f"rate {q[2]} does not scale exactly")  # cannot happen for finite rates
    n_limbs = max(1, max((len(str(r)) for r in ints), default=1) // LIMB_DIGITS + 1)
    cols = {
        "currency": pa.array([q[0] for q in quotes], pa.string()),
        "day": pa.array([q[1] for q in quotes], pa.date32()),
    }
    for k in range(n_limbs):
        cols[f"l{k}"] = pa.array([(r // LIMB**k) % LIMB for r in ints], pa.int64())
    return pa.table(cols), n_limbs, scale


def portfolio_sql(n_limbs: int) -> str:
    return PORTFOLIO_SQL.format(
        limb_sums=", ".join(f"sum(d.amount * r.l{k}) AS s{k}" for k in range(n_limbs)),
        # as text: DuckDB hands a DECIMAL(38) to Python three times slower than its exact digits
        limb_cols=", ".join(f"CAST(s{k} AS VARCHAR)" for k in range(n_limbs)),
    )


def portfolio_totals(store: SpendStore, start: dt.date, end: dt.date, currency: str = "USD") -> PortfolioTotals:
    """What ``service.dashboard.portfolio_spend`` computes (each account-month converted day by
    day with that day's rate, exactly, rounded once; days without a rate left out and counted;
    an account linked to two stores counted once), with the per-day work done by DuckDB: one
    query returns one row per account-month, never the daily rows."""
    with store.connect() as con:
        ccys = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT currency FROM monthly_spend WHERE month BETWEEN ? AND ?", [start.replace(day=1), end]
            ).fetchall()
        ]
        from .fxrates import portfolio_rates

        limbs, n_limbs, scale = fx_limb_table(ccys, start, end, currency, portfolio_rates(store, con))
        con.register("fx_limbs", limbs)
        params = portfolio_params(start, end, currency)
        same = con.execute(PORTFOLIO_SAME_SQL, {**params, "minor": int(fx.minor_units(currency))}).fetchall()
        rows = con.execute(portfolio_sql(n_limbs), params).fetchall()
        con.unregister("fx_limbs")
    by_month: dict[tuple[str, str], Decimal] = {}
    missing = days = 0
    for month, platform, amount, n in same:
        days += int(n)
        key = (month.strftime("%Y-%m"), platform)
        by_month[key] = by_month.get(key, Decimal(0)) + fx.quantize(Decimal(amount), currency)
    labels: dict[dt.date, str] = {}
    pows = [LIMB**k for k in range(n_limbs)]
    # fx.quantize's rounding (half away from zero, to the minor unit) in integers: each limb sum is
    # DECIMAL(38, 6) as text, so its digits without the point are the sum in 10^-6 units, and the
    # account-month's exact amount is sum(limb_k x 10^(14k)) x 10^-(6 + scale). 10^5 rows: no
    # Decimal arithmetic per row.
    minor = fx.minor_units(currency)
    shift = 6 + scale - minor  # digits dropped by rounding to the minor unit
    half, step = (5 * 10 ** (shift - 1), 10**shift) if shift > 0 else (0, 1)
    for month, platform, n, rated, *sums in rows:
        month = labels.get(month) or labels.setdefault(month, month.strftime("%Y-%m"))
        days += int(n)
        missing += int(n) - int(rated)
        exact = 0
        for s, p in zip(sums, pows, strict=True):
            if s is not None:
                whole, _, frac = s.partition(".")
                if len(frac) != 6:
                    raise ValueError(f"unexpected limb sum {s!r}")  # DECIMAL(38, 6) always shows 6 digits
                exact += int(whole + frac) * p
        units = (abs(exact) + half) // step if shift > 0 else abs(exact) * 10**-shift
        amount = Decimal(units if exact >= 0 else -units).scaleb(-minor)
        if amount.is_zero():
            amount = amount.copy_abs()  # never a negative zero (as fx.quantize)
        by_month[(month, platform)] = by_month.get((month, platform), Decimal(0)) + amount
    by_platform: dict[str, Decimal] = {}
    for (_m, p), v in by_month.items():
        by_platform[p] = by_platform.get(p, Decimal(0)) + v
    return PortfolioTotals(
        currency,
        dict(sorted(by_month.items())),
        {p: by_platform[p] for p in PLATFORM_IDS if p in by_platform},
        sum(by_platform.values(), Decimal(0)),
        missing,
        days,
    )
