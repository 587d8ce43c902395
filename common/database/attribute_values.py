"""Python records <-> DynamoDB attribute maps, as boto3's TypeSerializer and TypeDeserializer make
them (and numbers as plain ints and floats), in plain Python: every request converts a few items,
and boto3's converters cost several times more per value. What the fast paths do not cover (sets
other than of strings, Decimals, Binary, subclasses of the built-in types, bad values) goes through
boto3's own converters, so the results and the errors are boto3's exactly."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, overload

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# boto3 writes numbers through a 38-digit context that refuses anything longer: such an int goes
# the slow way and meets boto3's own refusal.
_INT_LIMIT = 10 ** 38
_NUMBER_DIGITS = 38


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    """Python dict -> DynamoDB attribute map; None values are left out."""
    return {k: to_value(v) for k, v in record.items() if v is not None}


@overload
def from_item(item: dict[str, Any]) -> dict[str, Any]: ...
@overload
def from_item(item: None) -> None: ...
@overload
def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None: ...
def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """DynamoDB attribute map -> Python dict with ints instead of Decimals."""
    if item is None:
        return None
    return {k: from_value(v) for k, v in item.items()}


def to_value(value: Any) -> dict[str, Any]:
    """One value as TypeSerializer().serialize gives it."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if kind is dict:
        return {"M": {k: to_value(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [to_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    if kind is bytes:
        return {"B": value}
    if (kind is set or kind is frozenset) and value and all(type(v) is str for v in value):
        return {"SS": list(value)}
    return _serializer.serialize(value)


def from_value(value: dict[str, Any]) -> Any:
    """One attribute value as TypeDeserializer().deserialize gives it, with numbers as int or float."""
    kind = next(iter(value), None)  # boto3 reads the first key
    if kind == "S":
        return value["S"]
    if kind == "N":
        return _number(value["N"])
    if kind == "BOOL":
        return value["BOOL"]
    if kind == "M":
        return {k: from_value(v) for k, v in value["M"].items()}
    if kind == "L":
        return [from_value(v) for v in value["L"]]
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(value["SS"])
    if kind == "B":
        return Binary(value["B"])
    return plain(_deserializer.deserialize(value))


def _number(text: str) -> int | float:
    digits = text[1:] if text[:1] == "-" else text
    if 0 < len(digits) <= _NUMBER_DIGITS and digits.isascii() and digits.isdigit():
        return int(text)
    return plain(_deserializer.deserialize({"N": text}))


def plain(value: Any) -> Any:
    """boto3's Decimals (also in maps, lists and sets) as ints when integral, else floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return type(value)(plain(v) for v in value) if isinstance(value, list) else {plain(v) for v in value}
    return value
