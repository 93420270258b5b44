"""Refresh bench: N stores x all nine platforms over a period, against the sandbox.

    python bench/refresh.py                      # N = 200, 90 days, naive baseline at N = 10
    python bench/refresh.py --stores 20 --naive-stores 2 --days 30

The sandbox runs as its own process (``python cli.py sandbox``) with per-platform latency
(50-100 ms a request by default), per-platform rate limits it enforces with each platform's own
throttle response, and report jobs that are done ``--report-seconds`` after their submit (2 s, as
in issue 19's emulator; polled any number of times). The product refreshes against it
through its ordinary configuration (``<P>_API_BASE_URL``, ``<P>_TOKEN_URL``, credentials and
``<P>_REQUESTS_PER_MINUTE``), as a real deployment would: not as demo stores.

Each refresh runs in a child process so its peak memory is its own. Printed: wall time, requests
made (the sandbox's count) against the minimum, throttle responses, the lower bound and the ratio;
then the same refresh with one request in flight at a time (the naive baseline), run at a smaller
N and scaled linearly (one request at a time is linear in N by construction).

Lower bound, per platform p (see bench/RESULTS.md):
    LB_p = max(R_p / rate_p, J_p)
R_p is the minimum number of budgeted requests (one account lookup per account, none where the
spend answer carries the account's info (the registry's ``info_in_data``: Google, Meta), plus, per
window, the requests the platform's protocol needs: pages, or submit + one poll for a report
job; token grants and pre-signed downloads are not budgeted), rate_p the configured requests a
second, and J_p one account's critical path: its chain of dependent requests at the fastest
latency (the lookup only where the data requests wait for it) plus, for report jobs, the
report's own ``--report-seconds``. These are the platforms' costs, not the product's policy:
polling too early or too late is the product's to pay. The whole refresh's bound is the
largest LB_p.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, git_rev, machine, peak_rss_mb  # noqa: E402

ALL_PLATFORMS = ("meta", "google", "tiktok", "linkedin", "amazon", "microsoft", "snapchat", "pinterest", "reddit")
PLATFORMS = ALL_PLATFORMS

# Requests a minute per platform for the bench (<P>_REQUESTS_PER_MINUTE), and the sandbox's
# enforced limit (the same figure: the product must pace itself to the platform's own limit).
# Chosen so every platform needs roughly 40-55 s of budget at N = 200 over 90 days: a run takes
# about a minute. See bench/RESULTS.md for how they compare with the documented limits.
BENCH_RPM = {
    "meta": 600,
    "google": 600,
    "tiktok": 1200,
    "linkedin": 1200,
    "amazon": 9000,
    "microsoft": 3000,
    "snapchat": 1200,
    "pinterest": 1200,
    "reddit": 1200,
}


def account_ids(i: int) -> dict[str, str]:
    """Store i's account on each platform, in each platform's real id form (all USD)."""
    return {
        "meta": f"20{i:08d}",
        "google": f"55{i:08d}",
        "tiktok": f"71{i:014d}",
        "linkedin": f"urn:li:sponsoredAccount:6{i:06d}",
        "amazon": f"30{i:08d}",
        "microsoft": f"42{i:06d}",
        "snapchat": f"9e2a6c1e-0000-4000-8000-{i:012d}",
        "pinterest": f"54{i:010d}",
        "reddit": f"a2_bench{i:05d}",
    }


# --- the minimum --------------------------------------------------------------------------------


def minimum_requests(days: list[dt.date], today: dt.date, n: int) -> dict[str, int]:
    """Budgeted requests that N never-fetched stores need per platform over these days (a report
    job: its submit and one poll, the one that finds it done).

    Days older than a platform serves (``history_days``) need no request: they cannot be
    fetched (the refresh marks them failed without asking). Amazon profiles without Sponsored
    Brands get one refused create (no polls) for it, as the sandbox's profiles say."""
    from fetchers import get_fetcher
    from fetchers.core import contiguous_ranges, plan_windows
    from fetchers.specs import SPECS
    from sandbox.amazon import ad_products

    out = {p: 0 for p in PLATFORMS}
    for p in PLATFORMS:
        f = get_fetcher(p)
        servable = [d for d in days if not f.history_days or d >= today - dt.timedelta(days=f.history_days)]
        windows = [w for r in contiguous_ranges(servable) for w in plan_windows(r[0], r[1], f.max_days)]
        for i in range(n):
            account = f.normalize_account_id(account_ids(i)[p])
            k = 0 if SPECS[p].info_in_data else 1  # the account lookup, unless the data carries the info
            for ws, we in windows:
                span = (we - ws).days + 1
                if p == "meta":
                    k += math.ceil(span / 100)  # insights pages of 100 rows
                elif p == "amazon":  # SP, SB, SD: submit + poll each
                    k += 2 * 2 + (2 if "sb" in ad_products(account) else 1)
                elif p == "microsoft":
                    k += 2  # SubmitGenerateReport + PollGenerateReport
                elif p == "pinterest":
                    from fetchers.pinterest import uses_async_report

                    k += 2 if uses_async_report(ws, today) else 1
                else:
                    k += 1  # one request (one page) per window
            out[p] += k
    return out


def critical_path(p: str, report_seconds: float, rtt: float, days: list[dt.date], today: dt.date) -> float:
    """One account's chain of dependent steps at the fastest latency: the account lookup where the
    data requests wait for it, then its windows in parallel; a report job's submit, the report's
    own time, the poll that finds it done and the download."""
    from fetchers.specs import SPECS

    spec = SPECS[p]
    lookup = 0 if spec.info_in_data or spec.data_without_info else 1
    job = p in ("amazon", "microsoft") or (p == "pinterest" and _pinterest_async(days, today))
    if not job:
        return (lookup + 1) * rtt
    return (lookup + 3) * rtt + report_seconds


def _pinterest_async(days, today) -> bool:
    from fetchers.pinterest import uses_async_report

    return bool(days) and uses_async_report(min(days), today)


# --- the sandbox process ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class SandboxProcess:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), "sandbox", "--port", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http_json(self.url + "/_sandbox/health")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the sandbox did not start within 30 s")

    def configure(
        self, latency: tuple[int, int], report_seconds: float, rpm: dict[str, float], bucket_seconds: float
    ) -> None:
        http_json(self.url + "/_sandbox/reset", {})
        http_json(
            self.url + "/_sandbox/config",
            {
                "latency_ms": {p: list(latency) for p in PLATFORMS},
                "rate_limit_rpm": rpm,
                "rate_limit_bucket_seconds": bucket_seconds,
                "report_seconds": report_seconds,
            },
        )

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict:
        return http_json(self.url + "/_sandbox/stats")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- one refresh, in a child process -------------------------------------------------------------------


def child(args) -> None:
    """Create the stores, refresh them all, print one JSON line with what happened."""
    from sandbox.credentials import sandbox_env

    env = sandbox_env(args.sandbox)
    os.environ.update(env)
    for p, rpm in json.loads(args.rpm).items():
        from fetchers.specs import SPECS

        os.environ[SPECS[p].rpm_var] = str(rpm)
    os.environ["ADSPEND_NO_DOTENV"] = "1"
    os.environ["ADSPEND_TOKEN_CACHE"] = str(Path(args.db).with_suffix(".tokens.json"))
    from service.refresh import refresh_async
    from storage.db import SpendStore

    store = SpendStore(args.db)
    with store.transaction() as con:
        store.upsert_stores(con, [(f"b{i:04d}", f"Bench store {i}", "USD", False) for i in range(args.stores)])
        store.link_accounts(
            con,
            [
                (f"b{i:04d}", p, a, None)
                for i in range(args.stores)
                for p, a in _normalised(account_ids(i)).items()
                if p in args.platforms.split(",")
            ],
        )
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    if args.naive:
        _one_request_at_a_time()
    transport = None  # the product's own: one client, a keep-alive pool per platform
    if args.naive:
        from service.refresh import _PoolPerPlatform

        transport = _SerialTransport(_PoolPerPlatform())
    t0, c0 = time.monotonic(), time.process_time()
    outcome = asyncio.run(refresh_async(store, None, start, end, trigger="bench", transport=transport))
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    statuses: dict[str, int] = {}
    for po in outcome.platforms:
        statuses[po.status] = statuses.get(po.status, 0) + 1
    errors = sorted({po.error for po in outcome.platforms if po.error})[:5]
    rows = store.query("SELECT count(*) FROM daily_spend")[0][0]
    per_platform: dict[str, float] = {}
    for po in outcome.platforms:
        per_platform[po.platform] = max(per_platform.get(po.platform, 0.0), po.seconds)
    print(
        json.dumps(
            {
                "wall": wall,
                "status": outcome.status,
                "statuses": statuses,
                "errors": errors,
                "client_requests": outcome.requests,
                "client_throttled": outcome.throttled,
                "rows": rows,
                "peak_rss_mb": peak_rss_mb(),
                "cpu": cpu,
                **dict(zip(("worker_peak_rss_mb", "worker_cpu"), _sdk_worker_stats(), strict=True)),
                "platform_seconds": per_platform,
            }
        ),
        flush=True,
    )


def _sdk_worker_stats() -> tuple[float, float]:
    """Peak memory (MB) and CPU seconds of the Microsoft SDK's worker processes (0 if none ran)."""
    from fetchers import microsoft as ms

    peak = cpu = 0.0
    for pool in ms._POOLS.values():
        proc = getattr(pool, "_proc", None)
        if proc is None or proc.poll() is not None:
            continue
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        peak = max(peak, hwm / 1024)
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return peak, cpu


def _normalised(ids: dict[str, str]) -> dict[str, str]:
    from fetchers import get_fetcher

    return {p: get_fetcher(p).normalize_account_id(a) for p, a in ids.items()}


class _SerialTransport(httpx.AsyncBaseTransport):
    """Wraps a transport so that one HTTP request is in flight at a time (the naive baseline)."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self._inner = inner

    async def handle_async_request(self, request):
        async with _SERIAL_LOCK.get():
            resp = await self._inner.handle_async_request(request)
            await resp.aread()
            return resp

    async def aclose(self):
        await self._inner.aclose()


def _one_request_at_a_time() -> None:
    """Microsoft's SDK calls go through PlatformApi.to_thread, not httpx: serialise those too,
    with the same lock the transport takes (installed lazily in the running loop)."""
    from fetchers import core

    original = core.PlatformApi.to_thread

    async def to_thread(self, fn, *args):
        async with _SERIAL_LOCK.get():
            return await original(self, fn, *args)

    core.PlatformApi.to_thread = to_thread


class _LazyLock:
    def __init__(self):
        self._lock = None

    def get(self):
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock


_SERIAL_LOCK = _LazyLock()


def run_child(
    sb: SandboxProcess, stores: int, start: dt.date, end: dt.date, rpm: dict, naive: bool, workdir: Path
) -> dict:
    db = workdir / f"bench-{'naive' if naive else 'fast'}-{stores}.duckdb"
    for f in (db, db.with_suffix(".tokens.json")):
        if f.exists():
            f.unlink()
    before, sb_cpu = sb.stats(), sb.cpu_seconds()
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--sandbox",
        sb.url,
        "--db",
        str(db),
        "--stores",
        str(stores),
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--rpm",
        json.dumps(rpm),
        "--platforms",
        ",".join(PLATFORMS),
    ]
    if naive:
        cmd.append("--naive")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise RuntimeError(f"the refresh child failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    after = sb.stats()
    result["sandbox_cpu"] = sb.cpu_seconds() - sb_cpu
    result["requests"] = {p: after["requests"].get(p, 0) - before["requests"].get(p, 0) for p in PLATFORMS}
    result["throttled"] = {p: after["throttled"].get(p, 0) - before["throttled"].get(p, 0) for p in PLATFORMS}
    return result


def main() -> None:
    global PLATFORMS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--naive-stores", type=int, default=10, help="N for the one-at-a-time run (0: skip it)")
    ap.add_argument("--latency", type=int, nargs=2, default=(50, 100), metavar=("LO_MS", "HI_MS"))
    ap.add_argument(
        "--report-seconds",
        type=float,
        default=2.0,
        help="a report job is done this long after its submit (default 2, as in issue 19's emulator)",
    )
    ap.add_argument(
        "--bucket-seconds",
        type=float,
        default=0.5,
        help="the sandbox's token buckets hold this many seconds of each platform's rate (default 0.5)",
    )
    ap.add_argument(
        "--end-days-ago",
        type=int,
        default=1,
        help="the period ends this many days before today (1: yesterday; 31: a settled period)",
    )
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=ALL_PLATFORMS,
        help="leave a platform out (repeatable), e.g. to see the others without it",
    )
    ap.add_argument(
        "--rpm-scale",
        type=float,
        default=1.0,
        help="multiply every platform's budget (and the sandbox's limit) by this factor",
    )
    ap.add_argument(
        "--default-budgets",
        action="store_true",
        help="use each platform's default budget from fetchers/specs.py instead of the bench's",
    )
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sandbox", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--start", help=argparse.SUPPRESS)
    ap.add_argument("--end", help=argparse.SUPPRESS)
    ap.add_argument("--rpm", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--platforms", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    PLATFORMS = tuple(p for p in ALL_PLATFORMS if p not in args.skip)

    from fetchers.core import ReportPolicy

    today = dt.datetime.now(dt.UTC).date()
    end = today - dt.timedelta(days=args.end_days_ago)
    start = end - dt.timedelta(days=args.days - 1)
    days = [start + dt.timedelta(days=i) for i in range(args.days)]
    if args.default_budgets:
        from fetchers.specs import SPECS

        budgets = {p: SPECS[p].default_rpm for p in ALL_PLATFORMS}
    else:
        budgets = BENCH_RPM
    rpm = {p: round(v * args.rpm_scale) for p, v in budgets.items() if p in PLATFORMS}
    policy = ReportPolicy()
    rtt = args.latency[0] / 1000
    print(f"machine: {machine()}  (git {git_rev()})")
    print(
        f"refresh bench: {args.stores} stores x {len(PLATFORMS)} platforms, {args.days} days "
        f"({start}..{end}), latency {args.latency[0]}-{args.latency[1]} ms, report jobs take {args.report_seconds:g} s, "
        f"first poll after {policy.first_poll:g} s (x{policy.factor:g}), sandbox buckets hold "
        f"{args.bucket_seconds:g} s of each rate"
    )
    print(
        "budgets (requests/minute, also the sandbox's enforced limit): " + ", ".join(f"{p} {rpm[p]}" for p in PLATFORMS)
    )

    def bound(n: int) -> tuple[float, dict]:
        per = {}
        need = minimum_requests(days, today, n)
        for p in PLATFORMS:
            r = need[p]
            per[p] = {
                "min_requests": r,
                "rate_bound": r * 60 / rpm[p],
                "job_bound": critical_path(p, args.report_seconds, rtt, days, today),
            }
            per[p]["bound"] = max(per[p]["rate_bound"], per[p]["job_bound"])
        return max(v["bound"] for v in per.values()), per

    with tempfile.TemporaryDirectory(prefix="adspend-bench-") as tmp:
        sb = SandboxProcess()
        try:
            sb.configure(tuple(args.latency), args.report_seconds, rpm, args.bucket_seconds)
            fast = run_child(sb, args.stores, start, end, rpm, False, Path(tmp))
            naive = None
            if args.naive_stores:
                sb.configure(tuple(args.latency), args.report_seconds, rpm, args.bucket_seconds)
                naive = run_child(sb, args.naive_stores, start, end, rpm, True, Path(tmp))
        finally:
            sb.stop()

    lb, per = bound(args.stores)
    made, minimum = sum(fast["requests"].values()), sum(v["min_requests"] for v in per.values())
    throttled = sum(fast["throttled"].values())
    print(
        f"\n{'platform':<10} {'requests':>9} {'minimum':>8} {'throttled':>9} {'rate bound s':>12} "
        f"{'job bound s':>11} {'slowest account s':>17}"
    )
    for p in PLATFORMS:
        v = per[p]
        print(
            f"{p:<10} {fast['requests'][p]:>9} {v['min_requests']:>8} {fast['throttled'][p]:>9} "
            f"{v['rate_bound']:>12.1f} {v['job_bound']:>11.1f} {fast['platform_seconds'].get(p, 0):>17.1f}"
        )
    print(f"\nstatus: {fast['status']} {fast['statuses']}" + (f"  errors: {fast['errors']}" if fast["errors"] else ""))
    print(f"rows stored: {fast['rows']}")
    print(f"wall time: {fast['wall']:.1f} s; lower bound {lb:.1f} s; ratio {fast['wall'] / lb:.3f} (target <= 1.25)")
    print(f"requests made {made} vs minimum {minimum} (target: equal); throttle responses {throttled} (target 0)")
    print(
        f"peak memory (refresh process): {fast['peak_rss_mb']:.0f} MB (target <= 400); "
        f"Microsoft SDK worker: {fast['worker_peak_rss_mb']:.0f} MB"
    )
    print(
        f"CPU: refresh process {fast['cpu']:.1f} s, Microsoft SDK worker {fast['worker_cpu']:.1f} s, "
        f"sandbox process {fast['sandbox_cpu']:.1f} s "
        f"(of {fast['wall'] * (os.cpu_count() or 1):.0f} core-seconds available)"
    )
    out = {
        "stores": args.stores,
        "days": args.days,
        "wall": fast["wall"],
        "lower_bound": lb,
        "requests": made,
        "minimum": minimum,
        "throttled": throttled,
        "peak_rss_mb": fast["peak_rss_mb"],
        "rpm": rpm,
    }
    if naive:
        scale = args.stores / args.naive_stores
        est = naive["wall"] * scale
        print(
            f"naive baseline (one request in flight): N={args.naive_stores}: {naive['wall']:.1f} s for "
            f"{sum(naive['requests'].values())} requests ({naive['status']}); scaled to N={args.stores}: "
            f"{est:.0f} s; speed-up {est / fast['wall']:.1f}x (target >= 20x)"
        )
        out.update(
            naive_stores=args.naive_stores, naive_wall=naive["wall"], naive_scaled=est, speedup=est / fast["wall"]
        )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
