"""The read-model cache (service/readcache.py): a repeated view costs no query and no file open; any
write (another SpendStore instance, another process, a writer that died before its sidecar) makes
the next view read afresh; the cache is bounded."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from service import readcache
from storage import db as db_mod
from storage.db import SpendStore, WindowWrite

ROOT = Path(__file__).resolve().parent.parent
START, END = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
TODAY = dt.date(2026, 3, 1)
AT = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)


def _store(path) -> SpendStore:
    store = SpendStore(path)
    store.save_store("s1", "One", "USD", is_demo=True)
    with store.transaction() as con:
        store.link_accounts(con, [("s1", "meta", "111", None)])
    _write(store, "1.00")
    return store


def _write(store, amount: str, run="r1") -> None:
    days = {START + dt.timedelta(days=i): Decimal(amount) for i in range(31)}
    store.write_windows([WindowWrite("meta", "111", START, END, days, "USD", run, AT)])


@pytest.fixture
def cache(monkeypatch):
    c = readcache.ReadCache(maxsize=3)
    monkeypatch.setattr(readcache, "CACHE", c)
    return c


@pytest.fixture
def opens(monkeypatch):
    """Counts every DuckDB open of this process."""
    count = {"n": 0}
    real = db_mod._attach

    def counting(*a, **kw):
        count["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(db_mod, "_attach", counting)
    return count


def test_a_repeated_view_opens_nothing(tmp_path, cache, opens):
    store = _store(tmp_path / "c.duckdb")
    first = readcache.spend_report(store, "s1", START, END, today=TODAY)
    assert first.total == Decimal("31.00")
    before = opens["n"]
    again = readcache.spend_report(store, "s1", START, END, today=TODAY)
    assert again is first
    assert opens["n"] == before
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_write_from_another_instance_invalidates(tmp_path, cache):
    path = tmp_path / "c.duckdb"
    reader = _store(path)
    assert readcache.spend_report(reader, "s1", START, END, today=TODAY).total == Decimal("31.00")
    _write(SpendStore(path), "2.50", run="r2")  # another SpendStore instance
    assert readcache.spend_report(reader, "s1", START, END, today=TODAY).total == Decimal("77.50")
    assert cache.misses == 2


def test_a_write_from_another_process_invalidates(tmp_path, cache):
    path = tmp_path / "c.duckdb"
    reader = _store(path)
    assert readcache.spend_report(reader, "s1", START, END, today=TODAY).total == Decimal("31.00")
    code = (
        "import datetime as dt, sys\nfrom decimal import Decimal\nfrom storage.db import SpendStore, WindowWrite\n"
        "s = dt.date(2026, 1, 1)\n"
        "days = {s + dt.timedelta(days=i): Decimal('0.10') for i in range(31)}\n"
        "SpendStore(sys.argv[1]).write_windows([WindowWrite('meta', '111', s, dt.date(2026, 1, 31), days, 'USD', "
        "'p', dt.datetime(2026, 2, 2, tzinfo=dt.UTC))])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True, timeout=120)
    assert readcache.spend_report(reader, "s1", START, END, today=TODAY).total == Decimal("3.10")


def test_a_writer_that_died_before_its_sidecar_is_not_served_stale(tmp_path, cache):
    path = tmp_path / "c.duckdb"
    store = _store(path)
    assert readcache.spend_report(store, "s1", START, END, today=TODAY).total == Decimal("31.00")
    con = duckdb.connect(str(path))  # commits, bumps the version, never writes the sidecar
    con.execute("UPDATE daily_spend SET amount = 3")
    con.execute("UPDATE monthly_spend SET amount = 93")
    con.execute("UPDATE data_version SET version = version + 1")
    con.close()
    assert readcache.spend_report(store, "s1", START, END, today=TODAY).total == Decimal("93.00")


def test_the_cache_is_bounded_least_recently_used_first(tmp_path, cache, opens):
    store = _store(tmp_path / "c.duckdb")
    days = [dt.date(2026, 1, d) for d in (1, 2, 3, 4)]
    for d in days[:3]:
        readcache.spend_report(store, "s1", d, d, today=TODAY)
    readcache.spend_report(store, "s1", days[0], days[0], today=TODAY)  # the 1st is now the most recent
    readcache.spend_report(store, "s1", days[3], days[3], today=TODAY)  # evicts the 2nd
    assert len(cache) == 3
    n = opens["n"]
    readcache.spend_report(store, "s1", days[0], days[0], today=TODAY)
    assert opens["n"] == n  # still cached
    readcache.spend_report(store, "s1", days[1], days[1], today=TODAY)
    assert opens["n"] > n  # read again


def test_the_day_is_part_of_the_key(tmp_path, cache):
    store = _store(tmp_path / "c.duckdb")
    a = readcache.spend_report(store, "s1", START, END, today=TODAY)
    b = readcache.spend_report(store, "s1", START, END, today=TODAY + dt.timedelta(days=1))
    assert a is not b and cache.misses == 2


def test_portfolio_is_cached_and_follows_writes(tmp_path, cache, opens):
    store = _store(tmp_path / "c.duckdb")
    p1 = readcache.portfolio_spend(store, START, END, "USD")
    n = opens["n"]
    assert readcache.portfolio_spend(store, START, END, "USD") is p1 and opens["n"] == n
    _write(store, "0.01", run="r3")
    assert readcache.portfolio_spend(store, START, END, "USD").total == Decimal("0.31") != p1.total
