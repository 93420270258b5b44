"""The demo stores: accounts on every platform, served by the built-in sandbox.

Account ids follow each platform's real form (shared/interfaces.md). In the sandbox an id that
ends in an ISO 4217 numeric code takes that currency (978 EUR, 826 GBP, 392 JPY), so the demo
has non-USD accounts and stores billed in EUR and JPY."""
from __future__ import annotations

from storage.db import SpendStore

DEMO_STORES = [
    ("demo-acme", "Acme Outdoor (demo)", "USD", [
        ("meta", "1000000001", "Acme Meta"),
        ("google", "1234567001", "Acme Google Ads"),
        ("tiktok", "7100000000000001", "Acme TikTok"),
        ("tiktok", "7100000000000002", "Acme TikTok EU shop"),
        ("linkedin", "urn:li:sponsoredAccount:500978", "Acme LinkedIn (EUR)"),
        ("amazon", "3000000001", "Acme Amazon"),
        ("microsoft", "41000978", "Acme Microsoft (EUR)"),
        ("snapchat", "8f2a6c1e-0000-4000-8000-000000000001", "Acme Snapchat"),
        ("pinterest", "549000000001", "Acme Pinterest"),
        ("reddit", "a2_acme0001", "Acme Reddit"),
    ]),
    ("demo-fjord", "Blue Fjord Apparel (demo)", "EUR", [
        ("meta", "1000000978", "Fjord Meta (EUR)"),
        ("meta", "1000000826", "Fjord Meta UK (GBP)"),
        ("google", "1234567978", "Fjord Google Ads (EUR)"),
        ("tiktok", "7100000000000978", "Fjord TikTok (EUR)"),
        ("amazon", "3000000826", "Fjord Amazon UK (GBP)"),
        ("pinterest", "549000000978", "Fjord Pinterest (EUR)"),
    ]),
    ("demo-sakura", "Sakura Tea (demo)", "JPY", [
        ("meta", "1000000392", "Sakura Meta (JPY)"),
        ("google", "1234567392", "Sakura Google Ads (JPY)"),
        ("linkedin", "urn:li:sponsoredAccount:500001", "Sakura LinkedIn"),
        ("snapchat", "8f2a6c1e-0000-4000-8000-000000000392", "Sakura Snapchat (JPY)"),
        ("reddit", "a2_sakura0002", "Sakura Reddit"),
    ]),
]


def create_demo(store: SpendStore) -> tuple[int, int]:
    """Create (or refresh the names of) the demo stores and link their accounts. Idempotent."""
    with store.transaction() as con:
        store.upsert_stores(con, [(sid, name, ccy, True) for sid, name, ccy, _ in DEMO_STORES])
        added = store.link_accounts(con, [(sid, p, a, n) for sid, _, _, links in DEMO_STORES for p, a, n in links])
    return len(DEMO_STORES), added
