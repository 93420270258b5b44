"""Alerts: every store's open alerts (stopped, spike, pacing, stale, failed) as of a day, filtered
by store, platform and kind, each linking to the store view of its day. The same alerts as
`python cli.py alerts` (service/alerts.py)."""

from __future__ import annotations

import ui
from ui.alerts import alerts_page

store = ui.bootstrap("Alerts")

if store is not None:
    with ui.guard("the alerts page"):
        alerts_page(store)
