#!/usr/bin/env bash
# Install the pinned requirements into .venv and run the whole test suite.
#   ./scripts/test.sh                 everything: the bulk on both cores (pytest-xdist), then the
#                                     timing-sensitive tests (browser, chaos, crash, concurrency,
#                                     run leases: marker `serial`) alone, so no deadline is missed
#                                     because another test held the CPU
#   ./scripts/test.sh ARGS...         plain pytest with these arguments (one file, -k, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
fi
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 -m "not browser and not serial" || status=$?
.venv/bin/python -m pytest -q -p no:cacheprovider -m "browser or serial" || status=$?
exit "$status"
