"""No ``Any`` and no raw row (``Row = dict[str, Any]``) in the public signatures of aiops.engine and
aiops.store: what the store hands the engine is a typed record (Incident, Action, OutboxMessage,
Transition), so mypy checks every field read above the store.

Read statically (ast), so the test needs no imports and sees the annotations as written.

``JSON_PAYLOADS`` is the allowed exception: functions whose values are rendered notification payloads,
which are JSON by contract (they round-trip through the outbox's JSON column and go to third-party
receivers as is). ``NOT_YET_TYPED`` lists what is still untyped, each with its reason; the test fails when
one of them is fixed, so the list can only shrink.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aiops/engine", "aiops/store")
UNTYPED = re.compile(r"\b(Any|Row)\b")

JSON_PAYLOADS = {
    "aiops/engine/messages.py:build_message",  # details: extra JSON fields of the message
    "aiops/engine/messages.py:resolution",
    "aiops/engine/messages.py:resolved_summary",
    "aiops/engine/messages.py:evidence_lines",  # evidence: detectors' JSON findings
    "aiops/engine/messages.py:top_features",
    "aiops/engine/outbox.py:group_payload",
    "aiops/engine/routing.py:flapping_payload",
    "aiops/engine/routing.py:flap_closed_payload",
    "aiops/engine/silences.py:message_labels",
    "aiops/engine/flapping.py:start_episode",
    "aiops/store/verdicts.py:Verdict.to_dict",
}

NOT_YET_TYPED = {
    # plugins and settings are duck-typed (third-party classes, reloadable config sections)
    "aiops/engine/routing.py:enqueue_message",
    # a detector's state_dict is whatever the plugin defines (numeric arrays inside a JSON skeleton)
    "aiops/store/state_codec.py:encode_state",
    "aiops/store/state_codec.py:decode_state",
    # a problem's evidence is free JSON, like a finding's
    "aiops/engine/checks.py:scheduler_problem",
}


def untyped_signatures() -> dict[str, list[str]]:
    """``path:qualname`` of every public function or method whose annotations mention Any or Row."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            _visit(ast.parse(path.read_text()).body, rel, "", found)
    return found


def _visit(body: list[ast.stmt], rel: str, prefix: str, found: dict[str, list[str]]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            _visit(node.body, rel, f"{prefix}{node.name}.", found)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations = [p.annotation for p in params if p is not None and p.annotation is not None]
            if node.returns is not None:
                annotations.append(node.returns)
            bad = [ast.unparse(a) for a in annotations if UNTYPED.search(ast.unparse(a))]
            if bad:
                found[f"{rel}:{prefix}{node.name}"] = bad


def _public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


def test_engine_and_store_signatures_have_no_any_beyond_the_allow_lists() -> None:
    found = untyped_signatures()
    new = {k: v for k, v in found.items() if k not in JSON_PAYLOADS | NOT_YET_TYPED}
    assert new == {}, "typed records or JsonObject instead of Any/Row in public signatures"
    fixed = (JSON_PAYLOADS | NOT_YET_TYPED) - set(found)
    assert fixed == set(), "typed now: take these off the allow-lists"


def test_records_are_what_the_store_returns_for_incidents_actions_and_messages() -> None:
    """The converted store methods really are typed (not merely absent from the scan)."""
    source = (ROOT / "aiops/store/store.py").read_text()
    for method, record in [
        ("get_incident", "Incident | None"),
        ("list_incidents", "list[Incident]"),
        ("get_action", "Action | None"),
        ("list_actions", "list[Action]"),
        ("list_notifications", "list[OutboxMessage]"),
        ("pending_notifications", "list[OutboxMessage]"),
    ]:
        assert re.search(rf"def {method}\((?:[^()]|\n)*?\)\s*->\s*{re.escape(record)}:", source), method
