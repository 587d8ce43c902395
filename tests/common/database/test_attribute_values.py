"""common/database/attribute_values.py gives exactly what boto3's TypeSerializer and TypeDeserializer (with
numbers made plain ints and floats) give, value for value and type for type, errors included: every
store reads and writes through it."""
from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, Callable

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.database import dynamo
from common.database.attribute_values import from_item, to_item

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def reference_to_item(record: dict[str, Any]) -> dict[str, Any]:
    """common/database/dynamo.py's to_item as it was: boto3's serializer, None values left out."""
    return {k: _serializer.serialize(v) for k, v in record.items() if v is not None}


def reference_from_item(item: dict[str, Any]) -> dict[str, Any]:
    """common/database/dynamo.py's from_item as it was: boto3's deserializer, then Decimals as ints or floats."""
    return {k: _reference_plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _reference_plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _reference_plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return type(value)(_reference_plain(v) for v in value) if isinstance(value, list) \
            else {_reference_plain(v) for v in value}
    return value


def typed(value: Any) -> Any:
    """A value with the type of every part spelled out: 1, 1.0 and True are equal in Python but
    not in a record, nor a list and a tuple, nor bytes and Binary."""
    if isinstance(value, dict):
        return type(value), tuple((typed(k), typed(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value), tuple(typed(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value), frozenset(typed(v) for v in value)
    if isinstance(value, Binary):
        return Binary, typed(value.value)
    if isinstance(value, float):
        return float, repr(value)  # nan equals nothing, -0.0 equals 0.0
    return type(value), value


def outcome(convert: Callable[[Any], Any], value: Any) -> Any:
    try:
        return "ok", typed(convert(value))
    except Exception as exc:  # the same refusal is part of "the same"
        return "error", type(exc)


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


numbers_ = (st.integers() | st.integers(min_value=10 ** 37, max_value=10 ** 40)
            | st.integers(min_value=-10 ** 40, max_value=-10 ** 37))
decimals = st.decimals(allow_nan=False, allow_infinity=False)
scalars = (st.none() | st.booleans() | numbers_ | decimals | st.floats() | st.text() | st.just("")
           | st.binary() | st.binary().map(bytearray) | st.binary().map(Binary)
           | st.sampled_from([Colour.RED, Level.HIGH]))
sets = (st.sets(st.text()) | st.frozensets(st.text(), min_size=1) | st.sets(numbers_) | st.sets(st.binary())
        | st.sets(decimals) | st.sets(st.text() | st.integers()) | st.sets(st.booleans()))
# Small containers: Hypothesis makes large nested ones slowly, and depth finds what size would.
values = st.recursive(scalars | sets, lambda children: (
    st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    | st.lists(children, max_size=3).map(tuple)), max_leaves=10)
records = st.dictionaries(st.text(max_size=8), values, max_size=6)


# The wire's forms, as the lean client hands them over (B and BS as bytes), including numbers in
# every spelling DynamoDB or a hand-made item could carry: exponents, leading zeros, signs, too many
# digits, digits of other scripts.
number_texts = (st.integers(min_value=-10 ** 45, max_value=10 ** 45).map(str) | decimals.map(str)
                | st.from_regex(r"[-+]?[0-9]{1,45}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
                | st.text(alphabet="0123456789٠١٢²-+.eE_", min_size=1, max_size=6))
wire = st.recursive(
    st.builds(lambda s: {"S": s}, st.text()) | st.builds(lambda n: {"N": n}, number_texts)
    | st.builds(lambda b: {"BOOL": b}, st.booleans()) | st.just({"NULL": True})
    | st.builds(lambda b: {"B": b}, st.binary()) | st.builds(lambda s: {"SS": s}, st.lists(st.text(), min_size=1))
    | st.builds(lambda n: {"NS": n}, st.lists(number_texts, min_size=1))
    | st.builds(lambda b: {"BS": b}, st.lists(st.binary(), min_size=1)) | st.just({}) | st.just({"X": 1}),
    lambda children: (st.builds(lambda v: {"L": v}, st.lists(children, max_size=4))
                      | st.builds(lambda m: {"M": m}, st.dictionaries(st.text(max_size=6), children, max_size=4))),
    max_leaves=10)

wire_items = st.dictionaries(st.text(max_size=8), wire, max_size=6)


def written(record: dict[str, Any]) -> dict[str, Any]:
    """The item boto3 writes for `record`; {} for a record it refuses (that refusal is to_item's case)."""
    try:
        return reference_to_item(record)
    except Exception:
        return {}


# Each converter, boto3's way to the same end, and what it is given.
CONVERSIONS = {
    "to_item-of-any-record": (to_item, reference_to_item, records),
    "from_item-of-what-boto3-wrote": (from_item, reference_from_item, records.map(written)),
    "from_item-of-any-wire-form": (from_item, reference_from_item, wire_items),
}


@pytest.mark.parametrize("convert, reference, inputs", CONVERSIONS.values(), ids=CONVERSIONS.keys())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_converter_gives_what_boto3_gives(convert, reference, inputs, data):
    value = data.draw(inputs)
    assert outcome(convert, value) == outcome(reference, value)


def test_numbers_are_ints_when_integral_and_floats_otherwise():
    item = {"a": {"N": "12"}, "b": {"N": "1.0"}, "c": {"N": "1E+2"}, "d": {"N": "0.5"}, "e": {"N": "-0"},
            "f": {"NS": ["1", "2.5"]}, "g": {"N": "9" * 38}}
    assert typed(from_item(item)) == typed({"a": 12, "b": 1, "c": 100, "d": 0.5, "e": 0, "f": {1, 2.5},
                                            "g": int("9" * 38)})


EDGE_NUMBER_TEXTS = ["9" * 38, "9" * 39, "1" + "0" * 38, "-" + "9" * 38, "-" + "9" * 39, "0" * 40 + "1", "-0",
                     "+5", "٠١٢", "²", "1_000", "E", "", "-", "--1", "1e126", "1e127", "1e-131"]
EDGE_INTS = [10 ** 38 - 1, 10 ** 38, -(10 ** 38 - 1), -(10 ** 38), 0, True, Level.HIGH, 10 ** 200]


EDGES = ([(from_item, reference_from_item, item) for text in EDGE_NUMBER_TEXTS
          for item in ({"n": {"N": text}}, {"l": {"L": [{"N": text}]}}, {"s": {"NS": [text]}})]
         + [(to_item, reference_to_item, record) for number in EDGE_INTS
            for record in ({"n": number}, {"l": [number]}, {"s": {number}})])


def test_numbers_at_the_edges_of_boto3s_context():
    for convert, reference, value in EDGES:
        assert outcome(convert, value) == outcome(reference, value), value


def test_the_stores_module_hands_out_these_converters():
    assert dynamo.to_item is to_item and dynamo.from_item is from_item
    assert from_item(None) is None
