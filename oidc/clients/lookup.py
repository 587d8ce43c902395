"""The app a `client_id` names (RFC 6749 §2.2), as Authlib's client (oidc.core.models.Client): only an app that signs
people in (by redirect, by the device flow, or as automation with an admin role) is a client here."""
from __future__ import annotations

from common.crypto.tokens import digests_equal, token_digest
from common.runtime.context import AppContext
from oidc.core.models import Client
from relying_parties import service as apps
from relying_parties.models import AppRecord
from relying_parties.registry import current_app


def client(ctx: AppContext, client_id: object) -> Client | None:
    """The app `client_id` names, if it signs people in; None for anything else."""
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 64:
        return None
    app = current_app(ctx, client_id=client_id)
    if app is None:
        return None
    if not (app.oidc().redirect_uris or app.oidc().device_flow or app.admin_role):
        return None  # an app registered for introspection and events only signs nobody in
    return Client(app=app, secret_ok=lambda secret: _secret_ok(app, secret))


def _secret_ok(app: AppRecord, secret: object) -> bool:
    return isinstance(secret, str) and 0 < len(secret) <= 256 and digests_equal(
        token_digest(secret, purpose=apps.SECRET_PURPOSE), app.secret_digest)
