"""HTTP routes of /account, all of them: the profile and e-mail address, the password, passkeys,
recovery codes, deletion, "Wasn't you?" and the apps the person allowed. Parse, call one service or
flow function, shape the answer. What a route asks of the packages above accounts/ (the data export,
deletion and its sweeper, "Wasn't you?", new recovery codes, the apps allowed) it asks of the AccountFlows
that the service mounting this blueprint gives (flows.for_accounts).

/account is the login service's (python -m login_app.app_login): every change to an account asks for
a session, and most for the password again under the login's own lockout."""
from __future__ import annotations

from typing import Any, Protocol

from flask import Blueprint, Response, jsonify
from flask.blueprints import BlueprintSetupState

from accounts import passkey_management, passkey_service, password_service, service
from accounts.downloads import ReadableCopies, delivered, export_query
from accounts.models import (AcceptedResponse, AccountPatch, AccountView, ChangePasswordRequest, ConsentList,
                             ConsentView, DataExport, EmailAccepted, EmailChangeRequest, EmailVerified, ExportQuery,
                             NotMeRequest, NotMeResult, PasskeyAdded, PasskeyList, PasskeyOptions, PasskeyRegistration,
                             PasskeyRename, PasswordRequest, PasswordResetConfirm, PasswordResetRequest, RecoveryCodes,
                             Secret, VerifyEmailRequest)
from sessions.guard import current_principal, require_session
from sessions.models import Principal, RevokeReason
from common.slots import Slot
from common.web.caller import Caller, current_caller
from common.runtime.context import EXTENSION_KEY, AppContext, ctx
from common.web.openapi import operation
from common.web.validation import parse_body


class AccountFlows(ReadableCopies, Protocol):
    """What /account asks of the packages above accounts/."""

    def start_deletion_sweeper(self, ctx: AppContext) -> None:
        """flows.deletion_sweeper: this process also finishes the deletions whose request did not."""

    def export_data(self, ctx: AppContext, *, user_uuid: str, for_operator: bool = False) -> dict[str, Any]:
        """flows.data_export: everything stored about the account, as one document."""

    def delete_account(self, ctx: AppContext, *, principal: Principal, secret: Secret, caller: Caller) -> None:
        """flows.deletion: the account and its data, the password asked again."""

    def not_me(self, ctx: AppContext, *, token: str, end_all_sessions: bool) -> NotMeResult:
        """flows.not_me: the device a sign-in or new-device message named, removed."""

    def regenerate_recovery_codes(self, ctx: AppContext, *, user_uuid: str, secret: Secret,
                                  caller: Caller) -> list[str]:
        """flows.recovery: ten new recovery codes, the old ones void."""

    def list_consents(self, ctx: AppContext, *, user_uuid: str) -> list[ConsentView]:
        """oidc.consents: the apps the person allowed."""

    def withdraw_consent(self, ctx: AppContext, *, user_uuid: str, client_id: str) -> None:
        """oidc.consents: one app's consent taken back."""


FLOWS: Slot[AccountFlows] = Slot("accounts.views.flows")

bp = Blueprint("accounts", __name__, url_prefix="/account")


@bp.record_once
def _start_deletion_sweeper(state: BlueprintSetupState) -> None:
    """Every process serving deletions also finishes those whose request did not (its flows given, or no app)."""
    context = state.app.extensions[EXTENSION_KEY]
    context.slots.needed(FLOWS).start_deletion_sweeper(context)


def _flows() -> AccountFlows:
    return ctx().slots.needed(FLOWS)


RESET_ACCEPTED = "If an account has this address, a link to reset its password is on its way."


@bp.get("")
@require_session
@operation("The caller's account", response=AccountView, auth=True)
def account() -> Response:
    return jsonify(service.account_view(ctx(), user_uuid=current_principal().user_uuid).model_dump())


# --- e-mail address and profile settings -----------------------------------------------------

@bp.patch("")
@require_session
@operation("Change the caller's settings (the locale of messages)", body=AccountPatch, response=AccountView,
           auth=True)
def update_account() -> Response:
    patch = parse_body(AccountPatch)
    return jsonify(service.update_profile(ctx(), user_uuid=current_principal().user_uuid,
                                          locale=patch.locale).model_dump())


@bp.post("/verify_email")
@operation("Verify an e-mail address with the token of its link", body=VerifyEmailRequest, response=EmailVerified,
           errors=(409,))
def verify_email() -> Response:
    service.verify_email(ctx(), token=parse_body(VerifyEmailRequest).token)
    return jsonify(EmailVerified(email_verified=True).model_dump())


@bp.post("/verify_email/resend")
@require_session
@operation("Send the verification link of the caller's address again", response=EmailAccepted, status=202,
           auth=True, errors=(429,))
def resend_verification() -> tuple[Response, int]:
    service.resend_verification(ctx(), user_uuid=current_principal().user_uuid)
    return jsonify(EmailAccepted(message="A verification link is on its way, unless the address is verified.",
                                 mail_delayed=ctx().notifier.delayed()).model_dump()), 202


@bp.post("/email")
@require_session
@operation("Change the caller's address once the link sent to the new one is used", body=EmailChangeRequest,
           response=EmailAccepted, status=202, auth=True, errors=(429,))
def change_email() -> tuple[Response, int]:
    change = parse_body(EmailChangeRequest)
    service.request_email_change(ctx(), user_uuid=current_principal().user_uuid, secret=change.secret(),
                                 new_email=str(change.new_email), caller=current_caller())
    return jsonify(EmailAccepted(message="Open the link sent to the new address to complete the change.")
                   .model_dump()), 202


# --- the password ------------------------------------------------------------------------------------

@bp.post("/password")
@require_session
@operation("Change the password; the current one is asked again", body=ChangePasswordRequest, status=204,
           auth=True, errors=(429,))
def change_password() -> tuple[str, int]:
    body = parse_body(ChangePasswordRequest)
    password_service.change_password(ctx(), principal=current_principal(), request=body, caller=current_caller())
    return "", 204


@bp.post("/password_reset")
@operation("E-mail a password reset link; the same answer whether or not an account has the address",
           body=PasswordResetRequest, response=AcceptedResponse, status=202, errors=(429,))
def request_password_reset() -> tuple[Response, int]:
    body = parse_body(PasswordResetRequest)
    password_service.request_password_reset(ctx(), email=str(body.email), caller=current_caller())
    return jsonify(AcceptedResponse(message=RESET_ACCEPTED, mail_delayed=ctx().notifier.delayed()).model_dump()), 202


@bp.post("/password_reset/confirm")
@operation("Set a new password with the token of a reset link; every session ends", body=PasswordResetConfirm,
           status=204)
def confirm_password_reset() -> tuple[str, int]:
    body = parse_body(PasswordResetConfirm)
    password_service.confirm_password_reset(ctx(), token=body.token, new_password=body.new_password)
    return "", 204


# --- the person's data export ------------------------------------------------------------------

@bp.get("/export")
@require_session
@operation("Everything stored about the caller, as one JSON document to download (no secret, hash or digest); "
           "?format=html (or Accept: text/html) its readable copy as a printable HTML file, ?format=readable that "
           "copy as JSON, with dates in ?time_zone", query=ExportQuery, response=DataExport, auth=True,
           errors=(404, 409))
def export() -> Response:
    query = export_query()
    document = _flows().export_data(ctx(), user_uuid=current_principal().user_uuid)
    return delivered(document, query, _flows())


# --- deletion and "Wasn't you?" ----------------------------------------------------------------------

@bp.delete("")
@require_session(accept_ended_reason=RevokeReason.ACCOUNT_DELETED)  # a retry after the deletion ended it
@operation("Delete the account and its data; the password is asked again", body=PasswordRequest, status=204,
           auth=True, errors=(429,))
def delete_account() -> tuple[str, int]:
    body = parse_body(PasswordRequest)
    _flows().delete_account(ctx(), principal=current_principal(), secret=body.secret(), caller=current_caller())
    return "", 204


@bp.post("/not_me")
@operation('"Wasn\'t you?": remove the device a sign-in or new-device message named', body=NotMeRequest,
           response=NotMeResult)
def not_me() -> Response:
    body = parse_body(NotMeRequest)
    result = _flows().not_me(ctx(), token=body.token, end_all_sessions=body.end_all_sessions)
    return jsonify(result.model_dump())


# --- recovery codes ----------------------------------------------------------------------------------

@bp.post("/recovery_codes")
@require_session
@operation("Ten new recovery codes (the old ones void); the password is asked again", body=PasswordRequest,
           response=RecoveryCodes, status=201, auth=True, errors=(409, 429))
def replace_recovery_codes() -> tuple[Response, int]:
    body = parse_body(PasswordRequest)
    codes = _flows().regenerate_recovery_codes(ctx(), user_uuid=current_principal().user_uuid,
                                               secret=body.secret(), caller=current_caller())
    return jsonify(RecoveryCodes(recovery_codes=codes).model_dump()), 201


# --- passkeys ----------------------------------------------------------------------------------------

@bp.post("/passkeys/options")
@require_session
@operation("Options to create a passkey; the password or a passkey is asked again", body=PasswordRequest,
           response=PasskeyOptions, auth=True, errors=(429,))
def passkey_creation_options() -> Response:
    body = parse_body(PasswordRequest)
    options = passkey_management.creation_options(ctx(), principal=current_principal(), secret=body.secret(),
                                                  caller=current_caller())
    return Response(options, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.post("/passkeys")
@require_session
@operation("Register a passkey created with the options", body=PasskeyRegistration, response=PasskeyAdded,
           status=201, auth=True, errors=(409,))
def add_passkey() -> tuple[Response, int]:
    body = parse_body(PasskeyRegistration)
    added = passkey_management.add_passkey(ctx(), principal=current_principal(), registration=body)
    return jsonify(added.model_dump()), 201


@bp.get("/passkeys")
@require_session
@operation("The caller's passkeys", response=PasskeyList, auth=True)
def passkeys() -> Response:
    listed = passkey_service.list_passkeys(ctx(), user_uuid=current_principal().user_uuid)
    return jsonify(PasskeyList(passkeys=listed).model_dump())


@bp.patch("/passkeys/<string(minlength=16,maxlength=1024):credential_id>")
@require_session
@operation("Rename one of the caller's passkeys", body=PasskeyRename, response=PasskeyAdded, auth=True)
def rename_passkey(credential_id: str) -> Response:
    body = parse_body(PasskeyRename)
    renamed = passkey_service.rename_passkey(ctx(), user_uuid=current_principal().user_uuid,
                                             credential_id=credential_id, name=body.name)
    return jsonify(renamed.model_dump())


@bp.delete("/passkeys/<string(minlength=16,maxlength=1024):credential_id>")
@require_session
@operation("Remove one of the caller's passkeys; the password or a passkey is asked again", body=PasswordRequest,
           status=204, auth=True, errors=(429,))
def remove_passkey(credential_id: str) -> tuple[str, int]:
    body = parse_body(PasswordRequest)
    passkey_management.remove_passkey(ctx(), principal=current_principal(), credential_id=credential_id,
                                      secret=body.secret(), caller=current_caller())
    return "", 204


# --- apps the person allowed (SPEC §14: remembered consent) -----------------------------------------

@bp.get("/consents")
@require_session
@operation("The apps the caller allowed to use their account (apps that ask for consent)", response=ConsentList,
           auth=True)
def consents() -> Response:
    listed = _flows().list_consents(ctx(), user_uuid=current_principal().user_uuid)
    return jsonify(ConsentList(consents=listed).model_dump())


@bp.delete("/consents/<string(minlength=1,maxlength=128):client_id>")
@require_session
@operation("Withdraw the caller's consent to an app: it asks again next time, and its tokens of the caller's "
           "live sessions stop working now", status=204, auth=True, errors=(404,))
def withdraw_consent(client_id: str) -> tuple[str, int]:
    _flows().withdraw_consent(ctx(), user_uuid=current_principal().user_uuid, client_id=client_id)
    return "", 204
