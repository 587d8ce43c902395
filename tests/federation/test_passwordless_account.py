"""An account made with a provider's answer has no password (password_hash ""): every password path treats it
as "no password" (a login with any password is 401 invalid_credentials, never a 500), its first password is
set where a change is (POST /account/password without current_password, confirmed by a fresh sign-in with the
provider: a reauth token), and its deletion frees the identity."""
from __future__ import annotations

import requests

from accounts import user_service as users
from federation import identities, tickets
from tests.support.federation_flows import federation_app, identity, post, proof, provider, sign_up, ticket
from tests.support.fixtures import problem
from tests.support.live import PASSWORD


def test_no_password_then_a_first_password_then_deletion_frees_the_identity(base_config):
    with federation_app(base_config) as (url, ctx):
        who = identity(provider(ctx))
        value = ticket(ctx, who)
        _, device = sign_up(url, value)
        signed = post(url, "/federation/login", proof(device), ticket_value=value).json()
        bearer = {"Authorization": f"Bearer {signed['access_token']}"}
        for password in (PASSWORD, "x" * 20):
            refused = post(url, "/login/", {"username": device.key_file.username, "password": password,
                                            **proof(device)})
            assert problem(refused)[:2] == (401, "invalid_credentials")
        # a change that names a current password: there is none, so it is wrong
        wrong = requests.post(url + "/account/password", headers=bearer, timeout=30,
                              json={"current_password": "anything", "new_password": PASSWORD})
        assert problem(wrong)[:2] == (401, "invalid_credentials")
        alone = requests.post(url + "/account/password", headers=bearer, timeout=30, json={"new_password": PASSWORD})
        assert problem(alone)[:2] == (401, "reauthentication_required")
        reauth = tickets.issue(ctx.dynamodb, ctx.tables, identity=who, purpose="reauth", now=ctx.epoch(),
                               user_uuid=device.key_file.user_uuid)
        token = post(url, "/federation/reauth", {}, ticket_value=reauth, headers=bearer).json()["reauth_token"]
        first = requests.post(url + "/account/password", headers=bearer, timeout=30,
                              json={"reauth_token": token, "new_password": PASSWORD, "logout_other_sessions": False})
        assert first.status_code == 204, first.text
        assert users.get_user(ctx, user_uuid=device.key_file.user_uuid).has_password
        # once it has one, a change asks for it again
        again = requests.post(url + "/account/password", headers=bearer, timeout=30, json={"new_password": PASSWORD})
        assert problem(again)[:2] == (400, "missing_fields")
        assert post(url, "/login/", {"username": device.key_file.username, "password": PASSWORD,
                                     **proof(device)}).status_code == 200
        device.login(PASSWORD)
        assert device.request("DELETE", "/account", json={"password": PASSWORD}).status_code == 204
        assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) is None
