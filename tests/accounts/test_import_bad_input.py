"""What an import file can hold that is not an account (SPEC §17): a file that is not its format is refused
whole in one line before any row; a row that breaks a rule is refused with its reason, a detail that names
the field and never the hash, and the rows around it go on; nothing raises anything else."""
from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from accounts.import_formats import read_rows
from accounts.import_lines import LINE_CAP
from accounts.import_rows import FileRefused, ImportRow, RefusalReason, RowRefusal
from tests.accounts.test_import_readers import FILES

HEADER = "username,email,email_verified,password_hash,locale\n"
BCRYPT = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def results(path: Path, fmt: str) -> list[tuple[str, str]]:
    """(where, "ok" or the refusal's reason) of every row."""
    return [(r.where, "ok" if isinstance(r, ImportRow) else r.reason.value) for r in read_rows(path, fmt)]


def refusal(path: Path, fmt: str, where: str) -> RowRefusal:
    found = [r for r in read_rows(path, fmt) if r.where == where]
    assert len(found) == 1 and isinstance(found[0], RowRefusal), found
    return found[0]


def auth0_line(**members: object) -> str:
    return json.dumps({"user_id": "auth0|abc", "email": "ann@example.com", "username": "ann", **members}) + "\n"


def realm_file(path: Path, users: list[object]) -> Path:
    return write(path, json.dumps({"id": "r", "realm": "acme", "users": users, "clients": []}))


@pytest.mark.parametrize("fmt,name", [
    ("csv", "keycloak-realm.json"), ("csv", "auth0-users.ndjson"), ("auth0", "accounts.csv"),
    ("auth0", "keycloak-realm.json"), ("keycloak", "accounts.csv"), ("keycloak", "auth0-users.ndjson"),
    ("keycloak", "keycloak-dir/acme-realm.json"),
])
def test_a_file_of_another_format_is_refused_whole_before_any_row(fmt, name):
    with pytest.raises(FileRefused) as refused:
        read_rows(FILES / name, fmt)  # at the call: the writer has nothing to undo
    assert "\n" not in str(refused.value) and "$" not in str(refused.value)


@pytest.mark.parametrize("fmt,data", [
    ("csv", ""), ("csv", "username,email,email_verified,password_hash\n"),
    ("csv", "username,email,email_verified,password_hash,locale,role\n"),
    ("csv", "email,username,email_verified,password_hash,locale\n"),
    ("csv", f"ann,ann@example.com,true,{BCRYPT},en\n"),  # no header: the hash is not quoted back
    ("csv", b"\xff\xfeu\x00s\x00e\x00r\x00"), ("auth0", ""), ("auth0", "\n\n"), ("auth0", "[1, 2]\n"),
    ("auth0", f'{{"email": "a@b.example", "passwordHash": "{BCRYPT}"}}\n'), ("auth0", b"\xff{}\n"),
    ("keycloak", ""), ("keycloak", "[]"), ("keycloak", '{"realm": "acme", "users": [{"id": "1"}'),
    ("keycloak", '{"users": []}'), ("keycloak", '{"realm": "acme"}'), ("keycloak", '{"realm": 1, "users": []}'),
    ("keycloak", b'{"realm": "acme\xff", "users": []}'), ("keycloak", '{"realm": "acme", "users": []} {}'),
    ("keycloak", f'{{"realm": "acme", "users": [{{"id": "{BCRYPT}"'),
])
def test_not_the_format(tmp_path, fmt, data):
    with pytest.raises(FileRefused) as refused:
        read_rows(write(tmp_path / "file", data), fmt)
    assert "\n" not in str(refused.value) and BCRYPT not in str(refused.value)


def test_unreadable_paths_and_unknown_formats(tmp_path):
    with pytest.raises(FileRefused):
        read_rows(tmp_path / "missing.csv", "csv")
    with pytest.raises(FileRefused):
        read_rows(tmp_path, "csv")  # a directory
    with pytest.raises(FileRefused):
        read_rows(tmp_path, "keycloak")  # a directory with no export in it
    with pytest.raises(FileRefused):
        read_rows(FILES / "accounts.csv", "ldif")


@pytest.mark.parametrize("hash_text,reason", [
    ("$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "unknown_hash_scheme"),  # md5-crypt
    ("{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unknown_hash_scheme"),
    ("5f4dcc3b5aa765d61d8327deb882cf99", "unknown_hash_scheme"),  # a bare MD5
    ("$2b$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "invalid_hash"),  # cost beyond bounds
    ("$2b$10$short", "invalid_hash"),
    ("$argon2id$v=19$m=65536,t=3,p=4$!!$!!", "invalid_hash"),
])
def test_hashes_refused_without_being_quoted(tmp_path, hash_text, reason):
    path = write(tmp_path / "a.csv", f'{HEADER}ann,ann@example.com,true,"{hash_text}",en\nbea,bea@example.com,,,\n')
    assert results(path, "csv") == [("line 2", reason), ("line 3", "ok")]
    assert hash_text not in refusal(path, "csv", "line 2").detail
    assert "password_hash" in refusal(path, "csv", "line 2").detail


@pytest.mark.parametrize("username", ["an\x00n", "ann\x1b[2J", "ann\u202e", "ann\u2028"])
def test_control_characters_in_a_username_are_refused_by_name(tmp_path, username):
    csv_file = write(tmp_path / "a.csv", f"{HEADER}{username},ann@example.com,true,,en\n")
    assert refusal(csv_file, "csv", "line 2").reason == RefusalReason.INVALID_USERNAME
    assert "control" in refusal(csv_file, "csv", "line 2").detail
    ndjson = write(tmp_path / "a.ndjson", auth0_line(username=username))
    assert refusal(ndjson, "auth0", "line 1").reason == RefusalReason.INVALID_USERNAME
    realm = realm_file(tmp_path / "realm.json", [{"id": "1", "username": username, "enabled": True}])
    assert refusal(realm, "keycloak", "users[0]").reason == RefusalReason.INVALID_USERNAME


@pytest.mark.parametrize("line,reason", [
    ("an,ann@example.com,true,,en", "invalid_username"),  # 2 characters
    ("a" * 33 + ",ann@example.com,true,,en", "invalid_username"),
    ("anna/b,ann@example.com,true,,en", "invalid_username"),
    (",ann@example.com,true,,en", "missing_field"),
    ("ann,ann.example.com,true,,en", "invalid_email"),
    ("ann,ann@exa\x00mple.com,true,,en", "invalid_email"),
    ("ann,ann@example.com,maybe,,en", "not_the_format"),
    ("ann,ann@example.com,true,,en,extra", "not_the_format"),
    ("ann,ann@example.com,true", "not_the_format"),
    ('ann,"ann@example.com,true,,en', "not_the_format"),  # a quote left open
])
def test_csv_rows_refused(tmp_path, line, reason):
    path = write(tmp_path / "a.csv", f"{HEADER}{line}\nbea,bea@example.com,false,,ja\n")
    assert results(path, "csv") == [("line 2", reason), ("line 3", "ok")]


def test_csv_accepts_an_unquoted_hash_with_commas_a_bom_crlf_and_blank_lines(tmp_path):
    argon2 = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$ZHVtbXloYXNoZHVtbXloYXNoZHVtbXloYXNoZHVtbXk"
    path = write(tmp_path / "a.csv", b"\xef\xbb\xbf" + f"{HEADER}\r\nann,ann@example.com,TRUE,{argon2},ja\r\n"
                 .replace("\n", "\r\n", 1).encode())
    rows = list(read_rows(path, "csv"))
    assert [r.where for r in rows] == ["line 3"] and isinstance(rows[0], ImportRow)
    assert rows[0].password_hash == "imported:" + argon2
    assert rows[0].email_verified and rows[0].locale == "ja"


def test_invalid_utf8_lines_are_refused_and_the_rest_read(tmp_path):
    csv_file = write(tmp_path / "a.csv",
                     HEADER.encode() + b"ann,ann@ex\xc3\x28mple.com,true,,en\nbea,bea@example.com,,,\n")
    assert results(csv_file, "csv") == [("line 2", "not_the_format"), ("line 3", "ok")]
    ndjson = write(tmp_path / "a.ndjson", auth0_line().encode() + b'{"user_id": "auth0|\xed\xa0\x80"}\n'
                   + auth0_line(user_id="auth0|b", username="bea", email="bea@example.com").encode())
    assert results(ndjson, "auth0") == [("line 1", "ok"), ("line 2", "not_the_format"), ("line 3", "ok")]


@pytest.mark.parametrize("members,reason", [
    ({"user_id": None}, "missing_field"), ({"user_id": 12}, "not_the_format"),
    ({"username": None, "email": None}, "missing_field"),
    ({"username": None, "email": "a+b@example.com"}, "invalid_username"),  # "a+b" is no username
    ({"email": ["ann@example.com"]}, "not_the_format"), ({"email_verified": "yes"}, "not_the_format"),
    ({"blocked": 1}, "not_the_format"), ({"identities": {}}, "not_the_format"),
    ({"identities": [{"provider": "github", "user_id": None, "isSocial": True}]}, "missing_field"),
    ({"username": "ann\ud800"}, "not_the_format"),  # a lone surrogate (json.dumps writes it escaped): no text
])
def test_auth0_rows_refused(tmp_path, members, reason):
    path = write(tmp_path / "a.ndjson", auth0_line() + auth0_line(**members)
                 + auth0_line(user_id="auth0|c", username="cat", email="cat@example.com"))
    assert results(path, "auth0")[1:] == [("line 2", reason), ("line 3", "ok")]


def test_auth0_password_export_rows_refused(tmp_path):
    lines = [{"_id": {"$oid": "a1"}, "email": "ann@example.com", "passwordHash": BCRYPT},
             {"_id": {"$oid": "a2"}, "email": "bea@example.com", "passwordHash": "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0"},
             {"_id": {}, "email": "cat@example.com", "passwordHash": BCRYPT},
             {"_id": {"$oid": "a4"}, "email": "dan@example.com", "passwordHash": 42}]
    path = write(tmp_path / "p.ndjson", "".join(json.dumps(line) + "\n" for line in lines))
    assert results(path, "auth0") == [("line 1", "ok"), ("line 2", "unknown_hash_scheme"),
                                      ("line 3", "missing_field"), ("line 4", "not_the_format")]


def keycloak_password(secret: object, data: object) -> dict[str, object]:
    return {"type": "password", "secretData": secret, "credentialData": data}


@pytest.mark.parametrize("credentials,reason", [
    ([keycloak_password("{", "{}")], "invalid_hash"),
    ([keycloak_password('{"value":"AAAA","salt":"AAAA"}', '{"hashIterations":1,"algorithm":"md5"}')],
     "unknown_hash_scheme"),
    ([keycloak_password('{"value":"!!","salt":"AAAA"}', '{"hashIterations":27500,"algorithm":"pbkdf2-sha256"}')],
     "invalid_hash"),
    ([{"type": "password", "value": "plain-text-password"}], "unknown_hash_scheme"),
    ([{"type": "password"}], "invalid_hash"),
    ("password", "not_the_format"), ([7], "not_the_format"),
])
def test_keycloak_credentials_refused(tmp_path, credentials, reason):
    users = [{"id": "1", "username": "ann", "enabled": True, "credentials": credentials},
             {"id": "2", "username": "bea", "enabled": True}]
    path = realm_file(tmp_path / "realm.json", users)
    assert results(path, "keycloak") == [("users[0]", reason), ("users[1]", "ok")]
    assert "plain-text-password" not in refusal(path, "keycloak", "users[0]").detail


@pytest.mark.parametrize("user,reason", [
    ("ann", "not_the_format"), ({"username": "ann"}, "missing_field"), ({"id": "1"}, "missing_field"),
    ({"id": "1", "username": "ann", "email": "no-at-sign"}, "invalid_email"),
    ({"id": "1", "username": "ann", "emailVerified": "true"}, "not_the_format"),
    ({"id": "1", "username": "ann", "federatedIdentities": [{"identityProvider": "google"}]}, "missing_field"),
    ({"id": "x" * 300, "username": "ann"}, "not_the_format"),
])
def test_keycloak_users_refused(tmp_path, user, reason):
    path = realm_file(tmp_path / "realm.json", [user, {"id": "2", "username": "bea"}])
    assert results(path, "keycloak") == [("users[0]", reason), ("users[1]", "ok")]


def test_keycloak_user_without_enabled_is_disabled_as_keycloak_imports_it(tmp_path):
    rows = list(read_rows(realm_file(tmp_path / "realm.json", [{"id": "1", "username": "ann"}]), "keycloak"))
    assert isinstance(rows[0], ImportRow) and rows[0].disabled


def test_duplicates_within_the_file(tmp_path):
    path = write(tmp_path / "a.csv", HEADER + "ann,ann@example.com,true,,en\n" + "ANN,other@example.com,true,,en\n"
                 + "bea,Ann@Example.com,true,,en\n" + "cat,cat@example.com,true,,en\n" + "dan,,false,,en\n"
                 + "eve,,false,,en\n")
    assert results(path, "csv") == [("line 2", "ok"), ("line 3", "duplicate_in_file"),
                                    ("line 4", "duplicate_in_file"), ("line 5", "ok"), ("line 6", "ok"),
                                    ("line 7", "ok")]  # no address is no clash
    assert "line 2" in refusal(path, "csv", "line 3").detail
    realm = realm_file(tmp_path / "realm.json", [{"id": "1", "username": "ann"}, {"id": "1", "username": "bea"}])
    assert results(realm, "keycloak") == [("users[0]", "ok"), ("users[1]", "duplicate_in_file")]


def test_a_line_over_the_cap_is_skipped_without_being_held(tmp_path):
    long_line = '{"user_id": "auth0|x", "padding": "' + "p" * (32 * LINE_CAP) + '"}\n'
    path = write(tmp_path / "a.ndjson", auth0_line() + long_line + auth0_line(user_id="auth0|b", username="bea",
                                                                                email="bea@example.com"))
    tracemalloc.start()
    try:
        found = results(path, "auth0")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [("line 1", "ok"), ("line 2", "line_too_long"), ("line 3", "ok")]
    assert peak < 6 * LINE_CAP  # the 32 MiB line was read a chunk at a time


def test_a_line_of_exactly_the_cap_is_read(tmp_path):
    line = auth0_line().rstrip("\n")
    padded = line[:-1] + ', "p": "' + "p" * (LINE_CAP - len(line) - 9) + '"}'
    assert len(padded) == LINE_CAP
    path = write(tmp_path / "a.ndjson", padded + "\n" + padded + "x\n")
    assert results(path, "auth0") == [("line 1", "ok"), ("line 2", "line_too_long")]


@pytest.mark.slow  # reading 2 GiB takes seconds
def test_a_2_gib_line_in_a_sparse_file(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as out:
        out.write((HEADER + "ann,ann@example.com,true,,en\n").encode())
    size = 2 << 30
    os.truncate(path, size)  # 2 GiB of NUL bytes, no line break, no disk
    with path.open("ab") as out:
        out.write(b"\nbea,bea@example.com,false,,ja\n")
    tracemalloc.start()
    try:
        found = results(path, "csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [("line 2", "ok"), ("line 3", "line_too_long"), ("line 4", "ok")]
    assert peak < 6 * LINE_CAP


def test_a_keycloak_export_is_read_as_a_stream(tmp_path):
    user = {"id": "", "username": "", "email": "", "emailVerified": True, "enabled": True,
            "attributes": {"note": ["n" * 18000]}, "credentials": [{"type": "otp", "secretData": "{}"}]}
    path = tmp_path / "realm.json"
    with path.open("w") as out:
        out.write('{"id": "r", "realm": "acme", "users": [')
        out.write(",".join(json.dumps(user | {"id": str(n), "username": f"user{n}", "email": f"u{n}@example.com"})
                           for n in range(1000)))
        out.write('], "clients": []}')
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for row in read_rows(path, "keycloak") if isinstance(row, ImportRow))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 1000 and size > 16 << 20
    assert peak < size // 4
