"""ghsync's GitHub App client: App JWT + installation tokens (cached, single-flight, shared through
Redis), rate-limit reserve and `RetryAt` instead of long sleeps, bounded retries, ETag revalidation,
typed errors, structured logs and Prometheus metrics, against GitHub, GHES or the emulator.

Usage::

    config = GitHubAppConfig(app_id=..., private_key=..., api_url=...)
    client = GitHubAppClient(config, RedisTokenCache.from_url(redis_url))
    with client.priority("user"):
        inst = client.find_installation("octo", "hello")
        repo = client.get_repository(inst, "octo", "hello")

New operations are methods calling `client.request(method, route_template, params=..., installation_id=...)`.
"""

from ghsync.adapters.github.client import ACCEPT, API_VERSION, GitHubAppClient, GitHubResponse
from ghsync.adapters.github.config import GitHubAppConfig
from ghsync.adapters.github.errors import (
    AppNotInstalled,
    GitHubConflict,
    GitHubConnectionError,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubServerError,
    GitHubUnauthorized,
    GitHubValidation,
    NotFastForward,
    RepositoryNotFound,
    RetryAt,
    RetryKind,
)
from ghsync.adapters.github.models import (
    Branch,
    Installation,
    RateLimitState,
    Repository,
)
from ghsync.adapters.github.policy import Priority
from ghsync.adapters.github.token_cache import (
    CachedToken,
    InMemoryTokenCache,
    RedisTokenCache,
    TokenCache,
)

GitHubClient = GitHubAppClient  # the short name the services use

__all__ = [
    "ACCEPT",
    "API_VERSION",
    "AppNotInstalled",
    "Branch",
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
    "RepositoryNotFound",
    "RetryAt",
    "RetryKind",
    "TokenCache",
]
