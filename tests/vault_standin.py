"""A loopback stand-in for HashiCorp Vault's KV version 2 HTTP API (the endpoints the product uses).

Served on 127.0.0.1:<free port>, driven by the real ``hvac`` client:

- ``GET  /v1/<mount>/data/<path>[?version=N]`` — read a version (latest by default);
- ``POST|PUT /v1/<mount>/data/<path>`` — ``{"options": {"cas": N}, "data": {...}}`` writes a new
  version; a ``cas`` that is not the current version is refused (400) as Vault does;
- ``GET  /v1/<mount>/metadata/<path>`` — versions with their ``created_time``, ``custom_metadata``;
- ``POST|PUT /v1/<mount>/metadata/<path>`` — update ``custom_metadata`` / ``max_versions`` /
  ``cas_required`` / ``delete_version_after``.

Every request must carry ``X-Vault-Token`` equal to the configured token (403 ``permission
denied`` otherwise, as Vault answers a wrong or revoked token) and, when the stand-in has a
namespace, ``X-Vault-Namespace`` equal to it. ``deny`` holds paths (``mount/path``) the token's
policy does not cover (403). A mount that does not exist answers 404 ``no handler for route``,
a missing secret 404 with an empty ``errors`` list. Timestamps come from ``clock`` (settable).
Every request is recorded in ``requests`` as ``(method, path, token_ok)``; ``before_write`` is a
one-shot hook run just before a data write is checked (to stage a concurrent writer).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _ts(t: dt.datetime) -> str:
    """Vault's RFC 3339 form, nanosecond precision."""
    t = t.astimezone(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}123Z"


class _Secret:
    def __init__(self) -> None:
        self.versions: dict[int, dict] = {}  # n -> {"data", "created_time", "deletion_time", "destroyed"}
        self.current = 0
        self.created = ""
        self.updated = ""
        self.custom_metadata: dict[str, str] | None = None
        self.max_versions = 0
        self.cas_required = False
        self.delete_version_after = "0s"


class VaultStandIn:
    def __init__(self, token: str = "s.standin-root-token", mounts=("secret",), namespace: str | None = None):
        self.token = token
        self.mounts = set(mounts)
        self.namespace = namespace
        self.deny: set[str] = set()
        self.secrets: dict[tuple[str, str], _Secret] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.clock = lambda: dt.datetime.now(dt.UTC)
        self.lock = threading.RLock()
        self.before_write = None  # one-shot hook(standin, mount, path) run just before a data write
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- test helpers -------------------------------------------------------------------------

    def put(self, path: str, data: dict, *, mount: str = "secret", at: dt.datetime | None = None) -> int:
        """Write a version directly (as an operator's ``vault kv put`` would); its number."""
        with self.lock:
            return self._write(mount, path, dict(data), at or self.clock())

    def latest(self, path: str, mount: str = "secret") -> tuple[int, dict]:
        s = self.secrets[(mount, path)]
        return s.current, dict(s.versions[s.current]["data"])

    def version(self, path: str, n: int, mount: str = "secret") -> dict:
        return dict(self.secrets[(mount, path)].versions[n]["data"])

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and fragment in p)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> VaultStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, doc = standin.handle(self.command, self.path, dict(self.headers.items()), body)
                raw = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = _do

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- the API --------------------------------------------------------------------------------

    def _write(self, mount: str, path: str, data: dict, at: dt.datetime) -> int:
        s = self.secrets.setdefault((mount, path), _Secret())
        s.current += 1
        now = _ts(at)
        s.versions[s.current] = {"data": data, "created_time": now, "deletion_time": "", "destroyed": False}
        s.created = s.created or now
        s.updated = now
        if s.max_versions and len(s.versions) > s.max_versions:
            del s.versions[min(s.versions)]
        return s.current

    def handle(self, method: str, raw_path: str, headers: dict, body: bytes) -> tuple[int, dict | None]:
        h = {k.lower(): v for k, v in headers.items()}
        url = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(url.query))
        token_ok = h.get("x-vault-token") == self.token and h.get("x-vault-namespace") == self.namespace
        with self.lock:
            self.requests.append((method, url.path, token_ok))
        if not token_ok:
            return 403, {"errors": ["permission denied"]}
        parts = url.path.split("/")
        # /v1/<mount>/<data|metadata>/<path...>
        if len(parts) < 5 or parts[1] != "v1":
            return 404, {"errors": ["no handler for route"]}
        mount, kind, path = parts[2], parts[3], "/".join(parts[4:])
        if mount not in self.mounts or kind not in ("data", "metadata") or not path:
            return 404, {"errors": [f'no handler for route "{"/".join(parts[2:])}". route entry not found.']}
        if f"{mount}/{path}" in self.deny:
            return 403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            return 400, {"errors": ["failed to parse JSON input"]}
        with self.lock:
            s = self.secrets.get((mount, path))
            if kind == "data" and method == "GET":
                if s is None:
                    return 404, {"errors": []}
                n = int(query.get("version") or s.current)
                v = s.versions.get(n)
                if v is None:
                    return 404, {"errors": []}
                meta = {
                    "created_time": v["created_time"],
                    "custom_metadata": s.custom_metadata,
                    "deletion_time": v["deletion_time"],
                    "destroyed": v["destroyed"],
                    "version": n,
                }
                if v["deletion_time"] or v["destroyed"]:
                    return 404, {"data": {"data": None, "metadata": meta}}
                return 200, self._envelope({"data": dict(v["data"]), "metadata": meta})
            if kind == "data" and method in ("POST", "PUT"):
                data = doc.get("data")
                if not isinstance(data, dict):
                    return 400, {"errors": ["no data provided"]}
                hook, self.before_write = self.before_write, None
                if hook:
                    hook(self, mount, path)  # e.g. another machine writes first
                    s = self.secrets.get((mount, path))
                cas = (doc.get("options") or {}).get("cas")
                current = s.current if s else 0
                if cas is None and s is not None and s.cas_required:
                    return 400, {"errors": ["check-and-set parameter required for this call"]}
                if cas is not None and int(cas) != current:
                    return 400, {"errors": ["check-and-set parameter did not match the current version"]}
                n = self._write(mount, path, dict(data), self.clock())
                s = self.secrets[(mount, path)]
                return 200, self._envelope(
                    {
                        "created_time": s.versions[n]["created_time"],
                        "custom_metadata": s.custom_metadata,
                        "deletion_time": "",
                        "destroyed": False,
                        "version": n,
                    }
                )
            if kind == "metadata" and method == "GET":
                if s is None:
                    return 404, {"errors": []}
                return 200, self._envelope(
                    {
                        "cas_required": s.cas_required,
                        "created_time": s.created,
                        "current_version": s.current,
                        "custom_metadata": s.custom_metadata,
                        "delete_version_after": s.delete_version_after,
                        "max_versions": s.max_versions,
                        "oldest_version": min(s.versions) if s.versions else 0,
                        "updated_time": s.updated,
                        "versions": {
                            str(n): {
                                "created_time": v["created_time"],
                                "deletion_time": v["deletion_time"],
                                "destroyed": v["destroyed"],
                            }
                            for n, v in s.versions.items()
                        },
                    }
                )
            if kind == "metadata" and method in ("POST", "PUT"):
                s = self.secrets.setdefault((mount, path), _Secret())
                if "custom_metadata" in doc:
                    cm = doc["custom_metadata"]
                    if cm is not None and (
                        not isinstance(cm, dict) or not all(isinstance(v, str) for v in cm.values())
                    ):
                        return 400, {"errors": ["custom_metadata must be a map of strings"]}
                    s.custom_metadata = cm
                if "max_versions" in doc:
                    s.max_versions = int(doc["max_versions"])
                if "cas_required" in doc:
                    s.cas_required = bool(doc["cas_required"])
                if "delete_version_after" in doc:
                    s.delete_version_after = str(doc["delete_version_after"])
                return 204, None
        return 405, {"errors": ["unsupported operation"]}

    @staticmethod
    def _envelope(data: dict) -> dict:
        return {
            "request_id": "00000000-0000-0000-0000-000000000000",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }
