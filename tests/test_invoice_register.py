"""The tamper-evident invoice register (issue 15, item 4): a hash chain over every invoice's full
content. Edits made directly in DuckDB (a total, a line amount, the CSV together with its
checksum, a deleted invoice) are each found by ``invoice verify``, and ``invoice export`` /
``diff`` / ``list`` refuse to serve what fails, with one sentence and exit 1."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil

import duckdb
import pytest

from service import invoice_register as reg
from service import invoices as inv
from storage.db import SpendStore

ROWS = [
    ("s1", "First", "meta", "1000000001", "USD"),
    ("s2", "Second", "meta", "1000000002", "USD"),
    ("s3", "Third", "meta", "1000000003", "USD"),
]


def _cli(db, *args):
    import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--db", str(db), *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A database with INV-000001..3 (one store each, December 2025), sealed without a key."""
    from fetchers.specs import SPECS
    from sandbox.credentials import sandbox_env
    from sandbox.server import SandboxServer

    d = tmp_path_factory.mktemp("register")
    db = d / "register.duckdb"
    server = SandboxServer(0).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in {**sandbox_env(server.url), **{s.rpm_var: "60000" for s in SPECS.values()}}.items():
                mp.setenv(k, v)
            mp.setenv("ADSPEND_TOKEN_CACHE", str(d / "tokens.json"))
            mp.setenv("ADSPEND_NO_DOTENV", "1")
            mp.delenv(reg.KEY_VAR, raising=False)
            (d / "accounts.csv").write_text(
                "store_id,store_name,platform,account_id,billing_currency\n" + "".join(",".join(r) + "\n" for r in ROWS)
            )
            assert _cli(db, "accounts", "import", d / "accounts.csv")[0] == 0
            assert _cli(db, "refresh", "--all", "--start", "2025-12-01", "--end", "2025-12-31")[0] == 0
            for sid, *_ in ROWS:
                code, out, err = _cli(db, "invoice", "finalize", "--store", sid, "--month", "2025-12")
                assert code == 0, (out, err)
    finally:
        server.stop()
    return db


@pytest.fixture
def db(built, tmp_path, monkeypatch):
    monkeypatch.delenv(reg.KEY_VAR, raising=False)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(built, copy)
    return copy


def _sql(db, *statements):
    con = duckdb.connect(str(db))
    try:
        for s in statements:
            con.execute(s)
    finally:
        con.close()


def _verify(db):
    code, out, err = _cli(db, "invoice", "verify", "--json")
    return code, json.loads(out), err


CHANGED = "INV-000002 was changed after it was finalized (its content no longer matches its seal)"


def _refused(db, number, first_problem, more=""):
    """export/diff of ``number`` and list are refused with one sentence, exit 1."""
    sentence = (
        f"error: the invoice register fails verification: {first_problem}{more}; INV-{number:06d} is not "
        "served: "
        "see `python cli.py invoice verify`"
    )
    code, out, err = _cli(db, "invoice", "export", "--number", number, "--out", db.parent / f"inv{number}.csv")
    assert (code, err.splitlines()) == (1, [sentence]), (code, out, err)
    assert not (db.parent / f"inv{number}.csv").exists()
    code, out, err = _cli(db, "invoice", "diff", "--number", number, "--json")
    assert (code, out, err.splitlines()) == (1, "", [sentence])
    code, out, err = _cli(db, "invoice", "list")
    assert code == 1 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"error: the invoice register fails verification: {first_problem}")


def test_an_intact_register_verifies_and_every_invoice_is_served(db):
    code, doc, err = _verify(db)
    assert (code, err) == (0, "")
    assert doc["ok"] is True and doc["invoices"] == 3 and doc["problems"] == [] and doc["legacy"] == 0
    assert doc["algorithms"] == {"sha256": 3}
    seals = SpendStore(db).query("SELECT number, prev_hash, hash, algo FROM invoice_chain ORDER BY number")
    assert [s[0] for s in seals] == [1, 2, 3]
    assert seals[0][1] == "0" * 64 and seals[1][1] == seals[0][2] and seals[2][1] == seals[1][2]
    assert doc["head"] == {"number": 3, "invoice": "INV-000003", "hash": seals[2][2]}
    # the seal is sha256 over the canonical content and the previous hash, recomputable by hand
    with SpendStore(db).connect() as con:
        content = reg._invoice_content(con, 2)
    assert content["total"] == SpendStore(db).query("SELECT total FROM invoices WHERE number = 2")[0][0]
    assert content["csv_bytes_sha256"] == hashlib.sha256(inv.invoice_csv(SpendStore(db), 2)).hexdigest()
    assert [ln["line_no"] for ln in content["lines"]] == [1]
    msg = (
        b"adspend-invoice-register-v1\n"
        + json.dumps(
            {**content, "prev_hash": seals[0][2]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert hashlib.sha256(msg).hexdigest() == seals[1][2]
    code, out, _ = _cli(db, "invoice", "verify")
    assert out == f"invoice register intact: 3 invoice(s) (3 sha256); head INV-000003 {seals[2][2]}\n"
    for n in (1, 2, 3):
        assert _cli(db, "invoice", "export", "--number", n, "--out", db.parent / f"ok{n}.csv")[0] == 0
    assert _cli(db, "invoice", "list")[0] == 0


def test_an_edited_total_is_found(db):
    _sql(db, "UPDATE invoices SET total = '1.00' WHERE number = 2")
    code, doc, err = _verify(db)
    assert code == 1 and doc["ok"] is False
    assert doc["problems"] == [{"number": 2, "invoice": "INV-000002", "problem": CHANGED}]
    assert err == f"error: the invoice register fails verification: 1 problem(s), the first: {CHANGED}\n"
    _refused(db, 2, CHANGED)
    _refused(db, 3, CHANGED)  # the chain through INV-000002 is broken
    assert _cli(db, "invoice", "export", "--number", 1, "--out", db.parent / "one.csv")[0] == 0


def test_an_edited_line_amount_is_found(db):
    _sql(db, "UPDATE invoice_lines SET billing_amount = '0.01', spend = '0.01' WHERE invoice_number = 2")
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"] == [{"number": 2, "invoice": "INV-000002", "problem": CHANGED}]
    _refused(db, 2, CHANGED)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE fee_statements SET fee = fee + 5 WHERE invoice_number = 2",
        "UPDATE fee_statements SET revenue = revenue + 1 WHERE invoice_number = 2",
        "DELETE FROM fee_statements WHERE invoice_number = 2",
    ],
)
def test_an_edited_or_removed_fee_statement_is_found(db, statement):
    # the success-fee statement frozen with the invoice is part of what its seal covers
    assert _verify(db)[0] == 0
    _sql(db, statement)
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"] == [{"number": 2, "invoice": "INV-000002", "problem": CHANGED}]
    _refused(db, 2, CHANGED)


def test_a_replaced_csv_with_a_matching_checksum_is_found(db):
    store = SpendStore(db)
    forged = inv.invoice_csv(store, 2).replace(b"Second", b"Forged")
    _sql(
        db,
        f"UPDATE invoices SET csv = '{forged.decode()}'::BLOB, "
        f"csv_sha256 = '{hashlib.sha256(forged).hexdigest()}' WHERE number = 2",
    )
    assert bytes(store.query("SELECT csv FROM invoices WHERE number = 2")[0][0]) == forged
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"] == [{"number": 2, "invoice": "INV-000002", "problem": CHANGED}]
    _refused(db, 2, CHANGED)
    with pytest.raises(reg.RegisterBroken):  # the dashboard's download goes through the same check
        inv.invoice_csv(store, 2)


@pytest.mark.parametrize("with_seal", [False, True])
def test_a_deleted_invoice_is_found(db, with_seal):
    _sql(
        db,
        "DELETE FROM invoice_lines WHERE invoice_number = 2",
        "DELETE FROM invoices WHERE number = 2",
        *(["DELETE FROM invoice_chain WHERE number = 2"] if with_seal else []),
    )
    code, doc, _ = _verify(db)
    missing = "INV-000002 is missing from the register (deleted)"
    expected = [{"number": 2, "invoice": "INV-000002", "problem": missing}]
    if with_seal:
        expected.append(
            {
                "number": 3,
                "invoice": "INV-000003",
                "problem": "INV-000003 does not follow INV-000002 in the chain (an invoice before it was "
                "removed or replaced)",
            }
        )
    assert code == 1 and doc["problems"] == expected
    _refused(db, 3, missing, " (and 1 more problem(s))" if with_seal else "")


def test_deleting_the_newest_invoice_but_not_its_seal_or_lines_is_found(db):
    _sql(db, "DELETE FROM invoices WHERE number = 3")
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"][0] == {
        "number": 3,
        "invoice": "INV-000003",
        "problem": "INV-000003 is missing from the register (deleted)",
    }


def test_a_rewritten_chain_after_an_edit_is_found_with_a_key(built, tmp_path, monkeypatch):
    """Keyed by ADSPEND_INVOICE_KEY: an edit whose seal is recomputed without the key is found."""
    db = tmp_path / "keyed.duckdb"
    shutil.copy(built, db)
    monkeypatch.setenv(reg.KEY_VAR, "finance-key-0001")
    _sql(db, "DELETE FROM invoice_chain")  # reseal the three as keyed (a test-only shortcut)
    with SpendStore(db).transaction() as con:
        con.execute("DELETE FROM invoice_chain_start")
        con.execute("INSERT INTO invoice_chain_start VALUES (3, now())")
        assert reg.seal_legacy(con) == 3
    code, doc, _ = _verify(db)
    assert code == 0 and doc["algorithms"] == {"hmac-sha256": 3}
    # without the key nothing can be checked
    monkeypatch.delenv(reg.KEY_VAR)
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"][0]["problem"] == (
        "INV-000001 is sealed with ADSPEND_INVOICE_KEY, which is not set here; set it to check the register"
    )
    # an attacker edits INV-000002 and reseals it and INV-000003 with plain sha256 (all they can do)
    monkeypatch.setenv(reg.KEY_VAR, "finance-key-0001")
    _sql(db, "UPDATE invoices SET total = '1.00' WHERE number = 2")
    with SpendStore(db).connect() as con:
        prev = con.execute("SELECT hash FROM invoice_chain WHERE number = 1").fetchone()[0]
        h2 = reg.seal_hash(reg._invoice_content(con, 2), prev, "sha256", None)
        h3 = reg.seal_hash(reg._invoice_content(con, 3), h2, "sha256", None)
    _sql(
        db,
        f"UPDATE invoice_chain SET hash = '{h2}', algo = 'sha256' WHERE number = 2",
        f"UPDATE invoice_chain SET prev_hash = '{h2}', hash = '{h3}', algo = 'sha256' WHERE number = 3",
    )
    code, doc, _ = _verify(db)
    assert code == 1 and [p["problem"] for p in doc["problems"]] == [
        "INV-000002 is sealed without the key after keyed invoices (a downgrade)",
        "INV-000003 is sealed without the key after keyed invoices (a downgrade)",
    ]
    # and with a wrong key every keyed seal fails
    monkeypatch.setenv(reg.KEY_VAR, "another-key")
    code, doc, _ = _verify(db)
    assert doc["problems"][0] == {"number": 1, "invoice": "INV-000001", "problem": CHANGED.replace("2", "1")}


def test_invoices_made_before_the_register_are_sealed_as_found_on_first_use(built, tmp_path, monkeypatch):
    """A database from before migration 4 (three invoices, no chain): the migration records them,
    the first use seals them as found, and from then on they are checked; a new invoice chains on."""
    db = tmp_path / "old.duckdb"
    shutil.copy(built, db)
    _sql(
        db,
        "DROP TABLE invoice_chain",
        "DROP TABLE invoice_chain_start",
        "ALTER TABLE refresh_runs DROP COLUMN heartbeat_at",
        "ALTER TABLE refresh_runs DROP COLUMN owner",
        "ALTER TABLE refresh_runs DROP COLUMN lease_seconds",
        "DELETE FROM schema_migrations WHERE version = 4",
    )
    store = SpendStore(db)  # migrates to 4 again
    assert store.query("SELECT legacy_upto FROM invoice_chain_start") == [(3,)]
    assert store.query("SELECT count(*) FROM invoice_chain") == [(0,)]
    code, doc, _ = _verify(db)
    assert code == 0 and doc["legacy"] == 3 and doc["invoices"] == 3
    assert store.query("SELECT number, legacy FROM invoice_chain ORDER BY 1") == [(1, True), (2, True), (3, True)]
    _sql(db, "UPDATE invoice_lines SET billing_amount = '0.01' WHERE invoice_number = 2")
    code, doc, _ = _verify(db)
    assert code == 1 and doc["problems"] == [{"number": 2, "invoice": "INV-000002", "problem": CHANGED}]


def test_a_new_invoice_chains_onto_legacy_ones(built, tmp_path, monkeypatch):
    db = tmp_path / "old2.duckdb"
    shutil.copy(built, db)
    _sql(
        db,
        "DELETE FROM invoice_chain",
        "DELETE FROM invoice_lines WHERE invoice_number = 3",
        "DELETE FROM invoices WHERE number = 3",
        "DELETE FROM invoice_chain_start",
        "INSERT INTO invoice_chain_start VALUES (2, now())",
    )
    store = SpendStore(db)
    import datetime as dt

    from service.invoice_register import seal_new

    with store.transaction() as con:  # INV-000003 finalized now: legacy 1-2 sealed first
        src = duckdb.connect(str(built), read_only=True)
        row = src.execute("SELECT * FROM invoices WHERE number = 3").fetchall()[0]
        lines = src.execute("SELECT * FROM invoice_lines WHERE invoice_number = 3").fetchall()
        src.close()
        con.execute(f"INSERT INTO invoices VALUES ({', '.join('?' * len(row))})", list(row))
        for ln in lines:
            con.execute(f"INSERT INTO invoice_lines VALUES ({', '.join('?' * len(ln))})", list(ln))
        seal_new(con, 3, dt.datetime.now(dt.UTC))
    assert store.query("SELECT number, legacy FROM invoice_chain ORDER BY 1") == [(1, True), (2, True), (3, False)]
    code, doc, _ = _verify(db)
    assert code == 0 and doc["legacy"] == 2 and doc["invoices"] == 3


def test_the_invoicing_page_refuses_a_tampered_invoice_with_one_sentence(db, monkeypatch):
    import streamlit as st
    from browser_support import ROOT
    from streamlit.testing.v1 import AppTest

    _sql(db, "UPDATE invoices SET total = '1.00' WHERE number = 2")
    monkeypatch.setenv("ADSPEND_DB", str(db))
    monkeypatch.setenv("ADSPEND_TODAY", "2026-01-15")  # December 2025 is among the page's months on any date
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at = at.switch_page("pages/6_Invoicing.py").run()
    at.selectbox(key="inv_month").set_value("2025-12").run()
    at.selectbox(key="inv_store").set_value("s2").run()
    assert not at.exception
    labels = [e.proto.label for e in at.get("download_button")]
    assert not any("INV-000002" in label for label in labels)
    assert [e.value for e in at.error] == [
        f"Could not show the invoicing page. The invoice register fails verification: {CHANGED}; INV-000002 is "
        "not served: see \\`python cli.py invoice verify\\`."
    ]
    at.selectbox(key="inv_store").set_value("s1").run()  # an invoice before the edit is still served
    assert not at.error and "Download INV-000001" in [e.proto.label for e in at.get("download_button")]
