"""The documentation site builds with --strict: no broken link or anchor, no page outside the nav, no
missing include (its diagrams drawn offline: tests/browser/test_site_diagrams.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"


def build_site(out: Path) -> Path:
    """The site as `scripts/docs.sh build` makes it, built into `out`."""
    built = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-6000:]
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site"))


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert (site / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    # The OpenAPI page got its operations from the copy of the document at build time.
    assert "<code>POST /login/</code>" in (site / "reference" / "openapi" / "index.html").read_text()
