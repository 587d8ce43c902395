"""Reading an SVG document as a browser would, to judge what it holds (tests of common/safe_svg.py):
`dangers` lists every construct that runs script or reaches outside the document, found by parsing
it (XML, then its CSS), written apart from the sanitizer so that it checks it rather than repeats
it; `meaning` is what a document draws, to compare a logo before and after."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Iterable, Iterator

import tinycss2
import tinycss2.ast as css
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedElementTree

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Elements that run script, load, embed another document or rewrite an attribute over time.
BANNED = {"script", "foreignObject", "handler", "listener", "iframe", "embed", "object", "set", "animate",
          "animateMotion", "animateTransform", "animateColor", "discard", "mpath", "feImage", "cursor",
          "font-face", "font-face-src", "font-face-uri", "color-profile", "tref"}
SCRIPT_SCHEMES = ("javascript:", "vbscript:")
RASTER = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+=*")


def dangers(body: bytes) -> list[str]:
    """Every dangerous construct in `body`, named; [] for a document safe to show anywhere."""
    try:
        root = DefusedElementTree.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return ["a DOCTYPE or an entity"]
    found = [f"processing instruction {text!r}" for text in _processing_instructions(body)]
    for element in root.iter():
        found += _element_dangers(element)
    return found


def _processing_instructions(body: bytes) -> list[str]:
    # No DTD (checked above): the standard parser is safe here, and its pull events see the PIs before the root.
    parser = ElementTree.XMLPullParser(events=("pi",))
    parser.feed(body)
    parser.close()
    return [element.text or "" for _, element in parser.read_events()]


def _split(name: str) -> tuple[str, str]:
    return (name[1:].partition("}")[0], name.rpartition("}")[2]) if name.startswith("{") else ("", name)


def _element_dangers(element: ElementTree.Element) -> list[str]:
    namespace, local = _split(element.tag)
    found = []
    if namespace != SVG_NS:
        found.append(f"<{element.tag}> outside the SVG namespace")
    if local in BANNED:
        found.append(f"<{local}>")
    for name, value in element.attrib.items():
        found += [f"{name}={value!r} on <{local}>: {why}" for why in _attribute_dangers(local, name, value)]
    if local == "style":
        found += _stylesheet_dangers("".join(element.itertext()))
    return found


def _attribute_dangers(element: str, name: str, value: str) -> Iterator[str]:
    namespace, local = _split(name)
    if local.lower().startswith("on"):
        yield "an event attribute"
    if namespace not in ("", XML_NS, XLINK_NS) or name == f"{{{XML_NS}}}base":
        yield "an attribute of another namespace"
    if local == "href" and not _fragment(value) and not (element == "image" and RASTER.fullmatch(value)):
        yield "a reference out of the document"
    squeezed = "".join(char for char in value if char > " " and char != "\x7f").lower()
    if any(scheme in squeezed for scheme in SCRIPT_SCHEMES):
        yield "a script scheme"
    if any(_reaches_out(token) for token in _tokens(tinycss2.parse_component_value_list(value))):
        yield "a CSS url() out of the document"


def _stylesheet_dangers(text: str) -> list[str]:
    found = []
    for rule in tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True):
        if isinstance(rule, css.AtRule):
            found.append(f"@{rule.at_keyword} in a <style>")
        parts = (rule.prelude or []) + (rule.content or []) if not isinstance(rule, css.ParseError) else []
        if any(_reaches_out(token) for token in _tokens(parts)):
            found.append("a CSS url() out of the document in a <style>")
    return found


def _fragment(value: str) -> bool:
    return re.fullmatch(r"#[^\x00-\x20\x7f]+", value) is not None


def _tokens(values: Iterable[css.Node]) -> Iterator[css.Node]:
    for token in values:
        yield token
        if isinstance(token, css.FunctionBlock):
            yield from _tokens(token.arguments)
        elif isinstance(token, (css.ParenthesesBlock, css.SquareBracketsBlock, css.CurlyBracketsBlock)):
            yield from _tokens(token.content)


def _reaches_out(token: css.Node) -> bool:
    if isinstance(token, css.URLToken):
        return not _fragment(token.value)
    if isinstance(token, css.FunctionBlock) and token.lower_name == "url":
        strings = [a.value for a in token.arguments if isinstance(a, css.StringToken)]
        return not (len(strings) == 1 and _fragment(strings[0]))
    return isinstance(token, css.ParseError) and token.kind == "bad-url"


# --- what a document draws ---------------------------------------------------------------------------

def meaning(body: bytes) -> tuple:
    """The SVG elements of `body` with their attributes (xlink:href as href, a style as its declarations),
    their text (a <style>'s as its rules) and their children's; what other namespaces add, which no
    browser draws, left out."""
    return _meaning(DefusedElementTree.fromstring(body, forbid_dtd=True))


def _meaning(element: ElementTree.Element) -> tuple:
    attributes = {}
    for name, value in element.attrib.items():
        namespace, local = _split(name)
        if namespace in ("", XML_NS, XLINK_NS):
            key = "href" if local == "href" else name
            attributes[key] = _declarations(value) if name == "style" else value
    local = _split(element.tag)[1]
    text = _rules(element.text or "") if local == "style" else (element.text or "").strip()
    children = tuple((_meaning(child), (child.tail or "").strip()) for child in element
                     if _split(child.tag)[0] == SVG_NS)
    return local, tuple(sorted(attributes.items())), text, children


def _declarations(text: str | list) -> tuple:
    return tuple((item.lower_name, tinycss2.serialize(item.value).strip(), item.important)
                 for item in tinycss2.parse_blocks_contents(text, skip_comments=True, skip_whitespace=True)
                 if isinstance(item, css.Declaration))


def _rules(text: str) -> tuple:
    return tuple((tinycss2.serialize(rule.prelude).strip(), _declarations(rule.content))
                 for rule in tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
                 if isinstance(rule, css.QualifiedRule))
