"""Comments out of the web UI's modules, and nothing else: strings, template literals, regular
expressions and divisions that hold `//` or `/*` stay as they are, and every line stays on its line."""
from __future__ import annotations

from pathlib import Path

import pytest

from citylogin.js_comments import without_comments

PACKAGE = Path(__file__).resolve().parents[2] / "citylogin"
MODULES = sorted([*PACKAGE.glob("web/*.js"), *PACKAGE.glob("sdk/*.js")])


@pytest.mark.parametrize(("source", "expected"), [
    ('const url = "https://a.example/"; // where\n', 'const url = "https://a.example/";\n'),
    ("const s = 'it\\'s // not a comment';\n", "const s = 'it\\'s // not a comment';\n"),
    ('base.replace(/\\/+$/, ""); // no slash at the end\n', 'base.replace(/\\/+$/, "");\n'),
    ("ok = /[/]/.test(s) /* one slash */ && x;\n", "ok = /[/]/.test(s)   && x;\n"),
    ("function f(s) { return /\\/\\//.test(s); }\n", "function f(s) { return /\\/\\//.test(s); }\n"),
    ("half = total / 2 / count; // two divisions\n", "half = total / 2 / count;\n"),
    ("x = (a) / b; y = c[0] / d;\n", "x = (a) / b; y = c[0] / d;\n"),
    ("a/**/b\n", "a b\n"),
    ("/**\n * Why.\n */\nexport const A = 1;\n", "\n\n\nexport const A = 1;\n"),
    ("t = `a // b ${ {k: '/*'}.k } c /* d */ ${x / 2}`; // e\n",
     "t = `a // b ${ {k: '/*'}.k } c /* d */ ${x / 2}`;\n"),
    ("t = `line one\n  // still text\n`;\n", "t = `line one\n  // still text\n`;\n"),
    ("if (a) {\n  b(); // c\n}\n", "if (a) {\n  b();\n}\n"),
])
def test_only_comments_go(source, expected):
    assert without_comments(source) == expected


@pytest.mark.parametrize("module", MODULES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_module_keeps_its_lines_and_loses_its_comments(module):
    source = module.read_text(encoding="utf-8")
    stripped = without_comments(source)
    assert stripped.count("\n") == source.count("\n")
    assert len(stripped) < len(source)
    kept = [line.strip() for line in stripped.splitlines() if line.strip()]
    assert not [line for line in kept if line.startswith(("//", "/*", "* ", "*/"))]
