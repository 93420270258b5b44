"""The invoice CSV (shared/interfaces.md, `export`): one row per platform x account, then TOTAL.

Written atomically (a temporary file renamed into place), UTF-8, fixed column order. Cells a
spreadsheet would run as a formula are neutralised with a leading apostrophe. ``billing_amount``
of the TOTAL row is the exact sum of the rows above it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from . import fx
from .report import SpendReport

HEADER = [
    "store_id",
    "store_name",
    "period_start",
    "period_end",
    "platform",
    "account_id",
    "account_name",
    "account_currency",
    "spend",
    "fx_rate",
    "billing_currency",
    "billing_amount",
    "day_basis",
    "status",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# the columns that hold numbers we computed; every other column is text from users or platforms
MONEY_COLUMNS = frozenset({"spend", "fx_rate", "billing_amount"})


class IncompleteExport(RuntimeError):
    """The period is not complete and the caller did not allow an incomplete export."""


def neutralise_text(value: object) -> str:
    """A text cell as a spreadsheet will show it, never run: text starting with =, +, -, @, tab or
    CR gets a leading apostrophe, even when it reads as a number (``-1E+2``, ``-Infinity``,
    ``+NaN``). Text that itself starts with an apostrophe gets one more, so that
    :func:`unneutralise` gives back exactly the original (the mapping CSV round-trips)."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(_FORMULA_START + ("'",)) else s


def unneutralise(value: str) -> str:
    """The inverse of :func:`neutralise_text` (for imports of a CSV this product wrote)."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START + ("'",)):
        return value[1:]
    return value


def neutralise(value: object) -> str:
    """A cell whose column may hold a number: a plain decimal (``-12.50``, a negative adjustment)
    stays as it is; anything else is :func:`neutralise_text`. Prefer :func:`neutralise_row` (by
    column) or :func:`neutralise_text` for text columns."""
    s = "" if value is None else str(value)
    return s if _PLAIN_NUMBER.fullmatch(s) else neutralise_text(s)


def neutralise_row(row: list, header: list[str] | None = None) -> list[str]:
    """One CSV row of ``header`` (default the export HEADER): money columns as plain decimals,
    every other column as text (:func:`neutralise_text`)."""
    header = header or HEADER
    return [neutralise(c) if name in MONEY_COLUMNS else neutralise_text(c) for name, c in zip(header, row)]


def report_rows(report: SpendReport) -> list[list[str]]:
    """The rows of one store: its accounts, then its TOTAL row."""
    rows: list[list[str]] = []
    total = Decimal(0)
    base = [report.store_id, report.store_name, report.start.isoformat(), report.end.isoformat()]
    for pid, pl in report.platforms.items():
        if not pl.accounts:  # not_configured: one row that says so, with no amount
            rows.append(base + [pid, "", "", "", "", "", report.billing_currency, "", "", pl.status])
            continue
        for a in pl.accounts:
            billing = a.billing_amount if a.billing_amount is not None else None
            if billing is not None:
                total += billing
            status = a.status if a.status == "ok" else f"{a.status}: {a.error}" if a.error else a.status
            rows.append(
                base
                + [
                    pid,
                    a.account_id,
                    a.account_name,
                    a.currency,
                    str(fx.quantize(a.spend, a.currency)) if a.currency != "?" else str(a.spend),
                    "1" if a.fx_rate == 1 else ("" if a.fx_rate is None else format(a.fx_rate, "f")),
                    report.billing_currency,
                    "" if billing is None else str(billing),
                    "UTC" if a.day_basis == "UTC" else (a.timezone or a.day_basis),
                    status,
                ]
            )
    rows.append(
        base
        + [
            "TOTAL",
            "",
            "",
            "",
            "",
            "",
            report.billing_currency,
            str(total),
            "",
            "ok" if report.complete else "incomplete",
        ]
    )
    return rows


def render_csv(reports: Iterable[SpendReport]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for report in reports:
        for row in report_rows(report):
            w.writerow(neutralise_row(row))
    return buf.getvalue().encode("utf-8")


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def export_reports(
    reports: list[SpendReport],
    out: str | os.PathLike,
    allow_incomplete: bool = False,
    *,
    force: bool = False,
    db: str | os.PathLike | None = None,
) -> bytes:
    """Write the CSV to ``out`` by ``service/outfile.write_new_file`` (never over the database or
    the token cache; never over an existing file unless ``force``)."""
    from .outfile import write_new_file

    incomplete = [r for r in reports if not r.complete]
    if incomplete and not allow_incomplete:
        names = ", ".join(f"{r.store_id} ({_why(r)})" for r in incomplete[:5])
        more = f" and {len(incomplete) - 5} more" if len(incomplete) > 5 else ""
        raise IncompleteExport(
            f"not exported: the period is incomplete for {names}{more}; refresh first, or pass "
            "--allow-incomplete to export with every incomplete row marked"
        )
    data = render_csv(reports)
    write_new_file(out, data, force=force, db=db)
    return data


def _why(report: SpendReport) -> str:
    bad = [f"{p} {pl.status}" for p, pl in report.platforms.items() if pl.status != "ok"]
    return ", ".join(bad) or "no linked accounts"
