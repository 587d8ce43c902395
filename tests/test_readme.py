"""The README documents every setting, opens with the two commands CI relies on, and gives one address
for the service that every example uses."""
import re
from pathlib import Path
from urllib.parse import urlsplit

from common.config import DEVELOPMENT_PUBLIC_URL, Settings, env_name
from oidc.models import SCOPES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Where the opening line says `./scripts/serve.sh` runs the service.
SERVE_LINE = re.compile(r"^\./scripts/serve\.sh\s.*?\b(https?://[^\s/]+)/", re.MULTILINE)


def readme_address() -> str:
    """The service's address as the README's opening line gives it, e.g. `http://localhost:5000`."""
    found = SERVE_LINE.search(README.split("\n\n")[1])
    assert found, "the README's opening block no longer says where ./scripts/serve.sh runs the service"
    return found[1]


def test_every_setting_is_documented():
    missing = [env_name(f) for f in Settings.model_fields if env_name(f) not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in README.split("\n\n")[1]
    assert "scripts/test.sh" in ci


def test_every_example_reaches_the_service_at_the_readme_address():
    """One origin: the web UI's storage (so the device), the passkeys' relying party and the OpenID
    Connect issuer all belong to it, so an example at another spelling of this machine (127.0.0.1 for
    localhost) would be another device and another issuer."""
    address = readme_address()
    assert address == DEVELOPMENT_PUBLIC_URL     # where development processes link to, too
    port = urlsplit(address).port
    local = re.compile(rf"https?://(?:localhost|127(?:\.\d+){{3}}|\[::1?\]|0\.0\.0\.0):{port}\b")
    texts = {"README.md": README, "scripts/serve.sh": (ROOT / "scripts" / "serve.sh").read_text(),
             "examples/notes/README.md": (ROOT / "examples" / "notes" / "README.md").read_text(),
             **{str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "docs").glob("*.md")}}
    elsewhere = sorted({(name, found) for name, text in texts.items() for found in local.findall(text)
                        if found != address})
    assert elsewhere == []
    assert address in texts["scripts/serve.sh"] and README.count(address) > 5


def test_the_authlib_example_gets_a_refresh_token():
    snippet = README[README.index("**A server-side app with Authlib**"):][:1500]
    scope = re.search(r'"scope": "([^"]+)"', snippet)
    assert scope and "offline_access" in scope[1].split() and set(scope[1].split()) <= set(SCOPES)
    assert "refresh_token" in snippet


def test_the_docs_do_not_point_outside_the_repository():
    root = Path(__file__).resolve().parent.parent
    texts = {"README.md": README, **{str(p.relative_to(root)): p.read_text() for p in (root / "docs").glob("*.md")}}
    assert [name for name, text in texts.items() if "../" in text] == []
