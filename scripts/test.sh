#!/usr/bin/env bash
# Sets everything up (idempotent) and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
# The quality gates, before the tests: ruff's findings stop the run (configured in pyproject.toml).
.venv/bin/ruff check --quiet . || { echo "test.sh: ruff has findings (run .venv/bin/ruff check .)" >&2; exit 1; }
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
