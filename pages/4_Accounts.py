"""Accounts (admin): stores and their billing currency, add/edit a store, link and unlink ad
accounts, import/export the mapping CSV, and credential status per platform (names only)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from service import accounts
from service.accounts import ImportError_, export_mapping_csv, validate_currency
from service.facade import PLATFORM_IDS, SPECS
from ui.alerts import budget_editor

store = ui.bootstrap("Accounts")


def flash(kind: str, text: str) -> None:
    st.session_state["accounts_flash"] = (kind, text)


if store is not None:
    with ui.guard("the accounts page"):
        st.title("Accounts")
        msg = st.session_state.pop("accounts_flash", None)
        if msg:
            getattr(st, msg[0])(ui.escape_md(msg[1]))
        stores = store.stores()
        links = store.accounts()
        counts = {}
        for a in links:
            counts[a["store_id"]] = counts.get(a["store_id"], 0) + 1
        st.subheader("Stores")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "store": s["store_id"],
                        "name": s["name"],
                        "billing currency": s["billing_currency"],
                        "demo": s["is_demo"],
                        "accounts": counts.get(s["store_id"], 0),
                    }
                    for s in stores
                ],
                columns=["store", "name", "billing currency", "demo", "accounts"],
            ),
            hide_index=True,
            key="stores_table",
        )

        with st.expander("Add or edit a store", expanded=not stores):
            with st.form("store_form", clear_on_submit=False):
                sid = st.text_input("Store id", key="new_store_id", help="Existing id = edit that store.")
                name = st.text_input("Name", key="new_store_name")
                ccy = st.text_input("Billing currency (ISO code)", value="USD", key="new_store_ccy")
                if st.form_submit_button("Save store"):
                    try:
                        sid_ok = accounts.validate_store_id(sid)
                        if not name.strip():
                            raise ValueError("enter the store's name")
                        existing = store.store(sid_ok)
                        store.save_store(
                            sid_ok, name.strip(), validate_currency(ccy), bool(existing and existing["is_demo"])
                        )
                        flash("success", f"Saved store {sid_ok} ({name.strip()}, {validate_currency(ccy)}).")
                        st.rerun()
                    except ValueError as exc:
                        st.error(ui.escape_md(f"Not saved: {exc}."))

        if stores:
            by_id = {s["store_id"]: s for s in stores}
            st.subheader("Ad accounts of a store")
            target = st.selectbox(
                "Store",
                list(by_id),
                key="accounts_store",
                format_func=lambda s: f"{by_id[s]['name']} ({s})" if s in by_id else s,
            )
            mine = [a for a in links if a["store_id"] == target]
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "platform": SPECS[a["platform"]].name,
                            "account": a["account_id"],
                            "name": a["display_name"] or a["platform_name"] or "",
                            "currency": a["currency"] or "(not fetched yet)",
                            "timezone": a["timezone"] or "",
                        }
                        for a in mine
                    ],
                    columns=["platform", "account", "name", "currency", "timezone"],
                ),
                hide_index=True,
                key="links_table",
            )
            left, right = st.columns(2)
            with left.form("link_form"):
                platform = st.selectbox(
                    "Platform", PLATFORM_IDS, key="link_platform", format_func=lambda p: SPECS[p].name
                )
                raw = st.text_input(
                    "Account id",
                    key="link_account_id",
                    help="; ".join(f"{SPECS[p].name}: {f}" for p, f in accounts.ID_FORMS.items()),
                )
                display = st.text_input("Display name (optional)", key="link_display")
                if st.form_submit_button("Link account"):
                    try:
                        account_id, added = accounts.link_account(store, target, platform, raw, display)
                        flash(
                            "success",
                            f"Linked {SPECS[platform].name} account {account_id} to {target}."
                            if added
                            else f"{SPECS[platform].name} account {account_id} was already linked.",
                        )
                        st.rerun()
                    except ValueError as exc:
                        st.error(ui.escape_md(f"Not linked: {exc}"))
            with right.form("unlink_form"):
                options = [f"{a['platform']}|{a['account_id']}" for a in mine]
                chosen = st.selectbox(
                    "Linked account",
                    options,
                    key="unlink_choice",
                    format_func=lambda o: f"{SPECS[o.split('|')[0]].name} {o.split('|', 1)[1]}",
                )
                if st.form_submit_button("Unlink account", disabled=not options) and chosen:
                    p, a = chosen.split("|", 1)
                    if store.unlink_account(target, p, a):
                        flash(
                            "success", f"Unlinked {SPECS[p].name} account {a} from {target}; its stored spend is kept."
                        )
                    st.rerun()
            st.caption("Account id forms: " + "; ".join(f"{SPECS[p].name}: {f}" for p, f in accounts.ID_FORMS.items()))
            budget_editor(store, target, by_id[target]["billing_currency"])

        st.subheader("Import and export the mapping")
        st.caption(
            "CSV header store_id,store_name,platform,account_id (optional billing_currency, display_name), "
            "the same format as `python cli.py accounts import`. A file with any bad row imports nothing."
        )
        up = st.file_uploader("Mapping CSV", type=["csv"], key="mapping_upload")
        if up is not None and st.button("Import", key="import_button"):
            try:
                res = accounts.import_mapping(store, up.getvalue())
                flash(
                    "success",
                    f"Imported {res.stores} store(s): {res.added} new account link(s), {res.unchanged} unchanged.",
                )
                st.rerun()
            except ImportError_ as exc:
                st.error(ui.escape_md(str(exc)))
        st.download_button(
            "Export mapping CSV",
            data=export_mapping_csv(store),
            file_name="account_mapping.csv",
            mime="text/csv",
            on_click="ignore",
            key="export_mapping",
        )

        st.subheader("Credentials")
        st.caption(
            "Which variables are set and where from; values are never shown. Demo stores always use the "
            "built-in sandbox."
        )
        described = ui.settings_described()
        if ui.vault_warning():
            st.warning(ui.vault_warning())
        for d in described:
            for warning in (d.get("warning"), d.get("rotation_warning")):
                if warning:
                    st.warning(ui.escape_md(f"{d['name']}: {warning}"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "platform": d["name"],
                        "tier": d["tier"],
                        "mode": "live" if d["mode"] == "live" else "not configured (sandbox for demo)",
                        "set": ", ".join(d["set"]),
                        "missing": ", ".join(d["missing"]),
                        "from": ", ".join(d["sources"]),
                        "environment": d.get("environment") or "",
                        "vault path": d.get("vault_path") or "",
                        "secret age (days)": d.get("secret_age_days"),
                        "warning": "; ".join(w for w in (d.get("warning"), d.get("rotation_warning")) if w),
                        "error": d.get("error") or "",
                    }
                    for d in described
                ]
            ),
            hide_index=True,
            key="credentials_table",
            column_config={
                c: st.column_config.TextColumn(c, width="large")  # lists: never cut short
                for c in ("set", "missing", "warning", "error")
            },
        )
        ui.page_state(f"accounts | {len(stores)} stores | {len(links)} links")
