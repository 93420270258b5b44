"""The dashboard's read models, cached on the database's data version (issue 19 item 5).

Every committed write bumps the data version (``storage.db.SpendStore.data_version``), and a
reader sees it with one ``stat`` of the database files and one read of the small
``<db>.version`` sidecar, without opening DuckDB. A cached model is keyed on (database path, data
version, model, arguments), so a repeated view costs no query and no file open, and any write,
from this process or another one, makes the next view read afresh. A writer that died between
its commit and the sidecar leaves files that no longer match the sidecar: the reader then opens
the database for the version (never a stale answer).

Models that also depend on the day (``today``: open periods, retention) have it in their key, and
entries older than ``max_age`` seconds are dropped, so settings read from the environment or a
secret store (which platforms are configured) show within minutes. The cache is bounded (least
recently used entries go first) and shared by the sessions of one dashboard process; cached
objects are shared too, and callers must not change them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from fetchers import clock
from storage.db import SpendStore

DEFAULT_SIZE = 64
DEFAULT_MAX_AGE = 300.0


class ReadCache:
    def __init__(self, maxsize: int = DEFAULT_SIZE, max_age: float = DEFAULT_MAX_AGE):
        if maxsize < 1:
            raise ValueError("the read cache needs room for at least one entry")
        self.maxsize, self.max_age = maxsize, max_age
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def get(self, store: SpendStore, name: str, args: tuple, compute: Callable[[], Any]) -> Any:
        """The cached value of ``name(args)`` for the store's current data version, or
        ``compute()`` (stored only when the version did not move while it ran)."""
        version = store.data_version()
        key = (str(store.path), version, name, args)
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
            if found is not None and now - found[0] <= self.max_age:
                self._items.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
        value = compute()
        if store.data_version() != version:
            return value  # a write landed meanwhile: the value may mix both; do not keep it
        with self._lock:
            self._items[key] = (now, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value


CACHE = ReadCache()


def _env_key() -> int:
    """Which credentials are configured comes from the environment: part of the key."""
    return hash(frozenset((k, v) for k, v in os.environ.items() if not k.startswith(("PYTEST_", "STREAMLIT_"))))


def spend_report(store: SpendStore, store_id: str, start: dt.date, end: dt.date, today: dt.date | None = None):
    """``service.report.spend_report``, cached."""
    from .report import spend_report as compute

    today = today or clock.today()
    return CACHE.get(
        store,
        "spend_report",
        (store_id, start, end, today, _env_key()),
        lambda: compute(store, store_id, start, end, today=today),
    )


def portfolio_spend(store: SpendStore, start: dt.date, end: dt.date, currency: str = "USD"):
    """``service.dashboard.portfolio_spend``, cached."""
    from .dashboard import portfolio_spend as compute

    return CACHE.get(store, "portfolio_spend", (start, end, currency), lambda: compute(store, start, end, currency))


def portfolio_matrix(store: SpendStore):
    """``service.dashboard.portfolio_matrix``, cached."""
    from .dashboard import portfolio_matrix as compute

    return CACHE.get(store, "portfolio_matrix", (), lambda: compute(store))
