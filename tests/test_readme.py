"""The site documents every setting (docs/reference/settings.md), the README is a landing page of at most
200 lines that opens with the two commands CI relies on and whose links resolve, and the README and the site
give one address for the service that every example uses."""
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt

from common.config import DEVELOPMENT_PUBLIC_URL, Settings, env_name
from oidc.core.models import SCOPES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SETTINGS_DOC = ROOT / "docs" / "reference" / "settings.md"
# "../" in a path or link, with what follows it: resolved from the file's folder, it must stay inside.
UPWARD = re.compile(r"(?:\.\./)+[^\s)`\"'>\]]*")
# Where the opening line says `./scripts/serve.sh` runs the service.
SERVE_LINE = re.compile(r"^\./scripts/serve\.sh\s.*?\b(https?://[^\s/]+)/", re.MULTILINE)


def readme_address() -> str:
    """The service's address as the README's opening line gives it, e.g. `http://localhost:5000`."""
    found = SERVE_LINE.search(README.split("\n\n")[1])
    assert found, "the README's opening block no longer says where ./scripts/serve.sh runs the service"
    return found[1]


def test_every_setting_is_documented():
    page = SETTINGS_DOC.read_text()
    missing = [env_name(f) for f in Settings.model_fields if f"`{env_name(f)}`" not in page]
    assert missing == []


def docs_pages() -> dict[str, str]:
    """Every page of the site, by its path from the repository's root."""
    return {p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "docs").rglob("*.md"))}


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
             # The site's pages are not held to it: getting-started/ explains the other spellings on purpose, and
             # the snippet runner (tests/docs/test_snippets.py) reaches only `localhost:5000` in their examples.
             **{str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "docs").glob("*.md")}}
    elsewhere = sorted({(name, found) for name, text in texts.items() for found in local.findall(text)
                        if found != address})
    assert elsewhere == []
    assert address in texts["scripts/serve.sh"] and README.count(address) >= 4


def test_the_authlib_example_gets_a_refresh_token():
    """The Authlib page's app (the file it includes) asks for offline_access and refreshes; that it gets
    and rotates a refresh token is run by tests/oidc/test_authlib_client.py."""
    page = (ROOT / "docs" / "guides" / "oidc" / "authlib.md").read_text()
    included = re.search(r'--8<-- "(examples/[^"]+\.py)"', page)
    assert included, "the Authlib page no longer includes its example app"
    snippet = (ROOT / included[1]).read_text()
    scope = re.search(r'SCOPE = "([^"]+)"', snippet)
    assert scope and "offline_access" in scope[1].split() and set(scope[1].split()) <= set(SCOPES)
    assert 'grant_type="refresh_token"' in snippet and 'scope": SCOPE' in snippet


def test_the_docs_do_not_point_outside_the_repository():
    texts = {"README.md": README, **docs_pages()}
    outside = {name: found for name, text in texts.items()
               if (found := sorted({up for up in UPWARD.findall(text)
                                    if not (ROOT / name).parent.joinpath(up).resolve().is_relative_to(ROOT)}))}
    assert outside == {}


def test_a_path_that_climbs_out_is_caught():
    assert UPWARD.findall("see [x](../../shared/a.md) and ../b") == ["../../shared/a.md", "../b"]
    assert not (ROOT / "docs/reference").joinpath("../guides/aws.md").resolve().is_relative_to(ROOT / "tests")


def test_the_readme_is_a_landing_page():
    assert len(README.splitlines()) <= 200
    assert "./scripts/serve.sh" in README.split("\n\n")[1]


def links(markdown: str) -> list[str]:
    """Every link and image target of a Markdown text, as the Markdown parser reads them."""
    found = []
    for token in MarkdownIt("commonmark").parse(markdown):
        for child in token.children or []:
            if child.type in ("link_open", "image"):
                found.append(str(child.attrGet("href") or child.attrGet("src")))
    return found


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    titles = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
    return {re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in titles}


def test_every_link_of_the_readme_resolves():
    broken = []
    for target in links(README):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue                            # http://localhost:5000/ and the like: the service, run
        path = ROOT / unquote(parts.path) if parts.path else ROOT / "README.md"
        if not path.exists() or not path.resolve().is_relative_to(ROOT):
            broken.append(target)
        elif parts.fragment and path.suffix == ".md" and parts.fragment not in github_anchors(path.read_text()):
            broken.append(target)
    assert broken == []
    assert len(links(README)) > 20


def test_the_link_finder_reads_markdown():
    text = "# A title, here\n\n[a](docs/x.md#y) ![i](docs/images/i.png) `[not](a link)`\n"
    assert links(text) == ["docs/x.md#y", "docs/images/i.png"]
    assert github_anchors(text) == {"a-title-here"}


def test_the_security_policy_is_linked_and_on_the_site():
    """SECURITY.md (issue 54): a private channel that is the project's own, no invented address, the
    supported versions and the version policy; the README links it and the site shows it."""
    import tomllib

    policy = (ROOT / "SECURITY.md").read_text()
    shown = policy.split("[start:policy]")[1].split("[end:policy]")[0]
    for heading in ("## Reporting a vulnerability", "## Supported versions", "## Version policy"):
        assert f"\n{heading}\n" in shown
    homepage = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    repository = homepage.split("#")[0]
    assert f"{repository}/security/advisories/new" in shown
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", policy)   # no e-mail address the project does not have
    assert "Upgrading" in shown and "CHANGELOG.md" in shown
    assert "SECURITY.md" in links(README)
    assert '--8<-- "SECURITY.md:policy"' in (ROOT / "docs" / "security" / "policy.md").read_text()
