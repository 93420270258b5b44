"""Which platforms the sandbox serves: every module of this package that declares ``PLATFORM``
is a platform emulator. Nothing lists them, so adding a platform to the sandbox is adding its
module. Each emulator module declares:

- ``PLATFORM``: the platform id (the product's id, e.g. ``"meta"``)
- ``ENV_PREFIX``: ``<P>`` of the product's ``<P>_API_BASE_URL`` / ``<P>_TOKEN_URL``
- ``TOKEN_PATH``: the path of its token endpoint ("" when the platform has no refresh grant)
- ``CREDENTIALS``: the fake credentials it accepts (variable name -> value)
- ``routes()``: its API routes, and ``expected_daily(account, day, generation)``: the exact spend
  it serves (``/_sandbox/totals``)

and may declare ``PATH_SPACE`` + ``unrouted``, ``throttle_response``, ``malformed_response`` and
``account_of`` (see ``sandbox/server.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

REQUIRED = ("PLATFORM", "ENV_PREFIX", "TOKEN_PATH", "CREDENTIALS", "routes", "expected_daily")


@lru_cache(maxsize=1)
def emulators() -> dict[str, ModuleType]:
    """Platform id -> emulator module, in module name order (their URL spaces do not overlap)."""
    import sandbox

    out: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(sandbox.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        mod = importlib.import_module(f"sandbox.{info.name}")
        if "PLATFORM" not in vars(mod):
            continue  # infrastructure: server, common, data, ...
        missing = [name for name in REQUIRED if name not in vars(mod)]
        if missing:
            raise TypeError(f"sandbox/{info.name}.py declares PLATFORM but not {', '.join(missing)}")
        out[mod.PLATFORM] = mod
    return out


def platforms() -> tuple[str, ...]:
    return tuple(emulators())
