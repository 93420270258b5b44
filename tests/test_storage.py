"""The spend store: migrations, whole-window replacement, failures that keep earlier data."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import duckdb
import pytest

import storage.db as db_mod
import storage.migrations as mig
from storage.db import DatabaseError, SpendStore, WindowFailure, WindowWrite

D = dt.date
NOW = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)


def _window(start, end, amounts, run="r1", at=NOW, account="111", currency="USD"):
    days = {start + dt.timedelta(days=i): Decimal(amounts[i]) for i in range((end - start).days + 1)}
    return WindowWrite("meta", account, start, end, days, currency, run, at)


def _rows(store):
    return store.query("SELECT day, amount, run_id FROM daily_spend ORDER BY day")


def test_new_database_is_at_latest_schema(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    assert store.schema_version() == mig.LATEST


def test_older_database_upgrades_in_place_and_keeps_its_data(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    monkeypatch.setattr(db_mod, "MIGRATIONS", mig.MIGRATIONS[:1])
    monkeypatch.setattr(db_mod, "LATEST", 1)
    old = SpendStore(path)
    old.save_store("s1", "Old Store", "EUR")
    old.write_windows([_window(D(2026, 1, 1), D(2026, 1, 2), ["1.10", "2.20"])])
    assert old.schema_version() == 1
    upgrade = mig.MIGRATIONS + [
        (max(mig.LATEST, 1) + 1, "test-only: a later column", "ALTER TABLE stores ADD COLUMN note VARCHAR DEFAULT 'x'")
    ]
    monkeypatch.setattr(db_mod, "MIGRATIONS", upgrade)
    monkeypatch.setattr(db_mod, "LATEST", upgrade[-1][0])
    new = SpendStore(path)
    assert new.schema_version() == upgrade[-1][0]
    assert new.store("s1") == {"store_id": "s1", "name": "Old Store", "billing_currency": "EUR", "is_demo": False}
    assert [(d, a) for d, a, _ in _rows(new)] == [(D(2026, 1, 1), Decimal("1.10")), (D(2026, 1, 2), Decimal("2.20"))]
    assert new.query("SELECT note FROM stores") == [("x",)]
    applied = [v for (v,) in new.query("SELECT version FROM schema_migrations ORDER BY 1")]
    assert applied == [v for v, _, _ in upgrade]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "n.duckdb"
    SpendStore(path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now())")
    con.close()
    with pytest.raises(DatabaseError, match="newer"):
        SpendStore(path)


def test_window_replaces_whole_range_without_duplicates(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 3), ["1.00", "2.00", "3.00"])])
    store.write_windows([_window(D(2026, 1, 2), D(2026, 1, 3), ["20.123456", "0"], run="r2")])
    assert _rows(store) == [
        (D(2026, 1, 1), Decimal("1.000000"), "r1"),
        (D(2026, 1, 2), Decimal("20.123456"), "r2"),
        (D(2026, 1, 3), Decimal("0.000000"), "r2"),
    ]
    assert store.query("SELECT sum(amount) FROM daily_spend") == [(Decimal("21.123456"),)]


def test_failed_window_keeps_earlier_amounts_and_marks_days(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 2), ["5.00", "6.00"])])
    store.write_windows(failures=[WindowFailure("meta", "111", D(2026, 1, 1), D(2026, 1, 3), "HTTP 500", "r2", NOW)])
    assert [(d, a) for d, a, _ in _rows(store)] == [
        (D(2026, 1, 1), Decimal("5.000000")),
        (D(2026, 1, 2), Decimal("6.000000")),
    ]
    assert store.query("SELECT count(*), min(error) FROM fetch_failures") == [(3, "HTTP 500")]
    # a later successful fetch clears the failure marks of its window only
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 2), ["5.00", "6.50"], run="r3")])
    assert store.query("SELECT day FROM fetch_failures") == [(D(2026, 1, 3),)]


def test_incomplete_window_is_refused_and_nothing_is_written(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    bad = WindowWrite("meta", "111", D(2026, 1, 1), D(2026, 1, 3), {D(2026, 1, 1): Decimal(1)}, "USD", "r", NOW)
    with pytest.raises(ValueError, match="not complete"):
        store.write_windows([_window(D(2026, 1, 5), D(2026, 1, 5), ["1"]), bad])
    assert _rows(store) == []


def test_transaction_rolls_back_whole_batch(tmp_path, monkeypatch):
    store = SpendStore(tmp_path / "a.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 1), ["9.99"])])
    with pytest.raises(RuntimeError):
        with store.transaction() as con:
            con.execute("DELETE FROM daily_spend")
            raise RuntimeError("crash in the middle")
    assert [(d, a) for d, a, _ in _rows(store)] == [(D(2026, 1, 1), Decimal("9.990000"))]


def test_days_to_fetch_skips_settled_days_and_refetches_changeable_ones(tmp_path):
    store = SpendStore(tmp_path / "a.duckdb")
    # Jan 1..3 fetched on Jan 20 (settled for a 3-day lookback); Jan 4..5 fetched on Jan 6 (still changeable then)
    store.write_windows(
        [
            _window(D(2026, 1, 1), D(2026, 1, 3), ["1", "1", "1"], at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC)),
            _window(D(2026, 1, 4), D(2026, 1, 5), ["1", "1"], at=dt.datetime(2026, 1, 6, tzinfo=dt.UTC)),
        ]
    )
    store.write_windows(failures=[WindowFailure("meta", "111", D(2026, 1, 2), D(2026, 1, 2), "x", "r", NOW)])
    plan = store.days_to_fetch(
        [("meta", "111", 3), ("meta", "222", 3)],
        D(2026, 1, 1),
        D(2026, 1, 8),
        now=dt.datetime(2026, 1, 7, 12, tzinfo=dt.UTC),
    )
    assert plan[("meta", "111")] == [D(2026, 1, 2), D(2026, 1, 4), D(2026, 1, 5), D(2026, 1, 6), D(2026, 1, 7)]
    assert plan[("meta", "222")] == [D(2026, 1, d) for d in range(1, 8)]  # never fetched; not the future
    full = store.days_to_fetch([("meta", "111", 3)], D(2026, 1, 1), D(2026, 1, 3), now=NOW, full=True)
    assert full[("meta", "111")] == [D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 3)]


def test_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseError, match="directory"):
        SpendStore(tmp_path)


def test_the_refresh_loads_every_platforms_pending_reports_in_one_query(tmp_path):
    store = SpendStore(tmp_path / "j.duckdb")
    store.job_store("amazon").put("k1", "job-1")
    store.job_store("microsoft").put("k2", "job-2")
    assert store.pending_jobs(["amazon", "microsoft", "meta"]) == {
        "amazon": {"k1": "job-1"},
        "microsoft": {"k2": "job-2"},
        "meta": {},
    }
    buffered = store.job_store("amazon", buffered=True, pending={"k1": "job-1"})
    assert buffered.get("k1") == "job-1" and buffered.get("k2") is None


def _other_process_can_write(path) -> bool:
    code = "import duckdb, sys\ntry:\n    duckdb.connect(sys.argv[1]).close()\nexcept duckdb.IOException:\n    sys.exit(3)\n"
    return subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 0


def test_a_file_is_attached_once_per_process_and_released_when_its_last_operation_ends(tmp_path, monkeypatch):
    """Every operation attaches the file to the process's one in-memory DuckDB; nested and
    concurrent operations share that attach, and the last to end detaches it, which releases the
    file lock for other processes (a CLI refresh while the dashboard is idle)."""
    store = SpendStore(tmp_path / "a.duckdb")
    attaches = []
    real = db_mod._attach
    monkeypatch.setattr(db_mod, "_attach", lambda *a, **k: attaches.append(a[1:]) or real(*a, **k))
    with store.connect() as outer:
        with store.connect() as inner:
            inner.execute("INSERT INTO stores (store_id, name) VALUES ('s1', 'One')")
        assert outer.execute("SELECT store_id FROM stores").fetchall() == [("s1",)]
        assert not _other_process_can_write(store.path)  # still held: the outer operation goes on
    assert len(attaches) == 1
    assert _other_process_can_write(store.path)
    assert store.stores()[0]["store_id"] == "s1" and len(attaches) == 2


def test_two_databases_attached_at_once_keep_to_their_own_tables(tmp_path):
    """A second file attached while the first is (two stores in one dashboard process) sees only
    its own tables: the schema checks look in the operation's own database."""
    a = SpendStore(tmp_path / "a.duckdb")
    a.save_store("s1", "One", "USD")
    with a.connect():
        b_path = tmp_path / "b.duckdb"
        b = SpendStore(b_path)
        assert b.schema_version() == mig.LATEST and b.stores() == []
        b.save_store("s2", "Two", "EUR")
        assert [s["store_id"] for s in a.stores()] == ["s1"]
        assert [s["store_id"] for s in b.stores()] == ["s2"]
    assert SpendStore(b_path, read_only=True).data_version() == b.data_version()
