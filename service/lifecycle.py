"""Credential lifecycle: warn ahead of the day a long-lived credential stops working.

No platform tells an API client when the credential it was given was issued, so the clock is the
moment this installation first saw the credential (its fingerprint in the token cache, never its
value), or, for a rotated refresh token, the moment it was rotated. The warning says "first seen"
for that reason: the credential may be older than that.

Lifetimes (``fetchers/specs.py`` ``credential_lifetime_days``): Meta long-lived user tokens 60 days
(system-user tokens do not expire), LinkedIn refresh tokens 365 days (its access tokens 60 days),
Microsoft refresh tokens about 90 days (each refresh hands out a new one, so an installation that
refreshes regularly never reaches the end). A warning starts ``WARN_AHEAD_DAYS`` before the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from fetchers.specs import SPECS

from .token_cache import TokenCache

WARN_AHEAD_DAYS = 14
LINKEDIN_ACCESS_TOKEN_DAYS = 60


@dataclass(frozen=True)
class Tracked:
    key: str  # the credential variable whose lifetime counts
    lifetime_days: int
    label: str  # what to call it in a message


def tracked(platform: str, credentials: Mapping[str, str]) -> Tracked | None:
    """The credential of ``platform`` that expires, if its lifetime is known."""
    s = SPECS[platform]
    if not s.credential_lifetime_days:
        return None
    if platform == "linkedin" and not credentials.get("LINKEDIN_REFRESH_TOKEN"):
        return Tracked("LINKEDIN_ACCESS_TOKEN", LINKEDIN_ACCESS_TOKEN_DAYS, "access token")
    if s.refresh_token_key:
        return Tracked(s.refresh_token_key, s.credential_lifetime_days, "refresh token")
    return Tracked(s.required[0], s.credential_lifetime_days, "long-lived access token")


def _effective(cache: TokenCache, platform: str, t: Tracked, credentials: Mapping[str, str]) -> str | None:
    value = credentials.get(t.key)
    if value and t.key == SPECS[platform].refresh_token_key:
        value = cache.refresh_token(platform, value)  # the rotated successor, if any
    return value or None


def note_credentials(
    platform: str, credentials: Mapping[str, str], cache: TokenCache | None = None, now: dt.datetime | None = None
) -> None:
    """Start the clock for the platform's expiring credential (no-op when already seen)."""
    t = tracked(platform, credentials)
    if t is None:
        return
    cache = cache or TokenCache()
    cache.note_seen(platform, _effective(cache, platform, t, credentials), now)


def expiry(
    platform: str, credentials: Mapping[str, str], cache: TokenCache | None = None, now: dt.datetime | None = None
) -> dict:
    """``{"warning", "credential_first_seen", "credential_expires"}`` for one live platform.

    Notes the credential as seen now if it is new. ``warning`` is None until ``WARN_AHEAD_DAYS``
    before the end of its lifetime counted from when it was first seen."""
    out = {"warning": None, "credential_first_seen": None, "credential_expires": None}
    t = tracked(platform, credentials)
    if t is None:
        return out
    cache = cache or TokenCache()
    now = now or dt.datetime.now(dt.UTC)
    value = _effective(cache, platform, t, credentials)
    first = cache.note_seen(platform, value, now)
    if first is None:
        return out
    ends = first + dt.timedelta(days=t.lifetime_days)
    out["credential_first_seen"] = first.date().isoformat()
    out["credential_expires"] = ends.date().isoformat()
    if now < ends - dt.timedelta(days=WARN_AHEAD_DAYS):
        return out
    name = SPECS[platform].name
    age = (now - first).days
    lasts = f"{name} {t.label}s last about {t.lifetime_days} days"
    if platform == "meta":
        lasts += " (system-user tokens do not expire)"
    if now >= ends:
        out["warning"] = (
            f"{name} {t.label} ({t.key}) was first seen here {age} days ago, on {first.date()}; "
            f"{lasts}, so it may already have expired: re-authorise and update {t.key}"
        )
    else:
        out["warning"] = (
            f"{name} {t.label} ({t.key}) was first seen here {age} days ago, on {first.date()}; "
            f"{lasts}, so it may stop working around {ends.date()}: re-authorise and update "
            f"{t.key} before then"
        )
    return out
