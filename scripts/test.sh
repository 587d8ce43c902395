#!/usr/bin/env bash
# Sets up what serving and the tests need (idempotent) and runs the whole test suite, in parallel (pytest-xdist), then the
# tests marked `serial` alone. `--fast`: only the fast tier (the tests not marked `slow`), in parallel.
# `--long`: only the long tier (the tests marked `long`, proofs that take minutes: the whole suite leaves
# them out, .ci/run runs them after it). Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=whole
args=()
for arg in "$@"; do
  case "$arg" in
    --fast) tier=fast ;;
    --long) tier=long ;;
    *) args+=("$arg") ;;
  esac
done
# What serving needs and, on top, what the tests need (the test lock, the npm clients, the Django relying
# parties, Mermaid, Chromium, nginx, Apache): a missing one stops here, naming it.
bash scripts/setup.sh --browser
[ "${SETUP_PRINT_PLAN:-0}" = 1 ] && exit 0
# Bytecode is cached (in the __pycache__ folders git ignores) even where the environment turns it off:
# without it each xdist worker compiles the product and pytest rewrites every test module again, and
# so does each server and command the tests start (the fast tier's collection: 6.4 s of CPU a worker, 2.9 s cached).
unset PYTHONDONTWRITEBYTECODE
# The quality gates, before the tests: ruff's findings and mypy's errors stop the run (both configured
# in pyproject.toml, which names the packages mypy checks).
.venv/bin/ruff check --quiet . || { echo "test.sh: ruff has findings (run .venv/bin/ruff check .)" >&2; exit 1; }
.venv/bin/mypy || { echo "test.sh: mypy has errors (run .venv/bin/mypy)" >&2; exit 1; }
# 3 workers on this 2-core machine: the tests wait on subprocesses, DynamoDB Local and Chromium.
# Both the whole suite and the fast tier hand out whole modules (--dist loadfile): a module's
# module-scoped servers start once, and its table prefix's 17 tables are made on one worker's
# DynamoDB Local, not on each worker that gets one of its tests. The whole suite's parallel pass,
# one machine, one afternoon: single tests handed out 17:18, whole modules 15:33 (2,732 test-seconds
# against 3,062), and whole modules over 4 workers 15:25. The fast tier over 3 workers, twice: 114
# and 113 s; 122 and 120 s with 5, 117 s with 4.
parallel=(-n 3 --dist loadfile)
fast_parallel=(-n 3 --dist loadfile)

# pytest's status, 5 (no test collected) counting as none run.
status=0
ran=0
run() {
  set +e
  .venv/bin/python -m pytest "$@" ${args[@]+"${args[@]}"}
  local code=$?
  set -e
  if [ "$code" -eq 0 ]; then ran=1; elif [ "$code" -ne 5 ] && [ "$status" -eq 0 ]; then status=$code; fi
}

if [ "$tier" = fast ]; then
  run "${fast_parallel[@]}" -m "not slow"
elif [ "$tier" = long ]; then
  run -m long
else
  run "${parallel[@]}" -m "not serial and not long"
  run -m "serial and not long"
fi
if [ "$status" -eq 0 ] && [ "$ran" -eq 0 ]; then
  echo "test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
