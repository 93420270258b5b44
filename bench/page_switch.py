"""Dashboard page switch with demo data (issue 19 item 4: ≤ 1 s), in Debian's chromium.

    python bench/page_switch.py [--rounds 5] [--keep DIR]

Makes the demo stores (``cli.py demo``) and fetches their last 45 days from the built-in
sandbox, starts ``streamlit run app.py`` on a free loopback port (tests/browser_support.py), then
clicks through every page of the sidebar ``--rounds`` times and times each click until the new
page is drawn: its last element (its hidden state line, ui.page_state) is there, the script has
stopped running, no element still shows its loading skeleton (a component whose code the browser
is still loading, such as Plotly's), and every chart has drawn its plot. The first load is timed
the same way, so its charts' first draw is not counted in the first page switch. Prints the median,
min and max per page, the first visit apart (it pays the page's imports). Nothing here is asserted
by the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, git_rev, machine

sys.path.insert(0, str(ROOT / "tests"))

from browser_support import CHROMIUM, CHROMIUM_ARGS, go_to, make_demo_db, run_streamlit  # noqa: E402

#: sidebar label -> the start of the page's state line
PAGES = [
    ("Portfolio & coverage", "portfolio | "),
    ("Revenue impact", "revenue | "),
    ("Accounts", "accounts | "),
    ("Refresh history", "history"),
    ("Invoicing", "invoicing | "),
    ("Alerts", "alerts | "),
    ("Store spend", "store "),
]


def _wait_state(page, prefix: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        """prefix => { const main = document.querySelector('[data-testid="stMain"]');
                       const s = main ? main.querySelectorAll('.adspend-state') : [];
                       return s.length && s[s.length - 1].textContent.startsWith(prefix)
                              && !document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')
                              && !main.querySelector('[data-testid="stSkeleton"]')
                              && [...main.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg')); }""",
        arg=prefix,
        timeout=timeout,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", help="use (or make) the database in this directory")
    opts = ap.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(opts.keep or tempfile.mkdtemp(prefix="page_switch_"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "dash.duckdb"
    os.environ.setdefault("ADSPEND_FX_AUTO_UPDATE", "0")
    if not db.exists():
        end = dt.date.today() - dt.timedelta(days=1)  # 45 days: inside every platform's retention
        start = end - dt.timedelta(days=44)
        make_demo_db(db, [(s, str(start), str(end)) for s in ("demo-acme", "demo-fjord", "demo-sakura")])
    print(f"machine: {machine()}; git {git_rev()}")
    times: dict[str, list[float]] = {label: [] for label, _ in PAGES}
    first: dict[str, float] = {}
    load0 = os.getloadavg()[0]
    with run_streamlit(db, work / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1600})
        t = time.perf_counter()
        page.goto(url)
        _wait_state(page, "store ")
        print(f"first load (store spend) {time.perf_counter() - t:.2f} s")
        for r in range(opts.rounds + 1):
            for label, prefix in PAGES:
                t = time.perf_counter()
                go_to(page, label)
                _wait_state(page, prefix)
                took = time.perf_counter() - t
                if r == 0:
                    first[label] = took
                else:
                    times[label].append(took)
        browser.close()
    load1 = os.getloadavg()[0]
    print(f"page switch, {opts.rounds} rounds (load average {load0:.2f} -> {load1:.2f}):")
    for label, ts in times.items():
        print(
            f"    {label:<22} median {statistics.median(ts):.2f} s  min {min(ts):.2f}  max {max(ts):.2f}  "
            f"(first visit {first[label]:.2f} s)"
        )
    every = [x for ts in times.values() for x in ts]
    print(f"    {'all pages':<22} median {statistics.median(every):.2f} s  max {max(every):.2f}")


if __name__ == "__main__":
    main()
