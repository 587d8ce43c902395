"""RFC 7662 introspection as an app asks for it at /session/introspect (SPEC §11): the app's own credentials
first, then the token's answer, an OpenID Provider token's grant read along with its session. No Flask here."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oidc.service import ProviderGrant
from relying_parties import introspection
from relying_parties import service as apps
from common.runtime.context import AppContext


def introspection_for(ctx: AppContext, authorization: str | None) -> Callable[[str], dict[str, Any]]:
    """The introspection of the app whose Basic credentials `authorization` carries (InvalidClient, before
    anything of the request is read, when it carries none of an app's): token -> RFC 7662 answer."""
    app = apps.authenticate_app(ctx, authorization)
    return lambda token: introspection.introspect(ctx, app=app, token=token, grant_check=ProviderGrant())
