"""Token lifecycle: access tokens refreshed when needed, rotated refresh tokens kept only in the
owner-only token cache, long-lived credentials flagged ahead of their expiry, and a revoked
credential reported once per platform."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from decimal import Decimal

import pytest

from fetchers.specs import SPECS
from service import lifecycle
from service.token_cache import TokenCache, fingerprint

TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=2)
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)

OAUTH_ACCOUNTS = [
    ("google", "1234567031"),
    ("linkedin", "urn:li:sponsoredAccount:500031"),
    ("amazon", "3000000031"),
    ("microsoft", "41000031"),
    ("snapchat", "8f2a6c1e-0000-4000-8000-000000000031"),
    ("pinterest", "549000000031"),
    ("reddit", "a2_life0031"),
]


def _import(tmp_path, run_cli, rows):
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "store_id,store_name,platform,account_id\n" + "".join(f"{s},Store {s},{p},{a}\n" for s, p, a in rows)
    )
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


def _refresh(run_cli, *extra):
    return run_cli("refresh", "--all", "--start", START.isoformat(), "--end", END.isoformat(), "--json", *extra)


# --- access tokens refreshed when needed; rotated refresh tokens kept in the cache only ------------


def test_expired_access_tokens_are_refreshed_and_rotations_kept_in_the_owner_only_cache(
    tmp_path, run_cli, sandbox, sandbox_env, db_path, caplog, monkeypatch
):
    monkeypatch.setenv("ADSPEND_LOG_LEVEL", "DEBUG")
    _import(tmp_path, run_cli, [("s1", p, a) for p, a in OAUTH_ACCOUNTS])
    r = _refresh(run_cli)
    assert r.returncode == 0, r
    grants = dict(sandbox.ctx.token_grants)
    # every access token the sandbox issued now expires once, mid-run
    sandbox.ctx.configure({"faults": [{"platform": p, "kind": "expired_token", "count": 1} for p, _ in OAUTH_ACCOUNTS]})
    r = _refresh(run_cli, "--full")
    assert r.returncode == 0, r
    assert {x["platform"]: x["status"] for x in r.json()["results"]} == {p: "ok" for p, _ in OAUTH_ACCOUNTS}
    for p, _ in OAUTH_ACCOUNTS:
        assert sandbox.ctx.token_grants.get(p, 0) > grants.get(p, 0), p  # refreshed because it had to be
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    for p, a in OAUTH_ACCOUNTS:
        exact = Decimal(sandbox.sandbox.expected_total(p, a, START, END)["spend"]).quantize(Decimal("0.01"))
        assert (p, doc["platforms"][p]["spend"]) == (p, str(exact))

    # the rotating platforms' new refresh tokens live in the cache, mode 0600, and nowhere else
    cache_path = TokenCache().path
    assert stat.S_IMODE(os.stat(cache_path).st_mode) == 0o600
    cache = json.loads(cache_path.read_text())
    rotated = {p: cache[p]["refresh_token"] for p in ("pinterest", "reddit") if p in cache}
    assert set(rotated) == {"pinterest", "reddit"}
    assert all(v != sandbox_env[f"{SPECS[p].env_prefix}_REFRESH_TOKEN"] for p, v in rotated.items())
    out = tmp_path / "export.csv"
    assert (
        run_cli(
            "export", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--out", out
        ).returncode
        == 0
    )
    listing = run_cli("accounts", "list", "--json")
    haystacks = {
        "database": db_path.read_bytes(),
        "export": out.read_bytes(),
        "logs": "\n".join(rec.getMessage() for rec in caplog.records).encode(),
        "accounts list": listing.stdout.encode() + listing.stderr.encode(),
        "refresh output": (r.stdout + r.stderr).encode(),
    }
    for where, blob in haystacks.items():
        for p, token in rotated.items():
            assert token.encode() not in blob, f"{p}'s rotated refresh token found in the {where}"
    # the next run uses the rotated token (Pinterest retires a refresh token once exchanged)
    sandbox.ctx.configure({"faults": [{"platform": "pinterest", "kind": "expired_token", "count": 1}]})
    r = run_cli(
        "refresh",
        "--store",
        "s1",
        "--platform",
        "pinterest",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        "--full",
    )
    assert r.returncode == 0, r
    assert json.loads(cache_path.read_text())["pinterest"]["refresh_token"] != rotated["pinterest"]


def test_token_cache_keeps_fingerprints_never_values_for_first_seen(tmp_path):
    cache = TokenCache(tmp_path / "tc.json")
    first = cache.note_seen("meta", "EAAB-long-lived-secret", NOW)
    assert first == NOW
    assert cache.note_seen("meta", "EAAB-long-lived-secret", NOW + dt.timedelta(days=5)) == NOW  # once only
    text = (tmp_path / "tc.json").read_text()
    assert "EAAB-long-lived-secret" not in text and fingerprint("EAAB-long-lived-secret") in text
    assert stat.S_IMODE(os.stat(tmp_path / "tc.json").st_mode) == 0o600
    # a rotation starts the rotated token's clock at the rotation
    cache.store_rotation("microsoft", "ms-configured", "ms-rotated", now=NOW)
    assert cache.first_seen("microsoft", "ms-rotated") == NOW
    assert cache.refresh_token("microsoft", "ms-configured") == "ms-rotated"
    # a damaged cache is ignored, not fatal
    (tmp_path / "tc.json").write_text("{not json")
    assert cache.first_seen("meta", "EAAB-long-lived-secret") is None
    assert cache.refresh_token("microsoft", "ms-configured") == "ms-configured"


# --- expiry warnings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "platform,creds,days_seen,expect",
    [
        ("meta", {"META_ACCESS_TOKEN": "m"}, 45, None),  # 60 - 14 = 46: not yet
        ("meta", {"META_ACCESS_TOKEN": "m"}, 46, "around 2026-06-15"),
        ("meta", {"META_ACCESS_TOKEN": "m"}, 61, "may already have expired"),
        ("microsoft", {"MICROSOFT_REFRESH_TOKEN": "r"}, 75, None),
        ("microsoft", {"MICROSOFT_REFRESH_TOKEN": "r"}, 80, "around 2026-06-11"),
        ("linkedin", {"LINKEDIN_ACCESS_TOKEN": "a", "LINKEDIN_REFRESH_TOKEN": "r"}, 300, None),
        ("linkedin", {"LINKEDIN_ACCESS_TOKEN": "a", "LINKEDIN_REFRESH_TOKEN": "r"}, 360, "around 2026-06-06"),
        ("linkedin", {"LINKEDIN_ACCESS_TOKEN": "a"}, 50, "around 2026-06-11"),  # no refresh token: 60-day access token
        ("google", {"GOOGLE_ADS_REFRESH_TOKEN": "r"}, 5000, None),  # no documented lifetime
    ],
)
def test_expiry_warning_counts_from_first_seen(tmp_path, platform, creds, days_seen, expect):
    cache = TokenCache(tmp_path / "tc.json")
    lifecycle.note_credentials(platform, creds, cache, now=NOW - dt.timedelta(days=days_seen))
    out = lifecycle.expiry(platform, creds, cache, now=NOW)
    if expect is None:
        assert out["warning"] is None
    else:
        assert expect in out["warning"]
        assert f"first seen here {days_seen} days ago" in out["warning"]
        assert "re-authorise and update" in out["warning"]
        assert all(v not in out["warning"] for v in creds.values() if len(v) > 3)


def test_microsoft_rotation_restarts_the_clock(tmp_path):
    cache = TokenCache(tmp_path / "tc.json")
    creds = {"MICROSOFT_REFRESH_TOKEN": "configured-ms"}
    lifecycle.note_credentials("microsoft", creds, cache, now=NOW - dt.timedelta(days=85))
    assert lifecycle.expiry("microsoft", creds, cache, now=NOW)["warning"]
    cache.store_rotation("microsoft", "configured-ms", "rotated-ms", now=NOW - dt.timedelta(days=1))
    out = lifecycle.expiry("microsoft", creds, cache, now=NOW)
    assert out["warning"] is None and out["credential_first_seen"] == (NOW - dt.timedelta(days=1)).date().isoformat()


def test_accounts_list_flags_credentials_ahead_of_expiry(run_cli, monkeypatch):
    """Live credentials seen long ago: `accounts list` (text and --json) warns, without values."""
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAB-meta-value-123")
    for k, v in {
        "MICROSOFT_CLIENT_ID": "cid",
        "MICROSOFT_DEVELOPER_TOKEN": "dev-value-123",
        "MICROSOFT_CUSTOMER_ID": "123",
        "MICROSOFT_REFRESH_TOKEN": "ms-refresh-value-123",
        "LINKEDIN_ACCESS_TOKEN": "li-access-value-123",
        "LINKEDIN_REFRESH_TOKEN": "li-refresh-value-123",
    }.items():
        monkeypatch.setenv(k, v)
    now = dt.datetime.now(dt.UTC)
    cache = TokenCache()
    cache.note_seen("meta", "EAAB-meta-value-123", now - dt.timedelta(days=50))
    cache.note_seen("microsoft", "ms-refresh-value-123", now - dt.timedelta(days=10))
    cache.note_seen("linkedin", "li-refresh-value-123", now - dt.timedelta(days=400))
    r = run_cli("accounts", "list", "--json")
    assert r.returncode == 0, r
    plats = {c["platform"]: c for c in r.json()["platforms"]}
    assert "first seen here 50 days ago" in plats["meta"]["warning"]
    assert "may stop working around" in plats["meta"]["warning"]
    assert plats["microsoft"]["warning"] is None
    assert (
        plats["microsoft"]["credential_expires"]
        == (now - dt.timedelta(days=10) + dt.timedelta(days=90)).date().isoformat()
    )
    assert "may already have expired" in plats["linkedin"]["warning"]
    assert plats["google"]["warning"] is None  # not configured: nothing to warn about
    text = run_cli("accounts", "list")
    warned = [line for line in text.stdout.splitlines() if "WARNING" in line]
    assert [line.split()[0] for line in warned] == ["meta", "linkedin"]
    for blob in (r.stdout, text.stdout):
        for value in ("EAAB-meta-value-123", "ms-refresh-value-123", "li-refresh-value-123", "li-access-value-123"):
            assert value not in blob
    # a credential seen for the first time starts its clock now: no warning
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAB-a-brand-new-token")
    plats = {c["platform"]: c for c in run_cli("accounts", "list", "--json").json()["platforms"]}
    assert plats["meta"]["warning"] is None and plats["meta"]["credential_first_seen"] == now.date().isoformat()


def test_a_refresh_starts_the_clock(tmp_path, run_cli, sandbox, sandbox_env):
    _import(tmp_path, run_cli, [("s1", "meta", "1000000031")])
    assert TokenCache().first_seen("meta", sandbox_env["META_ACCESS_TOKEN"]) is None
    assert _refresh(run_cli).returncode == 0
    assert TokenCache().first_seen("meta", sandbox_env["META_ACCESS_TOKEN"]) is not None


# --- a revoked credential: one clear message per platform ------------------------------------------


def test_a_revoked_credential_gives_one_message_per_platform_not_per_account(
    tmp_path, run_cli, sandbox, sandbox_env, monkeypatch
):
    rows = (
        [(s, "google", f"12345670{s[-1]}{i}") for s in ("s1", "s2") for i in range(3)]
        + [(s, "meta", f"10000000{s[-1]}{i}") for s in ("s1", "s2") for i in range(3)]
        + [(s, "tiktok", f"71000000000000{s[-1]}{i}") for s in ("s1", "s2") for i in range(2)]
    )
    _import(tmp_path, run_cli, rows)
    monkeypatch.setenv("GOOGLE_ADS_REFRESH_TOKEN", "a-revoked-google-refresh-token")
    sandbox.ctx.configure({"faults": [{"platform": "meta", "kind": "revoked", "count": None}]})
    r = _refresh(run_cli)
    assert r.returncode == 1, r
    results = r.json()["results"]
    by = {(x["store_id"], x["platform"]): x for x in results}
    assert {k: v["status"] for k, v in by.items()} == {
        (s, p): ("ok" if p == "tiktok" else "failed") for s in ("s1", "s2") for p in ("google", "meta", "tiktok")
    }
    for platform in ("google", "meta"):
        errors = {by[(s, platform)]["error"] for s in ("s1", "s2")}
        assert len(errors) == 1, errors  # the same single sentence for every store
        (error,) = errors
        assert {"google": "re-authorise", "meta": "set META_ACCESS_TOKEN"}[platform] in error  # what to do
        assert {a["error"] for s in ("s1", "s2") for a in by[(s, platform)]["accounts"]} == {error}
    assert "a-revoked-google-refresh-token" not in r.stdout + r.stderr
    text = run_cli("refresh", "--all", "--start", START.isoformat(), "--end", END.isoformat())
    google_lines = [line for line in text.stdout.splitlines() if " google " in line]
    assert len(google_lines) == 2 and all(line.count("re-authorise") == 1 for line in google_lines)
