"""The GitHub App client (the `GitHubApp` port over REST): every call goes through `request()`, which
authenticates, throttles, retries, revalidates with ETags, logs, counts and maps errors.

App-level operations live here; one repository's operations (the `GitHubRepo` port) live in
`adapters/github/repo.py` over this client's `request()` and `pages()`.

Synchronous and thread-safe (ghsync's services run in worker threads): one pooled `httpx.Client`,
per-installation state (last rate-limit headers, a semaphore bounding concurrency, a lock serialising
writes), installation tokens through a `TokenCache`, and the rate-limit cool-downs and last quota in a
`ThrottleState` shared with the deployment's other processes.

Rules and where GitHub states them:
- serial writes, bounded concurrency, conditional requests, Retry-After, >= 1 min after a secondary
  limit, follow redirects: https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
- quota headers: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from ghsync.adapters.github import deliveries, graphql, metrics, parsing, policy
from ghsync.adapters.github.auth import AppJwt, InstallationTokens, parse_expires_at
from ghsync.adapters.github.config import GitHubAppConfig
from ghsync.adapters.github.etag import EtagCache, EtagEntry, EtagKey
from ghsync.adapters.github.repo import RestGitHubRepo
from ghsync.adapters.github.token_cache import CachedToken, InMemoryTokenCache, TokenCache
from ghsync.adapters.throttle import InMemoryThrottleState
from ghsync.domain.errors import (
    AppNotInstalled,
    GitHubConnectionError,
    GitHubError,
    GitHubNotFound,
    GitHubServerError,
    RepositoryNotFound,
    RetryAt,
    RetryKind,
)
from ghsync.domain.github import Branch, Installation, RateLimitState, Repository
from ghsync.domain.models import Author
from ghsync.domain.polling import HeadsRead
from ghsync.domain.redelivery import HookDelivery
from ghsync.observability.logging import get_logger, remember_secret
from ghsync.ports.github import Priority, record_request
from ghsync.ports.throttle import ThrottleState

log = get_logger("ghsync.github")

API_VERSION = "2022-11-28"  # https://docs.github.com/en/rest/about-the-rest-api/api-versions
ACCEPT = "application/vnd.github+json"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Path parameters that may contain "/" (refs like heads/feature/x, file paths, base...head).
_SLASHED_PARAMS = frozenset({"ref", "branch", "path", "basehead"})
_PRIORITY: ContextVar[Priority] = ContextVar("ghsync_github_priority", default="background")


@dataclass(frozen=True)
class GitHubResponse:
    status: int  # 200 also when a 304 was answered from the ETag cache (see `from_cache`)
    body: Any
    headers: httpx.Headers
    from_cache: bool = False


class _InstallationState:
    """Per installation (or "app" for JWT calls): quota, concurrency, write order; the cool-down of the
    App's own (JWT) calls, which the throttle state (keyed by installation) does not hold."""

    def __init__(self, installation_id: int | None, concurrency: int) -> None:
        self.installation_id = installation_id
        self.lock = threading.Lock()
        self.semaphore = threading.BoundedSemaphore(concurrency)
        self.write_lock = threading.Lock()
        self.last_write = 0.0
        self.rate: RateLimitState | None = None
        self.quota_shared_at: float | None = None  # monotonic time of the last write to the throttle state
        self.in_flight = 0
        self.blocked_until: datetime | None = None
        self.blocked_kind: RetryKind = "secondary"
        self.secondary_strikes = 0


def _expand(route: str, params: Mapping[str, str | int]) -> str:
    """Fill a route template: `/repos/{owner}/{repo}` + params -> a percent-encoded path.

    Plain `str.format_map` over percent-encoded values (`/` kept only in refs, paths and
    `base...head`), so a missing parameter fails loudly instead of reaching GitHub.
    """
    quoted = {
        name: quote(str(value), safe="/" if name in _SLASHED_PARAMS else "") for name, value in params.items()
    }
    try:
        return route.format_map(quoted)
    except KeyError as exc:
        raise ValueError(f"unfilled parameter {exc} in route {route!r}") from None


class GitHubAppClient:
    """A GitHub App's view of GitHub. Construct once per process; close() at shutdown.

    Calls are background work unless made inside `with client.priority("user"):` (or with
    `priority="user"`); background work stops at `rate_limit_buffer` remaining requests.
    `throttle` is the deployment's shared throttle state (default: this process's own).
    """

    def __init__(
        self,
        config: GitHubAppConfig,
        token_cache: TokenCache | None = None,
        *,
        throttle: ThrottleState | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._base = config.api_url.rstrip("/")
        self._sleep = sleep
        self._now = now
        self._rng = rng or random.Random()
        self._jwt = AppJwt(config.app_id, config.private_key)
        self._tokens = InstallationTokens(
            app_id=config.app_id,
            api_url=config.api_url,
            cache=token_cache or InMemoryTokenCache(lock_timeout=config.token_lock_timeout),
            fetch=self._create_installation_token,
            ttl=config.token_cache_ttl,
        )
        self._throttle: ThrottleState = throttle if throttle is not None else InMemoryThrottleState()
        self._identity: Author | None = None
        self._etags = EtagCache(config.etag_cache_size)
        self._states: dict[str, _InstallationState] = {}
        self._states_lock = threading.Lock()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._http = httpx.Client(
            transport=transport,
            timeout=config.timeout,
            follow_redirects=True,  # renamed repositories answer 301/307
            limits=limits,
            headers={"User-Agent": config.user_agent, "X-GitHub-Api-Version": API_VERSION},
        )

    def __repr__(self) -> str:
        return f"GitHubAppClient(app_id={self.config.app_id!r}, api_url={self._base!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubAppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    @contextlib.contextmanager
    def priority(priority: Priority) -> Iterator[None]:
        """Mark the calls made in this block (this thread/context) as user-triggered or background."""
        token = _PRIORITY.set(priority)
        try:
            yield
        finally:
            _PRIORITY.reset(token)

    # ---- installation tokens for git (the smart-HTTP transport authenticates with them too) ------

    def installation_token(self, installation_id: int) -> str:
        """The cached installation token (fetched when needed), for git's `x-access-token` auth."""
        return self._tokens.token(installation_id)

    def invalidate_installation_token(self, installation_id: int, token: str) -> None:
        """Drop `token` after git got a 401 with it (unless another caller already replaced it)."""
        self._tokens.invalidate(installation_id, token)

    # ---- operations ----------------------------------------------------------------------------

    def find_installation(self, owner: str, repo: str) -> int:
        """The id of the App's installation that can access `owner/repo`.

        Raises `RepositoryNotFound` or `AppNotInstalled` (both `GitHubNotFound`).
        """
        params = {"owner": owner, "repo": repo}
        try:
            body = self.request("GET", "/repos/{owner}/{repo}/installation", params=params).body
            return int(body["id"])
        except GitHubNotFound:
            pass
        # GitHub answers that 404 both for a missing repository and for one the App is not
        # installed on; the account's installation tells the two apart when it covers all repos
        # (https://docs.github.com/en/rest/apps/apps#get-a-user-installation-for-the-authenticated-app).
        account: Installation | None = None
        try:
            body = self.request("GET", "/users/{owner}/installation", params={"owner": owner}).body
            account = parsing.installation(body)
        except GitHubNotFound:
            # A GitHub without that endpoint (older GHES) or no installation on the account:
            # the App's own list settles it.
            account = next((i for i in self.list_installations() if i.account.lower() == owner.lower()), None)
        if account is None:
            raise AppNotInstalled(
                f"the GitHub App is not installed on the account {owner!r}",
                status=404,
                method="GET",
                route="/repos/{owner}/{repo}/installation",
            )
        if account.repository_selection == "all":
            raise RepositoryNotFound(
                f"repository {owner}/{repo} not found",
                status=404,
                method="GET",
                route="/repos/{owner}/{repo}/installation",
            )
        raise AppNotInstalled(
            f"repository {owner}/{repo} is not among the repositories selected for the GitHub App's "
            f"installation on {owner!r} (or does not exist)",
            status=404,
            method="GET",
            route="/repos/{owner}/{repo}/installation",
        )

    def list_installations(self) -> list[Installation]:
        """Every installation of the App (`GET /app/installations`, every page)."""
        return [
            parsing.installation(item)
            for page in self.pages("GET", "/app/installations", query={"per_page": 100})
            for item in (page.body if isinstance(page.body, list) else [])
        ]

    def get_installation(self, installation_id: int) -> Installation:
        body = self.request(
            "GET", "/app/installations/{installation_id}", params={"installation_id": installation_id}
        ).body
        return parsing.installation(body)

    def get_repository_by_id(self, installation_id: int, repository_id: int) -> Repository:
        """The repository by its stable id, so a renamed or transferred repository is followed."""
        body = self.request(
            "GET",
            "/repositories/{repository_id}",
            params={"repository_id": repository_id},
            installation_id=installation_id,
            etag=True,
        ).body
        return parsing.repository(body)

    def app_identity(self) -> Author:
        """The App's bot account as a commit's committer: `<slug>[bot]` with its noreply email, whose id
        is the bot user's (https://docs.github.com/en/rest/users/users#get-a-user). Read once."""
        if self._identity is None:
            slug = str(self.request("GET", "/app").body["slug"])
            login = f"{slug}[bot]"
            bot = self.request("GET", "/users/{username}", params={"username": login}).body
            self._identity = Author(login, f"{bot['id']}+{login}@users.noreply.github.com")
        return self._identity

    def repo(self, installation_id: int, owner: str, name: str) -> RestGitHubRepo:
        """The `GitHubRepo` port of `owner/name` through `installation_id` (no request is made)."""
        return RestGitHubRepo(self, installation_id, owner, name)

    def default_branch_heads(self, installation_id: int, repos: Sequence[tuple[str, str]]) -> HeadsRead:
        """The default-branch heads of `repos` over GraphQL, one query per 100 (see `graphql.py`)."""
        return graphql.default_branch_heads(self, installation_id, repos)

    def list_hook_deliveries(self, *, since: datetime | None = None) -> list[HookDelivery]:
        """The App webhook's delivery attempts, newest first, back to `since` (see `deliveries.py`)."""
        return deliveries.list_hook_deliveries(self, since=since)

    def redeliver_hook_delivery(self, delivery_id: int) -> None:
        """Ask GitHub to redeliver one delivery of the App's webhook."""
        deliveries.redeliver_hook_delivery(self, delivery_id)

    def rate_limit(self, installation_id: int) -> RateLimitState | None:
        """The last quota seen for the installation, here or by another process (no request is made)."""
        state = self._states.get(str(installation_id))
        if state is not None:
            with state.lock:
                if state.rate is not None:
                    return state.rate
        return self._throttle.last_quota(installation_id)

    # ---- kept for the linking service until it moves onto `repo()` ----------------------------

    def get_repository(self, installation_id: int, owner: str, repo: str) -> Repository:
        """The repository (following GitHub's redirect when it was renamed or transferred)."""
        return self.repo(installation_id, owner, repo).get_repository()

    def get_branch(self, installation_id: int, owner: str, repo: str, branch: str) -> Branch | None:
        """The branch (head SHA and `protected`), or None when it does not exist."""
        return self.repo(installation_id, owner, repo).get_branch(branch)

    def is_branch_protected(self, installation_id: int, owner: str, repo: str, branch: str) -> bool:
        """Whether `branch` is protected. A branch that does not exist yet is not."""
        found = self.get_branch(installation_id, owner, repo, branch)
        return bool(found and found.protected)

    def get_branch_head(self, installation_id: int, owner: str, repo: str, branch: str) -> str | None:
        """The commit SHA `branch` points at; None when the branch (or any commit) does not exist."""
        return self.repo(installation_id, owner, repo).get_ref_sha(branch)

    # ---- the request path ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str | int] | None = None,
        installation_id: int | None = None,
        query: Mapping[str, str | int] | None = None,
        json: Any = None,
        etag: bool = False,
        accept: str = ACCEPT,
        priority: Priority | None = None,
        idempotent: bool | None = None,
        url: str | None = None,
        counted: bool = True,
        read_only: bool = False,
    ) -> GitHubResponse:
        """One API call. `route` is a template (`/repos/{owner}/{repo}/git/ref/{ref}`) filled from
        `params`; `installation_id` None authenticates as the App (JWT). Raises `GitHubError`s.

        `idempotent`: whether sending the request twice is harmless, so a 5xx or a lost response may
        be retried (default: every method but POST; blob, tree and commit creation pass True, since
        git objects are content-addressed). `url`: an absolute URL GitHub gave (a `Link: rel=next`),
        used instead of the route's. `counted`: whether `counting_requests()` sees it (not for the
        installation-token request, which is the transport's overhead, not the operation's).
        `read_only`: a POST that only reads (a GraphQL query), so neither paced nor serialised as a
        write, nor counted as content-creating.
        """
        method = method.upper()
        if url is None:
            url = self._base + _expand(route, params or {})
        elif not policy.same_origin(url, self._base):
            raise GitHubError(f"refusing to follow a link to another host: {url}", method=method, route=route)
        inst_label = "app" if installation_id is None else str(installation_id)
        state = self._state(inst_label, installation_id)
        prio: Priority = priority or _PRIORITY.get()
        is_write = method not in _SAFE_METHODS and not read_only
        may_resend = idempotent if idempotent is not None else method != "POST"
        etag_key: EtagKey | None = None
        if etag and method == "GET":
            etag_key = (inst_label, url + ("?" + str(httpx.QueryParams(query)) if query else ""), accept)
        retry = 0
        reauthorized = False
        while True:
            self._admit(state, prio, method, route)
            try:
                credential = (
                    self._jwt.token() if installation_id is None else self._tokens.token(installation_id)
                )
                headers = {"Accept": accept, "Authorization": f"Bearer {credential}"}
                cached = self._etags.get(etag_key) if etag_key else None
                if cached is not None:
                    headers["If-None-Match"] = cached.etag
                started = time.monotonic()
                with self._slot(state, is_write):
                    if counted:
                        record_request("GET" if read_only else method)
                    resp = self._http.request(method, url, params=query, json=json, headers=headers)
            except httpx.TransportError as exc:
                elapsed = time.monotonic() - started
                self._record(
                    method, route, "error", elapsed, inst_label, state, retry, None, error=type(exc).__name__
                )
                if retry < self.config.max_retries and policy.may_resend_after(exc, may_resend):
                    retry += 1
                    metrics.RETRIES.labels("connection").inc()
                    self._sleep(self._backoff(retry))
                    continue
                raise GitHubConnectionError(
                    f"no response from GitHub ({type(exc).__name__})", method=method, route=route
                ) from None
            finally:
                with state.lock:
                    state.in_flight -= 1
            elapsed = time.monotonic() - started
            body = _body(resp)
            now = self._now()
            # A 401's X-RateLimit-* describe the unauthenticated bucket (60/hour), not this
            # installation's quota, so they must not be recorded as its state.
            remaining = (
                None if resp.status_code == 401 else self._observe_quota(state, resp.headers, now, inst_label)
            )
            self._record(
                method,
                route,
                str(resp.status_code),
                elapsed,
                inst_label,
                state,
                retry,
                resp.headers.get("x-github-request-id"),
                remaining=remaining,
                cached=resp.status_code == 304,
            )

            if resp.status_code == 304 and cached is not None:
                self._clear_strikes(state)
                return GitHubResponse(200, cached.body, resp.headers, from_cache=True)
            if resp.status_code == 401 and not reauthorized:
                # An expired or revoked token: drop it (only if nobody replaced it yet), fetch a new
                # one and try once more.
                reauthorized = True
                if installation_id is None:
                    self._jwt.invalidate()
                else:
                    self._tokens.invalidate(installation_id, credential)
                metrics.RETRIES.labels("unauthorized").inc()
                continue

            strikes = self._count_secondary(state, resp.status_code, body)
            decision = policy.classify(
                resp.status_code,
                resp.headers,
                body,
                now=now,
                secondary_strikes=strikes,
                secondary_min_wait=self.config.secondary_rate_limit_min_wait,
                secondary_max_wait=self.config.secondary_rate_limit_max_wait,
                retry=retry + 1,
                base_delay=self.config.retry_base_delay,
                max_delay=self.config.retry_max_delay,
                rng=self._rng,
            )
            if decision is None:
                self._clear_strikes(state)
                if etag_key is not None and resp.status_code == 200 and resp.headers.get("etag"):
                    self._etags.put(etag_key, EtagEntry(resp.headers["etag"], body))
                return GitHubResponse(resp.status_code, body, resp.headers)
            if isinstance(decision, policy.Fail):
                error = decision.error
                error.method, error.route = method, route
                raise error
            request_id = resp.headers.get("x-github-request-id")
            if decision.rate_limit_kind is not None:
                # Held per installation, so every caller waits (or reschedules), not just this one.
                self._block(state, now + timedelta(seconds=decision.delay), decision.rate_limit_kind)
                if retry >= self.config.max_retries or decision.delay > self.config.max_inline_wait:
                    metrics.RATE_LIMIT_WAITS.labels(decision.rate_limit_kind).inc()
                    log.warning(
                        "github.rate_limited",
                        kind=decision.rate_limit_kind,
                        method=method,
                        route=route,
                        retry_in_seconds=round(decision.delay, 1),
                        installation=inst_label,
                    )
                    message, doc = policy.error_message(body, resp.status_code)
                    raise RetryAt(
                        now + timedelta(seconds=decision.delay),
                        message,
                        kind=decision.rate_limit_kind,
                        status=resp.status_code,
                        documentation_url=doc,
                        request_id=request_id,
                        method=method,
                        route=route,
                    )
                retry += 1
                metrics.RETRIES.labels(decision.reason).inc()
                continue  # _admit waits inline or raises RetryAt
            if retry >= self.config.max_retries or not may_resend:
                # A 5xx to a request that is not safe to repeat (creating a pull request) may still
                # have been processed: the caller re-reads before trying again.
                message, doc = policy.error_message(body, resp.status_code)
                raise GitHubServerError(
                    message,
                    status=resp.status_code,
                    documentation_url=doc,
                    request_id=request_id,
                    method=method,
                    route=route,
                )
            retry += 1
            metrics.RETRIES.labels(decision.reason).inc()
            self._sleep(decision.delay)

    def pages(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str | int] | None = None,
        installation_id: int | None = None,
        query: Mapping[str, str | int] | None = None,
        max_pages: int = 100,
    ) -> Iterator[GitHubResponse]:
        """Every page of a paginated call, following GitHub's `Link: rel="next"` (never building page
        numbers: https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api)."""
        response = self.request(method, route, params=params, installation_id=installation_id, query=query)
        yield response
        for _ in range(max_pages - 1):
            next_url = policy.next_link(response.headers.get("link"))
            if next_url is None:
                return
            response = self.request(method, route, installation_id=installation_id, url=next_url)
            yield response
        raise GitHubError(f"more than {max_pages} pages", method=method, route=route)

    # ---- internals -----------------------------------------------------------------------------

    def _state(self, label: str, installation_id: int | None) -> _InstallationState:
        with self._states_lock:
            state = self._states.get(label)
            if state is None:
                state = self._states[label] = _InstallationState(
                    installation_id, self.config.max_concurrency_per_installation
                )
            return state

    def _cooldown(self, state: _InstallationState, now: datetime) -> tuple[datetime, RetryKind] | None:
        """The cool-down in force: the shared one for an installation, the local one for App calls."""
        if state.installation_id is not None:
            found = self._throttle.cooldown(state.installation_id, now)
            return (found.until, _kind(found.kind)) if found is not None else None
        with state.lock:
            if state.blocked_until is not None and state.blocked_until > now:
                return state.blocked_until, state.blocked_kind
        return None

    def _admit(self, state: _InstallationState, prio: Priority, method: str, route: str) -> None:
        """Wait (inline, when short) until the installation may send one more request, or raise RetryAt.

        Counts the request as in flight, so concurrent callers don't all spend the last requests.
        """
        while True:
            now = self._now()
            cooldown = self._cooldown(state, now)
            if state.installation_id is not None and state.rate is None:
                # Another process's last observation, until this one has its own.
                seen = self._throttle.last_quota(state.installation_id)
                if seen is not None:
                    with state.lock:
                        state.rate = policy.merge_rate_limit(state.rate, seen)
            with state.lock:
                wait: tuple[float, RetryKind] | None = None
                if cooldown is not None:
                    wait = ((cooldown[0] - now).total_seconds(), cooldown[1])
                else:
                    rate = state.rate
                    if rate is not None and state.in_flight:
                        rate = RateLimitState(
                            rate.limit,
                            rate.remaining - state.in_flight,
                            rate.reset_at,
                            rate.used,
                            rate.resource,
                        )
                    wait = policy.admission_wait(
                        rate, buffer=self.config.rate_limit_buffer, priority=prio, now=now
                    )
                if wait is None:
                    state.in_flight += 1
                    return
            seconds, kind = wait
            metrics.RATE_LIMIT_WAITS.labels(kind).inc()
            if seconds > self.config.max_inline_wait:
                log.warning(
                    "github.rate_limited",
                    kind=kind,
                    method=method,
                    route=route,
                    retry_in_seconds=round(seconds, 1),
                    priority=prio,
                )
                raise RetryAt(
                    now + timedelta(seconds=seconds),
                    f"GitHub {kind} rate limit",
                    kind=kind,
                    method=method,
                    route=route,
                )
            self._sleep(seconds)

    @contextlib.contextmanager
    def _slot(self, state: _InstallationState, is_write: bool) -> Iterator[None]:
        # Writes of one installation go one at a time ("make requests serially instead of
        # concurrently" - GitHub's best practices); all requests share a bounded semaphore.
        write_lock = state.write_lock if is_write else contextlib.nullcontext()
        with write_lock:
            if is_write and self.config.min_write_interval > 0:
                pause = state.last_write + self.config.min_write_interval - time.monotonic()
                if pause > 0:
                    self._sleep(pause)
            with state.semaphore:
                try:
                    yield
                finally:
                    if is_write:
                        state.last_write = time.monotonic()

    def _observe_quota(
        self, state: _InstallationState, headers: httpx.Headers, now: datetime, label: str
    ) -> int | None:
        seen = policy.parse_rate_limit(headers, now)
        if seen is None:
            return None
        if seen.resource != "core":
            # Other buckets (search, graphql, ...) have their own quotas; the reserve guards "core".
            return seen.remaining
        with state.lock:
            previous = state.rate
            state.rate = merged = policy.merge_rate_limit(previous, seen)
            share = policy.should_share_quota(
                previous,
                merged,
                shared_at=state.quota_shared_at,
                now=time.monotonic(),
                buffer=self.config.rate_limit_buffer,
            )
            if share:
                state.quota_shared_at = time.monotonic()
        if share and state.installation_id is not None:
            self._throttle.record_quota(state.installation_id, merged)
        metrics.RATE_LIMIT_REMAINING.labels(label).set(merged.remaining)
        return merged.remaining

    def _count_secondary(self, state: _InstallationState, status: int, body: Any) -> int:
        message, _ = policy.error_message(body, status)
        with state.lock:
            if policy.is_secondary_rate_limit(status, message):
                state.secondary_strikes += 1
            return state.secondary_strikes

    def _clear_strikes(self, state: _InstallationState) -> None:
        with state.lock:
            state.secondary_strikes = 0

    def _block(self, state: _InstallationState, until: datetime, kind: RetryKind) -> None:
        # Held per installation in the shared throttle state, so every caller of every process waits
        # (or reschedules), not just this one.
        if state.installation_id is not None:
            self._throttle.block(state.installation_id, until, kind)
            return
        with state.lock:
            if state.blocked_until is None or until > state.blocked_until:
                state.blocked_until = until
                state.blocked_kind = kind

    def now(self) -> datetime:
        """The client's clock (UTC), injectable in tests."""
        return self._now()

    def pause(self, retry: int) -> None:
        """Sleep the backoff of retry number `retry` (for operations that retry above `request()`)."""
        self._sleep(self._backoff(retry))

    def _backoff(self, retry: int) -> float:
        return policy.backoff_delay(
            retry, base=self.config.retry_base_delay, cap=self.config.retry_max_delay, rng=self._rng
        )

    def _record(
        self,
        method: str,
        route: str,
        status: str,
        elapsed: float,
        installation: str,
        state: _InstallationState,
        retry: int,
        request_id: str | None,
        *,
        remaining: int | None = None,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        metrics.REQUESTS.labels(method, route, status).inc()
        metrics.DURATION.labels(method, route).observe(elapsed)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 1),
            "installation": installation,
            "rate_remaining": remaining,
            "attempt": retry + 1,
        }
        if request_id:
            fields["request_id"] = request_id
        if cached:
            fields["not_modified"] = True
        if error:
            fields["error"] = error
        log.info("github.request", **fields)

    def _create_installation_token(self, installation_id: int) -> CachedToken:
        # App-level (JWT) quota is separate from the installation's, so no reserve applies here.
        resp = self.request(
            "POST",
            "/app/installations/{installation_id}/access_tokens",
            params={"installation_id": installation_id},
            priority="user",
            counted=False,
        )
        metrics.TOKEN_REQUESTS.inc()
        fallback = time.time() + 3600
        token = str(resp.body["token"])
        expires_at = parse_expires_at(resp.body.get("expires_at"), fallback)
        # Also as git's Basic credential (git_transport.py), whose base64 does not contain the token's.
        remember_secret(token, f"x-access-token:{token}", expires_at=expires_at)
        return CachedToken(token=token, expires_at=expires_at)


def _kind(value: str) -> RetryKind:
    return "primary" if value == "primary" else "secondary"


def _body(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text


__all__ = ["ACCEPT", "API_VERSION", "GitHubAppClient", "GitHubResponse"]
