"""Configuration of one emulator instance (token lifetime, rate-limit budget, tree limit)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Knobs that tests turn; the defaults are GitHub's own numbers.

    Attributes:
        data_dir: where state (``state.json``) and the bare git repositories live.
        token_ttl_seconds: lifetime of installation access tokens. GitHub: one hour
            (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app).
        rate_limit: requests per hour per installation and per user token, overriding GitHub's
            rule. ``None`` (the default) is GitHub's: 5,000 for a user; for an installation 5,000
            plus 50 per repository above 20, at most 12,500
            (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
        graphql_rate_limit: GraphQL points per hour, overriding the same rule (``None``: GitHub's).
        secondary_rate_limits: enforce GitHub's secondary limits (off by default, so unit tests
            are not throttled): ``content_creation_per_minute`` / ``content_creation_per_hour``
            content-creating requests per caller (GitHub: 80 and 500) and more than
            ``max_concurrent_requests`` requests in flight (GitHub: 100), answered with
            ``secondary_limit_status`` (403 or 429) and, when ``secondary_retry_after``, a
            ``Retry-After`` header (GitHub sends one sometimes)
            (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits).
        meta_hooks: the CIDRs ``GET /meta`` lists as ``hooks`` (where webhooks come from); the
            emulator sends from loopback (https://docs.github.com/en/rest/meta/meta#get-github-meta-information).
        webhook_workers: threads that send webhook deliveries; with more than one, deliveries may
            arrive in any order, as GitHub's do (``1`` sends in order).
        anonymous_rate_limit: requests per hour without a token (GitHub: 60).
        tree_entry_limit: entries returned by ``GET /git/trees?recursive=1`` before ``truncated``
            is set. GitHub: 100,000 entries (https://docs.github.com/en/rest/git/trees#get-a-tree).
        max_jwt_lifetime_seconds: the App JWT's ``exp`` may be at most this far after ``iat``
            (GitHub: 10 minutes).
        webhook_timeout_seconds: GitHub gives a receiver 10 seconds to answer.
    """

    data_dir: Path
    token_ttl_seconds: int = 3600
    rate_limit: int | None = None
    graphql_rate_limit: int | None = None
    anonymous_rate_limit: int = 60
    tree_entry_limit: int = 100_000
    max_jwt_lifetime_seconds: int = 600
    webhook_timeout_seconds: float = 10.0
    secondary_rate_limits: bool = False
    content_creation_per_minute: int = 80
    content_creation_per_hour: int = 500
    max_concurrent_requests: int = 100
    secondary_limit_status: int = 403
    secondary_retry_after: bool = True
    meta_hooks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    webhook_workers: int = 4
