"""Small pieces (STYLE rule 10): no product file over 500 lines, no Python function or method over 50.
The product is the Python packages pyproject.toml installs, the guard, and the web UI and web SDK
(their .js, .css, .html and .ts); the translation catalogues (common/locales/*.json) are data."""
from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 50
WEB_FOLDERS = ("citylogin/webui/static", "citylogin/sdk")
WEB_SUFFIXES = {".js", ".css", ".html", ".ts"}


def python_packages(root: Path) -> list[Path]:
    """The top-level packages pyproject.toml's [tool.setuptools.packages.find] includes."""
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return sorted(path.parent for path in root.glob("*/__init__.py")
                  if any(fnmatch.fnmatch(path.parent.name, pattern) for pattern in patterns["include"]))


def product_files(root: Path) -> list[Path]:
    python = [file for folder in [*python_packages(root), root / "guard"] for file in folder.rglob("*.py")]
    web = [file for folder in WEB_FOLDERS for file in (root / folder).rglob("*") if file.suffix in WEB_SUFFIXES]
    return sorted(file for file in python + web if "__pycache__" not in file.parts)


def long_files(files: list[Path], *, root: Path) -> list[str]:
    lines = {file: len(file.read_text(encoding="utf-8").splitlines()) for file in files}
    return [f"{file.relative_to(root)}: {count} lines" for file, count in lines.items() if count > MAX_FILE_LINES]


def long_functions(files: list[Path], *, root: Path) -> list[str]:
    """Each function or method (nested ones too) from its `def` line to its last, over the limit."""
    found = []
    for file in files:
        if file.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), filename=str(file))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{file.relative_to(root)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_the_product_files_cover_every_kind_of_source():
    names = {file.relative_to(ROOT).as_posix() for file in product_files(ROOT)}
    assert {"sessions/service.py", "oidc/service.py", "common/database/dynamo.py", "citylogin/webui/static/app.js",
            "citylogin/webui/static/index.html", "citylogin/webui/static/app.css",
            "citylogin/sdk/citylogin.js"} <= names
    assert any(name.startswith("guard/src/") for name in names)
    assert not any(name.startswith(("tests/", "bench/")) or name.endswith(".json") for name in names)


def test_no_product_file_is_over_500_lines():
    offenders = long_files(product_files(ROOT), root=ROOT)
    assert not offenders, "split these by concern:\n" + "\n".join(offenders)


def test_no_python_function_is_over_50_lines():
    offenders = long_functions(product_files(ROOT), root=ROOT)
    assert not offenders, "make these smaller:\n" + "\n".join(offenders)


def test_the_checks_name_a_long_file_and_a_long_function(tmp_path):
    body = "\n".join(f"    x = {i}" for i in range(MAX_FUNCTION_LINES))
    short, long_ = tmp_path / "short.py", tmp_path / "long.py"
    short.write_text(f"def fits():\n{body[:body.rindex(chr(10))]}\n")
    long_.write_text(f"class A:\n    def too_long(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
                     + "\n" * MAX_FILE_LINES)
    assert long_functions([short, long_], root=tmp_path) == [f"long.py:2 too_long: {MAX_FUNCTION_LINES + 1} lines"]
    assert long_files([short, long_], root=tmp_path) == [f"long.py: {MAX_FUNCTION_LINES + 2 + MAX_FILE_LINES} lines"]
