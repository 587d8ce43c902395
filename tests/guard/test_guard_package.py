"""The guard is its own distribution (guard/pyproject.toml): it needs only PyJWT, cryptography and httpx, imports
no web framework and no package of the server, and the set-up's lock pins what it needs."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import product

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "guard"
SERVER_PACKAGES = {*product.packages(), "boto3", "botocore"}


def guard_requirements() -> list[Requirement]:
    return [Requirement(r) for r in tomllib.loads((GUARD / "pyproject.toml").read_text())["project"]["dependencies"]]


def test_the_guard_depends_on_pyjwt_cryptography_and_httpx_alone_and_the_lock_pins_them():
    assert {canonicalize_name(r.name) for r in guard_requirements()} == {"pyjwt", "cryptography", "httpx"}
    assert {"crypto"} <= next(r.extras for r in guard_requirements() if r.name == "PyJWT")
    pinned = set(re.findall(r"^([a-z0-9-]+)==", (ROOT / "requirements-test.lock").read_text(), re.MULTILINE))
    assert {"pyjwt", "httpx", "cryptography"} <= pinned


def run_time_imports(tree: ast.Module) -> list[ast.AST]:
    """The nodes of a module, less those under `if TYPE_CHECKING:` (the type checker's alone)."""
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for statement in block.body for n in ast.walk(statement)}
    return [node for node in ast.walk(tree) if id(node) not in typing_only]


def test_the_guard_imports_neither_a_framework_nor_the_server():
    for path in (GUARD / "src" / "citylogin_guard").rglob("*.py"):
        for node in run_time_imports(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            tops = {name.split(".")[0] for name in names}
            assert not tops & SERVER_PACKAGES, f"{path.name} imports {tops & SERVER_PACKAGES}"
            if "flask" in tops:
                assert path.name == "flask_support.py", f"{path.name} imports flask"
    program = "import sys, citylogin_guard; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True,
                            timeout=60).stdout.split()
    assert not set(loaded) & (SERVER_PACKAGES | {"flask", "werkzeug", "starlette", "fastapi"})


def imported_modules(path: Path) -> set[str]:
    """The citylogin_guard modules `path` names in any import, lazy and type-checking ones included:
    to a reader each is an arrow."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            named |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {name.split(".")[1] for name in named if name.startswith("citylogin_guard.")}


def test_the_flask_support_stands_on_the_guard_and_no_module_of_the_guard_imports_in_a_circle():
    package = GUARD / "src" / "citylogin_guard"
    arrows = {path.stem: imported_modules(path) - {path.stem} for path in package.glob("*.py")
              if path.stem != "__init__"}  # the package's face imports what it offers
    assert "guard" in arrows["flask_support"]
    assert "flask_support" not in arrows["guard"]
    for start in arrows:
        seen, todo = set(), list(arrows[start])
        while todo:
            module = todo.pop()
            assert module != start, f"{start} imports itself through {sorted(seen)}"
            if module not in seen:
                seen.add(module)
                todo.extend(arrows.get(module, ()))
