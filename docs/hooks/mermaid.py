"""MkDocs hook: the diagrams render without the internet.

Material draws a ```mermaid fence with the global `mermaid` if a page defines one, and only otherwise
fetches Mermaid from a CDN. This hook puts the pinned npm package's browser bundle (docs_node/, installed
by scripts/setup.sh --tests with npm ci) into the site and loads it on the pages that have a diagram.

A diagram keeps the size its text is readable at: Mermaid's default shrinks a wide diagram to the column's
width, so a sequence diagram on a 390-px phone had 6-px letters. Material calls `mermaid.initialize` once;
the page wraps it to turn `useMaxWidth` off, and a diagram wider than the column scrolls sideways in its
own box (the page itself never does)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "docs_node" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
SITE_PATH = "javascripts/mermaid.min.js"
DIAGRAM = '<pre class="mermaid">'
NATURAL_SIZE = """<script>
(() => {
  const initialize = mermaid.initialize.bind(mermaid);
  const natural = (part) => ({ ...part, useMaxWidth: false });
  mermaid.initialize = (config = {}) => initialize({ ...config, sequence: natural(config.sequence),
    flowchart: natural(config.flowchart), state: natural(config.state), class: natural(config["class"]) });
})();
</script>
<style>.md-typeset div.mermaid { overflow-x: auto; max-width: 100%; }</style>"""


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    if not BUNDLE.is_file():
        raise PluginError(f"Mermaid is not installed ({BUNDLE.relative_to(ROOT)} is missing): "
                          "run scripts/setup.sh --tests, which installs docs_node/ with npm ci")
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(BUNDLE)))
    return files


def on_post_page(output: str, page: Page, **_: Any) -> str:
    # After Material's bundle, which looks for the global `mermaid` once the document has loaded.
    if DIAGRAM not in output:
        return output
    script = f'<script src="{get_relative_url(SITE_PATH, page.url)}"></script>\n{NATURAL_SIZE}'
    head, body_end, tail = output.rpartition("</body>")
    return f"{head}{script}\n{body_end}{tail}"
