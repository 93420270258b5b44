"""A refresh run from a page: in a worker thread, with live progress per platform x account."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from service.dashboard import progress_rows


def run_with_progress(label: str, job: Callable[[Callable[[Any], None]], Any]) -> tuple[Any, Exception | None, Any]:
    """Run ``job(progress_callback)`` in a worker thread while an ``st.status`` box shows each
    platform x account's state (the callbacks come from the refresh's own thread, so they go
    through a queue). Returns ``(outcome, error, status box)``: exactly one of the first two is set."""
    events: queue.Queue = queue.Queue()
    result: dict = {}

    def work() -> None:
        try:
            result["outcome"] = job(events.put)
        except Exception as exc:  # noqa: BLE001 - returned to the page, which shows it
            result["error"] = exc

    worker = threading.Thread(target=work, name="dashboard-refresh", daemon=True)
    worker.start()
    seen: list = []
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="starting")
        table = st.empty()
        while True:
            alive = worker.is_alive()
            while True:
                try:
                    seen.append(events.get_nowait())
                except queue.Empty:
                    break
            rows = progress_rows(seen)
            if rows:
                finished = sum(r["state"] in ("done", "failed", "skipped") for r in rows)
                bar.progress(finished / len(rows), text=f"{finished} of {len(rows)} accounts finished")
                table.dataframe(pd.DataFrame(rows), hide_index=True)
            if not alive:
                break
            time.sleep(0.2)
        worker.join()
    return result.get("outcome"), result.get("error"), status
