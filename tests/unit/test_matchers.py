"""The one label-matcher grammar (Alertmanager's), as silences, routes and the alertmanager source read it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aiops.config.notifications import RouteConfig, SilenceConfig
from aiops.matchers import Matcher, MatchOp, normalise, parse_matcher, parse_matchers
from aiops.plugins import SOURCES, build

# (what people wrote, in any spelling that validated before the grammar was shared) -> Alertmanager's form
SPELLINGS = [
    ('team="ml"', ['team="ml"']),
    ("team=ml", ['team="ml"']),  # unquoted: the old silence/route spelling
    ("team = ml", ['team="ml"']),
    ("team='ml'", ['team="ml"']),  # single quotes: the old silence spelling
    ('env!="dev"', ['env!="dev"']),
    ('model=~"rank(er|ing)"', ['model=~"rank(er|ing)"']),
    ("model!~rank.*", ['model!~"rank.*"']),
    ('msg="say \\"hi\\""', ['msg="say \\"hi\\""']),  # escaped quote inside a quoted value
    ('n=~"\\d+"', ['n=~"\\\\d+"']),  # a backslash that is no escape is kept
    ("note=two words", ['note="two words"']),
    ("app.kubernetes-io=x", ['app.kubernetes-io="x"']),  # label names with . and - (silences took them)
    ("empty=", ['empty=""']),
    ('{check="latency", env!~"dev|test"}', ['check="latency"', 'env!~"dev|test"']),
    ('{a="x,y",b=c,}', ['a="x,y"', 'b="c"']),  # commas inside quotes; a trailing comma
]


@pytest.mark.parametrize(("text", "normal"), SPELLINGS)
def test_every_spelling_normalises_to_alertmanagers(text: str, normal: list[str]) -> None:
    assert normalise([text]) == normal
    assert normalise(normal) == normal  # the normal form is a fixed point
    assert parse_matchers(normal) == parse_matchers(text)


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('{check="latency", env!="dev"}', {"check": "latency", "env": "prod"}, True),
        ('{check="latency", env!="dev"}', {"check": "latency", "env": "dev"}, False),
        ('env!="dev"', {}, True),  # a missing label is the empty string
        ('env=""', {}, True),
        ('model=~"rank"', {"model": "ranker"}, False),  # anchored
        ('model!~"rank.*"', {"model": "churn"}, True),
        ('n=~"\\d+"', {"n": "42"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], hit: bool) -> None:
    assert all(m.matches(labels) for m in parse_matchers(text)) is hit


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("noop", "matcher 'noop': expected"),
        ("=x", "matcher '=x'"),
        ("1a=b", "matcher '1a=b'"),
        ("team~ml", "matcher 'team~ml'"),
        ('a=~"("', "invalid regular expression"),
        ('{a="b", c}', "matcher ' c'"),  # the bad member of a group is named
        ('{a="b"', "must end with '}'"),
    ],
)
def test_bad_matchers_name_the_matcher(bad: str, said: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_matchers([bad])
    assert said in str(info.value)


def test_a_matcher_prints_as_it_parses() -> None:
    m = Matcher("msg", MatchOp.EQUAL, 'line "one"\nline \\two')
    assert parse_matcher(str(m)) == m


CONFIGS: list[tuple[str, Any]] = [
    ("route", lambda ms: RouteConfig.model_validate({"matchers": ms, "receivers": ["r"]}).matchers),
    ("silence", lambda ms: SilenceConfig.model_validate({"matchers": ms}).matchers),
    ("push filter", lambda ms: build(SOURCES, "alertmanager", {"matchers": ms}).params.matchers),
]


@pytest.mark.parametrize(("where", "read"), CONFIGS)
def test_routes_silences_and_push_filters_share_the_grammar(where: str, read: Any) -> None:
    for text, normal in SPELLINGS:
        assert read([text]) == normal, (where, text)
    with pytest.raises((ValidationError, ValueError), match="team~ml"):
        read(["team~ml"])


def test_an_empty_group_cannot_silence_everything() -> None:
    with pytest.raises(ValidationError, match="at least one matcher"):
        SilenceConfig.model_validate({"matchers": ["{}"]})
