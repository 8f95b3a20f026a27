"""Structured logging: JSON lines through structlog, configured once by the entry point (never at import),
with secrets redacted before anything is written.

Two layers keep credentials out of the log. Fields whose *name* says they hold a credential
(`authorization`, `token`, `private_key`, `secret`, ...) are replaced whole. And every secret the process
handles is remembered when it is made or read (`remember_secret`: the settings' API tokens, encryption
keys, webhook secret and App private key; each App JWT; each installation token; each plaintext the
secret box seals or opens), and any log value containing one, raw or base64-encoded, has it replaced.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

# Field names that always hold a credential, whatever their value.
_SECRET_FIELD = re.compile(
    r"(authorization|password|passwd|secret|token|private_?key|jwt|api_?key|encryption_?keys?|credential|cookie)",
    re.IGNORECASE,
)
# Shorter values are too likely to occur by chance in ordinary text to be searched for.
MIN_SECRET_LENGTH = 8

_known: set[str] = set()
_lock = threading.Lock()


def encodings(secret: str) -> set[str]:
    """`secret` and the spellings it may take in a log line: base64 and URL-safe base64, padded or not."""
    raw = secret.encode()
    spelled = {secret}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        spelled |= {text, text.rstrip("=")}
    return {value for value in spelled if len(value) >= MIN_SECRET_LENGTH}


def remember_secret(*secrets: str | None) -> None:
    """Remember secrets, so that no log line ever carries them (nor their base64)."""
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                _known.update(encodings(secret))
                # A PEM key is also recognised by its body lines alone.
                if "-----BEGIN" in secret:
                    _known.update(
                        line.strip()
                        for line in secret.splitlines()
                        if len(line.strip()) >= 32 and not line.startswith("-----")
                    )


def known_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_known)


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every known secret (or its base64) replaced by `[redacted]`."""
    for secret in sorted(secrets if secrets is not None else known_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {key: _redact_field(str(key), item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item, secrets) for item in value]
    if isinstance(value, bytes | int | float | bool) or value is None:
        return value
    return scrub(repr(value), secrets) if secrets else value


def _redact_field(key: str, value: Any, secrets: frozenset[str]) -> Any:
    # `token_expires_at`, `tokens_cached`... are about tokens, not tokens: only string values go.
    if _SECRET_FIELD.search(key) and isinstance(value, str | bytes) and value:
        return REDACTED
    return _redact_value(value, secrets)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: credential fields replaced, known secrets scrubbed from every value."""
    secrets = known_secrets()
    for key in list(event_dict):
        event_dict[key] = _redact_field(key, event_dict[key], secrets)
    return event_dict


class RedactingFilter(logging.Filter):
    """The same for the standard library's records (uvicorn, SQLAlchemy, httpx...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        if secrets:
            record.msg = scrub(record.getMessage(), secrets)
            record.args = None
        return True


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library's logging to stderr, as JSON lines by default."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        # Last before rendering, so that a traceback formatted just above is scrubbed too.
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
