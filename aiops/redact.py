"""Secret redaction for logs, error messages, plans and stored details.

Why: webhook URLs (Slack's ``hooks.slack.com/services/...``), bearer tokens and passwords end up in
exception messages from HTTP libraries, in a command's output, in a config dump. Anything that leaves the
process (a log line, an incident's audit row, a notification) goes through :func:`redact` or
:func:`redact_mapping` first. Known secret *values* are replaced wherever they appear; well-known *shapes*
(``Bearer x``, ``password=x``, URL userinfo, ``?token=x``) are replaced even when the value is not known.

>>> redact("POST https://bob:hunter2@example.com/hook?token=abc&x=1 failed: Bearer eyJhbGci.x.y", [])
'POST https://***@example.com/hook?token=***&x=1 failed: Bearer ***'
>>> redact("connecting with s3cr3t-value", ["s3cr3t-value"])
'connecting with ***'
>>> redact_mapping({"url": "https://hooks.slack.com/services/T0/B0/XyZ", "password": "pw", "retries": 3})
{'url': 'https://hooks.slack.com/services/***', 'password': '***', 'retries': 3}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

MASK = "***"
MIN_SECRET_LEN = 4

_BEARER = re.compile(r"\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# Other schemes (Basic, Token, Digest) only in a header-like context, so "Basic checks" stays readable.
_AUTH_HEADER = re.compile(
    r"""(?P<pre>\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:(?:basic|token|digest|negotiate|bearer)\s+)?)"""
    r"""(?P<val>[^\s"',;]+)""",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    r"""(?P<key>\b[\w-]*(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|private[_-]?key)\b)"""
    r"""(?P<sep>["']?\s*[=:]\s*)(?P<val>"[^"]*"|'[^']*'|[^\s"'&,;]+)""",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s@?#]+)@")
_QUERY_PARAM = re.compile(
    r"(?P<pre>[?&;](?:[\w.\-]*[_\-.])?"
    r"(?:token|key|secret|signature|sig|password|passwd|apikey|auth|credential|x-amz-signature)=)"
    r"(?P<val>[^&#\s\"']*)",
    re.IGNORECASE,
)
# Services whose webhook URL *path* is the credential.
_SECRET_PATH = re.compile(
    r"(?P<pre>\bhttps?://(?:hooks\.slack\.com/(?:services|workflows|triggers)|"
    r"(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks|outlook\.office\.com/webhook|"
    r"[\w.-]+\.webhook\.office\.com/webhookb2|chat\.googleapis\.com/v1/spaces)/)(?P<val>[^\s\"'<>]+)",
    re.IGNORECASE,
)

_SECRET_KEY_PARTS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "credential",
        "credentials",
        "signature",
        "passphrase",
    }
)
_SECRET_KEY_PAIRS = ("api_key", "private_key", "access_key", "secret_key", "webhook_url", "client_secret")
_NOT_SECRET_SUFFIXES = ("file", "path", "env", "header", "name", "type", "expiry", "ttl")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value (at least 4 characters) and every secret-shaped token masked.

    >>> redact("password=hunter2 user=bob")
    'password=*** user=bob'
    >>> redact('{"api_key": "abcd1234", "n": 1}')
    '{"api_key": "***", "n": 1}'
    >>> redact("tokenizer=bert max_tokens=5")  # not secrets
    'tokenizer=bert max_tokens=5'
    >>> redact("Authorization: Basic dXNlcjpwYXNz; Basic checks passed")
    'Authorization: Basic ***; Basic checks passed'
    """
    if not text:
        return text
    out = str(text)
    known = _known(secrets if isinstance(secrets, frozenset) else frozenset(secrets))
    if known.any_of.search(out) is not None:  # one scan says whether any known secret is there at all
        for value in known.longest_first:
            out = out.replace(value, MASK)
    out = _SECRET_PATH.sub(lambda m: m.group("pre") + MASK, out)
    out = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", out)
    out = _QUERY_PARAM.sub(lambda m: m.group("pre") + (MASK if m.group("val") else ""), out)
    out = _BEARER.sub(lambda m: m.group(1) + m.group(2) + MASK, out)
    out = _AUTH_HEADER.sub(lambda m: m.group("pre") + MASK, out)
    out = _KEY_VALUE.sub(_mask_key_value, out)
    return out


@dataclass(frozen=True)
class _Known:
    """Known secret values ready to cut: longest first (a secret that contains another is cut whole), and one
    pattern matching any of them."""

    longest_first: tuple[str, ...]
    any_of: re.Pattern[str]


@functools.lru_cache(maxsize=8)
def _known(secrets: frozenset[object]) -> _Known:
    """Why cached: the daemon redacts every log line with the same registered secrets, and a config's URLs
    make them many (a few per ``url`` parameter, so hundreds with hundreds of http checks). Sorting them and
    trying each with ``str.replace`` on every string cost ~1 ms a line; one compiled alternation scan says in
    ~0.1 ms that none is there, the common case, and the exact longest-first replacement runs only when one is.
    """
    ordered = tuple(
        sorted({s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
    )
    # (?!) never matches: no secrets, nothing to cut
    return _Known(ordered, re.compile("|".join(map(re.escape, ordered)) or "(?!)"))


def _mask_key_value(m: re.Match[str]) -> str:
    val = m.group("val")
    quote = val[0] if val[:1] in ("'", '"') else ""
    return m.group("key") + m.group("sep") + quote + MASK + quote


def redact_url(url: str) -> str:
    """A URL safe to show: userinfo, secret query values and secret-bearing webhook paths masked.

    >>> redact_url("https://u:p@example.com:8443/a?sig=1&page=2")
    'https://***@example.com:8443/a?sig=***&page=2'
    """
    return redact(url)


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, the part that is never secret (used to name a receiver).

    >>> url_origin("https://user:pw@hooks.slack.com/services/T/B/X?x=1")
    'https://hooks.slack.com'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else host


def validate_http_url(value: str) -> str:
    """Pydantic helper: an absolute http(s) URL (the message never repeats the URL, which may be secret)."""
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise ValueError("must be an absolute http:// or https:// URL")
    return text


def url_secrets(url: str) -> list[str]:
    """Substrings of a URL that may be secret, to pass as ``secrets`` to :func:`redact`.

    HTTP libraries quote URLs in pieces (``url: /path?query``), so the whole URL is not enough: the path,
    the query, each query value and the userinfo are listed too.

    >>> url_secrets("https://u:pw12@h.example/p/abcd?token=xyz1")  # doctest: +NORMALIZE_WHITESPACE
    ['https://u:pw12@h.example/p/abcd?token=xyz1', 'u:pw12@h.example/p/abcd?token=xyz1', 'u:pw12', 'pw12',
     '/p/abcd?token=xyz1', '/p/abcd', 'token=xyz1', 'xyz1']
    """
    out: list[str] = [url]
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError:
        return out
    if parts.scheme:
        out.append(url.split("://", 1)[-1])
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        out.append(userinfo)
        if ":" in userinfo:
            out.append(userinfo.split(":", 1)[1])
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    out.append(path_query)
    out.append(parts.path)
    if parts.query:
        out.append(parts.query)
        out.extend(v for _, v in parse_qsl(parts.query, keep_blank_values=False))
    unique = dict.fromkeys(s for s in out if len(s) >= MIN_SECRET_LEN and s != "/")
    return list(unique)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret value (``api_key``, ``Authorization``, ``X-Auth-Token``, ...).

    Keys naming *where* a secret is (``secret_file``, ``password_env``) are not secrets themselves.

    >>> [is_secret_key(k) for k in ("api_key", "Authorization", "X-Auth-Token", "secret_file", "max_tokens")]
    [True, True, True, False, False]
    """
    parts = [p for p in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", key.strip()) if p]
    lowered = [p.lower() for p in parts]
    if not lowered or lowered[-1] in _NOT_SECRET_SUFFIXES:
        return False
    if any(p in _SECRET_KEY_PARTS for p in lowered):
        return True
    joined = "_".join(lowered)
    return any(pair in joined for pair in _SECRET_KEY_PAIRS)


def redact_mapping(d: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A deep copy of ``d`` with secret-looking keys' values masked and every string redacted.

    URLs under keys like ``url``/``*_url`` keep their origin but lose userinfo, secret query values and
    secret-bearing paths (Slack, Discord, Teams, Google Chat webhooks).

    >>> redact_mapping({"headers": {"Authorization": "Bearer x", "Accept": "json"}, "token_file": "/run/t"})
    {'headers': {'Authorization': '***', 'Accept': 'json'}, 'token_file': '/run/t'}
    """
    known = secrets if isinstance(secrets, frozenset) else frozenset(s for s in secrets if isinstance(s, str))
    return {str(k): _redact_value(str(k), v, known) for k, v in d.items()}


def _redact_value(key: str, value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return redact_mapping(value, secrets)
    if is_secret_key(key) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, list | tuple):
        return [_redact_value(key, v, secrets) for v in value]
    if isinstance(value, str):
        return redact(value, secrets)
    return value
