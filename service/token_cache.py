"""The local token cache: rotated refresh tokens, kept for the next run, readable only by the owner.

Platforms with continuous refresh tokens (Pinterest, Microsoft, Reddit) return a new refresh
token with each grant, and the old one stops working. The new one must survive the run, but it
is a secret: it lives in this file (mode 0600, written atomically), never in DuckDB, logs,
exports or the UI.

Each entry remembers a fingerprint of the configured refresh token it descends from. When the
operator configures a different token, the configured one wins again (it is newer than the
cache's lineage).

The cache also remembers when each long-lived credential was first seen (by fingerprint, never
the value), and when a refresh token was last rotated: the clock ``service/lifecycle.py`` uses to
warn ahead of a credential's expiry. Every read-modify-write holds an exclusive lock on a
``.lock`` file beside the cache, so a dashboard and a CLI refresh rotating at the same moment
cannot lose each other's token."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: in-process lock only
    fcntl = None  # type: ignore[assignment]

_lock = threading.Lock()


def default_path() -> Path:
    env = os.environ.get("ADSPEND_TOKEN_CACHE")
    if env:
        return Path(env)
    db = os.environ.get("ADSPEND_DB", "data/adspend.duckdb")
    return Path(db).resolve().parent / "token_cache.json"


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


fingerprint = _fingerprint

SEEN_KEY = "_first_seen"  # {platform: {fingerprint: ISO timestamp}}; never a platform id
MAX_SEEN_PER_PLATFORM = 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged cache falls back to the configured tokens

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".token_cache.", dir=str(self.path.parent))
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=0, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            os.chmod(self.path, 0o600)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @contextlib.contextmanager
    def _locked(self):
        """In-process and cross-process exclusion for a read-modify-write of the cache."""
        with _lock:
            if fcntl is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def refresh_token(self, platform: str, configured: str | None) -> str | None:
        """The refresh token to use: the cached rotation of ``configured``, else ``configured``."""
        if not configured:
            return configured
        entry = self._read().get(platform)
        if entry and entry.get("origin") == _fingerprint(configured) and entry.get("refresh_token"):
            return entry["refresh_token"]
        return configured

    def store_rotation(
        self, platform: str, configured: str, new_refresh_token: str, now: dt.datetime | None = None
    ) -> None:
        """Keep ``new_refresh_token`` as the successor of the configured token (and note when it
        was issued: a rotated token's lifetime starts at its rotation)."""
        now = now or _now()
        with self._locked():
            data = self._read()
            data[platform] = {
                "origin": _fingerprint(configured),
                "refresh_token": new_refresh_token,
                "rotated_at": now.isoformat(),
            }
            self._note(data, platform, new_refresh_token, now)
            self._write(data)

    # -- first seen: the clock for expiry warnings -------------------------------------------------
    @staticmethod
    def _note(data: dict, platform: str, credential: str, now: dt.datetime) -> bool:
        seen = data.setdefault(SEEN_KEY, {}).setdefault(platform, {})
        fp = _fingerprint(credential)
        if fp in seen:
            return False
        seen[fp] = now.isoformat()
        while len(seen) > MAX_SEEN_PER_PLATFORM:  # oldest first out
            seen.pop(min(seen, key=seen.get))
        return True

    def note_seen(self, platform: str, credential: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
        """Remember (once) when this credential was first seen; returns that moment."""
        if not credential:
            return None
        now = now or _now()
        first = self.first_seen(platform, credential)
        if first is not None:
            return first
        try:
            with self._locked():
                data = self._read()
                if self._note(data, platform, credential, now):
                    self._write(data)
        except OSError:
            return None  # an unwritable cache only costs the warning, never a refresh
        return self.first_seen(platform, credential)

    def first_seen(self, platform: str, credential: str | None) -> dt.datetime | None:
        if not credential:
            return None
        raw = self._read().get(SEEN_KEY, {}).get(platform, {}).get(_fingerprint(credential))
        try:
            return dt.datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None
