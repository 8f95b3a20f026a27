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
        rate_limit: requests per hour per installation (and per user token). GitHub: 5,000
            (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
        anonymous_rate_limit: requests per hour without a token (GitHub: 60).
        tree_entry_limit: entries returned by ``GET /git/trees?recursive=1`` before ``truncated``
            is set. GitHub: 100,000 entries (https://docs.github.com/en/rest/git/trees#get-a-tree).
        max_jwt_lifetime_seconds: the App JWT's ``exp`` may be at most this far after ``iat``
            (GitHub: 10 minutes).
        webhook_timeout_seconds: GitHub gives a receiver 10 seconds to answer.
    """

    data_dir: Path
    token_ttl_seconds: int = 3600
    rate_limit: int = 5000
    anonymous_rate_limit: int = 60
    tree_entry_limit: int = 100_000
    max_jwt_lifetime_seconds: int = 600
    webhook_timeout_seconds: float = 10.0
