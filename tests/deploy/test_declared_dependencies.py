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


def imported_top_level_modules() -> dict[str, set[str]]:
    """Absolute imports of every product module: top-level name -> files importing it."""
    found: dict[str, set[str]] = {}
    for package in product_packages():
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def third_party_imports() -> dict[str, set[str]]:
    own = set(product_packages())
    return {m: files for m, files in imported_top_level_modules().items()
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


def test_every_third_party_import_is_a_declared_dependency():
    undeclared = {distribution_of(m): sorted(files) for m, files in third_party_imports().items()
                  if distribution_of(m) not in declared_runtime()}
    assert undeclared == {}


def test_every_declared_dependency_is_imported_or_has_a_reason():
    imported = {distribution_of(m) for m in third_party_imports()}
    unexplained = declared_runtime() - imported - {canonicalize_name(d) for d in USED_WITHOUT_IMPORT}
    assert unexplained == set()
