"""Stores and their ad accounts: the CSV import (all or nothing), the overview, id checks.

The import format is shared/interfaces.md's: header ``store_id,store_name,platform,account_id``
plus optional ``billing_currency`` (ISO code, default USD) and ``display_name``. A file with any
bad row imports nothing and names every bad line. Re-importing the same rows changes nothing.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

from fetchers import get_fetcher
from fetchers.specs import PLATFORM_IDS, SPECS
from storage.db import SpendStore

from .config import describe_platforms, load_settings

REQUIRED_COLUMNS = ("store_id", "store_name", "platform", "account_id")
OPTIONAL_COLUMNS = ("billing_currency", "display_name")
MAX_FIELD = 200
MAX_FILE_BYTES = 20 * 1024 * 1024
_STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ImportError_(ValueError):
    """The import file is unusable; the message names every bad line."""


@dataclass
class ImportResult:
    stores: int
    added: int
    unchanged: int


def normalize_account_id(platform: str, raw: str) -> str:
    """The stored form of an account id; ValueError naming platform, value and expected form."""
    if platform not in SPECS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORM_IDS)}")
    return get_fetcher(platform).normalize_account_id(raw.strip())


def validate_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"billing currency {code!r} is not a three-letter ISO 4217 code such as USD or EUR")
    return code


def parse_import(data: bytes) -> list[dict]:
    """Rows of a mapping CSV, validated; ImportError_ listing every bad line."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportError_(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportError_(f"the file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV and import again") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportError_("the file is empty; expected a header store_id,store_name,platform,account_id") from None
    except csv.Error as exc:
        raise ImportError_(f"the header is not valid CSV ({exc})") from None
    cols = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise ImportError_(f"the header lacks {', '.join(missing)}; expected store_id,store_name,platform,account_id "
                           "(optional billing_currency, display_name)")
    unknown = [c for c in cols if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ImportError_(f"unknown column(s) {', '.join(unknown)}; allowed: "
                           f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    if len(set(cols)) != len(cols):
        raise ImportError_("the header names a column twice")
    errors: list[str] = []
    rows: list[dict] = []
    store_meta: dict[str, tuple[str, str, int]] = {}
    line_no = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
            break
        line_no = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue                                # blank lines are allowed
        if len(fields) != len(cols):
            errors.append(f"line {line_no}: {len(fields)} fields, expected {len(cols)}")
            continue
        rec = {c: f.strip() for c, f in zip(cols, fields)}
        problems = []
        for c, v in rec.items():
            if len(v) > MAX_FIELD:
                problems.append(f"{c} is longer than {MAX_FIELD} characters")
            if any(ord(ch) < 32 for ch in v):
                problems.append(f"{c} contains control characters")
        if not _STORE_ID.match(rec["store_id"]):
            problems.append(f"store_id {rec['store_id'][:40]!r} must be 1-64 letters, digits, '.', '_', ':' or '-'")
        if not rec["store_name"]:
            problems.append("store_name is empty")
        platform = rec["platform"].lower()
        account_id = None
        if platform not in SPECS:
            problems.append(f"unknown platform {rec['platform'][:40]!r}; expected one of {', '.join(PLATFORM_IDS)}")
        else:
            try:
                account_id = normalize_account_id(platform, rec["account_id"])
            except ValueError as exc:
                problems.append(str(exc))
        currency = rec.get("billing_currency") or "USD"
        try:
            currency = validate_currency(currency)
        except ValueError as exc:
            problems.append(str(exc))
        prev = store_meta.get(rec["store_id"])
        if prev and not problems and (prev[0] != rec["store_name"] or prev[1] != currency):
            problems.append(f"store {rec['store_id']} has name/currency {rec['store_name']!r}/{currency} here but "
                            f"{prev[0]!r}/{prev[1]} on line {prev[2]}")
        if problems:
            errors.append(f"line {line_no}: " + "; ".join(problems))
            continue
        store_meta.setdefault(rec["store_id"], (rec["store_name"], currency, line_no))
        rows.append({"store_id": rec["store_id"], "store_name": rec["store_name"], "billing_currency": currency,
                     "platform": platform, "account_id": account_id, "display_name": rec.get("display_name") or None})
    if errors:
        shown = errors[:50]
        more = f"; and {len(errors) - 50} more bad lines" if len(errors) > 50 else ""
        raise ImportError_(f"nothing imported: {len(errors)} bad line(s): " + " | ".join(shown) + more)
    if not rows:
        raise ImportError_("nothing imported: the file has a header but no rows")
    return rows


def import_accounts(store: SpendStore, path: Path) -> ImportResult:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ImportError_(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise ImportError_(f"cannot read {path}: {exc.strerror}") from None
    rows = parse_import(data)
    stores = {r["store_id"]: (r["store_id"], r["store_name"], r["billing_currency"], False) for r in rows}
    links = {(r["store_id"], r["platform"], r["account_id"]): r["display_name"] for r in rows}
    with store.transaction() as con:
        store.upsert_stores(con, stores.values())
        added = store.link_accounts(con, [(s, p, a, n) for (s, p, a), n in links.items()])
    return ImportResult(len(stores), added, len(links) - added)


def export_mapping_csv(store: SpendStore) -> bytes:
    """The current mapping in the import format (round-trips through ``accounts import``)."""
    from .export import neutralise
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
    names = {s["store_id"]: s for s in store.stores()}
    for a in store.accounts():
        s = names[a["store_id"]]
        w.writerow([neutralise(v) for v in (a["store_id"], s["name"], a["platform"], a["account_id"],
                                             s["billing_currency"], a["display_name"] or "")])
    return buf.getvalue().encode("utf-8")


def credential_warnings(platforms: list[dict], settings=None, now: dt.datetime | None = None) -> None:
    """Give each live platform whose long-lived credential expires a ``warning`` (None, or one
    sentence) and the dates it is based on (``service/lifecycle.py``: counted from when this
    installation first saw the credential; fingerprints only, never values)."""
    from .config import platform_config
    from .lifecycle import expiry
    from .token_cache import TokenCache
    settings = settings or load_settings()
    cache = TokenCache()
    for c in platforms:
        s = SPECS[c["platform"]]
        c.setdefault("warning", None)
        if c["mode"] != "live" or not s.credential_lifetime_days:
            continue
        c.setdefault("credential_lifetime_days", s.credential_lifetime_days)
        try:
            creds = platform_config(settings, c["platform"]).credentials
            c.update({k: v for k, v in expiry(c["platform"], creds, cache, now).items() if v or k == "warning"})
        except (OSError, ValueError):
            continue                      # the warning is advice: never fail the listing over it


def accounts_overview(store: SpendStore) -> dict:
    settings = load_settings()
    stores = store.stores()
    accounts = store.accounts()
    by_store: dict[str, list[dict]] = {}
    for a in accounts:
        by_store.setdefault(a["store_id"], []).append({
            "platform": a["platform"], "account_id": a["account_id"], "display_name": a["display_name"],
            "currency": a["currency"], "timezone": a["timezone"]})
    platforms = describe_platforms(settings)
    credential_warnings(platforms, settings)
    return {"stores": [{**s, "accounts": by_store.get(s["store_id"], [])} for s in stores],
            "platforms": platforms,
            **({"vault": settings.vault.describe()} if hasattr(settings.vault, "describe") else {}),
            **({"vault_error": settings.vault_error} if settings.vault_error else {})}
