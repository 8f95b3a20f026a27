"""Secrets never reach the log: the structlog processor and the stdlib filter redact credential fields and
every remembered secret, raw or base64; the settings remember theirs when they are loaded."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import structlog

from ghsync.config import load_settings
from ghsync.observability.logging import (
    REDACTED,
    RedactingFilter,
    known_secrets,
    redact_secrets,
    remember_secret,
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
