"""What the face (cli.py, app.py, pages/, ui/) uses from the layers below, so the
face imports ``service`` only (tests/test_architecture.py enforces it).

Names load on first use (module ``__getattr__``), so ``from service import facade`` costs
nothing: the CLI's start stays free of duckdb, pyarrow and httpx until a command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and readers; at run time __getattr__ loads them
    from fetchers import clock  # noqa: F401
    from fetchers.clock import strict_day  # noqa: F401
    from fetchers.secrets import RedactingFilter, redact  # noqa: F401
    from fetchers.specs import PLATFORM_IDS, SPECS  # noqa: F401
    from storage.db import DatabaseBusy, DatabaseError, NotADatabase, SpendStore  # noqa: F401

#: name -> (module, attribute); attribute None: the module itself.
_WHERE: dict[str, tuple[str, str | None]] = {
    "clock": ("fetchers.clock", None),
    "strict_day": ("fetchers.clock", "strict_day"),
    "redact": ("fetchers.secrets", "redact"),
    "RedactingFilter": ("fetchers.secrets", "RedactingFilter"),
    "PLATFORM_IDS": ("fetchers.specs", "PLATFORM_IDS"),
    "SPECS": ("fetchers.specs", "SPECS"),
    "SpendStore": ("storage.db", "SpendStore"),
    "DatabaseBusy": ("storage.db", "DatabaseBusy"),
    "DatabaseError": ("storage.db", "DatabaseError"),
    "NotADatabase": ("storage.db", "NotADatabase"),
}

__all__ = sorted([*_WHERE, "run_sandbox"])


def __getattr__(name: str) -> Any:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def run_sandbox(port: int) -> None:
    """``python cli.py sandbox``: the built-in platform sandbox in the foreground."""
    from sandbox.server import run

    run(port)
