"""Prometheus metrics of the GitHub client (registered in the default registry served at /metrics).

Labels are bounded: `route` is the route template (never a concrete path), `installation` an id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "ghsync_github_requests_total",
    "GitHub API requests sent (status 'error' = no response)",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "ghsync_github_request_duration_seconds",
    "GitHub API request latency",
    ["method", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RETRIES = Counter(
    "ghsync_github_retries_total",
    "GitHub API requests sent again (server_error, connection, unauthorized, *_rate_limit)",
    ["reason"],
)
RATE_LIMIT_WAITS = Counter(
    "ghsync_github_rate_limit_waits_total",
    "Requests held back by a rate limit (primary, secondary, reserve), inline or rescheduled",
    ["kind"],
)
RATE_LIMIT_REMAINING = Gauge(
    "ghsync_github_rate_limit_remaining",
    "Last X-RateLimit-Remaining seen per installation ('app' = App JWT requests)",
    ["installation"],
)
TOKEN_REQUESTS = Counter(
    "ghsync_github_token_requests_total", "Installation access tokens requested from GitHub"
)
