"""A software WebAuthn platform authenticator for the passkey tests: it answers py_webauthn's options JSON
with real attestation objects (format "none") and real ES256 (P-256) assertions, in the browser's
`PublicKeyCredential.toJSON()` shape, so that the server verifies them exactly as a browser's.

The knobs the negative tests need are plain attributes: `origin` (written into clientDataJSON), `rp_id`
(when set, hashed into authenticatorData in place of the options' RP id), `user_verified` (the UV flag),
`counter_step`; `set_counter` winds a credential's counter back and `get(..., user_handle=False)`
leaves the userHandle out."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn §6.1).
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
ES256 = -7
# A software authenticator has no certified model: the all-zero AAGUID, as with attestation "none".
AAGUID = bytes(16)


def b64url(data: bytes) -> str:
    """Base64url without padding, as toJSON writes binary members."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes of an unpadded base64url member of the options."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class StoredCredential:
    """One passkey the authenticator holds: its key, the account's user handle, its RP and counter."""

    private_key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    sign_count: int = 0


class SoftAuthenticator:
    """A platform authenticator holding ES256 passkeys in memory (credential id, base64url -> credential)."""

    def __init__(self, origin: str, *, rp_id: str | None = None, backup_eligible: bool = False,
                 backed_up: bool = False, counter_step: int = 1, user_verified: bool = True) -> None:
        self.origin = origin
        self.rp_id = rp_id
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.counter_step = counter_step
        self.user_verified = user_verified
        self.credentials: dict[str, StoredCredential] = {}

    def create(self, options: dict[str, Any], *, credential_id: str | None = None) -> dict[str, Any]:
        """A new passkey for the creation options' RP and user, as an attestation credential's toJSON();
        `credential_id` makes it under an id already used (a new key replaces the one held under it)."""
        if not any(param.get("alg") == ES256 for param in options.get("pubKeyCredParams", [])):
            raise ValueError("the options do not offer ES256, the only algorithm this authenticator has")
        raw_id = from_b64url(credential_id) if credential_id else os.urandom(32)
        key = ec.generate_private_key(ec.SECP256R1())
        credential = StoredCredential(key, from_b64url(options["user"]["id"]), options["rp"]["id"])
        self.credentials[b64url(raw_id)] = credential
        auth_data = self._authenticator_data(credential, AT) + self._attested_credential_data(raw_id, key)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                    "attestationObject": b64url(attestation), "transports": ["internal"]}
        return self._credential_json(raw_id, response)

    def get(self, options: dict[str, Any], *, credential_id: str | None = None,
            user_handle: bool = True) -> dict[str, Any]:
        """An assertion to the request options, as an assertion credential's toJSON(); it advances the counter."""
        credential_id = credential_id or self._pick(options)
        credential = self.credentials[credential_id]
        credential.sign_count += self.counter_step
        auth_data = self._authenticator_data(credential, 0)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.private_key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                                ec.ECDSA(hashes.SHA256()))
        response = {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature)}
        if user_handle:
            response["userHandle"] = b64url(credential.user_handle)
        return self._credential_json(from_b64url(credential_id), response)

    def set_counter(self, credential_id: str, count: int) -> None:
        """Sets a credential's counter; its next assertion carries count + counter_step (a regression if lower)."""
        self.credentials[credential_id].sign_count = count

    def _pick(self, options: dict[str, Any]) -> str:
        """The first allowed credential held, or, for a discoverable request, the one held for the RP."""
        allowed = [entry["id"] for entry in options.get("allowCredentials") or []]
        if allowed:
            held = [credential_id for credential_id in allowed if credential_id in self.credentials]
        else:
            held = [credential_id for credential_id, credential in self.credentials.items()
                    if credential.rp_id == options["rpId"]]
        if not held:
            raise LookupError("the authenticator holds no credential these options accept")
        if not allowed and len(held) > 1:
            raise LookupError("several discoverable credentials for this RP: pass credential_id")
        return held[0]

    def _authenticator_data(self, credential: StoredCredential, extra_flags: int) -> bytes:
        """RP id hash, flags and counter (WebAuthn §6.1); the RP id is `rp_id` when set, else the credential's."""
        flags = UP | extra_flags
        flags |= (UV if self.user_verified else 0) | (BE if self.backup_eligible else 0)
        flags |= BS if self.backed_up else 0
        rp_id_hash = hashlib.sha256((self.rp_id or credential.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", credential.sign_count)

    @staticmethod
    def _attested_credential_data(raw_id: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
        """AAGUID, credential id and the public key as a COSE EC2 key (WebAuthn §6.5.1)."""
        numbers = key.public_key().public_numbers()
        cose_key = {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        return AAGUID + struct.pack(">H", len(raw_id)) + raw_id + cbor2.dumps(cose_key)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        """clientDataJSON as a browser writes it, with this authenticator's `origin`."""
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False},
                          separators=(",", ":")).encode()

    @staticmethod
    def _credential_json(raw_id: bytes, response: dict[str, Any]) -> dict[str, Any]:
        """The PublicKeyCredential.toJSON() envelope around a response."""
        return {"id": b64url(raw_id), "rawId": b64url(raw_id), "type": "public-key", "response": response,
                "clientExtensionResults": {}, "authenticatorAttachment": "platform"}
