"""The dashboard's password gate slows down guessing (issue 15, item 7): after a failure the next
attempt from the same client is not even checked for a while, the wait doubles with each failure,
a process-wide brake covers many clients, and every failure is logged without the password."""

from __future__ import annotations

import logging

import pytest
import streamlit as st
from browser_support import ROOT
from streamlit.testing.v1 import AppTest

from ui import login

APP = str(ROOT / "app.py")
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(login, "THROTTLE", login.LoginThrottle(clock=c))
    return c


def test_the_wait_doubles_per_client_and_a_success_resets_it(clock):
    t = login.THROTTLE
    assert [t.failed("a") for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert t.wait_seconds("a") == 8.0 and t.wait_seconds("b") == 0.0  # per client
    clock.t += 8
    assert t.wait_seconds("a") == 0.0
    t.succeeded("a")
    assert t.failed("a") == 1.0
    assert login.LoginThrottle.delay(30) == login.CAP_SECONDS


def test_many_clients_failing_brake_everyone(clock):
    t = login.THROTTLE
    for i in range(login.GLOBAL_THRESHOLD):
        t.failed(f"client {i}")
    assert t.wait_seconds("a fresh client") == 0.0
    t.failed("one more")
    assert t.wait_seconds("a fresh client") == 1.0
    t.failed("and another")
    assert t.wait_seconds("a fresh client") == 2.0
    clock.t += login.GLOBAL_WINDOW + 1  # old failures leave the window
    assert t.wait_seconds("a fresh client") == 0.0


def _submit(at, value):
    at.text_input(key="_password").set_value(value)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_login_is_throttled_and_failures_are_logged_without_the_password(tmp_path, monkeypatch, clock, caplog):
    monkeypatch.setenv("ADSPEND_DB", str(tmp_path / "gate.duckdb"))
    monkeypatch.setenv("ADSPEND_APP_PASSWORD", PASSWORD)
    st.cache_resource.clear()
    caplog.set_level(logging.INFO, logger="adspend.dashboard")
    at = AppTest.from_file(APP, default_timeout=90).run()
    _submit(at, "guess-one")
    assert [e.value for e in at.error] == ["Wrong password. Wait 1 s before trying again."]
    # the right password right away is not even checked
    _submit(at, PASSWORD)
    assert [e.value for e in at.error] == ["Too many failed attempts: wait 1 s before trying again."]
    assert not at.metric
    clock.t += 1
    _submit(at, "guess-two")
    assert [e.value for e in at.error] == ["Wrong password. Wait 2 s before trying again."]
    clock.t += 1
    _submit(at, PASSWORD)
    assert [e.value for e in at.error] == ["Too many failed attempts: wait 1 s before trying again."]
    clock.t += 1
    _submit(at, PASSWORD)
    assert not at.error and at.metric  # in, after the wait
    failures = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert len(failures) == 2 and all(m.startswith("dashboard login failed for session ") for m in failures)
    assert failures[1].endswith("next attempt checked in 2 s")
    assert sum("login refused" in r.getMessage() for r in caplog.records) == 2
    for secret in ("guess-one", "guess-two", PASSWORD, "correct horse"):
        assert secret not in caplog.text
