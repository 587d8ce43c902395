"""ASGI (Starlette, FastAPI): GuardMiddleware refuses unauthenticated requests to protected paths
and puts the principal in scope["state"]["citylogin"] (Starlette: request.state.citylogin)."""
from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import quote

from citylogin_guard.errors import Unauthorized
from citylogin_guard.guard import Principal, TokenGuard
from citylogin_guard.transport import NetworkNeeded

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PATH_SAFE = "/:@!$&'()*+,;="  # scope["path"] is decoded: encode what a URL's path cannot hold as is
# A WebSocket refused before it is accepted: 1008 policy violation (RFC 6455 §7.4.1), or 1013 try
# again later when citylogin cannot be reached to judge its token (IANA WebSocket close codes).
WEBSOCKET_POLICY_VIOLATION = 1008
WEBSOCKET_TRY_AGAIN_LATER = 1013


class GuardMiddleware:
    """`protect(path)` says which paths need a token (all, by default). Requests are checked on the
    event loop with no I/O in steady state; a check that must call citylogin (the feed stale, an
    unknown key) runs in a worker thread (asyncio.to_thread)."""

    def __init__(self, app: ASGIApp, *, guard: TokenGuard, protect: Callable[[str], bool] = lambda path: True) -> None:
        self.app = app
        self.guard = guard
        self.protect = protect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.protect(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(scope)
        except Unauthorized as refusal:
            await _refuse(scope, send, refusal)
            return
        scope.setdefault("state", {})["citylogin"] = principal
        if scope["type"] == "http" and _header(scope, b"dpop"):
            send = _with_nonce(send, self.guard.dpop_nonce().encode())
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        proof = _header(scope, b"dpop")
        # a WebSocket's scope has no method: its handshake is a GET
        check = functools.partial(self.guard.check, _header(scope, b"authorization"), dpop=proof,
                                  method=scope.get("method", "GET"), url=request_url(scope) if proof else None)
        try:
            return check(may_block=False)
        except NetworkNeeded:
            return await asyncio.to_thread(check, may_block=True)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def request_url(scope: Scope) -> str:
    """The request's URL as this app sees it, without the query: scheme, Host header (else the
    server's address) and path, like Starlette's request.url."""
    host = _header(scope, b"host")
    if not host:
        server_host, port = scope.get("server") or ("localhost", None)
        host = f"[{server_host}]" if ":" in server_host else server_host
        host = f"{host}:{port}" if port else host
    return f"{scope.get('scheme', 'http')}://{host}{quote(scope['path'], safe=_PATH_SAFE)}"


def _with_nonce(send: Send, nonce: bytes) -> Send:
    """`send` adding the newest nonce to the answer, for the client's next proof should its clock be
    off (RFC 9449 §8.2), unless the app set one."""
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(bytes(name).lower() == b"dpop-nonce" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"dpop-nonce", nonce)]}
        await send(message)
    return sending


async def _refuse(scope: Scope, send: Send, refusal: Unauthorized) -> None:
    """A WebSocket is closed before it is accepted (a close reason holds the code, no header: a
    client gets the guard's nonce from an HTTP answer); HTTP gets the problem: 401, or 503 with
    Retry-After when citylogin cannot be reached (Unavailable)."""
    if scope["type"] == "websocket":
        close_code = WEBSOCKET_TRY_AGAIN_LATER if refusal.status == 503 else WEBSOCKET_POLICY_VIOLATION
        await send({"type": "websocket.close", "code": close_code, "reason": refusal.code.value})
        return
    body = json.dumps(refusal.problem()).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in refusal.headers().items()]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
