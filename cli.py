"""Ad Spend Hub command line: the dashboard's jobs, headless, for scheduled runs.

    python cli.py [--db PATH] COMMAND ...

Exit status: 0 success; 1 the command ran but something failed (a platform fetch, an incomplete
export, the database held by another process); 2 bad input. Errors are one plain sentence on
stderr, never a traceback for a user's mistake. The commands and their output shapes are fixed in
shared/interfaces.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.facade import SpendStore

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """The user's input is wrong (exit 2)."""


class Failed(Exception):
    """The command ran but did not succeed (exit 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one plain sentence, exit 2
        raise BadInput(f"{message} (see `python {self.prog} --help`)")


MIN_DAY, MAX_DAY = dt.date(1970, 1, 1), dt.date(2999, 12, 31)


def _date(value: str) -> dt.date:
    """A day strictly as YYYY-MM-DD (not 20261001, not 2026-W40-1), between MIN_DAY and MAX_DAY."""
    from service.facade import strict_day

    try:
        day = strict_day(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise argparse.ArgumentTypeError(f"{value} is out of range; use a date between {MIN_DAY} and {MAX_DAY}")
    return day


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cli.py", description="Ad Spend Hub: daily ad spend per client store, to the cent.")
    p.add_argument("--db", help="DuckDB file (default: $ADSPEND_DB or data/adspend.duckdb)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    acc = sub.add_parser("accounts", help="import or list stores and their ad accounts")
    acc_sub = acc.add_subparsers(dest="action", required=True, parser_class=_Parser)
    imp = acc_sub.add_parser("import", help="link accounts from a CSV (store_id,store_name,platform,account_id)")
    imp.add_argument("file")
    lst = acc_sub.add_parser("list", help="stores, accounts and credential status")
    lst.add_argument("--json", action="store_true")

    ref = sub.add_parser("refresh", help="fetch daily spend from the platforms into the database")
    who = ref.add_mutually_exclusive_group(required=True)
    who.add_argument("--store", action="append", help="store id (repeatable)")
    who.add_argument("--all", action="store_true", help="every store")
    ref.add_argument("--start", type=_date)
    ref.add_argument("--end", type=_date)
    ref.add_argument(
        "--recent",
        action="store_true",
        help="no dates: each platform's restatement window up to "
        "yesterday, and the missing or failed days of this and last month it still serves (daily job)",
    )
    ref.add_argument("--platform", action="append", help="only this platform (repeatable)")
    ref.add_argument("--full", action="store_true", help="re-fetch every day, not only the days that can change")
    ref.add_argument("--json", action="store_true")

    sp = sub.add_parser("spend", help="what a store spent (reads the database only)")
    sp.add_argument("--store", required=True)
    sp.add_argument("--start", type=_date, required=True)
    sp.add_argument("--end", type=_date, required=True)
    sp.add_argument("--json", action="store_true")

    ex = sub.add_parser("export", help="the invoice CSV for a store (or all stores) and period")
    who = ex.add_mutually_exclusive_group(required=True)
    who.add_argument("--store")
    who.add_argument("--all", action="store_true")
    ex.add_argument("--start", type=_date, required=True)
    ex.add_argument("--end", type=_date, required=True)
    ex.add_argument("--out", required=True)
    ex.add_argument("--allow-incomplete", action="store_true")
    ex.add_argument("--force", action="store_true", help="replace --out if it exists (never the database)")

    _add_invoice_commands(sub, _date, _Parser)  # invoice finalize | export | diff | list | verify
    from service import fees as _fees  # revenue import, fee rate | preview (success fee)

    _fees.add_cli(sub, _date, _Parser)

    st = sub.add_parser("status", help="per store and platform: last day stored, last fetch, pending days")
    st.add_argument("--store", action="append", help="store id (repeatable)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_status)
    from service import alerts as _alerts

    _alerts.add_cli(sub, _date, _Parser)  # alerts, budgets import
    from service import fxrates as _fxrates

    _fxrates.add_cli(sub, _date, _Parser)

    sub.add_parser("demo", help="create the demo stores and accounts (served by the built-in sandbox)")
    sb = sub.add_parser("sandbox", help="run the built-in platform sandbox on 127.0.0.1 in the foreground")
    sb.add_argument("--port", type=int, default=8765)
    return p


def _db_path(args) -> str:
    return args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb"


def _open_store(args, read_only: bool = False):
    """The database; ``read_only`` for commands that only read (storage/db.py SpendStore)."""
    from service.facade import DatabaseBusy, DatabaseError, NotADatabase, SpendStore

    try:
        return SpendStore(_db_path(args), read_only=read_only)
    except NotADatabase as exc:
        raise BadInput(str(exc)) from None
    except DatabaseBusy as exc:
        raise Failed(str(exc)) from None
    except DatabaseError as exc:
        raise Failed(str(exc)) from None


def _check_period(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise BadInput(f"the start date {start} is after the end date {end}")


def _out_file_error(exc) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_status


def _database_errors() -> tuple[type, ...]:
    if "storage.db" not in sys.modules:  # no database was opened (e.g. --help): none of its errors
        return ()
    from service.facade import DatabaseBusy, DatabaseError

    return (DatabaseError, DatabaseBusy)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``cli.py accounts list | head``): stop quietly, as a Unix
    tool killed by SIGPIPE would (status 141), without a second error when Python flushes stdout."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 128 + 13


# --- commands ----------------------------------------------------------------------------------


def cmd_accounts_import(args) -> int:
    from service.accounts import ImportError_, import_accounts

    store = _open_store(args)
    try:
        result = import_accounts(store, Path(args.file))
    except ImportError_ as exc:
        raise BadInput(str(exc)) from None
    print(
        f"imported {args.file}: {result.stores} store(s), {result.added} new account link(s), "
        f"{result.unchanged} unchanged"
    )
    return EXIT_OK


def cmd_accounts_list(args) -> int:
    from service.accounts import accounts_overview

    store = _open_store(args, read_only=True)
    overview = accounts_overview(store)
    if args.json:
        print(json.dumps(overview, indent=2, default=str))
        return EXIT_OK
    for s in overview["stores"]:
        print(f"{s['store_id']}  {s['name']}  [{s['billing_currency']}]{'  (demo)' if s['is_demo'] else ''}")
        for a in s["accounts"]:
            extra = f" {a['currency']}" if a.get("currency") else ""
            print(f"    {a['platform']:<10} {a['account_id']}{extra}  {a.get('display_name') or ''}".rstrip())
    print("credentials:")
    vault_error = overview.get("vault_error")
    if overview.get("vault"):
        v = overview["vault"]
        print(
            f"    vault      {v['addr']}  path {v['path_template']}  environment {v['environment'] or '-'}"
            + (f"  namespace {v['namespace']}" if v.get("namespace") else "")
            + (f"  WARNING: {v['warning']}" if v.get("warning") else "")
            + (f"  ERROR: {vault_error}" if vault_error else "")
        )
    elif vault_error:
        print(f"    vault      ERROR: {vault_error}")
    for c in overview["platforms"]:
        detail = f"missing {', '.join(c['missing'])}" if c["missing"] else f"from {', '.join(c['sources'])}"
        if "vault" in c["sources"] and c.get("environment"):
            detail += f" [{c['environment']}]"
        if c.get("vault_path"):
            age = c.get("secret_age_days")
            detail += f" ({c['vault_path']} v{c.get('secret_version')}" + (
                f", {age} days old)" if age is not None else ", age unknown)"
            )
        warn = "".join(f"  WARNING: {c[k]}" for k in ("warning", "rotation_warning") if c.get(k))
        if c.get("error"):
            warn += (
                "  ERROR: Vault could not be used (see above)"
                if c["error"] == vault_error
                else f"  ERROR: {c['error']}"
            )
        print(f"    {c['platform']:<10} {'failed' if c.get('error') else c['mode']:<15} {detail}{warn}")
    return EXIT_OK


def cmd_refresh(args) -> int:
    from service.config import load_settings
    from service.refresh import RefreshError, refresh, refresh_recent

    if args.recent and (args.start or args.end or args.full):
        raise BadInput("--recent picks the days itself: give it without --start, --end or --full")
    if not args.recent and not (args.start and args.end):
        raise BadInput("refresh needs both --start and --end (or --recent for the daily job)")
    if not args.recent:
        _check_period(args.start, args.end)
    store = _open_store(args)
    ids = None if args.all else args.store
    settings = load_settings()
    from service.fxrates import auto_update_for_stores

    for warning in auto_update_for_stores(store, ids):
        print(f"warning: {warning}", file=sys.stderr)  # rates: never a failed refresh
    try:
        if args.recent:
            outcome = refresh_recent(store, ids, args.platform, trigger="cli", settings=settings)
        else:
            outcome = refresh(
                store, ids, args.start, args.end, args.platform, trigger="cli", full=args.full, settings=settings
            )
    except RefreshError as exc:
        msg = str(exc)
        if msg.startswith(("unknown store", "unknown platform", "the start date")):
            raise BadInput(msg) from None
        raise Failed(msg) from None
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status,
                    "requests": outcome.requests,
                    "error": outcome.error,
                    "results": [p.to_json() for p in outcome.platforms],
                    **({"start": outcome.start.isoformat(), "end": outcome.end.isoformat()} if args.recent else {}),
                },
                indent=2,
            )
        )
    else:
        for p in outcome.platforms:
            line = f"{p.store_id:<16} {p.platform:<10} {p.status:<15} {p.seconds:6.2f}s"
            if p.error and p.status != "ok":
                line += f"  {p.error}"
            print(line)
        print(f"run {outcome.run_id}: {outcome.status}, {outcome.requests} requests, {outcome.seconds:.1f}s")
    if outcome.error:
        print(outcome.error, file=sys.stderr)
    if settings.vault_error and any(p.error and settings.vault_error in p.error for p in outcome.platforms):
        print(f"error: {settings.vault_error}", file=sys.stderr)  # one line naming Vault, once per run
    return EXIT_OK if outcome.status == "ok" else EXIT_FAILED


def cmd_spend(args) -> int:
    from service.report import UnknownStore, spend_report

    _check_period(args.start, args.end)
    store = _open_store(args, read_only=True)
    try:
        report = spend_report(store, args.store, args.start, args.end)
    except UnknownStore as exc:
        raise BadInput(str(exc)) from None
    doc = report.to_json()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"{doc['store_name']} ({doc['store_id']}) {doc['start']}..{doc['end']}: "
            f"{doc['total_spend']} {doc['billing_currency']}{'' if doc['complete'] else '  (INCOMPLETE)'}"
        )
        for pid, pl in doc["platforms"].items():
            print(f"    {pid:<10} {pl['status']:<15} {pl['spend']:>14}  {pl.get('error', '')}".rstrip())
    return EXIT_OK


def cmd_export(args) -> int:
    from service.export import IncompleteExport, export_reports
    from service.outfile import check_target
    from service.report import UnknownStore, spend_report, spend_reports

    _check_period(args.start, args.end)
    check_target(args.out, force=args.force, db=_db_path(args))
    store = _open_store(args, read_only=True)
    try:
        reports = (
            list(spend_reports(store, None, args.start, args.end).values())
            if args.all
            else [spend_report(store, args.store, args.start, args.end)]
        )
    except UnknownStore as exc:
        raise BadInput(str(exc)) from None
    try:
        export_reports(reports, args.out, allow_incomplete=args.allow_incomplete, force=args.force, db=_db_path(args))
    except IncompleteExport as exc:
        raise Failed(str(exc)) from None
    n = sum(1 for r in reports if not r.complete)
    print(
        f"wrote {args.out}: {len(reports)} store(s)" + (f", {n} incomplete (marked in the status column)" if n else "")
    )
    return EXIT_OK


def cmd_status(args) -> int:
    from service.freshness import status_json

    store = _open_store(args)
    known = {s["store_id"] for s in store.stores()}
    for sid in args.store or []:
        if sid not in known:
            raise BadInput(f"unknown store {sid!r}; see `python cli.py accounts list`")
    doc = status_json(store, args.store)
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    for s in doc["stores"]:
        print(f"{s['store_id']}  {s['name']}")
        for pid, pf in s["platforms"].items():
            print(
                f"    {pid:<10} last day {pf['last_day'] or '-':<10}  fetched {pf['fetched_at'] or 'never':<32}  "
                f"pending {pf['pending_days']:>3}  unfetchable {pf['unfetchable_days']:>3}"
            )
    return EXIT_OK


def cmd_demo(args) -> int:
    from service.demo import create_demo

    store = _open_store(args)
    n_stores, added = create_demo(store)
    print(
        f"demo: {n_stores} stores ready ({added} new account links); refresh them with "
        f"`python cli.py refresh --all --start YYYY-MM-DD --end YYYY-MM-DD` (served by the built-in sandbox)"
    )
    return EXIT_OK


def cmd_sandbox(args) -> int:
    from service.facade import run_sandbox

    if not (0 <= args.port <= 65535):
        raise BadInput(f"--port must be between 0 and 65535, not {args.port}")
    run_sandbox(args.port)
    return EXIT_OK


# --- invoice finalize | export | diff | list | verify ---------------------------------------------
# (moved out of service/invoices.py; the service is imported inside the commands, so building the
# parser for ``--help`` stays free of duckdb, pyarrow and httpx: tests/test_cli_start.py)

UTC = dt.UTC


def _invoice_store(args, read_only: bool = False) -> SpendStore:
    from service.facade import NotADatabase, SpendStore

    try:
        return SpendStore(_db_path(args), read_only=read_only)
    except NotADatabase as exc:
        raise ValueError(str(exc)) from None  # a --db that is not a database: bad input


def _invoice_fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _invoice_command(fn):
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
            return _invoice_fail(str(exc))

    run.__name__ = fn.__name__
    return run


def _invoice_period(args) -> tuple[dt.date, dt.date]:
    from service.invoices import requested_period

    return requested_period(args.month, args.start, args.end)


@_invoice_command
def cmd_invoice_finalize(args) -> int:
    from service.invoices import finalize

    start, end = _invoice_period(args)
    store = _invoice_store(args)
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


@_invoice_command
def cmd_invoice_export(args) -> int:
    from service import fees
    from service.invoices import get_invoice, invoice_csv
    from service.outfile import check_target, write_new_file

    if not (args.out or args.fee_out):
        raise ValueError("give --out FILE.csv (the invoice) and/or --fee-out FILE.csv (its fee statement)")
    db_path = args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb"
    for target in (args.fee_out, args.out):  # both checked before either is written
        if target:
            check_target(target, force=args.force, db=db_path)
    store = _invoice_store(args, read_only=True)
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


@_invoice_command
def cmd_invoice_diff(args) -> int:
    from service import fees
    from service.invoices import diff
    from service.outfile import check_target, write_new_file

    if args.out is not None:
        check_target(args.out, force=args.force, db=args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb")
    store = _invoice_store(args, read_only=True)
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


@_invoice_command
def cmd_invoice_list(args) -> int:
    from service.invoice_register import require_intact
    from service.invoices import list_invoices

    store = _invoice_store(args, read_only=True)
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


@_invoice_command
def cmd_invoice_verify(args) -> int:
    from service.invoice_register import verify

    v = verify(_invoice_store(args))
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


def _add_invoice_commands(subparsers, date_type, parser_class) -> None:
    """``invoice finalize | export | diff | list | verify`` (build_parser calls this)."""
    inv = subparsers.add_parser("invoice", help="finalize, export and check invoices")
    sub = inv.add_subparsers(dest="action", required=True, parser_class=parser_class)

    fin = sub.add_parser("finalize", help="freeze a store's period as an invoice (refused unless ready)")
    fin.add_argument("--store", required=True)
    fin.add_argument("--start", type=date_type)
    fin.add_argument("--end", type=date_type)
    fin.add_argument("--month", help="YYYY-MM: the calendar month (instead of --start/--end)")
    fin.add_argument("--by", help="who finalizes (default: $ADSPEND_USER or the login name)")
    fin.add_argument("--json", action="store_true")
    fin.set_defaults(handler=cmd_invoice_finalize)

    ex = sub.add_parser("export", help="the finalized invoice's CSV (the same bytes every time)")
    ex.add_argument("--number", required=True, help="INV-000001 or 1")
    ex.add_argument("--out")
    ex.add_argument("--fee-out", help="also (or only) write the invoice's frozen fee statement CSV")
    ex.add_argument("--force", action="store_true", help="replace --out/--fee-out if they exist (never the database)")
    ex.set_defaults(handler=cmd_invoice_export)

    df = sub.add_parser("diff", help="what the data says now against a finalized invoice")
    df.add_argument("--number", required=True, help="INV-000001 or 1")
    df.add_argument("--json", action="store_true")
    df.add_argument("--out", help="also write the differences as an adjustment CSV (export format)")
    df.add_argument("--force", action="store_true", help="replace --out if it exists (never the database)")
    df.set_defaults(handler=cmd_invoice_diff)

    ls = sub.add_parser("list", help="finalized invoices")
    ls.add_argument("--store")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_invoice_list)

    vf = sub.add_parser("verify", help="check the invoice register (numbers, hash chain, every invoice's content)")
    vf.add_argument("--json", action="store_true")
    vf.set_defaults(handler=cmd_invoice_verify)


COMMANDS = {
    ("accounts", "import"): cmd_accounts_import,
    ("accounts", "list"): cmd_accounts_list,
    ("refresh", None): cmd_refresh,
    ("spend", None): cmd_spend,
    ("export", None): cmd_export,
    ("demo", None): cmd_demo,
    ("sandbox", None): cmd_sandbox,
}


def _setup_logging() -> None:
    from service.facade import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
    root.setLevel(os.environ.get("ADSPEND_LOG_LEVEL", "WARNING").upper())


def redact(text) -> str:
    """Secrets out of a message (``fetchers/secrets.py`` redact)."""
    from service.facade import redact as _redact

    return _redact(text)


def main(argv: Sequence[str] | None = None) -> int:
    from service.outfile import OutFileError

    try:
        args = build_parser().parse_args(argv)  # --help ends here: nothing heavy imported yet
        _setup_logging()
        fn = COMMANDS.get((args.command, getattr(args, "action", None))) or COMMANDS.get((args.command, None))
        if fn is None:
            fn = args.handler
        code = fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OutFileError as exc:
        return _out_file_error(exc)
    except BadInput as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _database_errors() as exc:  # the database could not be used (busy, not writable, ...)
        print(f"error: {redact(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if type(exc).__name__ == "NotADatabase" else EXIT_FAILED
    except Failed as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as exc:  # configuration values (e.g. a bad <P>_REQUESTS_PER_MINUTE)
        print(f"error: {redact(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OverflowError:  # date arithmetic past year 1 or 9999: the input was out of range
        print(f"error: a date is out of range; use dates between {MIN_DAY} and {MAX_DAY}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # the operating system refused (permissions, a full disk, ...)
        what = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: cannot use{what}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly, without secrets or a traceback
        logging.getLogger("adspend.cli").debug("unexpected error", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {redact(exc)}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
