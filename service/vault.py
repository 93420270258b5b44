"""Platform credentials from HashiCorp Vault's KV version 2 engine, read with ``hvac``.

Configuration (shared/interfaces.md): ``VAULT_ADDR``, ``VAULT_TOKEN``, optional ``VAULT_NAMESPACE``
(Vault Enterprise), optional ``VAULT_CACERT`` / ``VAULT_SKIP_VERIFY`` / ``VAULT_CLIENT_TIMEOUT``
(the Vault CLI's own variables), ``ADSPEND_VAULT_PATH`` and ``ADSPEND_ENV``.

The path template. ``ADSPEND_VAULT_PATH`` is ``<mount>/<path>``; its first segment is the KV v2
mount. It may contain ``{platform}`` and ``{env}``:

- without ``{platform}``, ``/{platform}`` is appended: the default ``secret/kiki/ad-platforms``
  reads ``kiki/ad-platforms/tiktok`` on the mount ``secret``;
- ``{env}`` is replaced by ``ADSPEND_ENV`` (``dev``, ``staging`` or ``prod``):
  ``secret/kiki/ad-platforms/{env}`` reads ``kiki/ad-platforms/prod/tiktok``. A template with
  ``{env}`` and no ``ADSPEND_ENV`` is a configuration error; without ``{env}`` the environment
  does not change the path (it is still shown as a label).

Each platform's secret holds the interface's variable names as keys (``TIKTOK_ACCESS_TOKEN`` ...).
Vault is the lowest-precedence source: environment, ``.env``, ``secrets.toml``, then Vault
(``service/config.py``). A secret that does not exist means the platform is ``not_configured``;
Vault unreachable, sealed, or refusing the token raises ``VaultError`` with one sentence that names
Vault and what to check (never the token). Reads are cached for the life of this object (one run):
one read per platform, and a Vault that cannot be reached is tried once per run.

Write-back: a rotated refresh token is written as a new version of the same secret, keeping every
other key (read the latest version, check the token there is still the one this run was given,
write with check-and-set ``cas`` = that version, so a concurrent rotation is never clobbered).
The versions Ad Spend Hub writes are listed in the secret's custom metadata
(``adspend_writeback_versions``) so that the secret's age — the rotation-hygiene clock, a warning
past 80 days of the plan's 90 — counts from the last version an operator wrote.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import threading
import urllib.parse
from collections.abc import Mapping

import requests

from fetchers.secrets import redact

log = logging.getLogger("adspend.vault")

DEFAULT_PATH = "secret/kiki/ad-platforms"
ENVIRONMENTS = ("dev", "staging", "prod")
ROTATION_DAYS = 90
WARN_AFTER_DAYS = 80
WRITEBACK_KEY = "adspend_writeback_versions"
_KEEP_WRITEBACKS = 50
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class VaultError(RuntimeError):
    """Vault cannot be used; the message is one sentence naming Vault and what to check."""


class VaultConfigError(ValueError):
    """The Vault settings themselves are wrong (caught by config.load_settings)."""


class NotVault(Exception):
    """Whatever answers at VAULT_ADDR is not Vault's API (an ordinary web server, a proxy's error
    page, JSON of another shape): never read as "no secret here"."""


class VaultDeadline(requests.exceptions.Timeout):
    """A Vault request did not complete (headers and body) within VAULT_CLIENT_TIMEOUT."""


class _DeadlineSession(requests.Session):
    """A requests session whose every request has a TOTAL deadline of ``total`` seconds: connect,
    headers and the whole body. ``timeout=`` in requests bounds each socket read only, so a server
    that sends headers and then one byte a second would hold a call for as long as it likes.

    The request runs in a worker thread; the caller waits at most ``total`` seconds, then closes
    the response (which ends the worker's read) and raises ``VaultDeadline``."""

    def __init__(self, total: float) -> None:
        super().__init__()
        self.total = float(total)

    def request(self, method, url, **kwargs):  # type: ignore[override]
        total = self.total
        kwargs["stream"] = True
        kwargs["timeout"] = total
        box: dict = {}

        def work() -> None:
            try:
                resp = requests.Session.request(self, method, url, **kwargs)
                box["resp"] = resp
                _ = resp.content  # read the whole body here, inside the deadline
                box["done"] = resp
            except BaseException as exc:  # handed to the caller
                box["error"] = exc

        worker = threading.Thread(target=work, name="vault-request", daemon=True)
        worker.start()
        worker.join(total)
        if "done" in box:
            return box["done"]
        if "error" in box and not worker.is_alive():
            raise box["error"]
        resp = box.get("resp")
        if resp is not None:
            resp.close()  # unblocks the worker's read; it ends on its own
        raise VaultDeadline(f"no complete answer within {total:g} s")


def _is_loopback(host: str) -> bool:
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_warning(addr: str) -> str | None:
    """The warning when VAULT_TOKEN would travel unencrypted: http:// to a host that is not this
    machine (loopback is fine: a local Vault dev server or an SSH tunnel)."""
    u = urllib.parse.urlsplit(addr)
    if u.scheme.lower() == "http" and not _is_loopback(u.hostname or ""):
        return (
            f"VAULT_ADDR {addr} is plain http to another host: VAULT_TOKEN and the secrets travel "
            "unencrypted; use https://"
        )
    return None


_warned: set[str] = set()  # plain-http warnings already logged by this process


def split_template(template: str, env: str | None, platform: str) -> tuple[str, str]:
    """(mount, path) of ``platform``'s secret for the template and environment."""
    t = (template or DEFAULT_PATH).strip().strip("/")
    for name in _PLACEHOLDER.findall(t):
        if name not in ("env", "platform"):
            raise VaultConfigError(
                f"ADSPEND_VAULT_PATH {template!r} has an unknown placeholder {{{name}}}; "
                "only {env} and {platform} are allowed"
            )
    if "{" in t.partition("/")[0] or "//" in t or "/" not in t.replace("{platform}", "x/x"):
        raise VaultConfigError(
            f"ADSPEND_VAULT_PATH {template!r} must look like <mount>/<path>, for example "
            f"{DEFAULT_PATH} or secret/kiki/ad-platforms/{{env}}"
        )
    if "{platform}" not in t:
        t += "/{platform}"
    if "{env}" in t:
        if not env:
            raise VaultConfigError(
                f"ADSPEND_VAULT_PATH {template!r} uses {{env}} but ADSPEND_ENV is not set; "
                f"set it to one of {', '.join(ENVIRONMENTS)}"
            )
        t = t.replace("{env}", env)
    t = t.replace("{platform}", platform)
    mount, _, path = t.partition("/")
    return mount, path


def parse_vault_time(value: str | None) -> dt.datetime | None:
    """Vault's RFC 3339 timestamps (nanoseconds, ``Z``) as aware datetimes."""
    if not value:
        return None
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$", value.strip())
    if not m:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        t = dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")
    except ValueError:
        return None
    return None if t.year < 1971 else t  # Vault's zero time means "never"


def _timeout(raw: str | None) -> float:
    if not raw:
        return 10.0
    m = re.fullmatch(r"\s*(\d+)\s*(s|m)?\s*", raw)
    if not m or int(m.group(1)) <= 0:
        raise VaultConfigError(
            f"VAULT_CLIENT_TIMEOUT must be a positive number of seconds such as 10 or 10s, not {raw!r}"
        )
    return float(int(m.group(1)) * (60 if m.group(2) == "m" else 1))


class VaultSource:
    """One run's view of Vault: cached reads per platform, write-back, secret metadata."""

    def __init__(
        self, client, *, addr: str, template: str = DEFAULT_PATH, env: str | None = None, namespace: str | None = None
    ):
        self.client = client
        self.addr = addr.rstrip("/")
        self.template = template or DEFAULT_PATH
        self.env = env or None
        self.namespace = namespace or None
        self._data: dict[str, dict[str, str]] = {}  # platform -> secret data (latest version)
        self._version: dict[str, int] = {}
        self._errors: dict[str, VaultError] = {}
        self._down: VaultError | None = None  # unreachable: tried once per run
        self._meta: dict[str, dict | None] = {}
        self.used: dict[str, set[str]] = {}  # platform -> keys the settings took from Vault
        self.writeback_errors: list[str] = []
        self.timeout: float | None = None
        self.warning: str | None = None  # plain http to a remote host

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> VaultSource:
        import hvac

        addr = (values.get("VAULT_ADDR") or "").strip()
        if not re.match(r"^https?://[^/\s]+", addr):
            raise VaultConfigError(
                f"VAULT_ADDR must be the URL of Vault such as https://vault.example.com:8200, not {addr[:80]!r}"
            )
        token = (values.get("VAULT_TOKEN") or "").strip()
        if not token:
            raise VaultConfigError(
                "VAULT_ADDR is set but VAULT_TOKEN is not; set VAULT_TOKEN to a token whose "
                "policy can read the ad platform secrets"
            )
        redact.add(token)
        env = (values.get("ADSPEND_ENV") or "").strip() or None
        if env is not None and env not in ENVIRONMENTS:
            raise VaultConfigError(f"ADSPEND_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env[:40]!r}")
        template = (values.get("ADSPEND_VAULT_PATH") or "").strip() or DEFAULT_PATH
        split_template(template, env, "meta")  # refuse a bad template now, before any request
        verify: bool | str = True
        if (values.get("VAULT_SKIP_VERIFY") or "").strip().lower() in ("1", "true", "yes"):
            verify = False
        elif values.get("VAULT_CACERT"):
            verify = values["VAULT_CACERT"]
        namespace = (values.get("VAULT_NAMESPACE") or "").strip() or None
        total = _timeout(values.get("VAULT_CLIENT_TIMEOUT"))
        client = hvac.Client(
            url=addr, token=token, namespace=namespace, verify=verify, timeout=total, session=_DeadlineSession(total)
        )
        source = cls(client, addr=addr, template=template, env=env, namespace=namespace)
        source.timeout = total
        source.warning = plain_http_warning(addr)
        if source.warning and source.warning not in _warned:
            _warned.add(source.warning)  # once per process (stderr in the CLI)
            log.warning("%s", source.warning)
        return source

    # --- where ----------------------------------------------------------------------------------

    def location(self, platform: str) -> tuple[str, str]:
        return split_template(self.template, self.env, platform)

    def secret_path(self, platform: str) -> str:
        mount, path = self.location(platform)
        return f"{mount}/{path}"

    def describe(self) -> dict:
        """What the UI and ``accounts list`` may show (never the token)."""
        return {
            "addr": self.addr,
            "namespace": self.namespace or "",
            "path_template": self.template,
            "environment": self.env or "",
            **({"warning": self.warning} if self.warning else {}),
        }

    # --- errors ---------------------------------------------------------------------------------

    def _explain(self, exc: Exception, platform: str, action: str = "read") -> VaultError:
        import hvac.exceptions as hx
        import requests

        where = self.secret_path(platform)
        mount, path = self.location(platform)
        at = f"Vault at {self.addr}" + (f" (namespace {self.namespace})" if self.namespace else "")
        if isinstance(exc, hx.VaultError) and not isinstance(
            exc, (hx.VaultDown, hx.VaultNotInitialized, hx.BadGateway, hx.InternalServerError)
        ):
            exc = self._not_vault_error(exc) or exc
        if isinstance(exc, NotVault):
            msg = (
                f"{at} did not answer as Vault ({exc}); check that VAULT_ADDR is the address of Vault's API, "
                "such as https://vault.example.com:8200, not another web server"
            )
        elif isinstance(exc, VaultDeadline):
            msg = (
                f"{at} did not answer within {self.timeout or 10:g} s (VAULT_CLIENT_TIMEOUT); check that Vault "
                "is healthy and reachable from this machine"
            )
        elif isinstance(exc, requests.exceptions.SSLError):
            msg = f"{at} could not be reached over TLS ({type(exc).__name__}); check VAULT_ADDR and VAULT_CACERT"
        elif isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            msg = (
                f"{at} is unreachable ({type(exc).__name__}); check VAULT_ADDR and that Vault is running "
                "and reachable from this machine"
            )
        elif isinstance(exc, (hx.Forbidden, hx.Unauthorized)):
            cap = "read" if action == "read" else "update"
            msg = (
                f"{at} refused the token for {where} (permission denied); check that VAULT_TOKEN is valid "
                f"and not expired, and that its policy allows {cap} on {mount}/data/{path}"
            )
        elif isinstance(exc, (hx.VaultDown, hx.VaultNotInitialized)):
            msg = f"{at} is sealed or not initialised; check `vault status` and unseal it"
        elif isinstance(exc, hx.InvalidPath):
            msg = f"{at} has no KV version 2 mount {mount!r}; check ADSPEND_VAULT_PATH (its first segment is the mount)"
        elif isinstance(exc, hx.VaultError):
            msg = f"{at} answered {type(exc).__name__} for {where}; check Vault's logs and VAULT_ADDR"
        else:
            msg = f"{at} could not be used ({type(exc).__name__}); check VAULT_ADDR and VAULT_TOKEN"
        return VaultError(redact(msg))

    @staticmethod
    def _unreachable(exc: Exception) -> bool:
        import hvac.exceptions as hx
        import requests

        if isinstance(exc, hx.VaultError) and VaultSource._not_vault_error(exc):
            return True
        return isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                hx.VaultDown,
                hx.VaultNotInitialized,
                NotVault,
            ),
        )

    @staticmethod
    def _not_vault_error(exc: Exception) -> NotVault | None:
        """A refusal (4xx) whose body is not Vault's JSON (``{"errors": [...]}``, or the ``data``
        envelope of a deleted version): an ordinary web server's 404 page is not "no secret"."""
        import hvac.exceptions as hx

        if isinstance(exc, (hx.VaultDown, hx.VaultNotInitialized, hx.BadGateway, hx.InternalServerError)):
            return None
        body = getattr(exc, "json", None)
        if isinstance(body, dict) and (isinstance(body.get("errors"), list) or isinstance(body.get("data"), dict)):
            return None
        status = {
            hx.InvalidPath: 404,
            hx.Forbidden: 403,
            hx.Unauthorized: 401,
            hx.InvalidRequest: 400,
            hx.RateLimitExceeded: 429,
        }.get(type(exc))
        return NotVault(f"HTTP {status or 'error'} without Vault's JSON error body")

    @staticmethod
    def _check_envelope(resp, *keys: str) -> dict:
        """Vault's 200 answer ``{"data": {...}}`` with ``data[key]`` present for each key; NotVault
        for anything else (an HTML page, JSON of another shape)."""
        if not isinstance(resp, dict):
            status = getattr(resp, "status_code", "?")
            ctype = (getattr(resp, "headers", None) or {}).get("Content-Type", "no content type")
            raise NotVault(f"HTTP {status} {str(ctype).split(';')[0]}")
        data = resp.get("data")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise NotVault("JSON without Vault's data envelope")
        return data

    @staticmethod
    def _missing(exc: Exception) -> bool:
        """A 404 for a secret that does not exist (or whose latest version is deleted), as opposed
        to a 404 for a mount that does not exist (``no handler for route``)."""
        import hvac.exceptions as hx

        if not isinstance(exc, hx.InvalidPath) or VaultSource._not_vault_error(exc):
            return False
        errors = getattr(exc, "errors", None) or []
        return not any("no handler for route" in str(e) for e in errors)

    # --- reading --------------------------------------------------------------------------------

    def _fetch(self, platform: str) -> tuple[dict[str, str], int]:
        """The latest version of the platform's secret, uncached: (data, version); ({}, 0) if none."""
        mount, path = self.location(platform)
        try:
            resp = self.client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount, raise_on_deleted_version=True
            )
        except Exception as exc:
            if self._missing(exc):
                return {}, 0
            raise
        data = self._check_envelope(resp, "data", "metadata")
        secret = data.get("data") or {}
        if not isinstance(secret, dict) or not isinstance(data.get("metadata"), dict):
            raise NotVault("JSON without Vault's KV version 2 secret")
        version = int(data["metadata"].get("version") or 0)
        out = {str(k): str(v) for k, v in secret.items() if v is not None and not isinstance(v, (dict, list))}
        redact.add(*out.values())
        return out, version

    def read(self, platform: str) -> dict[str, str]:
        """The platform's secret (key -> value), ``{}`` when it does not exist; VaultError when
        Vault cannot be used. One request per platform per run."""
        if platform in self._data:
            return dict(self._data[platform])
        if self._down is not None:
            raise self._down
        if platform in self._errors:
            raise self._errors[platform]
        try:
            data, version = self._fetch(platform)
        except Exception as exc:
            err = self._explain(exc, platform)
            if self._unreachable(exc):
                self._down = err
            else:
                self._errors[platform] = err
            log.debug("%s", err)  # surfaced once per run by the caller, not per platform
            raise err from None
        self._data[platform], self._version[platform] = data, version
        return dict(data)

    def note_used(self, platform: str, keys) -> None:
        """The settings took these keys of ``platform`` from Vault (write-back only touches them)."""
        self.used.setdefault(platform, set()).update(keys)

    # --- write-back -----------------------------------------------------------------------------

    def write_back(self, platform: str, key: str, value: str) -> bool:
        """Write a rotated ``value`` of ``key`` as a new version of the platform's secret, keeping its
        other keys. Never raises: a failure is logged (without values) and remembered; the local
        token cache still holds the rotated token for this machine."""
        redact.add(value)
        if key not in self.used.get(platform, ()):
            return False  # this key did not come from Vault: leave Vault alone
        served = self._data.get(platform, {}).get(key)
        mount, path = self.location(platform)
        for _attempt in range(3):
            try:
                current, version = self._fetch(platform)
                if not current or version == 0:
                    self._writeback_failed(
                        platform,
                        f"the Vault secret {self.secret_path(platform)} no longer "
                        "exists; the rotated token was not written back",
                    )
                    return False
                if current.get(key) == value:
                    return True
                if current.get(key) != served:
                    self._writeback_failed(
                        platform,
                        f"{key} in Vault secret {self.secret_path(platform)} was "
                        "changed by someone else during this run; kept theirs",
                    )
                    return False
                resp = self.client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret={**current, key: value}, cas=version, mount_point=mount
                )
            except Exception as exc:
                import hvac.exceptions as hx

                if isinstance(exc, hx.InvalidRequest) and "check-and-set" in str(exc):
                    continue  # someone wrote in between: read again and retry
                self._writeback_failed(platform, str(self._explain(exc, platform, "update")))
                return False
            new_version = int(((resp or {}).get("data") or {}).get("version") or version + 1)
            self._data[platform] = {**current, key: value}
            self._version[platform] = new_version
            self._meta.pop(platform, None)
            self._mark_writeback(platform, new_version)
            log.info(
                "Vault: wrote the rotated %s of %s as version %d of %s",
                key,
                platform,
                new_version,
                self.secret_path(platform),
            )
            return True
        self._writeback_failed(
            platform, f"Vault secret {self.secret_path(platform)} kept changing; the rotated {key} was not written back"
        )
        return False

    def _writeback_failed(self, platform: str, why: str) -> None:
        msg = redact(f"{platform}: rotated refresh token not written back to Vault: {why}")
        self.writeback_errors.append(msg)
        log.warning("%s", msg)

    def _mark_writeback(self, platform: str, version: int) -> None:
        """Record ``version`` as ours in the secret's custom metadata, keeping every other
        metadata setting (hvac would otherwise reset ``delete_version_after``)."""
        mount, path = self.location(platform)
        try:
            meta = (self.client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount) or {}).get(
                "data"
            ) or {}
            custom = dict(meta.get("custom_metadata") or {})
            ours = [v for v in (custom.get(WRITEBACK_KEY) or "").split(",") if v.strip().isdigit()]
            ours = (ours + [str(version)])[-_KEEP_WRITEBACKS:]
            custom[WRITEBACK_KEY] = ",".join(ours)
            self.client.secrets.kv.v2.update_metadata(
                path=path,
                mount_point=mount,
                custom_metadata=custom,
                max_versions=meta.get("max_versions"),
                cas_required=meta.get("cas_required"),
                delete_version_after=meta.get("delete_version_after") or "0s",
            )
        except Exception as exc:
            log.warning(
                "%s",
                redact(
                    f"Vault: could not mark version {version} of {self.secret_path(platform)} as "
                    f"a rotation write-back ({type(exc).__name__}); its age now counts from it"
                ),
            )

    # --- rotation hygiene -----------------------------------------------------------------------

    def metadata(self, platform: str) -> dict | None:
        if platform not in self._meta:
            mount, path = self.location(platform)
            try:
                resp = self.client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
                self._meta[platform] = self._check_envelope(resp, "versions")
            except Exception as exc:
                if self._missing(exc):
                    self._meta[platform] = None
                else:
                    raise self._explain(exc, platform) from None
        return self._meta[platform]

    def secret_age(self, platform: str, now: dt.datetime | None = None) -> dict:
        """``{"vault_path", "secret_version", "secret_written_at", "secret_age_days", "rotation_warning"}``
        from the secret's metadata: the age counts from the newest version an operator wrote
        (rotation write-backs do not reset it). Never raises; unknown values are None."""
        out: dict = {
            "vault_path": self.secret_path(platform),
            "secret_version": None,
            "secret_written_at": None,
            "secret_age_days": None,
            "rotation_warning": None,
        }
        try:
            meta = self.metadata(platform)
        except VaultError as exc:
            out["rotation_warning"] = f"secret age unknown: {exc}"
            return out
        if not meta:
            return out
        versions = {}
        for k, v in (meta.get("versions") or {}).items():
            if str(k).isdigit() and isinstance(v, dict):
                versions[int(k)] = v
        if not versions:
            return out
        ours = {
            int(v)
            for v in ((meta.get("custom_metadata") or {}).get(WRITEBACK_KEY) or "").split(",")
            if v.strip().isdigit()
        }
        operator = [n for n in versions if n not in ours]
        n = max(operator) if operator else min(versions)
        written = parse_vault_time(versions[n].get("created_time"))
        out["secret_version"] = int(meta.get("current_version") or max(versions))
        if written is None:
            return out
        now = now or dt.datetime.now(dt.UTC)
        age = max(0, (now - written).days)
        out["secret_written_at"] = written.isoformat()
        out["secret_age_days"] = age
        if age > WARN_AFTER_DAYS:
            out["rotation_warning"] = (
                f"the Vault secret {out['vault_path']} was last rotated {age} days ago; "
                f"rotate it (every {ROTATION_DAYS} days per the plan)"
            )
        return out
