"""The demo stores: accounts on every platform, served by the built-in sandbox.

Account ids follow each platform's real form (shared/interfaces.md). In the sandbox an id that
ends in an ISO 4217 numeric code takes that currency (978 EUR, 826 GBP, 392 JPY), so the demo
has non-USD accounts and stores billed in EUR and JPY."""

from __future__ import annotations

from fetchers.specs import PLATFORM_IDS, SPECS
from storage.db import SpendStore

#: (store id, name, billing currency) of each demo store; its accounts are the registry's
#: ``demo_accounts`` (``fetchers/specs.py``), in registry order.
STORES = [
    ("demo-acme", "Acme Outdoor (demo)", "USD"),
    ("demo-fjord", "Blue Fjord Apparel (demo)", "EUR"),
    ("demo-sakura", "Sakura Tea (demo)", "JPY"),
]


def demo_stores() -> list[tuple[str, str, str, list[tuple[str, str, str]]]]:
    """(store id, name, currency, [(platform, account id, display name)]) of each demo store."""
    known = {sid for sid, _, _ in STORES}
    for pid in PLATFORM_IDS:
        for sid, _, _ in SPECS[pid].demo_accounts:
            if sid not in known:
                raise ValueError(f"{pid}'s demo account names {sid!r}, which is not a demo store")
    return [
        (
            sid,
            name,
            ccy,
            [
                (pid, account, display)
                for pid in PLATFORM_IDS
                for s, account, display in SPECS[pid].demo_accounts
                if s == sid
            ],
        )
        for sid, name, ccy in STORES
    ]


DEMO_STORES = demo_stores()


def create_demo(store: SpendStore) -> tuple[int, int]:
    """Create (or refresh the names of) the demo stores and link their accounts. Idempotent."""
    with store.transaction() as con:
        store.upsert_stores(con, [(sid, name, ccy, True) for sid, name, ccy, _ in DEMO_STORES])
        added = store.link_accounts(con, [(sid, p, a, n) for sid, _, _, links in DEMO_STORES for p, a, n in links])
    return len(DEMO_STORES), added
