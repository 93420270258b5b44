"""Monthly spend budgets per store (optionally per platform), in the store's billing currency.

The import format is shared/interfaces.md's: header ``store_id,month,amount`` plus optional
``platform`` (empty = the whole store) and ``currency`` (when given, it must be the store's billing
currency). ``month`` is ``YYYY-MM``; ``amount`` an exact, non-negative decimal in the billing
currency's minor units at most. A file with any bad row imports nothing and names every bad line;
re-importing the same rows changes nothing; a later row for the same (store, month, platform)
replaces the earlier one (in the file and in the database). The Accounts page's editor saves
through :func:`validate_rows` and :func:`save_budgets` too, so both paths refuse the same input.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from fetchers.specs import PLATFORM_IDS

from . import fx
from .csv_input import open_table, read_capped

if TYPE_CHECKING:
    from storage.db import SpendStore

REQUIRED_COLUMNS = ("store_id", "month", "amount")
OPTIONAL_COLUMNS = ("platform", "currency")
MAX_FILE_BYTES = 5 * 1024 * 1024
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


class BudgetError(ValueError):
    """The budget input is unusable; the message names every bad line."""


@dataclass(frozen=True)
class Budget:
    store_id: str
    month: dt.date  # first day of the month
    platform: str  # '' = the whole store
    amount: Decimal  # billing currency, exact
    currency: str

    @property
    def month_label(self) -> str:
        return self.month.strftime("%Y-%m")


@dataclass
class BudgetImportResult:
    added: int
    changed: int
    unchanged: int


def parse_month(text: str) -> dt.date:
    m = _MONTH.match((text or "").strip())
    if not m or not (1 <= int(m.group(2)) <= 12) or int(m.group(1)) < 1:
        raise ValueError(f"month {str(text)[:40]!r} is not a month in the form YYYY-MM")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def _amount(text: str, ccy: str) -> Decimal:
    raw = (text or "").strip()
    if not _NUMBER.match(raw):
        raise ValueError(f"amount {raw[:40]!r} is not a number (plain decimal, e.g. 1500.00)")
    value = Decimal(raw)
    if value < 0:
        raise ValueError(f"amount {raw} is negative")
    if fx.quantize(value, ccy) != value:
        raise ValueError(f"amount {raw} has more decimal places than {ccy} has ({fx.minor_units(ccy)})")
    if value >= Decimal(10) ** 14:
        raise ValueError(f"amount {raw} is too large")
    return value


def _fail(errors: list[str]) -> BudgetError:
    more = f"; and {len(errors) - 50} more bad lines" if len(errors) > 50 else ""
    return BudgetError(f"nothing imported: {len(errors)} bad line(s): " + " | ".join(errors[:50]) + more)


def validate_rows(store: SpendStore, records: Iterable[tuple[int | str, Mapping[str, str]]]) -> list[Budget]:
    """Validate (line label, {column: text}) records against the stores; BudgetError listing
    every bad line, else the budgets (a later record for the same key replaces the earlier)."""
    budgets, errors = _validate(store, records)
    if errors:
        raise _fail(errors)
    return budgets


def _validate(store: SpendStore, records) -> tuple[list[Budget], list[str]]:
    stores = {s["store_id"]: s for s in store.stores()}
    errors: list[str] = []
    out: dict[tuple[str, dt.date, str], Budget] = {}
    for label, rec in records:
        problems = []
        sid = (rec.get("store_id") or "").strip()
        meta = stores.get(sid)
        if meta is None:
            problems.append(f"unknown store {sid[:40]!r}")
        month = None
        try:
            month = parse_month(rec.get("month") or "")
        except ValueError as exc:
            problems.append(str(exc))
        platform = (rec.get("platform") or "").strip().lower()
        if platform and platform not in PLATFORM_IDS:
            problems.append(
                f"unknown platform {platform[:40]!r}; expected one of {', '.join(PLATFORM_IDS)} "
                "or empty for the whole store"
            )
        ccy = meta["billing_currency"] if meta else "USD"
        given_ccy = (rec.get("currency") or "").strip().upper()
        if meta is not None and given_ccy and given_ccy != ccy:
            problems.append(f"currency {given_ccy[:10]!r} is not store {sid}'s billing currency {ccy}")
        amount = None
        try:
            amount = _amount(rec.get("amount") or "", ccy)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            errors.append(f"{label}: " + "; ".join(problems))
            continue
        out[(sid, month, platform)] = Budget(sid, month, platform, amount, ccy)
    return list(out.values()), errors


def parse_csv(store: SpendStore, data: bytes) -> list[Budget]:
    reader, cols = open_table(
        data,
        REQUIRED_COLUMNS,
        OPTIONAL_COLUMNS,
        "store_id,month,amount (optional platform, currency)",
        BudgetError,
        MAX_FILE_BYTES,
    )
    records: list[tuple[str, dict]] = []
    bad: list[str] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            bad.append(f"line {reader.line_num}: not valid CSV ({exc})")
            break
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(cols):
            bad.append(f"line {reader.line_num}: {len(fields)} fields, expected {len(cols)}")
            continue
        records.append((f"line {reader.line_num}", dict(zip(cols, fields))))
    budgets, errors = _validate(store, records)
    bad = sorted(bad + errors, key=lambda e: int(e.split(":")[0].split()[-1]))
    if bad:
        raise _fail(bad)
    if not budgets:
        raise BudgetError("nothing imported: the file has a header but no rows")
    return budgets


def save_budgets(
    store: SpendStore,
    budgets: Sequence[Budget],
    replace_store_months: Sequence[tuple[str, dt.date]] = (),
) -> BudgetImportResult:
    """Upsert budgets in one transaction (bulk, through an Arrow table); unchanged rows are not
    touched. ``replace_store_months``: (store, month) pairs whose budgets not in ``budgets`` are
    removed (the editor's 'this is the whole list' save)."""
    import pyarrow as pa

    amount_type = pa.decimal128(20, 6)
    keys = {(b.store_id, b.month, b.platform) for b in budgets}
    tbl = pa.table(
        {
            "store_id": pa.array([b.store_id for b in budgets], pa.string()),
            "month": pa.array([b.month for b in budgets], pa.date32()),
            "platform": pa.array([b.platform for b in budgets], pa.string()),
            "amount": pa.array([b.amount for b in budgets], amount_type),
            "currency": pa.array([b.currency for b in budgets], pa.string()),
        }
    )
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as con:
        con.register("new_budgets", tbl)
        added, changed = con.execute(
            "SELECT count(*) FILTER (WHERE b.store_id IS NULL), "
            "count(*) FILTER (WHERE b.store_id IS NOT NULL AND (b.amount <> n.amount OR b.currency <> n.currency)) "
            "FROM new_budgets n LEFT JOIN budgets b ON b.store_id = n.store_id AND b.month = n.month "
            "AND b.platform = n.platform"
        ).fetchone()
        con.execute(
            "INSERT INTO budgets SELECT store_id, month, platform, amount, currency, ? FROM new_budgets n "
            "ON CONFLICT (store_id, month, platform) DO UPDATE SET amount = excluded.amount, "
            "currency = excluded.currency, updated_at = excluded.updated_at "
            "WHERE budgets.amount <> excluded.amount OR budgets.currency <> excluded.currency",
            [now],
        )
        con.unregister("new_budgets")
        removed = 0
        for sid, month in replace_store_months:
            gone = [
                r
                for r in con.execute(
                    "SELECT platform FROM budgets WHERE store_id = ? AND month = ?", [sid, month]
                ).fetchall()
                if (sid, month, r[0]) not in keys
            ]
            for (platform,) in gone:
                con.execute(
                    "DELETE FROM budgets WHERE store_id = ? AND month = ? AND platform = ?", [sid, month, platform]
                )
                removed += 1
    return BudgetImportResult(int(added), int(changed) + removed, len(budgets) - int(added) - int(changed))


def import_budgets(store: SpendStore, path: Path) -> BudgetImportResult:
    data = read_capped(path, MAX_FILE_BYTES, BudgetError)
    return save_budgets(store, parse_csv(store, data))


def load_budgets(
    store: SpendStore, store_ids: Sequence[str] | None = None, month: dt.date | None = None
) -> list[Budget]:
    sql = "SELECT store_id, month, platform, amount, currency FROM budgets WHERE 1=1"
    params: list = []
    if store_ids is not None:
        sql += " AND list_contains(?, store_id)"
        params.append(list(store_ids))
    if month is not None:
        sql += " AND month = ?"
        params.append(month.replace(day=1))
    sql += " ORDER BY store_id, month, platform"
    return [Budget(r[0], r[1], r[2], Decimal(r[3]), r[4]) for r in store.query(sql, params)]


def editor_rows(store: SpendStore, store_id: str) -> list[dict]:
    """The store's budgets as plain strings, for the Accounts page's editor."""
    return [
        {"month": b.month_label, "platform": b.platform, "amount": format(fx.quantize(b.amount, b.currency), "f")}
        for b in load_budgets(store, [store_id])
    ]


def save_editor_rows(store: SpendStore, store_id: str, rows: Sequence[Mapping]) -> BudgetImportResult:
    """Save the editor's table as the store's whole budget list: validated like an import
    (BudgetError names every bad row), then budgets of the store that are no longer listed are
    removed, all in one transaction."""
    records = []
    for i, r in enumerate(rows, start=1):
        rec = {
            k: ("" if r.get(k) is None or r.get(k) != r.get(k) else str(r.get(k)))
            for k in ("month", "platform", "amount")
        }
        if not any(v.strip() for v in rec.values()):
            continue
        records.append((f"row {i}", {"store_id": store_id, **rec}))
    budgets = validate_rows(store, records)
    months = {m for (m,) in store.query("SELECT DISTINCT month FROM budgets WHERE store_id = ?", [store_id])}
    months |= {b.month for b in budgets}
    return save_budgets(store, budgets, [(store_id, m) for m in sorted(months)])


def cmd_import(args) -> int:
    """``budgets import FILE.csv``: exit 2 (ValueError) naming every bad line, nothing imported."""
    import os
    import sys

    from storage.db import DatabaseBusy, DatabaseError, SpendStore

    try:
        store = SpendStore(args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb")
    except (DatabaseBusy, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    res = import_budgets(store, Path(args.file))  # BudgetError is a ValueError: exit 2
    print(f"imported {args.file}: {res.added} new budget(s), {res.changed} changed, {res.unchanged} unchanged")
    return 0
