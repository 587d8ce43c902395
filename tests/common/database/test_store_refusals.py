"""Every refusal a store raises shares one base, common.database.dynamo.StoreRefusal: a condition the store
refused, for the service to translate into its ApiError (never an ApiError itself)."""
from __future__ import annotations

import importlib
import inspect

from common.errors import ApiError
from common.database.dynamo import StoreRefusal
from tests.test_package_layout import ROOT, product_packages

# Refusals of a conditional write that live outside a store module.
ELSEWHERE = {"DeviceChangedMeanwhile", "RetireRefused"}


def _modules() -> list[str]:
    return sorted(".".join(path.relative_to(ROOT).with_suffix("").parts)
                  for package in product_packages(ROOT) for path in (ROOT / package).rglob("*.py")
                  if path.name not in ("__init__.py", "__main__.py"))


def _is_store(module: str) -> bool:
    name = module.rsplit(".", 1)[-1]
    return name == "store" or name.endswith("_store")


def _exceptions_defined_in(module: str) -> list[type[BaseException]]:
    loaded = importlib.import_module(module)
    return [cls for _, cls in inspect.getmembers(loaded, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == module]


def test_every_exception_of_a_store_module_is_a_store_refusal():
    found = {f"{module}.{cls.__name__}": cls for module in _modules() if _is_store(module)
             for cls in _exceptions_defined_in(module)}
    assert len(found) >= 13, sorted(found)
    assert [name for name, cls in found.items() if not issubclass(cls, StoreRefusal)] == []
    assert [name for name, cls in found.items() if issubclass(cls, ApiError)] == []


def test_the_refusals_outside_store_modules_are_store_refusals_too():
    found = {cls.__name__: cls for module in _modules() if not _is_store(module)
             for cls in _exceptions_defined_in(module) if cls.__name__ in ELSEWHERE}
    assert set(found) == ELSEWHERE
    assert all(issubclass(cls, StoreRefusal) for cls in found.values())
