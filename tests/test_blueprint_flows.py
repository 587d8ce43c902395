"""What a domain's blueprint asks of the packages above its home (its FLOWS slot, common/slots.py) is given
by every service that mounts it: each service gives exactly what its blueprints ask for, the all-in-one
app what all of them ask for, and an app built with a blueprint but without its flows stops at its start,
naming what is missing (not at a person's first request)."""
from __future__ import annotations

import types

import pytest

from citylogin.app import given as all_in_one_given
from citylogin.prefixes import SERVICES
from common.slots import Slot
from common.web.app_factory import create_service_app
from sessions import views as session_views


def asked(service: types.ModuleType) -> set[Slot[object]]:
    """The slots the blueprints a service mounts ask to be given."""
    modules = [__import__(blueprint.import_name, fromlist=["FLOWS"]) for blueprint in service.PREFIXES.values()]
    return {module.FLOWS for module in modules if isinstance(getattr(module, "FLOWS", None), Slot)}


def test_each_service_gives_what_its_blueprints_ask_for():
    for service in SERVICES.values():
        assert {each.slot for each in service.GIVEN} == asked(service), service.__name__
    assert {each.slot for each in all_in_one_given()} == set().union(*map(asked, SERVICES.values()))
    assert len(set().union(*map(asked, SERVICES.values()))) == 5  # /account, /device, /federation, /oidc, /session


def test_a_blueprint_mounted_without_its_flows_stops_the_apps_start(base_config):
    with pytest.raises(LookupError, match="sessions.views.flows"):
        create_service_app(name="without-flows", blueprints=[session_views.bp], test_config=base_config)
