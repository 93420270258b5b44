"""The local token cache: rotated refresh tokens, kept for the next run, readable only by the owner.

Platforms with continuous refresh tokens (Pinterest, Microsoft, Reddit) return a new refresh
token with each grant, and the old one stops working. The new one must survive the run, but it
is a secret: it lives in this file (mode 0600, written atomically), never in DuckDB, logs,
exports or the UI.

Each entry remembers a fingerprint of the configured refresh token it descends from. When the
operator configures a different token, the configured one wins again (it is newer than the
cache's lineage)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()


def default_path() -> Path:
    env = os.environ.get("ADSPEND_TOKEN_CACHE")
    if env:
        return Path(env)
    db = os.environ.get("ADSPEND_DB", "data/adspend.duckdb")
    return Path(db).resolve().parent / "token_cache.json"


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}          # a damaged cache falls back to the configured tokens

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

    def refresh_token(self, platform: str, configured: str | None) -> str | None:
        """The refresh token to use: the cached rotation of ``configured``, else ``configured``."""
        if not configured:
            return configured
        entry = self._read().get(platform)
        if entry and entry.get("origin") == _fingerprint(configured) and entry.get("refresh_token"):
            return entry["refresh_token"]
        return configured

    def store_rotation(self, platform: str, configured: str, new_refresh_token: str) -> None:
        """Keep ``new_refresh_token`` as the successor of the configured token."""
        with _lock:
            data = self._read()
            data[platform] = {"origin": _fingerprint(configured), "refresh_token": new_refresh_token}
            self._write(data)
