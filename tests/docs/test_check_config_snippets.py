"""The production guide's gunicorn --check-config blocks run as printed (issue 65, item 7): taken from the
Markdown (so the page and this test cannot drift) and run in order as a reader pastes them into a new
shell of the repository, with no CITYLOGIN_* variable at all: the good settings pass with nothing
printed, and the bad address prints exactly the sentence and exit status the page shows after it."""
from __future__ import annotations

import os

import pytest

from tests.docs.snippets import ROOT, Reader, Snippet, snippets_of

PAGE = ROOT / "docs" / "guides" / "production.md"


def check_config_blocks() -> tuple[Snippet, Snippet, Snippet]:
    """(the good check, the bad one, the text block the page shows as the bad one's output)."""
    blocks = snippets_of(PAGE)
    runs = [i for i, block in enumerate(blocks) if block.runs_here and "--check-config" in block.body]
    assert len(runs) == 2, [blocks[i].where for i in runs]
    good, bad = runs
    shown = blocks[bad + 1]
    assert shown.language == "text", shown.where
    return blocks[good], blocks[bad], shown


@pytest.mark.slow
def test_the_check_config_blocks_run_as_printed(tmp_path):
    good, bad, shown = check_config_blocks()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    reader = Reader(folder=tmp_path, address="http://localhost:5000", environment=environment)
    try:
        done = reader.run(good)
        assert done.returncode == 0, f"{good.where}:\n{done.stdout[-4000:]}"
        assert "Traceback" not in done.stdout and "key ring: created" in done.stdout, done.stdout
        assert done.stdout.rstrip().splitlines()[-1].startswith("key ring:"), done.stdout   # the check: silent
        refused = reader.run(bad)
        assert refused.returncode == 0, f"{bad.where}:\n{refused.stdout[-4000:]}"
        assert refused.stdout.splitlines() == shown.body.splitlines(), refused.stdout
    finally:
        reader.close()
