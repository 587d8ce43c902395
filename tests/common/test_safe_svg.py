"""The safe subset of an SVG logo (common/safe_svg.py, issue 62): a corpus of known SVG attacks
(tests/common/svg/attacks: OWASP's XSS filter evasion, DOMPurify's and svg-sanitizer's classes) each
keeps its drawing and loses every construct that runs or reaches out, judged by parsing the output
(tests/support/svg.py); the documents that cannot be cut down (tests/common/svg/refused: DTDs,
entities, XXE, billion laughs, malformed, not SVG) are refused with their reason; real logos
(tests/common/svg/logos) keep what they draw; and a Hypothesis property over generated trees of
attacker-ish names, namespaces and values."""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from defusedxml import ElementTree as DefusedElementTree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.safe_svg import MAX_DEPTH, SvgRefusal, UnsafeSvg, is_fragment, safe_svg
from tests.support.svg import SVG_NS, XLINK_NS, dangers, meaning

CORPUS = Path(__file__).resolve().parent / "svg"
ATTACKS = sorted(path.stem for path in (CORPUS / "attacks").glob("*.svg"))
REFUSED = sorted(path.stem for path in (CORPUS / "refused").glob("*.svg"))
LOGOS = sorted(path.stem for path in (CORPUS / "logos").glob("*.svg"))
DRAWN = ('<rect width="10" height="10" fill="#0b7a5a"/>'.encode())    # the drawing most attacks carry


def corpus(folder: str, name: str) -> bytes:
    return (CORPUS / folder / f"{name}.svg").read_bytes()


def test_the_corpus_holds_the_known_attacks():
    assert len(ATTACKS) >= 30 and len(REFUSED) >= 10, (ATTACKS, REFUSED)


@pytest.mark.parametrize("name", ATTACKS)
def test_an_attack_keeps_its_drawing_and_nothing_that_runs_or_reaches_out(name):
    attack = corpus("attacks", name)
    assert dangers(attack), f"{name} is no attack by the judge's reading"
    kept = safe_svg(attack)
    assert dangers(kept.body) == [], kept.body
    root = DefusedElementTree.fromstring(kept.body, forbid_dtd=True)
    assert root.tag == f"{{{SVG_NS}}}svg"
    if DRAWN in attack:
        assert any(e.get("fill") == "#0b7a5a" for e in root.iter(f"{{{SVG_NS}}}rect")), kept.body
    assert kept.left_out or name == "xml-stylesheet", "what was left out goes unnamed"
    assert safe_svg(kept.body).body == kept.body                # what is kept is kept as it is


@pytest.mark.parametrize("name", REFUSED)
def test_a_document_that_cannot_be_cut_down_is_refused_with_its_reason(name):
    with pytest.raises(UnsafeSvg) as refused:
        safe_svg(corpus("refused", name))
    assert refused.value.reason == SvgRefusal(name.partition("-")[0])


@pytest.mark.parametrize("encoding", ["UTF-7", "Shift_JIS", "UTF-32", "x-unknown"])
def test_an_encoding_the_parser_cannot_read_is_refused_not_raised(encoding):
    body = f'<?xml version="1.0" encoding="{encoding}"?><svg xmlns="{SVG_NS}"/>'.encode()
    with pytest.raises(UnsafeSvg) as refused:
        safe_svg(body)
    assert refused.value.reason == SvgRefusal.MALFORMED


def nested(depth: int) -> bytes:
    return f'<svg xmlns="{SVG_NS}">{"<g>" * (depth - 1)}<rect width="1"/>{"</g>" * (depth - 1)}</svg>'.encode()


def test_a_tree_deeper_than_the_cap_is_refused_and_one_at_the_cap_is_kept():
    assert meaning(safe_svg(nested(MAX_DEPTH - 1)).body) == meaning(nested(MAX_DEPTH - 1))
    with pytest.raises(UnsafeSvg) as refused:
        safe_svg(nested(MAX_DEPTH + 1))
    assert refused.value.reason == SvgRefusal.TOO_DEEP
    with pytest.raises(UnsafeSvg):
        safe_svg(nested(20_000))          # a RecursionError's depth, in 100 KiB: refused, never raised


@pytest.mark.parametrize("name", LOGOS)
def test_a_real_logo_keeps_what_it_draws(name):
    logo = corpus("logos", name)
    assert dangers(logo) == [] or name == "inkscape"    # Inkscape's own namespaces, which no browser draws
    kept = safe_svg(logo)
    assert meaning(kept.body) == meaning(logo)
    assert dangers(kept.body) == []
    assert all(item.startswith(("{", "<{")) for item in kept.left_out), kept.left_out


def test_a_raster_image_is_kept_only_as_the_image_it_says_it_is():
    kept = DefusedElementTree.fromstring(safe_svg(corpus("logos", "raster")).body)
    assert next(kept.iter(f"{{{SVG_NS}}}image")).get("href", "").startswith("data:image/png;base64,iVBORw0KGgo")
    svg_as_png = corpus("attacks", "image-data-svg")
    assert all("href" not in image.attrib for image in
               DefusedElementTree.fromstring(safe_svg(svg_as_png).body).iter(f"{{{SVG_NS}}}image"))


def test_text_that_looks_like_markup_stays_text():
    body = (f'<svg xmlns="{SVG_NS}"><desc><![CDATA[</desc><script>alert(1)</script>]]></desc>'
            '<title>&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;</title></svg>').encode()
    kept = safe_svg(body)
    assert b"<script" not in kept.body and b"]]>" not in kept.body, kept.body
    root = DefusedElementTree.fromstring(kept.body)
    assert [e.text for e in root] == ["</desc><script>alert(1)</script>", "</title><script>alert(2)</script>"]


def test_a_style_keeps_the_declarations_of_a_drawing_and_says_what_it_lost():
    body = (f'<svg xmlns="{SVG_NS}"><style>@import url(x.css); .a {{ fill: url(#g); stroke: url(//e.example/#s);'
            ' behavior: url(x.htc) }}</style><rect class="a" style="fill:red;cursor:url(c.cur)"/></svg>').encode()
    kept = safe_svg(body)
    root = DefusedElementTree.fromstring(kept.body)
    assert [root[0].text, root[1].get("style")] == [".a{fill: url(#g)}", "fill:red"]
    assert {"CSS @import", "CSS stroke", "CSS behavior", "CSS cursor"} <= set(kept.left_out)


def test_what_was_left_out_is_named_without_a_line_break_a_log_line_would_carry():
    body = (f'<svg xmlns="{SVG_NS}" xmlns:e="urn:a&#10;ERROR forged" e:x="1" style="f\\a ill:red">'
            '<e:g/></svg>').encode()
    left_out = safe_svg(body).left_out
    assert len(left_out) == 4 and all(name.isprintable() for name in left_out), left_out


@pytest.mark.parametrize("value", ["#a", "#logo-1", "#SVGID_1_", "#%E3%82%A2"])
def test_an_in_document_fragment_is_a_fragment(value):
    assert is_fragment(value)


@pytest.mark.parametrize("value", ["", "#", "#ajavascript:", "#a:b", "#1a", " #a", "#a b", "\t#a", "a#b", "/#a",
                                   "//e.example/#a", "http://e/#a", "javascript:#a", "data:,#a", "?#a", "#a\n"])
def test_anything_else_is_no_fragment(value):
    assert not is_fragment(value)


# --- a property: whatever the tree, nothing that runs or reaches out survives --------------------------

XHTML_NS = "http://www.w3.org/1999/xhtml"
EVENTS_NS = "http://www.w3.org/2001/xml-events"
XML_NS = "http://www.w3.org/XML/1998/namespace"
NAMESPACES = st.sampled_from([SVG_NS] * 6 + ["", XLINK_NS, XHTML_NS, EVENTS_NS, "urn:x"])
# Mostly none, as an attribute's is; SVG's own too (x:onload with x bound to it), and XML's (xml:base).
ATTRIBUTE_NAMESPACES = st.sampled_from(["", "", "", "", SVG_NS, XLINK_NS, XHTML_NS, EVENTS_NS, XML_NS, "urn:x"])
ELEMENT_NAMES = st.sampled_from([
    "svg", "g", "rect", "path", "a", "use", "image", "style", "text", "tspan", "linearGradient", "stop", "filter",
    "pattern", "textPath", "metadata", "title", "switch", "feImage", "script", "Script", "SCRIPT", "foreignObject",
    "set", "animate", "animateTransform", "animateMotion", "mpath", "discard", "handler", "listener", "iframe",
    "embed", "object", "cursor", "font-face-uri", "tref", "color-profile", "x-script",
])
ATTRIBUTE_NAMES = st.sampled_from([
    "onload", "ONLOAD", "onClick", "onbegin", "onfocusin", "onerror", "on", "href", "src", "data", "base",
    "style", "fill", "stroke", "filter", "mask", "clip-path", "marker-end", "cursor", "transform", "id", "class",
    "x", "d", "values", "type", "attributeName", "to", "from", "by", "begin", "space", "lang", "requiredExtensions",
])
# What an attacker puts together: schemes (cut by white space, in any case), hosts, url(), CSS escapes.
VALUE_PARTS = st.sampled_from([
    "javascript:", "JaVaScRiPt:", "java\tscript:", "\njavascript:", " javascript:", "vbscript:", "alert(1)",
    "http://evil.example/", "//evil.example/x", "https:", "data:text/html,", "data:image/svg+xml,",
    "data:image/png;base64,iVBORw0KGgo=", "file:///etc/passwd", "url(", ")", "url(#a)", "url(http://e/)",
    "u\\72l(", "URL(", "'", '"', "#a", "#", "@import ", "expression(", ";", ":", "{", "}", "&", "<", "\\",
    " ", "\t", "fill:", "red", "x.png", "/", "?",
]) | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), max_size=3)
VALUES = st.lists(VALUE_PARTS, max_size=6).map("".join)
# Any name in any namespace, and more often the ones that have done harm.
ATTRIBUTES = st.tuples(ATTRIBUTE_NAMESPACES, ATTRIBUTE_NAMES) | st.sampled_from([
    ("", "onload"), (SVG_NS, "onload"), (EVENTS_NS, "onclick"), ("", "href"), (XLINK_NS, "href"), (XML_NS, "base"),
    ("", "style"), ("", "fill"), ("", "filter"), ("", "cursor"), ("", "id"), ("", "values"), ("", "attributeName"),
])


def qualified(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}" if namespace else name


@st.composite
def elements(draw, depth: int = 0) -> ElementTree.Element:
    tag = qualified(draw(NAMESPACES), draw(ELEMENT_NAMES)) if depth else f"{{{SVG_NS}}}svg"
    element = ElementTree.Element(tag)
    for (namespace, name), value in draw(st.lists(st.tuples(ATTRIBUTES, VALUES), max_size=4)):
        element.set(qualified(namespace, name), value)
    element.text = draw(st.one_of(st.none(), VALUES))
    if depth < 3:
        element.extend(draw(st.lists(elements(depth + 1), max_size=3)))
    return element


@pytest.mark.slow  # 300 generated trees (5 s): the whole suite runs them
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(elements())
def test_no_generated_tree_keeps_an_event_a_reference_out_or_a_banned_element(root):
    body = ElementTree.tostring(root)
    kept = safe_svg(body)
    assert dangers(kept.body) == [], (body, kept.body)
    assert safe_svg(kept.body).body == kept.body


SCHEME = "javascript:alert(1)"


@st.composite
def obfuscated_schemes(draw) -> str:
    """javascript: as an attribute's source text: each character as itself or a character reference
    (decimal or hexadecimal, zero-padded), with tabs, new lines and spaces between them."""
    out = []
    for char in SCHEME:
        out.append(draw(st.sampled_from([char, f"&#{ord(char)};", f"&#x{ord(char):x};", f"&#x{ord(char):06X};"])))
        out.append(draw(st.sampled_from(["", "", "&#9;", "&#10;", "&#13;", "\t", " "])))
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(obfuscated_schemes(), st.sampled_from(["href", "xlink:href"]), st.sampled_from(["a", "use", "image"]))
def test_no_obfuscation_of_a_script_scheme_survives_as_a_link(scheme, attribute, element):
    body = (f'<svg xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"><{element} {attribute}="{scheme}"/></svg>').encode()
    kept = safe_svg(body)
    assert dangers(kept.body) == [] and b"href" not in kept.body, kept.body
