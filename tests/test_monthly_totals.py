"""Monthly totals (migration 7) and the data version: kept in the same transaction as every write.

The totals must equal the exact DECIMAL sum of the daily rows at every step: after a write, after
a window is replaced with different amounts, after a bulk write with a gap, after a transaction
that failed (old data and old totals kept), and after an upgrade that backfills them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

import storage.db as db_mod
import storage.migrations as mig
from storage.db import SpendStore, WindowFailure, WindowWrite, amount_type

D = dt.date
AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 4, 2, 9, tzinfo=dt.UTC)


def _window(start, end, cents_from, account="111", currency="USD", run="r1", at=AT, platform="meta"):
    n = (end - start).days + 1
    amounts = {start + dt.timedelta(days=i): Decimal(cents_from + i).scaleb(-2) for i in range(n)}
    return WindowWrite(platform, account, start, end, amounts, currency, run, at)


def _at_schema(monkeypatch, latest=None):
    """Make ``SpendStore`` know the migrations up to ``latest`` only (None: all of them)."""
    latest = mig.LATEST if latest is None else latest
    monkeypatch.setattr(db_mod, "MIGRATIONS", [m for m in mig.MIGRATIONS if m[0] <= latest])
    monkeypatch.setattr(db_mod, "LATEST", latest)


def _totals(store):
    return store.query(
        "SELECT platform, account_id, month, currency, amount, days, first_fetched, last_fetched, "
        "list_sort(day_amounts) FROM monthly_spend ORDER BY platform, account_id, month, currency"
    )


def _expected(store):
    return store.query(
        "SELECT platform, account_id, CAST(date_trunc('month', day) AS DATE), currency, sum(amount), count(*), "
        "min(fetched_at), max(fetched_at), list({'day': day, 'amount': CAST(amount AS DECIMAL(18, 6))} "
        "ORDER BY day) FROM daily_spend GROUP BY ALL ORDER BY 1, 2, 3, 4"
    )


def _python_sum(store, account, month_first):
    rows = store.query(
        "SELECT amount FROM daily_spend WHERE account_id = ? AND date_trunc('month', day) = ?", [account, month_first]
    )
    return sum((r[0] for r in rows), Decimal(0))


def test_totals_follow_every_window_write_exactly(tmp_path):
    store = SpendStore(tmp_path / "t.duckdb")
    store.write_windows(
        [_window(D(2026, 1, 20), D(2026, 3, 5), 1001), _window(D(2026, 1, 1), D(2026, 1, 31), 7, "222")]
    )
    assert _totals(store) == _expected(store)
    jan = dict(((r[1], r[2]), r[4]) for r in _totals(store))
    # 1 Jan..31 Jan of account 222: 0.07 + 0.08 + ... + 0.37 = 6.82, exactly
    assert jan[("222", D(2026, 1, 1))] == Decimal("6.820000") == _python_sum(store, "222", D(2026, 1, 1))
    # 20..31 Jan of account 111: 10.01 .. 10.12 = 120.78
    assert jan[("111", D(2026, 1, 1))] == Decimal("120.780000")
    assert [r[5] for r in _totals(store) if r[1] == "111"] == [12, 28, 5]

    # replace part of the window (Feb 10..Mar 2) with different amounts, fetched later
    store.write_windows([_window(D(2026, 2, 10), D(2026, 3, 2), 50000, run="r2", at=LATER)])
    assert _totals(store) == _expected(store)
    feb = {r[2]: r for r in _totals(store) if r[1] == "111"}[D(2026, 2, 1)]
    # Feb 1..9 kept (10.13 .. 10.21 = 91.53), Feb 10..28 now 500.00 .. 500.18 = 9501.71
    assert feb[4] == Decimal("9593.240000") == _python_sum(store, "111", D(2026, 2, 1))
    assert (feb[5], feb[6], feb[7]) == (28, AT, LATER)


def test_a_failed_transaction_keeps_old_data_and_old_totals(tmp_path):
    store = SpendStore(tmp_path / "t.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 2, 28), 100)])
    before, version = _totals(store), store.data_version()
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as con:
        store.write_windows([_window(D(2026, 1, 15), D(2026, 2, 10), 99900, run="r2")], con=con)
        raise RuntimeError("boom")
    assert _totals(store) == before == _expected(store)
    assert store.data_version() == version
    # a failed fetch marks days but keeps amounts and totals
    store.write_windows(failures=[WindowFailure("meta", "111", D(2026, 1, 3), D(2026, 1, 4), "HTTP 500", "r3", LATER)])
    assert _totals(store) == before
    assert store.query("SELECT count(*) FROM fetch_failures") == [(2,)]


def test_bulk_write_with_a_gap_recomputes_every_month_of_its_range(tmp_path):
    store = SpendStore(tmp_path / "t.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 4, 30), 1, currency="EUR")])
    # the bulk table covers 15 Jan and 10 Apr only: every stored day between is replaced (Feb, Mar
    # emptied; 1..14 Jan and 11..30 Apr kept)
    days = [D(2026, 1, 15), D(2026, 4, 10)]
    tbl = pa.table(
        {
            "platform": pa.array(["meta"] * 2, pa.string()),
            "account_id": pa.array(["111"] * 2, pa.string()),
            "day": pa.array(days, pa.date32()),
            "amount": pa.array([Decimal("0.000001"), Decimal("123456789.123456")], amount_type()),
            "currency": pa.array(["EUR"] * 2, pa.string()),
            "fetched_at": pa.array([LATER] * 2, pa.timestamp("us", tz="UTC")),
            "run_id": pa.array(["bulk"] * 2, pa.string()),
        }
    )
    assert store.write_spend_table(tbl) == 2
    totals = _totals(store)
    assert totals == _expected(store)
    assert [(r[2], r[4], r[5]) for r in totals] == [
        (D(2026, 1, 1), sum((Decimal(i).scaleb(-2) for i in range(1, 15)), Decimal("0.000001")), 15),
        (D(2026, 4, 1), sum((Decimal(i).scaleb(-2) for i in range(101, 121)), Decimal("123456789.123456")), 21),
    ]


def test_upgrade_backfills_totals_from_existing_rows(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    _at_schema(monkeypatch, 6)
    old = SpendStore(path)
    old.write_windows([_window(D(2025, 12, 30), D(2026, 1, 2), 333), _window(D(2026, 1, 1), D(2026, 1, 3), 5, "9")])
    _at_schema(monkeypatch)
    new = SpendStore(path)
    assert _totals(new) == _expected(new)
    assert [(r[1], r[2], r[4], r[5]) for r in _totals(new)] == [
        ("111", D(2025, 12, 1), Decimal("6.670000"), 2),
        ("111", D(2026, 1, 1), Decimal("6.710000"), 2),
        ("9", D(2026, 1, 1), Decimal("0.180000"), 3),
    ]


def test_totals_are_per_account_and_survive_relinking(tmp_path):
    store = SpendStore(tmp_path / "t.duckdb")
    store.save_store("s1", "One", "USD")
    with store.transaction() as con:
        store.link_accounts(con, [("s1", "meta", "111", None)])
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 31), 1)])
    before = _totals(store)
    store.unlink_account("s1", "meta", "111")
    with store.transaction() as con:
        store.link_accounts(con, [("s1", "meta", "111", None)])
    assert _totals(store) == before == _expected(store)


def test_every_write_bumps_the_data_version_seen_by_other_instances(tmp_path):
    path = tmp_path / "v.duckdb"
    a, b = SpendStore(path), SpendStore(path)
    v0 = b.data_version()
    a.write_windows([_window(D(2026, 1, 1), D(2026, 1, 2), 1)])
    v1 = b.data_version()
    assert v1 == v0 + 1
    a.save_store("s1", "One", "USD")
    assert b.data_version() == v1 + 1 == a.data_version()
    sidecar = json.loads(a.version_path.read_text())
    assert sidecar["version"] == v1 + 1


def test_a_commit_without_its_sidecar_is_still_seen(tmp_path):
    """A writer that crashed between its commit and the sidecar (here: a write by plain DuckDB)
    changes the file, so the sidecar no longer matches and readers ask the database."""
    path = tmp_path / "v.duckdb"
    store = SpendStore(path)
    store.save_store("s1", "One", "USD")
    v = store.data_version()
    sidecar = store.version_path.read_text()
    con = duckdb.connect(str(path))
    con.execute("UPDATE data_version SET version = version + 1")
    con.close()
    assert store.version_path.read_text() == sidecar  # stale sidecar left behind
    assert store.data_version() == v + 1
    assert json.loads(store.version_path.read_text())["version"] == v + 1  # rewritten by the reader
    store.version_path.write_text("not json")
    assert SpendStore(path).data_version() == v + 1


def test_a_read_only_open_trusts_only_a_matching_sidecar_for_the_schema(tmp_path, monkeypatch):
    """A read command (``spend``) opens no connection just to check the schema when the sidecar
    matches the files and names this build's schema; any other sidecar means a real check."""
    path = tmp_path / "v.duckdb"
    SpendStore(path).save_store("s1", "One", "USD")
    assert json.loads((tmp_path / "v.duckdb.version").read_text())["schema"] == mig.LATEST
    opened = []
    real = db_mod._attach
    monkeypatch.setattr(db_mod, "_attach", lambda *a, **k: opened.append(a) or real(*a, **k))
    ro = SpendStore(path, read_only=True)
    assert (ro.read_only, opened) == (True, [])
    side = json.loads(ro.version_path.read_text())
    ro.version_path.write_text(json.dumps({**side, "schema": mig.LATEST + 1}))
    assert SpendStore(path, read_only=True).read_only is True and len(opened) == 1  # checked in the file
    ro.version_path.write_text(json.dumps({**side, "sig": [0, 0, 0, None]}))
    assert SpendStore(path, read_only=True).read_only is True and len(opened) == 2


def _bulk(rows):
    """A spend table from (account, day, amount) rows."""
    return pa.table(
        {
            "platform": pa.array(["meta"] * len(rows), pa.string()),
            "account_id": pa.array([r[0] for r in rows], pa.string()),
            "day": pa.array([r[1] for r in rows], pa.date32()),
            "amount": pa.array([Decimal(r[2]) for r in rows], amount_type()),
            "currency": pa.array(["USD"] * len(rows), pa.string()),
            "fetched_at": pa.array([LATER] * len(rows), pa.timestamp("us", tz="UTC")),
            "run_id": pa.array(["bulk"] * len(rows), pa.string()),
        }
    )


def test_spend_tables_have_no_primary_key_index_since_migration_8(tmp_path):
    """The ART indexes made a bulk write several times slower (issue 19.5); one row per key is kept
    by the writes instead (the tests below)."""
    store = SpendStore(tmp_path / "t.duckdb")
    keyed = store.query(
        "SELECT table_name FROM duckdb_constraints() WHERE database_name = current_database() "
        "AND constraint_type = 'PRIMARY KEY' AND table_name IN ('daily_spend', 'monthly_spend')"
    )
    assert keyed == []


def test_a_bulk_table_with_a_repeated_day_is_refused_and_nothing_changes(tmp_path):
    store = SpendStore(tmp_path / "t.duckdb")
    store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 3), 1)])
    before, version = _expected(store), store.data_version()
    tbl = _bulk([("111", D(2026, 1, 2), "5"), ("222", D(2026, 1, 2), "6"), ("111", D(2026, 1, 2), "7")])
    with pytest.raises(ValueError, match=r"^meta/111: a day appears more than once in the spend table$"):
        store.write_spend_table(tbl)
    assert _expected(store) == before and _totals(store) == before
    assert store.query("SELECT day, amount FROM daily_spend ORDER BY day") == [
        (D(2026, 1, 1), Decimal("0.010000")),
        (D(2026, 1, 2), Decimal("0.020000")),
        (D(2026, 1, 3), Decimal("0.030000")),
    ]
    assert store.data_version() == version


def test_overlapping_windows_of_one_account_in_one_write_apply_in_order(tmp_path):
    """An account linked to a demo store and a real one is fetched twice in one run: its windows
    overlap in one batch. The later replaces the earlier's days, as two writes would, and no day
    is stored twice."""
    store = SpendStore(tmp_path / "t.duckdb")
    store.write_windows(
        [
            _window(D(2026, 1, 3), D(2026, 1, 4), 100),
            _window(D(2026, 1, 5), D(2026, 1, 5), 1, account="222"),
            _window(D(2026, 1, 1), D(2026, 1, 3), 1),
            _window(D(2026, 1, 4), D(2026, 1, 4), 7, run="r2"),
        ],
        [WindowFailure("meta", "111", D(2026, 1, 4), D(2026, 1, 4), "HTTP 500", "r2", LATER)],
    )
    assert store.query("SELECT account_id, day, amount, run_id FROM daily_spend ORDER BY ALL") == [
        ("111", D(2026, 1, 1), Decimal("0.010000"), "r1"),
        ("111", D(2026, 1, 2), Decimal("0.020000"), "r1"),
        ("111", D(2026, 1, 3), Decimal("0.030000"), "r1"),
        ("111", D(2026, 1, 4), Decimal("0.070000"), "r2"),
        ("222", D(2026, 1, 5), Decimal("0.010000"), "r1"),
    ]
    assert store.query("SELECT day, error FROM fetch_failures") == [(D(2026, 1, 4), "HTTP 500")]
    assert _totals(store) == _expected(store)
    # touching windows (one ends the day before the next starts) are one layer
    assert [
        len(layer)
        for layer in db_mod._layers(
            [_window(D(2026, 1, 4), D(2026, 1, 5), 4), _window(D(2026, 1, 1), D(2026, 1, 3), 1)]
        )
    ] == [2]


def test_writers_in_threads_of_one_process_leave_one_row_per_day(tmp_path):
    """Two dashboard sessions refreshing the same new window at once: the per-file write lock runs
    them one after the other, and the second replaces the first's days."""
    import threading

    path = tmp_path / "t.duckdb"
    SpendStore(path)
    start = threading.Barrier(4)

    def write(k):
        store = SpendStore(path)
        start.wait()
        for _ in range(5):
            store.write_windows([_window(D(2026, 1, 1), D(2026, 2, 10), k)])

    threads = [threading.Thread(target=write, args=(k,)) for k in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = SpendStore(path)
    assert store.query("SELECT count(*), count(DISTINCT day) FROM daily_spend") == [(41, 41)]
    assert _totals(store) == _expected(store)
    assert [r[5] for r in _totals(store)] == [31, 10]


def test_upgrade_to_8_keeps_every_row_and_total(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    _at_schema(monkeypatch, 6)
    old = SpendStore(path)
    old.write_windows([_window(D(2025, 12, 30), D(2026, 1, 2), 333), _window(D(2026, 1, 1), D(2026, 1, 3), 5, "9")])
    _at_schema(monkeypatch, 7)
    v7 = SpendStore(path)  # migration 7 fills the monthly totals, with two lists a month
    rows = v7.query("SELECT * FROM daily_spend ORDER BY ALL")
    lists = v7.query("SELECT account_id, month, day_list, amount_list FROM monthly_spend ORDER BY ALL")
    assert lists[0] == ("111", D(2025, 12, 1), [D(2025, 12, 30), D(2025, 12, 31)], [Decimal("3.33"), Decimal("3.34")])
    _at_schema(monkeypatch)
    new = SpendStore(path)
    assert new.schema_version() == 8
    assert new.query("SELECT * FROM daily_spend ORDER BY ALL") == rows and len(rows) == 7
    assert _totals(new) == _expected(new)
    assert new.query("SELECT list_sort(day_amounts) FROM monthly_spend WHERE account_id = '111' ORDER BY month")[0] == (
        [{"day": D(2025, 12, 30), "amount": Decimal("3.33")}, {"day": D(2025, 12, 31), "amount": Decimal("3.34")}],
    )
    new.write_windows([_window(D(2026, 1, 2), D(2026, 1, 2), 1000)])
    assert new.query("SELECT count(*) FROM daily_spend") == [(7,)]
    assert _totals(new) == _expected(new)


def test_a_day_the_monthly_lists_cannot_hold_is_refused(tmp_path):
    """Each month's days are kept in DECIMAL(18, 6): a bulk table with a day of 10^12 or more is
    refused whole (a fetched one is refused with its window, fetchers.core.fill_zeros)."""
    store = SpendStore(tmp_path / "t.duckdb")
    tbl = _bulk([("111", D(2026, 1, 2), "5"), ("222", D(2026, 1, 2), "-1000000000000")])
    with pytest.raises(ValueError, match=r"^meta/222: a day of 10\^12 or more is not a plausible spend$"):
        store.write_spend_table(tbl)
    assert store.query("SELECT count(*) FROM daily_spend") == [(0,)]
    assert store.write_spend_table(_bulk([("222", D(2026, 1, 2), "999999999999.999999")])) == 1
    assert _totals(store) == _expected(store)
    big = WindowWrite("meta", "333", D(2026, 1, 3), D(2026, 1, 3), {D(2026, 1, 3): Decimal(10**12)}, "USD", "r", AT)
    with pytest.raises(ValueError, match=r"^meta/333: a day of 10\^12 or more is not a plausible spend$"):
        store.write_windows([_window(D(2026, 1, 1), D(2026, 1, 1), 5), big])
    assert store.query("SELECT account_id, day FROM daily_spend") == [("222", D(2026, 1, 2))]
