"""ghsync's GitHub adapters: the App client (`GitHubApp` port) and one repository's REST operations
(`GitHubRepo` port, `repo.py`); the in-memory twin is `ghsync.adapters.github.memory.InMemoryGitHub`.

The client: App JWT + installation tokens (cached, single-flight, shared through
Redis), rate-limit reserve and `RetryAt` instead of long sleeps, bounded retries, ETag revalidation,
typed errors, structured logs and Prometheus metrics, against GitHub, GHES or the emulator.

Usage::

    config = GitHubAppConfig(app_id=..., private_key=..., api_url=...)
    client = GitHubAppClient(config, RedisTokenCache.from_url(redis_url))
    with client.priority("user"):
        inst = client.find_installation("octo", "hello")
        repo = client.get_repository(inst, "octo", "hello")

        repo = client.repo(inst, "octo", "hello")           # the GitHubRepo port
        head = repo.get_branch(repo.get_repository().default_branch)

Repository operations are methods of `RestGitHubRepo` calling `client.request(...)`; errors are
`ghsync.domain.errors`' GitHub section, re-exported here.
"""

from ghsync.adapters.github.client import ACCEPT, API_VERSION, GitHubAppClient, GitHubResponse
from ghsync.adapters.github.config import GitHubAppConfig
from ghsync.adapters.github.errors import (
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
from ghsync.adapters.github.repo import RestGitHubRepo
from ghsync.adapters.github.token_cache import (
    CachedToken,
    InMemoryTokenCache,
    RedisTokenCache,
    TokenCache,
)
from ghsync.domain.github import Branch, Installation, RateLimitState, Repository
from ghsync.ports.github import Priority

GitHubClient = GitHubAppClient  # the short name the services use

__all__ = [
    "ACCEPT",
    "API_VERSION",
    "AppNotInstalled",
    "Branch",
    "BranchProtected",
    "CachedToken",
    "GitHubAppClient",
    "GitHubAppConfig",
    "GitHubClient",
    "GitHubConflict",
    "GitHubConnectionError",
    "GitHubError",
    "GitHubForbidden",
    "GitHubNotFound",
    "GitHubResponse",
    "GitHubServerError",
    "GitHubUnauthorized",
    "GitHubValidation",
    "InMemoryTokenCache",
    "Installation",
    "NotFastForward",
    "Priority",
    "RateLimitState",
    "RedisTokenCache",
    "Repository",
    "RepositoryEmpty",
    "RepositoryNotFound",
    "RestGitHubRepo",
    "RetryAt",
    "RetryKind",
    "TokenCache",
]
