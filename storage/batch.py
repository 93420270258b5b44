"""Committed batches of whole windows: what a refresh has fetched, written off the event loop.

``BatchWriter`` buffers each finished window (``WindowWrite``) or failed one (``WindowFailure``),
its run-log result, the account infos learnt on the way and the platforms' buffered report-job
changes, and commits them together in one transaction every ``flush_every`` seconds or
``max_batch`` results, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from .db import SpendStore, WindowFailure, WindowWrite


class Lease(Protocol):
    """The run's lease (``service.refresh``): renewed in the same transaction as each batch."""

    run_id: str
    renewed: float


class BatchWriter:
    """Collects finished windows and commits them in batches (each window whole, in one
    transaction with the others of its batch), off the event loop."""

    def __init__(self, store: SpendStore, flush_every: float = 0.5, max_batch: int = 500):
        self.store, self.flush_every, self.max_batch = store, flush_every, max_batch
        self.writes: list[WindowWrite] = []
        self.failures: list[WindowFailure] = []
        self.results: list[dict] = []
        self.infos: list[dict] = []  # account infos learnt in this run
        self.job_stores: list = []  # BufferedJobStore of each platform: flushed with each batch
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self.error: Exception | None = None
        # its own thread: commits never queue behind blocking platform calls (the Microsoft SDK)
        # that may be holding every thread of the loop's default pool
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adspend-writer")
        self.lease: Lease | None = None  # renewed with every batch commit

    async def add(self, write: WindowWrite | None, failure: WindowFailure | None, result: dict) -> None:
        if write:
            self.writes.append(write)
        if failure:
            self.failures.append(failure)
        self.results.append(result)
        if len(self.results) >= self.max_batch or time.monotonic() - self._last >= self.flush_every:
            await self.flush()

    def add_info(self, info: dict) -> None:
        self.infos.append(info)

    async def flush(self) -> None:
        async with self._lock:
            writes, failures, results, infos = self.writes, self.failures, self.results, self.infos
            self.writes, self.failures, self.results, self.infos = [], [], [], []
            self._last = time.monotonic()
            jobs = [(js, js.take()) for js in self.job_stores]
            jobs = [(js, ops) for js, ops in jobs if ops]
            if not (writes or failures or results or infos or jobs):
                return
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._commit, writes, failures, results, infos, jobs
                )
            except Exception as exc:  # the database is busy or broken: stop pretending
                for js, ops in jobs:
                    js.restore(ops)
                self.error = exc
                raise

    def close(self) -> None:
        """Let the writer's thread go (a commit under way still finishes)."""
        self._thread.shutdown(wait=False)

    def _commit(self, writes, failures, results, infos, jobs) -> None:
        """Everything of one batch in ONE transaction (one short connection, one commit)."""
        with self.store.transaction() as con:
            self.store.save_account_infos(infos, con=con)
            self.store.write_windows(writes, failures, con=con)
            self.store.add_results(results, con=con)
            for js, ops in jobs:
                js.write(con, ops)
            if self.lease is not None:
                self.store.renew_lease(self.lease.run_id, con=con)
        if self.lease is not None:
            self.lease.renewed = time.monotonic()
