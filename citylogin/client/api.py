"""citylogin.client.api: what a device runs. Calls to the HTTP API (SPEC §4, §5); its key and key file
are in citylogin.client.keys, re-exported here."""
from __future__ import annotations

import base64
import platform
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import requests

from citylogin.client.errors import (ActiveDevice, CityloginError, ConcurrentLoginRequired, json_or_raise,
                                     problem_body)
from citylogin.client.keys import (KEY_KINDS, KEY_MAKERS, LOGIN_PURPOSE, RENEW_PURPOSE, DevicePrivateKey, KeyFile,
                                   dpop_proof, generate_key, key_kind_of, private_key_pem, public_key_pem,
                                   sign_challenge)

__all__ = ["KEY_KINDS", "KEY_MAKERS", "LOGIN_PURPOSE", "RENEW_PURPOSE", "ActiveDevice", "CityloginError", "Client",
           "ConcurrentLoginRequired", "DevicePrivateKey", "KeyFile", "generate_key", "key_kind_of",
           "private_key_pem", "public_key_pem", "sign_challenge"]


# --- client -----------------------------------------------------------------------------------


def guess_device_class() -> str:
    """What this program runs on (SPEC §5 device classes): a phone's Python says so, else a computer."""
    if sys.platform in ("android", "ios") or hasattr(sys, "getandroidapilevel"):
        return "mobile"
    return "desktop"

def user_agent(product: str = "citylogin-python") -> str:
    """What this client says it is, e.g. `citylogin-cli/0.1.0 (Linux x86_64) python-requests/2.34.2`: the
    product first, so that the device's sessions and history name it (the web UI's describeAgent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("citylogin")
    except PackageNotFoundError:  # run from a checkout that was not installed
        release = "0"
    system = {"Darwin": "Mac OS X", "Windows": "Windows NT"}.get(platform.system(), platform.system())
    where = " ".join(filter(None, (system, platform.machine()))) or "unknown"
    return f"{product}/{release} ({where}) python-requests/{requests.__version__}"


class Client:
    """One device talking to one citylogin server; tokens are kept in memory (`on_tokens` may store them)."""

    def __init__(self, base_url: str | None = None, *, key_file: KeyFile | None = None,
                 session: requests.Session | None = None, timeout: float = 30,
                 on_renew: Callable[[KeyFile], None] | None = None, auto_renew: bool = True,
                 on_tokens: Callable[[Client], None] | None = None, agent: str | None = None) -> None:
        """`on_renew(key_file)` runs right after this device's certificate was renewed (save the file
        then: the old certificate no longer logs in); `auto_renew` renews when a login says it is due;
        `on_tokens(client)` runs whenever the tokens change (a login, a refresh, a logout): refresh
        tokens rotate, so whoever stores them must store each new pair. `agent` is the User-Agent of
        the session made here when none is given (default `user_agent()`)."""
        base_url = base_url or (key_file.base_url if key_file else None)
        if not base_url:
            raise ValueError("base_url is required when no key_file is given")
        self.base_url = base_url.rstrip("/")
        self.key_file = key_file
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = agent or user_agent()
        self.http = session
        self.timeout = timeout
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.session_id: str | None = None
        self.access_expires_at: datetime | None = None
        self.token_type = "Bearer"  # "DPoP" once a login bound the session to this device's key (SPEC §12)
        self.dpop_nonce: str | None = None  # the server's last DPoP-Nonce
        self.dpop_nonces: dict[str, str] = {}  # origin -> the last DPoP-Nonce of another server (an app's API)
        self.on_renew, self.auto_renew, self.on_tokens = on_renew, auto_renew, on_tokens
        # The recovery codes the last registration (or replacement) showed: keep them somewhere safe.
        self.recovery_codes: list[str] | None = None

    # registration and pairing

    def register(self, *, username: str, email: str, password: str, device_name: str | None = None,
                 key_kind: str = "ecdsa-p256", device_class: str | None = None) -> KeyFile:
        """Create an account whose first device is this one; returns (and keeps) its KeyFile."""
        return self._enroll("/registration/", {"username": username, "email": email, "password": password},
                            username=username, device_name=device_name, key_kind=key_kind, device_class=device_class)

    def recover(self, recovery_code: str, *, username: str, password: str, device_name: str | None = None,
                unbind_other_devices: bool = False, key_kind: str = "ecdsa-p256",
                device_class: str | None = None) -> KeyFile:
        """Make this a device of an account whose devices are lost, with one of its recovery codes;
        returns (and keeps) its KeyFile. unbind_other_devices removes every other device."""
        return self._enroll("/device/recover", {"username": username, "password": password,
                                                "recovery_code": recovery_code,
                                                "unbind_other_devices": unbind_other_devices},
                            username=username, device_name=device_name, key_kind=key_kind, device_class=device_class)

    def enrol_code(self, username: str) -> dict[str, Any]:
        """Ask for a code mailed for the first device of an account that has none (an imported one): the 202
        body, the same whether or not the account exists."""
        return self._post("/device/enrol/code", {"username": username})

    def enrol(self, email_code: str, *, username: str, password: str, device_name: str | None = None,
              key_kind: str = "ecdsa-p256", device_class: str | None = None) -> KeyFile:
        """Make this the first device of an account that has none, with its password and the code mailed by
        enrol_code; returns (and keeps) its KeyFile."""
        return self._enroll("/device/enrol", {"username": username, "password": password, "email_code": email_code},
                            username=username, device_name=device_name, key_kind=key_kind, device_class=device_class)

    def replace_recovery_codes(self, password: str) -> list[str]:
        """Ten new recovery codes (Bearer; the old ones stop working); returns and keeps them."""
        body = self._call("POST", "/account/recovery_codes", {"password": password})
        self.recovery_codes = body["recovery_codes"]
        return self.recovery_codes

    def request_pairing(self) -> dict[str, Any]:
        """Ask for a pairing token (Bearer): the 201 body with `qr_code`, `qr_png`, `expires_at`."""
        return json_or_raise(self.request("POST", "/registration/request_pairing_token", json={}))

    def pair(self, qr_payload: str, *, username: str, password: str, device_name: str | None = None,
             key_kind: str = "ecdsa-p256", device_class: str | None = None) -> KeyFile:
        """Register this new device with a QR payload from a paired device; returns (and keeps) its KeyFile."""
        return self._enroll("/device/register", {"qr_code": qr_payload, "username": username, "password": password},
                            username=username, device_name=device_name, key_kind=key_kind, device_class=device_class)

    def _enroll(self, path: str, body: dict[str, Any], *, username: str, device_name: str | None,
                key_kind: str, device_class: str | None) -> KeyFile:
        private_key = generate_key(key_kind)
        body = {**body, "public_key": public_key_pem(private_key), "device_class": device_class or guess_device_class()}
        if device_name:
            body["device_name"] = device_name
        issued = self._post(path, body)
        if "recovery_codes" in issued:
            self.recovery_codes = issued["recovery_codes"]
        self.key_file = KeyFile(
            base_url=self.base_url, username=username, user_uuid=issued["uuid"], device_id=issued["device_id"],
            device_name=issued["device_name"], private_key_pem=private_key_pem(private_key),
            client_cert_pem=base64.b64decode(issued["client_cert"]).decode(),
            fingerprint=issued["fingerprint"], ca_cert_pem=issued["ca_cert"])
        return self.key_file

    # login and session

    def login(self, password: str | None = None, *, passkey: dict[str, Any] | None = None, force: bool = False,
              device_name: str | None = None, displace: Iterable[str] | None = None) -> dict[str, Any]:
        """Challenge, sign, log in; keeps the tokens. Raises ConcurrentLoginRequired or CityloginError.
        `passkey`: in place of the password, an assertion (its toJSON() form) that a platform
        authenticator made for the options of `passkey_options()`. At the device limit, `force` signs
        the default devices out; `displace` (session ids from a ConcurrentLoginRequired's `.devices`)
        signs out those instead, and is itself the person's yes."""
        key_file = self.require_key_file()
        challenge = self._post("/login/challenge", {})["challenge"]
        secret = {"password": password} if passkey is None else {"passkey": passkey}
        chosen = _displacing(displace)
        body = {"username": key_file.username, **secret, "client_cert": key_file.client_cert_b64(),
                "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge),
                "force": force or bool(chosen), **chosen}
        if device_name:
            body["device_name"] = device_name
        return self._renew_if_due(self._keep_tokens(self._post("/login/", body, bind=True)))

    def passkey_options(self, *, username: str | None = None) -> dict[str, Any]:
        """WebAuthn request options (JSON) for a passkey assertion: for `username`'s passkeys, or
        without one for a discoverable passkey; for login() or a re-authentication."""
        return self._post("/login/passkey/options", {"username": username} if username else {})

    def confirm(self, confirm_token: str, *, displace: Iterable[str] | None = None) -> dict[str, Any]:
        """Confirm a login refused with 409 concurrent_login; keeps the tokens. The default devices are
        signed out, or with `displace` the sessions the person chose (session ids of the 409's
        `.devices`). A chosen session that ended meanwhile: a fresh ConcurrentLoginRequired with the
        new list and token; a choice that is not enough or not listed: CityloginError 400
        invalid_field (the token stays usable)."""
        body = {"confirm_token": confirm_token, **_displacing(displace)}
        return self._renew_if_due(self._keep_tokens(self._post("/login/confirm", body, bind=True)))

    def approve_screen(self, user_code: str, *, device_name: str, force: bool = False,
                       displace: Iterable[str] | None = None) -> dict[str, Any]:
        """Sign a screen in (a TV's RFC 8628 user code) with this device's session; the screen becomes a
        device of the account named `device_name`. At the device limit it raises ConcurrentLoginRequired
        (its `.devices` may list this device itself, `current`): ask the person, then call again with
        `force=True` (the default ones go) or `displace=[session_id, ...]` (the ones chosen)."""
        chosen = _displacing(displace)
        return self._call("POST", "/oidc/device/approve", {"user_code": user_code, "device_name": device_name,
                                                           "force": force or bool(chosen), **chosen})

    def renew(self, *, new_key: bool = True) -> KeyFile:
        """A new certificate for this device (logged in), by default for a new key pair of the same kind
        (new_key=False certifies the same key again); the key file is updated in place and handed to
        `on_renew`. The old certificate stops working at once."""
        key_file = self.require_key_file()
        current = key_file.private_key()
        next_key = generate_key(key_kind_of(current)) if new_key else current
        challenge = self._post("/login/challenge", {})["challenge"]
        body = {"challenge": challenge, "signature": sign_challenge(current, challenge, purpose=RENEW_PURPOSE)}
        if new_key:
            body["public_key"] = public_key_pem(next_key)
        renewed = self._call("POST", "/device/renew", body)
        key_file.private_key_pem = private_key_pem(next_key)
        key_file.client_cert_pem = base64.b64decode(renewed["client_cert"]).decode()
        key_file.fingerprint, key_file.ca_cert_pem = renewed["fingerprint"], renewed["ca_cert"]
        if self.on_renew:
            self.on_renew(key_file)
        if new_key and self.token_type == "DPoP":  # the session moved to the new key: tokens naming it
            self.refresh()
        return key_file

    def _renew_if_due(self, login: dict[str, Any]) -> dict[str, Any]:
        if self.auto_renew and login.get("renew_certificate"):
            self.renew()
            login = {**login, "renewed": True}
        return login

    def refresh(self) -> dict[str, Any]:
        """Trade the refresh token for a new pair (they rotate); keeps the new pair."""
        if not self.refresh_token:
            raise RuntimeError("not logged in: no refresh token")
        return self._keep_tokens(self._post("/session/refresh", {"refresh_token": self.refresh_token},
                                            bind=self.token_type == "DPoP"))

    def refresh_if_due(self, *, margin: float = 60) -> None:
        """Refresh now if the access token expires within `margin` seconds (or its end is unknown)."""
        due = self.access_expires_at is None or \
            datetime.now(timezone.utc) >= self.access_expires_at - timedelta(seconds=margin)
        if due and self.refresh_token:
            self.refresh()

    def logout(self) -> None:
        """End this session (204) and forget the tokens."""
        response = self.request("POST", "/session/logout")
        if response.status_code != 204:
            raise CityloginError.from_response(response)
        self.forget_tokens()

    def tokens(self) -> dict[str, Any] | None:
        """The session to store (None when logged out): session_id, the tokens, access_expires_at."""
        if self.access_token is None:
            return None
        expires = self.access_expires_at.isoformat().replace("+00:00", "Z") if self.access_expires_at else None
        return {"session_id": self.session_id, "access_token": self.access_token,
                "refresh_token": self.refresh_token, "access_expires_at": expires, "token_type": self.token_type}

    def use_tokens(self, stored: dict[str, Any]) -> None:
        """Continue a session stored from `tokens()`."""
        self.access_token, self.refresh_token = stored["access_token"], stored["refresh_token"]
        self.session_id = stored.get("session_id")
        self.token_type = stored.get("token_type", "Bearer")
        expires = stored.get("access_expires_at")
        self.access_expires_at = datetime.fromisoformat(expires) if expires else None

    def forget_tokens(self) -> None:
        """Drop the tokens (the session ended, here or elsewhere)."""
        self.access_token = self.refresh_token = self.session_id = self.access_expires_at = None
        self.token_type = "Bearer"
        if self.on_tokens:
            self.on_tokens(self)

    # devices, sessions and history (SPEC §4 /device, §5 /session)

    def me(self) -> dict[str, Any]:
        """GET /session/me: the calling session and its user_uuid."""
        return self.get_json("/session/me")

    def list_devices(self) -> list[dict[str, Any]]:
        """The account's devices, primary first."""
        return self.get_json("/device/list")["devices"]

    def rename_device(self, device_id: str, device_name: str) -> dict[str, Any]:
        return self._call("PATCH", f"/device/{device_id}", {"device_name": device_name})

    def force_logout_device(self, device_id: str) -> dict[str, Any]:
        """End a device's session (it may log in again): `{"device_id", "logged_out"}`."""
        return self._call("POST", "/device/force_logout", {"device_id": device_id})

    def unbind_device(self, device_id: str, *, confirm_last: bool = False) -> dict[str, Any]:
        """Revoke a device for good; confirm_last to unbind the account's last active device."""
        return self._call("POST", "/device/unbind", {"device_id": device_id, "confirm_last": confirm_last})

    def list_sessions(self, *, include_ended: bool = False) -> list[dict[str, Any]]:
        """The account's live sessions, newest first (with include_ended, the ended ones of about
        the last week too), every page of them."""
        sessions: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100, "include_ended": str(include_ended).lower()}
        while True:
            page = json_or_raise(self.request("GET", "/session/list", params=params))
            sessions += page["sessions"]
            if not page.get("next_cursor"):
                return sessions
            params["cursor"] = page["next_cursor"]

    def revoke_session(self, session_id: str) -> None:
        json_or_raise(self.request("DELETE", f"/session/{session_id}"))
        if session_id == self.session_id:
            self.forget_tokens()

    def logout_all(self, *, include_current: bool = True) -> None:
        """End every session of the account, this one too unless include_current is False."""
        self._call("POST", "/session/logout_all", {"include_current": include_current})
        if include_current:
            self.forget_tokens()

    def history(self, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """One page of login attempts, newest first: `{"items", "next_cursor"}`."""
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return json_or_raise(self.request("GET", "/session/history", params=params))

    # account (SPEC §4 /account); the calls without a session need no key file

    def account(self) -> dict[str, Any]:
        """GET /account: username, email, email_verified, locale, recovery_codes_left, ..."""
        return self.get_json("/account")

    def set_locale(self, locale: str) -> dict[str, Any]:
        """The language of the messages sent to this account (`en` or `ja`); returns the account."""
        return self._call("PATCH", "/account", {"locale": locale})

    def verify_email(self, token: str) -> dict[str, Any]:
        """Use the token of a /#verify= link (no session needed)."""
        return self._post("/account/verify_email", {"token": token})

    def resend_verification(self) -> dict[str, Any]:
        """Send the verification link of the account's address again (202 `message`)."""
        return self._call("POST", "/account/verify_email/resend", {})

    def change_email(self, *, password: str, new_email: str) -> dict[str, Any]:
        """Start a change of address: it takes effect when the link sent to `new_email` is used."""
        return self._call("POST", "/account/email", {"password": password, "new_email": new_email})

    def change_password(self, *, current_password: str, new_password: str,
                        logout_other_sessions: bool = True) -> None:
        """Change the password; the account's other sessions end unless logout_other_sessions is False."""
        self._call("POST", "/account/password", {"current_password": current_password, "new_password": new_password,
                                                 "logout_other_sessions": logout_other_sessions})

    def request_password_reset(self, email: str) -> dict[str, Any]:
        """E-mail a reset link if an account has `email`; the 202 `message` is the same either way."""
        return self._post("/account/password_reset", {"email": email})

    def confirm_password_reset(self, *, token: str, new_password: str) -> None:
        """Set a new password with the token of a /#reset= link; every session of the account ends."""
        self._post("/account/password_reset/confirm", {"token": token, "new_password": new_password})

    def delete_account(self, password: str) -> None:
        """Delete the account and its data; every session ends, so the tokens are forgotten too."""
        self._call("DELETE", "/account", {"password": password})
        self.forget_tokens()

    # authenticated calls

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated call, never raising for its status: a path is citylogin's, a full URL may
        be an app's own API (its guard checks the token). On 401 token_expired it refreshes once and
        retries; if that refresh fails, the refresh's own error response is returned."""
        response = self._send_authenticated(method, path, **kwargs)
        if response.status_code == 401 and problem_body(response).get("code") == "token_expired" \
                and self.refresh_token:
            refreshed = self._send("POST", "/session/refresh", json={"refresh_token": self.refresh_token},
                                   bind=self.token_type == "DPoP")
            if refreshed.status_code >= 400:
                return refreshed
            self._keep_tokens(refreshed.json())
            response = self._send_authenticated(method, path, **kwargs)
        return response

    def get_json(self, path: str) -> dict[str, Any]:
        """GET `path` authenticated; the JSON body, or CityloginError for status >= 400."""
        return json_or_raise(self.request("GET", path))

    # plumbing

    def auth_headers(self, method: str, url: str) -> dict[str, str]:
        """The headers that authenticate one request to `url` (a full URL): the token, and for a bound
        session (token_type DPoP) a fresh proof for this method and URL, made with the device key."""
        if not self.access_token:
            return {}
        if self.token_type != "DPoP":
            return {"Authorization": f"Bearer {self.access_token}"}
        return {"Authorization": f"DPoP {self.access_token}",
                "DPoP": self.proof(method, url, access_token=self.access_token)}

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A DPoP proof by this device's key for one request to `url` (with `ath` for `access_token`)."""
        return dpop_proof(self.require_key_file().private_key(), method=method, url=url, access_token=access_token,
                          nonce=self.dpop_nonces.get(_origin(url), self.dpop_nonce))

    def _url(self, path: str) -> str:
        return path if path.startswith(("https://", "http://")) else self.base_url + path

    def _send_authenticated(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.update(self.auth_headers(method, self._url(path)))
        return self._send(method, path, headers=headers, **kwargs)

    def _send(self, method: str, path: str, *, bind: bool = False, **kwargs: Any) -> requests.Response:
        """One call; `bind`: with a DPoP proof by the device key (a login, confirm or bound refresh).
        A 401 use_dpop_nonce is answered once, with a proof over the nonce the server gave."""
        kwargs.setdefault("timeout", self.timeout)
        headers = dict(kwargs.pop("headers", None) or {})
        url = self._url(path)
        for _ in range(2):
            if bind:
                headers["DPoP"] = self.proof(method, url)
            elif "DPoP" in headers and "Authorization" in headers:  # a bound call: a new proof each try
                headers.update(self.auth_headers(method, url))
            response = self.http.request(method, url, headers=headers, **kwargs)
            demanded = response.status_code == 401 and problem_body(response).get("code") == "use_dpop_nonce"
            self._keep_nonce(url, response, demanded=demanded)
            if not demanded:
                break
        return response

    def _keep_nonce(self, url: str, response: requests.Response, *, demanded: bool) -> None:
        """Once a server asked for its DPoP-Nonce, its newest goes into every proof to it (RFC 9449
        §8.2, §9): citylogin's in dpop_nonce, another server's (an app's guard) under its origin."""
        nonce, origin = response.headers.get("DPoP-Nonce"), _origin(url)
        if not nonce:
            return
        if origin == _origin(self.base_url):
            if demanded or self.dpop_nonce is not None:
                self.dpop_nonce = nonce
        elif demanded or origin in self.dpop_nonces:
            self.dpop_nonces[origin] = nonce

    def _post(self, path: str, body: dict[str, Any], *, bind: bool = False) -> dict[str, Any]:
        return json_or_raise(self._send("POST", path, json=body, bind=bind))

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return json_or_raise(self.request(method, path, json=body))

    def _keep_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]
        self.token_type = body.get("token_type", "Bearer")
        self.session_id = body.get("session_id", self.session_id)  # a refresh keeps the session
        lifetime = body.get("expires_in")
        self.access_expires_at = datetime.now(timezone.utc) + timedelta(seconds=lifetime) if lifetime else None
        if self.on_tokens:
            self.on_tokens(self)
        return body

    def require_key_file(self) -> KeyFile:
        """This device's key file; RuntimeError if the client has none (not registered, paired or given one)."""
        if self.key_file is None:
            raise RuntimeError("this client has no key file: register, pair or pass key_file=")
        return self.key_file


def _displacing(displace: Iterable[str] | None) -> dict[str, Any]:
    """`{"displace": [...]}` naming the sessions to sign out, or nothing (the default ones go). With a
    login or a screen's approval, naming them is the person's yes: `force` goes with them."""
    chosen = [displace] if isinstance(displace, str) else list(displace or ())
    return {"displace": chosen} if chosen else {}


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased: whose DPoP-Nonce a proof to it carries."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
