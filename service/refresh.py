"""The refresh service: the one entry point the CLI and the dashboard call to fetch spend.

``refresh(store, store_ids, start, end, platforms)`` runs every platform and account
concurrently within the platforms' rate budgets, writes each fully fetched window in its own
committed batch (a failed window only marks its days failed; the earlier numbers stay), reports
progress per platform x account through a callback, and returns per store and platform a status:
``ok``, ``failed`` (with the reason), ``partial`` (some accounts failed) or ``not_configured``.
Nothing is ever silently zero.

Incremental: only days that can still change are fetched again: days never fetched, days whose
last fetch failed, and days fetched while they were still inside the platform's restatement
window (``lookback_days``). ``full=True`` re-fetches everything in the period.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from fetchers import clock, get_fetcher
from fetchers.base import AccountInfo, FetchError
from fetchers.core import (
    PlatformApi,
    RateBudget,
    ReportPolicy,
    background,
    count_requests,
    fetch_window,
    fetch_window_and_info,
    redact,
)
from fetchers.specs import PLATFORM_IDS, SPECS
from fetchers.transport import PoolPerPlatform
from storage.batch import BatchWriter
from storage.db import DatabaseBusy, DatabaseError, SpendStore, WindowFailure, WindowWrite, lease_seconds

from .config import PlatformConfig, Settings, load_settings, platform_config
from .freshness import oldest_servable
from .plan import plan_account
from .token_cache import TokenCache

log = logging.getLogger("adspend.refresh")

_PoolPerPlatform = PoolPerPlatform  # the name bench/refresh.py imports

ACCOUNT_INFO_MAX_AGE = dt.timedelta(days=7)
AccountKey = tuple[str, str, bool]  # (platform, account id, demo endpoint): one fetch per run


@dataclass
class Progress:
    """One progress event: ``phase`` is start, window, done, failed or skipped."""

    store_ids: tuple[str, ...]
    platform: str
    account_id: str
    phase: str
    windows_done: int = 0
    windows_total: int = 0
    message: str = ""


@dataclass
class AccountOutcome:
    platform: str
    account_id: str
    store_ids: tuple[str, ...]
    status: str = "ok"  # ok, failed, not_configured, skipped
    error: str | None = None
    windows: int = 0
    windows_failed: int = 0
    days_fetched: int = 0
    requests: int = 0
    seconds: float = 0.0


@dataclass
class PlatformOutcome:
    store_id: str
    platform: str
    status: str
    error: str | None
    accounts: list[AccountOutcome]
    seconds: float

    def to_json(self) -> dict:
        return {
            "store_id": self.store_id,
            "platform": self.platform,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "accounts": [
                {
                    "account_id": a.account_id,
                    "status": a.status,
                    "error": a.error,
                    "windows": a.windows,
                    "days_fetched": a.days_fetched,
                    "requests": a.requests,
                }
                for a in self.accounts
            ],
        }


@dataclass
class RefreshOutcome:
    run_id: str
    status: str
    start: dt.date
    end: dt.date
    platforms: list[PlatformOutcome] = field(default_factory=list)
    requests: int = 0
    throttled: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def for_store(self, store_id: str) -> list[PlatformOutcome]:
        return [p for p in self.platforms if p.store_id == store_id]


class RefreshError(RuntimeError):
    """The refresh could not run at all (bad input, database busy)."""


# --- the run's lease: it is alive while it says so -------------------------------------------------


class _Lease:
    """Renews the run's lease (``refresh_runs.heartbeat_at``) every ``lease_seconds() / 4`` from a
    thread of its own, so a run that only waits (a report being polled, a slow platform) or whose
    event loop is busy still counts as alive; the writer also renews it with every batch commit.
    It stops with ``stop()`` or when the run's task ends (even by an exception): a run that no
    longer renews is marked ``interrupted`` by the next reader once the lease has expired."""

    def __init__(
        self, store: SpendStore, run_id: str, task: asyncio.Task | None = None, interval: float | None = None
    ) -> None:
        self.store, self.run_id, self.task = store, run_id, task
        self.interval = interval if interval is not None else max(0.05, lease_seconds() / 4)
        self.renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"adspend-lease-{run_id}", daemon=True)

    def start(self) -> _Lease:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing, and wait for a renewal under way (a thread still inside DuckDB when the
        interpreter exits would abort the process)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.task is not None and self.task.done():
                return
            if time.monotonic() - self.renewed < self.interval * 0.9:
                continue  # a batch commit renewed it just now
            try:
                self.store.renew_lease(self.run_id)
                self.renewed = time.monotonic()
            except (DatabaseBusy, DatabaseError) as exc:  # try again at the next tick
                log.debug("could not renew the lease of run %s: %s", self.run_id, exc)


# --- the run ---------------------------------------------------------------------------------------


def _run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _validate_period(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise RefreshError(f"the start date {start} is after the end date {end}")


_SANDBOX_ROTATIONS: dict[tuple[str, str], str] = {}


class _PlatformRun:
    """Shared per platform (and endpoint) in one run: the fetcher, the API handle and its budget."""

    def __init__(
        self,
        cfg: PlatformConfig,
        client: httpx.AsyncClient,
        store: SpendStore,
        token_cache: TokenCache,
        pending_jobs: Mapping[str, str] | None = None,
    ):
        self.cfg = cfg
        self.fetcher = get_fetcher(cfg.platform)
        creds = dict(cfg.credentials)
        spec = SPECS[cfg.platform]
        configured_refresh = creds.get(spec.refresh_token_key) if spec.refresh_token_key else None
        on_rotate = None
        if configured_refresh and cfg.mode == "live":
            creds[spec.refresh_token_key] = token_cache.refresh_token(cfg.platform, configured_refresh)

            def on_rotate(new_token: str, _p=cfg.platform, _c=configured_refresh) -> None:
                token_cache.store_rotation(_p, _c, new_token)
                writeback = getattr(self, "vault_writeback", None)
                if writeback:
                    writeback(_p, spec.refresh_token_key, new_token)
        elif configured_refresh and cfg.mode == "sandbox":
            # The demo's sandbox lives as long as this process and retires used refresh tokens like
            # the real platforms do: keep its rotations in memory (never in the token cache file,
            # which belongs to the real credentials).
            key = (cfg.token_url, cfg.platform)
            creds[spec.refresh_token_key] = _SANDBOX_ROTATIONS.get(key, configured_refresh)

            def on_rotate(new_token: str, _k=key) -> None:
                _SANDBOX_ROTATIONS[_k] = new_token

        auth = self.fetcher.build_auth(creds, cfg.token_url, on_rotate)
        if cfg.mode == "live":  # start the expiry clock of a long-lived credential (advice only)
            from .lifecycle import note_credentials

            note_credentials(cfg.platform, cfg.credentials, token_cache)
        timeout = float(os.environ.get("ADSPEND_HTTP_TIMEOUT", "30"))
        self.api = PlatformApi(
            self.fetcher,
            client,
            base_url=cfg.base_url,
            credentials=creds,
            auth=auth,
            budget=RateBudget(cfg.rpm),
            jobs=store.job_store(cfg.platform, buffered=True, pending=pending_jobs),
            timeout=timeout,
            report=ReportPolicy(first_poll=cfg.report_first_poll) if cfg.report_first_poll else None,
        )
        self.fatal: FetchError | None = None  # platform-wide failure (auth/config): skip the rest


async def refresh_async(
    store: SpendStore,
    store_ids: Sequence[str] | None,
    start: dt.date,
    end: dt.date,
    platforms: Sequence[str] | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    trigger: str = "cli",
    full: bool = False,
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    now: dt.datetime | None = None,
    recent: bool = False,
) -> RefreshOutcome:
    """``recent=True``: instead of the days of ``start..end`` that can change, each account's
    ``service.freshness.recent_days`` (its restatement window up to yesterday, and the missing or
    failed days of the current and previous month it still serves); ``start..end`` is then only
    the period recorded for the run (``freshness.recent_period``)."""
    t0 = time.monotonic()
    _validate_period(start, end)
    _ensure_executor()
    platforms = _check_platforms(platforms)
    settings = settings or load_settings()
    store_ids = _check_stores(store, store_ids)
    links = store.accounts(store_ids, platforms)
    run_id = _run_id()
    store.start_run(run_id, trigger=trigger, start=start, end=end, stores=list(store_ids), platforms=platforms)
    lease = _Lease(store, run_id, task=asyncio.current_task()).start()
    # one task per unique (platform, account, endpoint): an account linked to two stores is fetched once
    groups: dict[AccountKey, list[str]] = {}
    for link in links:
        groups.setdefault((link["platform"], link["account_id"], bool(link["is_demo"])), []).append(link["store_id"])
    configs = _platform_configs(settings, groups)
    writer = BatchWriter(store)
    writer.lease = lease
    # one client for every platform and store, connections kept alive, one pool per platform
    # (see fetchers.transport.PoolPerPlatform)
    async with httpx.AsyncClient(
        transport=transport or PoolPerPlatform(), follow_redirects=False, headers={"User-Agent": "AdSpendHub/1.0"}
    ) as client:
        runs = _platform_runs(store, configs, client, settings)
        writer.job_stores = [r.api.jobs for r in runs.values() if hasattr(r.api.jobs, "take")]
        usable = [(p, a, demo) for (p, a, demo) in groups if (p, demo) in runs]
        lookbacks = [(p, a, runs[(p, demo)].fetcher.lookback_days) for (p, a, demo) in usable]
        infos_for = [(p, a) for p, a, _ in usable]

        def prefetch():  # one connection: what to fetch, and every account's stored info
            if recent:
                from .freshness import recent_days

                return recent_days(store, [(p, a) for p, a, _ in lookbacks], now=now), store.account_infos(infos_for)
            days = store.days_to_fetch(lookbacks, start, end, now or clock.now(), full)
            return days, store.account_infos(infos_for)

        plan, known_infos = await asyncio.to_thread(prefetch) if usable else ({}, {})
        _warm_up(runs, usable, plan)
        run = _Run(run_id, writer, progress or (lambda _e: None), groups, configs, runs, plan, known_infos)
        error = await _run_accounts(run)
        requests = sum(r.api.request_count for r in runs.values())
        throttled = sum(r.api.throttled_count for r in runs.values())
        writer.close()

    outcomes = run.outcomes
    for key in groups:  # tasks that died before recording anything
        if key not in outcomes:
            outcomes[key] = AccountOutcome(key[0], key[1], tuple(groups[key]), "failed", error or "internal error")
        elif error and outcomes[key].status == "ok" and writer.error is not None:
            outcomes[key].status, outcomes[key].error = "failed", error
    platform_outcomes = _per_store_platform(outcomes, groups, store_ids, platforms)
    status = _run_status(platform_outcomes, error)
    lease.stop()
    try:
        store.finish_run(run_id, status, requests, error)
    except DatabaseBusy as exc:
        error = error or str(exc)
    return RefreshOutcome(
        run_id, status, start, end, platform_outcomes, requests, throttled, time.monotonic() - t0, error
    )


@dataclass
class _Run:
    """What every account task of one refresh shares."""

    run_id: str
    writer: BatchWriter
    emit: Callable[[Progress], None]
    groups: dict[AccountKey, list[str]]  # the stores each account is linked to
    configs: dict[tuple[str, bool], PlatformConfig]
    runs: dict[tuple[str, bool], _PlatformRun]  # the usable platforms
    plan: Mapping[tuple[str, str], Sequence[dt.date]]  # the days to fetch per (platform, account)
    known_infos: Mapping[tuple[str, str], dict]  # stored account info
    outcomes: dict[AccountKey, AccountOutcome] = field(default_factory=dict)


def _check_platforms(platforms: Sequence[str] | None) -> list[str]:
    platforms = list(platforms) if platforms else list(PLATFORM_IDS)
    for p in platforms:
        if p not in SPECS:
            raise RefreshError(f"unknown platform {p!r}; expected one of {', '.join(PLATFORM_IDS)}")
    return platforms


def _check_stores(store: SpendStore, store_ids: Sequence[str] | None) -> list[str]:
    """The stores to refresh (every store when None); interrupted runs are marked first."""
    try:
        store.mark_interrupted_runs()
        known = {s["store_id"] for s in store.stores()}
    except DatabaseBusy as exc:
        raise RefreshError(str(exc)) from None
    if store_ids is None:
        return sorted(known)
    for sid in store_ids:
        if sid not in known:
            raise RefreshError(f"unknown store {sid!r}; see `python cli.py accounts list`")
    return list(store_ids)


def _platform_configs(
    settings: Settings, groups: Mapping[AccountKey, list[str]]
) -> dict[tuple[str, bool], PlatformConfig]:
    """Each platform's configuration, live or demo (the built-in sandbox), as its accounts need."""
    sandbox_url = None
    if any(demo for (_, _, demo) in groups):
        from .sandbox_runtime import sandbox_url as _sandbox_url

        sandbox_url = _sandbox_url()
    configs: dict[tuple[str, bool], PlatformConfig] = {}
    for p, _a, demo in groups:
        if (p, demo) not in configs:
            configs[(p, demo)] = platform_config(settings, p, demo=demo, sandbox_url=sandbox_url)
    return configs


def _platform_runs(
    store: SpendStore, configs: Mapping[tuple[str, bool], PlatformConfig], client: httpx.AsyncClient, settings: Settings
) -> dict[tuple[str, bool], _PlatformRun]:
    """A fetcher, API handle and budget for every usable configuration; one whose credentials
    cannot form an auth object keeps the reason in ``cfg.error``."""
    token_cache = TokenCache()
    pending_jobs = store.pending_jobs(sorted({cfg.platform for cfg in configs.values() if cfg.usable}))
    runs: dict[tuple[str, bool], _PlatformRun] = {}
    for key, cfg in configs.items():
        if not cfg.usable:
            continue
        try:
            runs[key] = _PlatformRun(cfg, client, store, token_cache, pending_jobs[cfg.platform])
        except FetchError as exc:
            cfg.error = exc.message
            continue
        if cfg.mode == "live" and getattr(settings, "vault", None) is not None and "vault" in cfg.sources.values():
            runs[key].vault_writeback = getattr(settings.vault, "write_back", None)
    return runs


def _warm_up(
    runs: Mapping[tuple[str, bool], _PlatformRun],
    usable: Sequence[AccountKey],
    plan: Mapping[tuple[str, str], Sequence[dt.date]],
) -> None:
    """Start what a platform's first call would wait on (``PlatformSpec.warm_up``: Microsoft's SDK
    worker), once the plan has days to fetch for one of its accounts."""
    for p, demo in sorted({(p, demo) for p, a, demo in usable if SPECS[p].warm_up and plan.get((p, a))}):
        prun = runs[(p, demo)]
        prun.fetcher.warm_up(prun.api)


async def _run_accounts(run: _Run) -> str | None:
    """Every account concurrently, committing ready batches meanwhile; the run's error, if any."""
    writer, error = run.writer, None
    stop_ticker = asyncio.Event()

    async def one_account(key: AccountKey) -> None:
        with count_requests() as tally:  # this account's requests, whatever runs beside it
            await _refresh_account(run, key, tally)

    ticker = asyncio.create_task(_flush_periodically(writer, stop_ticker))
    try:
        results = await asyncio.gather(*(one_account(k) for k in run.groups), return_exceptions=True)
        stop_ticker.set()
        await ticker
        for r in results:
            if isinstance(r, DatabaseBusy):
                error = str(r)
            elif isinstance(r, Exception):
                log.error("refresh task failed: %s", redact(repr(r)))
                error = error or f"internal error: {redact(type(r).__name__)}"
            elif isinstance(r, BaseException):
                raise r
        await writer.flush()
    except DatabaseBusy as exc:
        error = str(exc)
    finally:
        stop_ticker.set()
        await ticker
    return error


async def _flush_periodically(writer: BatchWriter, stop: asyncio.Event) -> None:
    """Commit what is ready even while every task only waits (a report being polled), so a run
    killed mid-way leaves its report ids in the database for the next run to resume."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), writer.flush_every)
        except TimeoutError:
            try:
                await writer.flush()
            except Exception:  # recorded in writer.error; the final flush reports it
                return


async def _refresh_account(run: _Run, key: AccountKey, tally: list[int]) -> None:
    """One account: its windows planned, its info known, every window fetched and queued for
    writing; failures recorded per window, a platform-wide one stops the platform's other accounts."""
    p, account_id, demo = key
    sids = tuple(run.groups[key])
    out = run.outcomes[key] = AccountOutcome(p, account_id, sids)
    cfg = run.configs[(p, demo)]
    if (p, demo) not in run.runs:
        out.status = "failed" if cfg.error else "not_configured"
        out.error = cfg.error or f"no credentials for {SPECS[p].name} (missing {', '.join(cfg.missing)})"
        run.emit(Progress(sids, p, account_id, "skipped", message=out.error))
        return
    prun = run.runs[(p, demo)]
    # days older than the platform serves are failed without asking (a request would be refused)
    oldest = oldest_servable(p)
    planned = plan_account(run.plan.get((p, account_id), []), prun.fetcher.max_days, oldest)
    windows = planned.fetch
    out.windows = len(windows) + len(planned.too_old)
    run.emit(Progress(sids, p, account_id, "start", 0, out.windows))
    started = time.monotonic()
    if planned.too_old:
        too_old = FetchError(
            "request",
            f"{SPECS[p].name} serves only the last {prun.fetcher.history_days} days; "
            f"the days before {oldest} cannot be fetched",
        )
        out.status, out.error, out.windows_failed = "failed", too_old.message, len(planned.too_old)
        await _fail_windows(run, key, too_old, planned.too_old)
    if not windows:
        out.seconds = time.monotonic() - started
        phase = "done" if out.status == "ok" else "failed"
        run.emit(Progress(sids, p, account_id, phase, 0, out.windows, out.error or "up to date"))
        return
    try:
        if prun.fatal:
            raise prun.fatal
        info = _stored_info(account_id, run.known_infos.get((p, account_id)))
        lookup: asyncio.Task | None = None
        if info is None and SPECS[p].data_without_info:
            # the spend request needs only the id: the lookup runs beside the windows, in the
            # budget's gaps, and each window waits for it only before it is stored
            lookup = background(_counted_info(prun, account_id, run.writer))
        elif info is None and not SPECS[p].info_in_data:
            info = await _account_info(prun, account_id, run.writer)
        # else: no fresh info, and the platform's spend answer carries it: the first window
        # brings it (one request fewer per account)
    except FetchError as exc:
        if exc.platform_wide and prun.fatal is None:
            prun.fatal = exc
        out.status, out.error = "failed", exc.message
        out.windows_failed += len(windows)
        await _fail_windows(run, key, exc, windows)
        out.requests, out.seconds = tally[0], time.monotonic() - started
        run.emit(Progress(sids, p, account_id, "failed", 0, len(windows), exc.message))
        return
    # the account lookup's requests go on the first window's result
    counts = _WindowCounts(total=len(windows), lookup_requests=tally[0])
    rest = windows
    if lookup is not None:
        try:
            await asyncio.gather(*(_refresh_window(run, key, prun, lookup, w, counts) for w in windows))
        finally:
            if not lookup.done():
                lookup.cancel()
            with contextlib.suppress(FetchError, asyncio.CancelledError):
                await lookup  # its failure, if any, failed every window already
        rest = []
    elif info is None:  # info_in_data: the first window brings the info the others are stored with
        info, failure = await _refresh_window(run, key, prun, None, windows[0], counts)
        rest = windows[1:]
        if info is None:  # it failed: the others cannot be stored in a known currency
            assert failure is not None
            out.windows_failed += len(rest)
            await _fail_windows(run, key, failure, rest)
            rest = []
    await asyncio.gather(*(_refresh_window(run, key, prun, info, w, counts) for w in rest))
    out.requests, out.seconds = tally[0], time.monotonic() - started
    phase = "done" if out.status == "ok" else "failed"
    run.emit(Progress(sids, p, account_id, phase, counts.done, len(windows), out.error or ""))


@dataclass
class _WindowCounts:
    """One account's windows as they finish."""

    total: int
    done: int = 0
    lookup_requests: int = 0  # the account lookup's requests, recorded with the first window to finish
    lookup_counted: bool = False  # a lookup run beside the windows: its requests are in lookup_requests


async def _fail_windows(
    run: _Run, key: AccountKey, exc: FetchError, windows: Sequence[tuple[dt.date, dt.date]]
) -> None:
    """Record windows that were not fetched as failed, with the reason (their stored days stay)."""
    p, account_id, _demo = key
    for ws, we in windows:
        now_ = clock.now()
        await run.writer.add(
            None,
            WindowFailure(p, account_id, ws, we, exc.message, run.run_id, now_),
            dict(
                run_id=run.run_id,
                platform=p,
                account_id=account_id,
                window_start=ws,
                window_end=we,
                status="failed",
                error=exc.message,
                finished_at=now_,
            ),
        )


async def _refresh_window(
    run: _Run,
    key: AccountKey,
    prun: _PlatformRun,
    info: AccountInfo | asyncio.Task | None,
    window: tuple[dt.date, dt.date],
    counts: _WindowCounts,
) -> tuple[AccountInfo | None, FetchError | None]:
    """One window of one account: fetched, then queued as a write or as a failure. ``info`` None:
    the platform's spend answer carries the account's info (``info_in_data``), saved from it; a
    task: the account lookup running beside the windows (``data_without_info``), awaited once the
    window's days are in. Returns the info and the failure, if any."""
    p, account_id, _demo = key
    out, (ws, we) = run.outcomes[key], window
    w0 = time.monotonic()
    failure: FetchError | None = None
    with count_requests() as wtally:
        try:
            if prun.fatal:
                raise prun.fatal
            if info is None:
                info, amounts = await fetch_window_and_info(prun.fetcher, prun.api, account_id, ws, we)
                _save_info(prun, account_id, info, run.writer)
            elif isinstance(info, asyncio.Task):
                lookup, info = info, None
                amounts = await fetch_window(prun.fetcher, prun.api, AccountInfo(account_id, "", ""), ws, we)
                info, lookup_requests = await asyncio.shield(lookup)
                if not counts.lookup_counted:
                    counts.lookup_counted = True
                    counts.lookup_requests += lookup_requests
            else:
                amounts = await fetch_window(prun.fetcher, prun.api, info, ws, we)
        except FetchError as exc:
            amounts, failure = None, exc
    now_ = clock.now()
    result = dict(
        run_id=run.run_id,
        platform=p,
        account_id=account_id,
        window_start=ws,
        window_end=we,
        duration_ms=int((time.monotonic() - w0) * 1000),
        requests=wtally[0] + counts.lookup_requests,
        finished_at=now_,
    )
    counts.lookup_requests = 0
    if failure is not None:
        if failure.platform_wide and prun.fatal is None:
            prun.fatal = failure
        out.windows_failed += 1
        out.status = "failed"
        out.error = out.error or failure.message
        await run.writer.add(
            None,
            WindowFailure(p, account_id, ws, we, failure.message, run.run_id, now_),
            {**result, "status": "failed", "error": failure.message},
        )
    else:
        assert amounts is not None and info is not None
        out.days_fetched += len(amounts)
        await run.writer.add(
            WindowWrite(p, account_id, ws, we, amounts, info.currency, run.run_id, now_),
            None,
            {**result, "status": "ok", "rows": len(amounts)},
        )
    counts.done += 1
    run.emit(Progress(tuple(run.groups[key]), p, account_id, "window", counts.done, counts.total))
    return info, failure


_EXECUTOR_LOOPS: weakref.WeakSet = weakref.WeakSet()


def _ensure_executor() -> None:
    """Blocking work (DuckDB commits, the Microsoft SDK) runs in threads: give the run's loop
    enough of them that a few slow SDK calls cannot hold up the writer (asyncio's default is
    min(32, cores + 4), 6 on a 2-core machine)."""
    loop = asyncio.get_running_loop()
    if loop not in _EXECUTOR_LOOPS:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="adspend-refresh"))
        _EXECUTOR_LOOPS.add(loop)


def _stored_info(account_id: str, known: dict | None) -> AccountInfo | None:
    """The stored info (prefetched for every account in one query) while it is fresh."""
    if known and known["updated_at"] and dt.datetime.now(dt.UTC) - known["updated_at"] < ACCOUNT_INFO_MAX_AGE:
        return AccountInfo(account_id, known["currency"], known["timezone"], known["name"] or "")
    return None


async def _account_info(run: _PlatformRun, account_id: str, writer: BatchWriter) -> AccountInfo:
    """Ask the platform, and save the answer with the next batch of windows."""
    info = await run.fetcher.account_info(run.api, account_id)
    _save_info(run, account_id, info, writer)
    return info


async def _counted_info(run: _PlatformRun, account_id: str, writer: BatchWriter) -> tuple[AccountInfo, int]:
    """``_account_info`` and the requests it took (recorded with the first window stored)."""
    with count_requests() as tally:
        info = await _account_info(run, account_id, writer)
    return info, tally[0]


def _save_info(run: _PlatformRun, account_id: str, info: AccountInfo, writer: BatchWriter) -> None:
    """Save what the platform said about the account with the next batch of windows."""
    writer.add_info(
        dict(
            platform=run.cfg.platform,
            account_id=account_id,
            name=info.name,
            currency=info.currency,
            timezone=info.timezone,
            day_basis=run.fetcher.day_basis,
        )
    )


def _run_status(platform_outcomes: Sequence[PlatformOutcome], error: str | None) -> str:
    statuses = {o.status for o in platform_outcomes}
    if error:
        return "failed"
    if statuses <= {"ok", "not_configured"}:
        return "ok"
    if statuses <= {"failed", "not_configured"}:
        return "failed"
    return "partial"


def _per_store_platform(outcomes, groups, store_ids, platforms) -> list[PlatformOutcome]:
    by: dict[tuple[str, str], list[AccountOutcome]] = {}
    for key, out in outcomes.items():
        for sid in groups[key]:
            by.setdefault((sid, key[0]), []).append(out)
    result = []
    for sid in store_ids:
        for p in platforms:
            accs = by.get((sid, p))
            if not accs:
                continue
            st = {a.status for a in accs}
            if st == {"not_configured"}:
                status = "not_configured"
            elif st <= {"ok"}:
                status = "ok"
            elif "ok" in st:
                status = "partial"
            else:
                status = "failed"
            errors = sorted({a.error for a in accs if a.error and a.status != "ok"})
            result.append(
                PlatformOutcome(
                    sid, p, status, "; ".join(errors) or None, accs, max((a.seconds for a in accs), default=0.0)
                )
            )
    return result


def refresh(
    store: SpendStore,
    store_ids: Sequence[str] | None,
    start: dt.date,
    end: dt.date,
    platforms: Sequence[str] | None = None,
    **kwargs,
) -> RefreshOutcome:
    """Synchronous wrapper (the CLI, the dashboard's button)."""
    return asyncio.run(refresh_async(store, store_ids, start, end, platforms, **kwargs))


def refresh_recent(
    store: SpendStore, store_ids: Sequence[str] | None, platforms: Sequence[str] | None = None, **kwargs
) -> RefreshOutcome:
    """The daily job without dates (``cli.py refresh --recent``): see ``service.freshness``."""
    from .freshness import recent_period

    start, end = recent_period(platforms=list(platforms) if platforms else PLATFORM_IDS)
    return refresh(store, store_ids, start, end, platforms, recent=True, **kwargs)
