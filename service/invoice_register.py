"""The tamper-evident invoice register: a hash chain over every finalized invoice.

Each invoice gets one seal in ``invoice_chain`` (migration 4), INSERTed in the same transaction
as the invoice itself and never changed:

    hash(n) = H("adspend-invoice-register-v1\\n" + canonical_json(content(n) + {"prev_hash": hash(n-1)}))

- ``content(n)`` is :func:`_invoice_contents`: every column of the ``invoices`` row (number,
  store, period, currency, total, who/when, source, fx source, rounding rule, the stored
  ``csv_sha256``), the sha256 of the CSV bytes actually stored, and every ``invoice_lines`` row
  (amounts, rates of every day, daily amounts, time zones, fetch times). Canonical JSON: sorted
  keys, no whitespace, UTF-8, dates ISO, timestamps in UTC with microseconds.
- ``H`` is HMAC-SHA256 keyed by ``ADSPEND_INVOICE_KEY`` when that is set (``algo`` =
  ``hmac-sha256``), plain sha256 otherwise (``algo`` = ``sha256``); the seal records which. A
  plain sha256 chain detects accidental or careless edits; only a keyed chain resists someone who
  can write the database and knows this code (they cannot recompute the seals without the key).
- ``hash(0)`` is 64 zeros.

:func:`verify` checks the whole register (or its first ``upto`` invoices): numbers contiguous
from 1, one seal per invoice and none without one, each seal's ``prev_hash`` equal to the
previous seal's hash, each hash recomputed from the content as it is now, and no unkeyed seal
after a keyed one (a downgrade). ``invoice export``/``diff``/``list`` and the dashboard refuse
to serve an invoice when the register up to it fails.

Invoices finalized before this register existed ("legacy", numbers up to
``invoice_chain_start.legacy_upto``, recorded by migration 4) are trusted as found: the first
time the register is used (a finalize or a verify) while ``invoice_chain`` is still empty, they
are sealed in number order with ``legacy`` = true. From then on they are checked like any other.
Limits, by design of any hash chain: removing the newest invoice(s) together with their seals, or
emptying ``invoice_chain`` and rewriting ``invoice_chain_start``, cannot be seen from inside the
database; ``invoice verify --json`` prints the head (number and hash) to keep elsewhere (e.g. with
the month's finance report) and compare.

Extending the content (e.g. a fee statement frozen with each invoice in its own table): add its
rows to :func:`_invoice_contents` under a new key. Existing seals then no longer match, so add it
only for invoices finalized after the table existed (e.g. include the key only when rows exist).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from fetchers.secrets import redact
from storage.db import SpendStore

UTC = dt.UTC
GENESIS = "0" * 64
DOMAIN = b"adspend-invoice-register-v1\n"
ALGO_PLAIN, ALGO_HMAC = "sha256", "hmac-sha256"
KEY_VAR = "ADSPEND_INVOICE_KEY"

_INVOICE_COLS = (
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
    "fx_source",
    "rounding_rule",
)
_LINE_COLS = (
    "invoice_number",
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


class RegisterBroken(RuntimeError):
    """The invoice register fails verification; the message is one sentence."""


def _plain(value):
    """A column value as canonical JSON material."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(value)).hexdigest()
    return value


def _invoice_contents(con, numbers: Sequence[int] | None = None) -> dict[int, dict]:
    """Everything an invoice is, per number: the ``invoices`` row, the sha256 of the CSV bytes as
    stored, every ``invoice_lines`` row in line order, and its frozen fee statement. The ONE place that says what a seal
    covers (add new invoice-bound tables here)."""
    where, params = "", []
    if numbers is not None:
        if not numbers:
            return {}
        where, params = "WHERE number IN (SELECT unnest(?))", [list(numbers)]
    out: dict[int, dict] = {}
    for row in con.execute(
        f"SELECT {', '.join(_INVOICE_COLS)}, csv FROM invoices {where} ORDER BY number", params
    ).fetchall():
        doc = {k: _plain(v) for k, v in zip(_INVOICE_COLS, row[:-1])}
        doc["csv_bytes_sha256"] = hashlib.sha256(bytes(row[-1])).hexdigest()
        doc["lines"] = []
        out[int(row[0])] = doc
    where = where.replace("number IN", "invoice_number IN")
    for row in con.execute(
        f"SELECT {', '.join(_LINE_COLS)} FROM invoice_lines {where} ORDER BY invoice_number, line_no", params
    ).fetchall():
        doc = out.get(int(row[0]))
        if doc is not None:  # lines of an invoice that is gone: verify() reports them
            doc["lines"].append({k: _plain(v) for k, v in zip(_LINE_COLS[1:], row[1:])})
    # the success-fee statement frozen with the invoice (service/fees.py), when it has one: an
    # invoice sealed with it fails verification if the statement is edited or removed
    from .fees import fee_snapshot_content

    for number, doc in out.items():
        fee = fee_snapshot_content(con, number)
        if fee is not None:
            doc["fee_statement"] = fee
    return out


def _invoice_content(con, number: int) -> dict:
    """One invoice's content (see :func:`_invoice_contents`)."""
    return _invoice_contents(con, [number])[number]


def canonical(content: dict, prev_hash: str) -> bytes:
    return DOMAIN + json.dumps(
        {**content, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _key() -> bytes | None:
    raw = os.environ.get(KEY_VAR)
    if raw:
        redact.add(raw)  # a secret: never in a log line or message
    return raw.encode("utf-8") if raw else None


def seal_hash(content: dict, prev_hash: str, algo: str, key: bytes | None) -> str:
    msg = canonical(content, prev_hash)
    if algo == ALGO_HMAC:
        if not key:
            raise RegisterBroken(f"{KEY_VAR} is needed to check invoices sealed with it")
        return hmac.new(key, msg, hashlib.sha256).hexdigest()
    return hashlib.sha256(msg).hexdigest()


def _current_algo() -> tuple[str, bytes | None]:
    key = _key()
    return (ALGO_HMAC if key else ALGO_PLAIN), key


def seal_legacy(con, now: dt.datetime | None = None) -> int:
    """Seal, as found, the invoices that existed before the register (only while it is empty)."""
    if con.execute("SELECT count(*) FROM invoice_chain").fetchone()[0]:
        return 0
    upto = con.execute("SELECT coalesce(max(legacy_upto), 0) FROM invoice_chain_start").fetchone()[0]
    numbers = [
        n for (n,) in con.execute("SELECT number FROM invoices WHERE number <= ? ORDER BY number", [upto]).fetchall()
    ]
    if not numbers:
        return 0
    algo, key = _current_algo()
    contents = _invoice_contents(con, numbers)
    prev, now = GENESIS, now or dt.datetime.now(UTC)
    for n in numbers:
        h = seal_hash(contents[n], prev, algo, key)
        con.execute(
            "INSERT INTO invoice_chain (number, prev_hash, hash, algo, sealed_at, legacy) VALUES (?, ?, ?, ?, ?, TRUE)",
            [n, prev, h, algo, now],
        )
        prev = h
    return len(numbers)


def seal_new(con, number: int, now: dt.datetime) -> str:
    """Seal invoice ``number``, just inserted in this transaction (service/invoices.finalize)."""
    seal_legacy(con, now)
    prev = GENESIS
    if number > 1:
        row = con.execute("SELECT hash FROM invoice_chain WHERE number = ?", [number - 1]).fetchone()
        if row is None:
            raise RegisterBroken(
                f"the invoice register has no seal for INV-{number - 1:06d}, so INV-{number:06d} "
                "cannot be chained to it; run `python cli.py invoice verify`"
            )
        prev = row[0]
    algo, key = _current_algo()
    h = seal_hash(_invoice_content(con, number), prev, algo, key)
    con.execute(
        "INSERT INTO invoice_chain (number, prev_hash, hash, algo, sealed_at, legacy) VALUES (?, ?, ?, ?, ?, FALSE)",
        [number, prev, h, algo, now],
    )
    return h


@dataclass
class Verification:
    ok: bool
    invoices: int
    problems: list[dict] = field(default_factory=list)  # {"number", "invoice", "problem"}
    head: dict | None = None  # {"number", "invoice", "hash"}
    algorithms: dict[str, int] = field(default_factory=dict)
    legacy: int = 0
    sealed_in_memory: bool = False

    def first_problem(self, upto: int | None = None) -> dict | None:
        for p in self.problems:
            if upto is None or p["number"] <= upto:
                return p
        return None

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "invoices": self.invoices,
            "head": self.head,
            "algorithms": self.algorithms,
            "legacy": self.legacy,
            "problems": self.problems,
            **({"sealed_in_memory": True} if self.sealed_in_memory else {}),
        }


def _name(n: int) -> str:
    return f"INV-{n:06d}"


def verify(store: SpendStore, upto: int | None = None) -> Verification:
    """Check the register (all of it, or invoices 1..``upto``); never raises for a broken one."""
    in_memory = False
    with store.connect() as con:
        unsealed = (
            con.execute("SELECT count(*) FROM invoice_chain").fetchone()[0] == 0
            and con.execute(
                "SELECT count(*) FROM invoices WHERE number <= (SELECT coalesce(max(legacy_upto), 0) "
                "FROM invoice_chain_start)"
            ).fetchone()[0]
            > 0
        )
    if unsealed:
        try:
            with store.transaction() as con:
                seal_legacy(con)
        except Exception:  # read-only database: check the legacy seals in memory
            in_memory = True
    with store.connect() as con:
        if in_memory:
            con.execute("BEGIN TRANSACTION")
            seal_legacy(con)  # rolled back below: nothing is written
        try:
            return _verify(con, upto, in_memory)
        finally:
            if in_memory:
                con.execute("ROLLBACK")


def _verify(con, upto: int | None, in_memory: bool) -> Verification:
    where = "" if upto is None else "WHERE number <= ?"
    params = [] if upto is None else [upto]
    numbers = [n for (n,) in con.execute(f"SELECT number FROM invoices {where} ORDER BY number", params).fetchall()]
    seals = {
        int(r[0]): r[1:]
        for r in con.execute(
            f"SELECT number, prev_hash, hash, algo, legacy FROM invoice_chain {where} ORDER BY number", params
        ).fetchall()
    }
    problems: list[dict] = []

    def problem(n: int, text: str) -> None:
        problems.append({"number": n, "invoice": _name(n), "problem": text})

    have = set(numbers)
    top = max([*have, *seals, 0])
    for n in range(1, top + 1):
        if n not in have:
            problem(n, f"{_name(n)} is missing from the register (deleted)")
    contents = _invoice_contents(con, numbers)
    key = _key()
    algorithms: dict[str, int] = {}
    legacy, keyed_seen = 0, False
    for n in numbers:
        seal = seals.get(n)
        if seal is None:
            problem(
                n, f"{_name(n)} has no seal in the register (finalized outside Ad Spend Hub, or its seal was deleted)"
            )
            continue
        s_prev, s_hash, algo, is_legacy = seal
        algorithms[algo] = algorithms.get(algo, 0) + 1
        legacy += bool(is_legacy)
        if algo == ALGO_HMAC:
            keyed_seen = True
        elif keyed_seen:
            problem(n, f"{_name(n)} is sealed without the key after keyed invoices (a downgrade)")
        expected_prev = GENESIS if n == 1 else (seals[n - 1][1] if n - 1 in seals else None)
        if s_prev != expected_prev:
            problem(
                n,
                f"{_name(n)} does not follow {_name(n - 1)} in the chain (an invoice before it was "
                "removed or replaced)",
            )
        if algo == ALGO_HMAC and not key:
            problem(n, f"{_name(n)} is sealed with {KEY_VAR}, which is not set here; set it to check the register")
        elif algo not in (ALGO_HMAC, ALGO_PLAIN):
            problem(n, f"{_name(n)} has a seal of unknown kind {algo!r}")
        elif seal_hash(contents[n], s_prev, algo, key) != s_hash:
            problem(n, f"{_name(n)} was changed after it was finalized (its content no longer matches its seal)")
    orphan_sql = (
        "SELECT DISTINCT invoice_number FROM invoice_lines WHERE invoice_number NOT IN "
        "(SELECT number FROM invoices)" + ("" if upto is None else " AND invoice_number <= ?") + " ORDER BY 1"
    )
    for (n,) in con.execute(orphan_sql, params).fetchall():
        if n > top:
            problem(n, f"{_name(n)} has invoice lines but no invoice (deleted)")
    problems.sort(key=lambda p: p["number"])
    head = None
    if numbers and numbers[-1] in seals:
        head = {"number": numbers[-1], "invoice": _name(numbers[-1]), "hash": seals[numbers[-1]][1]}
    return Verification(not problems, len(numbers), problems, head, algorithms, legacy, in_memory)


def require_intact(store: SpendStore, number: int | None = None) -> Verification:
    """RegisterBroken (one sentence) unless the register is intact up to ``number`` (all if None)."""
    v = verify(store, number)
    p = v.first_problem(number)
    if p is not None:
        what = f"{_name(number)} is not served" if number is not None else "invoices are not served"
        more = len(v.problems) - 1
        raise RegisterBroken(
            f"the invoice register fails verification: {p['problem']}"
            + (f" (and {more} more problem(s))" if more > 0 else "")
            + f"; {what}: see `python cli.py invoice verify`"
        )
    return v
