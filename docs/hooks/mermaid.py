"""MkDocs hook: the diagrams render without the internet.

Material draws a ```mermaid fence with the global `mermaid` if a page defines one, and only otherwise
fetches Mermaid from a CDN. This hook puts the pinned npm package's browser bundle (docs_node/, installed
by scripts/setup.sh with npm ci) into the site and loads it on the pages that have a diagram."""
from __future__ import annotations

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "docs_node" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
SITE_PATH = "javascripts/mermaid.min.js"
DIAGRAM = '<pre class="mermaid">'


def on_files(files: Files, config, **_) -> Files:
    if not BUNDLE.is_file():
        raise PluginError(f"Mermaid is not installed ({BUNDLE.relative_to(ROOT)} is missing): "
                          "run scripts/setup.sh, which installs docs_node/ with npm ci")
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(BUNDLE)))
    return files


def on_post_page(output: str, page, **_) -> str:
    # After Material's bundle, which looks for the global `mermaid` once the document has loaded.
    if DIAGRAM not in output:
        return output
    script = f'<script src="{get_relative_url(SITE_PATH, page.url)}"></script>'
    head, body_end, tail = output.rpartition("</body>")
    return f"{head}{script}\n{body_end}{tail}"
