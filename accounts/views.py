"""HTTP routes of /account: parse, call one service function, shape the answer.

The password routes are in password_views.py. POST /account/recovery_codes sits beside
POST /device/recover in login_app/recovery_views.py, and DELETE /account, which revokes the
devices too, in login_app/account_views.py (both above device_manager)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from accounts import service
from accounts.models import (AccountPatch, AccountView, EmailAccepted, EmailChangeRequest, EmailVerified,
                             VerifyEmailRequest)
from common.caller import current_caller
from common.context import ctx
from common.openapi import operation
from common.validation import parse_body
from session_manager.guard import current_principal, require_session

bp = Blueprint("accounts", __name__, url_prefix="/account")


@bp.get("")
@require_session
@operation("The caller's account", response=AccountView, auth=True)
def account():
    return jsonify(service.account_view(ctx(), user_uuid=current_principal().user_uuid).model_dump())


# --- e-mail address and profile settings -----------------------------------------------------

@bp.patch("")
@require_session
@operation("Change the caller's settings (the locale of messages)", body=AccountPatch, response=AccountView,
           auth=True)
def update_account():
    patch = parse_body(AccountPatch)
    return jsonify(service.update_profile(ctx(), user_uuid=current_principal().user_uuid,
                                          locale=patch.locale).model_dump())


@bp.post("/verify_email")
@operation("Verify an e-mail address with the token of its link", body=VerifyEmailRequest, response=EmailVerified,
           errors=(409,))
def verify_email():
    service.verify_email(ctx(), token=parse_body(VerifyEmailRequest).token)
    return jsonify(EmailVerified(email_verified=True).model_dump())


@bp.post("/verify_email/resend")
@require_session
@operation("Send the verification link of the caller's address again", response=EmailAccepted, status=202,
           auth=True, errors=(429,))
def resend_verification():
    service.resend_verification(ctx(), user_uuid=current_principal().user_uuid)
    return jsonify(EmailAccepted(message="A verification link is on its way, unless the address is verified.")
                   .model_dump()), 202


@bp.post("/email")
@require_session
@operation("Change the caller's address once the link sent to the new one is used", body=EmailChangeRequest,
           response=EmailAccepted, status=202, auth=True, errors=(429,))
def change_email():
    change = parse_body(EmailChangeRequest)
    service.request_email_change(ctx(), user_uuid=current_principal().user_uuid, password=change.password,
                                 new_email=str(change.new_email), caller=current_caller())
    return jsonify(EmailAccepted(message="Open the link sent to the new address to complete the change.")
                   .model_dump()), 202
