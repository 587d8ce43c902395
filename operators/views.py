"""HTTP routes of /admin (SPEC §15), the operators' API: find an account, read its page, act on it with
a reason; apps and OpenID Connect clients. Every route asks for an operator: a person's own session
(device-bound, DPoP when bound) whose account holds a role, or an app's client-credentials token with
the `admin` scope. Parse, call one flow function, shape the answer."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, ParamSpec, TypeVar

from flask import Blueprint, Response, g, jsonify, request

from operators import apps as operator_apps, export as operator_export, mail as operator_mail, service as operators
from operators import identity_providers as operator_idps
from operators.identity_provider_models import NewProvider, ProviderChange, ProviderList, ProviderView
from accounts.models import DataExport, ExportQuery
from operators.models import (AccountSearch, AccountSearchResult, ActionRequest, AppChange, AppCredentials, AppList,
                              LimitRequest, MailActionDone, NewApp, NewRegistrationToken, OperatorAccount,
                              OperatorPage, OperatorSelf, PageQuery, RegistrationTokenList, RegistrationTokenView,
                              RoleRequest, UndeliveredMail, UndeliveredMailList, WaitingMail)
from operators.auth import authenticate_operator
from accounts.downloads import delivered, export_query
from flows import for_accounts
from common.web.caller import current_caller
from common.runtime.context import ctx
from common.web.openapi import operation
from common.web.validation import parse_body, parse_model, parse_optional_body

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint("admin", __name__, url_prefix="/admin")

ACTION_ERRORS = (403, 404)
DESTRUCTIVE_ERRORS = (403, 404, 429)


def require_operator(view: Callable[P, R]) -> Callable[P, R]:
    """Decorator: 401 without a valid token, 403 forbidden without an operator role."""
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        g.operator = authenticate_operator()
        return view(*args, **kwargs)
    return wrapper


def current_operator() -> operators.Operator:
    return g.operator


def _page(user_uuid: str) -> OperatorAccount:
    return operators.account_page(ctx(), operator=current_operator(), user_uuid=user_uuid)


# --- finding and reading -----------------------------------------------------------------------

@bp.get("/me")
@require_operator
@operation("The operator calling, with their role and until when a destructive action needs no password "
           "(their sign-in or last re-authentication plus CITYLOGIN_ADMIN_REAUTH_SECONDS)",
           response=OperatorSelf, auth=True, errors=(403,))
def me() -> Response:
    window = operators.reauthentication_window(ctx().settings, operator=current_operator(), now=ctx().epoch())
    return jsonify(window.model_dump())


@bp.get("/accounts")
@require_operator
@operation("Find the account one exact key names: username, email, user_uuid, device_id or session_id (no Scan); "
           "CITYLOGIN_ADMIN_SEARCH_LIMIT searches a minute per operator",
           query=AccountSearch, response=AccountSearchResult, auth=True, errors=(403, 429))
def find_accounts() -> Response:
    search = parse_model(AccountSearch, request.args.to_dict())
    found = operators.find_accounts(ctx(), operator=current_operator(), search=search)
    return jsonify(AccountSearchResult(accounts=found).model_dump())


@bp.get("/accounts/<string(maxlength=64):user_uuid>")
@operation("An account's page: profile, lock, devices and certificates, live and recent sessions, passkeys, limit",
           response=OperatorAccount, auth=True, errors=(403,))
def account(user_uuid: str) -> Response:
    # The operator as require_operator checks them, with the page read beside their session's own read
    reading = operators.PageReading(ctx(), user_uuid=user_uuid)
    g.operator = authenticate_operator(along=reading.start)
    page = operators.account_page(ctx(), operator=current_operator(), user_uuid=user_uuid, reading=reading)
    return jsonify(page.model_dump())


@bp.get("/accounts/<string(maxlength=64):user_uuid>/history")
@require_operator
@operation("One page of the account's history (logins and operator actions), newest first", query=PageQuery,
           response=OperatorPage, auth=True, errors=(403,))
def history(user_uuid: str) -> Response:
    query = parse_model(PageQuery, request.args.to_dict())
    items, next_cursor = operators.history_page(ctx(), operator=current_operator(), user_uuid=user_uuid,
                                                limit=query.limit, cursor=query.cursor or None)
    return jsonify(OperatorPage(items=items, next_cursor=next_cursor).model_dump())


@bp.get("/accounts/<string(maxlength=64):user_uuid>/audit")
@require_operator
@operation("One page of the account's audit trail (the operator actions on it), newest first", query=PageQuery,
           response=OperatorPage, auth=True, errors=(403,))
def audit_trail(user_uuid: str) -> Response:
    query = parse_model(PageQuery, request.args.to_dict())
    items, next_cursor = operators.audit_page(ctx(), operator=current_operator(), user_uuid=user_uuid,
                                              limit=query.limit, cursor=query.cursor or None)
    return jsonify(OperatorPage(items=items, next_cursor=next_cursor).model_dump())


# --- the actions: each a POST with a reason, answered with the account's page -----------------

def _act(action: Callable[..., Any], user_uuid: str, body: ActionRequest, **arguments: Any) -> Response:
    action(ctx(), operator=current_operator(), user_uuid=user_uuid, request=body, caller=current_caller(),
           **arguments)
    return jsonify(_page(user_uuid).model_dump())


@bp.post("/accounts/<string(maxlength=64):user_uuid>/lock")
@require_operator
@operation("Lock the account: no login, every session ends (reason admin); support role, recent sign-in",
           body=ActionRequest, response=OperatorAccount, auth=True, errors=DESTRUCTIVE_ERRORS)
def lock(user_uuid: str) -> Response:
    return _act(operators.lock, user_uuid, parse_body(ActionRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/unlock")
@require_operator
@operation("Unlock the account: the operator's lock and any pause after wrong passwords; support role",
           body=ActionRequest, response=OperatorAccount, auth=True, errors=ACTION_ERRORS)
def unlock(user_uuid: str) -> Response:
    return _act(operators.unlock, user_uuid, parse_body(ActionRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/revoke-sessions")
@require_operator
@operation("End every session of the account (reason admin); support role, recent sign-in",
           body=ActionRequest, response=OperatorAccount, auth=True, errors=DESTRUCTIVE_ERRORS)
def revoke_sessions(user_uuid: str) -> Response:
    return _act(operators.revoke_sessions, user_uuid, parse_body(ActionRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/devices/<string(maxlength=64):device_id>/unbind")
@require_operator
@operation("Unbind a device: its certificate is revoked for good and its session ends; support role, recent "
           "sign-in", body=ActionRequest, response=OperatorAccount, auth=True, errors=DESTRUCTIVE_ERRORS)
def unbind(user_uuid: str, device_id: str) -> Response:
    return _act(operators.unbind_device, user_uuid, parse_body(ActionRequest), device_id=device_id)


@bp.post("/accounts/<string(maxlength=64):user_uuid>/limit")
@require_operator
@operation("Set the account's own device limit (0 = unlimited; null: the default); support role",
           body=LimitRequest, response=OperatorAccount, auth=True, errors=ACTION_ERRORS)
def limit(user_uuid: str) -> Response:
    return _act(operators.set_limit, user_uuid, parse_body(LimitRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/resend-verification")
@require_operator
@operation("Send the address's verification link again, unless it is verified; support role",
           body=ActionRequest, response=OperatorAccount, auth=True, errors=ACTION_ERRORS)
def resend_verification(user_uuid: str) -> Response:
    return _act(operators.resend_verification, user_uuid, parse_body(ActionRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/password-reset")
@require_operator
@operation("Mail the person a password reset link; support role, recent sign-in",
           body=ActionRequest, response=OperatorAccount, auth=True, errors=DESTRUCTIVE_ERRORS)
def password_reset(user_uuid: str) -> Response:
    return _act(operators.start_password_reset, user_uuid, parse_body(ActionRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/roles")
@require_operator
@operation("Grant or take away an operator role, never one above the caller's; admin role, recent sign-in",
           body=RoleRequest, response=OperatorAccount, auth=True, errors=DESTRUCTIVE_ERRORS)
def roles(user_uuid: str) -> Response:
    return _act(operators.change_role, user_uuid, parse_body(RoleRequest))


@bp.post("/accounts/<string(maxlength=64):user_uuid>/export")
@require_operator
@operation("Everything stored about the person, as one JSON document to hand them (GET /account/export's, with "
           "who acted on the account and why); support role, with a reason, audited; ?format=html and "
           "?format=readable as GET /account/export's", body=ActionRequest, query=ExportQuery, response=DataExport,
           auth=True, errors=ACTION_ERRORS)
def export(user_uuid: str) -> Response:
    body, query = parse_body(ActionRequest), export_query()
    document = operator_export.export_account(ctx(), operator=current_operator(), user_uuid=user_uuid, request=body,
                                              caller=current_caller())
    return delivered(document, query, for_accounts)


# --- apps and OpenID Connect clients: role admin ------------------------------------------------

class AppReason(ActionRequest):
    """An optional reason for the audit stream (an app change needs none)."""


@bp.get("/apps")
@require_operator
@operation("The registered apps and OpenID Connect clients (never a secret or its digest); admin role",
           response=AppList, auth=True, errors=(403,))
def apps() -> Response:
    return jsonify(AppList(apps=operator_apps.list_apps(ctx(), operator=current_operator())).model_dump())


@bp.post("/apps")
@require_operator
@operation("Register an app or OpenID Connect client, as `citylogin apps add`; its secret is in the answer, once",
           body=NewApp, response=AppCredentials, status=201, auth=True, errors=(403,))
def add_app() -> tuple[Response, int]:
    added = operator_apps.add_app(ctx(), operator=current_operator(), request=parse_body(NewApp))
    return jsonify(added), 201


@bp.get("/apps/<string(maxlength=64):client_id>")
@require_operator
@operation("One app", response=AppCredentials, auth=True, errors=(403,))
def app(client_id: str) -> Response:
    return jsonify(operator_apps.show_app(ctx(), operator=current_operator(), client_id=client_id))


@bp.patch("/apps/<string(maxlength=64):client_id>")
@require_operator
@operation("Change an app: the fields given (null removes an optional one); admin role", body=AppChange,
           response=AppCredentials, auth=True, errors=(403,))
def change_app(client_id: str) -> Response:
    changed = operator_apps.change_app(ctx(), operator=current_operator(), client_id=client_id,
                                       request=parse_body(AppChange))
    return jsonify(changed)


@bp.delete("/apps/<string(maxlength=64):client_id>")
@require_operator
@operation("Remove an app: its credentials stop working on every host within 2 s; admin role", body=AppReason,
           body_required=False, status=204, auth=True, errors=(403,))
def remove_app(client_id: str) -> tuple[str, int]:
    body = parse_optional_body(AppReason)
    operator_apps.remove_app(ctx(), operator=current_operator(), client_id=client_id, reason=body.reason)
    return "", 204


@bp.post("/apps/<string(maxlength=64):client_id>/rotate-secret")
@require_operator
@operation("A new secret for an app, shown once; the old one stops working; admin role", body=AppReason,
           body_required=False, response=AppCredentials, auth=True, errors=(403,))
def rotate_secret(client_id: str) -> Response:
    body = parse_optional_body(AppReason)
    rotated = operator_apps.rotate_secret(ctx(), operator=current_operator(), client_id=client_id, reason=body.reason)
    return jsonify(rotated)


# --- initial access tokens for apps that register themselves (RFC 7591): role admin -------------------

@bp.post("/registration-tokens")
@require_operator
@operation("Make an initial access token for POST /oidc/register, as `citylogin apps registration-token`: it "
           "registers up to `uses` apps until it expires; the token is in the answer, once", body=NewRegistrationToken,
           body_required=False, response=RegistrationTokenView, status=201, auth=True, errors=(403,))
def add_registration_token() -> tuple[Response, int]:
    made = operator_apps.make_registration_token(ctx(), operator=current_operator(),
                                                 request=parse_optional_body(NewRegistrationToken))
    return jsonify(made.model_dump()), 201


@bp.get("/registration-tokens")
@require_operator
@operation("The initial access tokens kept, newest first: id, expiry, uses left (never the token); admin role",
           response=RegistrationTokenList, auth=True, errors=(403,))
def registration_tokens() -> Response:
    listed = operator_apps.list_registration_tokens(ctx(), operator=current_operator())
    return jsonify(RegistrationTokenList(tokens=listed).model_dump(exclude={"tokens": {"__all__": {"token"}}}))


@bp.delete("/registration-tokens/<string(maxlength=64):token_id>")
@require_operator
@operation("Revoke an initial access token: it registers nothing more (the apps it registered stay); admin role",
           body=AppReason, body_required=False, status=204, auth=True, errors=(403,))
def revoke_registration_token(token_id: str) -> tuple[str, int]:
    body = parse_optional_body(AppReason)
    operator_apps.revoke_registration_token(ctx(), operator=current_operator(), token_id=token_id, reason=body.reason)
    return "", 204


# --- upstream identity providers (SPEC §16): role admin ---------------------------------------------

@bp.get("/identity-providers")
@require_operator
@operation("The upstream sign-in providers, enabled or not, as `citylogin idp list` (whether a secret is set, "
           "never the secret); admin role", response=ProviderList, auth=True, errors=(403,))
def identity_providers() -> Response:
    listed = operator_idps.list_providers(ctx(), operator=current_operator())
    return jsonify({"providers": listed})


@bp.post("/identity-providers")
@require_operator
@operation("Add an upstream sign-in provider, as `citylogin idp add`: its preset fills what is left out; the client "
           "secret (Apple: the private key) is sealed and never answered; admin role", body=NewProvider,
           response=ProviderView, status=201, auth=True, errors=(403, 409))
def add_identity_provider() -> tuple[Response, int]:
    added = operator_idps.add_provider(ctx(), operator=current_operator(), request=parse_body(NewProvider))
    return jsonify(added), 201


@bp.get("/identity-providers/<string(maxlength=32):name>")
@require_operator
@operation("One upstream sign-in provider; admin role", response=ProviderView, auth=True, errors=(403, 404))
def identity_provider(name: str) -> Response:
    return jsonify(operator_idps.show_provider(ctx(), operator=current_operator(), name=name))


@bp.patch("/identity-providers/<string(maxlength=32):name>")
@require_operator
@operation("Change an upstream sign-in provider: the fields given (a new secret replaces the old); admin role",
           body=ProviderChange, response=ProviderView, auth=True, errors=(403, 404, 409))
def change_identity_provider(name: str) -> Response:
    changed = operator_idps.change_provider(ctx(), operator=current_operator(), name=name,
                                            request=parse_body(ProviderChange))
    return jsonify(changed)


@bp.delete("/identity-providers/<string(maxlength=32):name>")
@require_operator
@operation("Remove an upstream sign-in provider: it is offered no more (identities linked through it stay on "
           "their accounts); admin role", body=AppReason, body_required=False, status=204, auth=True,
           errors=(403, 404))
def remove_identity_provider(name: str) -> tuple[str, int]:
    body = parse_optional_body(AppReason)
    operator_idps.remove_provider(ctx(), operator=current_operator(), name=name, reason=body.reason)
    return "", 204


# --- the mail outbox: the mail given up, re-sent or dropped; role admin --------------------------------

@bp.get("/mail")
@require_operator
@operation("The undelivered mail, oldest first, and the mail waiting to go, the longest waiting first (since "
           "when, tries, next try): id, event, account, times, tries, last error (never its address or contents), "
           "as `citylogin mail list`; admin role", response=UndeliveredMailList, auth=True, errors=(403,))
def undelivered_mail() -> Response:
    given_up = operator_mail.undelivered(ctx(), operator=current_operator())
    waiting = operator_mail.waiting(ctx(), operator=current_operator())
    return jsonify(UndeliveredMailList(mails=[UndeliveredMail(**row) for row in given_up],
                                       waiting=[WaitingMail(**row) for row in waiting]).model_dump())


@bp.post("/mail/<string(maxlength=64):mail_id>/resend")
@require_operator
@operation("Try an undelivered mail again, for another CITYLOGIN_MAIL_GIVE_UP_HOURS; admin role, with a reason",
           body=ActionRequest, response=MailActionDone, auth=True, errors=ACTION_ERRORS)
def resend_mail(mail_id: str) -> Response:
    body = parse_body(ActionRequest)
    return jsonify(operator_mail.resend(ctx(), operator=current_operator(), mail_id=mail_id, reason=body.reason))


@bp.post("/mail/<string(maxlength=64):mail_id>/drop")
@require_operator
@operation("Delete an undelivered mail for good; admin role, with a reason", body=ActionRequest,
           response=MailActionDone, auth=True, errors=ACTION_ERRORS)
def drop_mail(mail_id: str) -> Response:
    body = parse_body(ActionRequest)
    return jsonify(operator_mail.drop(ctx(), operator=current_operator(), mail_id=mail_id, reason=body.reason))
