"""The one exception hierarchy of ghsync: every error a user can cause carries a stable code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal


class GhsyncError(Exception):
    """Base of every ghsync error; `code` is stable and machine-readable, the message is for people."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(GhsyncError):
    """The request is well-formed but a value in it is not acceptable."""

    code = "invalid_input"


class InvalidPath(InvalidInput):
    """A file path could escape the project's working directory or is not a valid repository path."""

    code = "invalid_path"


class FileTooLarge(InvalidInput):
    """A file is over the block limit (GITHUB_SYNC_MAX_FILE_SIZE); GitHub refuses files over 100 MiB."""

    code = "file_too_large"


class NotFound(GhsyncError):
    """The named resource does not exist."""

    code = "not_found"


class Conflict(GhsyncError):
    """The request conflicts with the current state (for example the project is already linked)."""

    code = "conflict"


class ConcurrentUpdate(Conflict):
    """A compare-and-swap lost a race: the caller should re-read and decide again."""

    code = "concurrent_update"


class Unauthorized(GhsyncError):
    """The caller did not present a valid API token."""

    code = "unauthorized"


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


# ---- GitHub ---------------------------------------------------------------------------------------
# What GitHub answered, as typed errors the services catch without importing an adapter. Each carries
# GitHub's status, message, documentation_url and `X-GitHub-Request-Id`, and which call failed (method
# and route template), never credentials. The HTTP status our API answers is the API layer's choice.

RetryKind = Literal["primary", "secondary", "reserve"]


class GitHubError(GhsyncError):
    """Any failed GitHub call. `status` is None when no HTTP response was received."""

    code = "github_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        documentation_url: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        # Exception.__init__ directly (not super()): RetryAt mixes this class with RetryLater, whose
        # __init__ takes other arguments.
        Exception.__init__(self, message)
        self._set_fields(message, status, documentation_url, request_id, method, route)

    def _set_fields(
        self,
        message: str,
        status: int | None,
        documentation_url: str | None,
        request_id: str | None,
        method: str | None,
        route: str | None,
    ) -> None:
        self.message = message
        self.status = status
        self.documentation_url = documentation_url
        self.request_id = request_id
        self.method = method
        self.route = route

    def __str__(self) -> str:
        where = f"{self.method} {self.route}: " if self.method and self.route else ""
        status = f"{self.status} " if self.status is not None else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{status}{self.message}{rid}"


class GitHubUnauthorized(GitHubError):
    """401 that survived one token refresh: bad App id/key, revoked installation, clock skew."""

    code = "github_unauthorized"


class GitHubForbidden(GitHubError):
    """403 that is not a rate limit: usually the App lacks a permission.

    GitHub names the permission the endpoint accepts in `X-Accepted-GitHub-Permissions`
    (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#resource-not-accessible);
    `accepted_permissions` holds it parsed (e.g. {"contents": "write"}), `permission` its first entry.
    """

    code = "github_forbidden"

    def __init__(
        self, message: str, *, accepted_permissions: Mapping[str, str] | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.accepted_permissions = dict(accepted_permissions or {})

    @property
    def permission(self) -> str | None:
        for name, level in self.accepted_permissions.items():
            return f"{name}={level}"
        return None


class GitHubNotFound(GitHubError):
    """404: the resource does not exist, or the App cannot see it (GitHub does not say which)."""

    code = "github_not_found"


class RepositoryNotFound(GitHubNotFound):
    """The repository does not exist (the App is installed on its owner with access to all repos)."""

    code = "repository_not_found"


class AppNotInstalled(GitHubNotFound):
    """The App is not installed on the repository's account, or the repository is not selected."""

    code = "app_not_installed"


class GitHubConflict(GitHubError):
    """409: e.g. a merge conflict, or "Git Repository is empty." (see `RepositoryEmpty`)."""

    code = "github_conflict"


class RepositoryEmpty(GitHubConflict):
    """409 "Git Repository is empty.": the Git Data API refuses objects in a repository without commits.

    The first commit goes in through git smart HTTP (or the Contents API) instead
    (https://docs.github.com/en/rest/git/blobs#create-a-blob lists the 409).
    """

    code = "repository_empty"


class GitHubValidation(GitHubError):
    """422: GitHub rejected the request's content; `errors` is GitHub's `errors` array."""

    code = "github_validation"

    def __init__(self, message: str, *, errors: Sequence[Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class NotFastForward(GitHubValidation):
    """422 "Update is not a fast forward": the ref moved; re-read and decide again (compare-and-swap).

    https://docs.github.com/en/rest/git/refs#update-a-reference (with `force: false`).
    """

    code = "not_fast_forward"


class BranchProtected(GitHubValidation):
    """422 from branch protection refusing a direct ref update ("Changes must be made through a pull
    request.", a required review or status check, a locked branch): go through a pull request.

    https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches
    """

    code = "branch_protected"


class GitHubServerError(GitHubError):
    """5xx that persisted through the bounded retries (or was not safe to retry)."""

    code = "github_server_error"


class GitHubConnectionError(GitHubError):
    """No response (connect/read failure, timeout) after the bounded retries."""

    code = "github_connection_error"


class RetryAt(GitHubError, RetryLater):
    """Rate limited: try again at `at` (UTC). Raised instead of sleeping longer than `max_inline_wait`.

    It *is* a `RetryLater`, so a job handler need not convert it: the queue reschedules the job at `at`
    without counting a failed attempt. `kind`: "primary" (hourly quota exhausted), "secondary" (abuse
    limit, writes wait), "reserve" (background work stopped at the buffer kept for user-triggered work).
    """

    code = "github_rate_limited"

    def __init__(
        self,
        at: datetime,
        reason: str,
        *,
        kind: RetryKind,
        status: int | None = None,
        documentation_url: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        route: str | None = None,
    ) -> None:
        RetryLater.__init__(self, at, reason)
        self._set_fields(reason, status, documentation_url, request_id, method, route)
        self.kind: RetryKind = kind

    def __str__(self) -> str:
        return f"{GitHubError.__str__(self)}; retry at {self.at.isoformat()}"
