"""The one exception hierarchy of ghsync: every error a user can cause carries a stable code."""

from __future__ import annotations

from datetime import datetime


class GhsyncError(Exception):
    """Base of every ghsync error; `code` is stable and machine-readable, the message is for people."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(GhsyncError):
    """The request is well-formed but a value in it is not acceptable."""

    code = "invalid_input"
    http_status = 422


class InvalidPath(InvalidInput):
    """A file path could escape the project's working directory or is not a valid repository path."""

    code = "invalid_path"


class FileTooLarge(InvalidInput):
    """A file is over the block limit (GITHUB_SYNC_MAX_FILE_SIZE); GitHub refuses files over 100 MiB."""

    code = "file_too_large"
    http_status = 413


class NotFound(GhsyncError):
    """The named resource does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(GhsyncError):
    """The request conflicts with the current state (for example the project is already linked)."""

    code = "conflict"
    http_status = 409


class ConcurrentUpdate(Conflict):
    """A compare-and-swap lost a race: the caller should re-read and decide again."""

    code = "concurrent_update"


class Unauthorized(GhsyncError):
    """The caller did not present a valid API token."""

    code = "unauthorized"
    http_status = 401


class ConfigError(GhsyncError):
    """The service's configuration is invalid; raised at start-up, naming each bad variable."""

    code = "config_error"


class RetryLater(Exception):
    """Raised by a job handler to run the job again at `at` (UTC-aware) without counting a failed attempt.

    For waits the handler knows about (a GitHub rate limit's reset time): the worker thread is freed
    instead of sleeping, and the attempt budget is kept for real failures. It lives in the domain so
    that adapters (GitHub) can raise it without importing the jobs adapter.
    """

    def __init__(self, at: datetime, reason: str = "") -> None:
        if at.tzinfo is None:
            raise ValueError("RetryLater needs a timezone-aware datetime (UTC)")
        super().__init__(f"retry at {at.isoformat()}" + (f": {reason}" if reason else ""))
        self.at = at
        self.reason = reason
