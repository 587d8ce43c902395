"""An app's refresh tokens (SPEC §14 with §4's rules): given with offline_access (and always to a
public client), rotated on every use, only the client they were issued to can use them, and none
outlives the citylogin session. The token just rotated out, sent again within
CITYLOGIN_REFRESH_REUSE_GRACE, gets the same successor pair and ends nothing (racers on real threads,
through the real server on DynamoDB Local, all get it); an older one, or one after the grace, ends that
app's grant on the session alone: the device's session and other apps' grants go on."""
from __future__ import annotations

import base64
import hashlib
import json
import threading

import jwt
import pytest
import requests

from accounts import service as accounts
from relying_parties import service as apps
from relying_parties.models import OidcClient
from common.crypto.tokens import keyed_token
from oidc.token import refresh_tokens as refresh
from oidc.core.store import GrantStore
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device, verify_address
from tests.support.oidc import code_for

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _app(ctx, **options):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), **options))


def _auth(credentials) -> dict:
    if credentials.client_secret:
        return {"auth": (credentials.app.client_id, credentials.client_secret)}
    return {"data_extra": {"client_id": credentials.app.client_id}}


def _post_token(url: str, credentials, data: dict) -> requests.Response:
    auth = _auth(credentials)
    return requests.post(url + "/oidc/token", data={**data, **auth.get("data_extra", {})}, auth=auth.get("auth"),
                         timeout=10)


def _signed_in(url: str, credentials, device, *, scope: str = "openid offline_access") -> dict:
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=scope)
    issued = _post_token(url, credentials, {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert issued.status_code == 200, issued.text
    return issued.json()


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return _post_token(url, credentials, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def _device(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def _introspected(url: str, credentials, token: str) -> bool:
    return requests.post(url + "/session/introspect", data={"token": token},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10).json()["active"]


def _pair(response: requests.Response) -> tuple[str, str, str, str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["access_token"], body["refresh_token"], body["token_type"], body["scope"]


def test_offline_access_gives_a_refresh_token_that_rotates_and_an_older_one_ends_the_apps_grant_alone(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = _device(url)
    first = _signed_in(url, credentials, device)
    assert "refresh_token" in first and "id_token" in first
    others = _signed_in(url, other, device)

    second = _refresh(url, credentials, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["Cache-Control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["scope"] == "openid offline_access"
    assert _userinfo(url, rotated["access_token"]) == 200
    third = _refresh(url, credentials, rotated["refresh_token"])
    assert third.status_code == 200, third.text

    # The first token again, two rotations later: a copy, or a client that lost track; no grace for it.
    reused = _refresh(url, credentials, first["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, third.json()["access_token"]) == 401
    assert not _introspected(url, credentials, third.json()["access_token"])
    assert _refresh(url, credentials, third.json()["refresh_token"]).json()["error"] == "invalid_grant"
    # that app's grant alone: the device's session and the other app's grant go on
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200
    assert _refresh(url, other, others["refresh_token"]).status_code == 200
    # and the app may sign in again on the same session: a new grant, which revives none of the ended one's
    # tokens (a copy of them stays refused) and which a token of the ended one cannot give back
    again = _signed_in(url, credentials, device)
    assert _userinfo(url, again["access_token"]) == 200
    for ended in (first["access_token"], third.json()["access_token"]):
        assert _userinfo(url, ended) == 401 and not _introspected(url, credentials, ended)
    assert requests.post(url + "/oidc/revoke", data={"token": third.json()["access_token"]}, timeout=10,
                         auth=(credentials.app.client_id, credentials.client_secret)).status_code == 200
    assert _userinfo(url, again["access_token"]) == 200
    assert _refresh(url, credentials, again["refresh_token"]).status_code == 200


def test_the_token_just_rotated_out_gets_the_same_pair_within_the_grace_and_ends_the_grant_after_it(make_server):
    url, ctx = make_server(host_name="127.0.0.1", refresh_reuse_grace=10)
    clock = FakeClock()
    ctx.clock = clock
    credentials, other = _app(ctx), _app(ctx)
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    tokens, others = _signed_in(url, credentials, device), _signed_in(url, other, device)

    successor = _pair(_refresh(url, credentials, tokens["refresh_token"]))
    clock.advance(10)  # a retry at the grace's last second: the same pair, nothing written
    assert _pair(_refresh(url, credentials, tokens["refresh_token"])) == successor
    assert _userinfo(url, successor[0]) == 200

    clock.advance(1)   # past the grace
    reused = _refresh(url, credentials, tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, successor[0]) == 401
    assert not _introspected(url, credentials, successor[0])
    assert _refresh(url, credentials, successor[1]).json()["error"] == "invalid_grant"
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200
    assert _refresh(url, other, others["refresh_token"]).status_code == 200


def test_without_offline_access_a_confidential_client_gets_none_and_a_public_one_always(provider):
    url, ctx = provider
    device = _device(url)
    assert "refresh_token" not in _signed_in(url, _app(ctx), device, scope="openid")
    public = _app(ctx, public=True)
    tokens = _signed_in(url, public, device, scope="openid")
    assert _refresh(url, public, tokens["refresh_token"]).status_code == 200


def test_only_the_client_it_was_issued_to_can_use_it_and_a_forgery_is_refused(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = _device(url)
    tokens = _signed_in(url, credentials, device)
    stolen = _refresh(url, other, tokens["refresh_token"])
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    session_id, client_id, grant_id, generation, kid, mark, sealed, mac = tokens["refresh_token"].split(".")
    person = _clear_values(ctx, tokens["refresh_token"])
    # What the token carries of the grant is sealed under its MAC: another scope, user or key, in clear (the
    # forms before sealing) or in a sealed part with a character changed, is refused.
    edited = [_carried([*person[:2], "openid profile email offline_access", *person[3:]]),
              _carried([other.app.client_id, *person[1:]]), _carried([*person[:5], "a" * 43]), "", "!!"]
    changed = sealed[:10] + ("A" if sealed[10] != "A" else "B") + sealed[11:]
    for forged in (f"{session_id}.{client_id}.{grant_id}.{int(generation) + 1}.{kid}.{mark}.{sealed}.{mac}",
                   f"{session_id}.{other.app.client_id}.{grant_id}.{generation}.{kid}.{mark}.{sealed}.{mac}",
                   *(f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{e}.{mac}" for e in edited),
                   *(f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{mark}.{e}.{mac}" for e in edited),
                   f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{mark}.{changed}.{mac}",
                   f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{sealed}.{mac}",  # no mark
                   f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{mac}",  # the earliest form, same MAC
                   tokens["refresh_token"][:-2] + "xx", "x" * 600, "a.b.c.d.e.f", "a.b.c.d.e.f.g", "", "..."):
        refused = _refresh(url, credentials, forged)
        assert (refused.status_code, refused.json()["error"]) in ((400, "invalid_grant"), (400, "invalid_request"))
    # none of that counted as a use: the real token still rotates, and the session lives
    assert _refresh(url, credentials, tokens["refresh_token"]).status_code == 200
    assert device.request("GET", "/session/me").status_code == 200


def test_a_refresh_token_dies_with_the_session_and_with_a_new_grant(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    earlier = _signed_in(url, credentials, device)
    later = _signed_in(url, credentials, device)      # the app signs in again: its earlier grant is replaced
    assert _refresh(url, credentials, earlier["refresh_token"]).json()["error"] == "invalid_grant"
    assert device.request("GET", "/session/me").status_code == 200   # not a reuse: a grant that is gone

    device.logout()
    ended = _refresh(url, credentials, later["refresh_token"])
    assert (ended.status_code, ended.json()["error"]) == (400, "invalid_grant")


def test_racers_with_one_refresh_token_all_get_the_same_pair_and_end_nothing(provider):
    """A lost answer retried, two tabs, two app hosts: the same token at once on real threads."""
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = _device(url)
    tokens, others = _signed_in(url, credentials, device), _signed_in(url, other, device)
    def race(barrier: threading.Barrier, answers: list[requests.Response], refresh_token: str) -> None:
        barrier.wait()
        answers.append(_refresh(url, credentials, refresh_token))

    for round_ in range(3):
        barrier, answers = threading.Barrier(4), []
        racers = [threading.Thread(target=race, args=(barrier, answers, tokens["refresh_token"])) for _ in range(4)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        pairs = {_pair(answer) for answer in answers}
        assert len(answers) == 4 and len(pairs) == 1, (round_, pairs)
        (access_token, refresh_token, _, _), = pairs
        assert refresh_token != tokens["refresh_token"] and _userinfo(url, access_token) == 200
        tokens = {"refresh_token": refresh_token}
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200


def _carried(values: list) -> str:
    """A `carried` part as the releases before sealing spelled it: base64url JSON, in clear."""
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _clear_values(ctx, token: str) -> list:
    """What a token's grant says of the person, as a token of GRANT_SCOPE_FORM carried it in clear: read
    from the grant's record, since the token's own part is sealed."""
    session_id, client_id = token.split(".")[:2]
    grant = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=session_id, client_id=client_id)
    assert grant is not None
    return [grant.user_uuid, grant.device_id, grant.scope, grant.auth_time, list(grant.amr), grant.jkt,
            refresh.GRANT_SCOPE_FORM]


def _clear_token(ctx, token: str, values: list) -> str:
    """`token`'s head with `values` in a clear `carried` part, under its MAC: a token the release before made."""
    session_id, client_id, grant_id, generation, kid = token.split(".")[:5]
    head = f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}.{_carried(values)}"
    return f"{head}.{keyed_token(ctx.refresh_secrets.get(kid), f'oidc_refresh:{head}')}"


def test_a_refresh_token_of_the_earlier_form_is_read_and_rotated_into_the_new_one(provider):
    """<session>.<client>.<grant>.<generation>.<kid>.<mac>, as handed out before tokens carried what their
    grant says: still a valid token of its grant (read first), and its successor carries it."""
    url, ctx = provider
    credentials = _app(ctx)
    tokens = _signed_in(url, credentials, _device(url))
    session_id, client_id, grant_id, generation, kid = tokens["refresh_token"].split(".")[:5]
    head = f"{session_id}.{client_id}.{grant_id}.{generation}.{kid}"
    earlier = f"{head}.{keyed_token(ctx.refresh_secrets.get(kid), f'oidc_refresh:{head}')}"
    rotated = _refresh(url, credentials, earlier)
    assert rotated.status_code == 200, rotated.text
    successor = rotated.json()["refresh_token"]
    assert successor.split(".")[5] == refresh.SEALED_MARK and len(successor.split(".")) == 8
    again = _refresh(url, credentials, earlier)  # within the grace: the same successor, as for any token
    assert again.status_code == 200 and again.json()["refresh_token"] == successor
    assert _refresh(url, credentials, successor).status_code == 200


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_refresh_of_an_openid_grant_answers_an_id_token_of_the_same_sign_in(make_server, alg):
    """OpenID Connect Core §12.2: the same sub, sid, auth_time, amr and acr, no nonce, a fresh iat, the new
    access token's at_hash, signed with the app's algorithm; the same claims again within the grace (a
    retry), and none for a refresh narrowed to scopes without openid."""
    url, ctx = make_server(host_name="127.0.0.1", refresh_reuse_grace=10)
    clock = FakeClock()
    ctx.clock = clock
    credentials = _app(ctx, id_token_alg=alg)
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT,
                              scope="openid offline_access", nonce="n-1")
    tokens = _post_token(url, credentials, {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": verifier}).json()
    jwks = jwt.PyJWKClient(url + "/.well-known/jwks.json")

    def verified(id_token: str) -> dict:
        assert jwt.get_unverified_header(id_token)["alg"] == alg
        return jwt.decode(id_token, jwks.get_signing_key_from_jwt(id_token).key, algorithms=[alg],
                          audience=credentials.app.client_id, issuer=url, leeway=120)  # the server's clock is ahead

    first = verified(tokens["id_token"])
    assert first["nonce"] == "n-1"
    clock.advance(30)
    answer = _refresh(url, credentials, tokens["refresh_token"])
    assert answer.status_code == 200, answer.text
    refreshed = verified(answer.json()["id_token"])
    same = ("iss", "sub", "aud", "azp", "sid", "auth_time", "amr", "acr")
    assert {k: refreshed[k] for k in same} == {k: first[k] for k in same}
    assert "nonce" not in refreshed and refreshed["iat"] >= first["iat"] + 30
    assert refreshed["exp"] - refreshed["iat"] == first["exp"] - first["iat"]
    access = answer.json()["access_token"]
    digest = hashlib.sha512(access.encode()).digest()[:32] if alg == "EdDSA" else \
        hashlib.sha256(access.encode()).digest()[:16]  # the left half (OpenID Connect Core §3.1.3.6)
    assert refreshed["at_hash"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")

    clock.advance(5)  # a retry within the grace: the same pair, and an ID token of the same claims
    again = _refresh(url, credentials, tokens["refresh_token"])
    assert again.json()["access_token"] == access and verified(again.json()["id_token"]) == refreshed

    narrowed = _post_token(url, credentials, {"grant_type": "refresh_token", "scope": "offline_access",
                                              "refresh_token": answer.json()["refresh_token"]})
    assert narrowed.status_code == 200, narrowed.text
    assert "id_token" not in narrowed.json() and narrowed.json()["scope"] == "offline_access"


FULL_SCOPE = "openid profile email offline_access"


def _narrowed(url: str, credentials, refresh_token: str, scope: str) -> requests.Response:
    return _post_token(url, credentials, {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                          "scope": scope})


def _person_told(url: str, answer: dict) -> tuple[dict, dict]:
    """(the answer's ID token claims, userinfo with its access token)."""
    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {answer['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    return jwt.decode(answer["id_token"], options={"verify_signature": False}), userinfo.json()


def test_a_refresh_scope_narrows_that_answer_alone_and_the_grant_keeps_its_scope(provider):
    """RFC 6749 §6: a refresh may ask for any part of the scope originally granted, and one that names none
    gets all of it; the answer's access token, ID token and userinfo follow that answer's scope. The grant
    has refresh tokens by its own offline_access, whatever one answer's scope."""
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    verify_address(ctx, user_uuid=device.key_file.user_uuid)
    first = _signed_in(url, credentials, device, scope=FULL_SCOPE)
    assert _person_told(url, first)[0]["email"] == device.key_file.username + "@example.com"

    narrowed = _narrowed(url, credentials, first["refresh_token"], "openid")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "openid" and narrowed.json()["refresh_token"] != first["refresh_token"]
    id_token, userinfo = _person_told(url, narrowed.json())
    assert "email" not in id_token and "preferred_username" not in userinfo and "email" not in userinfo
    assert jwt.decode(narrowed.json()["access_token"], options={"verify_signature": False})["scope"] == "openid"

    whole = _refresh(url, credentials, narrowed.json()["refresh_token"])   # no scope: the grant's, whole
    assert whole.status_code == 200, whole.text
    assert whole.json()["scope"] == FULL_SCOPE
    id_token, userinfo = _person_told(url, whole.json())
    assert id_token["email"] == userinfo["email"] == device.key_file.username + "@example.com"
    assert userinfo["preferred_username"] == device.key_file.username

    narrowed_again = _narrowed(url, credentials, whole.json()["refresh_token"], "openid email")
    assert narrowed_again.json()["scope"] == "openid email"
    asked_whole = _narrowed(url, credentials, narrowed_again.json()["refresh_token"], FULL_SCOPE)
    assert asked_whole.status_code == 200, asked_whole.text   # the full scope asked for again
    assert asked_whole.json()["scope"] == FULL_SCOPE

    # beyond the grant, narrowed before or not: invalid_scope, refused before the token it came with is spent
    latest = asked_whole.json()["refresh_token"]
    grants = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)
    stored = grants.get(session_id=device.session_id, client_id=credentials.app.client_id)
    assert stored is not None and stored.scope == FULL_SCOPE
    for beyond in ("openid address", " openid  phone ", "admin", "openid,email", "OPENID"):
        refused = _narrowed(url, credentials, latest, beyond)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope"), (beyond, refused.text)
    assert _narrowed(url, credentials, latest, "openid\temail").json()["error"] == "invalid_request"
    assert grants.get(session_id=device.session_id, client_id=credentials.app.client_id) == stored
    assert _narrowed(url, credentials, latest, " email  openid email ").json()["scope"] == "openid email"


def test_a_grant_narrowed_to_an_answer_without_offline_access_keeps_its_refresh_tokens(provider):
    url, ctx = provider
    credentials = _app(ctx)
    tokens = _signed_in(url, credentials, _device(url), scope="openid email offline_access")
    for _ in range(3):
        answer = _narrowed(url, credentials, tokens["refresh_token"], "openid")
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "openid" and answer.json()["refresh_token"] != tokens["refresh_token"]
        tokens = answer.json()
    assert _refresh(url, credentials, tokens["refresh_token"]).json()["scope"] == "openid email offline_access"
    # and a grant without offline_access (a public client's) has them too, as it had
    public = _app(ctx, public=True)
    tokens = _signed_in(url, public, _device(url), scope="openid email")
    narrowed = _narrowed(url, public, tokens["refresh_token"], "openid")
    assert narrowed.status_code == 200 and "refresh_token" in narrowed.json()
    assert _refresh(url, public, narrowed.json()["refresh_token"]).json()["scope"] == "openid email"


def test_a_refresh_token_whose_carried_scope_is_one_answers_is_read_and_gets_the_grants_scope(provider):
    """A token of the release before carried the scope of the answer it came with, narrowed as it may have
    been: it still refreshes, its grant's own scope counts, and its successor carries that scope."""
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    verify_address(ctx, user_uuid=device.key_file.user_uuid)
    tokens = _signed_in(url, credentials, device, scope=FULL_SCOPE)
    person = _clear_values(ctx, tokens["refresh_token"])
    assert person[2] == FULL_SCOPE
    earlier = _clear_token(ctx, tokens["refresh_token"], [*person[:2], "openid", *person[3:6]])

    rotated = _refresh(url, credentials, earlier)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["scope"] == FULL_SCOPE
    assert _person_told(url, rotated.json())[0]["email"] == device.key_file.username + "@example.com"
    successor = refresh.presented_for_rotation(ctx, rotated.json()["refresh_token"])
    assert successor is not None and successor.unread and successor.grant.scope == FULL_SCOPE
    assert _narrowed(url, credentials, rotated.json()["refresh_token"], FULL_SCOPE).status_code == 200


def _address_changed(ctx, user_uuid: str, address: str) -> None:
    """The account's address changed to `address` and verified, as its owner's click on the link would."""
    store = accounts.email_store(ctx)
    generation = store.next_generation(user_uuid)
    assert generation is not None
    pending = accounts.new_verification(ctx, user_uuid=user_uuid, email=address, generation=generation)
    store.write_token(pending.write.item)
    [link] = pending.message.links()
    accounts.verify_email(ctx, token=link.token)


def test_a_refreshed_id_token_tells_the_person_as_the_account_is_now(provider):
    """The refresh token carries the person's claims of its grant's scope, so that a refresh reads nothing;
    the rotation's write checks that the account still gives them. An address verified, then changed, and a
    locale chosen since the last token are told as they are now, by the answer and by its successor's; the
    token just rotated out gets them too within the grace."""
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    user_uuid, username = device.key_file.user_uuid, device.key_file.username
    tokens = _signed_in(url, credentials, device, scope=FULL_SCOPE)
    told = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert "email" not in told and told["locale"] == "en"   # not verified yet: withheld

    verify_address(ctx, user_uuid=user_uuid)
    accounts.update_profile(ctx, user_uuid=user_uuid, locale="ja")
    answer = _refresh(url, credentials, tokens["refresh_token"])
    id_token, userinfo = _person_told(url, answer.json())
    told = (id_token["email"], id_token["email_verified"], id_token["locale"])
    assert told == (f"{username}@example.com", True, "ja")
    assert {k: userinfo[k] for k in ("email", "locale")} == {k: id_token[k] for k in ("email", "locale")}
    again = _refresh(url, credentials, tokens["refresh_token"])  # a retry within the grace: the same pair
    assert again.json()["refresh_token"] == answer.json()["refresh_token"]
    assert _person_told(url, again.json())[0] == id_token

    _address_changed(ctx, user_uuid, f"new-{username}@example.com")
    for _ in range(2):   # the answer after the change, and its successor's (which carries the new address)
        answer = _refresh(url, credentials, answer.json()["refresh_token"])
        id_token, userinfo = _person_told(url, answer.json())
        assert id_token["email"] == userinfo["email"] == f"new-{username}@example.com"
        assert id_token["preferred_username"] == username and id_token["locale"] == "ja"


@pytest.mark.parametrize("form", ["person", "grant scope"])
def test_a_clear_refresh_token_of_the_release_before_sealing_still_rotates(provider, form):
    """A rolling deploy: a token whose `carried` part is clear base64 JSON, with the person's claims
    (PERSON_FORM) or without (GRANT_SCOPE_FORM), rotates as it did, tells the person as the account is,
    and its successor is sealed."""
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    verify_address(ctx, user_uuid=device.key_file.user_uuid)
    tokens = _signed_in(url, credentials, device, scope=FULL_SCOPE)
    grant = _clear_values(ctx, tokens["refresh_token"])[:6]
    address = device.key_file.username + "@example.com"
    values = ([*grant, refresh.PERSON_FORM, [device.key_file.username, "en", address]] if form == "person"
              else [*grant, refresh.GRANT_SCOPE_FORM])
    rotated = _refresh(url, credentials, _clear_token(ctx, tokens["refresh_token"], values))
    assert rotated.status_code == 200, rotated.text
    told = _person_told(url, rotated.json())[0]
    assert (told["preferred_username"], told["email"]) == (device.key_file.username, address)
    successor = rotated.json()["refresh_token"]
    assert successor.split(".")[5] == refresh.SEALED_MARK
    assert _refresh(url, credentials, successor).status_code == 200
