"""/.well-known: the OpenID Provider's metadata (under both of its names), its JWKS, and the Shared Signals
transmitter's metadata. Every service mounts this blueprint, so that any one of them answers for the issuer.
The answers are prepared once per key ring (oidc.discovery.static_answers); citylogin's gunicorn worker serves the same
answers before the app is called."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from common.runtime.context import EXTENSION_KEY, ctx
from common.web import cors
from oidc.discovery import static_answers

bp = Blueprint("well_known", __name__)


@bp.get(static_answers.JWKS)
def jwks() -> Response:
    ctx().jwt.published()  # the ring reloaded first if due, as for any use of it (common.keys.jwt_keys)
    return _static_answer(static_answers.JWKS)


@bp.get(static_answers.SSF_CONFIGURATION)
def ssf_configuration() -> Response:
    """The Shared Signals transmitter's metadata (SPEC §11)."""
    return _static_answer(static_answers.SSF_CONFIGURATION)


@bp.get(static_answers.DISCOVERY)
@bp.get(static_answers.AUTHORIZATION_SERVER)
def provider_configuration() -> Response:
    """The OpenID Provider's metadata (SPEC §14): issuer = CITYLOGIN_PUBLIC_URL."""
    return _static_answer(static_answers.DISCOVERY)  # the same document under both names


# Public documents a SPA reads from its own origin (SPEC §14): no server setting needed.
cors.open_to_every_origin(bp, endpoints={"well_known.jwks", "well_known.provider_configuration"})
bp.record_once(lambda state: state.app.extensions.setdefault(
    static_answers.EXTENSION_KEY, static_answers.StaticAnswers(lambda: state.app.extensions[EXTENSION_KEY])))


def _static_answer(path: str) -> Response:
    """The prepared answer for `path` (oidc.discovery.static_answers), or 304 if If-None-Match names it."""
    answer = current_app.extensions[static_answers.EXTENSION_KEY].get(path)
    if answer.not_modified(request.headers.getlist("If-None-Match")):
        return current_app.response_class(status=304, headers=list(answer.not_modified_headers))
    return current_app.response_class(answer.body, headers=list(answer.headers))
