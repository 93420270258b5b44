"""Fake credentials and endpoint variables that point the product at a running sandbox.

The variable names are the product's public configuration surface (shared/interfaces.md); the
values are obviously fake. Each emulator module declares them (``ENV_PREFIX``, ``TOKEN_PATH``,
``CREDENTIALS``: see ``sandbox/emulators.py``); this module reads them from there."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .emulators import emulators


class _PerEmulator(Mapping):
    """Platform id -> one constant of each emulator module (read when asked: tests swap values)."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __getitem__(self, platform: str):
        mods = emulators()
        if platform not in mods:
            raise KeyError(platform)
        return getattr(mods[platform], self.attr)

    def __iter__(self) -> Iterator[str]:
        return iter(emulators())

    def __len__(self) -> int:
        return len(emulators())


ENV_PREFIX: Mapping[str, str] = _PerEmulator("ENV_PREFIX")
FAKE_CREDENTIALS: Mapping[str, dict[str, str]] = _PerEmulator("CREDENTIALS")


def sandbox_env(url: str, platforms=None) -> dict[str, str]:
    """The variables that point the product's platforms (default: every emulated one) at ``url``."""
    env: dict[str, str] = {}
    mods = emulators()
    for p in mods if platforms is None else platforms:
        mod = mods[p]
        env[f"{mod.ENV_PREFIX}_API_BASE_URL"] = url
        if mod.TOKEN_PATH:
            env[f"{mod.ENV_PREFIX}_TOKEN_URL"] = url + mod.TOKEN_PATH
        env.update(mod.CREDENTIALS)
    return env


def demo_access_tokens(platform: str) -> set[str]:
    """The configured long-lived access tokens of a platform (read at call time: tests swap values)."""
    return {v for k, v in FAKE_CREDENTIALS.get(platform, {}).items() if k.endswith("_ACCESS_TOKEN")}


def demo_refresh_tokens(platform: str) -> set[str]:
    return {v for k, v in FAKE_CREDENTIALS.get(platform, {}).items() if k.endswith("_REFRESH_TOKEN")}


def demo_value(platform: str, suffix: str) -> str | None:
    """The configured demo credential whose variable name ends in ``suffix`` (e.g. ``_CLIENT_SECRET``)."""
    for k, v in FAKE_CREDENTIALS.get(platform, {}).items():
        if k.endswith(suffix):
            return v
    return None
