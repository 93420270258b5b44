"""Read models for the Streamlit dashboard: periods, status chips, daily spend by platform in the
billing currency, the portfolio matrix, coverage and the revenue model.

Pages never run SQL; they call these functions (and ``SpendStore`` / ``service.report``). Money
stays ``Decimal`` here: a page may turn an amount into a float only to draw a chart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from fetchers import clock, implemented
from fetchers.specs import PLATFORM_IDS, SPECS
from storage.db import SpendStore

from . import fx

# --- periods ------------------------------------------------------------------------------------
from .periods import DEFAULT_PRESET, PRESETS, month_bounds, period_for, previous_period  # noqa: F401,E402
from .report import SpendReport


@dataclass(frozen=True)
class Change:
    previous: Decimal | None
    delta: Decimal | None  # total - previous, billing currency
    percent: Decimal | None  # delta / previous x 100, one decimal
    note: str  # why there is no comparison, or "" when there is one


def change(current: SpendReport, previous: SpendReport) -> Change:
    """The change against the previous period; no number when that period is not complete
    (an incomplete previous period would make the change look bigger than it is)."""
    ccy = current.billing_currency
    if not previous.complete:
        bad = sorted(p for p, pl in previous.platforms.items() if pl.status != "ok")
        return Change(
            None,
            None,
            None,
            f"no comparison: {previous.start}..{previous.end} is not complete "
            f"({', '.join(bad) or 'no linked platforms'})",
        )
    delta = fx.quantize(current.total - previous.total, ccy)
    pct = None
    if previous.total:
        pct = (delta / previous.total * 100).quantize(Decimal("0.1"))
    return Change(previous.total, delta, pct, "")


# --- status chips ---------------------------------------------------------------------------------

STALE_HOURS = 24
RECENT_DAYS = 7  # a period ending within this many days of today "includes recent days"


@dataclass(frozen=True)
class Chip:
    platform: str
    name: str
    state: str  # ok, stale, failed, partial, missing, fx_missing, not_configured
    label: str  # short text for the chip
    detail: str | None  # the reason (errors), or None


def _age(delta: dt.timedelta) -> str:
    s = delta.total_seconds()
    if s < 3600:
        return f"{max(1, int(s // 60))} min"
    if s < 86400:
        return f"{int(s // 3600)} h"
    return f"{int(s // 86400)} d"


def chips(report: SpendReport, now: dt.datetime | None = None, stale_hours: int = STALE_HOURS) -> list[Chip]:
    """One chip per linked platform: ok, failed (with its reason), not configured, stale (with the
    age of the data: the oldest account's latest fetch), or the report's other statuses."""
    now = now or clock.now()
    recent = report.end >= now.date() - dt.timedelta(days=RECENT_DAYS)
    out = []
    for pid, pl in report.platforms.items():
        name = SPECS[pid].name
        if pl.status == "not_configured":
            out.append(
                Chip(pid, name, "not_configured", "not configured", f"no credentials for {name}; see the Accounts page")
            )
            continue
        if pl.status != "ok":
            label = {"failed": "failed", "missing": "no data", "partial": "partial", "fx_missing": "FX missing"}.get(
                pl.status, pl.status
            )
            out.append(Chip(pid, name, pl.status, label, pl.error))
            continue
        fetched = [a.last_fetched for a in pl.accounts if a.last_fetched]
        oldest = min(fetched) if fetched else None
        if recent and oldest and now - oldest > dt.timedelta(hours=stale_hours):
            age = _age(now - oldest)
            out.append(
                Chip(
                    pid,
                    name,
                    "stale",
                    f"stale (fetched {age} ago)",
                    f"the period includes recent days and the data was fetched {age} ago; refresh it",
                )
            )
            continue
        out.append(Chip(pid, name, "ok", "ok", None))
    return out


# --- the store page ---------------------------------------------------------------------------------


@dataclass
class DailySpend:
    rows: list[tuple[dt.date, str, Decimal]]  # day, platform, amount in the billing currency
    fx_missing: list[tuple[str, str, dt.date]]  # (platform, account, day) left out: no rate


def daily_by_platform(
    store: SpendStore, store_id: str, start: dt.date, end: dt.date, billing_currency: str
) -> DailySpend:
    """Daily spend per platform in the billing currency, for the chart. Each account-day is
    converted with that day's ECB quote (exact, not rounded); days without a rate are left out
    and listed, never converted 1:1."""
    rows = store.query(
        """
        SELECT d.day, d.platform, d.account_id, d.currency, d.amount
        FROM ad_accounts a JOIN daily_spend d ON d.platform = a.platform AND d.account_id = a.account_id
        WHERE a.store_id = ? AND d.day BETWEEN ? AND ?
        ORDER BY d.day, d.platform, d.account_id""",
        [store_id, start, end],
    )
    sums: dict[tuple[dt.date, str], Decimal] = {}
    missing = []
    from .fxrates import store_rates

    rates = store_rates(store, store_id)
    for day, platform, account_id, ccy, amount in rows:
        try:
            rate = fx.quote(ccy, billing_currency, day, rates).rate
        except fx.FxMissing:
            missing.append((platform, account_id, day))
            continue
        sums[(day, platform)] = sums.get((day, platform), Decimal(0)) + Decimal(amount) * rate
    return DailySpend([(d, p, v) for (d, p), v in sorted(sums.items())], missing)


ACCOUNT_COLUMNS = (
    "platform",
    "account",
    "name",
    "currency",
    "spend",
    "fx rate",
    "billing amount",
    "days covered",
    "status",
    "last fetched",
)


def account_rows(report: SpendReport) -> list[dict]:
    """The per-account detail table of the store page. ``spend`` (account currency) and ``billing
    amount`` are exact Decimals (None when unknown, never a silent 0) so the page can show them as
    numeric, sortable columns; the FX rate stays an exact decimal string."""
    out = []
    for pid, pl in report.platforms.items():
        if not pl.accounts:
            out.append(
                {
                    "platform": SPECS[pid].name,
                    "account": "",
                    "name": "",
                    "currency": "",
                    "spend": None,
                    "fx rate": "",
                    "billing amount": None,
                    "days covered": "",
                    "status": pl.status.replace("_", " "),
                    "last fetched": "",
                }
            )
            continue
        for a in pl.accounts:
            if a.days == 0:  # nothing stored: no amount at all, never a silent 0
                out.append(
                    {
                        "platform": SPECS[pid].name,
                        "account": a.account_id,
                        "name": a.account_name,
                        "currency": "" if a.currency == "?" else a.currency,
                        "spend": None,
                        "fx rate": "",
                        "billing amount": None,
                        "days covered": f"0/{a.days_expected}",
                        "status": f"{a.status}: {a.error}" if a.error else a.status,
                        "last fetched": "never",
                    }
                )
                continue
            out.append(
                {
                    "platform": SPECS[pid].name,
                    "account": a.account_id,
                    "name": a.account_name,
                    "currency": a.currency,
                    "spend": fx.quantize(a.spend, a.currency) if a.currency != "?" else a.spend,
                    "fx rate": "" if a.fx_rate is None else ("1" if a.fx_rate == 1 else format(a.fx_rate, "f")),
                    "billing amount": a.billing_amount,
                    "days covered": f"{a.days}/{a.days_expected}",
                    "status": a.status if a.status == "ok" else f"{a.status}: {a.error}",
                    "last fetched": a.last_fetched.strftime("%Y-%m-%d %H:%M UTC") if a.last_fetched else "never",
                }
            )
    return out


def platform_shares(report: SpendReport) -> list[tuple[str, Decimal]]:
    """(platform name, spend in the billing currency) for platforms with spend, largest first."""
    return sorted(((SPECS[p].name, pl.spend) for p, pl in report.platforms.items() if pl.spend), key=lambda x: -x[1])


def fx_notes(report: SpendReport) -> list[str]:
    """Plain sentences about exchange rates: missing days (with why) and fallback days."""
    first, last = fx.data_range(report.rates)
    demo = report.rates is not None and report.rates.name == "demo"
    what = "The demo exchange rates" if demo else "The ECB reference rates available"
    fix = (
        "refresh to fetch the demo rates"
        if demo
        else "`python cli.py fx update` (or the Invoicing page) adds newer ones"
    )
    notes = []
    for pl in report.platforms.values():
        for a in pl.accounts:
            if a.status == "fx_missing":
                notes.append(
                    f"{SPECS[a.platform].name} {a.account_id}: {a.error}. {what} end on {last}; "
                    f"later days have no rate, so the amount is not converted (never 1:1); {fix}."
                )
    return notes


# --- refresh progress ---------------------------------------------------------------------------------


def progress_rows(events: Iterable) -> list[dict]:
    """Latest state per platform x account from ``service.refresh.Progress`` events."""
    latest: dict[tuple[str, str], dict] = {}
    for e in events:
        latest[(e.platform, e.account_id)] = {
            "platform": SPECS[e.platform].name,
            "account": e.account_id,
            "state": {
                "start": "fetching",
                "window": "fetching",
                "done": "done",
                "failed": "failed",
                "skipped": "skipped",
            }.get(e.phase, e.phase),
            "windows": f"{e.windows_done}/{e.windows_total}" if e.windows_total else "",
            "message": e.message,
        }
    return [latest[k] for k in sorted(latest)]


# --- portfolio & coverage -------------------------------------------------------------------------------

#: Share of a typical client's digital ad spend per platform: the expansion plan's assumptions
#: (Meta + Google about 65 % today, about 95 % with TikTok, LinkedIn, Amazon and Microsoft),
#: from the registry (``PlatformSpec.default_share``).
DEFAULT_SHARES: dict[str, Decimal] = {p: SPECS[p].default_share for p in PLATFORM_IDS}


def coverage(shares: Mapping[str, Decimal], platforms: Iterable[str]) -> Decimal:
    return sum((Decimal(shares.get(p, 0)) for p in set(platforms)), Decimal(0))


def coverage_summary(shares: Mapping[str, Decimal], status: Sequence[dict]) -> list[tuple[str, Decimal]]:
    tiers = {p: SPECS[p].tier for p in PLATFORM_IDS}
    return [
        ("Meta + Google (billed today)", coverage(shares, [p for p in PLATFORM_IDS if tiers[p] == 0])),
        (
            "+ TikTok, LinkedIn, Amazon, Microsoft (tiers 1-2)",
            coverage(shares, [p for p in PLATFORM_IDS if tiers[p] <= 2]),
        ),
        ("All nine platforms (tier 3 included)", coverage(shares, PLATFORM_IDS)),
        ("Implemented in this build", coverage(shares, [s["platform"] for s in status if s["implemented"]])),
        ("Live now (credentials set)", coverage(shares, [s["platform"] for s in status if s["mode"] == "live"])),
    ]


def integration_status(described: Sequence[dict]) -> list[dict]:
    """Per platform: tier, implemented, configured, and whether it runs live or demo only.
    ``described`` is ``service.config.describe_platforms(settings)``."""
    out = []
    for d in described:
        pid = d["platform"]
        impl = implemented(pid)
        live = d["mode"] == "live"
        out.append(
            {
                "platform": pid,
                "name": SPECS[pid].name,
                "tier": SPECS[pid].tier,
                "implemented": impl,
                "configured": live,
                "mode": d["mode"],
                "runs as": ("live API" if live and impl else "demo (sandbox) only" if impl else "not implemented"),
                "missing": ", ".join(d["missing"]),
                "error": d.get("error") or "",
            }
        )
    return sorted(out, key=lambda r: (r["tier"], PLATFORM_IDS.index(r["platform"])))


def portfolio_matrix(store: SpendStore) -> list[dict]:
    """stores x platforms: per linked (store, platform) the number of accounts and the status of
    each account's latest refresh result (failed if any account's last window failed)."""
    rows = store.query("""
        WITH last AS (
            SELECT platform, account_id, arg_max(status, finished_at) AS status, max(finished_at) AS at
            FROM refresh_results GROUP BY ALL)
        SELECT a.store_id, a.platform, count(*) AS accounts, count(l.status) AS refreshed,
               count(*) FILTER (WHERE l.status = 'failed') AS failed, max(l.at) AS at
        FROM ad_accounts a LEFT JOIN last l ON l.platform = a.platform AND l.account_id = a.account_id
        GROUP BY ALL ORDER BY 1, 2""")
    cells: dict[str, dict[str, str]] = {}
    for store_id, platform, n, refreshed, failed, _at in rows:
        if refreshed == 0:
            status = "never"
        elif failed:
            status = f"failed ({failed})"
        elif refreshed < n:
            status = "partly"
        else:
            status = "ok"
        cells.setdefault(store_id, {})[platform] = f"{n} · {status}"  # short: 9 platforms fit at 1440 px
    out = []
    for s in store.stores():
        row = {"store": f"{s['name']} ({s['store_id']})", "currency": s["billing_currency"]}
        for pid in PLATFORM_IDS:
            row[SPECS[pid].name] = cells.get(s["store_id"], {}).get(pid, "—")
        out.append(row)
    return out


@dataclass
class PortfolioSpend:
    currency: str
    by_month: dict[tuple[str, str], Decimal]  # (YYYY-MM, platform) -> amount
    by_platform: dict[str, Decimal]
    total: Decimal
    fx_missing_days: int
    accounts: int
    days_with_data: int
    days_expected: int


def _linked_daily(store: SpendStore, start: dt.date, end: dt.date, per_store: bool):
    """Daily amounts of linked accounts: per (store, platform, account) or per distinct account."""
    if per_store:
        sql = (
            "SELECT a.store_id, d.platform, d.account_id, d.currency, d.day, d.amount FROM ad_accounts a "
            "JOIN daily_spend d ON d.platform = a.platform AND d.account_id = a.account_id "
            "WHERE d.day BETWEEN ? AND ? ORDER BY 1, 2, 3, 5"
        )
    else:
        sql = (
            "SELECT '' AS store_id, d.platform, d.account_id, d.currency, d.day, d.amount FROM daily_spend d "
            "WHERE d.day BETWEEN ? AND ? AND EXISTS (SELECT 1 FROM ad_accounts a WHERE a.platform = d.platform "
            "AND a.account_id = d.account_id) ORDER BY 2, 3, 5"
        )
    return store.query(sql, [start, end])


def portfolio_spend(store: SpendStore, start: dt.date, end: dt.date, currency: str = "USD") -> PortfolioSpend:
    """Spend across all stores in one currency, per month and platform. An account linked to two
    stores is counted once. Each account-month is converted day by day and rounded once (the
    invoice rule); days without an exchange rate are left out and counted. The per-day work is one
    DuckDB query (``service.report.portfolio_totals``), never a Python loop over daily rows."""
    from .report import portfolio_totals

    t = portfolio_totals(store, start, end, currency)
    n_accounts = store.query("SELECT count(*) FROM (SELECT DISTINCT platform, account_id FROM ad_accounts)")[0][0]
    return PortfolioSpend(
        currency,
        t.by_month,
        {p: t.by_platform[p] for p in PLATFORM_IDS if p in t.by_platform},
        t.total,
        t.fx_missing_days,
        int(n_accounts),
        t.days_with_data,
        int(n_accounts) * ((end - start).days + 1),
    )


# --- revenue impact ---------------------------------------------------------------------------------


@dataclass
class RevenueRow:
    label: str
    platforms: tuple[str, ...]
    spend: Decimal  # average client spend a month
    net_profit_share: Decimal  # e.g. 0.20
    fee_rate: Decimal  # success-fee share of net profit, e.g. 0.20
    clients: int

    @property
    def fee_per_month(self) -> Decimal:
        return self.spend * self.net_profit_share * self.fee_rate

    @property
    def annual(self) -> Decimal:
        return self.fee_per_month * 12 * self.clients

    @property
    def new(self) -> bool:
        return all(SPECS[p].tier > 0 for p in self.platforms)


#: The plan's table. It labels its yearly figures "per 100 clients", but $600 x 12 x 100 is
#: $720K, not $7.2M: the figures correspond to 1,000 clients, so that is the default here.
PLAN_CLIENTS = 1000
PLAN_NET_PROFIT = Decimal("0.20")
PLAN_FEE_RATE = Decimal("0.20")
PLAN_ROWS: tuple[tuple[str, tuple[str, ...], Decimal], ...] = (
    ("Meta + Google", ("meta", "google"), Decimal(15000)),
    ("TikTok", ("tiktok",), Decimal(8000)),
    ("LinkedIn", ("linkedin",), Decimal(12000)),
    ("Amazon", ("amazon",), Decimal(10000)),
    ("Microsoft", ("microsoft",), Decimal(5000)),
)


def plan_rows(
    clients: int = PLAN_CLIENTS, net_profit_share: Decimal = PLAN_NET_PROFIT, fee_rate: Decimal = PLAN_FEE_RATE
) -> list[RevenueRow]:
    return [RevenueRow(label, ps, spend, net_profit_share, fee_rate, clients) for label, ps, spend in PLAN_ROWS]


@dataclass
class RevenueTotals:
    spend: Decimal
    fee_per_month: Decimal
    annual: Decimal
    uplift: Decimal  # annual revenue of the rows on new platforms (tier 1+)


def revenue_totals(rows: Sequence[RevenueRow]) -> RevenueTotals:
    return RevenueTotals(
        sum((r.spend for r in rows), Decimal(0)),
        sum((r.fee_per_month for r in rows), Decimal(0)),
        sum((r.annual for r in rows), Decimal(0)),
        sum((r.annual for r in rows if r.new), Decimal(0)),
    )


def usd_short(amount: Decimal) -> str:
    """The plan's way of writing dollars: $7.2M, $3.84M, $720K, $15,000, $600."""
    a = Decimal(amount)
    sign, a = ("-" if a < 0 else ""), abs(a)
    if a >= 1_000_000:
        return f"{sign}${format((a / 1_000_000).normalize(), 'f')}M"
    if a >= 100_000:
        return f"{sign}${format((a / 1_000).normalize(), 'f')}K"
    v = a.quantize(Decimal(1)) if a == a.to_integral_value() else a.quantize(Decimal("0.01"))
    return f"{sign}${v:,}"


from .periods import months_in  # noqa: F401,E402


@dataclass
class ObservedRow:
    platform: str
    clients: int  # stores with spend on the platform in the period
    spend_total: Decimal  # in the model currency
    avg_monthly_spend: Decimal  # per client, rounded to cents
    fx_missing_days: int


def _observed_totals(
    store: SpendStore, start: dt.date, end: dt.date, currency: str
) -> tuple[dict[str, Decimal], dict[str, set[str]], dict[str, int]]:
    """Per platform: spend in ``currency`` (each store x account line converted and rounded once),
    the stores with spend there, and the account-days without an exchange rate."""
    groups: dict[tuple[str, str, str, str], dict[dt.date, Decimal]] = {}
    for store_id, platform, account_id, ccy, day, amount in _linked_daily(store, start, end, per_store=True):
        groups.setdefault((store_id, platform, account_id, ccy), {})[day] = amount
    totals: dict[str, Decimal] = {}
    clients: dict[str, set[str]] = {}
    missing: dict[str, int] = {}
    from .fxrates import rates_for

    demo_ids = {s["store_id"] for s in store.stores() if s["is_demo"]}
    sets = {demo: rates_for(store, demo) for demo in (False, True)}
    for (store_id, platform, _a, ccy), daily in groups.items():
        line = fx.convert_line(daily, ccy, currency, rates=sets[store_id in demo_ids])
        totals[platform] = totals.get(platform, Decimal(0)) + line.billing_amount
        missing[platform] = missing.get(platform, 0) + len(line.missing_days)
        if line.spend:
            clients.setdefault(platform, set()).add(store_id)
    return totals, clients, missing


def observed_model(
    store: SpendStore,
    start: dt.date,
    end: dt.date,
    currency: str = "USD",
    net_profit_share: Decimal = PLAN_NET_PROFIT,
    fee_rate: Decimal = PLAN_FEE_RATE,
) -> tuple[list[ObservedRow], list[RevenueRow], int]:
    """The plan's model filled from the stored data: per platform (tier 3 included) the average
    monthly spend per client (stores with spend there) over the period, and the client count.
    Returns (observed rows, model rows, number of stores)."""
    totals, clients, missing = _observed_totals(store, start, end, currency)
    months = months_in(start, end)
    observed, model = [], []
    for pid in PLATFORM_IDS:
        n = len(clients.get(pid, ()))
        if not n:
            continue
        avg = fx.quantize(totals[pid] / months / n, currency)
        observed.append(ObservedRow(pid, n, totals[pid], avg, missing.get(pid, 0)))
        model.append(RevenueRow(SPECS[pid].name, (pid,), avg, net_profit_share, fee_rate, n))
    n_stores = store.query("SELECT count(*) FROM stores")[0][0]
    return observed, model, int(n_stores)


# --- accounts & history ---------------------------------------------------------------------------------

from .accounts import ID_FORMS, STORE_ID_RE, import_mapping, link_account, validate_store_id  # noqa: E402,F401


def run_rows(store: SpendStore, limit: int = 50) -> list[dict]:
    out = []
    for r in store.runs(limit):
        secs = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] else None
        out.append(
            {
                "run": r["run_id"],
                "started": r["started_at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
                "status": r["status"],
                "trigger": r["trigger"],
                "period": f"{r['period_start']}..{r['period_end']}",
                "stores": r["stores"],
                "platforms": r["platforms"],
                "requests": int(r["requests"] or 0),
                "duration": "" if secs is None else f"{secs:.1f} s",
                "error": r["error"] or "",
            }
        )
    return out


def run_detail(store: SpendStore, run_id: str) -> tuple[list[dict], list[dict]]:
    """(per platform, per account) summaries of one run's window results."""
    accounts: dict[tuple[str, str], dict] = {}
    for r in store.run_results(run_id):
        a = accounts.setdefault(
            (r["platform"], r["account_id"]),
            {
                "platform": SPECS[r["platform"]].name if r["platform"] in SPECS else r["platform"],
                "account": r["account_id"],
                "windows": 0,
                "failed windows": 0,
                "days": 0,
                "requests": 0,
                "duration": 0,
                "errors": [],
            },
        )
        a["windows"] += 1
        a["failed windows"] += r["status"] == "failed"
        a["days"] += int(r["rows"] or 0)
        a["requests"] += int(r["requests"] or 0)
        a["duration"] += int(r["duration_ms"] or 0)
        if r["error"] and r["error"] not in a["errors"]:
            a["errors"].append(r["error"])
    acc_rows = []
    for a in accounts.values():
        acc_rows.append(
            {
                **a,
                "status": "failed" if a["failed windows"] else "ok",
                "duration": f"{a['duration'] / 1000:.2f} s",
                "errors": "; ".join(a["errors"]),
            }
        )
    plat: dict[str, dict] = {}
    for a in acc_rows:
        p = plat.setdefault(
            a["platform"],
            {
                "platform": a["platform"],
                "accounts": 0,
                "failed accounts": 0,
                "windows": 0,
                "days": 0,
                "requests": 0,
                "errors": [],
            },
        )
        p["accounts"] += 1
        p["failed accounts"] += a["status"] == "failed"
        p["windows"] += a["windows"]
        p["days"] += a["days"]
        p["requests"] += a["requests"]
        if a["errors"]:
            p["errors"].append(f"{a['account']}: {a['errors']}")
    plat_rows = [
        {
            **p,
            "status": "ok"
            if not p["failed accounts"]
            else ("failed" if p["failed accounts"] == p["accounts"] else "partial"),
            "errors": "; ".join(p["errors"]),
        }
        for p in plat.values()
    ]
    return plat_rows, acc_rows


# --- comparisons (issue 16) -------------------------------------------------------------------------

from .periods import COMPARISONS, DEFAULT_COMPARISON, _month_end, comparison_period, shift_months, whole_months  # noqa: F401,E402  # noqa: F401,E402


def _not_ok(report: SpendReport) -> tuple[str, ...]:
    labels = {
        "failed": "failed",
        "missing": "no data",
        "partial": "partial",
        "fx_missing": "no exchange rate",
        "not_configured": "not configured",
    }
    if not report.platforms:
        return ("no linked platforms",)
    bad = {p: pl.status for p, pl in report.platforms.items() if pl.status != "ok"}
    if len(bad) == len(report.platforms) > 1 and set(bad.values()) == {"missing"}:
        return ("data on every platform (never fetched)",)
    return tuple(f"{SPECS[p].name} ({_too_old(p, report.start) or labels.get(s, s)})" for p, s in bad.items())


def _too_old(platform: str, start: dt.date) -> str | None:
    """ "older than the 60 days it serves" when the period starts before the platform's history."""
    from fetchers import clock

    s = SPECS.get(platform)
    days = s.history_days if s else None  # None: a platform this build does not know
    if days and start < clock.today() - dt.timedelta(days=int(days)):
        return f"older than the {int(days)} days it serves"
    return None


@dataclass(frozen=True)
class Comparison:
    mode: str
    start: dt.date  # the compared (earlier) period
    end: dt.date
    previous: Decimal | None  # its total, only when both sides are complete
    delta: Decimal | None  # current - previous, billing currency
    percent: Decimal | None  # delta / previous x 100, one decimal (None when previous is 0)
    missing_current: tuple[str, ...]  # "LinkedIn (partial)": why this period is not complete
    missing_previous: tuple[str, ...]
    note: str  # why there is no comparison ("" when there is one)

    @property
    def shown(self) -> bool:
        return self.delta is not None

    @property
    def label(self) -> str:
        return COMPARISONS.get(self.mode, self.mode)


def compare(current: SpendReport, previous: SpendReport, mode: str = DEFAULT_COMPARISON) -> Comparison:
    """The change of ``current`` against ``previous``, only when BOTH are complete: an incomplete
    side would show missing spend as a change. Otherwise the note says which platforms are missing
    on which side."""
    ccy = current.billing_currency
    if not current.platforms and not previous.platforms:
        return Comparison(
            mode,
            previous.start,
            previous.end,
            None,
            None,
            None,
            (),
            (),
            "No comparison: this store has no linked ad accounts.",
        )
    mc = () if current.complete else _not_ok(current)
    mp = () if previous.complete else _not_ok(previous)
    if mc or mp:
        parts = []
        if mc:
            parts.append(f"this period ({current.start} to {current.end}) lacks {', '.join(mc)}")
        if mp:
            parts.append(f"{previous.start} to {previous.end} lacks {', '.join(mp)}")
        return Comparison(
            mode, previous.start, previous.end, None, None, None, mc, mp, "No comparison: " + "; ".join(parts) + "."
        )
    delta = fx.quantize(current.total - previous.total, ccy)
    pct = (delta / previous.total * 100).quantize(Decimal("0.1")) if previous.total else None
    return Comparison(mode, previous.start, previous.end, previous.total, delta, pct, (), (), "")


# --- breakdown per platform and account (issue 16) ----------------------------------------------------


@dataclass(frozen=True)
class BreakdownRow:
    level: str  # "platform" or "account"
    platform: str  # platform id
    platform_name: str
    account: str  # "" on a platform row
    account_name: str
    status: str
    spend: Decimal | None  # billing currency; None = not known (no data, no rate, not configured)
    share: Decimal | None  # % of the total, one decimal
    previous: Decimal | None  # the compared period, when the row is complete on both sides
    delta: Decimal | None
    delta_pct: Decimal | None


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(Decimal("0.1")) if whole else None


def _row(level, pid, account, name, status, spend, prev_status, prev_spend, total) -> BreakdownRow:
    known = spend is not None and status == "ok"
    prev_known = prev_spend is not None and prev_status == "ok"
    delta = spend - prev_spend if known and prev_known else None
    return BreakdownRow(
        level,
        pid,
        SPECS[pid].name,
        account,
        name,
        status,
        spend,
        None if spend is None else _pct(spend, total),
        prev_spend if prev_known else None,
        delta,
        None if delta is None else _pct(delta, prev_spend),
    )


def breakdown(current: SpendReport, previous: SpendReport | None = None) -> list[BreakdownRow]:
    """One row per linked platform followed by one per account: spend in the billing currency,
    share of the total, and (where the row is ok in both periods) the previous amount, delta and
    delta %. Platforms and accounts without a known amount have ``spend`` None, never 0."""
    prev_pl = previous.platforms if previous is not None else {}
    prev_acc = {(a.platform, a.account_id): a for pl in prev_pl.values() for a in pl.accounts}
    out = []
    for pid, pl in current.platforms.items():
        # what the platform adds to the total (accounts without a rate are not in it), or None
        known = any(a.days and a.billing_amount is not None for a in pl.accounts)
        p_prev = prev_pl.get(pid)
        out.append(
            _row(
                "platform",
                pid,
                "",
                "",
                pl.status,
                pl.spend if known else None,
                p_prev.status if p_prev else None,
                p_prev.spend if p_prev else None,
                current.total,
            )
        )
        for a in pl.accounts:
            pa_ = prev_acc.get((pid, a.account_id))
            spend = a.billing_amount if a.days else None
            out.append(
                _row(
                    "account",
                    pid,
                    a.account_id,
                    a.account_name,
                    a.status,
                    spend,
                    pa_.status if pa_ else None,
                    (pa_.billing_amount if pa_.days else None) if pa_ else None,
                    current.total,
                )
            )
    return out


# --- chart series that add up to the total beside them (issue 16) -----------------------------------

GRANULARITIES = {"day": "Daily", "week": "Weekly", "month": "Monthly"}


def bucket_of(day: dt.date, granularity: str) -> dt.date:
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def bucket_end(first: dt.date, granularity: str) -> dt.date:
    if granularity == "week":
        return first + dt.timedelta(days=6)
    if granularity == "month":
        return _month_end(first)
    return first


def partial_buckets(start: dt.date, end: dt.date, granularity: str, today: dt.date | None = None) -> set[dt.date]:
    """Buckets (their first day) that are not whole: cut by the period's start or end, or not over
    yet (a day is over once ``today`` has begun after it)."""
    from fetchers import clock

    today = today or clock.today()
    out = set()
    b = bucket_of(start, granularity)
    while b <= end:
        last = bucket_end(b, granularity)
        if b < start or last > end or last >= today:
            out.add(b)
        b = last + dt.timedelta(days=1)
    return out


@dataclass
class SpendSeries:
    granularity: str
    currency: str
    points: list[tuple[dt.date, str, Decimal]]  # (bucket start, platform id, amount)
    partial: set[dt.date]
    left_out: list[tuple[str, str, str]]  # (platform id, account, why) not drawn, not in the total
    total: Decimal  # == the report's total, exactly


def spend_series(
    store: SpendStore, report: SpendReport, granularity: str = "day", today: dt.date | None = None
) -> SpendSeries:
    """The report's spend per bucket and platform, drawn from the same account lines as its total:
    each account-day converted with the rate the report used, and each account's rounding (less
    than half a minor unit) added to its last day, so the bars add up to ``report.total`` exactly.
    Accounts left out of the total (no exchange rate) are left out here too and listed."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}")
    ccy = report.billing_currency
    drawn = [a for pl in report.platforms.values() for a in pl.accounts if a.days and a.billing_amount is not None]
    left_out = [
        (a.platform, a.account_id, a.error or a.status)
        for pl in report.platforms.values()
        for a in pl.accounts
        if a.days and a.billing_amount is None
    ]
    daily: dict[tuple[str, str], dict[dt.date, Decimal]] = {}
    if drawn:
        for p, a, d, amt in store.query(
            "SELECT d.platform, d.account_id, d.day, d.amount FROM daily_spend d "
            "WHERE d.day BETWEEN ? AND ? AND list_contains(?, d.platform || '/' || d.account_id) "
            "ORDER BY 1, 2, 3",
            [report.start, report.end, [f"{x.platform}/{x.account_id}" for x in drawn]],
        ):
            daily.setdefault((p, a), {})[d] = Decimal(amt)
    sums: dict[tuple[dt.date, str], Decimal] = {}
    for a in drawn:
        days = daily.get((a.platform, a.account_id), {})
        if not days:
            continue
        if a.currency == ccy:
            values = dict(days)
        else:
            conv = fx.convert_line(days, a.currency, ccy, rates=report.rates)  # the rates the total used
            values = {d: v * conv.rates[d].rate for d, v in days.items()}
        last = max(values)
        values[last] += a.billing_amount - sum(values.values(), Decimal(0))
        for d, v in values.items():
            k = (bucket_of(d, granularity), a.platform)
            sums[k] = sums.get(k, Decimal(0)) + v
    points = [(b, p, v) for (b, p), v in sorted(sums.items(), key=lambda kv: (kv[0][0], PLATFORM_IDS.index(kv[0][1])))]
    return SpendSeries(
        granularity,
        ccy,
        points,
        partial_buckets(report.start, report.end, granularity, today),
        left_out,
        sum((v for *_, v in points), Decimal(0)),
    )


def empty_chart_reason(report: SpendReport, today: dt.date | None = None) -> str:
    """Why there is nothing to draw, in one sentence (and what would fix it, if anything)."""
    from fetchers import clock

    today = today or clock.today()
    if not report.platforms:
        return "Nothing to draw: this store has no linked ad accounts. Link them on the Accounts page."
    if report.start > today:
        return f"Nothing to draw: the period {report.start} to {report.end} has not started yet."
    unconf = [SPECS[p].name for p, pl in report.platforms.items() if pl.status == "not_configured"]
    if len(unconf) == len(report.platforms):
        return (
            f"Nothing to draw: no credentials are set for {', '.join(unconf)}, so nothing can be fetched. "
            "See the Accounts page."
        )
    return "No daily spend stored for this period yet: press Refresh."


def partial_months(start: dt.date, end: dt.date, today: dt.date | None = None) -> set[str]:
    """``YYYY-MM`` of the months of ``start..end`` that are not whole or not over (portfolio trend)."""
    return {b.strftime("%Y-%m") for b in partial_buckets(start, end, "month", today)}


# --- honest refresh outcomes (issue 16) -------------------------------------------------------------


def refresh_summary(out, today: dt.date | None = None) -> tuple[str, str]:
    """(sentence, state) for a finished refresh (``service.refresh.RefreshOutcome``); state is
    ``complete``, ``error`` or ``info`` (nothing was fetched, and the sentence says why)."""
    from fetchers import clock

    today = today or clock.today()
    timing = f"in {out.seconds:.1f} s, {out.requests} requests"
    if out.status != "ok":
        return f"Refresh {out.status} {timing}" + (f": {out.error}" if out.error else ""), "error"
    if out.requests:
        return f"Refresh ok {timing}", "complete"
    if not out.platforms:
        return ("Nothing to fetch: this store has no linked ad accounts. Link them on the Accounts page.", "info")
    if out.start > today:
        return (
            f"Nothing to fetch: the period {out.start} to {out.end} has not started yet (today is {today}); "
            "no platform reports future days.",
            "info",
        )
    unconf = [SPECS[p.platform].name for p in out.platforms if p.status == "not_configured"]
    if len(unconf) == len(out.platforms):
        return (
            f"Nothing fetched: no credentials are set for {', '.join(unconf)}. Add them (see the Accounts "
            "page) to fetch this store's spend.",
            "info",
        )
    text = f"Nothing to fetch: the stored data for {out.start} to {out.end} is up to date"
    text += f" ({out.requests} requests)."
    if unconf:
        text += f" Not configured (no credentials): {', '.join(unconf)}."
    return text, "complete"


# --- plan vs observed, paired by the platforms a plan row means (issue 16) ----------------------------


@dataclass(frozen=True)
class PlanPair:
    label: str  # the plan's label, or the platform's name for a platform not in the plan
    platforms: tuple[str, ...]
    plan: Decimal | None  # the plan's average client spend a month
    observed: Decimal | None  # observed average monthly spend per client with spend there
    clients: int


def plan_vs_observed(
    store: SpendStore, start: dt.date, end: dt.date, plan: Sequence[RevenueRow], currency: str = "USD"
) -> list[PlanPair]:
    """Each plan row beside what the data says for the platforms it means ("Meta + Google" is
    Meta and Google together: their spend over the stores with spend on either), then every other
    platform with spend."""
    totals, clients, _missing = _observed_totals(store, start, end, currency)
    months = months_in(start, end)
    out, covered = [], set()
    for r in plan:
        covered.update(r.platforms)
        who = set().union(*(clients.get(p, set()) for p in r.platforms))
        spend = sum((totals.get(p, Decimal(0)) for p in r.platforms), Decimal(0))
        obs = fx.quantize(spend / months / len(who), currency) if who else None
        out.append(PlanPair(r.label, tuple(r.platforms), r.spend, obs, len(who)))
    for pid in PLATFORM_IDS:
        if pid not in covered and clients.get(pid):
            n = len(clients[pid])
            out.append(PlanPair(SPECS[pid].name, (pid,), None, fx.quantize(totals[pid] / months / n, currency), n))
    return out
