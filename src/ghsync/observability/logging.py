"""Structured logging: JSON lines through structlog, configured once by the entry point (never at import),
with secrets redacted before anything is written.

Two layers keep credentials out of the log. Fields whose *name* says they hold a credential
(`authorization`, `token`, `private_key`, `secret`, ...) are replaced whole. And every secret the process
handles is remembered when it is made or read (`remember_secret`: the settings' API tokens, encryption
keys, webhook secret and App private key; each App JWT; each installation token; each plaintext the
secret box seals or opens), and any log value containing one, raw or base64-encoded, has it replaced.
Tokens and JWTs are forgotten an hour after they expire, so what is searched for stays the size of what
is live: remembered for ever, a week of a hundred installations' hourly tokens made every log line take
a third of a second (`bench/log_lines.py`).
"""

from __future__ import annotations

import base64
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
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
# A credential that stops working (an installation token, an App JWT) is forgotten this long after it
# expired: it grants nothing any more, and remembering every one ever made would grow without end.
FORGET_AFTER_EXPIRY = 3600.0

# Every spelling remembered, and when to forget it (seconds since the epoch; infinity: never).
_remembered: dict[str, float] = {}
# What scrubbing searches with: regular expressions of the spellings, longest first, compiled when first
# needed after a change. One expression finds any of thousands of spellings in one pass over a text
# (searching for each in turn cost every log line a fraction of a millisecond per spelling), but compiling
# it costs a moment per spelling, so a new spelling goes to a small expression of the recent ones and the
# big one is rebuilt only when that grows past RECENT_SPELLINGS or a spelling is forgotten.
RECENT_SPELLINGS = 256
_settled: set[str] = set()  # in the big expression
_recent: set[str] = set()  # remembered since it was built
_patterns: tuple[re.Pattern[str], ...] = ()
_rebuild = False  # the big expression must be built again (a spelling forgotten, or too many recent)
_stale = False  # a spelling came or went since the patterns were compiled
_lock = threading.Lock()


def encodings(secret: str) -> set[str]:
    """`secret` and the spellings it may take in a log line: base64 and URL-safe base64, padded or not."""
    raw = secret.encode()
    spelled = {secret}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        spelled |= {text, text.rstrip("=")}
    return {value for value in spelled if len(value) >= MIN_SECRET_LENGTH}


def remember_secret(*secrets: str | None, expires_at: float | None = None) -> None:
    """Remember secrets, so that no log line ever carries them (nor their base64).

    `expires_at` (seconds since the epoch) is when a credential stops working; it is forgotten
    FORGET_AFTER_EXPIRY later. Without it a secret is remembered for the life of the process.
    """
    forget_at = math.inf if expires_at is None else expires_at + FORGET_AFTER_EXPIRY
    spellings: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            spellings |= encodings(secret)
            # A PEM key is also recognised by its body lines alone.
            if "-----BEGIN" in secret:
                spellings.update(
                    line.strip()
                    for line in secret.splitlines()
                    if len(line.strip()) >= 32 and not line.startswith("-----")
                )
    global _rebuild, _stale
    with _lock:
        now = time.time()
        expired = [spelling for spelling, until in _remembered.items() if until <= now]
        for spelling in expired:
            del _remembered[spelling]
        new = spellings - _remembered.keys()
        for spelling in spellings:
            _remembered[spelling] = max(_remembered.get(spelling, forget_at), forget_at)
        _recent.update(new)
        _rebuild = _rebuild or bool(expired) or len(_recent) > RECENT_SPELLINGS
        _stale = _stale or bool(new or expired)


def _compiled() -> tuple[re.Pattern[str], ...]:
    """The patterns to scrub with, compiled now if a spelling came or went since they last were."""
    global _patterns, _rebuild, _stale
    if not _stale:
        return _patterns
    with _lock:
        settled = _patterns[:1] if _settled else ()
        if _rebuild:
            _settled.clear()
            _settled.update(_remembered)
            _recent.clear()
            settled = (_pattern_of(_settled),) if _settled else ()
            _rebuild = False
        _patterns = settled + ((_pattern_of(_recent),) if _recent else ())
        _stale = False
        return _patterns


def _pattern_of(spellings: set[str]) -> re.Pattern[str]:
    # Longest first, so a spelling containing another (`x-access-token:<token>`) is replaced whole.
    return re.compile("|".join(map(re.escape, sorted(spellings, key=len, reverse=True))))


def known_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_remembered)


def scrub(text: str) -> str:
    """`text` with every remembered secret (or its base64) replaced by `[redacted]`."""
    return _scrubbed(text, _compiled())


def _scrubbed(text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    return text


def _redact_value(value: Any, patterns: tuple[re.Pattern[str], ...]) -> Any:
    if isinstance(value, str):
        return _scrubbed(value, patterns)
    if isinstance(value, Mapping):
        return {key: _redact_field(str(key), item, patterns) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item, patterns) for item in value]
    if isinstance(value, bytes | int | float | bool) or value is None:
        return value
    return _scrubbed(repr(value), patterns) if patterns else value


def _redact_field(key: str, value: Any, patterns: tuple[re.Pattern[str], ...]) -> Any:
    # `token_expires_at`, `tokens_cached`... are about tokens, not tokens: only string values go.
    if _SECRET_FIELD.search(key) and isinstance(value, str | bytes) and value:
        return REDACTED
    return _redact_value(value, patterns)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: credential fields replaced, known secrets scrubbed from every value."""
    patterns = _compiled()
    for key in list(event_dict):
        event_dict[key] = _redact_field(key, event_dict[key], patterns)
    return event_dict


class RedactingFilter(logging.Filter):
    """The same for the standard library's records (uvicorn, SQLAlchemy, httpx...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _remembered:
            record.msg = scrub(record.getMessage())
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
