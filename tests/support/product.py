"""The product's packages, as pyproject.toml ships them: the tests that read the product's source walk
these, so a package added or moved is read without a list to keep up."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def packages() -> tuple[str, ...]:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return tuple(sorted(pattern.rstrip("*") for pattern in found["include"]))


def source_files() -> list[Path]:
    """Every Python file of the product."""
    return [path for package in packages() for path in sorted((ROOT / package).rglob("*.py"))]
