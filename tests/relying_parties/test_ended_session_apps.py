"""An ended session still says which apps it held (issue 54): each grant's redemption adds the app, by its
name then, to the session's record in the redemption's own transaction, so GET /session/list names an
ended session's apps for the week its record is kept, after the grant rows are gone (24 hours); a
deletion's erasure takes them off the record with the rest of the person's details."""
from __future__ import annotations

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.app_grants import ending as grants
from sessions.service import session_store
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens

REDIRECT = "https://app.example/callback"


def listed(client, *, include_ended: bool) -> dict[str, dict]:
    body = client.get_json(f"/session/list?include_ended={str(include_ended).lower()}")
    return {session["session_id"]: session for session in body["sessions"]}


def names(session: dict) -> list[str]:
    return [app["name"] for app in session["apps"]]


def test_an_ended_session_lists_the_apps_it_held_after_their_grants_are_gone(make_server):
    url, ctx = make_server()
    notes = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    diary = apps.add_app(ctx, name="diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    apps.add_app(ctx, name="Never signed in", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    laptop = register_device(url)
    first = laptop.login(PASSWORD)["session_id"]
    for app in (notes, diary, notes):          # Notes signs in twice: listed once
        signed_in_tokens(url, app, laptop, redirect_uri=REDIRECT)
    assert names(listed(laptop, include_ended=False)[first]) == ["diary", "Notes"]

    laptop.logout()
    second = laptop.login(PASSWORD)["session_id"]   # another session reads the list
    sessions = listed(laptop, include_ended=True)
    assert sessions[first]["status"] == "revoked"
    assert names(sessions[first]) == ["diary", "Notes"]
    assert {app["client_id"] for app in sessions[first]["apps"]} == {notes.app.client_id, diary.app.client_id}
    assert sessions[second]["apps"] == []

    for app in (notes, diary):                      # as 24 hours after the end: the grant rows expired
        grants.store(ctx).delete(session_id=first, client_id=app.app.client_id)
    assert names(listed(laptop, include_ended=True)[first]) == ["diary", "Notes"]

    session_store(ctx).forget_personal_details([first])   # the account's deletion erases them
    record = session_store(ctx).get(first)
    assert record is not None and record.app_names is None and record.apps_signed_in() == []


def test_a_live_session_lists_only_the_apps_signed_in_now(make_server):
    # The record keeps every app that signed in; a live session shows its live grants, with "Sign out".
    url, ctx = make_server()
    notes = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    laptop = register_device(url)
    session_id = laptop.login(PASSWORD)["session_id"]
    signed_in_tokens(url, notes, laptop, redirect_uri=REDIRECT)
    laptop.request("DELETE", f"/session/{session_id}/apps/{notes.app.client_id}").raise_for_status()
    assert listed(laptop, include_ended=False)[session_id]["apps"] == []
    assert session_store(ctx).get(session_id).apps_signed_in() == [(notes.app.client_id, "Notes")]
