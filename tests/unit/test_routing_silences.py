"""Matchers, routes and the ``aiops silence --match`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aiops.cli import cli
from aiops.config.notifications import RouteConfig, SilenceConfig
from aiops.engine.routing import group_key, route, route_matches
from aiops.engine.silences import active_silences, message_labels, silenced_by
from aiops.matchers import parse_matcher
from aiops.store.store import Store


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ("check=latency", {"check": "latency"}, True),
        ("check=latency", {"check": "latency2"}, False),
        ("env!=dev", {}, True),  # a missing label is the empty string
        ('model=~"rank(er|ing)"', {"model": "ranker"}, True),
        ("model=~rank", {"model": "ranker"}, False),  # anchored, like Alertmanager
        ("model!~rank.*", {"model": "churn"}, True),
        ("team = ml", {"team": "ml"}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit


@pytest.mark.parametrize("bad", ["noop", "=x", "a=~(", "1a=b"])
def test_bad_matchers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(bad)


def test_message_labels_include_check_severity_and_event() -> None:
    payload = {
        "event": "firing",
        "incident": {
            "check": "c",
            "severity": "critical",
            "state": "firing",
            "fingerprint": "f",
            "labels": {"model": "m"},
        },
    }
    assert message_labels(payload) == {
        "model": "m",
        "check": "c",
        "alertname": "c",
        "severity": "critical",
        "state": "firing",
        "fingerprint": "f",
        "event": "firing",
    }


def test_first_matching_route_wins_unless_continue() -> None:
    routes = [
        RouteConfig.model_validate({"match": {"team": "ml"}, "receivers": ["chat"]}),
        RouteConfig.model_validate({"severity": ["critical"], "receivers": ["pager"]}),
    ]
    assert set(route(routes, [], {"team": "ml", "severity": "critical"})) == {"chat"}
    routes[0] = RouteConfig.model_validate({"match": {"team": "ml"}, "receivers": ["chat"], "continue": True})
    assert set(route(routes, [], {"team": "ml", "severity": "critical"})) == {"chat", "pager"}
    assert set(route(routes, ["webhook"], {"team": "data", "severity": "info"})) == {"webhook"}


def test_group_key_uses_the_group_by_labels() -> None:
    r = RouteConfig.model_validate({"receivers": ["x"], "group_by": ["check", "env"]})
    assert group_key(2, r, {"check": "c", "env": "prod", "model": "m"}) == "route2:check=c,env=prod"
    assert group_key(0, RouteConfig.model_validate({"receivers": ["x"]}), {}) is None


def test_config_silences_expire() -> None:
    cfg = SilenceConfig.model_validate({"matchers": ["check=c"], "until": "2023-11-14T22:13:20Z"})
    assert cfg.until == 1_700_000_000.0
    labels = {"check": "c"}
    assert silenced_by(active_silences([], [cfg], 1_699_999_999.0), labels) is not None
    assert silenced_by(active_silences([], [cfg], 1_700_000_000.0), labels) is None


def test_cli_silence_with_matchers_list_and_expire(tmp_path: Path) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text(f"store: {{url: 'sqlite:///{tmp_path}/aiops.db'}}\n")
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "silence",
            "-c",
            str(config),
            "--match",
            "check=latency",
            "-m",
            "env!=dev",
            "--for",
            "2h",
            "--comment",
            "deploy",
        ],
    )
    assert made.exit_code == 0, made.output
    assert 'silence 1 created: check="latency" env!="dev" for 2h' in made.output  # stored normalised
    listed = runner.invoke(cli, ["silence", "-c", str(config), "--list"])
    assert 'check="latency" env!="dev"' in listed.output and "(deploy)" in listed.output
    store = Store(f"sqlite:///{tmp_path}/aiops.db")
    [row] = store.list_silences()
    assert 7190 < row.ends_at - row.starts_at <= 7200
    expired = runner.invoke(cli, ["silence", "-c", str(config), "--expire", "1"])
    assert "silence 1 expired" in expired.output
    assert "no active silences" in runner.invoke(cli, ["silence", "-c", str(config), "--list"]).output
    bad = runner.invoke(cli, ["silence", "-c", str(config), "--match", "nonsense"])
    assert bad.exit_code != 0
    usage = runner.invoke(cli, ["silence", "-c", str(config)])
    assert usage.exit_code != 0 and "INCIDENT_ID" in usage.output


def test_route_match_is_read_as_equality_matchers() -> None:
    r = RouteConfig.model_validate({"match": {"team": 'ml "core"'}, "matchers": ['env!="dev"'], "receivers": ["x"]})
    assert r.matchers == ['env!="dev"', 'team="ml \\"core\\""'] and r.match == {}
    assert route_matches(r, {"team": 'ml "core"', "env": "prod"})
    assert not route_matches(r, {"team": "ml", "env": "prod"})
    # Alertmanager's rule: a missing label is an empty one, so an empty value also takes a message without it
    assert route_matches(RouteConfig.model_validate({"match": {"team": ""}, "receivers": ["x"]}), {})
