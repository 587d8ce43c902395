#!/usr/bin/env bash
# Sets everything up (idempotent) and runs `citylogin serve`: all services and the web UI on
# http://localhost:5000/ under gunicorn with citylogin's worker, as production runs them, DynamoDB Local
# started and persisted under .data/. Ctrl-C stops both. `--dev`: werkzeug's reloading server instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/citylogin serve "$@"
