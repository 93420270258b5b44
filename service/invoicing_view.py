"""Table rows for the Invoicing page (pages/6_Invoicing.py): plain dicts.

Amounts are exact ``Decimal`` values (``None`` when unknown, never a silent 0) so the page shows
them as numeric, sortable columns formatted by Streamlit (thousands separators, the currency);
tests compare the page's cells with these rows. Everything else is text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from fetchers.specs import SPECS

from . import fx
from .invoices import InvoiceDiff, InvoiceSummary, Readiness, day_basis_label

OVERVIEW_COLUMNS = ("store", "name", "currency", "total", "data", "state", "invoice", "restated since", "problems")
LINE_COLUMNS = (
    "platform",
    "account",
    "name",
    "currency",
    "spend",
    "fx_rate",
    "billing",
    "day_basis",
    "days",
    "status",
    "note",
)
ISSUE_COLUMNS = ("platform", "account", "problem", "detail", "refresh fixes it")
DIFF_COLUMNS = (
    "platform",
    "account",
    "currency",
    "snapshot",
    "current",
    "difference",
    "billing difference",
    "status",
    "changed days",
)
INVOICE_COLUMNS = ("invoice", "store", "name", "period", "currency", "total", "finalized at", "by")
SNAPSHOT_COLUMNS = ("platform", "account", "currency", "invoiced spend", "invoiced", "restated", "change", "status")
#: Columns holding amounts: in the billing currency ("billing") or in the row's own currency ("own").
MONEY_COLUMNS = {
    "total": "own",
    "spend": "own",
    "billing": "billing",
    "snapshot": "own",
    "current": "own",
    "difference": "own",
    "billing difference": "billing",
    "invoiced spend": "own",
    "invoiced": "billing",
    "restated": "billing",
    "change": "billing",
}


def platform_name(pid: str) -> str:
    return SPECS[pid].name if pid in SPECS else pid


def overview_rows(items: Iterable[Readiness]) -> list[dict]:
    rows = []
    for r in items:
        rows.append(
            {
                "store": r.store_id,
                "name": r.report.store_name,
                "currency": r.report.billing_currency,
                "total": fx.quantize(r.report.total, r.report.billing_currency) if _has_data(r) else None,
                "data": "complete" if r.report.complete else "incomplete",
                "state": r.state,
                "invoice": r.invoice.invoice if r.invoice else ", ".join(i.invoice for i in r.invoices),
                "restated since": _restated(r),
                "problems": len(r.issues),
            }
        )
    return rows


def _has_data(r: Readiness) -> bool:
    """Something is stored for the period (otherwise the total is unknown, never a silent 0.00)."""
    return any(pl.status not in ("missing", "not_configured") for pl in r.report.platforms.values())


def _restated(r: Readiness) -> str:
    """For a finalized period: ``no``, or the billing difference since finalize (``+133.47``)."""
    d = r.restatement
    if d is None:
        return ""
    if not d.changed:
        return "no"
    amount = fx.format_amount(d.total_difference, d.billing_currency)
    return (
        ("+" if d.total_difference > 0 else "") + amount + ("" if d.current_complete and d.exact else " (incomplete)")
    )


def counts(items: Iterable[Readiness]) -> dict[str, int]:
    out = {"stores": 0, "ready": 0, "finalized": 0, "not ready": 0}
    for r in items:
        out["stores"] += 1
        if r.invoice is not None:
            out["finalized"] += 1
        elif r.finalizable:
            out["ready"] += 1
        else:
            out["not ready"] += 1
    return out


def line_rows(r: Readiness) -> list[dict]:
    """The invoice lines as they would be printed now (one per platform x account)."""
    rows = []
    for pid, pl in r.report.platforms.items():
        if not pl.accounts:
            rows.append(
                {
                    "platform": platform_name(pid),
                    "account": "",
                    "name": "",
                    "currency": "",
                    "spend": None,
                    "fx_rate": "",
                    "billing": None,
                    "day_basis": "",
                    "days": "",
                    "status": pl.status,
                    "note": pl.error or "",
                }
            )
            continue
        for a in pl.accounts:
            rows.append(
                {
                    "platform": platform_name(pid),
                    "account": a.account_id,
                    "name": a.account_name,
                    "currency": a.currency,
                    "spend": fx.quantize(a.spend, a.currency) if a.currency != "?" else a.spend,
                    "fx_rate": "1" if a.fx_rate == 1 else ("" if a.fx_rate is None else format(a.fx_rate, "f")),
                    "billing": a.billing_amount,
                    "day_basis": day_basis_label(a),
                    "days": f"{a.days}/{a.days_expected}",
                    "status": a.status,
                    "note": "; ".join(x for x in (a.error, a.fx_note) if x),
                }
            )
    return rows


def issue_rows(r: Readiness) -> list[dict]:
    return [
        {
            "platform": platform_name(i.platform) if i.platform else "",
            "account": i.account_id,
            "problem": i.kind,
            "detail": i.message,
            "refresh fixes it": "yes" if i.refresh_fixes else "no",
        }
        for i in r.issues
    ]


def diff_rows(d: InvoiceDiff) -> list[dict]:
    b = d.billing_currency
    rows = []
    for line in d.lines:
        rows.append(
            {
                "platform": platform_name(line.platform),
                "account": line.account_id,
                "currency": line.currency,
                "snapshot": fx.quantize(line.snapshot or 0, line.currency),
                "current": None if line.current is None else fx.quantize(line.current, line.currency),
                "difference": None if line.difference is None else fx.quantize(line.difference, line.currency),
                "billing difference": (
                    None if line.billing_difference is None else fx.quantize(line.billing_difference, b)
                ),
                "status": line.status,
                "changed days": _day_ranges(line.changed_days),
            }
        )
    return rows


def snapshot_rows(d: InvoiceDiff) -> list[dict]:
    """A finalized invoice's lines AS INVOICED (the snapshot), with today's restated billing amount
    and the difference beside each; ``restated`` is None when it cannot be converted or is unknown."""
    b = d.billing_currency
    return [
        {
            "platform": platform_name(line.platform),
            "account": line.account_id,
            "currency": line.currency,
            "invoiced spend": None if line.snapshot is None else fx.quantize(line.snapshot, line.currency),
            "invoiced": fx.quantize(line.billing_snapshot or 0, b),
            "restated": None if line.billing_current is None else fx.quantize(line.billing_current, b),
            "change": None if line.billing_difference is None else fx.quantize(line.billing_difference, b),
            "status": "not on the invoice" if line.snapshot is None else line.status,
        }
        for line in d.lines
    ]


@dataclass(frozen=True)
class SnapshotTotals:
    invoiced: Decimal  # the invoice's total, as finalized
    restated: Decimal | None  # what the same lines add up to now (None: some line is not known)
    difference: Decimal


def snapshot_totals(d: InvoiceDiff) -> SnapshotTotals:
    b = d.billing_currency
    restated = None
    if d.exact:
        restated = fx.quantize(sum((line.billing_current for line in d.lines), Decimal(0)), b)
    return SnapshotTotals(Decimal(d.invoice.total), restated, fx.quantize(d.total_difference, b))


def invoice_rows(invoices: Iterable[InvoiceSummary]) -> list[dict]:
    return [
        {
            "invoice": i.invoice,
            "store": i.store_id,
            "name": i.store_name,
            "period": f"{i.start}..{i.end}",
            "currency": i.billing_currency,
            "total": Decimal(i.total),
            "finalized at": i.finalized_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "by": i.finalized_by,
        }
        for i in invoices
    ]


def _day_ranges(days: list[str]) -> str:
    """``2025-12-20..2025-12-29, 2025-12-31``: consecutive days folded."""
    if not days:
        return ""
    ds = sorted(dt.date.fromisoformat(d) for d in days)
    out, lo, hi = [], ds[0], ds[0]
    for d in ds[1:]:
        if d == hi + dt.timedelta(days=1):
            hi = d
            continue
        out.append(f"{lo}..{hi}" if hi != lo else str(lo))
        lo = hi = d
    out.append(f"{lo}..{hi}" if hi != lo else str(lo))
    return ", ".join(out)
