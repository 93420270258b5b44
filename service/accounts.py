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
from dataclasses import dataclass, field
from pathlib import Path

from fetchers import get_fetcher
from fetchers.specs import PLATFORM_IDS, SPECS, spec
from storage.db import _CONTROL, SpendStore, has_control  # noqa: F401  (has_control: re-exported)

from .config import describe_platforms, load_settings
from .csv_input import open_table
from .csv_input import read_capped as _read_capped

REQUIRED_COLUMNS = ("store_id", "store_name", "platform", "account_id")
OPTIONAL_COLUMNS = ("billing_currency", "display_name")
MAX_FIELD = 200
MAX_FILE_BYTES = 20 * 1024 * 1024
STORE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
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


MAX_ERRORS_SHOWN = 50


def check_text(value: str, what: str) -> str:
    """``value`` unchanged, or ValueError in one sentence when it holds control characters."""
    if has_control(value):
        raise ValueError(
            f"{what} contains control characters (such as a newline, tab or terminal escape); use plain text"
        )
    return value


_BATCH_ROWS = 65536


@dataclass
class _Parsed:
    """The validated rows of a mapping CSV: the stores, and the links as Arrow batches of
    ``_BATCH_ROWS`` (the links of 1M rows take about 35 MB as Arrow, several times that as
    Python lists of strings)."""

    stores: dict[str, tuple[str, str, int]]  # store_id -> (name, currency, first line)
    store_id: list[str]
    platform: list[str]
    account_id: list[str]
    display_name: list[str | None]
    batches: list = field(default_factory=list)
    rows: int = 0

    def flush(self) -> None:
        import pyarrow as pa

        if not self.store_id:
            return
        n = len(self.store_id)
        self.batches.append(
            pa.record_batch(
                {
                    "seq": pa.array(range(self.rows, self.rows + n), pa.int64()),
                    "store_id": pa.array(self.store_id, pa.string()),
                    "platform": pa.array(self.platform, pa.string()),
                    "account_id": pa.array(self.account_id, pa.string()),
                    "display_name": pa.array(self.display_name, pa.string()),
                }
            )
        )
        self.rows += n
        for col in (self.store_id, self.platform, self.account_id, self.display_name):
            col.clear()

    def links(self):
        import pyarrow as pa

        self.flush()
        return pa.Table.from_batches(self.batches)


def _parse(data: bytes) -> _Parsed:
    """Rows of a mapping CSV, validated; ImportError_ listing every bad line."""
    from .export import unneutralise

    reader, cols = open_table(
        data,
        REQUIRED_COLUMNS,
        OPTIONAL_COLUMNS,
        "store_id,store_name,platform,account_id (optional billing_currency, display_name)",
        ImportError_,
        MAX_FILE_BYTES,
    )
    normalizers = {pid: get_fetcher(pid).normalize_account_id for pid in PLATFORM_IDS}
    errors: list[str] = []
    n_errors = 0
    out = _Parsed({}, [], [], [], [])
    store_meta = out.stores
    currencies: dict[str, str] = {}
    n_cols = len(cols)
    control_search = _CONTROL.search
    line_no = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            n_errors += 1
            errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
            break
        line_no = reader.line_num
        joined = "".join(fields)
        if not joined.strip():
            continue  # blank lines are allowed
        if len(fields) != n_cols:
            n_errors += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(f"line {line_no}: {len(fields)} fields, expected {n_cols}")
            continue
        if "'" in joined:
            rec = {c: unneutralise(f.strip()) for c, f in zip(cols, fields)}
        else:
            rec = dict(zip(cols, map(str.strip, fields)))
        problems = []
        if len(joined) > MAX_FIELD or control_search(joined):  # one check for the whole row first
            for c, v in rec.items():
                if len(v) > MAX_FIELD:
                    problems.append(f"{c} is longer than {MAX_FIELD} characters")
                if control_search(v):
                    problems.append(f"{c} contains control characters")
        store_id = rec["store_id"]
        if not STORE_ID_RE.match(store_id):
            problems.append(f"store_id {store_id[:40]!r} must be 1-64 letters, digits, '.', '_', ':' or '-'")
        if not rec["store_name"]:
            problems.append("store_name is empty")
        platform = rec["platform"].lower()
        account_id = None
        if platform not in SPECS:
            problems.append(f"unknown platform {rec['platform'][:40]!r}; expected one of {', '.join(PLATFORM_IDS)}")
        else:
            platform = SPECS[platform].id  # one shared string per platform
            try:
                account_id = normalizers[platform](rec["account_id"])
            except ValueError as exc:
                problems.append(str(exc))
        raw_ccy = rec.get("billing_currency") or "USD"
        currency = currencies.get(raw_ccy)
        if currency is None:
            try:
                currency = validate_currency(raw_ccy)
                currencies[raw_ccy] = currency
            except ValueError as exc:
                problems.append(str(exc))
        prev = store_meta.get(store_id)
        if prev and not problems and (prev[0] != rec["store_name"] or prev[1] != currency):
            problems.append(
                f"store {store_id} has name/currency {rec['store_name']!r}/{currency} here but "
                f"{prev[0]!r}/{prev[1]} on line {prev[2]}"
            )
        if problems:
            n_errors += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(f"line {line_no}: " + "; ".join(problems))
            continue
        if prev is None:
            store_meta[store_id] = (rec["store_name"], currency, line_no)
        if n_errors:
            continue  # nothing will be imported: keep only the messages
        out.store_id.append(store_id)
        out.platform.append(platform)
        out.account_id.append(account_id)
        out.display_name.append(rec.get("display_name") or None)
        if len(out.store_id) >= _BATCH_ROWS:
            out.flush()
    if n_errors:
        more = f"; and {n_errors - len(errors)} more bad lines" if n_errors > len(errors) else ""
        raise ImportError_(f"nothing imported: {n_errors} bad line(s): " + " | ".join(errors) + more)
    out.flush()
    if not out.rows:
        raise ImportError_("nothing imported: the file has a header but no rows")
    return out


def parse_import(data: bytes) -> list[dict]:
    """Rows of a mapping CSV, validated; ImportError_ listing every bad line."""
    p = _parse(data)
    return [
        {
            "store_id": r["store_id"],
            "store_name": p.stores[r["store_id"]][0],
            "billing_currency": p.stores[r["store_id"]][1],
            "platform": r["platform"],
            "account_id": r["account_id"],
            "display_name": r["display_name"],
        }
        for r in p.links().to_pylist()
    ]


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refused as soon as it passes ``limit`` (service/csv_input.py)."""
    return _read_capped(path, limit, ImportError_)


def import_accounts(store: SpendStore, path: Path) -> ImportResult:
    """Import a mapping CSV file (``accounts import``): see :func:`import_mapping`."""
    return import_mapping(store, read_capped(Path(path)))


def import_mapping(store: SpendStore, data: bytes) -> ImportResult:
    """Import a mapping CSV's bytes (a file, or the Accounts page's upload): all rows in one
    transaction, inserted in bulk (Arrow), or nothing (ImportError_ names every bad line)."""
    import pyarrow as pa

    parsed = _parse(data)
    stores = pa.table(
        {
            "store_id": list(parsed.stores),
            "name": [m[0] for m in parsed.stores.values()],
            "billing_currency": [m[1] for m in parsed.stores.values()],
        }
    )
    links = parsed.links()
    del parsed
    with store.transaction() as con:
        added, total = store.import_mapping(con, stores, links)
    return ImportResult(stores.num_rows, added, total - added)


# --- account writes of the Accounts page (moved from service/dashboard.py) -----------------------------

#: platform -> its account id form (the registry's ``PlatformSpec.id_form``)
ID_FORMS = {p: SPECS[p].id_form for p in PLATFORM_IDS}


def validate_store_id(store_id: str) -> str:
    s = (store_id or "").strip()
    if not STORE_ID_RE.match(s):
        raise ValueError(
            f"store id {s[:40]!r} must be 1-64 letters, digits, '.', '_', ':' or '-' (starting with a letter or digit)"
        )
    return s


def link_account(
    store: SpendStore, store_id: str, platform: str, raw_id: str, display_name: str = ""
) -> tuple[str, bool]:
    """Check the id against the platform's form and link it; (stored id, newly linked)."""
    check_text(display_name or "", "the display name")
    if store.store(store_id) is None:
        raise ValueError(f"unknown store {store_id!r}")
    s = spec(platform)  # an unknown platform: one clear sentence
    if not (raw_id or "").strip():
        raise ValueError(f"enter a {s.name} account id: {s.id_form}")
    try:
        account_id = normalize_account_id(platform, raw_id)
    except ValueError as exc:
        raise ValueError(f"{exc}. Expected form for {s.name}: {s.id_form}") from None
    with store.transaction() as con:
        added = store.link_accounts(con, [(store_id, platform, account_id, display_name.strip() or None)])
    return account_id, bool(added)


def export_mapping_csv(store: SpendStore) -> bytes:
    """The current mapping in the import format (round-trips through ``accounts import``: every
    column is text, neutralised by ``neutralise_text``, which the import undoes)."""
    from .export import neutralise_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
    names = {s["store_id"]: s for s in store.stores()}
    for a in store.accounts():
        s = names[a["store_id"]]
        w.writerow(
            [
                neutralise_text(v)
                for v in (
                    a["store_id"],
                    s["name"],
                    a["platform"],
                    a["account_id"],
                    s["billing_currency"],
                    a["display_name"] or "",
                )
            ]
        )
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
            continue  # the warning is advice: never fail the listing over it


def accounts_overview(store: SpendStore) -> dict:
    settings = load_settings()
    stores = store.stores()
    accounts = store.accounts()
    by_store: dict[str, list[dict]] = {}
    for a in accounts:
        by_store.setdefault(a["store_id"], []).append(
            {
                "platform": a["platform"],
                "account_id": a["account_id"],
                "display_name": a["display_name"],
                "currency": a["currency"],
                "timezone": a["timezone"],
            }
        )
    platforms = describe_platforms(settings)
    credential_warnings(platforms, settings)
    return {
        "stores": [{**s, "accounts": by_store.get(s["store_id"], [])} for s in stores],
        "platforms": platforms,
        **({"vault": settings.vault.describe()} if hasattr(settings.vault, "describe") else {}),
        **({"vault_error": settings.vault_error} if settings.vault_error else {}),
    }
