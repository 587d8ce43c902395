"""The site's diagrams render in a browser that cannot reach the internet: Mermaid comes from the site
itself (docs/hooks/mermaid.py), not from a CDN; and at a size their text can be read, on a phone too."""
from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.docs.test_site import build_site

# Material draws a diagram into a closed shadow root; opened here so that the test can look inside.
OPEN_SHADOW_ROOTS = """const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (options) { return attach.call(this, {...options, mode: "open"}); };"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site"))


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


def test_a_diagram_renders_without_the_internet(site, served, browser):
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

    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(OPEN_SHADOW_ROOTS)
        page.route("**/*", only_the_site)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_url)
        diagram = page.locator("div.mermaid svg").first
        diagram.wait_for(state="attached", timeout=60_000)
        box = diagram.bounding_box()
    finally:
        context.close()
    assert box and box["width"] > 100 and box["height"] > 50, box
    assert elsewhere == [] and errors == [], (elsewhere, errors)


# Inside a diagram's (opened) shadow root: how its SVG is drawn against its own size, and its box.
DRAWN = """() => {
  const host = document.querySelector("div.mermaid"), svg = host.shadowRoot.querySelector("svg");
  const text = [...svg.querySelectorAll("text")].find((node) => node.textContent.trim());
  return {scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width,
          letters: parseFloat(getComputedStyle(text).fontSize) * svg.getBoundingClientRect().width
            / svg.viewBox.baseVal.width,
          scrolls: host.scrollWidth > host.clientWidth, page: document.documentElement.scrollWidth,
          screen: innerWidth};
}"""


def test_a_sequence_diagram_is_readable_on_a_390_px_phone(site, served, browser):
    """Issue 54: Mermaid shrank a wide diagram to the column, 6-px letters on a phone; it keeps its size
    and scrolls sideways in its own box, and the page does not."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.add_init_script(OPEN_SHADOW_ROOTS)
        page.goto(f"{served}/index.html")              # the README's picture: four participants
        page.locator("div.mermaid svg").first.wait_for(state="attached", timeout=60_000)
        drawn = page.evaluate(DRAWN)
    finally:
        context.close()
    assert drawn["scale"] > 0.99 and drawn["letters"] >= 12, drawn
    assert drawn["scrolls"] and drawn["page"] <= drawn["screen"], drawn
