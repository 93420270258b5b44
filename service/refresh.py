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
import datetime as dt
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from fetchers import clock, get_fetcher
from fetchers.base import AccountInfo, FetchError
from fetchers.core import (
    PlatformApi,
    RateBudget,
    ReportPolicy,
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

    def __init__(self, cfg: PlatformConfig, client: httpx.AsyncClient, store: SpendStore, token_cache: TokenCache):
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
            jobs=store.job_store(cfg.platform, buffered=True),
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
    platforms = list(platforms) if platforms else list(PLATFORM_IDS)
    for p in platforms:
        if p not in SPECS:
            raise RefreshError(f"unknown platform {p!r}; expected one of {', '.join(PLATFORM_IDS)}")
    settings = settings or load_settings()
    try:
        store.mark_interrupted_runs()
        known = {s["store_id"] for s in store.stores()}
    except DatabaseBusy as exc:
        raise RefreshError(str(exc)) from None
    if store_ids is None:
        store_ids = sorted(known)
    for sid in store_ids:
        if sid not in known:
            raise RefreshError(f"unknown store {sid!r}; see `python cli.py accounts list`")
    links = store.accounts(store_ids, platforms)
    run_id = _run_id()
    store.start_run(run_id, trigger=trigger, start=start, end=end, stores=list(store_ids), platforms=platforms)
    lease = _Lease(store, run_id, task=asyncio.current_task()).start()
    emit = progress or (lambda _e: None)

    # one task per unique (platform, account, endpoint): an account linked to two stores is fetched once
    groups: dict[tuple[str, str, bool], list[str]] = {}
    for link in links:
        groups.setdefault((link["platform"], link["account_id"], bool(link["is_demo"])), []).append(link["store_id"])

    sandbox_url = None
    if any(demo for (_, _, demo) in groups):
        from .sandbox_runtime import sandbox_url as _sandbox_url

        sandbox_url = _sandbox_url()
    configs: dict[tuple[str, bool], PlatformConfig] = {}
    for p, _a, demo in groups:
        if (p, demo) not in configs:
            configs[(p, demo)] = platform_config(settings, p, demo=demo, sandbox_url=sandbox_url)

    token_cache = TokenCache()
    outcomes: dict[tuple[str, str, bool], AccountOutcome] = {}
    writer = BatchWriter(store)
    writer.lease = lease
    # one client for every platform and store, connections kept alive, one pool per platform
    # (see fetchers.transport.PoolPerPlatform)
    transport = transport or PoolPerPlatform()
    async with httpx.AsyncClient(
        transport=transport, follow_redirects=False, headers={"User-Agent": "AdSpendHub/1.0"}
    ) as client:
        runs: dict[tuple[str, bool], _PlatformRun] = {}
        for key, cfg in configs.items():
            if cfg.usable:
                try:
                    runs[key] = _PlatformRun(cfg, client, store, token_cache)
                    if (
                        cfg.mode == "live"
                        and getattr(settings, "vault", None) is not None
                        and "vault" in cfg.sources.values()
                    ):
                        runs[key].vault_writeback = getattr(settings.vault, "write_back", None)
                except FetchError as exc:  # e.g. credentials that cannot form an auth object
                    cfg.error = exc.message

        writer.job_stores = [r.api.jobs for r in runs.values() if hasattr(r.api.jobs, "take")]
        usable = [(p, a, demo) for (p, a, demo) in groups if (p, demo) in runs]
        lookbacks = [(p, a, runs[(p, demo)].fetcher.lookback_days) for (p, a, demo) in usable]

        def prefetch():  # one connection: what to fetch, and every account's stored info
            if recent:
                from .freshness import recent_days

                return (
                    recent_days(store, [(p, a) for p, a, _ in lookbacks], now=now),
                    store.account_infos([(p, a) for p, a, _ in usable]),
                )
            return (
                store.days_to_fetch(lookbacks, start, end, now or clock.now(), full),
                store.account_infos([(p, a) for p, a, _ in usable]),
            )

        plan, known_infos = await asyncio.to_thread(prefetch) if usable else ({}, {})

        async def one_account(key: tuple[str, str, bool]) -> None:
            with count_requests() as tally:  # this account's requests, whatever runs beside it
                await account_task(key, tally)

        async def account_task(key: tuple[str, str, bool], tally: list[int]) -> None:
            p, account_id, demo = key
            sids = tuple(groups[key])
            cfg = configs[(p, demo)]
            out = outcomes[key] = AccountOutcome(p, account_id, sids)
            if (p, demo) not in runs:
                out.status = "failed" if cfg.error else "not_configured"
                out.error = cfg.error or f"no credentials for {SPECS[p].name} (missing {', '.join(cfg.missing)})"
                emit(Progress(sids, p, account_id, "skipped", message=out.error))
                return
            run = runs[(p, demo)]
            days = plan.get((p, account_id), [])
            # days older than the platform serves are failed without asking (a request would be refused)
            oldest = oldest_servable(p)
            planned = plan_account(days, run.fetcher.max_days, oldest)
            windows, old_windows = planned.fetch, planned.too_old
            out.windows = len(windows) + len(old_windows)
            emit(Progress(sids, p, account_id, "start", 0, out.windows))
            started = time.monotonic()
            info: AccountInfo | None = None
            done = 0

            async def fail_all(exc: FetchError, remaining) -> None:
                for ws, we in remaining:
                    now_ = clock.now()
                    await writer.add(
                        None,
                        WindowFailure(p, account_id, ws, we, exc.message, run_id, now_),
                        dict(
                            run_id=run_id,
                            platform=p,
                            account_id=account_id,
                            window_start=ws,
                            window_end=we,
                            status="failed",
                            error=exc.message,
                            finished_at=now_,
                        ),
                    )

            if old_windows:
                too_old_error = FetchError(
                    "request",
                    f"{SPECS[p].name} serves only the last "
                    f"{run.fetcher.history_days} days; the days before {oldest} "
                    "cannot be fetched",
                )
                out.status, out.error, out.windows_failed = "failed", too_old_error.message, len(old_windows)
                await fail_all(too_old_error, old_windows)
            if not windows:
                out.seconds = time.monotonic() - started
                emit(
                    Progress(
                        sids,
                        p,
                        account_id,
                        "done" if out.status == "ok" else "failed",
                        0,
                        out.windows,
                        out.error or "up to date",
                    )
                )
                return
            try:
                if run.fatal:
                    raise run.fatal
                info = _stored_info(account_id, known_infos.get((p, account_id)))
                if info is None and not SPECS[p].info_in_data:
                    info = await _account_info(run, account_id, None, writer)
                # else: no fresh info, and the platform's spend answer carries it: the first
                # window below fetches it (one request fewer per account)
            except FetchError as exc:
                if exc.platform_wide and run.fatal is None:
                    run.fatal = exc
                out.status, out.error = "failed", exc.message
                out.windows_failed += len(windows)
                await fail_all(exc, windows)
                out.requests = tally[0]
                out.seconds = time.monotonic() - started
                emit(Progress(sids, p, account_id, "failed", 0, len(windows), exc.message))
                return

            info_requests = [tally[0]]  # the account lookup's requests go on the first window's result

            async def one_window(ws: dt.date, we: dt.date) -> FetchError | None:
                nonlocal done, info
                w0 = time.monotonic()
                failure: FetchError | None = None
                with count_requests() as wtally:
                    try:
                        if run.fatal:
                            raise run.fatal
                        if info is None:  # the first window of an account whose answer carries its info
                            info, amounts = await fetch_window_and_info(run.fetcher, run.api, account_id, ws, we)
                            _save_info(run, account_id, info, writer)
                        else:
                            amounts = await fetch_window(run.fetcher, run.api, info, ws, we)
                    except FetchError as exc:
                        amounts, failure = None, exc
                requests = wtally[0] + (info_requests.pop() if info_requests else 0)
                now_ = clock.now()
                result = dict(
                    run_id=run_id,
                    platform=p,
                    account_id=account_id,
                    window_start=ws,
                    window_end=we,
                    duration_ms=int((time.monotonic() - w0) * 1000),
                    requests=requests,
                    finished_at=now_,
                )
                if amounts is None:
                    assert failure is not None
                    if failure.platform_wide and run.fatal is None:
                        run.fatal = failure
                    out.windows_failed += 1
                    out.status = "failed"
                    out.error = out.error or failure.message
                    await writer.add(
                        None,
                        WindowFailure(p, account_id, ws, we, failure.message, run_id, now_),
                        {**result, "status": "failed", "error": failure.message},
                    )
                else:
                    out.days_fetched += len(amounts)
                    await writer.add(
                        WindowWrite(p, account_id, ws, we, amounts, info.currency, run_id, now_),
                        None,
                        {**result, "status": "ok", "rows": len(amounts)},
                    )
                done += 1
                emit(Progress(sids, p, account_id, "window", done, len(windows)))
                return failure

            rest = windows
            if info is None:  # info_in_data: the first window brings the info the others are stored with
                first_failure = await one_window(*windows[0])
                rest = windows[1:]
                if info is None:  # that window failed: the others cannot be stored in a known currency
                    assert first_failure is not None
                    out.windows_failed += len(rest)
                    await fail_all(first_failure, rest)
                    rest = []
            await asyncio.gather(*(one_window(ws, we) for ws, we in rest))
            out.requests = tally[0]
            out.seconds = time.monotonic() - started
            emit(
                Progress(
                    sids, p, account_id, "done" if out.status == "ok" else "failed", done, len(windows), out.error or ""
                )
            )

        error = None
        stop_ticker = asyncio.Event()

        async def flush_periodically() -> None:
            """Commit what is ready even while every task only waits (a report being polled), so
            a run killed mid-way leaves its report ids in the database for the next run to resume."""
            while not stop_ticker.is_set():
                try:
                    await asyncio.wait_for(stop_ticker.wait(), writer.flush_every)
                except TimeoutError:
                    try:
                        await writer.flush()
                    except Exception:  # recorded in writer.error; the final flush reports it
                        return

        ticker = asyncio.create_task(flush_periodically())
        try:
            results = await asyncio.gather(*(one_account(k) for k in groups), return_exceptions=True)
            stop_ticker.set()
            await ticker
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, (DatabaseBusy,)):
                    if isinstance(r, Exception):
                        log.error("refresh task failed: %s", redact(repr(r)))
                        error = error or f"internal error: {redact(type(r).__name__)}"
                    else:
                        raise r
                elif isinstance(r, DatabaseBusy):
                    error = str(r)
            await writer.flush()
        except DatabaseBusy as exc:
            error = str(exc)
        finally:
            stop_ticker.set()
            await ticker
        requests = sum(r.api.request_count for r in runs.values())
        throttled = sum(r.api.throttled_count for r in runs.values())
        writer.close()

    for key in groups:  # tasks that died before recording anything
        if key not in outcomes:
            outcomes[key] = AccountOutcome(key[0], key[1], tuple(groups[key]), "failed", error or "internal error")
        elif error and outcomes[key].status == "ok" and writer.error is not None:
            outcomes[key].status, outcomes[key].error = "failed", error

    platform_outcomes = _per_store_platform(outcomes, groups, store_ids, platforms)
    statuses = {o.status for o in platform_outcomes}
    if error:
        status = "failed"
    elif statuses <= {"ok", "not_configured"}:
        status = "ok"
    elif statuses <= {"failed", "not_configured"}:
        status = "failed"
    else:
        status = "partial"
    lease.stop()
    try:
        store.finish_run(run_id, status, requests, error)
    except DatabaseBusy as exc:
        error = error or str(exc)
    return RefreshOutcome(
        run_id, status, start, end, platform_outcomes, requests, throttled, time.monotonic() - t0, error
    )


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


async def _account_info(run: _PlatformRun, account_id: str, known: dict | None, writer: BatchWriter) -> AccountInfo:
    """The stored info while it is fresh; otherwise ask the platform and save the answer with the
    next batch of windows."""
    stored = _stored_info(account_id, known)
    if stored is not None:
        return stored
    info = await run.fetcher.account_info(run.api, account_id)
    _save_info(run, account_id, info, writer)
    return info


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
