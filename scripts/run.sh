#!/usr/bin/env bash
# Install the pinned requirements into .venv and open the dashboard (demo data from the built-in sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m streamlit run app.py "$@"
