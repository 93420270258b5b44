"""The CLI starts light (issue 19 item 4): building the parser or printing ``--help`` imports none of
the heavy libraries, and a store's ``spend --json`` does not pull in pandas. Each check runs in a
fresh interpreter and reads its ``sys.modules`` (behaviour, not time: bench/cli_start.py times it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "numpy", "httpx", "duckdb", "bingads", "suds", "plotly", "streamlit")


def _run(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter at the repository root; it prints one JSON line last."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_LOADED = f"json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def test_building_the_parser_imports_no_heavy_library():
    loaded = _run(f"import json, sys\nimport cli\ncli.build_parser()\nprint({_LOADED})")
    assert loaded == []


def test_help_imports_no_heavy_library():
    code = (
        "import contextlib, io, json, sys\nimport cli\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n        cli.main(['--help'])\n    except SystemExit as exc:\n        assert exc.code == 0\n"
        "assert 'invoice' in buf.getvalue() and 'fx' in buf.getvalue()\n"
        f"print({_LOADED})"
    )
    assert _run(code) == []


def test_invoice_help_imports_no_heavy_library():
    code = (
        "import contextlib, io, json, sys\nimport cli\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n        cli.main(['invoice', 'finalize', '--help'])\n    except SystemExit as exc:\n"
        "        assert exc.code == 0\nassert '--month' in buf.getvalue()\n"
        f"print({_LOADED})"
    )
    assert _run(code) == []


def test_spend_json_does_not_import_pandas_or_the_fetchers(tmp_path):
    """A period reaching past the platforms' retention runs the lost-days query (its keys were a
    registered Arrow table, which imports pandas: a quarter of a second of every CLI run). The
    platforms' limits come from the registry, so no fetcher module (nor httpx, asyncio) loads."""
    from fetchers import clock
    from service.demo import create_demo
    from storage.db import SpendStore

    db = tmp_path / "a.duckdb"
    create_demo(SpendStore(str(db)))
    end = clock.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=4000)
    code = (
        "import contextlib, io, json, sys\nimport cli\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    code = cli.main(['--db', {str(db)!r}, 'spend', '--store', 'demo-acme', '--start', "
        f"'{start}', '--end', '{end}', '--json'])\n"
        "doc = json.loads(buf.getvalue())\n"
        "print(json.dumps({'code': code, 'store': doc['store_id'], 'complete': doc['complete'], "
        "'pandas': 'pandas' in sys.modules, 'httpx': 'httpx' in sys.modules, 'asyncio': 'asyncio' in sys.modules, "
        "'fetchers': sorted(m for m in sys.modules if m.startswith('fetchers.') and m not in "
        "('fetchers.specs', 'fetchers.clock', 'fetchers.secrets', 'fetchers.base'))}))"
    )
    assert _run(code) == {
        "code": 0,
        "store": "demo-acme",
        "complete": False,
        "pandas": False,
        "httpx": False,
        "asyncio": False,
        "fetchers": [],
    }
