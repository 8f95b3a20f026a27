"""Secrets never reach the log: the structlog processor and the stdlib filter redact credential fields and
every remembered secret, raw or base64; the settings remember theirs when they are loaded."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from pathlib import Path

import pytest
import structlog

from ghsync.config import load_settings
from ghsync.observability import logging as log_module
from ghsync.observability.logging import (
    FORGET_AFTER_EXPIRY,
    REDACTED,
    RedactingFilter,
    known_secrets,
    redact_secrets,
    remember_secret,
    scrub,
)


def _render(**event: object) -> str:
    processed = redact_secrets(None, "info", dict(event))
    return structlog.processors.JSONRenderer()(None, "info", processed)  # type: ignore[return-value]


def test_fields_named_for_credentials_are_replaced_whatever_their_value() -> None:
    line = json.loads(
        _render(
            event="github.request",
            authorization="Bearer abc",
            token="ghs_x",
            private_key="-----BEGIN",
            webhook_secret="s",
            headers={"Authorization": "token xyz", "Accept": "application/json"},
            token_expires_in=3300,  # about a token, not one: kept
        )
    )
    assert line["authorization"] == line["token"] == line["private_key"] == line["webhook_secret"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["token_expires_in"] == 3300


def test_a_remembered_secret_is_scrubbed_from_any_value_raw_or_base64() -> None:
    secret = "ghs_remembered0123456789abcdef"
    remember_secret(secret)
    b64 = base64.b64encode(secret.encode()).decode()
    urlsafe = base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")
    git_basic = base64.b64encode(f"x-access-token:{secret}".encode()).decode()
    remember_secret(f"x-access-token:{secret}")
    rendered = _render(
        event=f"failed with {secret}",
        error=RuntimeError(f"GET /x: 401 (sent {b64})"),
        detail=[f"urlsafe {urlsafe}", {"nested": f"Basic {git_basic}"}],
    )
    for spelling in (secret, b64, urlsafe, git_basic):
        assert spelling not in rendered
    assert rendered.count(REDACTED) >= 4


def test_the_stdlib_filter_scrubs_records_of_other_libraries() -> None:
    secret = "encryption-key-material-0123456789"
    remember_secret(secret)
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "sent %s", (secret,), None)
    assert RedactingFilter().filter(record)
    assert secret not in record.getMessage() and REDACTED in record.getMessage()


def test_loading_the_settings_remembers_every_secret_in_them(tmp_path: Path) -> None:
    key = "k9:" + base64.b64encode(b"k" * 32).decode()
    load_settings(
        {},
        ghsync_data_dir=tmp_path,
        ghsync_api_tokens=["api-token-for-the-platform"],
        ghsync_encryption_keys=[key],
        github_webhook_secret="the-app-webhook-secret",
    )
    known = known_secrets()
    for secret in ("api-token-for-the-platform", key, key.partition(":")[2], "the-app-webhook-secret"):
        assert secret in known, secret
    assert base64.b64encode(b"the-app-webhook-secret").decode() in known


@pytest.fixture
def own_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The remembered secrets as they were before the test, once it ends (they are the process's)."""
    for name in ("_remembered", "_settled", "_recent"):
        monkeypatch.setattr(log_module, name, type(getattr(log_module, name))(getattr(log_module, name)))
    for name in ("_patterns", "_rebuild", "_stale"):
        monkeypatch.setattr(log_module, name, getattr(log_module, name))


@pytest.mark.usefixtures("own_memory")
def test_a_credential_is_forgotten_an_hour_after_it_expires_and_not_before() -> None:
    now = time.time()
    gone, expiring, live = (f"ghs_{name}0123456789abcdefghij" for name in ("gone", "expiring", "live"))
    remember_secret(gone, expires_at=now - FORGET_AFTER_EXPIRY - 1)
    remember_secret(expiring, expires_at=now - 60)  # expired a minute ago: still searched for
    remember_secret(live, expires_at=now + 3600)
    known = known_secrets()
    assert gone not in known and expiring in known and live in known
    assert scrub(f"{gone} {expiring} {live}") == f"{gone} {REDACTED} {REDACTED}"
    remember_secret("the-platform-api-token")  # no expiry: for the life of the process
    assert "the-platform-api-token" in known_secrets()


@pytest.mark.usefixtures("own_memory")
def test_any_of_thousands_of_secrets_is_scrubbed_the_longest_spelling_whole() -> None:
    tokens = [f"ghs_{secrets.token_urlsafe(27)}" for _ in range(3000)]
    for token in tokens:
        remember_secret(token, f"x-access-token:{token}", expires_at=time.time() + 3600)
    first, middle, last = tokens[0], tokens[1500], tokens[-1]
    git_basic = base64.b64encode(f"x-access-token:{middle}".encode()).decode()
    rendered = _render(
        event=f"x-access-token:{first} failed",
        detail={"nested": [f"Basic {git_basic}", f"then {last}."]},
    )
    for spelling in (first, middle, last, git_basic):
        assert spelling not in rendered
    line = json.loads(rendered)
    assert line["event"] == f"{REDACTED} failed"  # the longer spelling, not the token inside it
    assert line["detail"] == {"nested": [f"Basic {REDACTED}", f"then {REDACTED}."]}
