"""One platform registry (issue 20 item 3): a platform is its fetcher module, its sandbox module and
its ``PlatformSpec`` entry in ``fetchers/specs.py``. Every consumer reads the registry, so a
forgotten piece fails here (or at import), never as a KeyError on a page."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

import pytest

import fetchers
from fetchers import get_fetcher, implemented
from fetchers.specs import PLATFORM_IDS, SPECS, PlatformSpec
from sandbox.emulators import emulators


def test_every_entry_has_a_fetcher_with_its_limits():
    for pid in PLATFORM_IDS:
        f = get_fetcher(pid)
        assert f.platform == pid and implemented(pid)
        assert f.max_days >= 1 and f.lookback_days >= 0 and f.day_basis in ("account", "UTC")
        assert f.history_days is None or f.history_days > 0


def test_every_entry_has_a_sandbox_module_that_agrees_with_it():
    """(The tests at the end add a tenth module for a moment; this runs before and after them.)"""
    mods = emulators()
    assert sorted(mods) == sorted(PLATFORM_IDS)
    for pid, mod in mods.items():
        s = SPECS[pid]
        assert mod.ENV_PREFIX == s.env_prefix
        assert set(s.required) <= set(mod.CREDENTIALS) <= set(s.all_keys)
        assert s.default_token_url.endswith(mod.TOKEN_PATH) and bool(mod.TOKEN_PATH) == bool(s.default_token_url)


def test_every_entry_has_its_product_facts():
    colours = [s.color for s in SPECS.values()]
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours) and len(set(colours)) == len(colours)
    assert sum((s.default_share for s in SPECS.values()), Decimal(0)) == 100
    for pid, s in SPECS.items():
        assert s.id_form and s.default_share > 0 and s.demo_accounts
        for _store, account, name in s.demo_accounts:
            assert get_fetcher(pid).normalize_account_id(account) == account and name


def test_every_consumer_iterates_the_registry():
    from service import accounts, dashboard, demo
    from ui.colors import PLATFORM_COLORS, color_by_name

    for table in (dashboard.DEFAULT_SHARES, accounts.ID_FORMS, dashboard.ID_FORMS, PLATFORM_COLORS):
        assert tuple(table) == PLATFORM_IDS
    assert {s.name for s in SPECS.values()} == set(color_by_name())
    assert {p for *_, links in demo.DEMO_STORES for p, _, _ in links} == set(PLATFORM_IDS)
    assert dashboard.DEFAULT_SHARES["meta"] + dashboard.DEFAULT_SHARES["google"] == Decimal(65)
    assert dashboard.link_account is accounts.link_account and dashboard.import_mapping is accounts.import_mapping
    assert dashboard.validate_store_id is accounts.validate_store_id


def test_an_entry_without_its_facts_fails_at_import():
    fields = {
        f.name
        for f in dataclasses.fields(PlatformSpec)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    assert {"id_form", "default_share", "color", "demo_accounts"} <= fields
    with pytest.raises(TypeError, match="id_form"):
        PlatformSpec(
            "acme",
            "Acme Ads",
            3,
            "ACME",
            required=(),
            optional=(),
            secret_keys=(),
            default_base_url="",
            default_token_url="",
            default_rpm=60,
            rpm_source="",
            default_share=Decimal(1),
            color="#000000",
            demo_accounts=(),
        )


def test_a_tenth_entry_is_read_from_the_registry(monkeypatch, tmp_path):
    """A tenth entry (no module yet): not implemented, and the Accounts page's check speaks of its
    id form from the entry itself."""
    from service import accounts, demo
    from storage.db import SpendStore

    acme = dataclasses.replace(
        SPECS["reddit"],
        id="acme",
        name="Acme Ads",
        env_prefix="ACME",
        id_form="the Acme account number, digits",
        demo_accounts=(("demo-acme", "77", "Acme"),),
    )
    monkeypatch.setitem(SPECS, "acme", acme)
    monkeypatch.setattr(demo, "PLATFORM_IDS", PLATFORM_IDS + ("acme",))
    assert implemented("acme") is False
    assert demo.demo_stores()[0][3][-1] == ("acme", "77", "Acme")
    store = SpendStore(tmp_path / "r.duckdb")
    with store.transaction() as con:
        store.upsert_stores(con, [("s1", "Shop", "USD", False)])
    with pytest.raises(ValueError, match=r"^enter a Acme Ads account id: the Acme account number, digits$"):
        accounts.link_account(store, "s1", "acme", "  ")
    with pytest.raises(ValueError, match="unknown platform 'nope'"):
        accounts.link_account(store, "s1", "nope", "1")


def test_a_broken_fetcher_module_is_an_error_not_not_implemented(monkeypatch):
    """An AttributeError in a platform module surfaces; it used to read as "not implemented" (0 days
    of history, no normaliser). The data limits come from the registry, without the module."""
    from service import accounts, freshness

    meta = __import__("fetchers.meta", fromlist=["FETCHER"])
    monkeypatch.delattr(meta, "FETCHER")
    assert implemented("meta") is True
    with pytest.raises(AttributeError):
        accounts.normalize_account_id("meta", "act_123")
    assert freshness.limits("meta") == freshness.Limits("meta", 28, 1123)
    assert fetchers.get_fetcher("google").platform == "google"


def test_the_demo_stores_are_the_registrys_demo_accounts():
    from service.demo import DEMO_STORES

    assert [(sid, len(links)) for sid, _, _, links in DEMO_STORES] == [
        ("demo-acme", 10),
        ("demo-fjord", 6),
        ("demo-sakura", 5),
    ]
    assert DEMO_STORES[1][3][:2] == [
        ("meta", "1000000978", "Fjord Meta (EUR)"),
        ("meta", "1000000826", "Fjord Meta UK (GBP)"),
    ]


@pytest.fixture
def extra_sandbox_module(tmp_path, monkeypatch):
    """A directory on the sandbox package's path for a tenth emulator module (removed afterwards)."""
    import sys

    import sandbox
    from sandbox import emulators as registry

    monkeypatch.setattr(sandbox, "__path__", [*sandbox.__path__, str(tmp_path)])
    registry.emulators.cache_clear()
    yield tmp_path
    sys.modules.pop("sandbox.acme", None)
    vars(sandbox).pop("acme", None)
    registry.emulators.cache_clear()


def test_a_tenth_sandbox_module_is_served_without_being_listed(extra_sandbox_module):
    (extra_sandbox_module / "acme.py").write_text(
        "import datetime as dt\nfrom decimal import Decimal\n"
        "from .common import Route, json_response\n"
        "PLATFORM = 'acme'\nENV_PREFIX = 'ACME'\nTOKEN_PATH = ''\nCREDENTIALS = {'ACME_ACCESS_TOKEN': 'sandbox-acme'}\n"
        "def routes():\n    return [Route('GET', r'/acme/v1/ping', lambda req, ctx: json_response({'pong': True}))]\n"
        "def expected_daily(account, day, generation):\n    return Decimal('1.25')\n"
    )
    from sandbox.common import Request
    from sandbox.credentials import FAKE_CREDENTIALS, sandbox_env
    from sandbox.server import Sandbox

    sb = Sandbox()
    assert "acme" in sb.emulators and "acme" in sb.ctx.static_token_platforms
    assert sandbox_env("http://127.0.0.1:1", ["acme"]) == {
        "ACME_API_BASE_URL": "http://127.0.0.1:1",
        "ACME_ACCESS_TOKEN": "sandbox-acme",
    }
    assert FAKE_CREDENTIALS["acme"] == {"ACME_ACCESS_TOKEN": "sandbox-acme"}
    resp = sb.handle(Request("GET", "/acme/v1/ping", {}, {}, b""))
    assert (resp.status, resp.body) == (200, b'{"pong": true}')


def test_a_sandbox_module_missing_part_of_its_contract_fails_at_start(extra_sandbox_module):
    (extra_sandbox_module / "acme.py").write_text("PLATFORM = 'acme'\nTOKEN_PATH = ''\ndef routes():\n    return []\n")
    from sandbox.server import Sandbox

    with pytest.raises(
        TypeError,
        match=r"^sandbox/acme.py declares PLATFORM but not ENV_PREFIX, CREDENTIALS, "
        r"expected_daily$",
    ):
        Sandbox()


test_the_sandbox_serves_the_nine_again = test_every_entry_has_a_sandbox_module_that_agrees_with_it
