"""citylogin.client: what a device runs. Its key, its key file, and calls to the HTTP API (SPEC §4, §5)."""
from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

LOGIN_PURPOSE = "citylogin-login:"  # the server verifies the signature over this prefix + challenge
RENEW_PURPOSE = "citylogin-renew:"  # ... and, to renew a certificate, over this one
KEY_MAKERS = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ml-dsa-87": mldsa.MLDSA87PrivateKey.generate,
}
KEY_KINDS = tuple(KEY_MAKERS)
DevicePrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | mldsa.MLDSA87PrivateKey


# --- keys -------------------------------------------------------------------------------------

def generate_key(kind: str = "ecdsa-p256") -> DevicePrivateKey:
    """A new device key of `kind` (one of KEY_KINDS); ValueError for any other kind."""
    if kind not in KEY_MAKERS:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
    return KEY_MAKERS[kind]()


def key_kind_of(private_key: DevicePrivateKey) -> str:
    """The KEY_KINDS name of a device key."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return "ecdsa-p256"
    return "ed25519" if isinstance(private_key, ed25519.Ed25519PrivateKey) else "ml-dsa-87"


def sign_challenge(private_key: DevicePrivateKey, challenge: str, *, purpose: str = LOGIN_PURPOSE) -> str:
    """Base64 signature over purpose + challenge: ECDSA-SHA256 (DER), Ed25519 or ML-DSA-87."""
    message = (purpose + challenge).encode()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(private_key, ed25519.Ed25519PrivateKey | mldsa.MLDSA87PrivateKey):
        signature = private_key.sign(message)
    else:
        raise TypeError(f"unsupported device key type {type(private_key).__name__}")
    return base64.b64encode(signature).decode()


def public_key_pem(private_key: DevicePrivateKey) -> str:
    """The PEM SubjectPublicKeyInfo the server takes as `public_key`."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_key_pem(private_key: DevicePrivateKey) -> str:
    """Unencrypted PKCS#8 PEM; the key file that holds it is mode 0600."""
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


# --- key file ---------------------------------------------------------------------------------

@dataclass
class KeyFile:
    """What one device keeps locally: where its account lives, its key and its certificate."""

    base_url: str
    username: str
    user_uuid: str
    device_id: str
    device_name: str
    private_key_pem: str
    client_cert_pem: str
    fingerprint: str
    ca_cert_pem: str

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON, mode 0600 from creation on (also when the file existed with another mode),
        replacing an older file in one step: a renewal rewrites the only copy of the device key."""
        temporary = f"{os.fspath(path)}.tmp"
        fd = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(asdict(self), file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> KeyFile:
        """Read a file written by `save`."""
        with open(path, encoding="utf-8") as file:
            return cls(**json.load(file))

    def private_key(self) -> DevicePrivateKey:
        """The device's private key as a cryptography key object."""
        return serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)

    def client_cert_b64(self) -> str:
        """The certificate as the API carries it: base64 of the PEM."""
        return base64.b64encode(self.client_cert_pem.encode()).decode()


# --- errors -----------------------------------------------------------------------------------

class CityloginError(Exception):
    """A problem+json error from the server: `.status`, `.code`, `.detail`, and the whole `.body`."""

    def __init__(self, body: dict[str, Any], *, status: int | None = None) -> None:
        self.body = body
        self.status = status if status is not None else body.get("status")
        self.code = body.get("code")
        self.detail = body.get("detail", "")
        super().__init__(f"{self.status} {self.code}: {self.detail}")

    @classmethod
    def from_response(cls, response: requests.Response) -> CityloginError:
        """The error a failed response stands for; a ConcurrentLoginRequired for 409 concurrent_login."""
        body = _problem_body(response)
        error_class = ConcurrentLoginRequired if body.get("code") == "concurrent_login" else cls
        return error_class(body, status=response.status_code)


class ConcurrentLoginRequired(CityloginError):
    """409 concurrent_login (SPEC §5): confirm with `.confirm_token` to log `.active_devices` out."""

    def __init__(self, body: dict[str, Any], *, status: int | None = None) -> None:
        super().__init__(body, status=status)
        self.confirm_token: str | None = body.get("confirm_token")
        self.active_devices: list[dict[str, Any]] = body.get("active_devices", [])


def _problem_body(response: requests.Response) -> dict[str, Any]:
    # A proxy or a crash may answer with something other than problem+json; keep the client's shape.
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"status": response.status_code, "code": "http_error", "detail": response.text[:500]}
    return body


def _json_or_raise(response: requests.Response) -> dict[str, Any]:
    """The JSON body of a successful response ({} when empty); CityloginError for status >= 400."""
    if response.status_code >= 400:
        raise CityloginError.from_response(response)
    return response.json() if response.content else {}


# --- client -----------------------------------------------------------------------------------

class Client:
    """One device talking to one citylogin server; tokens are kept in memory only."""

    def __init__(self, base_url: str | None = None, *, key_file: KeyFile | None = None,
                 session: requests.Session | None = None, timeout: float = 30,
                 on_renew: Callable[[KeyFile], None] | None = None, auto_renew: bool = True) -> None:
        """`on_renew(key_file)` runs right after this device's certificate was renewed (save the file
        then: the old certificate no longer logs in); `auto_renew` renews when a login says it is due."""
        base_url = base_url or (key_file.base_url if key_file else None)
        if not base_url:
            raise ValueError("base_url is required when no key_file is given")
        self.base_url = base_url.rstrip("/")
        self.key_file = key_file
        self.http = session or requests.Session()
        self.timeout = timeout
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.session_id: str | None = None
        self.on_renew, self.auto_renew = on_renew, auto_renew
        # The recovery codes the last registration (or replacement) showed: keep them somewhere safe.
        self.recovery_codes: list[str] | None = None

    # registration and pairing

    def register(self, *, username: str, email: str, password: str, device_name: str | None = None,
                 key_kind: str = "ecdsa-p256") -> KeyFile:
        """Create an account whose first device is this one; returns (and keeps) its KeyFile."""
        return self._enroll("/registration/", {"username": username, "email": email, "password": password},
                            username=username, device_name=device_name, key_kind=key_kind)

    def recover(self, recovery_code: str, *, username: str, password: str, device_name: str | None = None,
                unbind_other_devices: bool = False, key_kind: str = "ecdsa-p256") -> KeyFile:
        """Make this a device of an account whose devices are lost, with one of its recovery codes;
        returns (and keeps) its KeyFile. unbind_other_devices removes every other device."""
        return self._enroll("/device/recover", {"username": username, "password": password,
                                                "recovery_code": recovery_code,
                                                "unbind_other_devices": unbind_other_devices},
                            username=username, device_name=device_name, key_kind=key_kind)

    def replace_recovery_codes(self, password: str) -> list[str]:
        """Ten new recovery codes (Bearer; the old ones stop working); returns and keeps them."""
        body = self._call("POST", "/account/recovery_codes", {"password": password})
        self.recovery_codes = body["recovery_codes"]
        return self.recovery_codes

    def request_pairing(self) -> dict[str, Any]:
        """Ask for a pairing token (Bearer): the 201 body with `qr_code`, `qr_png`, `expires_at`."""
        return _json_or_raise(self.request("POST", "/registration/request_pairing_token", json={}))

    def pair(self, qr_payload: str, *, username: str, password: str, device_name: str | None = None,
             key_kind: str = "ecdsa-p256") -> KeyFile:
        """Register this new device with a QR payload from a paired device; returns (and keeps) its KeyFile."""
        return self._enroll("/device/register", {"qr_code": qr_payload, "username": username, "password": password},
                            username=username, device_name=device_name, key_kind=key_kind)

    def _enroll(self, path: str, body: dict[str, Any], *, username: str, device_name: str | None,
                key_kind: str) -> KeyFile:
        private_key = generate_key(key_kind)
        body = {**body, "public_key": public_key_pem(private_key)}
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

    def login(self, password: str, *, force: bool = False, device_name: str | None = None) -> dict[str, Any]:
        """Challenge, sign, log in; keeps the tokens. Raises ConcurrentLoginRequired or CityloginError."""
        key_file = self._require_key_file()
        challenge = self._post("/login/challenge", {})["challenge"]
        body = {"username": key_file.username, "password": password, "client_cert": key_file.client_cert_b64(),
                "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge),
                "force": force}
        if device_name:
            body["device_name"] = device_name
        return self._renew_if_due(self._keep_tokens(self._post("/login/", body)))

    def confirm(self, confirm_token: str) -> dict[str, Any]:
        """Confirm a login refused with 409 concurrent_login, evicting the other device; keeps the tokens."""
        return self._renew_if_due(self._keep_tokens(self._post("/login/confirm", {"confirm_token": confirm_token})))

    def renew(self, *, new_key: bool = True) -> KeyFile:
        """A new certificate for this device (logged in), by default for a new key pair of the same kind
        (new_key=False certifies the same key again); the key file is updated in place and handed to
        `on_renew`. The old certificate stops working at once."""
        key_file = self._require_key_file()
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
        return self._keep_tokens(self._post("/session/refresh", {"refresh_token": self.refresh_token}))

    def logout(self) -> None:
        """End this session (204) and forget the tokens."""
        response = self.request("POST", "/session/logout")
        if response.status_code != 204:
            raise CityloginError.from_response(response)
        self.access_token = self.refresh_token = self.session_id = None

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
        self.access_token = self.refresh_token = self.session_id = None

    # authenticated calls

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated call, never raising for its status. On 401 token_expired it refreshes once
        and retries; if that refresh fails, the refresh's own error response is returned."""
        response = self._send_authenticated(method, path, **kwargs)
        if response.status_code == 401 and _problem_body(response).get("code") == "token_expired" \
                and self.refresh_token:
            refreshed = self._send("POST", "/session/refresh", json={"refresh_token": self.refresh_token})
            if refreshed.status_code >= 400:
                return refreshed
            self._keep_tokens(refreshed.json())
            response = self._send_authenticated(method, path, **kwargs)
        return response

    def get_json(self, path: str) -> dict[str, Any]:
        """GET `path` authenticated; the JSON body, or CityloginError for status >= 400."""
        return _json_or_raise(self.request("GET", path))

    # plumbing

    def _send_authenticated(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        return self._send(method, path, headers=headers, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.http.request(method, self.base_url + path, **kwargs)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _json_or_raise(self._send("POST", path, json=body))

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _json_or_raise(self.request(method, path, json=body))

    def _keep_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        self.access_token = body["access_token"]
        self.refresh_token = body["refresh_token"]
        self.session_id = body.get("session_id", self.session_id)  # a refresh keeps the session
        return body

    def _require_key_file(self) -> KeyFile:
        if self.key_file is None:
            raise RuntimeError("this client has no key file: register, pair or pass key_file=")
        return self.key_file
