#!/usr/bin/env bash
# The documentation site (mkdocs.yml, the pages in docs/): builds it with --strict, so a broken link or
# anchor, a page left out of the navigation or a missing include fails, then serves it.
#   scripts/docs.sh               build, then serve at http://127.0.0.1:8000 (reloads on edits)
#   scripts/docs.sh build         build into site/ only
#   scripts/docs.sh serve ADDR    build, then serve at ADDR (host:port)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "docs: $*" >&2; exit 1; }

bash scripts/setup.sh --tests || die "scripts/setup.sh --tests failed (run it alone to see why)"
[ -x .venv/bin/mkdocs ] || die ".venv/bin/mkdocs is missing: mkdocs is pinned in requirements-test.lock (run scripts/setup.sh --tests)"
[ -f docs_node/node_modules/mermaid/dist/mermaid.min.js ] \
  || die "Mermaid is missing from docs_node/ (npm ci there; scripts/setup.sh --tests does it)"
export NO_MKDOCS_2_WARNING=1   # Material's banner about its successor, on every build

command="${1:-serve}"
case "$command" in
  build)
    exec .venv/bin/mkdocs build --strict --site-dir site ;;
  serve)
    address="${2:-127.0.0.1:8000}"
    .venv/bin/mkdocs build --strict --site-dir site
    exec .venv/bin/mkdocs serve --dev-addr "$address" ;;
  *)
    die "usage: scripts/docs.sh [build | serve [host:port]]" ;;
esac
