"""The notes example (examples/notes/README.md): an app with its own API server and its own page,
whose users log in through citylogin with the web SDK, or sign in with citylogin by OpenID Connect.
With the SDK the API is protected by the citylogin guard, by a proxy's forward authentication or by
pushed security events; with OpenID Connect by the server's own sign-in: as NOTES_PROTECTION says.

    NOTES_CITYLOGIN_URL=http://localhost:5000 NOTES_CLIENT_ID=... NOTES_CLIENT_SECRET=... \\
        .venv/bin/python examples/notes/notes_app.py [--port 8080] [--host 127.0.0.1]

The secret comes from the environment (NOTES_CLIENT_SECRET) or a file (NOTES_CLIENT_SECRET_FILE), never
the command line, which every user of the machine can read.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import run_simple

from forward_auth import ForwardAuth
from notes_store import NoteStore
from push_receiver import PushReceiver

HERE = Path(__file__).resolve().parent
PROTECTIONS = ("guard", "forward-auth", "push", "oidc")
MAX_NOTE_LENGTH = 2000


class Protection(Protocol):
    """What the API needs of a protection: citylogin_guard.Guard has exactly these."""

    def init_app(self, app: Flask) -> None: ...

    def required(self, view: Callable[..., Any]) -> Callable[..., Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Settings:
    citylogin_url: str              # where the browser loads the SDK and the app reaches citylogin
    protection: str = "guard"
    client_id: str = ""             # `citylogin apps add notes --json` gives both
    client_secret: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    call_timeout: float = 0.5       # the guard's wait for citylogin on a request's path, in seconds

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """NOTES_CITYLOGIN_URL, NOTES_PROTECTION, NOTES_CLIENT_ID, NOTES_CLIENT_SECRET (or NOTES_CLIENT_SECRET_FILE,
        a file holding it), NOTES_HOST, NOTES_PORT, NOTES_CALL_TIMEOUT."""
        secret = environ.get("NOTES_CLIENT_SECRET", "")
        if not secret and environ.get("NOTES_CLIENT_SECRET_FILE"):
            try:
                secret = Path(environ["NOTES_CLIENT_SECRET_FILE"]).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ValueError(f"NOTES_CLIENT_SECRET_FILE cannot be read: {error}") from None
        settings = cls(citylogin_url=environ.get("NOTES_CITYLOGIN_URL", "").rstrip("/"),
                       protection=environ.get("NOTES_PROTECTION", "guard"),
                       client_id=environ.get("NOTES_CLIENT_ID", ""),
                       client_secret=secret,
                       host=environ.get("NOTES_HOST", "127.0.0.1"), port=int(environ.get("NOTES_PORT", "8080")),
                       call_timeout=float(environ.get("NOTES_CALL_TIMEOUT", "0.5")))
        if not settings.citylogin_url.startswith(("http://", "https://")):
            raise ValueError("set NOTES_CITYLOGIN_URL to citylogin's address, e.g. http://localhost:5000")
        if settings.protection not in PROTECTIONS:
            raise ValueError(f"NOTES_PROTECTION must be one of {', '.join(PROTECTIONS)}")
        if settings.protection == "guard" and not (settings.client_id and settings.client_secret):
            raise ValueError("the guard needs NOTES_CLIENT_ID and NOTES_CLIENT_SECRET (citylogin apps add notes)")
        if settings.protection == "oidc" and not (settings.client_id and settings.client_secret):
            raise ValueError("OpenID Connect needs NOTES_CLIENT_ID and NOTES_CLIENT_SECRET "
                             "(citylogin apps add notes --redirect-uri http://127.0.0.1:8080/signin/callback)")
        if settings.protection == "push" and not settings.client_id:
            raise ValueError("the push receiver needs NOTES_CLIENT_ID (citylogin apps add notes --push-url URL)")
        return settings


def make_protection(settings: Settings) -> Protection:
    if settings.protection == "guard":
        from citylogin_guard import Guard   # pip install ./guard (scripts/setup.sh installs it into .venv)
        return Guard(settings.citylogin_url, settings.client_id, settings.client_secret,
                     call_timeout=settings.call_timeout)
    if settings.protection == "push":
        return PushReceiver(settings.citylogin_url, settings.client_id)
    if settings.protection == "oidc":
        from oidc_sign_in import OidcSignIn   # Authlib's Flask client (pip install authlib)
        return OidcSignIn(settings.citylogin_url, settings.client_id, settings.client_secret)
    return ForwardAuth()


def create_app(settings: Settings, protection: Protection | None = None) -> Flask:
    app = Flask("notes", root_path=str(HERE))
    protection = protection or make_protection(settings)
    protection.init_app(app)
    app.extensions["notes_protection"] = protection
    store = NoteStore()

    @app.get("/")
    def page() -> str:
        return render_template("index.html", citylogin_url=settings.citylogin_url, protection=settings.protection)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/api/notes")
    @protection.required
    def list_notes() -> Response:
        notes = store.notes_of(g.citylogin.user_uuid)
        return jsonify(user_uuid=g.citylogin.user_uuid, notes=[note.as_json() for note in notes])

    @app.post("/api/notes")
    @protection.required
    def add_note() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE_LENGTH:
            return problem(400, "invalid_note", f"Send {{\"text\": ...}}, 1 to {MAX_NOTE_LENGTH} characters.")
        return jsonify(store.add(g.citylogin.user_uuid, text.strip()).as_json()), 201

    @app.delete("/api/notes/<note_id>")
    @protection.required
    def delete_note(note_id: str) -> Response | tuple[Response, int]:
        if not store.delete(g.citylogin.user_uuid, note_id):
            return problem(404, "note_not_found", "You have no note with that id.")
        return Response(status=204)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        return problem(status, (error.name or "error").lower().replace(" ", "_"), error.description or "")

    return app


def problem(status: int, code: str, detail: str) -> tuple[Response, int]:
    response = jsonify(type="about:blank", status=status, code=code, detail=detail)
    response.mimetype = "application/problem+json"
    return response, status


def main() -> None:
    parser = argparse.ArgumentParser(description="The notes example app (examples/notes/README.md).")
    parser.add_argument("--port", type=int, help="the port to listen on (else NOTES_PORT, else 8080)")
    parser.add_argument("--host", help="the address to listen on (else NOTES_HOST, else 127.0.0.1)")
    arguments = parser.parse_args()
    environ = {**os.environ, **({"NOTES_PORT": str(arguments.port)} if arguments.port else {}),
               **({"NOTES_HOST": arguments.host} if arguments.host else {})}
    try:
        settings = Settings.from_environ(environ)
    except ValueError as error:
        sys.exit(f"notes: {error}")
    app = create_app(settings)
    print(f"notes: {settings.protection} protection, serving http://{settings.host}:{settings.port}/", flush=True)
    try:
        run_simple(settings.host, settings.port, app, threaded=True)
    finally:
        app.extensions["notes_protection"].close()


if __name__ == "__main__":
    main()
