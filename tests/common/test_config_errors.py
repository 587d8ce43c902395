"""A bad setting is a sentence, not a regular expression or a traceback (issue 65, item 7): every setting
checked by a pattern names its variable and what a good value looks like, and an app made from the
environment (gunicorn's --check-config, `flask run`) exits with that one line. The production guide's
snippet that shows it runs in tests/docs/test_check_config_snippets.py."""
from __future__ import annotations

import pytest

from citylogin.app import create_app
from common.config import GOOD_VALUES, ConfigError, Settings, env_name, load_settings

# A value each pattern refuses, as an operator might type it.
REFUSED = {"public_url": ["login.example.com", "https://login.example.com/?next=x", "https://login.example.com/#x",
                          "ftp://login.example.com", "https://login example.com"]}


def patterned() -> list[str]:
    """Every setting pydantic checks by a regular expression."""
    return sorted(name for name, info in Settings.model_fields.items()
                  if any(getattr(rule, "pattern", None) for rule in info.metadata))


def pattern_of(name: str) -> str:
    return next(rule.pattern for rule in Settings.model_fields[name].metadata if getattr(rule, "pattern", None))


def test_every_pattern_has_its_sentence_and_a_refused_value():
    assert patterned() == sorted(GOOD_VALUES) == sorted(REFUSED)


@pytest.mark.parametrize(("name", "value"), [(name, value) for name in sorted(REFUSED) for value in REFUSED[name]])
def test_a_value_its_pattern_refuses_is_a_sentence_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={env_name(name): value})
    message = str(refused.value)
    assert message == f"invalid configuration: {env_name(name)} {GOOD_VALUES[name]}"
    assert pattern_of(name) not in message and "pattern" not in message and "e.g. " in message


def test_a_good_value_passes_its_pattern():
    assert load_settings(environ={"CITYLOGIN_PUBLIC_URL": "https://login.example.com/id"}).public_url \
        == "https://login.example.com/id"


def test_an_app_made_from_the_environment_exits_with_the_sentence(monkeypatch):
    """What gunicorn --check-config, `flask run` and a service's `python -m` load: one line, no traceback."""
    monkeypatch.setenv("CITYLOGIN_PUBLIC_URL", "login.example.com")
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert stopped.value.code == f"citylogin: invalid configuration: CITYLOGIN_PUBLIC_URL {GOOD_VALUES['public_url']}"


def test_an_app_made_with_a_tests_settings_raises_as_it_is():
    with pytest.raises(ConfigError, match="CITYLOGIN_PUBLIC_URL must be"):
        create_app({"public_url": "login.example.com"})
