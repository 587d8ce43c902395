"""Start the all-in-one app on a real socket with extra settings; yields (url, context)."""
from __future__ import annotations

from contextlib import ExitStack

import pytest

from citylogin.app import create_app
from tests.support.live import serving


@pytest.fixture
def make_server(base_config):
    with ExitStack() as stack:
        def start(**settings):
            app = create_app({**base_config, **settings})
            return stack.enter_context(serving(app)), app.extensions["citylogin"]
        yield start
