"""Secrets and credentials, with nothing heavy imported: ``service.config``, the Vault client and
the CLI's log handler use these without loading httpx or asyncio (``fetchers.core`` re-exports
them for the fetchers).

- ``redact`` (a ``Redactor``) knows every secret value in play and cuts them out of any text;
  ``RedactingFilter`` passes every log record through it.
- ``missing_credentials`` / ``credential``: the spec's required credentials, checked in one place.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from .base import ErrorKind, FetchError
from .specs import SPECS

# --- secrets never leave ------------------------------------------------------------------------


class Redactor:
    """Knows every secret value in play and removes them from any text we show or log."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for v in values:
            if v and len(v) >= 4:
                self._values.add(v)

    def __call__(self, text: object) -> str:
        s = str(text)
        for v in sorted(self._values, key=len, reverse=True):
            if v in s:
                s = s.replace(v, "[redacted]")
        # tokens that travel in query strings (e.g. access_token=...) are cut even if unknown
        return re.sub(
            r"(?i)((?:access_token|refresh_token|client_secret|token|sig|signature|"
            r"x-amz-security-token|x-amz-signature)=)[^&\s\"']+",
            r"\1[redacted]",
            s,
        )


redact = Redactor()


class RedactingFilter(logging.Filter):
    """Logging filter: every record's message passes through ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - a broken format string still must not leak
            msg = str(record.msg)
        record.msg, record.args = redact(msg), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# --- credentials --------------------------------------------------------------------------------


def missing_credentials(platform: str, credentials: Mapping[str, str]) -> tuple[str, ...]:
    """The platform's required credential variables (``specs.PlatformSpec.required``) that are
    unset or blank: the check the configuration makes before a platform is used."""
    return tuple(k for k in SPECS[platform].required if not str(credentials.get(k) or "").strip())


def credential(platform: str, credentials: Mapping[str, str], key: str) -> str:
    """A required credential's value (stripped), as a fetcher reads it: an ``auth`` FetchError
    naming it when it is unset or blank. Only the spec's required keys are read this way (the
    optional ones with ``.get``), so what is required is said once, in ``fetchers/specs.py``."""
    if key not in SPECS[platform].required:
        raise ValueError(f"{key} is not one of {platform}'s required credentials (fetchers/specs.py)")
    value = str(credentials.get(key) or "").strip()
    if not value:
        raise FetchError(ErrorKind.AUTH, f"{platform}: {key} is not set; add it to the environment or the secret store")
    return value
