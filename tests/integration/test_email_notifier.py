"""The email notifier against a real local SMTP server (aiosmtpd): the message's parts and plot, and how
SMTP answers are classified (4xx retried, 5xx final), without the password in any error."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aiops.engine.messages import build_message
from aiops.errors import DeliveryError
from aiops.plugins import NOTIFIERS, build
from aiops.testing import incident_record
from tests.servers import free_port

PASSWORD = "smtp-pa55word-secret"


class Handler:
    """Accepts mail, or answers what the test scripted for RCPT/DATA."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []
        self.rcpt_answer: str | None = None
        self.data_answer: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer:
            return self.data_answer
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right-password"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection chatter
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def message(event: str = "firing") -> Any:
    row = {
        "id": 3,
        "fingerprint": "fpmail0123456789abcdef01",
        "check_name": "churn-model",
        "state": "firing",
        "severity": "warning",
        "summary": "input drift on 2 of 5 features",
        "labels": {"model": "churn"},
        "opened_at": 1_700_000_000.0,
        "evidence": {
            "findings": [
                {
                    "detector": "ks",
                    "evidence": {
                        "columns": {
                            "age": {"test": "ks", "statistic": 0.4, "p_value": 1e-9, "drift": True},
                            "tenure": {"test": "ks", "statistic": 0.2, "p_value": 1e-3, "drift": True},
                            "plan": {"test": "chi2", "statistic": 0.01, "p_value": 0.8, "drift": False},
                        }
                    },
                }
            ]
        },
        "attempts": 0,
        "rung": 0,
    }
    return build_message(
        event, incident_record(**row), "retrain suggested", dedup_key=f"fp:3:{event}", external_url="https://aiops.example.com"
    )


def notifier(port: int, **extra: Any) -> Any:
    params = {
        "host": "127.0.0.1",
        "port": port,
        "from": "aiops@example.com",
        "to": ["oncall@example.com"],
        "starttls": False,
        "timeout": "3s",
        **extra,
    }
    return build(NOTIFIERS, "email", params)


def test_email_has_text_html_and_inline_plot(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    delivery = notifier(port).send(message())
    assert delivery.status == 250
    [mail] = handler.messages
    assert mail["Subject"] == "[FIRING] churn-model: input drift on 2 of 5 features"
    assert mail["X-Aiops-Dedup-Key"] == "fp:3:firing" and mail["To"] == "oncall@example.com"
    assert handler.envelopes[0].rcpt_tos == ["oncall@example.com"]
    text = mail.get_body(("plain",)).get_content()
    assert "age: ks=0.4" in text and "https://aiops.example.com/api/v1/incidents/3" in text
    html_part = mail.get_body(("html",))
    assert "<table" in html_part.get_content() and "cid:" in html_part.get_content()
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smtp_4xx_is_retried_and_5xx_is_final(smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.data_answer = "451 4.3.0 try again later"
    with pytest.raises(DeliveryError) as soft:
        notifier(port).send(message())
    assert soft.value.recoverable and soft.value.reason == "smtp_451"
    handler.data_answer = None
    handler.rcpt_answer = "550 5.1.1 no such user"
    with pytest.raises(DeliveryError) as hard:
        notifier(port).send(message())
    assert not hard.value.recoverable and "550" in str(hard.value)


def test_connection_refused_is_retried() -> None:
    with pytest.raises(DeliveryError) as info:
        notifier(free_port()).send(message())
    assert info.value.recoverable and info.value.reason == "connection"


def test_password_never_leaks(smtp: tuple[Handler, int], tmp_path: Any) -> None:
    _handler, port = smtp
    with pytest.raises(DeliveryError) as no_tls:  # refuses to send a password in clear by default
        notifier(port, username="aiops", password=PASSWORD).send(message())
    assert no_tls.value.reason == "no_tls" and PASSWORD not in str(no_tls.value)
    with pytest.raises(DeliveryError) as denied:
        notifier(port, username="aiops", password=PASSWORD, require_tls=False).send(message())
    assert denied.value.reason == "auth" and not denied.value.recoverable
    assert PASSWORD not in str(denied.value) + repr(denied.value)
    secret_file = tmp_path / "pw"
    secret_file.write_text("right-password\n")
    ok = notifier(port, username="aiops", password_file=str(secret_file), require_tls=False).send(message())
    assert ok.status == 250
