"""The pairing QR payload: base64url(JSON {"v": 1, "uuid", "token"}) (SPEC §4), and its PNG."""
from __future__ import annotations

import base64
import binascii
import io
import json
import uuid

import qrcode

from common.errors import BadRequest, ErrorCode

VERSION = 1


class InvalidQr(BadRequest):
    code, detail = ErrorCode.INVALID_QR, "The QR code is not a citylogin pairing code."


def encode_payload(*, user_uuid: str, token: str) -> str:
    raw = json.dumps({"v": VERSION, "uuid": user_uuid, "token": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_payload(payload: str) -> tuple[str, str]:
    """(user_uuid, token) from a scanned payload; InvalidQr with a reason otherwise."""
    text = payload.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidQr("The QR code is not base64url-encoded JSON.") from None
    if not isinstance(data, dict):
        raise InvalidQr("The QR code does not hold a JSON object.")
    if data.get("v") != VERSION:
        raise InvalidQr(f"Unsupported QR code version {data.get('v')!r}; expected {VERSION}.")
    user_uuid, token = data.get("uuid"), data.get("token")
    if not isinstance(user_uuid, str) or not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise InvalidQr("The QR code lacks its uuid or token.")
    try:
        uuid.UUID(user_uuid)
    except ValueError:
        raise InvalidQr("The QR code's uuid is not a UUID.") from None
    return user_uuid, token


def png_data_uri(payload: str) -> str:
    """The payload as a QR code PNG (error correction M), as a data: URI."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(payload)
    buffer = io.BytesIO()
    qr.make_image().save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
