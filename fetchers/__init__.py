"""Platform fetchers: one module per platform behind the protocol in ``fetchers/base.py``."""

from __future__ import annotations

import importlib
import importlib.util

from .specs import PLATFORM_IDS, SPECS, spec  # noqa: F401


def get_fetcher(platform: str):
    """The platform's fetcher object (``fetchers/<platform>.py`` exposes ``FETCHER``)."""
    spec(platform)  # unknown ids fail with a clear message
    module = importlib.import_module(f"fetchers.{platform}")
    return module.FETCHER


def implemented(platform: str) -> bool:
    """Whether this build has the platform's module (every registry entry has one: test_registry).
    It is not imported here: an error inside a platform module surfaces where it is used, never
    as "not implemented"."""
    spec(platform)
    return importlib.util.find_spec(f"fetchers.{platform}") is not None
