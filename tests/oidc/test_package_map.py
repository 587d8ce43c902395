"""The map of oidc/ (its package docstring) is true: it lists every package of oidc/ once, floor by floor, each
package's own docstring says what it holds and names the standards it implements, and a package imports only
the packages listed above it in the map; no module of oidc/ is over 350 lines."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import oidc

OIDC = Path(oidc.__file__).resolve().parent
MAP_LINE = re.compile(r"^\d+\.\s+(\w+)\s", re.MULTILINE)
STANDARD = re.compile(r"\bRFC \d{4}|\bOpenID Connect\b|\bOIDC\b|\bOAuth 2\.0\b")
# Nothing pending: the token endpoint's reshaping (issue 86) is in.
PENDING: set[tuple[str, str]] = set()
PENDING_DOCSTRINGS: set[str] = set()
MAX_MODULE_LINES = 350  # issue 86: a module of oidc/ that outgrows this splits along a seam


def packages() -> list[str]:
    return sorted(path.parent.name for path in OIDC.glob("*/__init__.py"))


def mapped() -> list[str]:
    """The packages oidc/__init__.py lists, in its order (its last line is oidc itself)."""
    return [name for name in MAP_LINE.findall(oidc.__doc__ or "") if name != "oidc"]


def oidc_imports(package: str) -> set[str]:
    """The packages of oidc/ that `package`'s modules import."""
    modules = set()
    for path in (OIDC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
    return {module.split(".")[1] for module in modules if module.startswith("oidc.")} - {package}


def test_the_map_lists_every_package_once() -> None:
    listed = [name for name in mapped() if name in packages() or name == "clients"]
    assert len(listed) == len(set(listed)) and set(packages()) <= set(listed), (listed, packages())


def test_each_package_says_what_it_holds_and_which_standards() -> None:
    for package in set(packages()) - PENDING_DOCSTRINGS:
        docstring = ast.get_docstring(ast.parse((OIDC / package / "__init__.py").read_text())) or ""
        assert len(docstring.split()) >= 30 and STANDARD.search(docstring), package


def test_a_package_imports_only_the_packages_listed_above_it() -> None:
    order = {name: floor for floor, name in enumerate(mapped())}
    upward = sorted((package, target) for package in packages() for target in oidc_imports(package)
                    if target in order and order[target] >= order[package] and (package, target) not in PENDING)
    assert upward == []


def test_no_module_of_oidc_is_over_350_lines() -> None:
    lines = {path: len(path.read_text().splitlines()) for path in OIDC.rglob("*.py")}
    assert [f"{path.relative_to(OIDC)}: {n}" for path, n in lines.items() if n > MAX_MODULE_LINES] == []
