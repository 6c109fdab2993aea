"""Signing and redaction: the helpers both webhooks and the daemon's logs rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.errors import AiopsError
from aiops.redact import is_secret_key, redact, redact_mapping, url_origin, url_secrets
from aiops.signing import load_secret, sign, signature_headers, verify


def test_round_trip_and_tamper() -> None:
    header = sign(b"k3y", b"body", 1000)
    assert verify(b"k3y", b"body", header, now=1000)
    assert verify("k3y", b"body", header, now=1000)  # str secrets are accepted too
    assert not verify(b"k3y", b"body!", header, now=1000)
    assert not verify(b"k3y", b"body", header.replace("t=1000", "t=1001"), now=1000)
    assert not verify(b"k3y", b"body", header, now=1000 + 301)
    assert not verify(b"k3y", b"body", header, now=1000 - 301)
    assert verify(b"k3y", b"body", header, now=1000 + 30, tolerance=60)


def test_rotation_accepts_any_v1() -> None:
    new = sign(b"new", b"x", 5).split("v1=")[1]
    old_header = sign(b"old", b"x", 5)
    assert verify(b"new", b"x", f"{old_header},v1={new}", now=5)
    assert verify(b"old", b"x", f"{old_header},v1={new}", now=5)


@pytest.mark.parametrize("header", ["", "t=x,v1=ab", "v1=abc", "t=5", "t=5,v1=", ",,,", "t=5;v1=ab", "t=" + "9" * 400])
def test_malformed_headers_are_rejected(header: str) -> None:
    assert verify(b"k", b"x", header, now=5) is False


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_verify_never_raises(header: str) -> None:
    assert verify(b"k", b"x", header, now=5) in (True, False)


def test_signature_headers_and_load_secret(tmp_path: Path) -> None:
    assert signature_headers(None, b"x") == {}
    assert verify(b"k", b"x", signature_headers(b"k", b"x", now=77)["X-Aiops-Signature"], now=77)
    path = tmp_path / "s"
    path.write_text("from-file\n")
    assert load_secret(None, str(path)) == b"from-file"
    with pytest.raises(AiopsError, match="cannot read secret_file") as info:
        load_secret(None, str(tmp_path / "missing"))
    assert info.value.recoverable is False


SECRET_URLS = [
    ("https://bob:hunter22@example.com/x", "hunter22"),
    ("https://example.com/hook?token=tok123456", "tok123456"),
    ("https://example.com/hook?api_key=key123456&x=1", "key123456"),
    ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "XXXXSECRET"),
    ("https://discord.com/api/webhooks/123/SECRETTOKEN", "SECRETTOKEN"),
    ("https://s3.example.com/o?X-Amz-Signature=abcdef0123", "abcdef0123"),
]


@pytest.mark.parametrize(("url", "secret"), SECRET_URLS)
def test_url_patterns_redacted_without_knowing_the_secret(url: str, secret: str) -> None:
    text = f"error talking to {url}: boom"
    assert secret not in redact(text)
    assert "example.com" in redact(text) or "slack" in redact(text) or "discord" in redact(text)
    assert secret not in str(redact_mapping({"url": url}))
    assert secret not in url_origin(url)


def test_text_patterns() -> None:
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert redact("password=pw1 token: tk1 secret='s e'") == "password=*** token: *** secret='***'"
    assert redact("known value xyz9 inside", ["xyz9", "ab"]) == "known value *** inside"
    assert redact("nothing here") == "nothing here"


def test_url_secrets_cover_pieces_requests_prints() -> None:
    url = "http://127.0.0.1:8080/hook/s3cretpath?token=qwerty"
    message = (
        "HTTPConnectionPool(host='127.0.0.1', port=8080): Max retries exceeded with url: /hook/s3cretpath?token=qwerty"
    )
    out = redact(message, url_secrets(url))
    assert "s3cretpath" not in out and "qwerty" not in out


def test_mapping() -> None:
    d: dict[str, Any] = {
        "webhook_url": "https://x.example/y",
        "headers": {"Authorization": "Bearer zz", "X-Api-Key": "k", "Accept": "json"},
        "nested": [{"password": "p"}, "token=abc"],
        "password_file": "/run/secrets/pw",
        "count": 3,
        "empty_token": None,
    }
    out = redact_mapping(d)
    assert out == {
        "webhook_url": "***",
        "headers": {"Authorization": "***", "X-Api-Key": "***", "Accept": "json"},
        "nested": [{"password": "***"}, "token=***"],
        "password_file": "/run/secrets/pw",
        "count": 3,
        "empty_token": None,
    }
    assert d["headers"]["Authorization"] == "Bearer zz"  # input untouched
    assert is_secret_key("clientSecret") and is_secret_key("AWS_SECRET_ACCESS_KEY")
    assert not is_secret_key("dedup_key") and not is_secret_key("idempotency_key")
