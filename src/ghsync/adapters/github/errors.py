"""The GitHub adapter's errors: re-exported from `ghsync.domain.errors`, where the one hierarchy lives.

Kept so that `from ghsync.adapters.github.errors import NotFastForward` (and
`ghsync.adapters.github.errors.AppNotInstalled`) keep working; new code imports the domain module.
"""

from __future__ import annotations

from ghsync.domain.errors import (
    AppNotInstalled,
    BranchProtected,
    GitHubConflict,
    GitHubConnectionError,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubServerError,
    GitHubUnauthorized,
    GitHubValidation,
    NotFastForward,
    RepositoryEmpty,
    RepositoryNotFound,
    RetryAt,
    RetryKind,
)

__all__ = [
    "AppNotInstalled",
    "BranchProtected",
    "GitHubConflict",
    "GitHubConnectionError",
    "GitHubError",
    "GitHubForbidden",
    "GitHubNotFound",
    "GitHubServerError",
    "GitHubUnauthorized",
    "GitHubValidation",
    "NotFastForward",
    "RepositoryEmpty",
    "RepositoryNotFound",
    "RetryAt",
    "RetryKind",
]
