"""Settings and credentials, read exactly as shared/interfaces.md names them.

Precedence for every key: the process environment, then ``.env``, then the root keys of
``.streamlit/secrets.toml``, then Vault (when ``VAULT_ADDR`` is set; ``service/vault.py``).
Values are never logged; ``describe()`` reports only which keys are set and where from.

How a platform is reached, per account:
- accounts of demo stores always go to the built-in sandbox (their ids exist only there);
- otherwise, when every required credential is set, the real API (``<P>_API_BASE_URL`` /
  ``<P>_TOKEN_URL`` override the hosts, e.g. to point at a vendor sandbox or ours);
- otherwise the platform is ``not_configured`` (never an error, never $0).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fetchers.secrets import missing_credentials, redact
from fetchers.specs import PLATFORM_IDS, SPECS, PlatformSpec

SOURCE_ENV, SOURCE_DOTENV, SOURCE_SECRETS, SOURCE_VAULT, SOURCE_SANDBOX = (
    "environment",
    ".env",
    "secrets.toml",
    "vault",
    "sandbox",
)


def _read_dotenv(path: Path) -> dict[str, str]:
    if os.environ.get("ADSPEND_NO_DOTENV") or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _read_secrets(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML ({exc.__class__.__name__}); fix or remove it") from None
    return {k: str(v) for k, v in data.items() if not isinstance(v, dict)}


@dataclass
class Settings:
    """Every configuration key we know, with where each value came from."""

    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (value, source)
    vault: object | None = None  # service.vault.VaultSource, when configured
    vault_error: str | None = None
    vault_errors: dict[str, str] = field(default_factory=dict)  # platform -> why Vault failed for it

    def get(self, key: str, default: str | None = None) -> str | None:
        hit = self.values.get(key)
        return hit[0] if hit else default

    def source(self, key: str) -> str | None:
        hit = self.values.get(key)
        return hit[1] if hit else None

    def platform_values(self, platform: str) -> dict[str, tuple[str, str]]:
        s = SPECS[platform]
        out = {k: self.values[k] for k in s.all_keys if k in self.values}
        if self.vault is not None and not all(k in out for k in s.required):
            try:
                for k, v in self.vault.read(platform).items():  # type: ignore[attr-defined]
                    if k in s.all_keys and k not in out and v:
                        out[k] = (str(v), SOURCE_VAULT)
                        redact.add(str(v))
            except Exception as exc:  # one clear error per run
                self.vault_errors[platform] = redact(str(exc))
                self.vault_error = self.vault_error or self.vault_errors[platform]
            if hasattr(self.vault, "note_used"):  # write-back touches only these keys
                self.vault.note_used(platform, [k for k, (_, src) in out.items() if src == SOURCE_VAULT])
        return out


def load_settings(
    environ: Mapping[str, str] | None = None,
    root: str | Path | None = None,
    vault_factory: Callable[[Mapping[str, str]], object] | None = None,
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    base = Path(root) if root else Path.cwd()
    layers = [
        (env, SOURCE_ENV),
        (_read_dotenv(base / ".env"), SOURCE_DOTENV),
        (_read_secrets(base / ".streamlit" / "secrets.toml"), SOURCE_SECRETS),
    ]
    settings = Settings()
    for layer, source in reversed(layers):  # lowest precedence first, overwritten by higher
        for k, v in layer.items():
            if v != "":
                settings.values[k] = (v, source)
    for s in SPECS.values():
        for key in s.secret_keys:
            redact.add(settings.get(key))
    if settings.get("VAULT_ADDR"):
        try:
            if vault_factory is None:
                from service.vault import VaultSource  # optional module (Vault issue)

                vault_factory = VaultSource.from_settings
            settings.vault = vault_factory({k: v for k, (v, _) in settings.values.items()})
        except ImportError:
            settings.vault_error = "VAULT_ADDR is set but Vault support is not installed"
        except Exception as exc:
            settings.vault_error = redact(f"Vault at {settings.get('VAULT_ADDR')} could not be used: {exc}")
    return settings


@dataclass
class PlatformConfig:
    platform: str
    mode: str  # live, sandbox, not_configured
    credentials: dict[str, str]
    sources: dict[str, str]  # key -> where it came from (never the value)
    base_url: str = ""
    token_url: str = ""
    rpm: float = 60.0
    report_first_poll: float | None = None  # seconds before the first report poll (None: the default)
    missing: tuple[str, ...] = ()
    error: str | None = None  # why it cannot be used (e.g. Vault unreachable)

    @property
    def usable(self) -> bool:
        return self.mode in ("live", "sandbox") and not self.error


def _rpm(settings: Settings, s: PlatformSpec) -> float:
    raw = settings.get(s.rpm_var)
    if raw is None:
        return float(s.default_rpm)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{s.rpm_var} must be a positive number of requests a minute, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{s.rpm_var} must be a positive number of requests a minute, not {raw!r}")
    return value


def platform_config(
    settings: Settings, platform: str, *, demo: bool = False, sandbox_url: str | None = None
) -> PlatformConfig:
    s = SPECS[platform]
    rpm = _rpm(settings, s)
    if demo:
        # The built-in sandbox is local and enforces no rate limit unless told to: a demo refresh
        # need not wait out the real platform's budget or report latency (an explicit
        # <P>_REQUESTS_PER_MINUTE still applies, e.g. for the benchmark).
        from sandbox.credentials import FAKE_CREDENTIALS, sandbox_env

        env = sandbox_env(sandbox_url or "", [platform]) if sandbox_url else {}
        return PlatformConfig(
            platform,
            "sandbox",
            dict(FAKE_CREDENTIALS[platform]),
            {k: SOURCE_SANDBOX for k in FAKE_CREDENTIALS[platform]},
            base_url=env.get(s.base_url_var, ""),
            token_url=env.get(s.token_url_var, ""),
            rpm=rpm if settings.get(s.rpm_var) else 6000.0,
            report_first_poll=0.2,
        )
    values = settings.platform_values(platform)
    creds = {k: v for k, (v, _) in values.items()}
    sources = {k: src for k, (_, src) in values.items()}
    missing = missing_credentials(platform, creds)
    if missing:
        # with Vault configured but unusable, these credentials may exist there: the platform
        # failed (with Vault's reason), it is not merely unconfigured
        error = None
        if settings.get("VAULT_ADDR"):
            error = settings.vault_errors.get(platform) or (settings.vault_error if settings.vault is None else None)
        return PlatformConfig(platform, "not_configured", {}, sources, rpm=rpm, missing=missing, error=error)
    base_url = settings.get(s.base_url_var)
    token_url = settings.get(s.token_url_var)
    if not base_url or not token_url:
        default_base, default_token = s.default_urls(creds)
        base_url = base_url or default_base
        token_url = token_url or default_token
    return PlatformConfig(platform, "live", creds, sources, base_url=base_url.rstrip("/"), token_url=token_url, rpm=rpm)


def describe_platforms(settings: Settings) -> list[dict]:
    """Credential status per platform for the UI and ``accounts list``: names and sources, never values."""
    out = []
    for pid in PLATFORM_IDS:
        s = SPECS[pid]
        cfg = platform_config(settings, pid)
        out.append(
            {
                "platform": pid,
                "name": s.name,
                "tier": s.tier,
                "mode": cfg.mode,
                "set": sorted(k for k in s.all_keys if k in cfg.sources),
                "missing": list(cfg.missing),
                "sources": sorted(set(cfg.sources.values())),
                "base_url": cfg.base_url if cfg.mode == "live" else "",
                "requests_per_minute": cfg.rpm,
                "error": cfg.error,
                "environment": settings.get("ADSPEND_ENV") or "",
            }
        )
        if (
            settings.vault is not None
            and SOURCE_VAULT in cfg.sources.values()
            and hasattr(settings.vault, "secret_age")
        ):
            out[-1].update(settings.vault.secret_age(pid))  # path, version, age; warning past 80 days
    return out
