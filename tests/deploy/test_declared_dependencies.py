"""pyproject.toml declares every third-party distribution the product packages import, so an
install from the package metadata alone (or from requirements.lock) has all it needs."""
from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Import names that differ from their distribution's name.
DISTRIBUTION_OF = {"jwt": "PyJWT", "yaml": "PyYAML", "PIL": "pillow", "argon2": "argon2-cffi",
                   "flask_cors": "flask-cors", "zxingcpp": "zxing-cpp"}
# Declared and needed, though no product module imports them.
USED_WITHOUT_IMPORT = {"gunicorn": "the production server (Dockerfile)",
                       "pillow": "qrcode's PNG image factory (device_manager/qr.py)"}


def product_packages() -> list[str]:
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return [p.rstrip("*") for p in patterns]


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (needed by the type checker, not at run time)."""
    return {id(node) for block in ast.walk(tree)
            if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
            for statement in block.body for node in ast.walk(statement)}


def imported_top_level_modules(*, type_checking: bool = False) -> dict[str, set[str]]:
    """Absolute imports of every product module: top-level name -> files importing it. Those under
    `if TYPE_CHECKING:` only when `type_checking`, and then only they."""
    found: dict[str, set[str]] = {}
    for package in product_packages():
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            typing_only = _type_checking_only(tree)
            for node in ast.walk(tree):
                if (id(node) in typing_only) != type_checking:
                    continue
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def third_party_imports(*, type_checking: bool = False) -> dict[str, set[str]]:
    own = set(product_packages())
    return {m: files for m, files in imported_top_level_modules(type_checking=type_checking).items()
            if m not in own and m not in sys.stdlib_module_names and m != "__future__"}


@cache
def distribution_of(module: str) -> str:
    if module in DISTRIBUTION_OF:
        return canonicalize_name(DISTRIBUTION_OF[module])
    installed = installed_distributions().get(module)
    assert installed, f"{module} is imported but no installed distribution provides it"
    return canonicalize_name(installed[0])


@cache
def installed_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def declared_runtime() -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}


def declared_for_tests() -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}


def test_every_third_party_import_is_a_declared_dependency():
    undeclared = {distribution_of(m): sorted(files) for m, files in third_party_imports().items()
                  if distribution_of(m) not in declared_runtime()}
    assert undeclared == {}


def test_every_declared_dependency_is_imported_or_has_a_reason():
    imported = {distribution_of(m) for m in third_party_imports()}
    unexplained = declared_runtime() - imported - {canonicalize_name(d) for d in USED_WITHOUT_IMPORT}
    assert unexplained == set()


def test_every_import_for_the_type_checker_is_a_declared_test_dependency():
    """Imports under `if TYPE_CHECKING:` (stub packages) are not needed at run time, but the mypy
    gate needs them: they are declared with the test tools."""
    typing_only = third_party_imports(type_checking=True)
    undeclared = {distribution_of(m): sorted(files) for m, files in typing_only.items()
                  if distribution_of(m) not in declared_runtime() | declared_for_tests()}
    assert undeclared == {}
