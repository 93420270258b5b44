"""Fake credentials and endpoint variables that point the product at a running sandbox.

The variable names are the product's public configuration surface (shared/interfaces.md); the
values are obviously fake. Each emulator module declares its ``TOKEN_PATH`` ("" when the
platform uses a long-lived token with no refresh grant)."""
from __future__ import annotations

import importlib

ENV_PREFIX = {"meta": "META", "google": "GOOGLE_ADS", "tiktok": "TIKTOK", "linkedin": "LINKEDIN",
              "amazon": "AMAZON_ADS", "microsoft": "MICROSOFT_ADS", "snapchat": "SNAPCHAT",
              "pinterest": "PINTEREST", "reddit": "REDDIT"}

FAKE_CREDENTIALS = {
    "meta": {"META_ACCESS_TOKEN": "sandbox-meta-token"},
    "google": {"GOOGLE_ADS_DEVELOPER_TOKEN": "sandbox-google-devtoken", "GOOGLE_ADS_CLIENT_ID": "sandbox-google-client",
               "GOOGLE_ADS_CLIENT_SECRET": "sandbox-google-secret", "GOOGLE_ADS_REFRESH_TOKEN": "sandbox-google-refresh"},
    "tiktok": {"TIKTOK_APP_ID": "sandbox-tiktok-app", "TIKTOK_APP_SECRET": "sandbox-tiktok-secret",
               "TIKTOK_ACCESS_TOKEN": "sandbox-tiktok-token"},
    "linkedin": {"LINKEDIN_CLIENT_ID": "sandbox-linkedin-client", "LINKEDIN_CLIENT_SECRET": "sandbox-linkedin-secret",
                 "LINKEDIN_ACCESS_TOKEN": "sandbox-linkedin-token", "LINKEDIN_REFRESH_TOKEN": "sandbox-linkedin-refresh"},
    "amazon": {"AMAZON_CLIENT_ID": "amzn1.application-oa2-client.sandbox", "AMAZON_CLIENT_SECRET": "sandbox-amazon-secret",
               "AMAZON_REFRESH_TOKEN": "Atzr|sandbox-amazon-refresh"},
    "microsoft": {"MICROSOFT_CLIENT_ID": "sandbox-microsoft-client", "MICROSOFT_CLIENT_SECRET": "sandbox-microsoft-secret",
                  "MICROSOFT_DEVELOPER_TOKEN": "sandbox-microsoft-devtoken", "MICROSOFT_CUSTOMER_ID": "123456789",
                  "MICROSOFT_REFRESH_TOKEN": "sandbox-microsoft-refresh"},
    "snapchat": {"SNAPCHAT_CLIENT_ID": "sandbox-snapchat-client", "SNAPCHAT_CLIENT_SECRET": "sandbox-snapchat-secret",
                 "SNAPCHAT_REFRESH_TOKEN": "sandbox-snapchat-refresh"},
    "pinterest": {"PINTEREST_APP_ID": "sandbox-pinterest-app", "PINTEREST_APP_SECRET": "sandbox-pinterest-secret",
                  "PINTEREST_REFRESH_TOKEN": "pinr.sandbox-pinterest-refresh"},
    "reddit": {"REDDIT_CLIENT_ID": "sandbox-reddit-client", "REDDIT_CLIENT_SECRET": "sandbox-reddit-secret",
               "REDDIT_REFRESH_TOKEN": "sandbox-reddit-refresh"},
}


def sandbox_env(url: str, platforms=tuple(ENV_PREFIX)) -> dict[str, str]:
    env: dict[str, str] = {}
    for p in platforms:
        try:
            mod = importlib.import_module(f"sandbox.{p}")
        except ModuleNotFoundError:
            continue
        prefix = ENV_PREFIX[p]
        env[f"{prefix}_API_BASE_URL"] = url
        token_path = getattr(mod, "TOKEN_PATH", "")
        if token_path:
            env[f"{prefix}_TOKEN_URL"] = url + token_path
        env.update(FAKE_CREDENTIALS[p])
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
