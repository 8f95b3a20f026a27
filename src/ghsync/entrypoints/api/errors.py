"""How ghsync's errors answer over HTTP: a status per error code, else per error class.

The domain and services raise `GhsyncError`s with stable codes and know nothing of HTTP; this table is
the one place that decides what status a platform sees for each.
"""

from __future__ import annotations

from ghsync.domain.errors import (
    Conflict,
    GhsyncError,
    GitHubError,
    InvalidInput,
    NotFound,
    RetryLater,
    Unauthorized,
)

# Codes whose status differs from their class's.
STATUS_BY_CODE: dict[str, int] = {
    "file_too_large": 413,
    "app_not_installed": 403,
    "missing_permission": 403,
    "repository_not_found": 404,
    "github_unavailable": 502,
    "github_rate_limited": 503,
    "github_not_configured": 503,
    "secret_error": 500,
    "malformed_delivery": 400,
    "missing_webhook_header": 400,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "bad_request": 400,
    "webhook_not_configured": 503,
    "webhook_source_refused": 403,
    "webhook_allowlist_unavailable": 503,
    "webhook_rate_limited": 429,
}

# Checked in order: the first class the error is an instance of decides.
STATUS_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (RetryLater, 503),
    (GitHubError, 502),
)


def http_status(error: GhsyncError) -> int:
    """The status `error` answers with (500 for anything unexpected)."""
    return status_for(type(error), error.code)


def status_for(cls: type[BaseException], code: str) -> int:
    """The status an error of class `cls` with `code` answers with (the OpenAPI document uses it too)."""
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    for base, status in STATUS_BY_CLASS:
        if issubclass(cls, base):
            return status
    return 500
