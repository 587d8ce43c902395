"""The `kind` of a 400 invalid_field comes from pydantic's error type (our own validators raise
common.errors.field_refusal, whose type is the kind), never from the English of the message."""
from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, BaseModel, ValidationError

from common.errors import FieldKind, InvalidField, field_refusal
from common.web.validation import FIELD_KEYS, field_rule, parse_model

MISLEADING = "password must be 8-128 characters, is too long, too common, 3-32 characters, valid email address"
GOOD_USER = {"username": "someone", "email": "someone@example.com", "password": "a-long-unusual-pass-9"}


def _new_user(**fields):
    from flows.models import NewUserRequest
    return NewUserRequest, {**GOOD_USER, **fields}


def _login(username):
    from flows.models import LoginRequest
    return LoginRequest, {"username": username, "password": "x"}


def _history(limit):
    from sessions.models import HistoryQuery
    return HistoryQuery, {"limit": limit}


def _history_cursor(cursor):
    from sessions.models import HistoryQuery
    return HistoryQuery, {"cursor": cursor}


def _email_change(address):
    from accounts.models import EmailChangeRequest
    return EmailChangeRequest, {"password": "x", "new_email": address}


# (model and body, kind, catalogue key): every kind, each rule of our own validators among them.
CASES = [
    pytest.param(_new_user(device_name="   "), FieldKind.EMPTY, "empty", id="empty"),
    pytest.param(_new_user(password="short"), FieldKind.TOO_SHORT, "password_length", id="password-short"),
    pytest.param(_new_user(password="x" * 8 + "y" * 130), FieldKind.TOO_LONG, "password_length", id="password-long"),
    pytest.param(_new_user(device_name="x" * 65), FieldKind.TOO_LONG, "too_long", id="too-long"),
    pytest.param(_login("\ufdfa" * 200), FieldKind.TOO_LONG, "too_long_any", id="login-name-long"),
    pytest.param(_new_user(password="password1"), FieldKind.TOO_COMMON, "too_common", id="too-common"),
    pytest.param(_new_user(username="a b"), FieldKind.INVALID_FORMAT, "username_format", id="username"),
    pytest.param(_new_user(email="not-an-address"), FieldKind.INVALID_FORMAT, "email_format", id="email"),
    pytest.param(_email_change("a{reason}@"), FieldKind.INVALID_FORMAT, "email_format", id="email-change"),
    pytest.param(_history_cursor("!!"), FieldKind.INVALID_FORMAT, "invalid_format", id="pattern"),
    pytest.param(_new_user(device_name="a\u202eb"), FieldKind.INVALID_CHARACTERS, "invalid_characters",
                 id="invisible"),
    pytest.param(_history("0"), FieldKind.OUT_OF_RANGE, "out_of_range", id="out-of-range"),
    pytest.param(_new_user(device_class="fridge"), FieldKind.INVALID_VALUE, "invalid_value", id="invalid-value"),
]


def _invalid(model, body) -> InvalidField:
    with pytest.raises(InvalidField) as raised:
        parse_model(model, body)
    return raised.value


@pytest.mark.parametrize(("case", "kind", "key"), CASES)
def test_each_kind_and_its_catalogue_entry(case, kind, key):
    error = _invalid(*case)
    assert (error.extra["kind"], error.detail_key) == (kind.value, FIELD_KEYS + key)


def test_the_cases_cover_every_kind():
    assert {case.values[1] for case in CASES} == set(FieldKind)


@pytest.mark.parametrize(("case", "kind", "key"), CASES)
def test_the_message_plays_no_part(case, kind, key):
    model, body = case
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    error = raised.value.errors(include_url=False)[0]
    assert field_rule({**error, "msg": MISLEADING}) == field_rule(error)


def _refused_as(kind: FieldKind, rule: str):
    def check(value: str) -> str:
        raise field_refusal(kind, rule, MISLEADING)
    return check


class Declared(BaseModel):
    name: Annotated[str, AfterValidator(_refused_as(FieldKind.INVALID_CHARACTERS, "invalid_characters"))]


def _refused_plainly(value: str) -> str:
    raise ValueError(MISLEADING)


class Undeclared(BaseModel):
    name: Annotated[str, AfterValidator(_refused_plainly)]


def test_a_validator_gets_its_declared_kind_whatever_its_message_says():
    error = _invalid(Declared, {"name": "anything"})
    assert (error.extra["kind"], error.detail_key) == ("invalid_characters", FIELD_KEYS + "invalid_characters")
    assert error.body()["detail"] == f"name: {MISLEADING}"


def test_a_plain_value_error_is_invalid_value_whatever_its_message_says():
    error = _invalid(Undeclared, {"name": "anything"})
    assert (error.extra["kind"], error.detail_key) == ("invalid_value", FIELD_KEYS + "invalid_value")


@pytest.mark.parametrize("kind", list(FieldKind))
def test_a_refusal_reports_its_kind_as_the_pydantic_type(kind):
    class Refused(BaseModel):
        name: Annotated[str, AfterValidator(_refused_as(kind, "invalid_value"))]

    with pytest.raises(ValidationError) as raised:
        Refused(name="anything")
    assert raised.value.errors()[0]["type"] == kind.value
    assert _invalid(Refused, {"name": "anything"}).extra["kind"] == kind.value
