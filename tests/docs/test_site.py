"""The documentation site builds with --strict (no broken link or anchor, no page outside the nav, no
missing include), and its diagrams render in a browser that cannot reach the internet: Mermaid comes
from the site itself (docs/hooks/mermaid.py), not from a CDN."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"
# Material draws a diagram into a closed shadow root; opened here so that the test can look inside.
OPEN_SHADOW_ROOTS = """const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (options) { return attach.call(this, {...options, mode: "open"}); };"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `scripts/docs.sh build` makes it, built into a folder of this test run."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-6000:]
    return out


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert (site / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    # The OpenAPI page got its operations from the copy of the document at build time.
    assert "<code>POST /login/</code>" in (site / "reference" / "openapi" / "index.html").read_text()


def pages_with_a_diagram(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if '<pre class="mermaid">' in p.read_text(encoding="utf-8"))


@pytest.fixture
def served(site):
    """The built site on a free port of 127.0.0.1, over HTTP as a reader's browser gets it."""
    handler = functools.partial(QuietHandler, directory=str(site))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.mark.slow
def test_a_diagram_renders_without_the_internet(site, served):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (bash scripts/setup.sh --browser)")
        pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/setup.sh --browser`")
    from playwright.sync_api import sync_playwright

    pages = pages_with_a_diagram(site)
    assert pages, "no page of the site has a ```mermaid diagram (the Concepts pages draw their flows)"
    page_url = f"{served}/{pages[0].relative_to(site).as_posix()}"
    elsewhere: list[str] = []

    def only_the_site(route):
        if urlsplit(route.request.url).netloc == urlsplit(served).netloc:
            route.continue_()
        else:   # the internet is not there: a request for it fails as it would offline
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_init_script(OPEN_SHADOW_ROOTS)
            page.route("**/*", only_the_site)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_url)
            diagram = page.locator("div.mermaid svg").first
            diagram.wait_for(state="attached", timeout=60_000)
            box = diagram.bounding_box()
        finally:
            browser.close()
    assert box and box["width"] > 100 and box["height"] > 50, box
    assert elsewhere == [] and errors == [], (elsewhere, errors)
