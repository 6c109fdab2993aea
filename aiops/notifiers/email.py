"""Email notifier over SMTP: a plain-text and an HTML part, with the plot inline when there is one."""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.durations import Duration
from aiops.errors import AiopsError, DeliveryError
from aiops.notifiers._http import color_of, facts, group_lines, link_list
from aiops.plugins import Notifier
from aiops.redact import redact
from aiops.signing import check_one_secret, load_secret
from aiops.types import Delivery, Message


class EmailParams(BaseModel):
    host: str = Field(description="SMTP server host")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 submission, 465 TLS, 25 relay)")
    sender: str = Field(alias="from", description="From address")
    to: list[str] = Field(min_length=1, description="recipient addresses")
    username: str | None = Field(None, description="SMTP login")
    password: str | None = Field(None, description="SMTP password (prefer password_file or ${ENV})")
    password_file: str | None = Field(None, description="file holding the SMTP password")
    starttls: bool = Field(True, description="upgrade with STARTTLS (ignored with tls: true)")
    tls: bool = Field(False, description="implicit TLS from the first byte (port 465)")
    require_tls: bool = Field(True, description="refuse to send a password over a connection without TLS")
    timeout: Duration = Field(15.0, gt=0, description="connect/command timeout")
    plot: bool = Field(True, description="embed a small PNG plot of the series or the drifted features")
    subject_prefix: str = Field("", description="prepended to every subject")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_password(self) -> EmailParams:
        check_one_secret(self.password, self.password_file, "password")
        return self


class EmailNotifier(Notifier):
    """Email through any SMTP server: text and HTML alternatives, the plot as an inline image.

    Why SMTP answers are classified: 4xx replies (greylisting, mailbox busy), timeouts and refused
    connections are temporary and retried by the outbox; 5xx replies (unknown recipient, authentication
    refused) will not change on retry and are final. The password never appears in an error.
    """

    Params: ClassVar[type[BaseModel]] = EmailParams
    params: EmailParams

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return [{"host": "127.0.0.1", "sender": "aiops@example.org", "to": ["oncall@example.org"]}]

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.receiver = f"email {self.params.host}:{self.params.port}"
        self.min_interval = 0.0

    def _secrets(self, password: str | None) -> list[str]:
        return [s for s in (self.params.password, password) if s]

    def _fail(self, text: str, password: str | None, **kwargs: Any) -> DeliveryError:
        return DeliveryError(redact(f"{self.receiver}: {text}", self._secrets(password)), **kwargs)

    def render(self, message: Message) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"{self.params.subject_prefix}{message.title}"
        msg["From"] = self.params.sender
        msg["To"] = ", ".join(self.params.to)
        msg["Date"] = formatdate(localtime=False)
        # A resend of the same outbox message keeps its Message-ID, by which mail systems drop the copy.
        msg["Message-ID"] = (
            stable_msgid(message.idempotency_key) if message.idempotency_key else make_msgid(domain="aiops")
        )
        msg["X-Aiops-Dedup-Key"] = message.dedup_key
        inc = message.incident
        # Threading: every message of one incident refers to the same root id, so mail clients group them.
        msg["References"] = f"<aiops-incident-{inc.fingerprint}-{inc.id}@aiops>"
        members = group_lines(message)
        lines = [message.title, "", *(f"- {m}" for m in members)] if members else [message.title, "", message.text]
        lines.append("")
        lines += [f"{name}: {value}" for name, value in facts(message)]
        links = link_list(message)
        if links:
            lines.append("")
            lines += [f"{label}: {url}" for label, url in links]
        msg.set_content("\n".join(lines))
        rows = "".join(
            f"<tr><th align='left' valign='top'>{html.escape(n)}</th>"
            f"<td>{html.escape(v).replace(chr(10), '<br>')}</td></tr>"
            for n, v in facts(message)
        )
        buttons = " ".join(f"<a href='{html.escape(url)}'>{html.escape(label)}</a>" for label, url in links)
        png = None
        if self.params.plot and not members:
            from aiops.messages import render_plot

            png = render_plot(message)
        cid = make_msgid(domain="aiops")
        img = f"<p><img src='cid:{cid[1:-1]}' alt='plot'></p>" if png else ""
        body = (
            f"<html><body><h2 style='border-left:6px solid {color_of(message)};padding-left:8px'>"
            f"{html.escape(message.title)}</h2>"
            f"<p>{html.escape(message.text if not members else chr(10).join(members)).replace(chr(10), '<br>')}</p>"
            f"<table cellpadding='4'>{rows}</table>{img}<p>{buttons}</p></body></html>"
        )
        msg.add_alternative(body, subtype="html")
        if png:
            html_part = msg.get_body(("html",))
            if isinstance(html_part, EmailMessage):
                html_part.add_related(png, maintype="image", subtype="png", cid=cid, filename="plot.png")
        return msg

    def send(self, message: Message) -> Delivery:
        try:
            secret = load_secret(self.params.password, self.params.password_file)
        except AiopsError as exc:
            raise DeliveryError(str(exc), recoverable=False, reason="secret_file") from None
        password = secret.decode() if secret else None
        email = self.render(message)
        p = self.params
        try:
            smtp: smtplib.SMTP
            if p.tls:
                smtp = smtplib.SMTP_SSL(p.host, p.port, timeout=p.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(p.host, p.port, timeout=p.timeout)
            with smtp:
                smtp.ehlo()
                secure = p.tls
                if not p.tls and p.starttls and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                    secure = True
                if p.username and password:
                    if p.require_tls and not secure:
                        raise self._fail(
                            "server offers no TLS; refusing to send the password in clear (require_tls: false "
                            "allows it)",
                            password,
                            recoverable=False,
                            reason="no_tls",
                        )
                    smtp.login(p.username, password)
                refused = smtp.send_message(email)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise self._fail(
                f"all recipients refused (SMTP {codes})",
                password,
                recoverable=all(400 <= c < 500 for c in codes),
                reason="recipients",
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise self._fail(
                f"authentication failed (SMTP {exc.smtp_code})", password, recoverable=False, reason="auth"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise self._fail(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}",
                password,
                recoverable=400 <= exc.smtp_code < 500,
                reason=f"smtp_{exc.smtp_code}",
            ) from None
        except (smtplib.SMTPServerDisconnected, TimeoutError) as exc:
            raise self._fail(
                f"connection problem: {type(exc).__name__}", password, recoverable=True, reason="connection"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}", password, recoverable=True, reason="connection") from None
        detail = f"refused by {len(refused)} of {len(p.to)} recipients" if refused else "accepted"
        return Delivery(receiver=self.receiver, status=250, detail=detail)


def stable_msgid(idempotency_key: str) -> str:
    """A Message-ID that is the same for every delivery attempt of one message (a hash: outbox keys hold
    characters that are not allowed in a Message-ID).

    >>> stable_msgid("abc:1:firing/7") == stable_msgid("abc:1:firing/7") != stable_msgid("abc:1:firing/8")
    True
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<aiops-{digest}@aiops>"


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
