"""The SQL of the invoices (tables ``invoices`` and ``invoice_lines``, storage/migrations.py).

service/invoices.py holds the rules (readiness, numbering, snapshots, diffs) and calls these;
nothing here changes or removes an invoice: there are only SELECTs and INSERTs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

#: Columns of an invoice's summary, in the order of service/invoices.InvoiceSummary's fields.
SUMMARY_COLS = (
    "number",
    "invoice",
    "store_id",
    "store_name",
    "period_start",
    "period_end",
    "billing_currency",
    "total",
    "finalized_at",
    "finalized_by",
    "source",
    "csv_sha256",
)
#: Columns of an invoice line, in the order of service/invoices.SnapshotLine's fields.
LINE_COLS = (
    "line_no",
    "platform",
    "account_id",
    "account_name",
    "currency",
    "spend",
    "spend_exact",
    "fx_rate",
    "billing_amount",
    "day_basis",
    "timezone",
    "days",
    "daily",
    "rates",
    "first_fetched",
    "last_fetched",
    "fx_note",
)


def summary_rows(store, store_id: str | None = None) -> list[tuple]:
    """Every invoice (of ``store_id``), by number, as SUMMARY_COLS tuples."""
    sql = f"SELECT {', '.join(SUMMARY_COLS)} FROM invoices"
    params: list = []
    if store_id is not None:
        sql += " WHERE store_id = ?"
        params.append(store_id)
    return store.query(sql + " ORDER BY number", params)


def summary_row(store, number: int) -> tuple | None:
    """Invoice ``number`` as a SUMMARY_COLS tuple, or None."""
    rows = store.query(f"SELECT {', '.join(SUMMARY_COLS)} FROM invoices WHERE number = ?", [number])
    return rows[0] if rows else None


def csv_bytes(store, number: int) -> bytes:
    """The CSV bytes stored when invoice ``number`` was finalized."""
    return bytes(store.query("SELECT csv FROM invoices WHERE number = ?", [number])[0][0])


def line_rows(store, number: int) -> list[dict[str, Any]]:
    """Invoice ``number``'s lines as LINE_COLS dicts (``daily`` and ``rates`` decoded), by line."""
    rows = store.query(
        f"SELECT {', '.join(LINE_COLS)} FROM invoice_lines WHERE invoice_number = ? ORDER BY line_no", [number]
    )
    out = []
    for r in rows:
        d = dict(zip(LINE_COLS, r))
        d["daily"], d["rates"] = json.loads(d["daily"]), json.loads(d["rates"])
        out.append(d)
    return out


def daily_amounts(
    store, keys: Sequence[tuple[str, str]], start: dt.date, end: dt.date
) -> dict[tuple[str, str], dict[dt.date, Decimal]]:
    """The stored daily spend of these (platform, account) keys over ``start..end``."""
    out: dict[tuple[str, str], dict[dt.date, Decimal]] = {k: {} for k in keys}
    if not keys:
        return out
    for p, a, d, amt in store.query(
        "SELECT platform, account_id, day, amount FROM daily_spend WHERE day BETWEEN ? AND ? "
        "AND list_contains(?, platform || '|' || account_id) ORDER BY 1, 2, 3",
        [start, end, [f"{p}|{a}" for p, a in keys]],
    ):
        out.setdefault((p, a), {})[d] = Decimal(amt)
    return out


# --- inside the finalize transaction (``con`` from SpendStore.transaction()) ---------------------------


def overlapping_invoice(con, store_id: str, start: dt.date, end: dt.date) -> str | None:
    """The first invoice of ``store_id`` covering any day of ``start..end``, or None."""
    clash = con.execute(
        "SELECT invoice FROM invoices WHERE store_id = ? AND period_start <= ? "
        "AND period_end >= ? ORDER BY number LIMIT 1",
        [store_id, end, start],
    ).fetchall()
    return clash[0][0] if clash else None


def next_number(con) -> int:
    return int(con.execute("SELECT coalesce(max(number), 0) + 1 FROM invoices").fetchone()[0])


def insert_invoice(
    con,
    number: int,
    invoice: str,
    store_id: str,
    store_name: str,
    start: dt.date,
    end: dt.date,
    billing_currency: str,
    total: str,
    finalized_at: dt.datetime,
    finalized_by: str,
    source: str,
    csv: bytes,
    csv_sha256: str,
    fx_source: str,
    rounding_rule: str,
) -> None:
    con.execute(
        "INSERT INTO invoices (number, invoice, store_id, store_name, period_start, period_end, "
        "billing_currency, total, finalized_at, finalized_by, source, csv, csv_sha256, fx_source, "
        "rounding_rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            number,
            invoice,
            store_id,
            store_name,
            start,
            end,
            billing_currency,
            total,
            finalized_at,
            finalized_by,
            source,
            csv,
            csv_sha256,
            fx_source,
            rounding_rule,
        ],
    )


def insert_line(con, number: int, values: Sequence) -> None:
    """One line of invoice ``number``: ``values`` in LINE_COLS order (``daily``/``rates`` as dicts)."""
    row = dict(zip(LINE_COLS, values))
    row["daily"] = json.dumps(row["daily"], sort_keys=True)
    row["rates"] = json.dumps(row["rates"], sort_keys=True)
    con.execute(
        f"INSERT INTO invoice_lines ({', '.join(LINE_COLS)}, invoice_number) VALUES "
        f"({', '.join('?' * (len(LINE_COLS) + 1))})",
        [row[c] for c in LINE_COLS] + [number],
    )
