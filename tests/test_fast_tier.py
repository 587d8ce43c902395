"""The fast tier (`./scripts/test.sh --fast`, the tests not marked slow) covers every product package:
for each package pyproject.toml ships, a fast test lives in tests/<package>/, or, if the package has
no such folder, a fast test imports it."""
from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def product_packages() -> set[str]:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {pattern.rstrip("*") for pattern in found["include"]}


def fast_test_files(request) -> set[Path]:
    """The files of the fast tests: from this session if it collected the whole suite, else from a
    collection of its own."""
    config = request.config
    paths = {(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args}
    if paths <= {ROOT, ROOT / "tests"} and not config.option.keyword:
        return {item.path for item in request.session.items if not item.get_closest_marker("slow")}
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow",
                             "-p", "no:xdist", "-p", "no:cacheprovider", "tests"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    return {ROOT / match for match in re.findall(r"^(tests/\S+?\.py)::", listed.stdout, re.MULTILINE)}


@functools.cache  # covered() asks once per package for each file
def imported_packages(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return frozenset(names)


def covered(packages: set[str], files: set[Path], tests: Path = ROOT / "tests") -> set[str]:
    """The packages with a fast test in their folder tests/<package>/, or, for a package without
    such a folder (or one left with no test module), with a fast test that imports it."""
    return {package for package in packages for path in files
            if path.relative_to(tests).parts[0] == package
            or (not any((tests / package).glob("test_*.py")) and package in imported_packages(path))}


def test_every_product_package_has_a_fast_test(request):
    packages = product_packages()
    assert {"common", "accounts", "registration", "citylogin"} <= packages, packages
    files = fast_test_files(request)
    assert ROOT / "tests" / "test_fast_tier.py" in files
    assert packages - covered(packages, files) == set()


def test_the_check_sees_a_package_without_a_fast_test():
    tests = ROOT / "tests"
    fast = {tests / "common" / "test_i18n.py", tests / "sessions" / "test_events.py"}
    # test_events imports devices, which has its own folder: only a test there counts; nor does it import
    # device_manager, which has none.
    assert covered({"common", "devices", "device_manager", "sessions", "nowhere"}, fast) == {"common", "sessions"}
