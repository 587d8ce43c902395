#!/usr/bin/env bash
# Sets up what serving needs (idempotent: scripts/setup.sh without --tests, so none of the test tools) and
# runs `citylogin serve`: all services and the web UI on http://localhost:5000/ under gunicorn with
# citylogin's worker, as production runs them, DynamoDB Local started and persisted under .data/. Ctrl-C
# stops both. `--dev`: werkzeug's reloading server instead. SETUP_PRINT_PLAN=1 prints the set-up's steps alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ "${SETUP_PRINT_PLAN:-0}" = 1 ] && exit 0
exec .venv/bin/citylogin serve "$@"
