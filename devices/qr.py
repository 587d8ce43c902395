"""The pairing QR code: the link `<public_url>/#pair=<payload>` with the payload
base64url(JSON {"v": 1, "uuid", "token"}) (SPEC §4), its PNG, and reading either back."""
from __future__ import annotations

import base64
import binascii
import io
import json
import re
import uuid

import qrcode

from common.errors import BadRequest, ErrorCode

VERSION = 1
LINK_MARK = "#pair="
# base64url without padding: safe in a URL fragment as it is (RFC 3986 §3.5), nothing to escape.
PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,400}={0,2}")   # padding is not sent, but a scanner app may add it
MAX_SCANNED = 2048      # a link with a long host is still far below this; the payload is about 150
# A fixed mask skips qrcode's trial of all eight (issue 12 item 4: about 3x faster); zxing-cpp still reads it.
MASK_PATTERN = 0


class InvalidQr(BadRequest):
    code, detail = ErrorCode.INVALID_QR, "The QR code is not a pairing code of citylogin."


def encode_payload(*, user_uuid: str, token: str) -> str:
    raw = json.dumps({"v": VERSION, "uuid": user_uuid, "token": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pairing_link(public_url: str, payload: str) -> str:
    """What the QR code holds: a phone's camera app opens the web app's pairing form with it."""
    return f"{public_url.rstrip('/')}/{LINK_MARK}{payload}"


def _scanned_payload(scanned: str) -> str:
    """The payload of a scanned text: a pairing link of any scheme and host (only its fragment counts),
    or the bare payload."""
    text = scanned.strip()
    if len(text) > MAX_SCANNED:
        raise InvalidQr("The QR code is too long for a pairing code of citylogin.")
    if "#" in text:
        _, _, fragment = text.partition("#")
        if not fragment.startswith("pair="):
            raise InvalidQr("The link is not a pairing link of citylogin (no #pair=).")
        text = fragment.removeprefix("pair=")
    if not PAYLOAD.fullmatch(text):
        raise InvalidQr("The QR code is not a base64url pairing payload.")
    return text


def decode_payload(scanned: str) -> tuple[str, str]:
    """(user_uuid, token) from a scanned link or payload; InvalidQr with a reason otherwise."""
    text = _scanned_payload(scanned).rstrip("=")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidQr("The QR code is not base64url-encoded JSON.") from None
    if not isinstance(data, dict):
        raise InvalidQr("The QR code does not hold a JSON object.")
    version = data.get("v")
    if type(version) is not int or version != VERSION:     # True == 1 in Python; JSON true is not version 1
        raise InvalidQr(f"Unsupported QR code version {version!r}; expected {VERSION}.")
    user_uuid, token = data.get("uuid"), data.get("token")
    if not isinstance(user_uuid, str) or not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise InvalidQr("The QR code lacks its uuid or token.")
    try:
        uuid.UUID(user_uuid)
    except ValueError:
        raise InvalidQr("The QR code's uuid is not a UUID.") from None
    return user_uuid, token


def png_data_uri(text: str) -> str:
    """`text` as a QR code PNG (error correction M), as a data: URI."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4,
                       mask_pattern=MASK_PATTERN)
    qr.add_data(text)
    buffer = io.BytesIO()
    qr.make_image().save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
