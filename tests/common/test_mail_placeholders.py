"""No message of the catalogue leaves a `{...}` placeholder unfilled (issue 16 item 15): every
place that renders a mail text (localized_message, or i18n.text of a mail.* key) is found in the
product's source and rendered in every language with the parameters it passes, and every mail
text with placeholders is rendered somewhere."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from common import i18n
from common.mail.message import Link
from common.mail.notifier import localized_message
from tests.support import product

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = product.packages()
UNFILLED = re.compile(r"\{\w+\}")
MESSAGE_ARGS = {"user_uuid", "email", "locale", "texts"}


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call) and (getattr(node.func, "id", None) == name
                                                   or getattr(node.func, "attr", None) == name):
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def _constant(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keywords(call: ast.Call) -> dict[str, ast.AST]:
    assert all(k.arg for k in call.keywords), "a ** argument: the test cannot tell what it fills"
    return {k.arg: k.value for k in call.keywords}


def _texts_passed_on(where: str) -> set[str]:
    """The literal `texts` a file hands on to a localized_message call that names them by a variable:
    every `texts="..."` keyword of a call to another function, and every default of a `texts` parameter,
    in that file."""
    tree = ast.parse((ROOT / where.split(":")[0]).read_text())
    found = {value for node in ast.walk(tree) if isinstance(node, ast.Call)
             and "localized_message" not in (getattr(node.func, "id", None), getattr(node.func, "attr", None))
             for keyword in node.keywords if keyword.arg == "texts" and (value := _constant(keyword.value))}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            defaults = zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
            found |= {value for arg, default in defaults if arg.arg == "texts" and (value := _constant(default))}
    return found


def message_calls() -> list[tuple[str, str, str | None, list[str]]]:
    """(where, event, texts, the names of the parameters it passes) of every localized_message call; a
    call whose `texts` is a variable counts once for each literal its file hands on (_texts_passed_on)."""
    calls = []
    for where, call in _calls("localized_message"):
        if not call.args:
            continue  # the definition's own recursion, if any
        keywords = _keywords(call)
        event = _constant(call.args[0])
        assert event, f"{where}: the event is not a literal"
        names = sorted(keywords.keys() - MESSAGE_ARGS)
        if "texts" not in keywords:
            calls.append((where, event, None, names))
        elif (texts := _constant(keywords["texts"])) is not None:
            calls.append((where, event, texts, names))
        else:
            passed = _texts_passed_on(where)
            assert passed, f"{where}: `texts` is a variable that no literal in its file fills"
            calls.extend((where, event, value, names) for value in sorted(passed))
    return calls


def text_calls() -> list[tuple[str, str, list[str]]]:
    """(where, key, parameter names) of every i18n.text call with a literal mail.* key."""
    return [(where, key, sorted(_keywords(call)))
            for where, call in _calls("text")
            if call.args and (key := _constant(call.args[0])) and key.startswith("mail.")]


def test_every_mail_message_is_rendered_with_all_its_placeholders_filled():
    calls = message_calls()
    assert len(calls) >= 10
    for where, event, texts, names in calls:
        for language in i18n.LANGUAGES:
            message = localized_message(event, user_uuid="u", email="someone@example.com", locale=language,
                                        texts=texts, **{name: "value" for name in names}).render(None)
            for part in (message.subject, message.body):
                assert not UNFILLED.search(part), f"{where} ({language}): {part!r}"


def test_every_mail_fragment_is_rendered_with_all_its_placeholders_filled():
    for where, key, names in text_calls():
        for language in i18n.LANGUAGES:
            rendered = i18n.text(key, language, **{name: "value" for name in names})
            assert not UNFILLED.search(rendered), f"{where} ({language}): {rendered!r}"


def test_every_mail_text_of_the_catalogue_is_sent_by_some_call():
    rendered = {f"mail.{texts or event}.{part}" for _, event, texts, _ in message_calls()
                for part in ("subject", "body")}
    rendered |= {key for _, key, _ in text_calls()}
    with_placeholders = {key for key, value in i18n.CATALOGUES[i18n.DEFAULT].items()
                         if key.startswith("mail.") and UNFILLED.search(value)}
    subjects = {key for key in i18n.CATALOGUES[i18n.DEFAULT] if key.startswith("mail.") and key.endswith(".subject")}
    assert sorted((with_placeholders | subjects) - rendered) == []


def test_the_verification_mail_names_the_address_in_both_languages():
    for language, words in (("en", "to confirm someone@example.com as"), ("ja", "someone@example.com を citylogin")):
        message = localized_message("verify_email", user_uuid="u", email="someone@example.com", locale=language,
                                    link=Link("verify", "abc")).render("https://login.example.org")
        assert "https://login.example.org/#verify=abc" in message.body
        assert words in message.body, message.body
