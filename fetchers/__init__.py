"""Platform fetchers: one module per platform behind the protocol in ``fetchers/base.py``."""
from __future__ import annotations

import importlib

from .specs import PLATFORM_IDS, SPECS, spec  # noqa: F401


def get_fetcher(platform: str):
    """The platform's fetcher object (``fetchers/<platform>.py`` exposes ``FETCHER``)."""
    spec(platform)  # unknown ids fail with a clear message
    module = importlib.import_module(f"fetchers.{platform}")
    return module.FETCHER


def implemented(platform: str) -> bool:
    try:
        get_fetcher(platform)
        return True
    except (ImportError, AttributeError):
        return False
