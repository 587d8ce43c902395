"""The web UI alone, for citylogin run as separate services behind a proxy that routes by prefix
(deploy/nginx/citylogin-services.conf.template): `python -m citylogin.webui.app` (port 5005) serves `/`,
`/web/…`, the web SDK at `/sdk/…` and the operational routes; the API prefixes are the four services'."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from citylogin.webui.views import bp
from common.web.app_factory import create_service_app, run_standalone
from oidc.discovery.well_known import bp as well_known_bp


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-web", blueprints=[bp, well_known_bp], test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5005)
