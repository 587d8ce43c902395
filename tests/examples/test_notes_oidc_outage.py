"""examples/notes with NOTES_PROTECTION=oidc while citylogin cannot be reached: an expired access token's
refresh gets no answer, so the API says 503 (session_unverifiable, Retry-After) and keeps the sign-in for
the next try; only a refresh citylogin refuses (invalid_grant, tests/browser/test_oidc_sign_in.py) ends it."""
from __future__ import annotations

from pathlib import Path

from tests.support.ports import free_port

NOTES = Path(__file__).resolve().parents[2] / "examples" / "notes"


def test_a_refresh_citylogin_cannot_answer_is_a_503_and_the_sign_in_is_kept(monkeypatch):
    monkeypatch.syspath_prepend(str(NOTES))
    import notes_app

    nothing_listens = f"http://127.0.0.1:{free_port()}"
    app = notes_app.create_app(notes_app.Settings(citylogin_url=nothing_listens, protection="oidc",
                                                  client_id="app_notes", client_secret="secret"))
    sign_ins = app.extensions["notes_protection"]._signed_in
    sign_ins["handle"] = {"token": {"access_token": "at", "refresh_token": "rt", "expires_at": 0},   # expired
                          "claims": {"sub": "user-1", "sid": "session-1", "preferred_username": "ada"}}
    browser = app.test_client()
    with browser.session_transaction() as cookie:
        cookie["signed_in"] = "handle"
    for _ in range(2):
        answer = browser.get("/api/notes")
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.headers["Retry-After"] == "5" and "WWW-Authenticate" not in answer.headers
        assert answer.get_json()["code"] == "session_unverifiable" and answer.get_json()["retry_after"] == 5
        assert "handle" in sign_ins                         # not signed out: the next request tries again
