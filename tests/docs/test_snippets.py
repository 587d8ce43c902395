"""Every snippet of README.md and docs/ runs (issue 45): each page's blocks run in order, as a reader
would paste them, against a live `citylogin serve` at the README's address (its port rewritten to a free
one); a block that cannot run here names the test that runs it or says why (tests/docs/snippets.py)."""
from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.docs.snippets import ROOT, Reader, Snippet, pages, problems, snippets_of
from tests.support.ports import free_port
from tests.support.services import running_process

ALL = [snippet for page in pages() for snippet in snippets_of(page)]
RUN_PAGES = sorted({snippet.page for snippet in ALL if snippet.runs_here})


def test_every_snippet_is_labelled_and_run_or_marked():
    wrong = [problem for snippet in ALL for problem in problems(snippet)]
    assert not wrong, "\n".join(wrong)


# A username as the snippets give one: `--username x`, `username="x"`, `"username": "x"`.
USERNAME = re.compile(r"""(?:--username[ =]+|username=|"username":\s*)['"]?([A-Za-z0-9_.-]+)""")


def test_no_two_pages_use_one_username():
    """The pages share one live server (one per test process), so a username is one page's alone."""
    pages_of: dict[str, set[str]] = {}
    for snippet in (s for s in ALL if s.runs_here):
        for name in USERNAME.findall(snippet.body):
            pages_of.setdefault(name, set()).add(snippet.page)
    assert {name: sorted(p) for name, p in pages_of.items() if len(p) > 1} == {}


@pytest.fixture(scope="module")
def live(dynamodb_endpoint, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """`citylogin serve` as the README runs it (no --host), on a free port; and the settings a reader's
    shell would hold, so that `citylogin keys …` and the like reach the same tables."""
    folder, port = tmp_path_factory.mktemp("snippets-serve"), free_port()
    settings = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": folder, "port": port,
                           "table_prefix": unique_name("doc") + "_", "log_level": "INFO", **FAST_ARGON2,
                           **RAISED_LIMITS, "key_encryption_key": base64.b64encode(os.urandom(32)).decode()})
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | settings
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    with running_process([sys.executable, "-m", "citylogin", "serve"], port=port, env=settings, timeout=90):
        yield f"http://localhost:{port}", environment


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_snippets_of_a_page_run(page, live, tmp_path):
    address, environment = live
    reader = Reader(folder=tmp_path, address=address, environment=environment)
    try:
        for snippet in [s for s in snippets_of(ROOT / page) if s.runs_here]:
            _run(reader, snippet)
    finally:
        reader.close()


def _run(reader: Reader, snippet: Snippet) -> None:
    done = reader.run(snippet)
    assert done.returncode == 0, (f"{snippet.where} (```{snippet.language}) exited {done.returncode}:\n"
                                  f"{snippet.body}\n--- its output ---\n{done.stdout[-4000:]}")
