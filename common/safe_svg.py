"""The safe subset of an SVG image (a brand's logo; docs/guides/branding.md): the document is parsed as
XML by defusedxml, which refuses a DOCTYPE, entities and external references before any is expanded
(XXE, billion laughs), and rebuilt from allow-lists: SVG elements that draw, attributes that draw, CSS
(parsed by tinycss2) of properties that draw, and no reference out of the document. Whatever else it
holds is left out, so the image is as safe shown inline or opened at its own address as in an <img>:

- an element outside the list (script, foreignObject, iframe, handler, feImage, every animation
  element) goes with all it holds; comments and processing instructions (xml-stylesheet) go too;
- an attribute outside the list goes: every event attribute (on*), in any namespace, and every
  attribute of another namespace but xml:space and xml:lang;
- a link (href, xlink:href) stays only as an in-document `#fragment`, and an <image> keeps a data: URL
  of a PNG, JPEG, GIF or WebP image, decoded and written anew; a CSS url() only as `url(#fragment)`;
- a value that names a script scheme (javascript:, vbscript:), with the white space and control
  characters a browser skips in a scheme taken out first, goes whatever the attribute.

A document that cannot be read as one (malformed XML, a DOCTYPE, a root other than <svg> in the SVG
namespace, deeper than MAX_DEPTH) is refused, with its `SvgRefusal`. Pure: no Flask, no I/O."""
from __future__ import annotations

import base64
import binascii
import io
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import tinycss2
import tinycss2.ast as css
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedElementTree

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Deep enough for any drawing program's groups; ElementTree writes a tree recursively, so a deeper
# one (4,000 nested <g> fit in a few KiB) would end in a RecursionError.
MAX_DEPTH = 64

# SVG 1.1/2 elements that draw, structure or describe a drawing, and none that loads, links out or runs
# (image loads only the raster data: URL it is allowed below); <metadata> keeps only SVG inside it.
ELEMENTS = frozenset({
    "svg", "g", "defs", "symbol", "use", "switch", "title", "desc", "metadata", "style", "a",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "image",
    "text", "tspan", "textPath",
    "linearGradient", "radialGradient", "stop", "pattern", "clipPath", "mask", "marker",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology",
    "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
})
# The CSS properties a drawing uses; each is also a presentation attribute, and its value is CSS.
PROPERTIES = frozenset({
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
    "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "opacity", "color",
    "display", "visibility", "overflow", "clip", "clip-path", "clip-rule", "mask", "mask-type", "filter",
    "flood-color", "flood-opacity", "lighting-color", "stop-color", "stop-opacity", "color-interpolation",
    "color-interpolation-filters", "color-rendering", "shape-rendering", "text-rendering", "image-rendering",
    "paint-order", "vector-effect", "marker", "marker-start", "marker-mid", "marker-end", "font", "font-family",
    "font-size", "font-size-adjust", "font-stretch", "font-style", "font-variant", "font-weight",
    "letter-spacing", "word-spacing", "text-anchor", "text-decoration", "dominant-baseline",
    "alignment-baseline", "baseline-shift", "writing-mode", "direction", "unicode-bidi", "isolation",
    "mix-blend-mode", "transform", "transform-origin", "transform-box", "enable-background", "white-space",
})
# The other attributes of those elements (geometry, units, filter parameters, accessibility); none
# takes a URL, and none is read by an animation (there is none left to read them).
ATTRIBUTES = frozenset({
    "id", "class", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr", "z",
    "width", "height", "d", "points", "pathLength", "viewBox", "preserveAspectRatio", "version", "baseProfile",
    "offset", "gradientUnits", "gradientTransform", "spreadMethod", "patternUnits", "patternContentUnits",
    "patternTransform", "clipPathUnits", "maskUnits", "maskContentUnits", "markerUnits", "markerWidth",
    "markerHeight", "refX", "refY", "orient", "filterUnits", "primitiveUnits", "in", "in2", "result",
    "stdDeviation", "dx", "dy", "rotate", "textLength", "lengthAdjust", "startOffset", "method", "spacing",
    "side", "mode", "type", "values", "operator", "k1", "k2", "k3", "k4", "radius", "scale",
    "xChannelSelector", "yChannelSelector", "tableValues", "slope", "intercept", "amplitude", "exponent",
    "baseFrequency", "numOctaves", "seed", "stitchTiles", "azimuth", "elevation", "pointsAtX", "pointsAtY",
    "pointsAtZ", "specularExponent", "specularConstant", "diffuseConstant", "surfaceScale",
    "limitingConeAngle", "kernelMatrix", "order", "divisor", "bias", "targetX", "targetY", "edgeMode",
    "kernelUnitLength", "preserveAlpha", "systemLanguage", "requiredFeatures", "role", "aria-label",
    "aria-labelledby", "aria-describedby", "aria-hidden", "lang",
})
LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
HREFS = ("href", f"{{{XLINK_NS}}}href")          # SVG 2: href wins over xlink:href when both are set
# CSS functions of colours, lengths, transforms and filters: none loads anything (url() is checked apart).
FUNCTIONS = frozenset({
    "rgb", "rgba", "hsl", "hsla", "hwb", "lab", "lch", "oklab", "oklch", "color", "color-mix",
    "calc", "min", "max", "clamp", "matrix", "translate", "translatex", "translatey", "scale", "scalex", "scaley",
    "rotate", "skew", "skewx", "skewy", "blur", "brightness", "contrast", "drop-shadow", "grayscale",
    "hue-rotate", "invert", "opacity", "saturate", "sepia",
})
# A selector's own functions (:not(.a), :nth-child(2n)).
SELECTOR_FUNCTIONS = frozenset({"not", "is", "where", "nth-child", "nth-last-child", "nth-of-type",
                                "nth-last-of-type", "lang", "dir"})
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:")
# RFC 2397 with the raster types a browser shows in an image; the data is checked as that image.
RASTER_DATA_URL = re.compile(r"data:image/(?P<kind>png|jpeg|gif|webp);base64,(?P<data>[A-Za-z0-9+/=\s]+)")
RASTER_FORMATS = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WEBP"}


class SvgRefusal(str, Enum):
    """Why an SVG document is refused whole rather than cut down to its safe subset."""

    MALFORMED = "malformed"          # not well-formed XML (or an encoding expat does not know)
    DECLARATIONS = "declarations"    # a DOCTYPE, an entity, an external reference
    NOT_SVG = "not_svg"              # its root is not <svg> in the SVG namespace
    TOO_DEEP = "too_deep"            # elements nested deeper than MAX_DEPTH


class UnsafeSvg(ValueError):
    """An SVG document that is refused; `reason` says why (the message, in words)."""

    def __init__(self, reason: SvgRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SafeSvg:
    body: bytes                      # the document as kept: UTF-8, no XML declaration
    left_out: tuple[str, ...]        # the name of each element or attribute left out, once


def safe_svg(body: bytes) -> SafeSvg:
    """The safe subset of the SVG document `body` (module docstring); raises UnsafeSvg when `body` is
    not one SVG document to cut down."""
    root = _parse(body)
    left_out: list[str] = []
    for element in _elements(root):
        _keep_safe_children(element, left_out)
        _keep_safe_attributes(element, left_out)
        if _local(element.tag) == "style":
            _keep_safe_stylesheet(element, left_out)
    return SafeSvg(body=_written(root), left_out=tuple(dict.fromkeys(_printable(name) for name in left_out)))


def _printable(name: str) -> str:
    """A name as a log line may show it: a namespace or a CSS escape can hold a line break."""
    return "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in name)


# --- reading -------------------------------------------------------------------------------------

def _parse(body: bytes) -> ElementTree.Element:
    try:
        # Comments and processing instructions are not kept by the tree builder: they never reach the output.
        root = DefusedElementTree.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise UnsafeSvg(SvgRefusal.DECLARATIONS, "an SVG image must not declare a DOCTYPE or entities") from None
    except (ElementTree.ParseError, ValueError, LookupError) as exc:
        # ValueError, LookupError: an encoding expat cannot read (UTF-7, Shift_JIS, UTF-32) or does not know.
        raise UnsafeSvg(SvgRefusal.MALFORMED, f"not an SVG image in UTF-8 or another encoding it reads ({exc})") \
            from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise UnsafeSvg(SvgRefusal.NOT_SVG, "not an SVG image (its root is not <svg> in the SVG namespace)")
    if _depth(root) > MAX_DEPTH:
        raise UnsafeSvg(SvgRefusal.TOO_DEEP, f"an SVG image must nest its elements at most {MAX_DEPTH} deep")
    return root


def _depth(root: ElementTree.Element) -> int:
    deepest, waiting = 0, [(root, 1)]
    while waiting:
        element, depth = waiting.pop()
        deepest = max(deepest, depth)
        waiting += [(child, depth + 1) for child in element]
    return deepest


def _elements(root: ElementTree.Element) -> Iterator[ElementTree.Element]:
    """Each element once, parents before children, as the caller leaves it (children it removed are not
    visited): no recursion."""
    waiting = [root]
    while waiting:
        element = waiting.pop()
        yield element
        waiting += reversed(list(element))


def _written(root: ElementTree.Element) -> bytes:
    """The kept tree as a document: every element is the SVG namespace's and every attribute is in none
    (or xml:), so the SVG namespace is the default one, declared once, as drawing programs write it."""
    for element in root.iter():
        element.tag = _local(element.tag)
    attributes = {"xmlns": SVG_NS, **root.attrib}
    root.attrib.clear()
    root.attrib.update(attributes)
    return ElementTree.tostring(root, encoding="unicode").encode()


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _namespace(name: str) -> str:
    return name[1:].partition("}")[0] if name.startswith("{") else ""


# --- elements ------------------------------------------------------------------------------------

def _keep_safe_children(element: ElementTree.Element, left_out: list[str]) -> None:
    """Removes each child not on the list, with everything inside it; a <style> keeps no element at all
    (its text is the stylesheet, and a child's text would join it)."""
    is_style = _local(element.tag) == "style"
    for child in list(element):
        if is_style or not _allowed_element(child.tag):
            left_out.append(f"<{_local(child.tag) if _namespace(child.tag) == SVG_NS else child.tag}>")
            _remove(element, child, keep_tail=not is_style)


def _allowed_element(tag: object) -> bool:
    # A comment's or a processing instruction's tag is a function, not a name.
    return isinstance(tag, str) and _namespace(tag) == SVG_NS and _local(tag) in ELEMENTS


def _remove(parent: ElementTree.Element, child: ElementTree.Element, *, keep_tail: bool) -> None:
    """Removes `child`; the text after it (its tail, which is the parent's) stays where it was."""
    if keep_tail and child.tail:
        index = list(parent).index(child)
        if index:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + child.tail
        else:
            parent.text = (parent.text or "") + child.tail
    parent.remove(child)


# --- attributes ----------------------------------------------------------------------------------

def _keep_safe_attributes(element: ElementTree.Element, left_out: list[str]) -> None:
    """Keeps the safe attributes, a link as `href` (SVG 2), which wins over xlink:href as in SVG 2."""
    image = _local(element.tag) == "image"
    kept: dict[str, str] = {}
    for name, value in element.attrib.items():
        link = name in HREFS
        safe = _safe_reference(value, image=image) if link else _safe_attribute(name, value, left_out)
        if safe is None:
            left_out.append(name)
        elif not link:
            kept[name] = safe
        elif name == "href" or "href" not in kept:
            kept["href"] = safe
    element.attrib.clear()
    element.attrib.update(kept)


def _safe_attribute(name: str, value: str, left_out: list[str]) -> str | None:
    """`value` as kept for attribute `name` (not a link), or None to leave the attribute out."""
    if _names_a_script(value):
        return None
    if name == f"{{{XML_NS}}}space":  # XML 1.0 §2.10: its two values alone
        return value if value in ("default", "preserve") else None
    if name == f"{{{XML_NS}}}lang":  # a language tag (BCP 47): letters, digits and hyphens
        return value if LANGUAGE_TAG.fullmatch(value) else None
    if name == "style":
        return _safe_declarations(value, left_out) or None
    if name in PROPERTIES:
        return value if _safe_value(tinycss2.parse_component_value_list(value)) else None
    if name in ATTRIBUTES:
        # Not CSS, but read as CSS it must still name nothing outside the document.
        tokens = _tokens(tinycss2.parse_component_value_list(value))
        return None if any(_is_reference(token, strict=False) for token in tokens) else value
    return None


def _names_a_script(value: str) -> bool:
    """Whether `value` names a script scheme as a browser reads one: it skips ASCII white space and
    control characters (WHATWG URL: tab and newline anywhere, C0 and space at the ends) and case."""
    squeezed = "".join(char for char in value if char > " " and char != "\x7f").lower()
    return any(scheme in squeezed for scheme in SCRIPT_SCHEMES)


def _safe_reference(value: str, *, image: bool) -> str | None:
    """A link as kept: an in-document `#fragment`, or for an <image> a raster data: URL written anew."""
    if is_fragment(value):
        return value
    return _raster_data_url(value) if image else None


_ELEMENT_ID = re.compile(r"[A-Za-z_%][A-Za-z0-9_.%-]*")  # an id, its other letters percent-encoded


def is_fragment(value: str) -> bool:
    """Whether `value` is a URL reference to this document alone: nothing but a fragment, and nothing a
    browser would strip before parsing it (so that it reads the same reference)."""
    if not value or any(char <= " " or char == "\x7f" for char in value):
        return False
    parts = urlsplit(value)
    # urlsplit reads "?#a" (this address with an empty query: another resource) as no query: the reference
    # must begin with its fragment. An SVG links to its own elements by id: the fragment is one (an XML name
    # of ASCII letters, digits, "_", "-" and ".", any other letter percent-encoded), so nothing else (a
    # colon, a scheme's look) rides along.
    return value.startswith("#") and bool(parts.fragment) and not (parts.scheme or parts.netloc or parts.path
                                                                    or parts.query) \
        and _ELEMENT_ID.fullmatch(parts.fragment) is not None


def _raster_data_url(value: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    found = RASTER_DATA_URL.fullmatch(value)
    if found is None:
        return None
    try:
        data = base64.b64decode(re.sub(r"\s", "", found["data"]), validate=True)
        with Image.open(io.BytesIO(data), formats=[RASTER_FORMATS[found["kind"]]]) as image:
            image.verify()
    except (binascii.Error, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return f"data:image/{found['kind']};base64,{base64.b64encode(data).decode()}"


# --- CSS -----------------------------------------------------------------------------------------

def _tokens(values: Iterable[css.Node]) -> Iterator[css.Node]:
    """Every token of `values`, inside functions and blocks too."""
    waiting = list(values)
    while waiting:
        token = waiting.pop()
        yield token
        if isinstance(token, css.FunctionBlock):
            waiting += token.arguments
        elif isinstance(token, (css.ParenthesesBlock, css.SquareBracketsBlock, css.CurlyBracketsBlock)):
            waiting += token.content


def _is_reference(token: css.Node, *, strict: bool = True) -> bool:
    """A url() to anything but a fragment of this document; with `strict`, any token that did not parse
    too (else a url() that did not)."""
    if isinstance(token, css.URLToken):
        return not is_fragment(token.value)
    if isinstance(token, css.FunctionBlock) and token.lower_name == "url":
        arguments = [a for a in token.arguments if not isinstance(a, (css.WhitespaceToken, css.Comment))]
        return not (len(arguments) == 1 and isinstance(arguments[0], css.StringToken)
                    and is_fragment(arguments[0].value))
    return isinstance(token, css.ParseError) and (strict or token.kind == "bad-url")


def _safe_value(values: Iterable[css.Node]) -> bool:
    """A property's value: no reference out, no function but the listed ones, no block or at-keyword."""
    for token in _tokens(values):
        if _is_reference(token) or isinstance(token, (css.CurlyBracketsBlock, css.AtKeywordToken)):
            return False
        if isinstance(token, css.FunctionBlock) and token.lower_name not in FUNCTIONS | {"url"}:
            return False
    return True


def _safe_declarations(text: str | list[css.Node], left_out: list[str]) -> str:
    """The declarations of the listed properties whose values are safe, as CSS; the rest left out."""
    kept = []
    for item in tinycss2.parse_blocks_contents(text, skip_comments=True, skip_whitespace=True):
        if isinstance(item, css.Declaration) and item.lower_name in PROPERTIES and _safe_value(item.value) \
                and not _names_a_script(tinycss2.serialize(item.value)):
            kept.append(item.serialize().strip())
        else:
            left_out.append(f"CSS {_css_named(item)}")
    return ";".join(kept)


def _css_named(item: css.Node) -> str:
    if isinstance(item, css.Declaration):
        return item.lower_name
    if isinstance(item, css.AtRule):
        return f"@{item.lower_at_keyword}"
    return "rule" if isinstance(item, css.QualifiedRule) else "that did not parse"


def _safe_selector(prelude: list[css.Node]) -> bool:
    for token in _tokens(prelude):
        if _is_reference(token) or isinstance(token, (css.CurlyBracketsBlock, css.AtKeywordToken)):
            return False
        if isinstance(token, css.FunctionBlock) and token.lower_name not in SELECTOR_FUNCTIONS:
            return False
    return True


def _keep_safe_stylesheet(element: ElementTree.Element, left_out: list[str]) -> None:
    """A <style>'s rules with safe selectors and their safe declarations; no at-rule (@import, @font-face,
    @namespace, @media ...)."""
    rules = []
    for rule in tinycss2.parse_stylesheet(element.text or "", skip_comments=True, skip_whitespace=True):
        if isinstance(rule, css.QualifiedRule) and _safe_selector(rule.prelude):
            declarations = _safe_declarations(rule.content, left_out)
            if declarations:
                rules.append(f"{tinycss2.serialize(rule.prelude).strip()}{{{declarations}}}")
        else:
            left_out.append(f"CSS {_css_named(rule)}")
    element.text = "\n".join(rules)
