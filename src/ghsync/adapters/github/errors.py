"""The GitHub adapter's error hierarchy: typed failures that callers act on, plus `RetryAt`.

Every error carries what GitHub said (status, message, documentation_url, `X-GitHub-Request-Id`) and
which call failed (method and route template), never credentials.

`RetryAt` *is* the jobs port's `RetryLater` (a subclass), so a job handler need not convert it: the
queue reschedules the job at `at` without counting a failed attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ghsync.domain.errors import RetryLater

RetryKind = Literal["primary", "secondary", "reserve"]


class GitHubError(Exception):
    """Any failed GitHub call. `status` is None when no HTTP response was received."""

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
        # Exception.__init__ directly (not super()): RetryAt mixes this class with RetryLater,
        # whose __init__ takes other arguments.
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


class GitHubForbidden(GitHubError):
    """403 that is not a rate limit: usually the App lacks a permission.

    GitHub names the permission the endpoint accepts in `X-Accepted-GitHub-Permissions`
    (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#resource-not-accessible);
    `accepted_permissions` holds it parsed (e.g. {"contents": "write"}), `permission` its first entry.
    """

    def __init__(self, message: str, *, accepted_permissions: Mapping[str, str] | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.accepted_permissions = dict(accepted_permissions or {})

    @property
    def permission(self) -> str | None:
        for name, level in self.accepted_permissions.items():
            return f"{name}={level}"
        return None


class GitHubNotFound(GitHubError):
    """404: the resource does not exist, or the App cannot see it (GitHub does not say which)."""


class RepositoryNotFound(GitHubNotFound):
    """The repository does not exist (the App is installed on its owner with access to all repos)."""


class AppNotInstalled(GitHubNotFound):
    """The App is not installed on the repository's account, or the repository is not selected."""


class GitHubConflict(GitHubError):
    """409: e.g. "Git Repository is empty.", or a merge conflict."""


class GitHubValidation(GitHubError):
    """422: GitHub rejected the request's content; `errors` is GitHub's `errors` array."""

    def __init__(self, message: str, *, errors: Sequence[Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class NotFastForward(GitHubValidation):
    """422 "Update is not a fast forward": the ref moved; re-read and decide again (compare-and-swap)."""


class GitHubServerError(GitHubError):
    """5xx that persisted through the bounded retries."""


class GitHubConnectionError(GitHubError):
    """No response (connect/read failure, timeout) after the bounded retries."""


class RetryAt(GitHubError, RetryLater):
    """Rate limited: try again at `at` (UTC). Raised instead of sleeping longer than `max_inline_wait`.

    `kind`: "primary" (hourly quota exhausted), "secondary" (abuse limit), "reserve" (background
    work stopped at `rate_limit_buffer` so user-triggered work keeps some quota).
    """

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
