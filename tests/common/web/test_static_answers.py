"""oidc.static_answers: discovery, the JWKS and the SSF configuration as prepared answers with a strong
ETag; If-None-Match read as a list of entity tags (RFC 9110 §8.8.3, §13.1.2), never split at commas; the
JWKS follows the key ring when it reloads. Under gunicorn: tests/citylogin/server/test_gunicorn_static_answers.py."""
from __future__ import annotations

from hypothesis import given, strategies as st

from citylogin.app import create_app
from common.keys.ring import SIGNING_KINDS, rotate
from oidc.discovery.static_answers import ANY_TAG, JWKS, PATHS, SSF_CONFIGURATION, entity_tags, if_none_match_names

# etagc = %x21 / %x23-7E / obs-text: a comma or a W/ may be inside a tag
ETAGC = st.characters(codec="latin-1").filter(lambda ch: ch == "!" or "#" <= ch <= "~" or ch >= "\x80")
OPAQUE = st.text(ETAGC, max_size=12)
OWS = st.text(st.sampled_from(" \t"), max_size=2)


@st.composite
def if_none_match(draw) -> tuple[str, list[str]]:
    """An If-None-Match value a client may send (weak and strong tags, whitespace and empty elements
    around the commas) and its opaque tags."""
    tags = draw(st.lists(st.tuples(st.booleans(), OPAQUE), min_size=1, max_size=5))
    parts = []
    for weak, opaque in tags:
        parts.append(draw(OWS) + ("W/" if weak else "") + f'"{opaque}"' + draw(OWS))
        parts.extend(draw(OWS) for _ in range(draw(st.integers(0, 1))))  # an empty element
    return ",".join(parts), [opaque for _, opaque in tags]


@given(if_none_match(), OPAQUE)
def test_if_none_match_is_read_tag_by_tag(field, ours):
    value, opaques = field
    assert entity_tags(value) == opaques
    assert if_none_match_names(value, ours) == (ours in opaques)
    for opaque in opaques:
        assert if_none_match_names(value, opaque)


@given(st.text(st.characters(codec="latin-1"), max_size=40), OPAQUE)
def test_any_value_is_answered_and_names_a_tag_only_as_a_whole_quoted_tag(value, ours):
    if if_none_match_names(value, ours):
        assert value.strip(" \t") == "*" or f'"{ours}"' in value


def test_what_an_attacker_or_a_naive_splitter_would_send():
    assert entity_tags('"a,b", W/"c"') == ["a,b", "c"]
    assert entity_tags("*") == ANY_TAG and entity_tags('"*"') == ["*"]  # the wildcard is not the tag "*"
    assert if_none_match_names(" * ", "abc") and not if_none_match_names('"*"', "abc")
    assert not if_none_match_names('"a,b"', "a") and not if_none_match_names('"a,b"', "b")
    assert not if_none_match_names('"x", a', "a")  # an unquoted tag: the field is not a list of tags
    assert not if_none_match_names('"a" "b"', "a") and not if_none_match_names('"a"b', "a")
    assert not if_none_match_names('w/"a"', "a") and not if_none_match_names('"a', "a")
    assert not if_none_match_names('*, "a"', "a") and not if_none_match_names("", "a")
    assert not if_none_match_names(" , ,", "a") and not if_none_match_names('"a\x00"', "a\x00")
    assert if_none_match_names("  * ", "anything") and if_none_match_names(' ,W/"a" ,', "a")


def test_each_document_has_a_strong_etag_and_a_conditional_read_gets_304(base_config):
    client = create_app(base_config).test_client()
    for path in PATHS:
        whole = client.get(path)
        assert whole.status_code == 200 and whole.mimetype == "application/json"
        etag = whole.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"') and '"' not in etag[1:-1]
        for sent in (etag, "W/" + etag, f'"other", {etag}', f'"a,b" , {etag},', "*"):
            for method in ("GET", "HEAD"):
                answer = client.open(path, method=method, headers={"If-None-Match": sent})
                assert answer.status_code == 304 and answer.data == b"", (path, sent)
                assert answer.headers["ETag"] == etag
                assert answer.headers["Cache-Control"] == whole.headers["Cache-Control"]
                assert answer.headers.get("Access-Control-Allow-Origin") == whole.headers.get(
                    "Access-Control-Allow-Origin")
                assert "Content-Type" not in answer.headers and "Content-Length" not in answer.headers
        for sent in ('"other"', etag[1:-1], f'"{etag}"', etag + " junk", etag.replace('"', "'")):
            answer = client.get(path, headers={"If-None-Match": sent})
            assert answer.status_code == 200 and answer.data == whole.data, (path, sent)
        head = client.head(path)
        assert head.data == b"" and head.headers["Content-Length"] == str(len(whole.data))
        assert whole.headers.get("Access-Control-Allow-Origin") == (None if path == SSF_CONFIGURATION else "*")
    # Another process serves the same bytes under the same tag: a cache may revalidate with any of them.
    other = create_app(base_config).test_client()
    for path in PATHS:
        assert other.get(path).headers["ETag"] == client.get(path).headers["ETag"]


def test_the_jwks_follows_the_key_ring(base_config):
    app = create_app(base_config)
    ctx, client = app.extensions["citylogin"], app.test_client()
    before = client.get(JWKS)
    new_kids = {entry.kid for entry in rotate(ctx.key_ring) if entry.kind in SIGNING_KINDS}
    ctx.jwt.refresh(max_age=0)  # what the ring refresher's thread does on its schedule
    after = client.get(JWKS, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert new_kids <= {key["kid"] for key in after.get_json()["keys"]}
    assert after.get_json() == ctx.jwt.jwks()
    ctx.ring_refresher.stop()
