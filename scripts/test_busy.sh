#!/usr/bin/env bash
# Runs the whole suite (scripts/test.sh) several times on a busy machine, to find the tests that fail
# only when the machine is slow: a test that waits on timing it does not own, or compares a field
# derived from the clock. stress-ng (a Debian package, installed here if missing) keeps every core
# busy at --load percent beside the suite. Each run's output goes to .busy-runs/run-N.log; the last
# lines say each run's result and time.
#   bash scripts/test_busy.sh [--runs N] [--load PERCENT] [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
load=50
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
die() { echo "test_busy.sh: $*" >&2; exit 1; }
if ! command -v stress-ng >/dev/null; then
  command -v apt-get >/dev/null || die "stress-ng is missing: install it with your package manager"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "test_busy.sh: installing the Debian package stress-ng"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress-ng >/dev/null
fi
command -v stress-ng >/dev/null || die "stress-ng did not install"
mkdir -p .busy-runs
stress-ng --cpu 0 --cpu-load "$load" --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true' EXIT
summary=()
failed=0
for run in $(seq 1 "$runs"); do
  log=.busy-runs/run-$run.log
  start=$(date +%s)
  if bash scripts/test.sh ${args[@]+"${args[@]}"} >"$log" 2>&1; then result=passed; else result=FAILED; failed=1; fi
  line="run $run: $result in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg); $(grep -E '^=+ .*(passed|failed).* in ' "$log" | sed 's/=//g; s/^ *//' | paste -sd ';' -)"
  summary+=("$line")
  echo "$line"
done
printf '%s\n' "${summary[@]}" > .busy-runs/summary.txt
exit "$failed"
