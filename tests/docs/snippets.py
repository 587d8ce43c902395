"""The snippets of README.md and docs/: found by parsing the Markdown (markdown-it), classified by
the marker above each one, and run as a reader would paste them (tests/docs/test_snippets.py).

A snippet is a fenced block in a language that is not data. Each one is run here (sh/bash/console
under bash, python under the project's interpreter, js/mjs under Node beside the interoperability
clients' node_modules), or carries one of two markers on the line above its fence:

    <!-- run-by: tests/path/test_x.py -->   its body only includes a repository file (pymdownx.snippets'
                                            --8<-- "path"), which that test runs
    <!-- not-run: reason -->                it cannot run here, and the reason says why
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
# Fences in these languages are data or pictures, not something to run.
DATA_LANGUAGES = frozenset({"json", "yaml", "yml", "text", "txt", "nginx", "http", "ini", "toml", "mermaid",
                            "dockerfile", "csv", "diff", "xml", "properties", "jsonc", "conf"})
SHELL, PYTHON, NODE = frozenset({"sh", "bash", "shell", "console"}), frozenset({"python", "py"}), \
    frozenset({"js", "mjs", "javascript"})
MARKER = re.compile(r"\A<!--\s*(run-by|not-run)\s*:\s*(.*?)\s*-->\s*\Z", re.DOTALL)
INCLUDE = re.compile(r'\A--8<--\s+"([^"]+)"\Z')
# The README's address: what `citylogin serve` answers on by default.
README_ADDRESS = "localhost:5000"
BLOCK_SECONDS = 90


@dataclass(frozen=True)
class Snippet:
    page: str            # the file, relative to the repository
    line: int            # the fence's line, 1-based
    language: str        # the fence's info word, lower case; "" when none
    body: str
    marker: str | None   # "run-by", "not-run" or None
    reason: str          # the marker's text

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs_here(self) -> bool:
        return self.marker is None and self.language not in DATA_LANGUAGES


def pages() -> list[Path]:
    """README.md and every Markdown page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snippets_of(path: Path) -> list[Snippet]:
    """The fenced blocks of one page in order, each with the marker that stands right above it."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    # An HTML comment ends on the line before the fence it marks (maps are [first, last + 1) lines).
    comments = {token.map[1]: token.content.strip() for token in tokens if token.type == "html_block" and token.map}
    found = []
    for token in tokens:
        if token.type != "fence" or token.map is None:
            continue
        marker = MARKER.match(comments.get(token.map[0], ""))
        found.append(Snippet(page=_page_name(path), line=token.map[0] + 1,
                             language=token.info.split()[0].lower() if token.info.strip() else "",
                             body=token.content, marker=marker.group(1) if marker else None,
                             reason=marker.group(2) if marker else ""))
    return found


def _page_name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def problems(snippet: Snippet) -> list[str]:
    """What is wrong with how a block is labelled or marked; [] when it is fine."""
    if not snippet.language:
        return [f"{snippet.where}: a fence without a language (write ```text for plain output)"]
    if snippet.marker == "not-run" and len(snippet.reason.split()) < 3:
        return [f"{snippet.where}: not-run needs a reason of a few words"]
    if snippet.marker == "run-by":
        return _run_by_problems(snippet)
    return []


def _run_by_problems(snippet: Snippet) -> list[str]:
    test = ROOT / snippet.reason
    if not (snippet.reason.startswith("tests/") and test.is_file()):
        return [f"{snippet.where}: run-by names no test file of the repository: {snippet.reason!r}"]
    lines = [line.strip() for line in snippet.body.splitlines() if line.strip()]
    included = [INCLUDE.match(line) for line in lines]
    if not lines or not all(included):
        return [f"{snippet.where}: a run-by block holds only --8<-- \"path\" includes"]
    text, wrong = test.read_text(encoding="utf-8"), []
    for match in included:
        assert match is not None
        name = match.group(1).split(":")[0]
        if not (ROOT / name).is_file():
            wrong.append(f"{snippet.where}: includes {name}, which is not a file of the repository")
        elif name != snippet.reason and name not in text and Path(name).name not in text:
            wrong.append(f"{snippet.where}: {snippet.reason} never names {name}, so nothing shows it runs it")
    return wrong


def commands_of(snippet: Snippet) -> str:
    """The text to run: a console block's `$ ` lines, any other block whole."""
    if snippet.language != "console":
        return snippet.body
    return "\n".join(line[2:] for line in snippet.body.splitlines() if line.startswith("$ "))


@dataclass
class Reader:
    """One page's reader: a folder holding the repository's top-level entries (so `.venv/bin/…` and
    `examples/…` work as written), HOME too, and the variables the page's shell blocks exported."""
    folder: Path
    address: str          # the live server's address, e.g. http://localhost:51234
    environment: dict[str, str]
    started: list[int] = field(default_factory=list)   # the process groups of the page's blocks

    def __post_init__(self) -> None:
        for entry in ROOT.iterdir():
            if entry.name not in (".git", ".data") and not (self.folder / entry.name).exists():
                (self.folder / entry.name).symlink_to(entry)
        self.exports = self.folder / ".exports"
        self.exports.write_text("")
        self.environment = {**self.environment, "HOME": str(self.folder)}

    def run(self, snippet: Snippet) -> subprocess.CompletedProcess:
        port = self.address.rsplit(":", 1)[1]
        text = commands_of(snippet).replace(README_ADDRESS, f"localhost:{port}")
        script = self.folder / f".snippet-{snippet.line}"
        if snippet.language in SHELL:
            script.write_text(f"source {shlex.quote(str(self.exports))}\n{text}\n"
                              f"export -p > {shlex.quote(str(self.exports))}\n")
            command = ["bash", "-eu", str(script)]   # a reader's shell: no pipefail
        elif snippet.language in PYTHON:
            script.write_text(text)
            command = [sys.executable, str(script)]
        elif snippet.language in NODE:
            script = INTEROP / f".snippet-{os.getpid()}-{snippet.line}.mjs"  # its imports resolve there
            script.write_text(text)
            command = ["node", str(script)]
        else:
            raise AssertionError(f"{snippet.where}: no way to run a ```{snippet.language} block here; "
                                 "mark it <!-- not-run: reason --> or <!-- run-by: tests/… -->")
        try:
            return self._run(command)
        finally:
            if snippet.language in NODE:
                script.unlink(missing_ok=True)

    def _run(self, command: list[str]) -> subprocess.CompletedProcess:
        process = subprocess.Popen(command, cwd=self.folder, env=self.environment, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process.pid)
        try:
            output, _ = process.communicate(timeout=BLOCK_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            output += f"\n[the block ran over {BLOCK_SECONDS} s]"
            return subprocess.CompletedProcess(command, -1, output)
        return subprocess.CompletedProcess(command, process.returncode, output)

    def close(self) -> None:
        """Stops what the page's blocks left running (`… &`): each block ran in a session of its own."""
        for group in self.started:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass
