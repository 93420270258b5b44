"""`python cli.py invoice finalize | export | diff | list | verify`: the invoicing commands
(moved out of service/invoices.py; cli.py adds them to its parser with :func:`add_cli`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import TYPE_CHECKING

# The service is imported inside the commands: building the parser (``cli.py --help``) stays free
# of duckdb, pyarrow and httpx (issue 19 item 4; tests/test_cli_start.py).
if TYPE_CHECKING:
    from service.facade import SpendStore

UTC = dt.UTC


def _open(args, read_only: bool = False) -> SpendStore:
    from service.facade import NotADatabase, SpendStore

    try:
        return SpendStore(args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb", read_only=read_only)
    except NotADatabase as exc:
        raise ValueError(str(exc)) from None  # a --db that is not a database: bad input


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _cli(fn):
    """Map the service's refusals to the CLI's exit codes (1 refused/failed, 2 bad input via ValueError)."""

    def run(args) -> int:
        from service import fees
        from service.facade import DatabaseBusy, DatabaseError
        from service.invoice_register import RegisterBroken
        from service.invoices import AlreadyFinalized, IncompleteAdjustment, NotReady, UnknownInvoice
        from service.report import UnknownStore

        try:
            return fn(args)
        except (UnknownStore, UnknownInvoice) as exc:
            raise ValueError(str(exc)) from None
        except (
            NotReady,
            AlreadyFinalized,
            IncompleteAdjustment,
            DatabaseBusy,
            DatabaseError,
            fees.NoFeeStatement,
            RegisterBroken,
        ) as exc:
            return _fail(str(exc))

    run.__name__ = fn.__name__
    return run


def _period(args) -> tuple[dt.date, dt.date]:
    from service.invoices import requested_period

    return requested_period(args.month, args.start, args.end)


@_cli
def cmd_finalize(args) -> int:
    from service.invoices import finalize

    start, end = _period(args)
    store = _open(args)
    if store.store(args.store) is None:
        raise ValueError(f"unknown store {args.store!r}; see `python cli.py accounts list`")
    inv = finalize(store, args.store, start, end, by=args.by, source="cli")
    if args.json:
        print(json.dumps(inv.to_json(), indent=2))
    else:
        s = inv.summary
        print(
            f"{s.invoice}: store {s.store_id} {s.start}..{s.end}, {len(inv.lines)} line(s), total {s.total} "
            f"{s.billing_currency}, finalized by {s.finalized_by}"
        )
    return 0


@_cli
def cmd_export(args) -> int:
    from service import fees
    from service.invoices import get_invoice, invoice_csv
    from service.outfile import check_target, write_new_file

    if not (args.out or args.fee_out):
        raise ValueError("give --out FILE.csv (the invoice) and/or --fee-out FILE.csv (its fee statement)")
    db_path = args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb"
    for target in (args.fee_out, args.out):  # both checked before either is written
        if target:
            check_target(target, force=args.force, db=db_path)
    store = _open(args, read_only=True)
    inv = get_invoice(store, args.number)
    data = invoice_csv(store, inv.number)
    fee_data = fees.fee_csv(store, inv.number) if args.fee_out else None
    if fee_data is not None:
        write_new_file(args.fee_out, fee_data, force=args.force, db=store.path)
        print(f"wrote {args.fee_out}: fee statement of {inv.invoice}")
    if not args.out:
        return 0
    write_new_file(args.out, data, force=args.force, db=store.path)
    print(
        f"wrote {args.out}: {inv.invoice} (store {inv.store_id} {inv.start}..{inv.end}, total {inv.total} "
        f"{inv.billing_currency})"
    )
    return 0


@_cli
def cmd_diff(args) -> int:
    from service import fees
    from service.invoices import diff
    from service.outfile import check_target, write_new_file

    if args.out is not None:
        check_target(args.out, force=args.force, db=args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb")
    store = _open(args, read_only=True)
    d = diff(store, args.number)
    fee = fees.fee_diff(store, d.invoice.number)
    if args.out is not None:
        write_new_file(args.out, d.adjustment_csv(), force=args.force, db=store.path)
    if args.json:
        print(json.dumps({**d.to_json(), **({"fee": fee} if fee else {})}, indent=2))
    else:
        doc = d.to_json()
        print(
            f"{doc['invoice']} store {doc['store_id']} {doc['start']}..{doc['end']}: "
            f"{'restated' if d.changed else 'unchanged'} since finalize; total difference "
            f"{doc['total_difference']} {doc['billing_currency']}"
            f"{'' if doc['complete'] else ' (current data INCOMPLETE)'}"
        )
        for line in doc["lines"]:
            print(
                f"    {line['platform']:<10} {line['account_id']:<20} {line['currency']} snapshot "
                f"{line['snapshot']:>12} current {line['current']:>12} difference {line['difference']:>10}  "
                f"{line['status']}"
            )
        if fee:
            print(fees.fee_diff_text(fee))
    if args.out:
        print(f"wrote {args.out}: adjustment to {d.invoice.invoice}", file=sys.stderr if args.json else sys.stdout)
    return 0


@_cli
def cmd_list(args) -> int:
    from service.invoice_register import require_intact
    from service.invoices import list_invoices

    store = _open(args, read_only=True)
    require_intact(store)
    invs = list_invoices(store, store_id=args.store)
    if args.json:
        print(json.dumps([i.to_json() for i in invs], indent=2))
        return 0
    if not invs:
        print("no invoices yet; finalize one with `python cli.py invoice finalize --store ID --start ... --end ...`")
    for i in invs:
        print(
            f"{i.invoice}  {i.store_id:<16} {i.start}..{i.end}  {i.total:>14} {i.billing_currency}  "
            f"{i.finalized_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC by {i.finalized_by}"
        )
    return 0


@_cli
def cmd_verify(args) -> int:
    from service.invoice_register import verify

    v = verify(_open(args))
    if args.json:
        print(json.dumps(v.to_json(), indent=2))
    elif v.ok:
        head = f"; head {v.head['invoice']} {v.head['hash']}" if v.head else ""
        algos = ", ".join(f"{n} {a}" for a, n in sorted(v.algorithms.items()))
        print(f"invoice register intact: {v.invoices} invoice(s){f' ({algos})' if algos else ''}{head}")
    else:
        for p in v.problems:
            print(f"{p['invoice']}  {p['problem']}")
    if not v.ok:
        print(
            f"error: the invoice register fails verification: {len(v.problems)} problem(s), the first: "
            f"{v.problems[0]['problem']}",
            file=sys.stderr,
        )
        return 1
    return 0


def add_cli(subparsers, date_type, parser_class) -> None:
    """Add ``invoice finalize | export | diff | list | verify`` to cli.py's parser (cli.py calls this)."""
    inv = subparsers.add_parser("invoice", help="finalize, export and check invoices")
    sub = inv.add_subparsers(dest="action", required=True, parser_class=parser_class)

    fin = sub.add_parser("finalize", help="freeze a store's period as an invoice (refused unless ready)")
    fin.add_argument("--store", required=True)
    fin.add_argument("--start", type=date_type)
    fin.add_argument("--end", type=date_type)
    fin.add_argument("--month", help="YYYY-MM: the calendar month (instead of --start/--end)")
    fin.add_argument("--by", help="who finalizes (default: $ADSPEND_USER or the login name)")
    fin.add_argument("--json", action="store_true")
    fin.set_defaults(handler=cmd_finalize)

    ex = sub.add_parser("export", help="the finalized invoice's CSV (the same bytes every time)")
    ex.add_argument("--number", required=True, help="INV-000001 or 1")
    ex.add_argument("--out")
    ex.add_argument("--fee-out", help="also (or only) write the invoice's frozen fee statement CSV")
    ex.add_argument("--force", action="store_true", help="replace --out/--fee-out if they exist (never the database)")
    ex.set_defaults(handler=cmd_export)

    df = sub.add_parser("diff", help="what the data says now against a finalized invoice")
    df.add_argument("--number", required=True, help="INV-000001 or 1")
    df.add_argument("--json", action="store_true")
    df.add_argument("--out", help="also write the differences as an adjustment CSV (export format)")
    df.add_argument("--force", action="store_true", help="replace --out if it exists (never the database)")
    df.set_defaults(handler=cmd_diff)

    ls = sub.add_parser("list", help="finalized invoices")
    ls.add_argument("--store")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)

    vf = sub.add_parser("verify", help="check the invoice register (numbers, hash chain, every invoice's content)")
    vf.add_argument("--json", action="store_true")
    vf.set_defaults(handler=cmd_verify)
