"""Pure decisions of the GitHub client: rate-limit bookkeeping, backoff, and response classification.

No I/O, no clocks, no randomness of their own (callers pass `now` and a `random.Random`), so every
rule is unit-tested in tests/unit/test_github_policy.py. The client applies the decisions.

GitHub's rules behind them:
- Rate-limit headers and handling:
  https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
- Best practices (Retry-After, wait >= 1 min for a secondary limit without it, exponential backoff,
  conditional requests, serial writes):
  https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#handle-rate-limit-errors-appropriately
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ghsync.domain.errors import (
    BranchProtected,
    GitHubConflict,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubUnauthorized,
    GitHubValidation,
    NotFastForward,
    RepositoryEmpty,
    RetryKind,
)
from ghsync.domain.github import RateLimitState
from ghsync.ports.github import Priority


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (httpx.Headers already is; plain dicts in tests are not)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


# ---- rate-limit bookkeeping ------------------------------------------------------------------


def parse_rate_limit(headers: Mapping[str, str], now: datetime) -> RateLimitState | None:
    """`X-RateLimit-Limit/Remaining/Reset/Used/Resource` as a state, or None when absent or malformed."""
    remaining = _header(headers, "x-ratelimit-remaining")
    reset = _header(headers, "x-ratelimit-reset")
    if remaining is None or reset is None:
        return None
    try:
        used = _header(headers, "x-ratelimit-used")
        return RateLimitState(
            limit=int(_header(headers, "x-ratelimit-limit") or 0),
            remaining=int(remaining),
            reset_at=datetime.fromtimestamp(int(reset), tz=UTC),
            used=int(used) if used is not None else None,
            resource=_header(headers, "x-ratelimit-resource") or "core",
            observed_at=now,
        )
    except ValueError:
        return None


def merge_rate_limit(old: RateLimitState | None, new: RateLimitState) -> RateLimitState:
    """Combine what we knew with a response's headers.

    Responses of concurrent requests arrive out of order, so within one window (same reset time)
    the lowest `remaining` wins; a later reset time means a new window and replaces the old state.
    """
    if old is None or old.resource != new.resource or new.reset_at > old.reset_at:
        return new
    if new.reset_at < old.reset_at:
        return old
    return new if new.remaining <= old.remaining else old


def admission_wait(
    state: RateLimitState | None, *, buffer: int, priority: Priority, now: datetime
) -> tuple[float, RetryKind] | None:
    """Seconds to wait before one more request may be sent, and why; None when it may go now.

    Background work stops at `buffer` remaining requests (the reserve GitHub's quota keeps for
    user-triggered work); user work may spend the reserve down to zero.
    """
    if state is None or state.reset_at <= now:
        return None
    floor = buffer if priority == "background" else 0
    if state.remaining > floor:
        return None
    wait = (state.reset_at - now).total_seconds()
    return wait, ("reserve" if state.remaining > 0 else "primary")


QUOTA_SHARE_INTERVAL = 5.0  # seconds between writes of an unremarkable quota to the throttle state


def should_share_quota(
    previous: RateLimitState | None,
    current: RateLimitState,
    *,
    shared_at: float | None,
    now: float,
    buffer: int,
) -> bool:
    """Whether to write the quota just seen to the shared throttle state.

    Every response carries one, and the state may be the database: so a quota is written when it is
    the first, a new window, near the reserve (where other processes must know it), or when the last
    write is `QUOTA_SHARE_INTERVAL` old; otherwise it stays in this process.
    """
    if shared_at is None or previous is None or current.reset_at != previous.reset_at:
        return True
    if current.remaining <= 2 * buffer:
        return True
    return now - shared_at >= QUOTA_SHARE_INTERVAL


# ---- backoff -----------------------------------------------------------------------------------


def backoff_delay(retry: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter" for 5xx and connection errors.

    `retry` is 1 for the first retry. The delay is in [d/2, d] with d = min(cap, base * 2**(retry-1)):
    growing, bounded, and spread so that clients failing together don't retry together.
    """
    d = min(cap, base * 2.0 ** max(0, retry - 1))
    return d / 2 + rng.uniform(0, d / 2)


def secondary_backoff(strikes: int, *, min_wait: float = 60.0, max_wait: float = 900.0) -> float:
    """Wait after a secondary rate limit that came without Retry-After.

    GitHub: "wait for at least one minute before retrying. If your request continues to fail due to
    a secondary rate limit, wait for an exponentially increasing amount of time between retries."
    `strikes` counts consecutive secondary limits of the installation (1 for the first).
    """
    return min(max_wait, min_wait * 2.0 ** max(0, strikes - 1)) if max_wait >= min_wait else min_wait


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# ---- classification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """Send the request again after `delay` seconds (the client decides inline sleep vs RetryAt)."""

    delay: float
    reason: (
        str  # metrics label: server_error, connection, secondary_rate_limit, primary_rate_limit, unauthorized
    )
    rate_limit_kind: RetryKind | None = None


@dataclass(frozen=True)
class Fail:
    error: GitHubError


Decision = Retry | Fail | None  # None: success (2xx/304), hand the body back


def error_message(body: Any, status: int) -> tuple[str, str | None]:
    """GitHub's `message` and `documentation_url` from an error body (any shape)."""
    if isinstance(body, Mapping):
        message = body.get("message")
        doc = body.get("documentation_url")
        return (str(message) if message else f"HTTP {status}"), (str(doc) if doc else None)
    return f"HTTP {status}", None


def is_secondary_rate_limit(status: int, message: str) -> bool:
    # GitHub's secondary-limit message: "You have exceeded a secondary rate limit ..."
    # (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#rate-limit-errors).
    lowered = message.lower()
    return status in (403, 429) and ("secondary rate limit" in lowered or "abuse" in lowered)


def parse_accepted_permissions(value: str | None) -> dict[str, str]:
    """`X-Accepted-GitHub-Permissions: contents=write; pull_requests=read` -> dict (first alternative set)."""
    out: dict[str, str] = {}
    if not value:
        return out
    for part in value.replace(";", ",").split(","):
        name, sep, level = part.strip().partition("=")
        if sep and name.strip():
            out.setdefault(name.strip(), level.strip())
    return out


def classify(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    now: datetime,
    secondary_strikes: int,
    secondary_min_wait: float = 60.0,
    secondary_max_wait: float = 900.0,
    retry: int,
    base_delay: float,
    max_delay: float,
    rng: random.Random,
) -> Decision:
    """What to do with one response.

    `secondary_strikes` is the installation's count of consecutive secondary limits *including*
    this response if it is one; `retry` is the number this retry would be (1 for the first).
    """
    if status < 400:
        return None
    message, doc = error_message(body, status)
    request_id = _header(headers, "x-github-request-id")
    fields: dict[str, Any] = {"status": status, "documentation_url": doc, "request_id": request_id}

    if status in (403, 429):
        retry_after = retry_after_seconds(headers, now)
        if retry_after is not None:
            # "If the retry-after response header is present, you should not retry your request
            # until after that many seconds has elapsed."
            kind: RetryKind = "primary" if _header(headers, "x-ratelimit-remaining") == "0" else "secondary"
            return Retry(retry_after, f"{kind}_rate_limit", kind)
        if is_secondary_rate_limit(status, message):
            wait = secondary_backoff(
                secondary_strikes, min_wait=secondary_min_wait, max_wait=secondary_max_wait
            )
            return Retry(wait, "secondary_rate_limit", "secondary")
        if _header(headers, "x-ratelimit-remaining") == "0":
            # "If the x-ratelimit-remaining header is 0, you should not retry your request until
            # after the time specified by the x-ratelimit-reset header."
            state = parse_rate_limit(headers, now)
            wait = max(0.0, (state.reset_at - now).total_seconds()) if state else secondary_min_wait
            return Retry(wait, "primary_rate_limit", "primary")
        if status == 429:
            return Retry(
                secondary_backoff(
                    secondary_strikes, min_wait=secondary_min_wait, max_wait=secondary_max_wait
                ),
                "secondary_rate_limit",
                "secondary",
            )
        accepted = parse_accepted_permissions(_header(headers, "x-accepted-github-permissions"))
        return Fail(GitHubForbidden(message, accepted_permissions=accepted, **fields))

    if status >= 500:
        # 5xx are transient on GitHub's side; octokit's retry plugin retries them for every method.
        return Retry(backoff_delay(retry, base=base_delay, cap=max_delay, rng=rng), "server_error")

    if status == 401:
        return Fail(GitHubUnauthorized(message, **fields))
    if status == 404:
        return Fail(GitHubNotFound(message, **fields))
    if status == 409:
        # "Git Database API functions will return a 409 Conflict if the Git repository is empty"
        # (https://docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database).
        if "repository is empty" in message.lower():
            return Fail(RepositoryEmpty(message, **fields))
        return Fail(GitHubConflict(message, **fields))
    if status == 422:
        errors = body.get("errors") if isinstance(body, Mapping) else None
        # "Update is not a fast forward" is the compare-and-swap failure of PATCH .../git/refs/{ref}
        # with force=false (https://docs.github.com/en/rest/git/refs#update-a-reference).
        if "fast forward" in message.lower() or "fast-forward" in message.lower():
            return Fail(NotFastForward(message, errors=errors, **fields))
        if is_protection_refusal(message):
            return Fail(BranchProtected(message, errors=errors, **fields))
        return Fail(GitHubValidation(message, errors=errors, **fields))
    return Fail(GitHubError(message, **fields))


# Branch protection's refusals of a direct ref update (classic protection and rulesets):
# https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches
# https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-rulesets/about-rulesets
_PROTECTION_PHRASES = (
    "protected branch",  # "Protected branch update failed for refs/heads/main."
    "protected ref",  # "Cannot update this protected ref."
    "through a pull request",  # "Changes must be made through a pull request."
    "approving review",  # "At least 1 approving review is required by reviewers with write access."
    "status check",  # 'Required status check "ci" is expected.'
    "cannot force-push",  # "Cannot force-push to this branch"
    "repository rule violation",  # rulesets: "Repository rule violations found"
)


def is_protection_refusal(message: str) -> bool:
    """Whether a 422's message is branch protection (or a ruleset) refusing the update."""
    lowered = message.lower()
    return any(phrase in lowered for phrase in _PROTECTION_PHRASES)


# ---- pagination and resending ------------------------------------------------------------------


def next_link(link_header: str | None) -> str | None:
    """The `rel="next"` URL of a `Link` header, or None on the last page.

    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api#using-link-headers
    """
    if not link_header:
        return None
    for part in link_header.split(","):
        url, _, params = part.partition(";")
        rels = {
            p.strip().removeprefix("rel=").strip('"')
            for p in params.split(";")
            if p.strip().startswith("rel=")
        }
        for rel in rels:
            if "next" in rel.split():
                return url.strip().removeprefix("<").removesuffix(">")
    return None


def same_origin(url: str, base: str) -> bool:
    """Whether `url` is on the same scheme and host as the API `base` (a link to elsewhere would
    carry our token to another server)."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def may_resend_after(exc: httpx.TransportError, idempotent: bool) -> bool:
    """Whether a request that got no response may be sent again.

    A connect failure never reached GitHub, so anything may be resent; after other failures GitHub
    may have processed the request, so only an idempotent one is (POSTs creating git objects are
    content-addressed and pass idempotent=True; a POST creating a pull request is not).
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return idempotent
