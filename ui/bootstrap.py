"""Page set-up shared by every page: page config, access gate, the cached store (demo stores on
first run), the banner (demo data from the sandbox / which platforms are live), navigation, and
``guard`` which turns any failure into a plain on-screen sentence instead of a traceback."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import streamlit as st

from service.facade import DatabaseBusy, DatabaseError, SpendStore, redact

from .format import escape_md

log = logging.getLogger("adspend.dashboard")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "data/adspend.duckdb"

#: Sidebar labels of the pages (the file name gives the label of any page not listed here).
PAGE_LABELS = {
    "app.py": "Store spend",
    "2_Portfolio_and_coverage.py": "Portfolio & coverage",
    "3_Revenue_impact.py": "Revenue impact",
    "4_Accounts.py": "Accounts",
    "5_Refresh_history.py": "Refresh history",
}


def _setting(key: str) -> str | None:
    """Environment first, then st.secrets (root key); None when neither has it."""
    value = os.environ.get(key)
    if value:
        return value
    try:
        value = st.secrets.get(key)
    except Exception:  # no secrets file at all raises (FileNotFoundError subclass)
        return None
    return str(value) if value else None


def db_path() -> str:
    return os.environ.get("ADSPEND_DB") or DEFAULT_DB


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> SpendStore:
    """One SpendStore per database path (it holds no open connection). A database without any
    store gets the demo stores, so a fresh machine opens a working dashboard."""
    from service.demo import create_demo

    store = SpendStore(path)  # read-only when the file cannot be written (storage/db.py)
    if not store.read_only and not store.stores():
        create_demo(store)
    return store


@st.cache_resource(show_spinner=False)
def _sandbox() -> str:
    """Start the built-in sandbox (in this process, on a free loopback port) once."""
    from service.sandbox_runtime import sandbox_url

    return sandbox_url()


def get_store() -> SpendStore:
    return _open_store(db_path())


@st.cache_resource(show_spinner=False, ttl=60)
def _described() -> tuple[list[dict], str | None]:
    from service.accounts import credential_warnings
    from service.config import describe_platforms, load_settings

    settings = load_settings()
    described = describe_platforms(settings)
    credential_warnings(described, settings)  # expiry warnings (first-seen dates, never values)
    return described, settings.vault_error


def settings_described() -> list[dict]:
    """describe_platforms(load_settings()): key names and sources only, never values."""
    return _described()[0]


def vault_warning() -> str | None:
    """The plain-http warning for VAULT_ADDR (token unencrypted to another host), or None."""
    from service.config import load_settings
    from service.vault import plain_http_warning

    addr = load_settings().get("VAULT_ADDR")
    return plain_http_warning(addr) if addr else None


def _message(exc: BaseException) -> str:
    if isinstance(exc, DatabaseBusy):
        return f"The database is busy: {exc}. Wait for the other job to finish, then reload the page."
    if isinstance(exc, DatabaseError):
        return f"The database cannot be used: {exc}."
    from service.invoice_register import RegisterBroken

    if isinstance(exc, RegisterBroken):  # a tampered invoice register: say so plainly
        return f"{str(exc)[:1].upper()}{str(exc)[1:]}."
    text = str(exc) or type(exc).__name__
    return redact(f"Something went wrong ({type(exc).__name__}): {text}")


@contextlib.contextmanager
def guard(what: str = "this page"):
    """Run a page body; any error becomes one plain st.error sentence (no traceback).
    Streamlit's own stop/rerun signals are BaseExceptions and pass through."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - shown to the user, logged without secrets
        log.error("error on %s: %s", what, redact(repr(exc)))
        log.debug("traceback", exc_info=True)
        st.error(escape_md(f"Could not show {what}. {_message(exc)}"))


def _gate() -> None:
    password = _setting("ADSPEND_APP_PASSWORD")
    if not password:
        return
    if st.session_state.get("_auth_ok"):
        return
    st.title("Ad Spend Hub")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="_password")
        ok = st.form_submit_button("Enter")
    if ok:
        from .login import check, client_key  # throttled and logged (never the password)

        accepted, message = check(given, password, client_key())
        if accepted:
            st.session_state["_auth_ok"] = True
            st.session_state.pop("_password", None)
            st.rerun()
        st.error(message)
    st.stop()


def _nav() -> None:
    pages = [ROOT / "app.py"] + sorted((ROOT / "pages").glob("[!._]*.py"))
    with st.sidebar:
        st.markdown("**Ad Spend Hub**")
        for p in pages:
            rel = p.relative_to(ROOT).as_posix()
            label = PAGE_LABELS.get(p.name) or p.stem.split("_", 1)[-1].replace("_", " ")
            st.page_link(rel, label=label)
        st.divider()


def _banner(store: SpendStore) -> None:
    stores = store.stores()
    demo = [s for s in stores if s["is_demo"]]
    described = settings_described()
    live = [d["name"] for d in described if d["mode"] == "live"]
    if demo:
        url = _sandbox()
        st.info(
            f"Demo data: the {len(demo)} demo stores are served by the built-in sandbox at {url} "
            "(not the real ad platforms); their numbers are made up.",
            icon=":material/science:",
        )
    if live:
        st.success(
            f"Live APIs: {', '.join(live)} (credentials set); real stores on these platforms are "
            "fetched from the real APIs.",
            icon=":material/cloud_done:",
        )
    else:
        st.caption(
            "No platform credentials are set: real stores' platforms show as not configured. See the Accounts page."
        )
    if not _setting("ADSPEND_APP_PASSWORD"):
        st.caption("This dashboard is open to anyone who can reach it; set ADSPEND_APP_PASSWORD to require a password.")


#: the tab's icon, drawn here: Streamlit turns a ":material/...:" page icon into an image fetched
#: from fonts.gstatic.com, a request off the machine on every page (and none at all offline)
FAVICON = Path(__file__).with_name("favicon.svg")


def bootstrap(title: str) -> SpendStore | None:
    """Call first on every page. Returns the store, or None after showing why it is unusable."""
    st.set_page_config(page_title=f"{title} · Ad Spend Hub", page_icon=str(FAVICON), layout="wide")
    _gate()
    _nav()
    try:
        store = get_store()
    except Exception as exc:  # noqa: BLE001
        log.error("cannot open the database: %s", redact(repr(exc)))
        st.error(escape_md(f"Could not open the database {db_path()}. {_message(exc)}"))
        return None
    if store.read_only:
        st.warning(
            f"The database {db_path()} cannot be written here (file or folder permissions): it is "
            "shown read-only, and saving, importing, refreshing or finalizing will not work.",
            icon=":material/lock:",
        )
    with guard("the banner"):
        _banner(store)
    with guard("the first fetch of the demo stores"):
        from .freshness import first_start

        first_start(store)
    return store
