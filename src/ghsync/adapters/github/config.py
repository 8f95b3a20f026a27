"""Configuration of the GitHub App client: explicit values (bootstrap maps `Settings` onto them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GitHubAppConfig:
    """What the client needs to talk to one GitHub (github.com, Enterprise Server, or the emulator).

    Attributes:
        app_id: the App's numeric id (the JWT's `iss`).
        private_key: the App's private key, PEM text or a path to a PEM file (never logged or repr'd).
        api_url: REST base URL: `https://api.github.com`, `https://HOST/api/v3` (GHES), or the emulator.
        token_cache_ttl: seconds an installation token is reused (tokens live 1 h; 3300 = 55 min).
        rate_limit_buffer: requests per installation kept in reserve for user-triggered work.
        max_inline_wait: the longest wait (seconds) the client sleeps in the caller's thread;
            a longer one raises `RetryAt` so the job is rescheduled instead of holding a worker.
        max_retries: retries of one call (5xx, connection errors, short rate-limit waits).
        retry_base_delay / retry_max_delay: exponential backoff of 5xx and connection retries.
        secondary_rate_limit_min_wait: the wait after a secondary rate limit without Retry-After;
            GitHub asks for at least 60 s, so lower it only in tests.
        secondary_rate_limit_max_wait: cap of that wait's exponential growth.
        max_concurrency_per_installation: requests in flight per installation.
        min_write_interval: pause between mutating requests of one installation (0 = none).
        timeout: per-request timeout in seconds.
        etag_cache_size: conditional-request cache entries (LRU).
        token_lock_timeout: how long a caller waits for another process's token fetch.
    """

    app_id: int | str
    private_key: str = field(repr=False)
    api_url: str = "https://api.github.com"
    token_cache_ttl: float = 3300.0
    rate_limit_buffer: int = 100
    max_inline_wait: float = 5.0
    max_retries: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    secondary_rate_limit_min_wait: float = 60.0
    secondary_rate_limit_max_wait: float = 900.0
    max_concurrency_per_installation: int = 8
    min_write_interval: float = 0.0
    timeout: float = 30.0
    etag_cache_size: int = 2048
    token_lock_timeout: float = 30.0
    user_agent: str = "ghsync"

    def __post_init__(self) -> None:
        if not str(self.app_id).strip():
            raise ValueError("app_id is required")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError("api_url must be an http:// or https:// URL")
        if self.token_cache_ttl <= 0 or self.max_inline_wait < 0 or self.max_retries < 0:
            raise ValueError("token_cache_ttl must be > 0, max_inline_wait and max_retries >= 0")
        if self.rate_limit_buffer < 0 or self.max_concurrency_per_installation < 1:
            raise ValueError("rate_limit_buffer must be >= 0 and max_concurrency_per_installation >= 1")
