"""Who may read and who may change things through the web console: sessions, roles and CSRF tokens.

Rules: reads are open when no ``server.ui_read_token`` is set and the daemon listens on a loopback address;
otherwise reading needs a session opened with the read token or the write token (``server.token``). Every
mutation needs a session opened with the write token; without a configured write token the console changes
nothing, like the API.

Why signed cookies and no server-side session table: the console must not add state to the store (nor a
migration) to let a person log in, and replicas behind one proxy must accept each other's sessions. The
signing key is derived from the write token, so rotating the token ends every session, and a holder of the
read token alone cannot forge a write session. Without a write token the key is random per process (a
restart asks read-token holders to log in again; nothing else is lost).

CSRF: a signed double-submit token. A random ``aiops_csrf`` cookie (HttpOnly, SameSite=Strict) is set on the
first page; every form carries ``HMAC(key, cookie)``; a POST whose form token does not match its cookie is
refused (403). SameSite=Strict already keeps other sites' forms from carrying the session; the token also
covers old browsers and same-site attackers (another service on a sibling subdomain).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final

from aiops.http.tokens import tokens_match

SESSION_COOKIE: Final = "aiops_session"
CSRF_COOKIE: Final = "aiops_csrf"
SESSION_SECONDS: Final = 12 * 3600  # one on-call shift; after that, log in again


class Role(enum.IntEnum):
    """What a request may do; ordered, so ``role >= Role.READ`` reads."""

    NONE = 0
    READ = 1
    WRITE = 2


@dataclass(frozen=True)
class ConsoleAuth:
    """The console's tokens and how the listener is bound, with the key that signs its cookies."""

    write_token: str | None
    read_token: str | None
    loopback: bool
    key: bytes

    @classmethod
    def create(cls, write_token: str | None, read_token: str | None, loopback: bool) -> ConsoleAuth:
        if write_token:
            key = hmac.new(write_token.encode(), b"aiops-console-session-v1", hashlib.sha256).digest()
        else:
            key = secrets.token_bytes(32)
        return cls(write_token or None, read_token or None, loopback, key)

    @property
    def open_reads(self) -> bool:
        """Reads need no session: no read token is configured and only this machine can connect."""
        return self.read_token is None and self.loopback

    def role_for_token(self, given: str) -> Role:
        """The role a login with ``given`` opens (NONE for a wrong token); both comparisons always run."""
        raw = given.strip().encode("utf-8", "surrogatepass")
        write = self.write_token is not None and tokens_match(raw, self.write_token)
        read = self.read_token is not None and tokens_match(raw, self.read_token)
        return Role.WRITE if write else Role.READ if read else Role.NONE

    def new_session(self, role: Role, now: float | None = None) -> str:
        """Cookie value ``role.expires.nonce.signature``."""
        expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
        body = f"{int(role)}.{expires}.{secrets.token_hex(8)}"
        return f"{body}.{self._sign('session', body)}"

    def session_role(self, cookie: str | None, now: float | None = None) -> Role:
        """The role of a session cookie; NONE when absent, malformed, forged or expired."""
        if not cookie or len(cookie) > 200:
            return Role.NONE
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign("session", body).encode()):
            return Role.NONE
        role_text, expires_text, _nonce = [*body.split("."), "", "", ""][:3]
        if not role_text.isdigit() or not expires_text.isdigit():
            return Role.NONE
        if int(expires_text) < (now if now is not None else time.time()):
            return Role.NONE
        role = int(role_text)
        if role == Role.WRITE and self.write_token is None:
            return Role.NONE  # the write token was removed since: the session cannot write any more
        return Role(role) if role in (Role.READ, Role.WRITE) else Role.NONE

    def read_role(self, session: Role) -> Role:
        """The role a page view gets: the session's, or READ when reads are open."""
        return max(session, Role.READ) if self.open_reads else session

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_hex(16)

    def csrf_token(self, csrf_cookie: str) -> str:
        """The value forms carry for this browser's CSRF cookie."""
        return self._sign("csrf", csrf_cookie)

    def csrf_ok(self, csrf_cookie: str | None, submitted: str | None) -> bool:
        if not csrf_cookie or not submitted or len(submitted) > 200:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_token(csrf_cookie).encode())

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
