"""End to end through the CLI against the sandbox: Meta and Google Ads (the foundation issue)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest

TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=44)  # 45 days: several Meta pages, one Google stream

ACCOUNTS = [
    ("meta", "act_1000000001", "1000000001"),
    ("meta", "1000000002", "1000000002"),
    ("google", "123-456-7001", "1234567001"),
]


@pytest.fixture
def imported(tmp_path, run_cli, sandbox_env):
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id\n" + "".join(f"s1,Acme,{p},{raw}\n" for p, raw, _ in ACCOUNTS)
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r
    return csv


def _expected(sandbox, platform, account, start=START, end=END) -> Decimal:
    return Decimal(sandbox.sandbox.expected_total(platform, account, start, end)["spend"])


def _spend(run_cli, start=START, end=END):
    r = run_cli("spend", "--store", "s1", "--start", start.isoformat(), "--end", end.isoformat(), "--json")
    assert r.returncode == 0, r
    return r.json()


def _refresh(run_cli, *extra):
    return run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), *extra)


def test_import_refresh_spend_equals_sandbox_to_the_cent(imported, run_cli, sandbox, db_path):
    r = _refresh(run_cli)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["s1", "meta", "ok"] and lines[1].split()[:3] == ["s1", "google", "ok"]
    doc = _spend(run_cli)
    assert doc["complete"] is True and doc["billing_currency"] == "USD"
    for platform, _, account in ACCOUNTS:
        acc = next(a for a in doc["platforms"][platform]["accounts"] if a["account_id"] == account)
        exact = _expected(sandbox, platform, account)
        assert acc["spend"] == str(exact.quantize(Decimal("0.01")))
        assert acc["currency"] == "USD" and acc["fx_rate"] == "1" and acc["days"] == 45
    meta_total = sum(_expected(sandbox, "meta", a) for p, _, a in ACCOUNTS if p == "meta").quantize(Decimal("0.01"))
    assert doc["platforms"]["meta"]["spend"] == str(meta_total)
    google_total = _expected(sandbox, "google", "1234567001").quantize(Decimal("0.01"))
    assert doc["total_spend"] == str(meta_total + google_total)
    # the days the sandbox had no delivery are stored as explicit zeros, not left out
    from storage.db import SpendStore

    store = SpendStore(db_path)
    assert store.query("SELECT count(*) FROM daily_spend") == [(45 * 3,)]
    zero_days = [
        d
        for d, v in sandbox.sandbox.expected_total("meta", "1000000001", START, END)["days"].items()
        if Decimal(v) == 0
    ]
    stored_zeros = store.query("SELECT count(*) FROM daily_spend WHERE account_id = '1000000001' AND amount = 0")
    assert stored_zeros == [(len(zero_days),)]
    # requests are counted per account window (the account lookup on its first window), and add up
    run = store.runs(1)[0]
    results = store.run_results(run["run_id"])
    sent = sandbox.ctx.requests["meta"] + sandbox.ctx.requests["google"]
    assert sum(r["requests"] for r in results) == run["requests"] == sent
    assert all(r["requests"] >= 1 for r in results)


def test_refresh_twice_identical_and_no_duplicates_and_incremental(imported, run_cli, sandbox, db_path):
    assert _refresh(run_cli).returncode == 0
    first = _spend(run_cli)
    before = dict(sandbox.ctx.requests)
    r = _refresh(run_cli, "--json")
    assert r.returncode == 0, r
    assert _spend(run_cli)["total_spend"] == first["total_spend"]
    from storage.db import SpendStore

    assert SpendStore(db_path).query(
        "SELECT count(*), count(DISTINCT (platform, account_id, day)) FROM daily_spend"
    ) == [(135, 135)]
    # the second run re-fetched only the days still inside each platform's restatement window
    results = {(x["platform"], a["account_id"]): a for x in r.json()["results"] for a in x["accounts"]}
    assert results[("meta", "1000000001")]["days_fetched"] == 28  # Meta: 28-day lookback
    assert results[("google", "1234567001")]["days_fetched"] == 14  # Google: 14-day lookback
    assert sandbox.ctx.requests["meta"] > before["meta"]


def test_restated_days_are_picked_up_and_replace(imported, run_cli, sandbox, db_path):
    assert _refresh(run_cli).returncode == 0
    restate_from = END - dt.timedelta(days=4)
    sandbox.ctx.configure(
        {
            "restate": {
                "meta": {"from": restate_from.isoformat(), "generation": 1},
                "google": {"from": restate_from.isoformat(), "generation": 2},
            }
        }
    )
    old = _spend(run_cli)
    assert _refresh(run_cli).returncode == 0
    new = _spend(run_cli)
    assert new["total_spend"] != old["total_spend"]
    for platform, _, account in ACCOUNTS:
        acc = next(a for a in new["platforms"][platform]["accounts"] if a["account_id"] == account)
        assert acc["spend"] == str(_expected(sandbox, platform, account).quantize(Decimal("0.01")))
    from storage.db import SpendStore

    assert SpendStore(db_path).query("SELECT count(*) FROM daily_spend") == [(135,)]


def test_permanent_fault_fails_one_platform_keeps_data_and_blocks_export(imported, run_cli, sandbox, db_path, tmp_path):
    assert _refresh(run_cli).returncode == 0
    good = _spend(run_cli)
    sandbox.ctx.configure({"faults": [{"platform": "google", "kind": "5xx", "count": None}]})
    r = _refresh(run_cli, "--full")
    assert r.returncode == 1, r
    status = {tuple(line.split()[:2]): line.split()[2] for line in r.stdout.splitlines() if line.startswith("s1")}
    assert status == {("s1", "meta"): "ok", ("s1", "google"): "failed"}
    assert "HTTP 503" in r.stdout
    doc = _spend(run_cli)
    assert doc["complete"] is False
    assert doc["platforms"]["meta"]["status"] == "ok"
    g = doc["platforms"]["google"]
    assert g["status"] == "failed" and "HTTP 503" in g["error"] and "earlier data kept for 45 days" in g["error"]
    assert g["spend"] == good["platforms"]["google"]["spend"]  # the earlier numbers are intact
    out = tmp_path / "invoice.csv"
    r = run_cli("export", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--out", out)
    assert r.returncode == 1 and not out.exists()
    assert "incomplete" in r.stderr and "google failed" in r.stderr
    r = run_cli(
        "export",
        "--store",
        "s1",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        "--out",
        out,
        "--allow-incomplete",
    )
    assert r.returncode == 0, r
    rows = out.read_text().splitlines()
    assert rows[0] == (
        "store_id,store_name,period_start,period_end,platform,account_id,account_name,account_currency,"
        "spend,fx_rate,billing_currency,billing_amount,day_basis,status"
    )
    google_row = next(x for x in rows if ",google," in x)
    assert google_row.split(",")[-1].startswith("failed: ")
    assert rows[-1].split(",")[4] == "TOTAL" and rows[-1].endswith(",incomplete")


def test_demo_then_refresh_works_with_no_credentials(run_cli):
    assert run_cli("demo").returncode == 0
    r = run_cli(
        "refresh",
        "--store",
        "demo-acme",
        "--start",
        "2026-10-01",
        "--end",
        "2026-10-07",
        "--platform",
        "meta",
        "--platform",
        "google",
    )
    assert r.returncode == 0, r
    assert [line.split()[:3] for line in r.stdout.splitlines()[:2]] == [
        ["demo-acme", "meta", "ok"],
        ["demo-acme", "google", "ok"],
    ]


def test_not_configured_platform_is_never_zero(tmp_path, run_cli):
    csv = tmp_path / "a.csv"
    csv.write_text("store_id,store_name,platform,account_id\ns2,Beta,tiktok,7123456789012345\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    r = run_cli("refresh", "--store", "s2", "--start", "2026-10-01", "--end", "2026-10-02")
    assert r.returncode == 0 and r.stdout.split()[:3] == ["s2", "tiktok", "not_configured"]
    doc = run_cli("spend", "--store", "s2", "--start", "2026-10-01", "--end", "2026-10-02", "--json").json()
    assert doc["platforms"]["tiktok"]["status"] == "not_configured" and doc["complete"] is False


@pytest.mark.parametrize(
    "args,needle",
    [
        (("spend", "--store", "s1", "--start", "2026-13-01", "--end", "2026-12-31", "--json"), "not a date"),
        (("spend", "--store", "s1", "--start", "2026-03-02", "--end", "2026-03-01", "--json"), "after the end date"),
        (
            ("spend", "--store", "nope", "--start", "2026-03-01", "--end", "2026-03-02", "--json"),
            "unknown store 'nope'",
        ),
        (("refresh", "--store", "nope", "--start", "2026-03-01", "--end", "2026-03-02"), "unknown store 'nope'"),
        (
            ("refresh", "--store", "s1", "--start", "2026-03-01", "--end", "2026-03-02", "--platform", "myspace"),
            "unknown platform 'myspace'",
        ),
        (
            ("export", "--store", "s1", "--start", "2026-03-05", "--end", "2026-03-01", "--out", "x.csv"),
            "after the end",
        ),
    ],
)
def test_bad_input_exits_2_with_one_sentence(imported, run_cli, args, needle):
    r = run_cli(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_import_with_bad_lines_imports_nothing_and_names_each(tmp_path, run_cli, db_path):
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id,billing_currency\n"
        "s9,Nine,meta,act_123,USD\n"
        "s9,Nine,google,12-34,USD\n"
        "s9,Nine,meta,abc,USD\n"
        "s9,Nine,friendster,1,USD\n"
        "s9,Nine,tiktok,7123456789012345,usd dollars\n"
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 2, r
    assert "line 3:" in r.stderr and "line 4:" in r.stderr and "line 5:" in r.stderr and "line 6:" in r.stderr
    assert "line 2:" not in r.stderr
    assert "google" in r.stderr and "'12-34'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    from storage.db import SpendStore

    assert SpendStore(db_path).stores() == []


def test_reimport_changes_nothing(imported, run_cli, db_path):
    r = run_cli("accounts", "import", imported)
    assert r.returncode == 0 and "0 new account link(s), 3 unchanged" in r.stdout
    doc = run_cli("accounts", "list", "--json").json()
    assert [(a["platform"], a["account_id"]) for a in doc["stores"][0]["accounts"]] == [
        ("google", "1234567001"),
        ("meta", "1000000001"),
        ("meta", "1000000002"),
    ]


def test_secrets_never_leave(tmp_path, run_cli, sandbox, monkeypatch, caplog, db_path):
    secrets = {
        "META_ACCESS_TOKEN": "SEKRIT-meta-0451-token",
        "GOOGLE_ADS_CLIENT_SECRET": "SEKRIT-google-cs-0451",
        "GOOGLE_ADS_REFRESH_TOKEN": "SEKRIT-google-rt-0451",
        "GOOGLE_ADS_DEVELOPER_TOKEN": "SEKRIT-dev-0451",
    }
    from sandbox.credentials import sandbox_env

    for k, v in {**sandbox_env(sandbox.url, ["meta", "google"]), **secrets}.items():
        monkeypatch.setenv(k, v)
    csv = tmp_path / "a.csv"
    csv.write_text("store_id,store_name,platform,account_id\ns1,Acme,meta,1000000001\ns1,Acme,google,1234567001\n")
    assert run_cli("accounts", "import", csv).returncode == 0
    caplog.set_level(logging.DEBUG)
    outputs = []
    r = _refresh(run_cli)
    outputs += [r.stdout, r.stderr]
    sandbox.ctx.configure(
        {
            "faults": [
                {"platform": "meta", "kind": "expired_token", "count": None},
                {"platform": "google", "kind": "revoked", "count": None},
            ]
        }
    )
    r = _refresh(run_cli, "--full")
    assert r.returncode == 1
    outputs += [r.stdout, r.stderr]
    for args in (
        ("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json"),
        ("accounts", "list", "--json"),
        ("accounts", "list"),
    ):
        r = run_cli(*args)
        outputs += [r.stdout, r.stderr]
    out = tmp_path / "x.csv"
    run_cli(
        "export",
        "--store",
        "s1",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        "--out",
        out,
        "--allow-incomplete",
    )
    blobs = outputs + [caplog.text, out.read_text(), db_path.read_bytes().decode("latin-1")]
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():
        blobs.append(wal.read_bytes().decode("latin-1"))
    for value in secrets.values():
        for blob in blobs:
            assert value not in blob
    assert "re-authorise" in json.dumps(outputs)
