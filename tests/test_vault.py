"""Credentials from Vault (KV v2), through the real ``hvac`` client against a loopback stand-in.

Per platform and environment; precedence environment > .env > secrets.toml > Vault; a missing
secret is not_configured; a wrong token / unreachable Vault is one clear error and `failed`, never
`ok` or $0; a rotated refresh token is written back as a new version keeping the other keys (with
check-and-set); the secret's age and the 80-day warning; no secret value in logs or output.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from decimal import ROUND_HALF_UP, Decimal

import pytest
from vault_standin import VaultStandIn

from service.config import describe_platforms, load_settings, platform_config
from service.vault import VaultConfigError, VaultError, VaultSource, parse_vault_time, split_template

TOKEN = "hvs.standin-operator-token-7f3a"
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=2)
START = END - dt.timedelta(days=4)
PIN_ACCOUNT = "549755885175"

PINTEREST = {
    "PINTEREST_APP_ID": "sandbox-pinterest-app",
    "PINTEREST_APP_SECRET": "sandbox-pinterest-secret",
    "PINTEREST_REFRESH_TOKEN": "pinr.sandbox-pinterest-refresh",
}


@pytest.fixture
def vault():
    v = VaultStandIn(token=TOKEN).start()
    try:
        yield v
    finally:
        v.stop()


@pytest.fixture
def vault_env(vault, monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    return vault


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _settings(vault, root, **extra):
    return load_settings(environ={"VAULT_ADDR": vault.url, "VAULT_TOKEN": TOKEN, **extra}, root=root)


# --- the path template ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template,env,expected",
    [
        (None, None, ("secret", "kiki/ad-platforms/tiktok")),
        ("secret/kiki/ad-platforms", "prod", ("secret", "kiki/ad-platforms/tiktok")),
        ("secret/kiki/ad-platforms/{env}", "prod", ("secret", "kiki/ad-platforms/prod/tiktok")),
        ("/kv/ads/{platform}/{env}/", "staging", ("kv", "ads/tiktok/staging")),
        ("kv/{env}/ads", "dev", ("kv", "dev/ads/tiktok")),
    ],
)
def test_path_template(template, env, expected):
    assert split_template(template, env, "tiktok") == expected


@pytest.mark.parametrize(
    "template,env,needle",
    [
        ("secret/kiki/{env}", None, "uses {env} but ADSPEND_ENV is not set"),
        ("secret/kiki/{region}", "prod", "unknown placeholder {region}"),
        ("{env}", "prod", "must look like <mount>/<path>"),
    ],
)
def test_bad_template_is_one_sentence(template, env, needle):
    with pytest.raises(VaultConfigError, match=None) as exc:
        split_template(template, env, "meta")
    assert needle in str(exc.value)


def test_vault_timestamps_keep_microseconds():
    assert parse_vault_time("2026-03-01T10:20:30.123456789Z") == dt.datetime(
        2026, 3, 1, 10, 20, 30, 123456, tzinfo=dt.UTC
    )
    assert parse_vault_time("0001-01-01T00:00:00Z") is None
    assert parse_vault_time("") is None


# --- reading per platform and environment ---------------------------------------------------------


def test_secrets_read_per_platform_and_environment_one_read_each(vault, tmp_path):
    vault.put("kiki/ad-platforms/prod/tiktok", {"TIKTOK_ACCESS_TOKEN": "tt-prod-0001", "TIKTOK_APP_ID": "app-p"})
    vault.put("kiki/ad-platforms/dev/tiktok", {"TIKTOK_ACCESS_TOKEN": "tt-dev-0002", "TIKTOK_APP_ID": "app-d"})
    vault.put("kiki/ad-platforms/prod/meta", {"META_ACCESS_TOKEN": "meta-prod-0003", "UNRELATED": "x-ignored"})
    tpl = "secret/kiki/ad-platforms/{env}"

    prod = _settings(vault, tmp_path, ADSPEND_VAULT_PATH=tpl, ADSPEND_ENV="prod")
    for _ in range(3):  # cached: one read per platform per run
        cfg = platform_config(prod, "tiktok")
    assert (cfg.mode, cfg.error) == ("live", None)
    assert cfg.credentials == {"TIKTOK_ACCESS_TOKEN": "tt-prod-0001", "TIKTOK_APP_ID": "app-p"}
    assert cfg.sources == {"TIKTOK_ACCESS_TOKEN": "vault", "TIKTOK_APP_ID": "vault"}
    meta = platform_config(prod, "meta")
    assert meta.credentials == {"META_ACCESS_TOKEN": "meta-prod-0003"}  # only the platform's own keys
    assert vault.count("GET", "/data/kiki/ad-platforms/prod/tiktok") == 1

    dev = _settings(vault, tmp_path, ADSPEND_VAULT_PATH=tpl, ADSPEND_ENV="dev")
    assert platform_config(dev, "tiktok").credentials == {
        "TIKTOK_ACCESS_TOKEN": "tt-dev-0002",
        "TIKTOK_APP_ID": "app-d",
    }
    # dev has no meta secret: not configured, not an error
    m = platform_config(dev, "meta")
    assert (m.mode, m.error, m.usable) == ("not_configured", None, False)

    # without {env} the default template reads <path>/<platform>; ADSPEND_ENV is only a label then
    vault.put("kiki/ad-platforms/tiktok", {"TIKTOK_ACCESS_TOKEN": "tt-flat-0004"})
    flat = _settings(vault, tmp_path, ADSPEND_ENV="staging")
    assert platform_config(flat, "tiktok").credentials == {"TIKTOK_ACCESS_TOKEN": "tt-flat-0004"}
    d = {x["platform"]: x for x in describe_platforms(flat)}
    assert d["tiktok"]["sources"] == ["vault"] and d["tiktok"]["environment"] == "staging"
    assert d["tiktok"]["vault_path"] == "secret/kiki/ad-platforms/tiktok"
    assert "tt-flat-0004" not in json.dumps(d, default=str)


def test_namespace_header_is_sent(tmp_path):
    v = VaultStandIn(token=TOKEN, namespace="admin/agency").start()
    try:
        v.put("kiki/ad-platforms/meta", {"META_ACCESS_TOKEN": "meta-ns-0005"})
        ok = _settings(v, tmp_path, VAULT_NAMESPACE="admin/agency")
        assert platform_config(ok, "meta").credentials == {"META_ACCESS_TOKEN": "meta-ns-0005"}
        wrong = _settings(v, tmp_path)  # no namespace: the token is not valid at the root
        cfg = platform_config(wrong, "meta")
        assert cfg.mode == "not_configured" and not cfg.usable
        assert cfg.error.startswith(f"Vault at {v.url} refused the token for secret/kiki/ad-platforms/meta")
    finally:
        v.stop()


def test_precedence_environment_dotenv_secrets_toml_vault(vault, tmp_path, monkeypatch):
    monkeypatch.delenv("ADSPEND_NO_DOTENV", raising=False)
    vault.put(
        "kiki/ad-platforms/google",
        {
            "GOOGLE_ADS_DEVELOPER_TOKEN": "dev-from-vault",
            "GOOGLE_ADS_CLIENT_ID": "id-from-vault",
            "GOOGLE_ADS_CLIENT_SECRET": "secret-from-vault",
            "GOOGLE_ADS_REFRESH_TOKEN": "refresh-from-vault",
            "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "1112223333",
        },
    )
    vault.put("kiki/ad-platforms/meta", {"META_ACCESS_TOKEN": "meta-from-vault"})
    (tmp_path / ".env").write_text("GOOGLE_ADS_DEVELOPER_TOKEN=dev-from-dotenv\nGOOGLE_ADS_CLIENT_ID=id-from-dotenv\n")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        'GOOGLE_ADS_DEVELOPER_TOKEN = "dev-from-toml"\nGOOGLE_ADS_CLIENT_ID = "id-from-toml"\n'
        'GOOGLE_ADS_CLIENT_SECRET = "secret-from-toml"\n'
    )
    s = _settings(vault, tmp_path, GOOGLE_ADS_DEVELOPER_TOKEN="dev-from-env", META_ACCESS_TOKEN="meta-from-env")
    g = platform_config(s, "google")
    assert g.credentials == {
        "GOOGLE_ADS_DEVELOPER_TOKEN": "dev-from-env",
        "GOOGLE_ADS_CLIENT_ID": "id-from-dotenv",
        "GOOGLE_ADS_CLIENT_SECRET": "secret-from-toml",
        "GOOGLE_ADS_REFRESH_TOKEN": "refresh-from-vault",
        "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "1112223333",
    }
    assert g.sources == {
        "GOOGLE_ADS_DEVELOPER_TOKEN": "environment",
        "GOOGLE_ADS_CLIENT_ID": ".env",
        "GOOGLE_ADS_CLIENT_SECRET": "secrets.toml",
        "GOOGLE_ADS_REFRESH_TOKEN": "vault",
        "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "vault",
    }
    m = platform_config(s, "meta")  # fully set by the environment: Vault not asked
    assert m.credentials == {"META_ACCESS_TOKEN": "meta-from-env"} and m.sources == {"META_ACCESS_TOKEN": "environment"}
    assert vault.count("GET", "/kiki/ad-platforms/meta") == 0
    # Vault itself may be configured from secrets.toml
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'VAULT_ADDR = "{vault.url}"\nVAULT_TOKEN = "{TOKEN}"\n')
    s2 = load_settings(environ={}, root=tmp_path)
    assert platform_config(s2, "meta").credentials == {"META_ACCESS_TOKEN": "meta-from-vault"}


# --- failures: one clear error, never ok, never $0 --------------------------------------------------


@pytest.mark.parametrize("case", ["wrong_token", "unreachable", "no_token", "no_mount", "bad_env"])
def test_vault_failures_are_one_clear_sentence(vault, tmp_path, case):
    vault.put("kiki/ad-platforms/tiktok", {"TIKTOK_ACCESS_TOKEN": "tt-0006"})
    env = {"VAULT_ADDR": vault.url, "VAULT_TOKEN": TOKEN}
    expected = {
        "wrong_token": f"Vault at {vault.url} refused the token for secret/kiki/ad-platforms/{{p}} (permission "
        "denied); check that VAULT_TOKEN is valid and not expired, and that its policy allows read "
        "on secret/data/kiki/ad-platforms/{p}",
        "unreachable": "is unreachable (ConnectionError); check VAULT_ADDR and that Vault is running and reachable "
        "from this machine",
        "no_token": "VAULT_ADDR is set but VAULT_TOKEN is not; set VAULT_TOKEN",
        "no_mount": "has no KV version 2 mount 'kv'; check ADSPEND_VAULT_PATH",
        "bad_env": "ADSPEND_ENV must be one of dev, staging, prod, not 'production'",
    }[case]
    if case == "wrong_token":
        env["VAULT_TOKEN"] = "hvs.revoked-token-0000"
    elif case == "unreachable":
        env["VAULT_ADDR"] = f"http://127.0.0.1:{_closed_port()}"
    elif case == "no_token":
        del env["VAULT_TOKEN"]
    elif case == "no_mount":
        env["ADSPEND_VAULT_PATH"] = "kv/kiki/ad-platforms"
    else:
        env["ADSPEND_ENV"] = "production"
    s = load_settings(environ=env, root=tmp_path)
    for pid in ("tiktok", "meta"):
        cfg = platform_config(s, pid)
        assert cfg.mode == "not_configured" and not cfg.usable
        assert expected.replace("{p}", pid) in cfg.error and "Vault" in cfg.error and "\n" not in cfg.error
    assert expected.replace("{p}", "tiktok") in s.vault_error  # the first failure, once per run
    assert "hvs.revoked-token-0000" not in s.vault_error and TOKEN not in s.vault_error


def test_unreachable_vault_is_tried_once_per_run(tmp_path):
    s = load_settings(environ={"VAULT_ADDR": f"http://127.0.0.1:{_closed_port()}", "VAULT_TOKEN": TOKEN}, root=tmp_path)
    calls = []
    real = s.vault._fetch
    s.vault._fetch = lambda p: calls.append(p) or real(p)
    describe_platforms(s)
    assert calls == ["meta"]  # the other eight reuse the first failure
    assert all(d["error"] == s.vault_error for d in describe_platforms(s))


def _import(tmp_path, run_cli, rows):
    csv = tmp_path / "accounts.csv"
    csv.write_text("store_id,store_name,platform,account_id\n" + "".join(f"s1,Acme,{p},{a}\n" for p, a in rows))
    r = run_cli("accounts", "import", csv)
    assert r.returncode == 0, r


@pytest.mark.parametrize("case", ["wrong_token", "unreachable"])
def test_cli_refresh_with_vault_down_exits_1_with_one_line(vault, tmp_path, run_cli, monkeypatch, caplog, case):
    vault.put("kiki/ad-platforms/tiktok", {"TIKTOK_ACCESS_TOKEN": "tt-secret-0007"})
    _import(tmp_path, run_cli, [("tiktok", "7123456789012345"), ("meta", "1000000001")])
    monkeypatch.setenv("VAULT_TOKEN", TOKEN if case == "unreachable" else "hvs.wrong-token-0008")
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{_closed_port()}" if case == "unreachable" else vault.url)
    caplog.set_level(logging.DEBUG)
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat())
    assert r.returncode == 1, r
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: Vault at "), r
    assert ("check VAULT_ADDR" if case == "unreachable" else "check that VAULT_TOKEN is valid") in err[0]
    lines = {ln.split()[1]: ln.split()[2] for ln in r.stdout.splitlines() if ln.startswith("s1 ")}
    assert lines == {"meta": "failed", "tiktok": "failed"}
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    assert doc["complete"] is False and doc["total_spend"] == "0.00"
    assert all(
        v["status"] == "failed" and v["accounts"] == [] and v["error"].startswith("Vault at ")
        for v in doc["platforms"].values()
    )
    for text in (r.stdout, r.stderr, caplog.text):
        assert TOKEN not in text and "hvs.wrong-token-0008" not in text and "tt-secret-0007" not in text


def test_missing_secret_is_not_configured_through_the_cli(vault_env, tmp_path, run_cli):
    vault_env.put("kiki/ad-platforms/meta", {"META_ACCESS_TOKEN": "meta-only-0009"})
    _import(tmp_path, run_cli, [("reddit", "t2_abc123")])
    r = run_cli("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat())
    assert r.returncode == 0 and r.stderr == "", r
    assert [ln.split()[1:3] for ln in r.stdout.splitlines() if ln.startswith("s1 ")] == [["reddit", "not_configured"]]
    assert vault_env.count("GET", "/data/kiki/ad-platforms/reddit") == 1
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    assert doc["platforms"]["reddit"]["status"] == "not_configured"


# --- rotation write-back -------------------------------------------------------------------------


def test_rotated_refresh_token_written_back_and_used_by_another_machine(
    vault_env, sandbox, tmp_path, run_cli, monkeypatch, caplog, db_path
):
    vault = vault_env
    vault.put("kiki/ad-platforms/pinterest", {**PINTEREST, "NOTES": "owner: media team"})
    monkeypatch.setenv("PINTEREST_API_BASE_URL", sandbox.url)
    monkeypatch.setenv("PINTEREST_TOKEN_URL", sandbox.url + "/v5/oauth/token")
    _import(tmp_path, run_cli, [("pinterest", PIN_ACCOUNT)])
    caplog.set_level(logging.DEBUG)
    args = ("refresh", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--full")

    r = run_cli(*args)
    assert r.returncode == 0, r
    version, data = vault.latest("kiki/ad-platforms/pinterest")
    assert version == 2
    rotated = data["PINTEREST_REFRESH_TOKEN"]
    assert rotated.startswith("pinr.sbx-") and rotated != PINTEREST["PINTEREST_REFRESH_TOKEN"]
    assert data == {**PINTEREST, "NOTES": "owner: media team", "PINTEREST_REFRESH_TOKEN": rotated}
    assert vault.version("kiki/ad-platforms/pinterest", 1) == {**PINTEREST, "NOTES": "owner: media team"}
    assert vault.secrets[("secret", "kiki/ad-platforms/pinterest")].custom_metadata == {
        "adspend_writeback_versions": "2"
    }

    # another machine: no local token cache, only Vault (the sandbox refuses the retired token)
    monkeypatch.setenv("ADSPEND_TOKEN_CACHE", str(tmp_path / "other-machine" / "token_cache.json"))
    r2 = run_cli(*args)
    assert r2.returncode == 0, r2
    v3, data3 = vault.latest("kiki/ad-platforms/pinterest")
    assert v3 == 3 and data3["PINTEREST_REFRESH_TOKEN"] not in (rotated, PINTEREST["PINTEREST_REFRESH_TOKEN"])
    assert sandbox.ctx.token_grants["pinterest"] == 2
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    expected = sandbox.sandbox.expected_total("pinterest", PIN_ACCOUNT, START, END)
    assert doc["platforms"]["pinterest"]["status"] == "ok"
    assert expected["currency"] == "USD"
    assert doc["platforms"]["pinterest"]["accounts"][0]["spend"] == str(
        Decimal(expected["spend"]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    )

    secrets = [
        TOKEN,
        rotated,
        data3["PINTEREST_REFRESH_TOKEN"],
        PINTEREST["PINTEREST_APP_SECRET"],
        PINTEREST["PINTEREST_REFRESH_TOKEN"],
    ]
    raw_db = db_path.read_bytes()
    for value in secrets:
        for text in (r.stdout, r.stderr, r2.stdout, r2.stderr, caplog.text):
            assert value not in text
        assert value.encode() not in raw_db


def _source(vault, **extra) -> VaultSource:
    return VaultSource.from_settings({"VAULT_ADDR": vault.url, "VAULT_TOKEN": TOKEN, **extra})


def test_write_back_keeps_a_concurrent_change_of_other_keys(vault):
    vault.put(
        "kiki/ad-platforms/reddit",
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsecret-1", "REDDIT_REFRESH_TOKEN": "rrefresh-1"},
    )
    src = _source(vault)
    src.read("reddit")
    src.note_used("reddit", ["REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_REFRESH_TOKEN"])
    # an operator rotates the client secret between our read and our write: the cas write fails once,
    # we read again and write on top of their version
    vault.before_write = lambda v, m, p: v._write(
        m, p, {**v.version(p, 1), "REDDIT_CLIENT_SECRET": "rsecret-2"}, v.clock()
    )
    assert src.write_back("reddit", "REDDIT_REFRESH_TOKEN", "rrefresh-2") is True
    assert vault.latest("kiki/ad-platforms/reddit") == (
        3,
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsecret-2", "REDDIT_REFRESH_TOKEN": "rrefresh-2"},
    )
    assert vault.count("POST", "/data/kiki/ad-platforms/reddit") == 2  # one refused (cas), one written
    assert src.writeback_errors == []


def test_write_back_never_clobbers_a_concurrent_rotation(vault, caplog):
    vault.put(
        "kiki/ad-platforms/reddit",
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsecret-1", "REDDIT_REFRESH_TOKEN": "rrefresh-1"},
    )
    src = _source(vault)
    src.read("reddit")
    src.note_used("reddit", ["REDDIT_REFRESH_TOKEN"])
    vault.put(
        "kiki/ad-platforms/reddit",
        {
            "REDDIT_CLIENT_ID": "rid",
            "REDDIT_CLIENT_SECRET": "rsecret-1",
            "REDDIT_REFRESH_TOKEN": "rrefresh-from-machine-b",
        },
    )
    caplog.set_level(logging.DEBUG)
    assert src.write_back("reddit", "REDDIT_REFRESH_TOKEN", "rrefresh-from-machine-a") is False
    assert vault.latest("kiki/ad-platforms/reddit")[0] == 2
    assert vault.latest("kiki/ad-platforms/reddit")[1]["REDDIT_REFRESH_TOKEN"] == "rrefresh-from-machine-b"
    assert src.writeback_errors == [
        "reddit: rotated refresh token not written back to Vault: REDDIT_REFRESH_TOKEN "
        "in Vault secret secret/kiki/ad-platforms/reddit was changed by someone else "
        "during this run; kept theirs"
    ]
    assert "rrefresh" not in caplog.text


def test_write_back_skips_keys_not_taken_from_vault_and_survives_a_refusal(vault, tmp_path):
    vault.put(
        "kiki/ad-platforms/reddit",
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsecret-1", "REDDIT_REFRESH_TOKEN": "rrefresh-vault"},
    )
    s = _settings(vault, tmp_path, REDDIT_REFRESH_TOKEN="rrefresh-env")
    cfg = platform_config(s, "reddit")
    assert cfg.sources["REDDIT_REFRESH_TOKEN"] == "environment" and cfg.sources["REDDIT_CLIENT_ID"] == "vault"
    assert s.vault.write_back("reddit", "REDDIT_REFRESH_TOKEN", "rrefresh-env-2") is False
    assert vault.latest("kiki/ad-platforms/reddit")[0] == 1 and vault.count("POST", "/") == 0

    s2 = _settings(vault, tmp_path)
    platform_config(s2, "reddit")
    vault.deny.add("secret/kiki/ad-platforms/reddit")  # the token may read (cached) but not write
    assert s2.vault.write_back("reddit", "REDDIT_REFRESH_TOKEN", "rrefresh-2") is False
    assert len(s2.vault.writeback_errors) == 1 and "refused the token" in s2.vault.writeback_errors[0]
    assert "allows update on secret/data/kiki/ad-platforms/reddit" in s2.vault.writeback_errors[0]


# --- rotation hygiene: the secret's age --------------------------------------------------------------


def test_secret_age_warning_past_80_days_and_write_backs_do_not_reset_it(vault, tmp_path, run_cli, monkeypatch):
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    path = "kiki/ad-platforms/prod/reddit"
    vault.put(
        path,
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsec", "REDDIT_REFRESH_TOKEN": "rr-1"},
        at=now - dt.timedelta(days=81, hours=1),
    )
    vault.put("kiki/ad-platforms/prod/meta", {"META_ACCESS_TOKEN": "meta-0010"}, at=now - dt.timedelta(days=80))
    src = _source(vault, ADSPEND_VAULT_PATH="secret/kiki/ad-platforms/{env}", ADSPEND_ENV="prod")
    assert src.secret_age("meta", now) == {
        "vault_path": "secret/kiki/ad-platforms/prod/meta",
        "secret_version": 1,
        "secret_written_at": (now - dt.timedelta(days=80)).isoformat(),
        "secret_age_days": 80,
        "rotation_warning": None,
    }
    age = src.secret_age("reddit", now)
    assert age["secret_age_days"] == 81 and age["rotation_warning"] == (
        "the Vault secret secret/kiki/ad-platforms/prod/reddit was last rotated 81 days ago; rotate it "
        "(every 90 days per the plan)"
    )

    vault.clock = lambda: now  # a refresh-token write-back today
    src.read("reddit")
    src.note_used("reddit", ["REDDIT_REFRESH_TOKEN"])
    assert src.write_back("reddit", "REDDIT_REFRESH_TOKEN", "rr-2") is True
    age = src.secret_age("reddit", now)
    assert (age["secret_version"], age["secret_age_days"]) == (2, 81)  # still counts from the operator's v1

    vault.put(
        path,
        {"REDDIT_CLIENT_ID": "rid", "REDDIT_CLIENT_SECRET": "rsec-new", "REDDIT_REFRESH_TOKEN": "rr-3"},
        at=now - dt.timedelta(days=1),
    )  # the operator rotates
    src2 = _source(vault, ADSPEND_VAULT_PATH="secret/kiki/ad-platforms/{env}", ADSPEND_ENV="prod")
    assert src2.secret_age("reddit", now)["secret_age_days"] == 1
    assert src2.secret_age("reddit", now)["rotation_warning"] is None

    # accounts list shows source, environment, path, age and the warning (never a value)
    vault.put(
        "kiki/ad-platforms/prod/meta",
        {"META_ACCESS_TOKEN": "meta-0011"},
        at=dt.datetime.now(dt.UTC) - dt.timedelta(days=85),
    )
    monkeypatch.setenv("VAULT_ADDR", vault.url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    monkeypatch.setenv("ADSPEND_VAULT_PATH", "secret/kiki/ad-platforms/{env}")
    monkeypatch.setenv("ADSPEND_ENV", "prod")
    r = run_cli("accounts", "list")
    assert r.returncode == 0, r
    meta_line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("meta "))
    assert "from vault [prod] (secret/kiki/ad-platforms/prod/meta v2, 85 days old)" in meta_line
    assert "WARNING: the Vault secret secret/kiki/ad-platforms/prod/meta was last rotated 85 days ago" in meta_line
    assert f"vault      {vault.url}  path secret/kiki/ad-platforms/{{env}}  environment prod" in r.stdout
    doc = run_cli("accounts", "list", "--json").json()
    meta = next(p for p in doc["platforms"] if p["platform"] == "meta")
    assert (meta["sources"], meta["environment"], meta["secret_age_days"]) == (["vault"], "prod", 85)
    assert doc["vault"] == {
        "addr": vault.url,
        "namespace": "",
        "path_template": "secret/kiki/ad-platforms/{env}",
        "environment": "prod",
    }
    for value in ("meta-0011", "rsec-new", "rr-3", TOKEN):
        assert value not in r.stdout and value not in json.dumps(doc)


def test_errors_from_vault_never_carry_the_token(vault):
    src = VaultSource.from_settings({"VAULT_ADDR": vault.url, "VAULT_TOKEN": "hvs.leaky-0012"})
    with pytest.raises(VaultError) as exc:
        src.read("meta")
    assert "hvs.leaky-0012" not in str(exc.value) and "refused the token" in str(exc.value)
    # hvac really sent it, in the header Vault checks
    assert vault.requests[-1] == ("GET", "/v1/secret/data/kiki/ad-platforms/meta", False)


def test_accounts_list_with_vault_down_says_so_once(vault, run_cli, monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", vault.url)  # no VAULT_TOKEN: unusable before any request
    r = run_cli("accounts", "list")
    assert r.returncode == 0, r
    creds = r.stdout.split("credentials:\n", 1)[1].splitlines()
    assert creds[0] == (
        f"    vault      ERROR: Vault at {vault.url} could not be used: VAULT_ADDR is set but "
        "VAULT_TOKEN is not; set VAULT_TOKEN to a token whose policy can read the ad platform secrets"
    )
    assert (
        creds[1]
        == "    meta       failed          missing META_ACCESS_TOKEN  ERROR: Vault could not be used (see above)"
    )
    assert len(creds) == 10 and all(" failed " in ln for ln in creds[1:])
    assert vault.requests == []
