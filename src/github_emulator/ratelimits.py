"""GitHub's rate limits as the emulator enforces them: primary quotas and secondary limits.

Pure rules (which requests create content, an installation's hourly quota, whether a request
would break a secondary limit) are plain functions; :class:`TrafficState` holds the counters, is
thread-safe, and is given the clock, so tests of the rules need no server and no sleeping.

Sources:
* Primary limits: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
  ("Primary rate limit for GitHub App installations": 5,000 requests an hour; installations with
  more than 20 repositories get another 50 an hour for each repository above 20, up to 12,500).
  GraphQL has the same shape in points:
  https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api
* Secondary limits: the same REST page, "About secondary rate limits": no more than 100
  concurrent requests (shared by REST and GraphQL); "no more than 80 content-generating requests
  per minute and no more than 500 content-generating requests per hour"; the answer is 403 or
  429 "and an error message that indicates that you exceeded a secondary rate limit", with
  ``retry-after`` sometimes present. (The per-endpoint points and CPU-time limits on that page
  are not emulated.)
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

SECONDARY_DOCS = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
# GitHub's text as public recordings of real responses show it (GitHub's docs only say the message
# "indicates that you exceeded a secondary rate limit"): a best guess at the exact wording.
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)

INSTALLATION_BASE_QUOTA = 5000
INSTALLATION_QUOTA_PER_REPOSITORY = 50
INSTALLATION_FREE_REPOSITORIES = 20
INSTALLATION_MAX_QUOTA = 12_500

_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Writes that create nothing in a repository: minting or revoking a token, asking for a
# redelivery, and the GraphQL endpoint (a query reads; mutations are not served).
_NOT_CONTENT = re.compile(
    r"^/(app/installations/\d+/access_tokens|installation/token|graphql"
    r"|app/hook/deliveries/\d+/attempts|repos/[^/]+/[^/]+/hooks/\d+/deliveries/\d+/attempts)$"
)


def is_content_creating(method: str, path: str) -> bool:
    """Whether a REST request counts against the content-creation secondary limit.

    GitHub does not list the endpoints; "content-generating" is read here as every write
    (POST, PATCH, PUT, DELETE) to the REST API except those that create no content (token
    exchange, redelivery requests) -- a best guess, documented in docs/emulator.md.
    """
    return method.upper() in _WRITE_METHODS and _NOT_CONTENT.match(path) is None


def installation_quota(repository_count: int) -> int:
    """An installation's requests (or GraphQL points) an hour, by GitHub's formula."""
    extra = max(0, repository_count - INSTALLATION_FREE_REPOSITORIES) * INSTALLATION_QUOTA_PER_REPOSITORY
    return min(INSTALLATION_MAX_QUOTA, INSTALLATION_BASE_QUOTA + extra)


@dataclass(frozen=True, slots=True)
class SecondaryLimits:
    """The secondary limits in force (GitHub's numbers by default)."""

    content_per_minute: int = 80
    content_per_hour: int = 500
    max_concurrent: int = 100


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused with a secondary limit (``reason`` is for the request log)."""

    reason: str
    retry_after: int  # seconds until the window that was exceeded has room again


@dataclass
class _Window:
    content: deque[float] = field(default_factory=deque)  # times of content-creating requests
    inflight: int = 0


def _trim(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()


class TrafficState:
    """Per-caller counters for the secondary limits (thread-safe; ``clock`` is injectable)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def enter(self, key: str) -> int:
        """Count one more request in flight for ``key``; returns how many are now in flight."""
        with self._lock:
            window = self._windows.setdefault(key, _Window())
            window.inflight += 1
            return window.inflight

    def leave(self, key: str) -> None:
        with self._lock:
            window = self._windows.get(key)
            if window is not None and window.inflight > 0:
                window.inflight -= 1

    def admit(self, key: str, content_creating: bool, limits: SecondaryLimits) -> Refusal | None:
        """Record a request for ``key`` if the secondary limits allow it, else say why not.

        Refused requests are not counted (GitHub does not document whether they are; counting
        them would lock a client that retries at once out for good).
        """
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(key, _Window())
            if window.inflight > limits.max_concurrent:
                return Refusal("concurrency", 1)
            _trim(window.content, now - 3600)
            if content_creating:
                last_minute = [t for t in window.content if t > now - 60]
                if len(last_minute) >= limits.content_per_minute:
                    return Refusal("content_per_minute", max(1, int(last_minute[0] + 60 - now) + 1))
                if len(window.content) >= limits.content_per_hour:
                    return Refusal("content_per_hour", max(1, int(window.content[0] + 3600 - now) + 1))
            if content_creating:
                window.content.append(now)
            return None
