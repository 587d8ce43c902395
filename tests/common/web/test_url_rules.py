"""URL builders compiled once per process (common.web.url_rules): every rule of the all-in-one app builds
the URL werkzeug's own rule builds, for any values, and a second app takes the first one's builders."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.routing import Map, Rule

from citylogin.app import create_app
from common.web.url_rules import BuilderCachingRule

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
_QUERY = st.dictionaries(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=5),
                         _TEXT, max_size=3)


def _plain_twin(rule: Rule) -> Rule:
    """The same rule on a map of werkzeug's own rules (the app's converters)."""
    twin = Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods, defaults=rule.defaults)
    Map([twin], converters=rule.map.converters, strict_slashes=rule.map.strict_slashes,
        merge_slashes=rule.map.merge_slashes)
    return twin


def _value(rule: Rule, argument: str, drawn: str) -> object:
    converter = type(rule._converters[argument]).__name__
    uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    return {"IntegerConverter": len(drawn), "UUIDConverter": uuid}.get(converter, drawn)


def test_every_rule_of_two_apps_builds_what_werkzeugs_own_rule_builds(base_config):
    first, second = create_app(dict(base_config)), create_app(dict(base_config))
    rules = [rule for rule in first.url_map.iter_rules() if isinstance(rule, BuilderCachingRule)]
    assert len(rules) > 100 and len(rules) == len(list(first.url_map.iter_rules()))
    by_text = {(rule.rule, rule.endpoint): rule for rule in second.url_map.iter_rules()}
    shared = [rule for rule in rules if not rule.defaults
              and rule._build.__func__ is by_text[(rule.rule, rule.endpoint)]._build.__func__]
    assert len(shared) == len([rule for rule in rules if not rule.defaults])  # compiled once, in the first app

    twins = [(rule, _plain_twin(rule)) for rule in rules]

    @settings(max_examples=10, deadline=None)
    @given(words=st.lists(_TEXT, min_size=4, max_size=4), query=_QUERY)
    def builds_alike(words: list[str], query: dict[str, str]) -> None:
        for rule, twin in twins:
            values = {name: _value(rule, name, words[i % 4]) for i, name in enumerate(sorted(rule.arguments))}
            extra = {key: value for key, value in query.items() if key not in rule.arguments}
            assert rule.build({**values, **extra}) == twin.build({**values, **extra}), rule.rule
            assert rule.build(values, append_unknown=False) == twin.build(values, append_unknown=False), rule.rule

    builds_alike()


def test_a_rule_with_defaults_is_compiled_for_itself():
    first = BuilderCachingRule("/page/<name>", endpoint="page", defaults={"name": "home"})
    second = BuilderCachingRule("/page/<name>", endpoint="page", defaults={"name": "start"})
    Map([first]), Map([second])
    assert first._build.__func__ is not second._build.__func__
    assert first.build({}) == ("", "/page/home") and second.build({}) == ("", "/page/start")


def test_rules_of_one_text_and_other_converters_build_their_own_urls():
    as_int, as_text = BuilderCachingRule("/n/<int:n>", endpoint="n"), BuilderCachingRule("/n/<n>", endpoint="n")
    Map([as_int]), Map([as_text])
    assert as_int.build({"n": 7}) == ("", "/n/7") and as_text.build({"n": "a b"}) == ("", "/n/a%20b")
