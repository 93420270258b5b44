"""The import rules between the layers (README: the layout), read from every module's source with
``ast`` (imports inside functions included; nothing is imported or run).

    fetchers  ->  nothing of ours but fetchers (never storage, service, sandbox, the face, streamlit)
    sandbox   ->  nothing of ours but sandbox (it emulates the platforms; it never sees fetchers)
    storage   ->  storage and fetchers (the lowest layer: clock, specs, row types), never service,
                  sandbox, the face or streamlit
    service   ->  fetchers, storage, sandbox (the built-in sandbox runtime), never the face or streamlit
    face      ->  service and its own helpers (cli.py, app.py, pages/, ui/), never
                  storage, fetchers or sandbox directly
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACE_MODULES = ("cli", "app", "ui", "pages")

#: layer -> the top-level packages its modules may not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "fetchers": ("storage", "service", "sandbox", "streamlit", *FACE_MODULES),
    "sandbox": ("fetchers", "storage", "service", "streamlit", *FACE_MODULES),
    "storage": ("service", "sandbox", "streamlit", *FACE_MODULES),
    "service": ("streamlit", *FACE_MODULES),
    "face": ("storage", "fetchers", "sandbox"),
}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(ROOT)
    top = rel.parts[0]
    if top in ("fetchers", "sandbox", "storage", "service"):
        return top
    if top in ("ui", "pages") or (len(rel.parts) == 1 and rel.stem in FACE_MODULES):
        return "face"
    return None  # tests, bench, scripts: free to reach any layer


def _package(path: Path) -> list[str]:
    """The dotted package a module lives in (for relative imports)."""
    return list(path.relative_to(ROOT).parent.parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(path)[: len(_package(path)) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def _modules() -> list[Path]:
    files = []
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT)
        if (
            rel.parts[0].startswith(".")
            or rel.parts[0] in ("tests", "bench", "scripts", "data")
            or "__pycache__" in rel.parts
        ):
            continue
        files.append(p)
    return files


def violations(paths) -> list[str]:
    found = []
    for path in paths:
        layer = _layer(path)
        if layer is None:
            continue
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in FORBIDDEN[layer]:
                found.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {name}")
    return found


def test_the_layers_import_only_what_the_rules_allow():
    modules = _modules()
    assert {_layer(p) for p in modules} >= {"fetchers", "sandbox", "storage", "service", "face"}
    found = violations(modules)
    assert not found, (
        "imports that break the layer rules (tests/test_architecture.py docstring):\n    " + "\n    ".join(found)
    )


@pytest.mark.parametrize(
    "where, source, expected",
    [
        ("ui/x.py", "from storage.db import SpendStore\n", ["ui/x.py:1: face imports storage.db"]),
        ("pages/9_X.py", "def f():\n    import fetchers.core\n", ["pages/9_X.py:2: face imports fetchers.core"]),
        ("cli.py", "from service import facade\n", []),
        ("fetchers/x.py", "from ..storage import db\n", ["fetchers/x.py:1: fetchers imports storage"]),
        ("fetchers/x.py", "from . import core\nimport httpx\n", []),
        ("sandbox/x.py", "from fetchers.specs import SPECS\n", ["sandbox/x.py:1: sandbox imports fetchers.specs"]),
        ("storage/x.py", "import streamlit as st\n", ["storage/x.py:1: storage imports streamlit"]),
        (
            "storage/x.py",
            "from service.fx import quote\nfrom fetchers import clock\n",
            ["storage/x.py:1: storage imports service.fx"],
        ),
        ("service/x.py", "from ui import bootstrap\n", ["service/x.py:1: service imports ui"]),
        ("service/x.py", "from storage.db import SpendStore\nfrom fetchers import clock\n", []),
    ],
)
def test_the_rules_catch_an_offending_import(tmp_path, monkeypatch, where, source, expected):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    assert violations([path]) == expected
