"""`citylogin apps add`'s options for the registration metadata of RFC 7591 (SPEC §14): the same members an app
that registers itself sends, checked by the same rules (oidc.registration.client_urls,
oidc.registration.client_metadata)."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])

SIGNING_ALGS = ("RS256", "ES256", "EdDSA")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code")


def _web_url(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oidc.registration.client_urls import web_url_problem

    problem = web_url_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value


def _fetched_url(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oidc.registration.client_urls import fetched_url_problem

    problem = fetched_url_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value


def _contacts(_context_: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > 10 or any(not 0 < len(value) <= 320 or not value.isprintable() for value in values):
        raise click.BadParameter("up to 10, each of 1 to 320 printable characters")
    return values


OPTIONS = (
    click.option("--jwks-uri", default=None, callback=_fetched_url, metavar="URL",
                 help="Where the app's public keys are fetched from (private_key_jwt, request objects) instead of "
                      "--jwks: https (http on the loopback host alone)."),
    click.option("--logo-uri", default=None, callback=_web_url, metavar="URL",
                 help="The app's logo, shown on the sign-in and consent pages."),
    click.option("--client-uri", default=None, callback=_web_url, metavar="URL", help="The app's home page."),
    click.option("--policy-uri", default=None, callback=_web_url, metavar="URL", help="The app's privacy policy."),
    click.option("--tos-uri", default=None, callback=_web_url, metavar="URL", help="The app's terms of service."),
    click.option("--contact", "contacts", multiple=True, callback=_contacts, metavar="TEXT",
                 help="Who runs the app (an e-mail address, say). Repeat for several."),
    click.option("--userinfo-alg", "userinfo_signed_response_alg", type=click.Choice(SIGNING_ALGS), default=None,
                 help="Userinfo answers a JWT signed with this algorithm (application/jwt) instead of JSON."),
    click.option("--token-endpoint-auth-method", "registered_auth_method", type=click.Choice(AUTH_METHODS),
                 default=None, help="The one way the app authenticates at the token, PAR and revocation endpoints "
                                    "(by default: none for --public, private_key_jwt with keys, else a secret, "
                                    "in the header or the body)."),
    click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES),
                 help="The grant types the app uses, alone (by default every one its other options allow). Repeat "
                      "for several."),
)


def registration_metadata_options(command: Command) -> Command:
    """The options above on `command`, which takes them as keyword arguments named as OidcClient's fields."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def metadata_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The OidcClient fields of the options given."""
    fields = {name: options.get(name) for name in ("jwks_uri", "logo_uri", "client_uri", "policy_uri", "tos_uri",
                                                   "userinfo_signed_response_alg", "registered_auth_method")}
    return {**fields, "contacts": tuple(options.get("contacts") or ()),
            "grant_types": tuple(dict.fromkeys(options.get("grant_types") or ()))}
