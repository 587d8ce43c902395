"""`citylogin apps`: the apps that use citylogin (SPEC §11). A client secret is printed once, at
`add` and `rotate-secret`; citylogin keeps only its digest."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from relying_parties.models import DEFAULT_SCREEN_CLASS, DEVICE_FLOW_CLASSES, PROFILES, NewCredentials
from citylogin.cli.admin import _context
from citylogin.cli.apps.metadata import metadata_fields, registration_metadata_options
from citylogin.cli.apps.registration import registration_token, registration_tokens_list, revoke_registration_token
from citylogin.cli.output import OperatorGroup
from citylogin.cli.operator import OPERATOR_HELP, remember_operator

NAME_MAX = 100


def _push_url(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oidc.registration.client_urls import endpoint_url_problem

    problem = endpoint_url_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value


def _name(_context_: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip() or len(value) > NAME_MAX or not value.isprintable():
        raise click.BadParameter(f"1 to {NAME_MAX} printable characters")
    return value.strip()


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def apps(context: click.Context, operator: str | None) -> None:
    """The apps whose API servers check citylogin's tokens and receive its session events."""
    remember_operator(context, operator)


PKCE_RULES = {"public_client": "required (a public client)", "fapi2_profile": "required (--profile fapi2)",
              "require_pkce": "required (--require-pkce)",
              "operator_setting": "required (CITYLOGIN_OIDC_REQUIRE_PKCE)",
              "when_sent": "when the app sends a challenge (a confidential client)"}


def _print_credentials(credentials: NewCredentials, as_json: bool, *, pkce_required_of_every_app: bool = False) -> None:
    app = credentials.app
    if as_json:
        secret = {"client_secret": credentials.client_secret} if credentials.client_secret else {}
        click.echo(json.dumps({**app.public(pkce_required_of_every_app=pkce_required_of_every_app), **secret}))
        return
    click.echo(f"client_id      {app.client_id}")
    if not credentials.client_secret:
        click.echo("A public client: it has no secret (PKCE proves each sign-in)." if app.oidc().redirect_uris else
                   "A public client: it has no secret (the person's approval of its code proves each sign-in).")
        return
    click.echo(f"client_secret  {credentials.client_secret}")
    click.echo("The secret is shown only now; citylogin keeps only its digest.")
    if app.oidc().jwks:
        click.echo("At the token endpoint the app signs in with its key (private_key_jwt); the secret serves "
                   "introspection and the security events.")


def _redirect_uris(_context_: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from oidc.core.redirects import redirect_uri_problem

    for value in values:
        problem = redirect_uri_problem(value)
        if problem:
            raise click.BadParameter(f"{value!r}: {problem}")
    return values


def _web_origins(_context_: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from common.web.cors import origin_problem

    for value in values:
        problem = origin_problem(value)
        if problem:
            raise click.BadParameter(f"{value!r}: {problem}")
    return values


def _jwks(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from oidc.registration.client_keys import public_jwks, public_jwks_problem

    if value is None:
        return None
    try:
        text = Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"{value!r}: {error}") from None
    problem = public_jwks_problem(text)
    if problem:
        raise click.BadParameter(f"{value!r}: {problem}")
    return public_jwks(text)


def _request_uris(_context_: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from oidc.registration.request_uris import MAX_REGISTERED, request_uri_problem

    if len(values) > MAX_REGISTERED:
        raise click.BadParameter(f"at most {MAX_REGISTERED}")
    for value in values:
        problem = request_uri_problem(value)
        if problem:
            raise click.BadParameter(f"{value!r}: {problem}")
    return values


REQUEST_OBJECT_ALGS = ["RS256", "PS256", "ES256", "EdDSA", "none"]
REQUEST_URI_HELP = ("A request_uri the app may send (RFC 9101 by reference): citylogin fetches its request object "
                    "from there. https (http on 127.0.0.1, [::1], localhost); repeat for several.")
SIGNING_ALG_HELP = ("The one algorithm the app signs its request objects with (none: unsigned only); without it "
                    "any of RS256, PS256, ES256, EdDSA, with the app's --jwks keys.")
ALLOW_UNSIGNED_HELP = "Take unsigned request objects (alg none) from the app too."
REQUIRE_SIGNED_HELP = ("Take the app's authorization requests only as signed request objects (RFC 9101 section "
                       "10.5): by value, by reference or pushed (PAR).")


@apps.command()
@click.argument("name", callback=_name)
@click.option("--push-url", default=None, callback=_push_url, metavar="URL",
              help="Where to POST each session-revoked event (RFC 8935); without it the app polls.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, callback=_redirect_uris, metavar="URI",
              help="OpenID Connect: a redirect URI, matched exactly (a loopback http://127.0.0.1/... on any port). "
                   "Repeat for several.")
@click.option("--public", is_flag=True, help="A public client (SPA, native app): no secret, PKCE alone.")
@click.option("--web-origin", "web_origins", multiple=True, callback=_web_origins, metavar="ORIGIN",
              help="A --public client's page origin (https://spa.example) besides its redirect URIs' own: its pages "
                   "may call the token, userinfo and revocation endpoints from there (CORS). Repeat for several.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True, callback=_redirect_uris,
              metavar="URI", help="Where RP-initiated logout may send the browser back to.")
@click.option("--backchannel-logout-uri", default=None, callback=_push_url, metavar="URL",
              help="Where to POST a Back-Channel Logout token when a session the app holds tokens of ends.")
@click.option("--consent", is_flag=True, help="Ask the person to allow the app before its first sign-in.")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256", "EdDSA"]), default="RS256", show_default=True,
              help="The algorithm of the app's ID tokens.")
@click.option("--require-par", is_flag=True, help="Accept only pushed authorization requests (RFC 9126).")
@click.option("--require-dpop", is_flag=True, help="Issue only DPoP-bound tokens (RFC 9449).")
@click.option("--require-pkce", is_flag=True,
              help="Require PKCE (S256) of every sign-in, as of a public client; without it a confidential client "
                   "may omit PKCE (it is enforced whenever the app sends a challenge).")
@click.option("--jwks", default=None, callback=_jwks, metavar="FILE",
              help="A JWK Set file of the app's public keys: it authenticates at the token endpoint with a "
                   "client assertion signed by its private key (private_key_jwt) instead of the secret.")
@click.option("--admin-role", type=click.Choice(["viewer", "support", "admin"]), default=None,
              help="Automation: the app gets tokens for the operators' admin API, with what an operator of "
                   "this role may do, by the client-credentials grant at /oidc/token (scope=admin).")
@click.option("--device-flow", is_flag=True,
              help="Screens without a browser (TVs, consoles, command lines) sign in with a code approved on "
                   "another device (RFC 8628); such an app needs no --redirect-uri, and may be --public.")
@click.option("--device-class", type=click.Choice(DEVICE_FLOW_CLASSES), default=None,
              help="With --device-flow: the class each approved screen counts under in the device limits "
                   "(CITYLOGIN_DEVICE_CLASS_LIMITS); tv unless given.")
@click.option("--request-uri", "request_uris", multiple=True, callback=_request_uris, metavar="URI",
              help=REQUEST_URI_HELP)
@click.option("--request-object-signing-alg", type=click.Choice(REQUEST_OBJECT_ALGS), default=None,
              help=SIGNING_ALG_HELP)
@click.option("--allow-unsigned-request-objects", is_flag=True, help=ALLOW_UNSIGNED_HELP)
@click.option("--require-signed-request-object", is_flag=True, help=REQUIRE_SIGNED_HELP)
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Hold the app to a security profile: fapi2, the FAPI 2.0 Security Profile (final): PAR, PKCE "
                   "S256, DPoP-bound tokens, private_key_jwt with the issuer as audience, refresh tokens kept. The "
                   "app must be able to comply: --jwks, https redirect URIs, --id-token-alg ES256 or EdDSA.")
@registration_metadata_options
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON object.")
def add(name: str, push_url: str | None, redirect_uris: tuple[str, ...], public: bool, web_origins: tuple[str, ...],
        post_logout_redirect_uris: tuple[str, ...], backchannel_logout_uri: str | None, consent: bool,
        id_token_alg: str, require_par: bool, require_dpop: bool, require_pkce: bool, jwks: str | None,
        admin_role: str | None, device_flow: bool, device_class: str | None, request_uris: tuple[str, ...],
        request_object_signing_alg: str | None, allow_unsigned_request_objects: bool,
        require_signed_request_object: bool, profile: str | None, as_json: bool, **metadata: Any) -> None:
    """Register an app; print its client_id and client_secret once (a --public client has no secret).
    With --redirect-uri it is also an OpenID Connect client that signs people in through citylogin; with
    --device-flow its screens without a browser sign in with a code the person approves on another device."""
    from relying_parties import service
    from relying_parties.models import OidcClient

    # What only a sign-in through the browser uses; the rest serves a device-flow app's tokens as well.
    request_objects = (request_uris, request_object_signing_alg, allow_unsigned_request_objects,
                       require_signed_request_object)
    redirect_options = (web_origins, post_logout_redirect_uris, consent, require_par, require_pkce, *request_objects)
    if not redirect_uris and device_flow and any(redirect_options):
        raise click.UsageError("--web-origin, --post-logout-redirect-uri, --consent, --require-par, --require-pkce and "
                               "the request-object options are for sign-ins through the browser: they need at least "
                               "one --redirect-uri")
    if not redirect_uris and not device_flow and any((*redirect_options, public, backchannel_logout_uri,
                                                      require_dpop, jwks, profile, *metadata.values())):
        raise click.UsageError("the OpenID Connect options need at least one --redirect-uri (or --device-flow)")
    if device_class and not device_flow:
        raise click.UsageError("--device-class is the class of a --device-flow app's screens: add --device-flow")
    if web_origins and not public:
        raise click.UsageError("only a --public client (a SPA) has web origins: its pages hold no secret")
    if public and jwks:
        raise click.UsageError("a --public client has no key to authenticate with: leave out --jwks")
    if public and admin_role:
        raise click.UsageError("a --public client can not use the client-credentials grant: leave out --admin-role")
    oidc = OidcClient(redirect_uris=redirect_uris, public=public, post_logout_redirect_uris=post_logout_redirect_uris,
                      backchannel_logout_uri=backchannel_logout_uri, consent=consent, id_token_alg=id_token_alg,
                      require_par=require_par, require_dpop=require_dpop, require_pkce=require_pkce, jwks=jwks,
                      web_origins=web_origins, device_flow=device_flow,
                      device_class=device_class or DEFAULT_SCREEN_CLASS, request_uris=request_uris,
                      request_object_signing_alg=request_object_signing_alg,
                      allow_unsigned_request_objects=allow_unsigned_request_objects,
                      require_signed_request_object=require_signed_request_object, profile=profile,
                      **metadata_fields(metadata))
    with _context() as ctx:
        credentials = service.add_app(ctx, name=name, push_url=push_url, oidc=oidc, admin_role=admin_role)
        every_app = ctx.settings.oidc_require_pkce
    _print_credentials(credentials, as_json, pkce_required_of_every_app=every_app)


@apps.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_apps(as_json: bool) -> None:
    """Every app, oldest first."""
    from relying_parties import service

    with _context() as ctx:
        listed = service.list_apps(ctx)
        every_app = ctx.settings.oidc_require_pkce
    if as_json:
        click.echo(json.dumps([app.public(pkce_required_of_every_app=every_app) for app in listed]))
        return
    if not listed:
        click.echo("no apps: add one with `citylogin apps add NAME`")
    for app in listed:
        click.echo(f"{app.client_id}  {app.name!r}  {'push ' + app.push_url if app.push_url else 'poll'}  "
                   f"added {app.created_at}")


@apps.command()
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show(client_id: str, as_json: bool) -> None:
    """One app (never its secret)."""
    from relying_parties import service

    with _context() as ctx:
        app = service.show_app(ctx, client_id=client_id)
        shown = app.public(pkce_required_of_every_app=ctx.settings.oidc_require_pkce)
    if as_json:
        click.echo(json.dumps(shown))
        return
    if app.oidc().redirect_uris:
        shown["pkce"] = PKCE_RULES[shown["pkce"]]
    else:
        del shown["pkce"]  # it signs nobody in through the browser
    if not app.oidc().device_flow:
        shown["device_class"] = None  # no screen counts under it
    for label, value in shown.items():
        click.echo(f"{label:18} {value if value is not None else '-'}")


@apps.command()
@click.argument("client_id")
@click.option("--profile", type=click.Choice([*PROFILES, "none"]), default=None,
              help="Hold the app to a security profile (fapi2: the FAPI 2.0 Security Profile), or to none.")
@click.option("--request-uri", "request_uris", multiple=True, callback=_request_uris, metavar="URI",
              help=REQUEST_URI_HELP + " Replaces the app's list.")
@click.option("--no-request-uris", is_flag=True, help="Remove every request_uri of the app.")
@click.option("--request-object-signing-alg", type=click.Choice([*REQUEST_OBJECT_ALGS, "any"]), default=None,
              help=SIGNING_ALG_HELP + " any: no one algorithm.")
@click.option("--allow-unsigned-request-objects/--no-allow-unsigned-request-objects", default=None,
              help=ALLOW_UNSIGNED_HELP)
@click.option("--require-signed-request-object/--no-require-signed-request-object", default=None,
              help=REQUIRE_SIGNED_HELP)
@click.option("--verified/--not-verified", default=None,
              help="An app that registered itself, vouched for: the person's approval and consent pages stop "
                   "saying it registered itself.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def update(client_id: str, profile: str | None, request_uris: tuple[str, ...], no_request_uris: bool,
           request_object_signing_alg: str | None, allow_unsigned_request_objects: bool | None,
           require_signed_request_object: bool | None, verified: bool | None, as_json: bool) -> None:
    """Change the app's options given (its profile, its request-object options, whether it is verified); its
    other fields stay. An app that cannot comply with a profile (no keys, an http redirect URI, ...) is
    refused, naming the field to change first."""
    import dataclasses

    from relying_parties import service

    if request_uris and no_request_uris:
        raise click.UsageError("--request-uri or --no-request-uris, not both")
    changes = _request_object_changes(request_uris=() if no_request_uris else request_uris or None,
                                      request_object_signing_alg=request_object_signing_alg,
                                      allow_unsigned_request_objects=allow_unsigned_request_objects,
                                      require_signed_request_object=require_signed_request_object)
    if profile is not None:
        changes["profile"] = None if profile == "none" else profile
    if not changes and verified is None:
        raise click.UsageError("name at least one option to change")
    with _context() as ctx:
        current = service.show_app(ctx, client_id=client_id)
        if set(changes) - {"profile"} and not current.oidc().redirect_uris:
            raise click.UsageError("the request-object options are for an app with a --redirect-uri")
        app = service.update_app(ctx, client_id=client_id,
                                 oidc=dataclasses.replace(current.oidc(), **changes) if changes else None,
                                 verified=bool(verified), changed=frozenset({"verified"} if verified is not None
                                                                            else ()),
                                 set_by_operator=frozenset(changes))
        shown = app.public(pkce_required_of_every_app=ctx.settings.oidc_require_pkce)
    if as_json:
        click.echo(json.dumps(shown))
    else:
        click.echo(f"app {client_id}: profile {shown['profile'] or 'none'}" if "profile" in changes else
                   f"updated app {client_id}")


def _request_object_changes(**given: object) -> dict[str, Any]:
    """The request-object options named (None: not named); --request-object-signing-alg any: none named."""
    changes = {name: value for name, value in given.items() if value is not None}
    if changes.get("request_object_signing_alg") == "any":
        changes["request_object_signing_alg"] = None
    return changes


@apps.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON object.")
def rotate_secret(client_id: str, as_json: bool) -> None:
    """Replace the app's secret (the old one stops working within seconds on every host); print the new one once."""
    from relying_parties import service

    with _context() as ctx:
        credentials = service.rotate_secret(ctx, client_id=client_id)
        every_app = ctx.settings.oidc_require_pkce
    _print_credentials(credentials, as_json, pkce_required_of_every_app=every_app)


@apps.command()
@click.argument("client_id")
def remove(client_id: str) -> None:
    """Remove the app: its credentials stop working and it receives no more events."""
    from relying_parties import service

    with _context() as ctx:
        service.remove_app(ctx, client_id=client_id)
    click.echo(f"removed app {client_id}")


# Initial access tokens for apps that register themselves (RFC 7591)
apps.add_command(registration_token)
apps.add_command(registration_tokens_list)
apps.add_command(revoke_registration_token)
