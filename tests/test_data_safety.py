"""Issue 15 (data safety), the CLI side: nothing a mistyped flag or a hostile file can break.

- ``--out`` never over the database (symlink, hard link, its .wal), the token cache, or an existing
  file without ``--force``; atomic (service/outfile.py).
- Account import: a size cap checked while reading (``/dev/zero`` is refused after 20 MB, never
  read whole), rows inserted in bulk in one transaction.
- Formula neutralisation: every text column, even text ``Decimal()`` reads; the mapping CSV
  round-trips.
- Control characters refused in ``--by``, ``ADSPEND_USER`` and names.
- OS errors and out-of-range dates: one sentence, the right exit status; ``| head`` exits quietly.
- A read-only database (0444 file in a 0555 folder, as a non-root user) can be read.
- Dates strictly ``YYYY-MM-DD``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = "store_id,store_name,platform,account_id\n"
PERIOD = ["--start", "2026-01-01", "--end", "2026-01-31"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def one_store(tmp_path, run_cli):
    f = tmp_path / "accounts.csv"
    f.write_text(HEADER + "s1,Acme,meta,1000000001\n")
    r = run_cli("accounts", "import", f)
    assert r.returncode == 0, r
    return f


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr, r
    return lines[0]


# --- 1. --out --------------------------------------------------------------------------------------


def test_out_never_over_the_database_even_by_symlink_hard_link_or_force(one_store, run_cli, db_path, tmp_path):
    before = _sha(db_path)
    link = tmp_path / "innocent.csv"
    link.symlink_to(db_path)
    hard = tmp_path / "hard.csv"
    os.link(db_path, hard)
    for out in (db_path, link, hard, Path(f"{db_path}.wal"), tmp_path / "." / db_path.name):
        for force in ((), ("--force",)):
            r = run_cli("export", "--store", "s1", *PERIOD, "--out", out, "--allow-incomplete", *force)
            assert r.returncode == 2, r
            assert "it is the database" in _one_line(r)
            r = run_cli("invoice", "export", "--number", "1", "--out", out, *force)
            assert r.returncode == 2 and "it is the database" in _one_line(r), r
            r = run_cli("invoice", "diff", "--number", "1", "--out", out, *force)
            assert r.returncode == 2 and "it is the database" in _one_line(r), r
    assert _sha(db_path) == before and not Path(f"{db_path}.wal").exists()
    assert run_cli("accounts", "list", "--json").json()["stores"][0]["store_id"] == "s1"


def test_out_never_over_the_token_cache(one_store, run_cli, tmp_path, monkeypatch):
    cache = Path(os.environ["ADSPEND_TOKEN_CACHE"])
    cache.write_text('{"meta": "kept"}')
    next_to_db = tmp_path / "token_cache.json"  # the default place, next to the database
    for out in (cache, next_to_db):
        r = run_cli("export", "--store", "s1", *PERIOD, "--out", out, "--allow-incomplete", "--force")
        assert r.returncode == 2 and "token cache" in _one_line(r), r
    assert cache.read_text() == '{"meta": "kept"}'


def test_out_never_over_an_existing_file_unless_force(one_store, run_cli, tmp_path):
    out = tmp_path / "report.csv"
    out.write_text("my notes\n")
    r = run_cli("export", "--store", "s1", *PERIOD, "--out", out, "--allow-incomplete")
    assert r.returncode == 2 and "already exists" in _one_line(r) and "--force" in r.stderr, r
    assert out.read_text() == "my notes\n"
    r = run_cli("export", "--store", "s1", *PERIOD, "--out", out, "--allow-incomplete", "--force")
    assert r.returncode == 0, r
    assert out.read_text().startswith("store_id,store_name,period_start")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_write_new_file_is_atomic_and_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    from service import outfile

    target = tmp_path / "out.csv"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outfile.os, "replace", boom)
    with pytest.raises(outfile.OutFileFailed) as exc:
        outfile.write_new_file(target, b"new", force=True)
    assert str(exc.value) == f"cannot write {target}: no space left on device"
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    monkeypatch.undo()
    assert outfile.write_new_file(tmp_path / "sub" / "new.csv", b"data") == tmp_path / "sub" / "new.csv"
    assert (tmp_path / "sub" / "new.csv").read_bytes() == b"data"


# --- 5. account import ----------------------------------------------------------------------------------


class _NoSlurp(type(Path())):
    """A path whose whole-file read is a test failure: the import must read in capped chunks."""

    def read_bytes(self):
        raise AssertionError("the whole file was read before the size check")


def test_import_of_dev_zero_is_refused_without_reading_it_whole(tmp_path):
    from service.accounts import ImportError_, import_accounts
    from storage.db import SpendStore

    store = SpendStore(tmp_path / "a.duckdb")
    with pytest.raises(ImportError_) as exc:
        import_accounts(store, _NoSlurp("/dev/zero"))
    assert str(exc.value) == "the file is larger than 20 MB; split it"
    assert store.stores() == []


@pytest.mark.parametrize(
    "command, limit", [(("budgets", "import"), 5), (("revenue", "import"), 20), (("accounts", "import"), 20)]
)
def test_every_csv_import_refuses_dev_zero_early_in_one_sentence(run_cli, command, limit):
    # the same capped read for every importer (service/csv_input.py): never the whole of /dev/zero
    r = run_cli(*command, "/dev/zero")
    assert (r.returncode, r.stderr) == (2, f"error: the file is larger than {limit} MB; split it\n"), r


def test_import_is_bulk_in_one_transaction_and_exact(tmp_path, monkeypatch):
    """2,000 rows: the same result as row by row (last display name wins, re-import unchanged),
    in a handful of statements, not thousands."""
    from service.accounts import import_accounts
    from storage.db import SpendStore

    store = SpendStore(tmp_path / "a.duckdb")
    store.save_store("s0", "Old name", "EUR")
    with store.transaction() as con:
        store.link_accounts(con, [("s0", "meta", "1000000000", "kept"), ("s0", "meta", "1000000001", "old")])
    rows = [f"s{i // 4},Store {i // 4},meta,{1000000000 + i},{'' if i % 3 else f'n{i}'}" for i in range(2000)]
    rows.append("s0,Store 0,meta,1000000001,renamed")  # a repeated link: the last name wins
    f = tmp_path / "m.csv"
    f.write_text("store_id,store_name,platform,account_id,display_name\n" + "\n".join(rows) + "\n")
    executes = []
    real_connect = SpendStore.connect

    class Counting:
        def __init__(self, con):
            self._con = con

        def execute(self, *a, **k):
            executes.append(a[0][:40])
            return self._con.execute(*a, **k)

        def __getattr__(self, name):
            return getattr(self._con, name)

    import contextlib

    @contextlib.contextmanager
    def counting(self):
        with real_connect(self) as con:
            yield Counting(con)

    monkeypatch.setattr(SpendStore, "connect", counting)
    r = import_accounts(store, f)
    monkeypatch.undo()
    assert (r.stores, r.added, r.unchanged) == (500, 1998, 2)  # two links existed already
    assert len(executes) < 20, executes[:30]
    assert executes.count("BEGIN TRANSACTION") == 1
    got = {(a["store_id"], a["account_id"]): a["display_name"] for a in store.accounts()}
    assert len(got) == 2000
    assert got[("s0", "1000000000")] == "n0" and got[("s0", "1000000001")] == "renamed"
    assert got[("s0", "1000000003")] == "n3" and got[("s1", "1000000004")] is None
    assert store.store("s0") == {"store_id": "s0", "name": "Store 0", "billing_currency": "USD", "is_demo": False}
    again = import_accounts(store, f)
    assert (again.stores, again.added, again.unchanged) == (500, 0, 2000)


# --- 8. formula neutralisation ------------------------------------------------------------------------

TRICKY = ["-Infinity", "+NaN", "-1E+2", "+sNaN12", "-5", "=1+1", "'quoted", "''twice", "'=already", "Plain"]


def test_every_text_column_is_neutralised_even_when_it_reads_as_a_number():
    from service.export import HEADER, neutralise_row, neutralise_text

    for name in ("-Infinity", "+NaN", "-1E+2", "+sNaN12", "-5"):
        row = dict(
            zip(
                HEADER,
                neutralise_row(
                    [
                        "-1",
                        name,
                        "2026-01-01",
                        "2026-01-31",
                        "meta",
                        "+1E5",
                        name,
                        "USD",
                        "-12.50",
                        "1",
                        "USD",
                        "-12.50",
                        "UTC",
                        "ok",
                    ]
                ),
            )
        )
        assert row["store_name"] == row["account_name"] == "'" + name
        assert row["store_id"] == "'-1" and row["account_id"] == "'+1E5"
        assert (row["spend"], row["billing_amount"], row["fx_rate"]) == ("-12.50", "-12.50", "1")
    assert neutralise_text("Plain") == "Plain"


def test_export_csv_neutralises_store_names_that_decimal_parses(tmp_path, run_cli):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["store_id", "store_name", "platform", "account_id"])
    for i, name in enumerate(["-Infinity", "+NaN", "-1E+2", "+sNaN12"]):
        w.writerow([f"s{i}", name, "meta", f"100000000{i}"])
    f = tmp_path / "m.csv"
    f.write_text(buf.getvalue())
    assert run_cli("accounts", "import", f).returncode == 0
    out = tmp_path / "all.csv"
    r = run_cli("export", "--all", *PERIOD, "--out", out, "--allow-incomplete")
    assert r.returncode == 0, r
    names = {row["store_name"] for row in csv.DictReader(io.StringIO(out.read_text()))}
    assert names == {"'-Infinity", "'+NaN", "'-1E+2", "'+sNaN12"}


def test_mapping_csv_round_trips(tmp_path):
    from service.accounts import export_mapping_csv, import_accounts
    from storage.db import SpendStore

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["store_id", "store_name", "platform", "account_id", "billing_currency", "display_name"])
    for i, name in enumerate(TRICKY):
        w.writerow([f"s{i}", name, "meta", f"100000000{i}", "EUR", TRICKY[-1 - i]])
    first = tmp_path / "first.csv"
    first.write_text(buf.getvalue())
    store = SpendStore(tmp_path / "a.duckdb")
    import_accounts(store, first)
    stored = {s["store_id"]: s["name"] for s in store.stores()}
    assert stored == {
        f"s{i}": name.removeprefix("'") if name.startswith(("'=", "''")) else name for i, name in enumerate(TRICKY)
    }  # an apostrophe before = is undone
    exported = export_mapping_csv(store)
    again = tmp_path / "again.csv"
    again.write_bytes(exported)
    r = import_accounts(store, again)
    assert (r.added, r.unchanged) == (0, len(TRICKY))
    assert {s["store_id"]: s["name"] for s in store.stores()} == stored
    assert {a["account_id"]: a["display_name"] for a in store.accounts()} == {
        f"100000000{i}": v for i, v in enumerate(stored[f"s{len(TRICKY) - 1 - i}"] for i in range(len(TRICKY)))
    }
    assert export_mapping_csv(store) == exported
    for row in list(csv.reader(io.StringIO(exported.decode())))[1:]:
        assert not row[1].startswith(("=", "+", "-", "@")), row


# --- 9. control characters -----------------------------------------------------------------------------


def test_control_characters_in_by_and_adspend_user_are_refused(one_store, run_cli, monkeypatch):
    r = run_cli("invoice", "finalize", "--store", "s1", "--month", "2026-01", "--by", "ops\x1b[2J\nINV-000009 forged")
    assert r.returncode == 2 and "(--by) contains control characters" in _one_line(r), r
    monkeypatch.setenv("ADSPEND_USER", "ops\u2028forged")
    r = run_cli("invoice", "finalize", "--store", "s1", "--month", "2026-01")
    assert r.returncode == 2 and "ADSPEND_USER" in _one_line(r), r
    assert run_cli("invoice", "list", "--json").json() == []


def test_control_characters_in_names_are_refused(tmp_path, run_cli, db_path):
    f = tmp_path / "m.csv"
    f.write_text(HEADER + "s1,Acme\x9b31m,meta,1000000001\ns2,Line\u2028Two,meta,1000000002\n", encoding="utf-8")
    r = run_cli("accounts", "import", f)
    assert r.returncode == 2, r
    assert "line 2: store_name contains control characters" in r.stderr and "line 3:" in r.stderr
    from service.dashboard import link_account
    from storage.db import SpendStore

    store = SpendStore(db_path)
    with pytest.raises(ValueError, match="control characters"):
        store.save_store("s3", "Name\x1b]8;;http://x\x07", "USD")
    store.save_store("s3", "Fine", "USD")
    with pytest.raises(ValueError, match="control characters"):
        link_account(store, "s3", "meta", "1000000003", "evil\x7f")
    assert store.stores() == [{"store_id": "s3", "name": "Fine", "billing_currency": "USD", "is_demo": False}]
    assert store.accounts() == []


# --- 10. OS errors and out-of-range dates ------------------------------------------------------------------


def test_os_errors_are_one_sentence_with_the_right_status(one_store, run_cli, tmp_path, db_path):
    cases = [
        (tmp_path, "is a folder"),
        ("", "the output file name is empty"),
        (one_store / "x.csv", "is a file, not a folder"),
    ]
    for out, needle in cases:
        r = run_cli("export", "--store", "s1", *PERIOD, "--out", out, "--allow-incomplete")
        assert r.returncode == 2 and needle in _one_line(r), r
    before = one_store.read_bytes()
    r = run_cli("spend", "--store", "s1", *PERIOD, db=one_store)
    assert r.returncode == 2 and "not an Ad Spend Hub database" in _one_line(r), r
    r = run_cli("invoice", "list", db=one_store)
    assert r.returncode == 2 and "not an Ad Spend Hub database" in _one_line(r), r
    assert one_store.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ["spend", "--store", "s1", "--start", "0001-01-01", "--end", "0001-01-05"],
        ["spend", "--store", "s1", "--start", "2026-01-01", "--end", "9999-12-31"],
        ["export", "--store", "s1", "--start", "0001-01-01", "--end", "2026-01-01", "--out", "x.csv"],
        ["invoice", "finalize", "--store", "s1", "--month", "9999-12"],
        ["invoice", "finalize", "--store", "s1", "--month", "0001-01"],
    ],
)
def test_out_of_range_dates_are_bad_input(one_store, run_cli, args):
    r = run_cli(*args)
    assert r.returncode == 2 and "out of range" in _one_line(r), r


def test_broken_pipe_exits_quietly(one_store, db_path):
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "--db", str(db_path), "accounts", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    p.stdout.close()  # `| head -0`: the reader is gone before we write
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and err == ""


# --- 10/11. as a user who cannot write (tests run as root here, which no permission stops) ---------------


def _unprivileged() -> None:
    """In the child, before exec: when root, drop the capabilities that bypass file permissions
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) so a 0444 file in a 0555 folder is read-only to it."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # PR_CAPBSET_DROP = 24
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _python(args: list) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        preexec_fn=_unprivileged,
    )


def _as_nobody(args: list) -> subprocess.CompletedProcess:
    """The CLI as a user whom file permissions stop (root without its permission-bypassing capabilities)."""
    return _python([ROOT / "cli.py", *args])


@pytest.fixture
def locked_db(tmp_path, one_store, db_path):
    """A copy of the database, file 0444 in a 0555 folder, and a writable folder for --out."""
    ro, out = tmp_path / "ro", tmp_path / "out"
    ro.mkdir()
    out.mkdir()
    shutil.copy(db_path, ro / "adspend.duckdb")
    os.chmod(ro / "adspend.duckdb", 0o444)
    os.chmod(ro, 0o555)
    try:
        yield ro / "adspend.duckdb", out
    finally:
        os.chmod(ro, 0o755)


def test_a_read_only_database_can_be_read(locked_db):
    db, out = locked_db
    before = _sha(db)
    r = _as_nobody(["--db", db, "spend", "--store", "s1", *PERIOD, "--json"])
    assert r.returncode == 0, r.stderr
    assert r.stdout and '"store_id": "s1"' in r.stdout
    r = _as_nobody(["--db", db, "accounts", "list", "--json"])
    assert r.returncode == 0 and '"store_id": "s1"' in r.stdout, r.stderr
    r = _as_nobody(["--db", db, "invoice", "list", "--json"])
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
    r = _as_nobody(["--db", db, "export", "--store", "s1", *PERIOD, "--out", out / "s1.csv", "--allow-incomplete"])
    assert r.returncode == 0, r.stderr
    assert (out / "s1.csv").read_text().startswith("store_id,")
    # the dashboard opens the store without read_only: it falls back to reading
    code = (
        f"from storage.db import SpendStore; s = SpendStore(r'{db}'); "
        "print(s.read_only, [x['store_id'] for x in s.stores()])"
    )
    r = _python(["-c", code])
    assert r.stdout.strip() == "True ['s1']", r.stderr
    assert _sha(db) == before and sorted(p.name for p in db.parent.iterdir()) == ["adspend.duckdb"]


def test_writing_to_a_read_only_database_or_folder_is_one_sentence(locked_db, tmp_path):
    db, out = locked_db
    f = out / "m.csv"
    f.write_text(HEADER + "s2,Two,meta,1000000002\n")
    r = _as_nobody(["--db", db, "accounts", "import", f])
    assert r.returncode == 1, r
    assert r.stderr.count("\n") == 1 and "read-only" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _as_nobody(["--db", db.parent / "new.duckdb", "accounts", "list"])
    assert r.returncode == 1 and "permission denied" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = _as_nobody(["--db", db, "export", "--store", "s1", *PERIOD, "--out", db.parent / "x.csv", "--allow-incomplete"])
    assert r.returncode == 1 and r.stderr.startswith(f"error: cannot write {db.parent / 'x.csv'}: permission denied")


def test_read_only_open_never_migrates_and_says_when_the_schema_is_older(locked_db):
    """A database at an older schema in a read-only place: one sentence, nothing written."""
    import duckdb

    db, _ = locked_db
    os.chmod(db.parent, 0o755)
    os.chmod(db, 0o644)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    con.close()
    os.chmod(db, 0o444)
    os.chmod(db.parent, 0o555)
    r = _as_nobody(["--db", db, "spend", "--store", "s1", *PERIOD])
    assert r.returncode == 1, r
    assert "older than this Ad Spend Hub's" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_reading_commands_connect_read_only(one_store, db_path, run_cli, monkeypatch):
    from storage import db as db_mod

    seen = []
    real = db_mod._attach

    def spy(*a, **k):
        seen.append(bool(k.get("read_only")))
        return real(*a, **k)

    monkeypatch.setattr(db_mod, "_attach", spy)
    for args in (["spend", "--store", "s1", *PERIOD], ["accounts", "list"], ["invoice", "list"]):
        seen.clear()
        assert run_cli(*args).returncode == 0
        assert seen and all(seen), (args, seen)


# --- 13. strict dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["20261001", "2026-W40-1", "2026-10-1", " 2026-10-01x", "2026-10-01T00:00"])
def test_dates_are_strictly_yyyy_mm_dd(one_store, run_cli, value):
    for args in (
        ["spend", "--store", "s1", "--start", value, "--end", "2026-12-31"],
        ["refresh", "--store", "s1", "--start", "2026-01-01", "--end", value],
        ["invoice", "finalize", "--store", "s1", "--start", value, "--end", "2026-12-31"],
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and "is not a date in the form YYYY-MM-DD" in _one_line(r), r


def test_one_strict_day_parser_for_cli_wire_and_clock(monkeypatch):
    from fetchers import clock
    from fetchers.base import MalformedResponse
    from fetchers.core import parse_day

    assert clock.strict_day("2026-10-01") == dt.date(2026, 10, 1)
    for bad in ("20261001", "2026-W40-1", "2026-10-01\n1"):
        with pytest.raises(ValueError):
            clock.strict_day(bad)
        with pytest.raises(MalformedResponse):
            parse_day(bad, "date")
    monkeypatch.setenv("ADSPEND_TODAY", "2026-W40-1")  # not a pin: ignored, the real day answers
    assert clock.today() == dt.datetime.now(dt.UTC).date()


def test_read_only_and_read_write_opens_coexist_in_one_process(tmp_path):
    """A file is attached once per process: a reader uses the read-write attach already there, a
    writer waits for a brief read-only one to end."""
    import threading

    from storage.db import SpendStore

    rw = SpendStore(tmp_path / "a.duckdb")
    ro = SpendStore(tmp_path / "a.duckdb", read_only=True)
    assert ro.read_only and not rw.read_only
    with rw.connect():
        assert ro.stores() == []
    inside, ended = threading.Event(), []

    def reader():
        with ro.connect() as con:
            inside.set()
            time.sleep(0.2)
            assert con.execute("SELECT count(*) FROM stores").fetchone() == (0,)
            ended.append(time.monotonic())

    t = threading.Thread(target=reader)
    t.start()
    inside.wait()
    rw.save_store("s1", "Acme", "USD")
    saved = time.monotonic()
    t.join()
    assert ended and saved >= ended[0]
    assert [s["store_id"] for s in ro.stores()] == ["s1"]


def test_a_writable_database_in_a_read_only_folder_reads_and_refuses_writes_in_one_sentence(locked_db, tmp_path):
    """DuckDB creates <db>.wal next to the file on commit: without write access to the folder a
    write is one sentence (exit 1, nothing changed), and reading still works."""
    db, out = locked_db
    os.chmod(db, 0o644)
    before = _sha(db)
    f = out / "m.csv"
    f.write_text(HEADER + "s2,Two,meta,1000000002\n")
    r = _as_nobody(["--db", db, "accounts", "import", f])
    assert r.returncode == 1, r
    assert r.stderr == (
        f"error: cannot write to the database {db}: permission denied (DuckDB needs to write the "
        "file and create adspend.duckdb.wal in its folder); nothing was changed\n"
    )
    r = _as_nobody(["--db", db, "spend", "--store", "s1", *PERIOD, "--json"])
    assert r.returncode == 0 and '"store_id": "s1"' in r.stdout, r.stderr
    assert _sha(db) == before


def test_import_still_names_every_bad_line_after_the_first():
    """Bulk import keeps the old checks: a store given two names is reported on each later line,
    even after an earlier bad line."""
    from service.accounts import ImportError_, parse_import

    body = "s1,Acme,meta,1000000001\ns2,Fine,nosuch,1\ns3,Three,meta,1000000003\ns3,Other,meta,1000000004\n"
    with pytest.raises(ImportError_) as exc:
        parse_import((HEADER + body).encode())
    msg = str(exc.value)
    assert msg.startswith("nothing imported: 2 bad line(s): line 3: unknown platform 'nosuch'")
    assert "line 5: store s3 has name/currency 'Other'/USD here but 'Three'/USD on line 4" in msg


def test_dashboard_shows_a_database_it_cannot_write_read_only(one_store, db_path, monkeypatch):
    """The dashboard's store opens read-only when the file cannot be written (simulated here: the
    tests run as root in-process, so DuckDB's read-write open is made to fail as it would)."""
    import duckdb
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from storage import db as db_mod

    real = db_mod._attach

    def no_write(host, path, *a, **k):
        if not k.get("read_only"):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')
        return real(host, path, *a, **k)

    before = _sha(db_path)
    monkeypatch.setenv("ADSPEND_DB", str(db_path))
    monkeypatch.setattr(db_mod, "_attach", no_write)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    finally:
        st.cache_resource.clear()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot be written here" in w.value and "read-only" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="store_id").value == "s1"  # no demo stores were seeded
    assert _sha(db_path) == before
