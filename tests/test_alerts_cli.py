"""`budgets import` and `alerts` through the CLI, and the alert webhook against a loopback receiver."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from storage.db import SpendStore

AS_OF = "2026-03-18"
FETCHED = dt.datetime(2026, 3, 18, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def stores(tmp_path, run_cli, db_path):
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id,billing_currency\n"
        "s1,Acme,meta,111,USD\ns1,Acme,google,1234567001,USD\ns2,Fjord,meta,222,EUR\n"
    )
    assert run_cli("accounts", "import", csv).returncode == 0
    return SpendStore(db_path)


def write_spend(store: SpendStore, platform: str, account: str, amounts: dict[dt.date, str], ccy: str = "USD"):
    days = sorted(amounts)
    store.write_spend_table(
        pa.table(
            {
                "platform": pa.array([platform] * len(days), pa.string()),
                "account_id": pa.array([account] * len(days), pa.string()),
                "day": pa.array(days, pa.date32()),
                "amount": pa.array([Decimal(amounts[d]) for d in days], pa.decimal128(20, 6)),
                "currency": pa.array([ccy] * len(days), pa.string()),
                "fetched_at": pa.array([FETCHED] * len(days), pa.timestamp("us", tz="UTC")),
                "run_id": pa.array(["t"] * len(days), pa.string()),
            }
        )
    )


def days_back(n: int, value: str, end: str = AS_OF) -> dict[dt.date, str]:
    last = dt.date.fromisoformat(end)
    return {last - dt.timedelta(days=i): value for i in range(n)}


@pytest.fixture
def with_alerts(stores, monkeypatch):
    """s1: Meta spikes on the as-of day (500 against 100 a day), Google spends steadily; March
    budget 1000 for the whole store -> pacing over. s2 (EUR): steady, no budget. The clock is
    pinned after the days asked about (so `stale` is judged at the end of the day after each)."""
    monkeypatch.setenv("ADSPEND_TODAY", "2026-04-30")
    write_spend(stores, "meta", "111", {**days_back(30, "100.00"), dt.date(2026, 3, 18): "500.00"})
    write_spend(stores, "google", "1234567001", days_back(30, "10.00"))
    write_spend(stores, "meta", "222", days_back(30, "20.00"), "EUR")
    return stores


def budget_file(tmp_path, text: str):
    p = tmp_path / "budgets.csv"
    p.write_text(text)
    return p


# --- budgets import --------------------------------------------------------------------------------


def test_budgets_import_reimport_and_replace(tmp_path, run_cli, stores):
    f = budget_file(
        tmp_path,
        "store_id,month,amount,platform\ns1,2026-03,1000.00,\ns1,2026-03,400,meta\n"
        "s2,2026-03,500.5,\ns1,2026-03,1200.00,\n",
    )
    r = run_cli("budgets", "import", f)
    assert (r.returncode, r.stdout.strip()) == (0, f"imported {f}: 3 new budget(s), 0 changed, 0 unchanged"), r
    rows = stores.query("SELECT store_id, month, platform, CAST(amount AS VARCHAR), currency FROM budgets ORDER BY ALL")
    assert rows == [
        ("s1", dt.date(2026, 3, 1), "", "1200.000000", "USD"),  # the later row won
        ("s1", dt.date(2026, 3, 1), "meta", "400.000000", "USD"),
        ("s2", dt.date(2026, 3, 1), "", "500.500000", "EUR"),
    ]
    before = stores.query("SELECT * FROM budgets ORDER BY ALL")
    r = run_cli("budgets", "import", f)
    assert r.stdout.strip() == f"imported {f}: 0 new budget(s), 0 changed, 3 unchanged"
    assert stores.query("SELECT * FROM budgets ORDER BY ALL") == before  # not even updated_at
    f2 = budget_file(tmp_path, "store_id,month,amount,platform,currency\ns1,2026-03,900,meta,USD\n")
    assert run_cli("budgets", "import", f2).stdout.strip() == f"imported {f2}: 0 new budget(s), 1 changed, 0 unchanged"
    assert stores.query("SELECT CAST(amount AS VARCHAR) FROM budgets WHERE platform = 'meta'") == [("900.000000",)]


def test_budgets_import_bad_rows_name_every_line_and_import_nothing(tmp_path, run_cli, stores):
    f = budget_file(
        tmp_path,
        "store_id,month,amount,platform,currency\n"
        "s1,2026-03,1000,,USD\n"  # good
        "nope,2026-03,1000,,\n"  # unknown store
        "s1,2026-13,1000,,\n"  # bad month
        "s1,March,1000,,\n"  # bad month
        "s1,2026-04,-5,,\n"  # negative
        "s1,2026-04,lots,,\n"  # not a number
        "s1,2026-04,10.005,,\n"  # more decimals than USD has
        "s1,2026-04,10,myspace,\n"  # unknown platform
        "s2,2026-04,10,,USD\n",
    )  # not s2's currency (EUR)
    r = run_cli("budgets", "import", f)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        "error: nothing imported: 8 bad line(s): line 3: unknown store 'nope' | "
        "line 4: month '2026-13' is not a month in the form YYYY-MM | "
        "line 5: month 'March' is not a month in the form YYYY-MM | line 6: amount -5 is negative | "
        "line 7: amount 'lots' is not a number (plain decimal, e.g. 1500.00) | "
        "line 8: amount 10.005 has more decimal places than USD has (2) | "
        "line 9: unknown platform 'myspace'; expected one of meta, google, tiktok, linkedin, amazon, microsoft, "
        "snapchat, pinterest, reddit or empty for the whole store | "
        "line 10: currency 'USD' is not store s2's billing currency EUR"
    )
    assert stores.query("SELECT count(*) FROM budgets") == [(0,)]
    r = run_cli("budgets", "import", budget_file(tmp_path, "store_id,amount\ns1,5\n"))
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: the header lacks month; expected store_id,month,amount (optional platform, currency)",
    )
    assert run_cli("budgets", "import", tmp_path / "missing.csv").returncode == 2


# --- alerts ----------------------------------------------------------------------------------------


def test_alerts_json_exit_codes_and_store_filter(tmp_path, run_cli, with_alerts):
    assert (
        run_cli("budgets", "import", budget_file(tmp_path, "store_id,month,amount\ns1,2026-03,1000\n")).returncode == 0
    )
    r = run_cli("alerts", "--date", AS_OF, "--json")
    assert r.returncode == 1, r
    # March 1-18 meta: 17 x 100 + 500 = 2200, google 18 x 10 = 180 -> 2380 so far. The 13 days left
    # (19-31 March) hold one Wednesday, whose meta average includes the spike ((100 + 100 + 500) / 3):
    # meta 12 x 100 + 233.33... = 1433.33..., google 13 x 10 = 130 -> projected 3943.33
    assert r.json() == [
        {
            "store_id": "s1",
            "platform": "meta",
            "account_id": "111",
            "kind": "spike",
            "day": AS_OF,
            "detail": "Meta account 111 spent 500.00 USD on 2026-03-18, 5.0 x its median of 100.00 USD over the "
            "previous 14 days (alert above 3 x and above 50).",
        },
        {
            "store_id": "s1",
            "platform": None,
            "account_id": None,
            "kind": "pacing",
            "day": AS_OF,
            "detail": "Projected spend for 2026-03 is 3,943.33 USD, 294.3% over the budget of 1,000.00 USD (month to "
            "date 2,380.00 USD after 18 of 31 days).",
        },
    ]
    r = run_cli("alerts", "--date", AS_OF, "--store", "s2", "--json")
    assert (r.returncode, r.json()) == (0, [])
    r = run_cli("alerts", "--date", AS_OF, "--store", "s2")
    assert (r.returncode, r.stdout) == (0, "0 alert(s) as of 2026-03-18\n")
    r = run_cli("alerts", "--store", "nope")
    assert (r.returncode, r.stderr.strip()) == (2, "error: unknown store 'nope'; see `python cli.py accounts list`")
    assert run_cli("alerts", "--date", "2026-02-30").returncode == 2


def test_alerts_default_date_is_yesterday_and_stale_when_the_clock_moves(run_cli, with_alerts, monkeypatch):
    monkeypatch.setenv("ADSPEND_TODAY", "2026-03-19")  # yesterday = AS_OF
    assert [a["kind"] for a in run_cli("alerts", "--json").json()] == ["spike"]
    monkeypatch.setenv("ADSPEND_TODAY", "2026-03-21")  # fetched 2026-03-18 06:00: 3 days and more
    got = run_cli("alerts", "--json", "--store", "s2").json()
    assert got == [
        {
            "store_id": "s2",
            "platform": "meta",
            "account_id": None,
            "kind": "stale",
            "day": "2026-03-20",
            "detail": "Meta's latest successful fetch was at 2026-03-18 06:00 UTC, more than 2 days old on 2026-03-21.",
        }
    ]
    # the same day asked about later (--date): judged at the end of the day after it, so not stale then
    monkeypatch.setenv("ADSPEND_TODAY", "2026-04-30")
    assert run_cli("alerts", "--json", "--store", "s2", "--date", "2026-03-18").json() == []
    assert [a["kind"] for a in run_cli("alerts", "--json", "--store", "s2", "--date", "2026-03-19").json()] == ["stale"]


# --- webhook ---------------------------------------------------------------------------------------


class Receiver:
    """A loopback incoming-webhook stand-in on a free port: records each POST, answers ``status``,
    or hangs (until the test ends) when ``hang`` is set."""

    def __init__(self, status: int = 200, hang: bool = False):
        self.status, self.hang, self.bodies = status, hang, []
        self.release = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.bodies.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
                if outer.hang:
                    outer.release.wait(10)
                    return
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/services/T000/B000/secretpath"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver_factory(monkeypatch):
    made = []
    monkeypatch.setenv("ADSPEND_ALERT_WEBHOOK_TIMEOUT", "0.3")
    monkeypatch.setenv("ADSPEND_ALERT_WEBHOOK_ATTEMPTS", "3")

    def make(**kw) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        monkeypatch.setenv("ADSPEND_ALERT_WEBHOOK_URL", r.url)
        return r

    yield make
    for r in made:
        r.close()


def test_webhook_posts_new_alerts_once(run_cli, with_alerts, receiver_factory):
    rx = receiver_factory()
    r = run_cli("alerts", "--date", AS_OF)
    assert r.returncode == 1 and r.stderr == "", r
    assert r.stdout.splitlines()[-1] == "sent 1 new alert(s) to the webhook at 127.0.0.1"
    assert len(rx.bodies) == 1
    path, ctype, payload = rx.bodies[0]
    assert (path, ctype) == ("/services/T000/B000/secretpath", "application/json")
    assert payload == {
        "text": "Ad Spend Hub: 1 new alert\n• spike · Acme · Meta 111 · 2026-03-18: Meta account 111 "
        "spent 500.00 USD on 2026-03-18, 5.0 x its median of 100.00 USD over the previous 14 "
        "days (alert above 3 x and above 50)."
    }
    # a second run (same alerts) posts nothing; exit status still says there are alerts
    r = run_cli("alerts", "--date", AS_OF, "--json")
    assert r.returncode == 1 and len(rx.bodies) == 1 and r.stderr == ""
    # two days later the spike is still open (not sent again); the new ones (Google stopped, both
    # platforms stale: fetched 2026-03-18 06:00) go out in one message
    write_spend(with_alerts, "google", "1234567001", {dt.date(2026, 3, 19): "0", dt.date(2026, 3, 20): "0"})
    r = run_cli("alerts", "--date", "2026-03-20", "--store", "s1")
    assert r.returncode == 1 and len(rx.bodies) == 2
    text = rx.bodies[1][2]["text"]
    assert text.startswith(
        "Ad Spend Hub: 3 new alerts\n• stopped · Acme · Google Ads 1234567001 · 2026-03-19: "
        "Google Ads account 1234567001 spent nothing for 2 days"
    ), text
    assert "spike" not in text
    assert with_alerts.query("SELECT kind, platform, alert_key, day FROM alerts_sent ORDER BY ALL") == [
        ("spike", "meta", "2026-03-18", dt.date(2026, 3, 18)),
        ("stale", "google", "2026-03-18", dt.date(2026, 3, 20)),
        ("stale", "meta", "2026-03-18", dt.date(2026, 3, 20)),
        ("stopped", "google", "2026-03-19", dt.date(2026, 3, 19)),
    ]


@pytest.mark.parametrize("kind", ["500", "hang"])
def test_failing_webhook_is_retried_reported_and_not_fatal(run_cli, with_alerts, receiver_factory, kind):
    rx = receiver_factory(status=500) if kind == "500" else receiver_factory(hang=True)
    r = run_cli("alerts", "--date", AS_OF, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)[0]["kind"] == "spike"  # as for the alerts themselves
    assert len(rx.bodies) == 3  # bounded retries
    why = "HTTP 500" if kind == "500" else "no answer within 0.3 s"
    assert r.stderr == (
        f"warning: the alert webhook at 127.0.0.1 failed after 3 attempt(s): {why}; 1 new alert(s) "
        "not sent (a later run sends them)\n"
    )
    assert "secretpath" not in r.stderr
    assert with_alerts.query("SELECT count(*) FROM alerts_sent") == [(0,)]
    # once the receiver works again, the alert goes out
    rx.status, rx.hang = 200, False
    rx.release.set()
    assert run_cli("alerts", "--date", AS_OF).returncode == 1
    assert with_alerts.query("SELECT kind FROM alerts_sent") == [("spike",)]


def test_webhook_not_called_without_alerts_and_4xx_is_not_retried(run_cli, with_alerts, receiver_factory):
    rx = receiver_factory(status=404)
    assert run_cli("alerts", "--date", AS_OF, "--store", "s2").returncode == 0
    assert rx.bodies == []
    r = run_cli("alerts", "--date", AS_OF, "--store", "s1")
    assert len(rx.bodies) == 1 and r.returncode == 1
    assert r.stderr.startswith(
        "warning: the alert webhook at 127.0.0.1 refused the message (HTTP 404); check ADSPEND_ALERT_WEBHOOK_URL"
    )


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/x", "http://[::1"])
def test_a_bad_webhook_url_is_reported_not_fatal(run_cli, with_alerts, monkeypatch, url):
    monkeypatch.setenv("ADSPEND_ALERT_WEBHOOK_URL", url)
    r = run_cli("alerts", "--date", AS_OF, "--json")
    assert r.returncode == 1 and [a["kind"] for a in r.json()] == ["spike"]
    assert r.stderr.startswith("warning: ADSPEND_ALERT_WEBHOOK_URL is not ")
    assert with_alerts.query("SELECT count(*) FROM alerts_sent") == [(0,)]


def test_month_to_date_in_the_billing_currency_equals_the_spend_report(run_cli, stores, tmp_path):
    """A GBP account of a EUR store: pacing converts each day exactly as `spend` does (each day's
    ECB rate, the account rounded once), so month to date equals the report's total to the cent."""
    from service.alerts import store_pacing
    from service.report import spend_report

    csv = tmp_path / "more.csv"
    csv.write_text("store_id,store_name,platform,account_id,billing_currency\ns2,Fjord,google,1234567826,EUR\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    write_spend(stores, "meta", "222", days_back(18, "20.00"), "EUR")
    write_spend(
        stores, "google", "1234567826", {d: f"{33 + i}.333333" for i, d in enumerate(sorted(days_back(18, "0")))}, "GBP"
    )
    report = spend_report(stores, "s2", dt.date(2026, 3, 1), dt.date(2026, 3, 18))
    assert report.complete and report.platforms["google"].accounts[0].fx_rate != 1
    (pc,) = store_pacing(stores, "s2", dt.date(2026, 3, 18))
    assert (pc.currency, pc.month_to_date, pc.complete) == ("EUR", report.total, True)
    assert pc.month_to_date == Decimal("360.00") + report.platforms["google"].spend
