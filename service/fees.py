"""Success-fee statements: revenue, fee rates, the fee preview and the fee frozen with an invoice.

The agency bills each client a success fee: a share (default 20%) of the client's net profit,
where net profit = revenue - ad spend - costs, and nothing when there is no profit (the plan's
"Zero-Risk Guarantee").

Revenue (``revenue import FILE.csv``)
    Header ``store_id,day,revenue`` and optional ``costs``; ``day`` is ``YYYY-MM-DD`` (strictly);
    amounts are plain decimals in the store's billing currency with at most its minor units (JPY
    none). Revenue may be negative (a day with more refunds than sales); costs may not. A file
    with any bad row imports nothing and names every bad line; a later row for the same store and
    day replaces the earlier one; re-importing the same rows changes nothing. One transaction.

Fee rates (``fee rate --store ID --percent P [--from YYYY-MM-DD]``)
    A history per store: ``P`` applies from ``--from`` (default: the first day of the current
    month) until the next change; before the first change the rate is 20%. Old periods keep their
    rate; an invoice's frozen statement keeps the rate it was finalized with.

The computation (:func:`compute`, pure)
    revenue and costs: exact sums of the imported days of the period; ad spend: exactly
    ``spend --json``'s ``total_spend`` (service/report.spend_report, the invoice rounding rule);
    net profit = revenue - ad spend - costs; fee = rate x net profit when net profit is positive,
    else 0, rounded ONCE to the billing currency's minor units with ROUND_HALF_UP (fx.quantize).
    A period that spans a rate change is prorated by days: the rate is the day-weighted average
    of the rates in force, sum(percent_i x days_i) / days, and fee = net profit x that rate,
    computed exactly and rounded once. (``fee_rate`` prints that average to 4 decimals; ``rates``
    lists each day range with its own rate.)
    ``complete`` is false, and the fee provisional, when the spend report is not complete or any
    day of the period has no revenue row.

Frozen statements (:func:`freeze`, called by service/invoices.finalize in its transaction)
    The statement of an invoice's store and period as it was when the invoice was finalized, in
    its own table (``fee_statements``) with the exact bytes of its CSV, so ``invoice export
    --fee-out`` is byte-identical every time. :func:`fee_snapshot_content` returns its canonical
    content; :func:`fee_diff` compares it with what the data says now.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from fetchers import clock

from . import fx
from .csv_input import open_table, read_capped

if TYPE_CHECKING:
    from storage.db import SpendStore

DEFAULT_PERCENT = Decimal(20)
FEE_CSV_HEADER = [
    "store_id",
    "store_name",
    "period_start",
    "period_end",
    "billing_currency",
    "revenue",
    "ad_spend",
    "costs",
    "net_profit",
    "fee_rate",
    "fee",
    "status",
]
REQUIRED_COLUMNS = ("store_id", "day", "revenue")
OPTIONAL_COLUMNS = ("costs",)
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_INTEGER_DIGITS = 14  # DECIMAL(20, 6)
ZERO_RISK = "net profit is not positive, so there is no fee (Zero-Risk Guarantee)"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")
_PERCENT = re.compile(r"^\d{1,3}(\.\d{1,4})?$")
_DIV = Context(prec=60, rounding=ROUND_HALF_EVEN)


class FeeInputError(ValueError):
    """Bad input (the CLI exits 2); the message says what is wrong and what to do."""


class NoFeeStatement(RuntimeError):
    """The invoice has no frozen fee statement (finalized before fee statements existed)."""


# --- revenue import ------------------------------------------------------------------------------


@dataclass
class RevenueImport:
    rows: int  # distinct store x day rows in the file
    added: int
    changed: int
    unchanged: int


def parse_amount(raw: str, ccy: str, what: str) -> Decimal:
    """A plain decimal in ``ccy``'s minor units at most (ValueError naming ``what`` otherwise)."""
    s = raw.strip()
    if not _AMOUNT.match(s):
        raise ValueError(
            f"{what} {s[:40]!r} is not a plain decimal number such as 1234.56 (no currency symbols "
            "or thousands separators)"
        )
    d = Decimal(s)
    units = fx.minor_units(ccy)
    if -d.as_tuple().exponent > units:
        raise ValueError(f"{what} {s} has more decimals than {ccy} has minor units ({units})")
    if len(s.lstrip("-").split(".")[0].lstrip("0")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"{what} {s[:40]} is too large")
    return abs(d) if d.is_zero() else d  # never a negative zero


def parse_revenue(data: bytes, stores: Mapping[str, str]) -> dict[tuple[str, dt.date], tuple[Decimal, Decimal]]:
    """``{(store_id, day): (revenue, costs)}`` from a revenue CSV; ``stores`` maps every known store id
    to its billing currency. FeeInputError naming every bad line."""
    reader, cols = open_table(
        data, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, "store_id,day,revenue (optional costs)", FeeInputError, MAX_FILE_BYTES
    )
    errors: list[str] = []
    rows: dict[tuple[str, dt.date], tuple[Decimal, Decimal]] = {}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
            break
        line_no = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(cols):
            errors.append(f"line {line_no}: {len(fields)} fields, expected {len(cols)}")
            continue
        rec = {c: f.strip() for c, f in zip(cols, fields)}
        problems: list[str] = []
        sid = rec["store_id"]
        ccy = stores.get(sid)
        if ccy is None:
            problems.append(
                f"unknown store {sid[:40]!r} (import its accounts first; see `python cli.py accounts list`)"
            )
        day = None
        if not _DAY.match(rec["day"]):
            problems.append(f"day {rec['day'][:40]!r} is not a date in the form YYYY-MM-DD")
        else:
            try:
                day = dt.date.fromisoformat(rec["day"])
            except ValueError:
                problems.append(f"day {rec['day']!r} is not a real date")
        revenue = costs = None
        if ccy is not None:
            try:
                revenue = parse_amount(rec["revenue"], ccy, "revenue")
            except ValueError as exc:
                problems.append(str(exc))
            try:
                costs = parse_amount(rec.get("costs") or "0", ccy, "costs")
                if costs < 0:
                    problems.append(f"costs {rec['costs']} is negative")
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            errors.append(f"line {line_no}: " + "; ".join(problems))
            continue
        rows[(sid, day)] = (revenue, costs)  # a later row for the same key replaces the earlier
    if errors:
        shown = errors[:50]
        more = f"; and {len(errors) - 50} more bad lines" if len(errors) > 50 else ""
        raise FeeInputError(f"nothing imported: {len(errors)} bad line(s): " + " | ".join(shown) + more)
    if not rows:
        raise FeeInputError("nothing imported: the file has a header but no rows")
    return rows


def import_revenue(store: SpendStore, path: str | Path, now: dt.datetime | None = None) -> RevenueImport:
    """Parse and store a revenue CSV in one transaction (module doc: Revenue)."""
    import pyarrow as pa

    amount_type = pa.decimal128(20, 6)
    path = Path(path)
    data = read_capped(path, MAX_FILE_BYTES, FeeInputError)
    stores = {s["store_id"]: s["billing_currency"] for s in store.stores()}
    rows = parse_revenue(data, stores)
    now = now or clock.now()
    keys = sorted(rows)
    tbl = pa.table(
        {
            "store_id": pa.array([k[0] for k in keys], pa.string()),
            "day": pa.array([k[1] for k in keys], pa.date32()),
            "revenue": pa.array([rows[k][0] for k in keys], amount_type),
            "costs": pa.array([rows[k][1] for k in keys], amount_type),
            "currency": pa.array([stores[k[0]] for k in keys], pa.string()),
        }
    )
    with store.transaction() as con:
        con.register("new_revenue", tbl)
        try:
            added, changed = con.execute(
                "SELECT count(*) FILTER (WHERE r.store_id IS NULL), count(*) FILTER (WHERE r.store_id IS NOT NULL "
                "AND (r.revenue <> n.revenue OR r.costs <> n.costs OR r.currency <> n.currency)) FROM new_revenue n "
                "LEFT JOIN store_revenue r ON r.store_id = n.store_id AND r.day = n.day"
            ).fetchone()
            # only new or different rows are written: a re-import changes nothing, not even imported_at
            con.execute(
                "INSERT OR REPLACE INTO store_revenue SELECT n.store_id, n.day, n.revenue, n.costs, "
                "n.currency, ? FROM new_revenue n LEFT JOIN store_revenue r ON r.store_id = n.store_id "
                "AND r.day = n.day WHERE r.store_id IS NULL OR r.revenue <> n.revenue OR "
                "r.costs <> n.costs OR r.currency <> n.currency",
                [now],
            )
        finally:
            con.unregister("new_revenue")
    return RevenueImport(len(keys), int(added), int(changed), len(keys) - int(added) - int(changed))


# --- fee rates -----------------------------------------------------------------------------------


def parse_percent(raw: str | Decimal | int) -> Decimal:
    s = str(raw).strip()
    if not _PERCENT.match(s) or Decimal(s) > 100:
        raise FeeInputError(
            f"--percent {s[:20]!r} must be a number from 0 to 100 with at most 4 decimals, e.g. 20 or 17.5"
        )
    return Decimal(s)


def rate_history(con_or_store, store_id: str) -> list[tuple[dt.date, Decimal]]:
    """``[(valid_from, percent)]`` of a store, oldest first."""
    sql = "SELECT valid_from, percent FROM fee_rates WHERE store_id = ? ORDER BY valid_from"
    from storage.db import SpendStore

    if isinstance(con_or_store, SpendStore):
        rows = con_or_store.query(sql, [store_id])
    else:
        rows = con_or_store.execute(sql, [store_id]).fetchall()
    return [(d, Decimal(p)) for d, p in rows]


def set_rate(
    store: SpendStore, store_id: str, percent, valid_from: dt.date | None = None, now: dt.datetime | None = None
) -> tuple[dt.date, Decimal, bool]:
    """Record ``percent`` for ``store_id`` from ``valid_from`` (default: the first day of the current
    month). Returns (valid_from, percent, changed)."""
    pct = parse_percent(percent)
    if store.store(store_id) is None:
        raise FeeInputError(f"unknown store {store_id!r}; see `python cli.py accounts list`")
    now = now or clock.now()
    valid_from = valid_from or now.date().replace(day=1)
    with store.transaction() as con:
        prev = con.execute(
            "SELECT percent FROM fee_rates WHERE store_id = ? AND valid_from = ?", [store_id, valid_from]
        ).fetchall()
        if prev and Decimal(prev[0][0]) == pct:
            return valid_from, pct, False
        con.execute("INSERT OR REPLACE INTO fee_rates VALUES (?, ?, ?, ?)", [store_id, valid_from, pct, now])
    return valid_from, pct, True


@dataclass(frozen=True)
class RateSegment:
    start: dt.date
    end: dt.date
    percent: Decimal

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def to_json(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "percent": _pct(self.percent),
            "days": self.days,
        }


def rate_segments(history: Sequence[tuple[dt.date, Decimal]], start: dt.date, end: dt.date) -> list[RateSegment]:
    """The day ranges of ``start..end`` with the rate in force on each (20 before the first change)."""
    history = sorted(history)
    out: list[RateSegment] = []
    d = start
    while d <= end:
        pct = DEFAULT_PERCENT
        nxt = None
        for valid_from, p in history:
            if valid_from <= d:
                pct = p
            elif nxt is None:
                nxt = valid_from
        seg_end = min(end, nxt - dt.timedelta(days=1)) if nxt else end
        if out and out[-1].percent == pct:
            out[-1] = RateSegment(out[-1].start, seg_end, pct)
        else:
            out.append(RateSegment(d, seg_end, pct))
        d = seg_end + dt.timedelta(days=1)
    return out


def _pct(p: Decimal) -> str:
    s = format(p.normalize(), "f")
    return s


# --- the computation -----------------------------------------------------------------------------


@dataclass
class FeeStatement:
    store_id: str
    store_name: str
    start: dt.date
    end: dt.date
    billing_currency: str
    revenue: Decimal
    costs: Decimal
    ad_spend: Decimal
    net_profit: Decimal
    segments: list[RateSegment]
    fee: Decimal
    revenue_days: int
    days: int
    spend_complete: bool
    spend_problems: list[str] = field(default_factory=list)
    missing_revenue: list[dt.date] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.spend_complete and self.revenue_days == self.days

    @property
    def provisional(self) -> bool:
        return not self.complete

    @property
    def loss(self) -> bool:
        return self.net_profit <= 0

    @property
    def fee_rate(self) -> str:
        """The rate in percent; the day-weighted average (4 decimals) when it changed in the period."""
        if len(self.segments) == 1:
            return _pct(self.segments[0].percent)
        avg = _DIV.divide(sum((s.percent * s.days for s in self.segments), Decimal(0)), self.days)
        return _pct(avg.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))

    @property
    def status(self) -> str:
        return "provisional" if self.provisional else "loss" if self.loss else "final"

    @property
    def note(self) -> str:
        """One sentence: why the fee is provisional and/or why it is 0."""
        parts = []
        if not self.spend_complete:
            parts.append("ad spend incomplete (" + (", ".join(self.spend_problems) or "no linked accounts") + ")")
        if self.revenue_days < self.days:
            first = self.missing_revenue[0].isoformat() if self.missing_revenue else ""
            parts.append(
                f"revenue missing for {self.days - self.revenue_days} of {self.days} days"
                + (f" (from {first})" if first else "")
            )
        text = ("provisional: " + "; ".join(parts)) if parts else "final"
        if self.loss:
            text += f"; {ZERO_RISK}" if parts else f": {ZERO_RISK}"
        return text

    def amounts(self) -> dict[str, str]:
        c = self.billing_currency
        return {
            "revenue": fx.format_amount(self.revenue, c),
            "ad_spend": fx.format_amount(self.ad_spend, c),
            "costs": fx.format_amount(self.costs, c),
            "net_profit": fx.format_amount(self.net_profit, c),
            "fee": fx.format_amount(self.fee, c),
        }

    def to_json(self) -> dict:
        return {
            "store_id": self.store_id,
            "store_name": self.store_name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "billing_currency": self.billing_currency,
            **self.amounts(),
            "fee_rate": self.fee_rate,
            "rates": [s.to_json() for s in self.segments],
            "complete": self.complete,
            "provisional": self.provisional,
            "loss": self.loss,
            "status": self.status,
            "note": self.note,
            "days": self.days,
            "revenue_days": self.revenue_days,
            "missing_revenue_days": [d.isoformat() for d in self.missing_revenue],
            "spend_complete": self.spend_complete,
        }

    def csv_row(self) -> list[str]:
        a = self.amounts()
        return [
            self.store_id,
            self.store_name,
            self.start.isoformat(),
            self.end.isoformat(),
            self.billing_currency,
            a["revenue"],
            a["ad_spend"],
            a["costs"],
            a["net_profit"],
            self.fee_rate,
            a["fee"],
            self.note,
        ]


def compute(
    *,
    store_id: str,
    store_name: str,
    start: dt.date,
    end: dt.date,
    currency: str,
    revenue_by_day: Mapping[dt.date, tuple[Decimal, Decimal]],
    ad_spend: Decimal,
    spend_complete: bool,
    rates: Sequence[tuple[dt.date, Decimal]] = (),
    spend_problems: Sequence[str] = (),
) -> FeeStatement:
    """The fee statement of one store and period from its inputs (module doc: The computation).
    Pure: exact Decimal arithmetic, one rounding (of the fee)."""
    if start > end:
        raise ValueError(f"the start date {start} is after the end date {end}")
    days = (end - start).days + 1
    inside = {d: v for d, v in revenue_by_day.items() if start <= d <= end}
    revenue = sum((v[0] for v in inside.values()), Decimal(0))
    costs = sum((v[1] for v in inside.values()), Decimal(0))
    ad_spend = fx.quantize(ad_spend, currency)
    net = revenue - ad_spend - costs
    segments = rate_segments(rates, start, end)
    if net > 0:
        weighted = sum((s.percent * s.days for s in segments), Decimal(0))
        exact = _DIV.divide(net * weighted, Decimal(100 * days))  # 60 digits: never a false tie
        fee = fx.quantize(exact, currency)
    else:
        fee = fx.quantize(0, currency)
    missing, d = [], start
    while d <= end:
        if d not in inside:
            missing.append(d)
        d += dt.timedelta(days=1)
    return FeeStatement(
        store_id,
        store_name,
        start,
        end,
        currency,
        fx.quantize(revenue, currency),
        fx.quantize(costs, currency),
        ad_spend,
        fx.quantize(net, currency),
        segments,
        fee,
        len(inside),
        days,
        spend_complete,
        list(spend_problems),
        missing,
    )


# --- from the database ---------------------------------------------------------------------------


def _revenue(con, store_id: str, start: dt.date, end: dt.date, currency: str) -> dict[dt.date, tuple[Decimal, Decimal]]:
    rows = con.execute(
        "SELECT day, revenue, costs FROM store_revenue WHERE store_id = ? AND day BETWEEN ? AND ? "
        "AND currency = ? ORDER BY day",
        [store_id, start, end, currency],
    ).fetchall()
    return {d: (Decimal(r), Decimal(c)) for d, r, c in rows}


def _statement(con, report) -> FeeStatement:
    """The statement of ``report``'s store and period: revenue and rates read through ``con``."""
    ccy = report.billing_currency
    problems = [f"{p} {pl.status}" for p, pl in report.platforms.items() if pl.status != "ok"]
    return compute(
        store_id=report.store_id,
        store_name=report.store_name,
        start=report.start,
        end=report.end,
        currency=ccy,
        revenue_by_day=_revenue(con, report.store_id, report.start, report.end, ccy),
        ad_spend=report.total,
        spend_complete=report.complete,
        rates=rate_history(con, report.store_id),
        spend_problems=problems,
    )


def preview(store: SpendStore, store_id: str, start: dt.date, end: dt.date) -> FeeStatement:
    """``fee preview``: the statement from the data stored now (UnknownStore for an unknown id)."""
    from .report import spend_report

    return preview_report(store, spend_report(store, store_id, start, end, today=clock.today()))


def preview_report(store: SpendStore, report) -> FeeStatement:
    """The statement of an already built spend report's store and period (the Invoicing page)."""
    with store.connect() as con:
        return _statement(con, report)


def has_revenue(store: SpendStore, store_id: str, start: dt.date, end: dt.date) -> bool:
    return bool(
        store.query(
            "SELECT 1 FROM store_revenue WHERE store_id = ? AND day BETWEEN ? AND ? LIMIT 1", [store_id, start, end]
        )
    )


def render_csv(statements: Sequence[FeeStatement]) -> bytes:
    from .export import neutralise, neutralise_text

    money = {"revenue", "ad_spend", "costs", "net_profit", "fee_rate", "fee"}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FEE_CSV_HEADER)
    for s in statements:
        w.writerow(
            [neutralise(c) if name in money else neutralise_text(c) for name, c in zip(FEE_CSV_HEADER, s.csv_row())]
        )
    return buf.getvalue().encode("utf-8")


# --- frozen with an invoice ----------------------------------------------------------------------

_SNAP_COLS = (
    "invoice_number",
    "invoice",
    "store_id",
    "store_name",
    "period_start",
    "period_end",
    "billing_currency",
    "revenue",
    "costs",
    "ad_spend",
    "net_profit",
    "fee_rate",
    "rates",
    "fee",
    "status",
    "note",
    "revenue_days",
    "days",
    "csv_sha256",
    "frozen_at",
)
_FREEZE_COLS = (*_SNAP_COLS[:-2], "csv", "csv_sha256", "frozen_at")
_FREEZE_PARAMS = ", ".join("?" * len(_FREEZE_COLS))


def freeze(con, number: int, invoice: str, report, now: dt.datetime) -> FeeStatement:
    """Write the fee statement of a just-finalized invoice through ``con`` (the finalize transaction)."""
    s = _statement(con, report)
    data = render_csv([s])
    con.execute(
        f"INSERT INTO fee_statements ({', '.join(_FREEZE_COLS)}) VALUES ({_FREEZE_PARAMS})",
        [
            number,
            invoice,
            s.store_id,
            s.store_name,
            s.start,
            s.end,
            s.billing_currency,
            s.revenue,
            s.costs,
            s.ad_spend,
            s.net_profit,
            s.fee_rate,
            json.dumps([g.to_json() for g in s.segments]),
            s.fee,
            s.status,
            s.note,
            s.revenue_days,
            s.days,
            data,
            hashlib.sha256(data).hexdigest(),
            now,
        ],
    )
    return s


def fee_snapshot_content(con_or_store, number: int) -> dict | None:
    """The canonical content of invoice ``number``'s frozen fee statement (every value a string or
    int; amounts in the billing currency's minor units), or None when it has none (an invoice
    finalized before fee statements existed). Meant for the invoice's tamper-evident hash."""
    sql = f"SELECT {', '.join(_SNAP_COLS)} FROM fee_statements WHERE invoice_number = ?"
    from storage.db import SpendStore

    if isinstance(con_or_store, SpendStore):
        rows = con_or_store.query(sql, [int(number)])
    else:
        rows = con_or_store.execute(sql, [int(number)]).fetchall()
    if not rows:
        return None
    d = dict(zip(_SNAP_COLS, rows[0]))
    ccy = d["billing_currency"]
    for k in ("revenue", "costs", "ad_spend", "net_profit", "fee"):
        d[k] = fx.format_amount(Decimal(d[k]), ccy)
    d["period_start"], d["period_end"] = d["period_start"].isoformat(), d["period_end"].isoformat()
    d["rates"] = json.loads(d["rates"])
    d.pop("frozen_at")
    return d


def fee_csv(store: SpendStore, number: int) -> bytes:
    """The frozen fee CSV of invoice ``number`` (the exact bytes stored at finalize)."""
    from storage.db import DatabaseError

    rows = store.query("SELECT csv, csv_sha256, invoice FROM fee_statements WHERE invoice_number = ?", [int(number)])
    if not rows:
        raise NoFeeStatement(
            f"INV-{int(number):06d} has no fee statement: it was finalized before fee statements "
            "existed; `python cli.py fee preview` shows the fee of its period from today's data"
        )
    data, sha, invoice = bytes(rows[0][0]), rows[0][1], rows[0][2]
    if hashlib.sha256(data).hexdigest() != sha:
        raise DatabaseError(
            f"{invoice}: the stored fee CSV does not match its checksum; the database was altered outside Ad Spend Hub"
        )
    return data


def fee_diff(store: SpendStore, number: int) -> dict | None:
    """``{"snapshot", "current", "difference"}`` of an invoice's fee statement (None without one):
    amounts as decimal strings in the billing currency; ``difference`` = current - snapshot."""
    snap = fee_snapshot_content(store, number)
    if snap is None:
        return None
    from .report import UnknownStore

    try:
        cur = preview(
            store,
            snap["store_id"],
            dt.date.fromisoformat(snap["period_start"]),
            dt.date.fromisoformat(snap["period_end"]),
        )
    except UnknownStore:
        return None
    ccy = snap["billing_currency"]
    keys = ("revenue", "ad_spend", "costs", "net_profit", "fee")
    s = {k: snap[k] for k in keys} | {"fee_rate": snap["fee_rate"], "status": snap["status"]}
    c = cur.amounts() | {"fee_rate": cur.fee_rate, "status": cur.status, "complete": cur.complete}
    diff = {k: fx.format_amount(Decimal(c[k]) - Decimal(s[k]), ccy) for k in keys}
    return {
        "billing_currency": ccy,
        "snapshot": s,
        "current": c,
        "difference": diff,
        "changed": any(Decimal(v) != 0 for v in diff.values()) or s["fee_rate"] != c["fee_rate"],
    }


def fee_diff_text(fee: dict) -> str:
    """One line of `invoice diff`: the fee (and net profit) then and now."""
    s, c, d, ccy = fee["snapshot"], fee["current"], fee["difference"], fee["billing_currency"]
    return (
        f"    fee        snapshot {s['fee']} current {c['fee']} difference {d['fee']} {ccy} (net profit "
        f"{s['net_profit']} -> {c['net_profit']}, rate {s['fee_rate']}% -> {c['fee_rate']}%"
        f"{'' if c['complete'] else ', current fee provisional'})"
    )


# --- observed fees (the Revenue-impact page) -----------------------------------------------------


@dataclass
class ObservedFees:
    currency: str
    stores: int  # stores in the database
    with_revenue: int  # stores with revenue imported for the period
    provisional: int  # of those, how many statements are provisional
    real_fee: Decimal  # their fees for the period, in ``currency``
    real_spend: Decimal  # their ad spend, in ``currency`` (to take out of the model)
    fx_missing: list[str] = field(default_factory=list)  # stores whose fee could not be converted


def observed_fees(store: SpendStore, start: dt.date, end: dt.date, currency: str = "USD") -> ObservedFees:
    """The real fee statements of every store that has revenue in the period, converted into
    ``currency`` with the ECB rate of the period's last day (fx.quote rules)."""
    from .report import spend_reports

    ids = [
        r[0]
        for r in store.query(
            "SELECT DISTINCT store_id FROM store_revenue WHERE day BETWEEN ? AND ? ORDER BY 1", [start, end]
        )
    ]
    n_stores = int(store.query("SELECT count(*) FROM stores")[0][0])
    out = ObservedFees(currency, n_stores, 0, 0, Decimal(0), Decimal(0))
    if not ids:
        return out
    reports = spend_reports(store, ids, start, end, today=clock.today())
    with store.connect() as con:
        for sid in ids:
            if sid not in reports:
                continue
            s = _statement(con, reports[sid])
            try:
                rate = fx.quote(s.billing_currency, currency, end, reports[sid].rates).rate
            except fx.FxMissing:
                out.fx_missing.append(sid)
                continue
            out.with_revenue += 1
            out.provisional += s.provisional
            out.real_fee += fx.quantize(s.fee * rate, currency)
            out.real_spend += fx.quantize(s.ad_spend * rate, currency)
    return out


def blended_fee_per_month(
    model_fee_per_month: Decimal, obs: ObservedFees, months: Decimal, net_profit_share: Decimal, fee_rate: Decimal
) -> Decimal:
    """The Revenue-impact page's observed fee a month: the model's estimate (spend x net profit share
    x rate), with the stores that have revenue counted by their real fee instead of the estimate."""
    if not obs.with_revenue or not months:
        return model_fee_per_month
    return model_fee_per_month - obs.real_spend / months * net_profit_share * fee_rate + obs.real_fee / months


# --- CLI: `python cli.py revenue import` and `fee rate | preview` ---------------------------------


def _open(args) -> SpendStore:
    import os

    from storage.db import SpendStore

    return SpendStore(args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb")


def cmd_revenue_import(args) -> int:
    try:
        r = import_revenue(_open(args), args.file)
    except FeeInputError as exc:
        raise ValueError(str(exc)) from None
    print(
        f"imported {args.file}: {r.rows} store-day row(s): {r.added} new, {r.changed} changed, {r.unchanged} unchanged"
    )
    return 0


def cmd_fee_rate(args) -> int:
    store = _open(args)
    try:
        valid_from, pct, changed = set_rate(store, args.store, args.percent, args.valid_from)
    except FeeInputError as exc:
        raise ValueError(str(exc)) from None
    history = rate_history(store, args.store)
    if args.json:
        import sys

        json.dump(
            {
                "store_id": args.store,
                "from": valid_from.isoformat(),
                "percent": _pct(pct),
                "changed": changed,
                "history": [{"from": d.isoformat(), "percent": _pct(p)} for d, p in history],
            },
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    print(
        f"store {args.store}: {_pct(pct)}% from {valid_from}"
        + ("" if changed else " (unchanged)")
        + f"; before {history[0][0]}: {_pct(DEFAULT_PERCENT)}%"
    )
    for d, p in history:
        print(f"    from {d}  {_pct(p)}%")
    return 0


def cmd_fee_preview(args) -> int:
    from .invoices import requested_period
    from .report import UnknownStore

    start, end = requested_period(args.month, args.start, args.end)
    store = _open(args)
    try:
        s = preview(store, args.store, start, end)
    except UnknownStore as exc:
        raise ValueError(str(exc)) from None
    if args.json:
        print(json.dumps(s.to_json(), indent=2))
        return 0
    a, c = s.amounts(), s.billing_currency
    print(f"{s.store_name} ({s.store_id}) {s.start}..{s.end} [{c}]")
    for label, key in (
        ("revenue", "revenue"),
        ("ad spend", "ad_spend"),
        ("costs", "costs"),
        ("net profit", "net_profit"),
    ):
        print(f"    {label:<12}{a[key]:>16}")
    rates = ", ".join(f"{_pct(g.percent)}% {g.start}..{g.end}" for g in s.segments)
    print(f"    {'rate':<12}{s.fee_rate + '%':>16}" + (f"  (prorated by days: {rates})" if len(s.segments) > 1 else ""))
    print(f"    {'fee':<12}{a['fee']:>16}" + ("  PROVISIONAL" if s.provisional else ""))
    print(s.note)
    return 0


def add_cli(subparsers, date_type, parser_class) -> None:
    """Add ``revenue import`` and ``fee rate | preview`` to cli.py's parser (cli.py calls this)."""
    rev = subparsers.add_parser("revenue", help="import store revenue (for the success fee)")
    rsub = rev.add_subparsers(dest="action", required=True, parser_class=parser_class)
    imp = rsub.add_parser("import", help="revenue per store and day from a CSV (store_id,day,revenue[,costs])")
    imp.add_argument("file")
    imp.set_defaults(handler=cmd_revenue_import)

    fee = subparsers.add_parser("fee", help="success-fee rates and previews")
    fsub = fee.add_subparsers(dest="action", required=True, parser_class=parser_class)
    rate = fsub.add_parser("rate", help="set a store's success-fee rate from a date (default 20%%)")
    rate.add_argument("--store", required=True)
    rate.add_argument("--percent", required=True)
    rate.add_argument(
        "--from",
        dest="valid_from",
        type=date_type,
        help="YYYY-MM-DD the rate applies from (default: the first day of the current month)",
    )
    rate.add_argument("--json", action="store_true")
    rate.set_defaults(handler=cmd_fee_rate)
    pv = fsub.add_parser("preview", help="revenue, ad spend, costs, net profit and the fee of a period")
    pv.add_argument("--store", required=True)
    pv.add_argument("--month", help="YYYY-MM (instead of --start/--end)")
    pv.add_argument("--start", type=date_type)
    pv.add_argument("--end", type=date_type)
    pv.add_argument("--json", action="store_true")
    pv.set_defaults(handler=cmd_fee_preview)
