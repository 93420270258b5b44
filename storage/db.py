"""The spend store: a DuckDB file opened briefly for each operation (attached to the process's
in-memory DuckDB, :class:`_Host`, and detached when done).

Why short-lived connections: DuckDB locks the file per process, so a connection kept open by
the dashboard would lock out a CLI refresh and vice versa (shared/streamlit-recipe.md §5). Every
read or write here opens, works, and closes; a process that finds the file locked retries with
backoff for ``lock_timeout`` seconds and then raises :class:`DatabaseBusy` with a plain message.

Money goes in as pyarrow ``decimal128(20, 6)`` and comes out as Python ``Decimal`` through
``fetchall()``; nothing here ever goes through float.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .migrations import LATEST, MIGRATIONS

if TYPE_CHECKING:  # pyarrow is imported where it is used: a read (``spend --json``) needs none of it
    import pyarrow as pa


def amount_type():
    """The Arrow type of money going into DuckDB: ``decimal128(20, 6)``, exact."""
    import pyarrow as pa

    return pa.decimal128(20, 6)


def __getattr__(name: str):
    if name == "AMOUNT_TYPE":  # the old module constant, kept for callers; built on first use
        return amount_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# the monthly totals keep each day in DECIMAL(18, 6): a day's amount is under 10^12 (as
# fetchers.core.MAX_DAILY_AMOUNT; storage does not import the fetchers)
_MAX_DAY = Decimal(10**12)

_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


class _Host:
    """The process's one in-memory DuckDB, to which database files are ATTACHed.

    Opening a DuckDB database builds a whole instance (its catalog of built-in functions: about
    12 ms here, whatever the file) and closing it tears it down; attaching a file to an instance
    that already exists takes about 2 ms and detaching it 1 ms. So every operation attaches its
    file here and the last one of this process to finish detaches it, which releases the file
    lock exactly as closing a connection did: a dashboard still never locks a CLI refresh out
    between operations.

    A file is attached once per process (DuckDB refuses a second attach of the same file, and a
    refused open would drop this process's lock on it). Read-only users share a read-only attach;
    a read-write attach serves both; a writer that finds the file attached read-only waits for
    those readers (``open`` returns None), as a read-write open did before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._pid = 0
        self._files: dict[str, list] = {}  # path -> [alias, read_only, users]
        self._n = 0

    def _instance(self) -> duckdb.DuckDBPyConnection:
        if self._con is None or self._pid != os.getpid():  # a forked child starts its own
            self._con = duckdb.connect(":memory:")
            self._files, self._pid = {}, os.getpid()
        return self._con

    def open(self, path: str, read_only: bool) -> duckdb.DuckDBPyConnection | None:
        with self._lock:
            host = self._instance()
            entry = self._files.get(path)
            if entry is None:
                self._n += 1
                alias = f"adspend_{self._n}"
                try:
                    _attach(host, path, alias, read_only=read_only)
                except duckdb.FatalException:
                    self._con = None  # the instance is no longer usable; the next open makes a new one
                    raise
                entry = self._files[path] = [alias, read_only, 0]
            elif entry[1] and not read_only:
                return None
            entry[2] += 1
            try:
                con = host.cursor()
                con.execute(f"USE {entry[0]}")
            except BaseException:
                self._release(path)
                raise
            return con

    def close(self, path: str, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.close()
        finally:
            with self._lock:
                self._release(path)

    def _release(self, path: str) -> None:
        entry = self._files.get(path)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] <= 0:
            del self._files[path]
            if self._con is not None:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute(f"DETACH {entry[0]}")


def _attach(host: duckdb.DuckDBPyConnection, path: str, alias: str, read_only: bool) -> None:
    """Open the file ``path`` (the one place this module opens a database file)."""
    literal = "'" + path.replace("'", "''") + "'"
    host.execute(f"ATTACH {literal} AS {alias}" + (" (READ_ONLY)" if read_only else ""))


_HOST = _Host()


class DatabaseBusy(RuntimeError):
    """Another process held the database file for longer than we were willing to wait."""


class DatabaseError(RuntimeError):
    """The file is not a usable Ad Spend Hub database."""


class NotADatabase(DatabaseError):
    """The path names a file that is not a DuckDB database at all (a CSV, say): bad input."""


# C0/C1 controls, DEL, line/paragraph separators, bidi overrides: never in a stored name or user
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def has_control(value: str | None) -> bool:
    """True when ``value`` holds a control character (a newline, tab, terminal escape, bidi override)."""
    return bool(_CONTROL.search(value or ""))


def _not_writable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        w in text
        for w in ("permission denied", "read-only file system", "read only file system", "operation not permitted")
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _recompute_monthly(con, ranges: str, lo: str, hi: str) -> None:
    """Recompute ``monthly_spend`` for every (platform, account, month) that the day ranges of the
    relation ``ranges`` (platform, account_id, ``lo``, ``hi``) touch, from ``daily_spend``, inside
    the caller's transaction: exact DECIMAL sums, never an increment that could drift."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE touched_months AS
        SELECT DISTINCT platform, account_id, CAST(m AS DATE) AS month FROM (
            SELECT platform, account_id, unnest(generate_series(CAST(date_trunc('month', {lo}) AS TIMESTAMP),
                                                               CAST(date_trunc('month', {hi}) AS TIMESTAMP),
                                                               INTERVAL 1 MONTH)) AS m
            FROM {ranges})"""
    )
    first, last = con.execute(
        "SELECT min(month), CAST(max(month) + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE) FROM touched_months"
    ).fetchone()
    if first is None:
        return
    con.execute(
        """CREATE OR REPLACE TEMP TABLE monthly_new AS
        SELECT d.platform, d.account_id, CAST(date_trunc('month', d.day) AS DATE) AS month, d.currency,
               sum(d.amount) AS amount, count(*) AS days, min(d.fetched_at) AS first_fetched,
               max(d.fetched_at) AS last_fetched,
               list({'day': d.day, 'amount': CAST(d.amount AS DECIMAL(18, 6))}) AS day_amounts
        FROM daily_spend d SEMI JOIN touched_months t ON t.platform = d.platform AND t.account_id = d.account_id
             AND t.month = CAST(date_trunc('month', d.day) AS DATE)
        WHERE d.day BETWEEN ? AND ? GROUP BY ALL""",
        [first, last],
    )
    con.execute(
        "DELETE FROM monthly_spend m USING touched_months t WHERE m.platform = t.platform "
        "AND m.account_id = t.account_id AND m.month = t.month"
    )
    con.execute(
        "INSERT INTO monthly_spend SELECT platform, account_id, month, currency, amount, days, first_fetched, "
        "last_fetched, day_amounts FROM monthly_new"
    )
    con.execute("DROP TABLE monthly_new")
    con.execute("DROP TABLE touched_months")


def _read_version(con) -> int:
    try:
        row = con.execute("SELECT version FROM data_version WHERE id = 1").fetchone()
    except duckdb.CatalogException:  # a database from before migration 7
        return 0
    return int(row[0]) if row else 0


def _bump_version(con, check: bool = True) -> int:
    """Add 1 to the data version inside the caller's transaction (nothing before migration 7)."""
    if (
        check
        and not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'data_version' "
            "AND table_catalog = current_database()"
        ).fetchone()[0]
    ):
        return 0
    row = con.execute("UPDATE data_version SET version = version + 1 WHERE id = 1 RETURNING version").fetchone()
    return int(row[0]) if row else 0


def _layers(writes: Sequence[WindowWrite]) -> list[list[WindowWrite]]:
    """``writes`` in layers in which no two windows of one account overlap, each window in the
    layer after every earlier window of its account that it overlaps: written layer by layer, a
    later window replaces an earlier one's days, as two separate writes would (an account linked
    to a demo store and a real one is fetched from both endpoints in one run). Usually one layer."""
    layers: list[list[WindowWrite]] = []
    seen: dict[tuple[str, str], list[tuple[dt.date, dt.date, int]]] = {}
    for w in writes:
        earlier = seen.setdefault((w.platform, w.account_id), [])
        level = 1 + max((lv for s, e, lv in earlier if s <= w.end and w.start <= e), default=-1)
        earlier.append((w.start, w.end, level))
        if level == len(layers):
            layers.append([])
        layers[level].append(w)
    return layers


@dataclass(frozen=True)
class WindowWrite:
    """One fully fetched (platform, account, window): every day of it, zeros included."""

    platform: str
    account_id: str
    start: dt.date
    end: dt.date
    amounts: Mapping[dt.date, Decimal]
    currency: str
    run_id: str
    fetched_at: dt.datetime


@dataclass(frozen=True)
class WindowFailure:
    platform: str
    account_id: str
    start: dt.date
    end: dt.date
    error: str
    run_id: str
    failed_at: dt.datetime


class SpendStore:
    def __init__(self, path: str | os.PathLike, lock_timeout: float | None = None, read_only: bool = False):
        """Open (and migrate) the database. ``read_only=True`` (commands that only read): an existing
        database at the current schema is opened read-only by every connection (so a 0444 file in a
        0555 folder can be read, and nothing is written). Without it, a database that cannot be
        written (permissions, a read-only mount) but is at the current schema is opened read-only
        too; its writes then fail with one sentence."""
        self.path = Path(path)
        self.read_only = False
        self._totals = True  # monthly_spend and data_version exist (migration 7); set by migrate()
        self.lock_timeout = (
            lock_timeout if lock_timeout is not None else float(os.environ.get("ADSPEND_DB_LOCK_TIMEOUT", "15"))
        )
        key = str(self.path.resolve())
        with _write_locks_guard:
            self._write_lock = _write_locks.setdefault(key, threading.Lock())
        if self.path.is_dir():
            raise DatabaseError(f"{self.path} is a directory, not a database file")
        self._check_magic()
        if read_only and self._published_schema() == LATEST:
            self.read_only = True  # the sidecar vouches for the schema: no open needed to check it
            return
        if read_only and self.path.exists():
            current = self._read_only_version()
            if current == LATEST:
                self.read_only = True
                return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the folder {self.path.parent} for the database: {(exc.strerror or str(exc)).lower()}"
            ) from None
        try:
            self.migrate()
        except DatabaseError as exc:
            if not (self.path.exists() and _not_writable(exc)):
                raise
            current = self._read_only_version()
            if current != LATEST:
                raise DatabaseError(
                    f"{self.path} has schema version {current}, older than this Ad Spend Hub's "
                    f"{LATEST}, and cannot be upgraded because it is not writable here; run any "
                    "command once with write access to upgrade it"
                ) from None
            self.read_only = True

    def _check_magic(self) -> None:
        """A file that exists but is not DuckDB (a CSV given as --db) is refused before DuckDB sees it."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(12)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise DatabaseError(f"cannot read {self.path}: {(exc.strerror or str(exc)).lower()}") from None
        if head and head[8:12] != b"DUCK":
            raise NotADatabase(
                f"{self.path} is not an Ad Spend Hub database (not a DuckDB file); check --db or ADSPEND_DB"
            )

    def _read_only_version(self) -> int:
        """The schema version, read through a read-only connection (creates nothing)."""
        was, self.read_only = self.read_only, True
        try:
            with self.connect() as con:
                has = con.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' "
                    "AND table_catalog = current_database()"
                ).fetchone()[0]
                applied = (
                    {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
                    if has
                    else set()
                )
        finally:
            self.read_only = was
        current = max(applied, default=0)
        if current > LATEST:
            raise DatabaseError(
                f"{self.path} was written by a newer Ad Spend Hub (schema {current}, "
                f"this one knows {LATEST}); upgrade the application"
            )
        missing = sorted({v for v, _, _ in MIGRATIONS} - applied)
        return missing[0] - 1 if missing else current  # up to date only when every version is in

    # -- connections -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose default database is this file, for one operation. The file is
        ATTACHed to the process's in-memory DuckDB (see :class:`_Host`) and DETACHed, releasing
        the file lock, when the last operation of this process on it ends."""
        deadline, delay = time.monotonic() + self.lock_timeout, 0.05
        key = str(self.path.resolve())
        while True:
            try:
                con = _HOST.open(key, self.read_only)
                if con is not None:
                    break
                # attached read-only by another operation of this process: a writer waits for it
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(
                        f"the database {self.path} is in use in this process (waited "
                        f"{self.lock_timeout:g} s); try again"
                    ) from None
            except duckdb.IOException as exc:
                if _not_writable(exc):
                    if self.read_only:
                        raise DatabaseError(f"cannot read {self.path}: permission denied") from None
                    raise DatabaseError(
                        f"cannot open {self.path} for writing: permission denied (the file or "
                        "its folder is not writable)"
                    ) from None
                if "lock" not in str(exc).lower():
                    raise DatabaseError(f"cannot open {self.path}: {_first_line(exc)}") from None
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(
                        f"the database {self.path} is in use by another process (waited "
                        f"{self.lock_timeout:g} s); try again when the other refresh has finished"
                    ) from None
            except duckdb.Error as exc:
                raise DatabaseError(f"cannot open {self.path}: {_first_line(exc)}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            yield con
        finally:
            _HOST.close(key, con)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One writer per process; the whole block commits or nothing does. Every transaction
        bumps the data version (``data_version``) in the same commit, and then, while this process
        still holds the file, publishes it in the ``<db>.version`` sidecar for readers."""
        if self.read_only:
            raise DatabaseError(
                f"the database {self.path} is open read-only (the file or its folder is not "
                "writable here); this needs write access"
            )
        with self._write_lock, self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                version = _bump_version(con, check=not self._totals)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                if _not_writable(exc):
                    raise DatabaseError(self._cannot_write()) from None
                raise
            self._publish_version(con, version)

    # -- data version ----------------------------------------------------------------------------
    @property
    def version_path(self) -> Path:
        return self.path.with_name(self.path.name + ".version")

    def _signature(self) -> list | None:
        """What the files look like now: (inode, mtime, size) of the database and of its WAL.
        Reads leave them alone; every commit changes one of them."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        try:
            wal = os.stat(f"{self.path}.wal")
            w = [wal.st_ino, wal.st_mtime_ns, wal.st_size]
        except OSError:
            w = None
        return [st.st_ino, st.st_mtime_ns, st.st_size, w]

    def _write_sidecar(self, version: int, sig: list | None) -> None:
        if sig is None:
            return
        tmp = self.version_path.with_name(f"{self.version_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            # the schema is LATEST: only a migrated store writes through ``transaction``
            tmp.write_text(json.dumps({"version": version, "sig": sig, "schema": LATEST}))
            os.replace(tmp, self.version_path)
        except OSError:  # a read-only folder: readers open the database instead
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _publish_version(self, con, version: int) -> None:
        """After COMMIT, with the connection still open (no other process can write the file now,
        and this process's writers wait on ``_write_lock``): checkpoint so closing changes nothing,
        then record (version, the files' signature) together. A crash before this leaves a sidecar
        whose signature no longer matches the files, so readers open the database instead."""
        try:
            con.execute("CHECKPOINT")
        except duckdb.Error:
            pass  # other connections of this process are open: the WAL is part of the signature
        self._write_sidecar(version, self._signature())

    def _published(self) -> dict | None:
        """The ``<db>.version`` sidecar when it describes the files as they are now, else None."""
        sig = self._signature()
        if sig is None:
            return None
        try:
            data = json.loads(self.version_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("sig") == sig else None

    def _published_schema(self) -> int | None:
        """The schema version the sidecar vouches for (a read-only open then needs no connection
        to check it); None when there is no matching sidecar."""
        data = self._published()
        try:
            return int(data["schema"]) if data else None
        except (KeyError, TypeError, ValueError):
            return None

    def data_version(self) -> int:
        """The version every committed write bumps, cheaply: one stat of the files and one read of
        the ``<db>.version`` sidecar when it matches them; otherwise (no sidecar, a writer that
        crashed between its commit and the sidecar, a checkpoint since) read from the database,
        and the sidecar rewritten when the files did not change meanwhile."""
        data = self._published()
        try:
            if data:
                return int(data["version"])
        except (KeyError, TypeError, ValueError):
            pass
        sig = self._signature()
        if sig is None:
            return 0
        with self.connect() as con:
            version = _read_version(con)
        if self._signature() == sig and not self.read_only:
            self._write_sidecar(version, sig)
        return version

    def _cannot_write(self) -> str:
        return (
            f"cannot write to the database {self.path}: permission denied (DuckDB needs to write the file "
            f"and create {self.path.name}.wal in its folder); nothing was changed"
        )

    def query(self, sql: str, params: Sequence | Mapping | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: Sequence | Mapping | None = None):
        """A DataFrame for display and charts. Money columns must be cast to VARCHAR in ``sql``
        by callers that need exact values (``.df()`` turns DECIMAL into float64)."""
        with self.connect() as con:
            return con.execute(sql, params or []).df()

    # -- migrations ------------------------------------------------------------------------------
    def schema_version(self) -> int:
        if self.read_only:
            return self._read_only_version()
        with self.connect() as con:
            return self._version(con)

    @staticmethod
    def _version(con) -> int:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0])

    def migrate(self) -> int:
        with self._write_lock, self.connect() as con:
            current = self._version(con)
            if current > LATEST:
                raise DatabaseError(
                    f"{self.path} was written by a newer Ad Spend Hub (schema {current}, "
                    f"this one knows {LATEST}); upgrade the application"
                )
            applied = {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, description, sql in MIGRATIONS:
                if version in applied:  # by set, not by max: a database made between branches
                    continue  # that added versions out of order still gets each one
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(sql)
                    con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, description, _utcnow()])
                    _bump_version(con)
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    con.execute("ROLLBACK")
                    if _not_writable(exc):
                        raise DatabaseError(self._cannot_write()) from None
                    raise
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            self._totals = bool(
                con.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = 'monthly_spend' "
                    "AND table_catalog = current_database()"
                ).fetchone()[0]
            )
            return self._version(con)

    # -- stores and accounts ---------------------------------------------------------------------
    def upsert_stores(self, con, stores: Iterable[tuple[str, str, str, bool]]) -> None:
        for store_id, name, currency, is_demo in stores:
            con.execute(
                "INSERT INTO stores (store_id, name, billing_currency, is_demo) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (store_id) DO UPDATE SET name = excluded.name, "
                "billing_currency = excluded.billing_currency",
                [store_id, name, currency, is_demo],
            )

    def link_accounts(self, con, links: Iterable[tuple[str, str, str, str | None]]) -> int:
        """(store_id, platform, account_id, display_name); returns how many links are new."""
        added = 0
        for store_id, platform, account_id, display_name in links:
            exists = con.execute(
                "SELECT display_name FROM ad_accounts WHERE store_id = ? AND platform = ? AND account_id = ?",
                [store_id, platform, account_id],
            ).fetchall()
            if not exists:
                con.execute(
                    "INSERT INTO ad_accounts (store_id, platform, account_id, display_name) VALUES (?, ?, ?, ?)",
                    [store_id, platform, account_id, display_name],
                )
                added += 1
            elif display_name and exists[0][0] != display_name:
                con.execute(
                    "UPDATE ad_accounts SET display_name = ? WHERE store_id = ? AND platform = ? AND account_id = ?",
                    [display_name, store_id, platform, account_id],
                )
        return added

    def import_mapping(self, con, stores, links) -> tuple[int, int]:
        """Bulk form of upsert_stores + link_accounts inside the caller's transaction. ``stores``:
        Arrow table (store_id, name, billing_currency); ``links``: (seq, store_id, platform,
        account_id, display_name), a repeated link keeping its last display name. Returns (new
        links, distinct links)."""
        con.register("import_stores", stores)
        con.register("import_links", links)
        try:
            con.execute(
                "INSERT INTO stores (store_id, name, billing_currency, is_demo) "
                "SELECT store_id, name, billing_currency, FALSE FROM import_stores "
                "ON CONFLICT (store_id) DO UPDATE SET name = excluded.name, "
                "billing_currency = excluded.billing_currency"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE import_last AS SELECT store_id, platform, account_id, "
                "display_name FROM import_links QUALIFY row_number() OVER "
                "(PARTITION BY store_id, platform, account_id ORDER BY seq DESC) = 1"
            )
            total = con.execute("SELECT count(*) FROM import_last").fetchone()[0]
            con.execute(
                "UPDATE ad_accounts SET display_name = i.display_name FROM import_last i "
                "WHERE ad_accounts.store_id = i.store_id AND ad_accounts.platform = i.platform "
                "AND ad_accounts.account_id = i.account_id AND coalesce(i.display_name, '') <> '' "
                "AND ad_accounts.display_name IS DISTINCT FROM i.display_name"
            )
            added = con.execute(
                "INSERT INTO ad_accounts (store_id, platform, account_id, display_name) "
                "SELECT i.store_id, i.platform, i.account_id, i.display_name FROM import_last i "
                "ANTI JOIN ad_accounts a ON a.store_id = i.store_id AND a.platform = i.platform "
                "AND a.account_id = i.account_id"
            ).fetchone()[0]
            con.execute("DROP TABLE import_last")
        finally:
            con.unregister("import_stores")
            con.unregister("import_links")
        return int(added), int(total)

    def save_store(self, store_id: str, name: str, billing_currency: str, is_demo: bool = False) -> None:
        if has_control(name):
            raise ValueError(
                "the store name contains control characters (such as a newline, tab or terminal escape); use plain text"
            )
        with self.transaction() as con:
            self.upsert_stores(con, [(store_id, name, billing_currency, is_demo)])

    def unlink_account(self, store_id: str, platform: str, account_id: str) -> bool:
        with self.transaction() as con:
            n = con.execute(
                "DELETE FROM ad_accounts WHERE store_id = ? AND platform = ? AND account_id = ? RETURNING 1",
                [store_id, platform, account_id],
            ).fetchall()
            return bool(n)

    def stores(self) -> list[dict]:
        rows = self.query("SELECT store_id, name, billing_currency, is_demo FROM stores ORDER BY name, store_id")
        return [dict(store_id=r[0], name=r[1], billing_currency=r[2], is_demo=r[3]) for r in rows]

    def store(self, store_id: str) -> dict | None:
        rows = self.query("SELECT store_id, name, billing_currency, is_demo FROM stores WHERE store_id = ?", [store_id])
        return (
            dict(store_id=rows[0][0], name=rows[0][1], billing_currency=rows[0][2], is_demo=rows[0][3])
            if rows
            else None
        )

    def accounts(self, store_ids: Sequence[str] | None = None, platforms: Sequence[str] | None = None) -> list[dict]:
        sql = (
            "SELECT a.store_id, a.platform, a.account_id, a.display_name, i.name, i.currency, i.timezone, "
            "i.day_basis, s.is_demo FROM ad_accounts a JOIN stores s USING (store_id) "
            "LEFT JOIN account_info i ON i.platform = a.platform AND i.account_id = a.account_id WHERE 1=1"
        )
        params: list = []
        if store_ids is not None:
            sql += " AND list_contains(?, a.store_id)"
            params.append(list(store_ids))
        if platforms is not None:
            sql += " AND list_contains(?, a.platform)"
            params.append(list(platforms))
        sql += " ORDER BY a.store_id, a.platform, a.account_id"
        keys = (
            "store_id",
            "platform",
            "account_id",
            "display_name",
            "platform_name",
            "currency",
            "timezone",
            "day_basis",
            "is_demo",
        )
        return [dict(zip(keys, r)) for r in self.query(sql, params)]

    def save_account_info(
        self, platform: str, account_id: str, *, name: str, currency: str, timezone: str, day_basis: str
    ) -> None:
        with self.transaction() as con:
            con.execute(
                "INSERT INTO account_info VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, account_id) "
                "DO UPDATE SET name = excluded.name, currency = excluded.currency, timezone = excluded.timezone, "
                "day_basis = excluded.day_basis, updated_at = excluded.updated_at",
                [platform, account_id, name, currency, timezone, day_basis, _utcnow()],
            )

    def account_info(self, platform: str, account_id: str) -> dict | None:
        rows = self.query(
            "SELECT name, currency, timezone, day_basis, updated_at FROM account_info "
            "WHERE platform = ? AND account_id = ?",
            [platform, account_id],
        )
        if not rows:
            return None
        return dict(zip(("name", "currency", "timezone", "day_basis", "updated_at"), rows[0]))

    def account_infos(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """``account_info`` for many (platform, account_id) at once: one query, not one per account
        (the keys as list parameters: no Arrow table, so pyarrow does not import pandas)."""
        if not keys:
            return {}
        with self.connect() as con:
            rows = con.execute(
                "WITH want AS (SELECT unnest($p::VARCHAR[]) AS platform, unnest($a::VARCHAR[]) AS account_id) "
                "SELECT i.platform, i.account_id, i.name, i.currency, i.timezone, i.day_basis, "
                "i.updated_at FROM account_info i JOIN want w ON w.platform = i.platform "
                "AND w.account_id = i.account_id",
                {"p": [k[0] for k in keys], "a": [k[1] for k in keys]},
            ).fetchall()
        return {
            (r[0], r[1]): dict(zip(("name", "currency", "timezone", "day_basis", "updated_at"), r[2:])) for r in rows
        }

    def save_account_infos(self, infos: Sequence[Mapping], con=None) -> None:
        """Upsert many account infos (dicts with platform, account_id, name, currency, timezone,
        day_basis) in one statement; inside ``con``'s transaction when given."""
        import pyarrow as pa

        if not infos:
            return
        now = _utcnow()
        tbl = pa.table(
            {
                k: pa.array([str(i[k]) if i.get(k) is not None else None for i in infos], pa.string())
                for k in ("platform", "account_id", "name", "currency", "timezone", "day_basis")
            }
        )
        tbl = tbl.append_column(
            "updated_at", pa.array([i.get("updated_at") or now for i in infos], pa.timestamp("us", tz="UTC"))
        )

        def run(c) -> None:
            c.register("new_infos", tbl)
            c.execute(
                "INSERT INTO account_info SELECT platform, account_id, name, currency, timezone, day_basis, "
                "updated_at FROM (SELECT *, row_number() OVER (PARTITION BY platform, account_id) AS n "
                "FROM new_infos) WHERE n = 1 ON CONFLICT (platform, account_id) DO UPDATE SET "
                "name = excluded.name, currency = excluded.currency, timezone = excluded.timezone, "
                "day_basis = excluded.day_basis, updated_at = excluded.updated_at"
            )
            c.unregister("new_infos")

        if con is not None:
            run(con)
        else:
            with self.transaction() as c:
                run(c)

    # -- spend writes ------------------------------------------------------------------------------
    def write_windows(
        self, writes: Sequence[WindowWrite] = (), failures: Sequence[WindowFailure] = (), con=None
    ) -> None:
        """Replace each fully fetched window and record each failed one, all in ONE transaction.

        A written window deletes that (platform, account, days) range and inserts every day of it
        (zeros included), and clears those days' failure marks. A failed window only marks its days
        as failed: the amounts fetched earlier stay. The monthly totals of the months a window
        touches are recomputed in the same transaction.

        Columns are built whole (one list per column, no per-row Python objects) and joined to
        their window in DuckDB; amounts go in as exact ``decimal128(20, 6)``."""
        if not writes and not failures:
            return
        import pyarrow as pa

        for w in writes:
            if len(w.amounts) != (w.end - w.start).days + 1 or (
                w.amounts and not (w.start <= min(w.amounts) and max(w.amounts) <= w.end)
            ):
                outside = [d for d in w.amounts if not (w.start <= d <= w.end)]
                if outside:
                    raise ValueError(f"{w.platform}/{w.account_id}: day {outside[0]} outside its window")
                raise ValueError(f"{w.platform}/{w.account_id}: window {w.start}..{w.end} is not complete")
            if w.amounts and max(map(abs, w.amounts.values())) >= _MAX_DAY:  # as fetchers.core.fill_zeros
                raise ValueError(f"{w.platform}/{w.account_id}: a day of 10^12 or more is not a plausible spend")
        layers = _layers(writes)
        if len(layers) > 1:  # one account's windows overlap: each layer in turn, the later replacing
            with contextlib.nullcontext(con) if con is not None else self.transaction() as con:
                for i, layer in enumerate(layers):
                    self.write_windows(layer, failures if i == len(layers) - 1 else (), con=con)
            return
        ts = pa.timestamp("us", tz="UTC")
        win_tbl = pa.table(
            {
                "w": pa.array(range(len(writes)), pa.int32()),
                "platform": pa.array([w.platform for w in writes], pa.string()),
                "account_id": pa.array([w.account_id for w in writes], pa.string()),
                "start": pa.array([w.start for w in writes], pa.date32()),
                "end": pa.array([w.end for w in writes], pa.date32()),
                "currency": pa.array([w.currency for w in writes], pa.string()),
                "fetched_at": pa.array([w.fetched_at for w in writes], ts),
                "run_id": pa.array([w.run_id for w in writes], pa.string()),
            }
        )
        day_tbl = pa.table(
            {
                "w": pa.array(
                    list(chain.from_iterable(repeat(i, len(w.amounts)) for i, w in enumerate(writes))), pa.int32()
                ),
                "day": pa.array(list(chain.from_iterable(w.amounts.keys() for w in writes)), pa.date32()),
                "amount": pa.array(list(chain.from_iterable(w.amounts.values() for w in writes)), amount_type()),
            }
        )
        fail_tbl = pa.table(
            {
                "platform": pa.array([f.platform for f in failures], pa.string()),
                "account_id": pa.array([f.account_id for f in failures], pa.string()),
                "start": pa.array([f.start for f in failures], pa.date32()),
                "end": pa.array([f.end for f in failures], pa.date32()),
                "error": pa.array([f.error for f in failures], pa.string()),
                "failed_at": pa.array([f.failed_at for f in failures], ts),
                "run_id": pa.array([f.run_id for f in failures], pa.string()),
            }
        )
        with contextlib.nullcontext(con) if con is not None else self.transaction() as con:
            con.register("new_windows", win_tbl)
            con.register("new_days", day_tbl)
            con.register("new_failures", fail_tbl)
            try:
                if writes:
                    # Every window carries every one of its days once (checked above) and no two
                    # windows of an account overlap (``_layers``), so deleting each range and
                    # inserting its days leaves one row per (platform, account, day).
                    for tbl in ("fetch_failures", "daily_spend"):
                        con.execute(
                            f"DELETE FROM {tbl} d USING new_windows w WHERE d.platform = w.platform "
                            'AND d.account_id = w.account_id AND d.day BETWEEN w.start AND w."end"'
                        )
                    con.execute(
                        "INSERT INTO daily_spend SELECT w.platform, w.account_id, d.day, d.amount, "
                        "w.currency, w.fetched_at, w.run_id FROM new_days d JOIN new_windows w USING (w)"
                    )
                    if self._totals:
                        _recompute_monthly(con, "new_windows", "start", '"end"')
                if failures:
                    con.execute(
                        "INSERT OR REPLACE INTO fetch_failures SELECT platform, account_id, day, error, failed_at, "
                        "run_id FROM (SELECT *, CAST(unnest(generate_series(CAST(start AS TIMESTAMP), "
                        'CAST("end" AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE) AS day FROM new_failures)'
                    )
            finally:
                for name in ("new_windows", "new_days", "new_failures"):
                    con.unregister(name)

    def write_spend_table(self, table: pa.Table) -> int:
        """Bulk write (backfills, imports, the bench): an Arrow table with the ``daily_spend``
        columns (platform, account_id, day, amount decimal128(20, 6), currency, fetched_at, run_id)
        replaces, per (platform, account_id), every stored day in the range of days it covers, in
        one transaction, clears those days' failure marks and recomputes the monthly totals of
        the months it touches. Returns the rows written."""
        import pyarrow as pa

        need = ("platform", "account_id", "day", "amount", "currency", "fetched_at", "run_id")
        missing = [c for c in need if c not in table.column_names]
        if missing:
            raise ValueError(f"the spend table lacks column(s) {', '.join(missing)}")
        if not pa.types.is_decimal(table.schema.field("amount").type):
            raise ValueError("amount must be an exact decimal column (decimal128), never a float")
        with self.transaction() as con:
            con.register("bulk_spend", table.select(list(need)))
            try:
                first, last = con.execute("SELECT min(day), max(day) FROM bulk_spend").fetchone()
                # nd: the distinct days of each account, counted as the set bits of one bitstring a
                # day long per account (as cheap as count(*), where count(DISTINCT) builds a hash set)
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE bulk_ranges AS SELECT platform, account_id, min(day) AS lo, "
                    "max(day) AS hi, count(*) AS n, bit_count(bitstring_agg(CAST(day - $first AS INTEGER), 0, "
                    "$span)) AS nd, max(abs(amount)) AS top FROM bulk_spend GROUP BY platform, account_id",
                    {"first": first, "span": (last - first).days if first else 0},
                )
                twice = con.execute(
                    "SELECT platform, account_id FROM bulk_ranges WHERE n <> nd ORDER BY ALL LIMIT 1"
                ).fetchall()
                if twice:  # nothing stored keeps one row per day but these writes: refuse the batch
                    raise ValueError(f"{twice[0][0]}/{twice[0][1]}: a day appears more than once in the spend table")
                huge = con.execute(
                    "SELECT platform, account_id FROM bulk_ranges WHERE top >= ? ORDER BY ALL LIMIT 1", [_MAX_DAY]
                ).fetchall()
                if huge:  # the monthly totals keep days in DECIMAL(18, 6), as fetchers.core.fill_zeros
                    raise ValueError(f"{huge[0][0]}/{huge[0][1]}: a day of 10^12 or more is not a plausible spend")
                lo, hi = con.execute("SELECT min(lo), max(hi) FROM bulk_ranges").fetchone()
                for tbl in ("daily_spend", "fetch_failures"):
                    # only when something is stored in the span at all (a scan of its zonemaps)
                    if con.execute(
                        f"SELECT count(*) FROM (SELECT 1 FROM {tbl} WHERE day BETWEEN ? AND ? LIMIT 1)", [lo, hi]
                    ).fetchone()[0]:
                        con.execute(
                            f"DELETE FROM {tbl} d USING bulk_ranges r WHERE d.platform = r.platform "
                            "AND d.account_id = r.account_id AND d.day BETWEEN r.lo AND r.hi"
                        )
                con.execute(
                    "INSERT INTO daily_spend SELECT platform, account_id, day, CAST(amount AS DECIMAL(20, 6)), "
                    "currency, fetched_at, run_id FROM bulk_spend"
                )
                if self._totals:
                    _recompute_monthly(con, "bulk_ranges", "lo", "hi")
                con.execute("DROP TABLE bulk_ranges")
            finally:
                con.unregister("bulk_spend")
        return table.num_rows

    def days_to_fetch(
        self,
        accounts: Sequence[tuple[str, str, int]],
        start: dt.date,
        end: dt.date,
        now: dt.datetime | None = None,
        full: bool = False,
    ) -> dict[tuple[str, str], list[dt.date]]:
        """For each (platform, account_id, lookback_days): the days of [start, end] that can still
        change or were never fetched: no row yet, a failed latest fetch, or a row fetched while the
        day was inside the platform's restatement window (fetched_at < day + lookback + 1 day).
        Days after ``now`` are not fetched (no platform reports the future)."""
        now = now or _utcnow()
        last_day = min(end, now.date())
        if not accounts or start > last_day:
            return {(p, a): [] for p, a, _ in accounts}
        # the accounts as list parameters, not an Arrow table: building one from Python lists
        # makes pyarrow import pandas (0.2-0.3 s before a refresh's first request)
        with self.connect() as con:
            rows = con.execute(
                """
                WITH days AS (SELECT CAST(d AS DATE) AS day FROM generate_series(CAST($start AS DATE),
                                                                       CAST($last AS DATE), INTERVAL 1 DAY) t(d)),
                acc AS (SELECT unnest($p::VARCHAR[]) AS platform, unnest($a::VARCHAR[]) AS account_id,
                               unnest($lb::INTEGER[]) AS lookback)
                SELECT a.platform, a.account_id, days.day
                FROM acc a CROSS JOIN days
                LEFT JOIN daily_spend s ON s.platform = a.platform AND s.account_id = a.account_id AND s.day = days.day
                LEFT JOIN fetch_failures f ON f.platform = a.platform AND f.account_id = a.account_id
                                           AND f.day = days.day
                WHERE $full OR s.day IS NULL OR f.day IS NOT NULL
                   OR s.fetched_at < CAST(days.day AS TIMESTAMPTZ) + to_days(a.lookback + 1)
                ORDER BY 1, 2, 3""",
                {
                    "start": start,
                    "last": last_day,
                    "full": full,
                    "p": [a[0] for a in accounts],
                    "a": [a[1] for a in accounts],
                    "lb": [int(a[2]) for a in accounts],
                },
            ).fetchall()
        out: dict[tuple[str, str], list[dt.date]] = {(p, a): [] for p, a, _ in accounts}
        for p, a, d in rows:
            out[(p, a)].append(d)
        return out

    # -- refresh runs ------------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        *,
        trigger: str,
        start: dt.date,
        end: dt.date,
        stores: Sequence[str],
        platforms: Sequence[str],
    ) -> None:
        now = _utcnow()
        with self.transaction() as con:
            con.execute(
                "INSERT INTO refresh_runs (run_id, started_at, status, trigger, period_start, period_end, "
                "stores, platforms, pid, heartbeat_at, owner, lease_seconds) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    now,
                    trigger,
                    start,
                    end,
                    ",".join(stores),
                    ",".join(platforms),
                    os.getpid(),
                    now,
                    process_identity(),
                    lease_seconds(),
                ],
            )

    def renew_lease(self, run_id: str, con=None) -> None:
        """The run is alive: move its heartbeat to now (with each batch commit and on a timer)."""
        with contextlib.nullcontext(con) if con is not None else self.transaction() as c:
            c.execute(
                "UPDATE refresh_runs SET heartbeat_at = ? WHERE run_id = ? AND status = 'running'", [_utcnow(), run_id]
            )

    def finish_run(self, run_id: str, status: str, requests: int, error: str | None = None) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE refresh_runs SET finished_at = ?, status = ?, requests = ?, error = ? WHERE run_id = ?",
                [_utcnow(), status, requests, error, run_id],
            )

    def add_results(self, results: Sequence[dict], con=None) -> None:
        import pyarrow as pa

        if not results:
            return
        cols = (
            "run_id",
            "platform",
            "account_id",
            "window_start",
            "window_end",
            "status",
            "rows",
            "error",
            "duration_ms",
            "requests",
            "finished_at",
        )
        tbl = pa.table(
            {
                "run_id": pa.array([r["run_id"] for r in results], pa.string()),
                "platform": pa.array([r["platform"] for r in results], pa.string()),
                "account_id": pa.array([r["account_id"] for r in results], pa.string()),
                "window_start": pa.array([r["window_start"] for r in results], pa.date32()),
                "window_end": pa.array([r["window_end"] for r in results], pa.date32()),
                "status": pa.array([r["status"] for r in results], pa.string()),
                "rows": pa.array([int(r.get("rows", 0)) for r in results], pa.int32()),
                "error": pa.array([r.get("error") for r in results], pa.string()),
                "duration_ms": pa.array([int(r.get("duration_ms", 0)) for r in results], pa.int32()),
                "requests": pa.array([int(r.get("requests", 0)) for r in results], pa.int32()),
                "finished_at": pa.array(
                    [r.get("finished_at") or _utcnow() for r in results], pa.timestamp("us", tz="UTC")
                ),
            }
        )
        with contextlib.nullcontext(con) if con is not None else self.transaction() as con:
            con.register("new_results", tbl)
            con.execute(f"INSERT INTO refresh_results SELECT {', '.join(cols)} FROM new_results")
            con.unregister("new_results")

    def mark_interrupted_runs(self, now: dt.datetime | None = None) -> int:
        """Runs left 'running' that are not alive were interrupted (killed, crashed, machine gone).

        Alive means the run's lease is current: it renews ``heartbeat_at`` with every batch commit
        and on a timer (every quarter of its lease); a heartbeat older than the lease the run
        recorded (``ADSPEND_RUN_LEASE_SECONDS`` of the refreshing process, default 60; this
        process's setting for runs that recorded none) is a dead run, whatever its PID says (PIDs are
        reused, and every container's first process is PID 1). Sooner, when the run's ``owner``
        is a process of THIS machine and PID namespace (same boot id and namespace) and that
        process no longer exists or is another process now (different start time). A run from
        before leases (no heartbeat) counts from its start."""
        now = now or _utcnow()
        default = lease_seconds()
        me = process_identity()
        rows = self.query(
            "SELECT run_id, coalesce(heartbeat_at, started_at), owner, lease_seconds "
            "FROM refresh_runs "
            "WHERE status = 'running'"
        )
        dead = [
            run_id
            for run_id, beat, owner, lease in rows
            if beat is None or now - beat > dt.timedelta(seconds=lease or default) or _owner_gone(owner, me)
        ]
        if dead:
            with self.transaction() as con:
                con.execute(
                    "UPDATE refresh_runs SET status = 'interrupted', error = 'the refresh process stopped "
                    "before finishing (killed or crashed); windows committed before that are kept' "
                    "WHERE list_contains(?, run_id)",
                    [dead],
                )
        return len(dead)

    def runs(self, limit: int = 50) -> list[dict]:
        keys = (
            "run_id",
            "started_at",
            "finished_at",
            "status",
            "trigger",
            "period_start",
            "period_end",
            "stores",
            "platforms",
            "requests",
            "error",
        )
        rows = self.query(f"SELECT {', '.join(keys)} FROM refresh_runs ORDER BY started_at DESC LIMIT ?", [limit])
        return [dict(zip(keys, r)) for r in rows]

    def run_results(self, run_id: str) -> list[dict]:
        keys = (
            "platform",
            "account_id",
            "window_start",
            "window_end",
            "status",
            "rows",
            "error",
            "duration_ms",
            "requests",
            "finished_at",
        )
        rows = self.query(
            f"SELECT {', '.join(keys)} FROM refresh_results WHERE run_id = ? "
            "ORDER BY platform, account_id, window_start",
            [run_id],
        )
        return [dict(zip(keys, r)) for r in rows]

    # -- report jobs -------------------------------------------------------------------------------
    def job_store(
        self, platform: str, buffered: bool = False, pending: Mapping[str, str] | None = None
    ) -> DuckJobStore | BufferedJobStore:
        """``pending``: the platform's stored report ids (``pending_jobs``), when already read."""
        return BufferedJobStore(self, platform, pending) if buffered else DuckJobStore(self, platform)

    def pending_jobs(self, platforms: Sequence[str]) -> dict[str, dict[str, str]]:
        """Every stored report id of these platforms, {platform: {job key: job id}}, in one query."""
        out: dict[str, dict[str, str]] = {p: {} for p in platforms}
        if platforms:
            for platform, key, job_id in self.query(
                "SELECT platform, job_key, job_id FROM report_jobs WHERE list_contains(?, platform) ORDER BY created_at",
                [list(platforms)],
            ):
                out[platform][key] = job_id
        return out


class DuckJobStore:
    """``fetchers.base.ReportJobStore`` backed by the ``report_jobs`` table."""

    def __init__(self, store: SpendStore, platform: str):
        self.store, self.platform = store, platform

    def get(self, key: str) -> str | None:
        rows = self.store.query(
            "SELECT job_id FROM report_jobs WHERE platform = ? AND job_key = ?", [self.platform, key]
        )
        return rows[0][0] if rows else None

    def put(self, key: str, job_id: str) -> None:
        with self.store.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO report_jobs VALUES (?, ?, ?, ?)", [self.platform, key, job_id, _utcnow()]
            )

    def drop(self, key: str) -> None:
        with self.store.transaction() as con:
            con.execute("DELETE FROM report_jobs WHERE platform = ? AND job_key = ?", [self.platform, key])

    def pending(self) -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in self.store.query(
                "SELECT job_key, job_id FROM report_jobs WHERE platform = ? ORDER BY created_at", [self.platform]
            )
        ]


class BufferedJobStore:
    """The report-job store a refresh uses: read once, written in batches.

    ``get``/``put``/``drop`` are called on the event loop (``fetchers.core.run_report_job``), so
    they must not open the database: the platform's pending ids are loaded once, and changes are
    kept in memory until ``flush`` writes them in one transaction (the refresh's writer calls it
    with every batch of windows, off the loop). A job id not yet flushed when the process dies is
    lost: the next refresh requests that report again, it never loses or double-counts spend."""

    def __init__(self, store: SpendStore, platform: str, pending: Mapping[str, str] | None = None):
        self.store, self.platform = store, platform
        self._lock = threading.Lock()
        self._ids = dict(pending) if pending is not None else dict(DuckJobStore(store, platform).pending())
        self._ops: dict[str, tuple[str | None, dt.datetime]] = {}  # key -> (job id, or None: dropped)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._ids.get(key)

    def put(self, key: str, job_id: str) -> None:
        with self._lock:
            self._ids[key] = job_id
            self._ops[key] = (job_id, _utcnow())

    def drop(self, key: str) -> None:
        with self._lock:
            self._ids.pop(key, None)
            self._ops[key] = (None, _utcnow())

    def pending(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._ids.items())

    def take(self) -> list[tuple[str, str | None, dt.datetime]]:
        with self._lock:
            ops, self._ops = self._ops, {}
        return [(k, v, at) for k, (v, at) in ops.items()]

    def restore(self, ops: list[tuple[str, str | None, dt.datetime]]) -> None:
        """Put back changes whose flush failed (later changes to the same key win)."""
        with self._lock:
            for k, v, at in ops:
                self._ops.setdefault(k, (v, at))

    def write(self, con, ops: list[tuple[str, str | None, dt.datetime]]) -> None:
        import pyarrow as pa

        if not ops:
            return
        con.execute(
            "DELETE FROM report_jobs WHERE platform = ? AND list_contains(?, job_key)",
            [self.platform, [k for k, _, _ in ops]],
        )
        puts = [(k, v, at) for k, v, at in ops if v is not None]
        if puts:
            con.register(
                "new_jobs",
                pa.table(
                    {
                        "job_key": pa.array([k for k, _, _ in puts], pa.string()),
                        "job_id": pa.array([v for _, v, _ in puts], pa.string()),
                        "created_at": pa.array([at for _, _, at in puts], pa.timestamp("us", tz="UTC")),
                    }
                ),
            )
            con.execute("INSERT INTO report_jobs SELECT ?, job_key, job_id, created_at FROM new_jobs", [self.platform])
            con.unregister("new_jobs")

    def flush(self) -> None:
        ops = self.take()
        if not ops:
            return
        try:
            with self.store.transaction() as con:
                self.write(con, ops)
        except BaseException:
            self.restore(ops)
            raise


def lease_seconds() -> float:
    """How long a refresh run stays alive without renewing its lease (ADSPEND_RUN_LEASE_SECONDS)."""
    try:
        value = float(os.environ.get("ADSPEND_RUN_LEASE_SECONDS") or 60)
    except ValueError:
        value = 60.0
    return value if value > 0 else 60.0


def _proc_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def process_identity(pid: int | None = None) -> str | None:
    """``boot id/pid namespace/pid/start time`` of a process (this one by default), or None where
    /proc does not tell (then only the lease decides)."""
    pid = os.getpid() if pid is None else pid
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    start = _proc_start_time(pid)
    return f"{boot}/{ns}/{pid}/{start}" if start else None


def _owner_gone(owner: str | None, me: str | None) -> bool:
    """True when ``owner`` was a process of this machine and PID namespace that is gone now."""
    if not owner or not me:
        return False
    parts, mine = owner.split("/"), me.split("/")
    if len(parts) != 4 or parts[:2] != mine[:2] or not parts[2].isdigit():
        return False  # another machine or container: only its lease tells
    return _proc_start_time(int(parts[2])) != parts[3]
