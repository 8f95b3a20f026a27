"""Unit tests of the GitHub client's pure policy (backoff, rate-limit bookkeeping, classification),
its auth helpers, and the client's throttling decisions over an in-memory transport (no network)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ghsync.adapters.github import (
    BranchProtected,
    GitHubAppClient,
    GitHubAppConfig,
    GitHubConflict,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubServerError,
    GitHubUnauthorized,
    GitHubValidation,
    NotFastForward,
    RepositoryEmpty,
    RetryAt,
    policy,
)
from ghsync.adapters.github.auth import AppJwt, load_private_key
from ghsync.domain.errors import RetryLater
from ghsync.domain.github import RateLimitState
from ghsync.ports.github import counting_requests

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
RNG = random.Random(7)


def rl(remaining: int, reset_in: float = 600, limit: int = 5000) -> RateLimitState:
    return RateLimitState(limit=limit, remaining=remaining, reset_at=NOW + timedelta(seconds=reset_in))


def classify(
    status: int, headers: dict[str, str] | None = None, body: Any = None, strikes: int = 0, retry: int = 1
) -> policy.Decision:
    return policy.classify(
        status,
        headers or {},
        body,
        now=NOW,
        secondary_strikes=strikes,
        retry=retry,
        base_delay=0.5,
        max_delay=8.0,
        rng=RNG,
    )


# ---- rate-limit bookkeeping ------------------------------------------------------------------


def test_parse_rate_limit_reads_githubs_headers() -> None:
    reset = int((NOW + timedelta(minutes=30)).timestamp())
    state = policy.parse_rate_limit(
        {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4990",
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": "10",
            "X-RateLimit-Resource": "core",
        },
        NOW,
    )
    assert state is not None
    assert (state.limit, state.remaining, state.used, state.resource) == (5000, 4990, 10, "core")
    assert state.reset_at == NOW + timedelta(minutes=30)


@pytest.mark.parametrize(
    "headers", [{}, {"x-ratelimit-remaining": "1"}, {"x-ratelimit-remaining": "x", "x-ratelimit-reset": "1"}]
)
def test_parse_rate_limit_absent_or_malformed(headers: dict[str, str]) -> None:
    assert policy.parse_rate_limit(headers, NOW) is None


def test_merge_keeps_the_lowest_remaining_within_a_window_and_takes_a_new_window() -> None:
    assert policy.merge_rate_limit(rl(10), rl(12)).remaining == 10  # a late response of an earlier request
    assert policy.merge_rate_limit(rl(10), rl(8)).remaining == 8
    assert policy.merge_rate_limit(rl(10), rl(4999, reset_in=4000)).remaining == 4999  # new hour
    assert policy.merge_rate_limit(rl(10, reset_in=4000), rl(3)).remaining == 10  # stale window ignored
    assert policy.merge_rate_limit(None, rl(5)).remaining == 5


def test_background_work_stops_at_the_reserve_user_work_may_spend_it() -> None:
    assert policy.admission_wait(rl(101), buffer=100, priority="background", now=NOW) is None
    assert policy.admission_wait(rl(100), buffer=100, priority="background", now=NOW) == (600.0, "reserve")
    assert policy.admission_wait(rl(100), buffer=100, priority="user", now=NOW) is None
    assert policy.admission_wait(rl(1), buffer=100, priority="user", now=NOW) is None
    assert policy.admission_wait(rl(0), buffer=100, priority="user", now=NOW) == (600.0, "primary")
    assert policy.admission_wait(rl(0), buffer=100, priority="background", now=NOW) == (600.0, "primary")


def test_an_elapsed_window_admits_again() -> None:
    assert policy.admission_wait(rl(0, reset_in=-1), buffer=100, priority="background", now=NOW) is None
    assert policy.admission_wait(None, buffer=100, priority="background", now=NOW) is None


# ---- backoff ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    for retry, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        for _ in range(50):
            d = policy.backoff_delay(retry, base=0.5, cap=8.0, rng=rng)
            assert full / 2 <= d <= full
    draws = {round(policy.backoff_delay(3, base=0.5, cap=8.0, rng=rng), 6) for _ in range(20)}
    assert len(draws) > 1  # jittered


def test_secondary_limit_without_retry_after_waits_at_least_a_minute_then_longer() -> None:
    # GitHub: "wait for at least one minute before retrying ... an exponentially increasing amount of time"
    waits = [policy.secondary_backoff(n) for n in range(1, 8)]
    assert waits[0] >= 60
    assert all(w >= 60 for w in waits)
    assert waits[:5] == [60, 120, 240, 480, 900] and waits[-1] == 900  # doubling, capped at 15 min
    assert policy.secondary_backoff(1, min_wait=0.05, max_wait=1) == 0.05  # tests may shrink it


def test_retry_after_in_seconds_or_http_date() -> None:
    assert policy.retry_after_seconds({"Retry-After": "30"}, NOW) == 30
    assert policy.retry_after_seconds({"retry-after": "Wed, 01 Jan 2025 12:01:00 GMT"}, NOW) == 60
    assert policy.retry_after_seconds({"retry-after": "soon"}, NOW) is None
    assert policy.retry_after_seconds({}, NOW) is None


# ---- classification --------------------------------------------------------------------------


def test_success_and_not_modified_are_not_errors() -> None:
    assert classify(200) is None and classify(201) is None and classify(304) is None


def test_retry_after_is_honoured_on_403_and_429() -> None:
    for status in (403, 429):
        d = classify(status, {"Retry-After": "7"}, {"message": "You have exceeded a secondary rate limit."})
        assert d == policy.Retry(7.0, "secondary_rate_limit", "secondary")


def test_secondary_limit_message_without_retry_after_backs_off_a_minute_and_more() -> None:
    body = {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    }
    first = classify(403, {}, body, strikes=1)
    third = classify(403, {}, body, strikes=3)
    assert isinstance(first, policy.Retry) and first.delay >= 60 and first.rate_limit_kind == "secondary"
    assert isinstance(third, policy.Retry) and third.delay == 240


def test_primary_limit_exhausted_waits_until_reset() -> None:
    reset = int((NOW + timedelta(minutes=20)).timestamp())
    d = classify(
        403,
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        {"message": "API rate limit exceeded for installation ID 1."},
    )
    assert d == policy.Retry(1200.0, "primary_rate_limit", "primary")


def test_permission_403_is_forbidden_naming_the_permission() -> None:
    d = classify(
        403,
        {"X-Accepted-GitHub-Permissions": "contents=write", "X-GitHub-Request-Id": "AB:CD"},
        {"message": "Resource not accessible by integration", "documentation_url": "https://docs"},
    )
    assert isinstance(d, policy.Fail) and isinstance(d.error, GitHubForbidden)
    assert d.error.permission == "contents=write"
    assert (d.error.status, d.error.request_id, d.error.documentation_url) == (403, "AB:CD", "https://docs")


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (401, "Bad credentials", GitHubUnauthorized),
        (404, "Not Found", GitHubNotFound),
        (409, "Git Repository is empty.", RepositoryEmpty),
        (409, "Head branch was modified. Review and try the merge again.", GitHubConflict),
        (422, "Update is not a fast forward", NotFastForward),
        (422, "Changes must be made through a pull request.", BranchProtected),
        (422, "Protected branch update failed for refs/heads/main.", BranchProtected),
        (422, 'Required status check "ci" is expected.', BranchProtected),
        (422, "Reference already exists", GitHubValidation),
    ],
)
def test_client_errors_map_to_typed_errors(status: int, message: str, kind: type[Exception]) -> None:
    d = classify(status, {}, {"message": message, "errors": [{"code": "custom"}]})
    assert isinstance(d, policy.Fail) and type(d.error) is kind
    assert d.error.message == message and d.error.status == status


def test_server_errors_are_retried_with_backoff() -> None:
    for status in (500, 502, 503, 504):
        d = classify(status, retry=2)
        assert isinstance(d, policy.Retry) and d.reason == "server_error" and 0.5 <= d.delay <= 1.0
        assert d.rate_limit_kind is None


def test_retry_at_is_the_job_queues_retry_later() -> None:
    err = RetryAt(NOW, "rate limit", kind="primary", status=403, method="GET", route="/x")
    assert isinstance(err, RetryLater) and err.at == NOW and err.kind == "primary"
    assert "retry at" in str(err) and "GET /x" in str(err)
    with pytest.raises(ValueError):
        RetryAt(datetime(2025, 1, 1), "naive", kind="primary")


# ---- auth helpers ------------------------------------------------------------------------------


def _pem() -> tuple[str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return pem, key


PEM, KEY = _pem()


def test_private_key_from_text_escaped_text_or_file(tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(PEM)
    assert load_private_key(PEM) == load_private_key(str(path)) == load_private_key(PEM.replace("\n", "\\n"))
    with pytest.raises(ValueError) as info:
        load_private_key("-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----")
    assert "not-a-key" not in str(info.value)
    with pytest.raises(ValueError, match="neither PEM text nor a readable file"):
        load_private_key(str(tmp_path / "missing.pem"))


def test_app_jwt_claims_follow_githubs_rules() -> None:
    signer = AppJwt(42, PEM, clock=lambda: 1_700_000_000.0)
    token = signer.token()
    claims = jwt.decode(token, KEY.public_key(), algorithms=["RS256"], options={"verify_exp": False})
    assert claims == {"iss": "42", "iat": 1_700_000_000 - 60, "exp": 1_700_000_000 - 60 + 600}
    assert signer.token() == token  # reused while valid
    assert "PRIVATE" not in repr(signer) and PEM not in repr(GitHubAppConfig(app_id=1, private_key=PEM))


# ---- the client's throttling over an in-memory transport --------------------------------------


class FakeGitHub:
    """A scripted GitHub: `responses` per path (a list consumed in order; the last one repeats)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_writes_in_flight = 0
        self.writes_in_flight = 0
        self.lock = threading.Lock()
        self.delay = 0.0
        self.scripts: dict[str, list[httpx.Response]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.lock:
            self.calls.append((request.method, path))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if request.method != "GET":
                self.writes_in_flight += 1
                self.max_writes_in_flight = max(self.max_writes_in_flight, self.writes_in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if path.endswith("/access_tokens"):
                return httpx.Response(
                    201, json={"token": "ghs_secret_token_value", "expires_at": "2999-01-01T00:00:00Z"}
                )
            script = self.scripts.get(path)
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
            return httpx.Response(200, json={"ok": True})
        finally:
            with self.lock:
                self.in_flight -= 1
                if request.method != "GET":
                    self.writes_in_flight -= 1


def make_client(fake: FakeGitHub, sleeps: list[float] | None = None, **cfg: Any) -> GitHubAppClient:
    """A client whose sleeps are recorded and advance its clock instead of waiting."""
    config = GitHubAppConfig(app_id=1, private_key=PEM, api_url="https://ghes.example/api/v3", **cfg)
    clock = [datetime.now(UTC)]

    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    transport = httpx.MockTransport(fake.handler)
    return GitHubAppClient(config, transport=transport, sleep=sleep, now=lambda: clock[0])


def test_concurrency_per_installation_is_bounded_and_writes_are_serial() -> None:
    fake = FakeGitHub()
    fake.delay = 0.02
    client = make_client(fake, max_concurrency_per_installation=3)

    def work(i: int) -> None:
        client.request(
            "GET" if i % 2 else "POST",
            "/repos/{owner}/{repo}/git/blobs",
            params={"owner": "o", "repo": "r"},
            installation_id=9,
        )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.max_in_flight <= 3
    assert fake.max_writes_in_flight == 1
    assert len([c for c in fake.calls if c[1].endswith("/access_tokens")]) == 1


def test_short_secondary_wait_is_slept_inline_long_one_raises_retry_at() -> None:
    fake = FakeGitHub()
    limited = httpx.Response(
        403, headers={"Retry-After": "2"}, json={"message": "You have exceeded a secondary rate limit."}
    )
    fake.scripts["/api/v3/repos/o/r"] = [limited, httpx.Response(200, json={"ok": 1})]
    sleeps: list[float] = []
    client = make_client(fake, sleeps)
    assert client.request(
        "GET", "/repos/{owner}/{repo}", params={"owner": "o", "repo": "r"}, installation_id=1
    ).body == {"ok": 1}
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 2.0

    fake.scripts["/api/v3/repos/o/r"] = [
        httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."})
    ]
    before = datetime.now(UTC)
    with pytest.raises(RetryAt) as info:
        client.request("GET", "/repos/{owner}/{repo}", params={"owner": "o", "repo": "r"}, installation_id=1)
    assert info.value.kind == "secondary"
    assert info.value.at >= before + timedelta(seconds=60)  # GitHub's one-minute floor, default config
    # The installation is now cooling down: other callers reschedule without sending a request.
    sent = len(fake.calls)
    with pytest.raises(RetryAt):
        client.request("GET", "/repos/{owner}/{repo}", params={"owner": "o", "repo": "r"}, installation_id=1)
    assert len(fake.calls) == sent


def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    fake = FakeGitHub()
    fake.scripts["/api/v3/x"] = [httpx.Response(502, json={"message": "Server Error"})]
    sleeps: list[float] = []
    client = make_client(fake, sleeps, max_retries=2)
    with pytest.raises(GitHubServerError) as info:
        client.request("GET", "/x", installation_id=1)
    assert info.value.status == 502 and len(sleeps) == 2
    assert len([c for c in fake.calls if c[1] == "/api/v3/x"]) == 3


def test_connection_errors_are_retried_then_typed() -> None:
    attempts = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_tokens"):
            return httpx.Response(201, json={"token": "ghs_t", "expires_at": "2999-01-01T00:00:00Z"})
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    config = GitHubAppConfig(app_id=1, private_key=PEM, api_url="https://api.github.com")
    client = GitHubAppClient(config, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    assert client.request("GET", "/x", installation_id=1).body == {"ok": True}
    assert attempts["n"] == 3


def test_tokens_and_keys_never_reach_the_logs() -> None:
    fake = FakeGitHub()
    fake.scripts["/api/v3/y"] = [
        httpx.Response(401, json={"message": "Bad credentials"}),
        httpx.Response(200, json={}),
    ]
    client = make_client(fake)
    with structlog.testing.capture_logs() as logs:
        client.request("GET", "/y", installation_id=1)
    text = repr(logs)
    assert logs and "ghs_secret_token_value" not in text and "PRIVATE KEY" not in text
    assert {"method", "route", "status", "duration_ms", "installation", "rate_remaining"} <= set(logs[-1])


def test_a_401s_anonymous_quota_headers_are_not_the_installations() -> None:
    # GitHub answers a bad token with the unauthenticated bucket's headers (limit 60).
    fake = FakeGitHub()
    reset = str(int(time.time()) + 3000)
    anonymous = {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "59", "x-ratelimit-reset": reset}
    mine = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4000",
        "x-ratelimit-reset": str(int(time.time()) + 60),
    }
    fake.scripts["/api/v3/z"] = [
        httpx.Response(401, headers=anonymous, json={"message": "Bad credentials"}),
        httpx.Response(200, headers=mine, json={}),
    ]
    client = make_client(fake)
    client.request("GET", "/z", installation_id=3)
    state = client.rate_limit(3)
    assert state is not None and (state.limit, state.remaining) == (5000, 4000)


# ---- the repository operations' own rules over an in-memory transport -------------------------


def test_next_link_reads_githubs_link_header() -> None:
    header = (
        '<https://api.github.com/repositories/1/compare/a...b?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/compare/a...b?page=5>; rel="last"'
    )
    assert policy.next_link(header) == "https://api.github.com/repositories/1/compare/a...b?page=2"
    assert policy.next_link('<https://api.github.com/x?page=1>; rel="prev"') is None
    assert policy.next_link(None) is None
    assert policy.same_origin("https://ghes.example/api/v3/x?page=2", "https://ghes.example/api/v3")
    assert not policy.same_origin("https://evil.example/x", "https://ghes.example/api/v3")


def _scripted(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float] | None = None
) -> GitHubAppClient:
    def wrapped(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_tokens"):
            return httpx.Response(201, json={"token": "ghs_t", "expires_at": "2999-01-01T00:00:00Z"})
        return handler(request)

    config = GitHubAppConfig(app_id=1, private_key=PEM, api_url="https://ghes.example/api/v3")
    sleep = (lambda s: sleeps.append(s)) if sleeps is not None else (lambda s: None)
    return GitHubAppClient(config, transport=httpx.MockTransport(wrapped), sleep=sleep)


def test_compare_follows_link_next_across_pages() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        page = int(request.url.params.get("page", "1"))
        body = {
            "status": "ahead",
            "ahead_by": 5,
            "behind_by": 0,
            "merge_base_commit": {"sha": "b" * 40},
            "commits": [{"sha": f"{page}{i}".ljust(40, "0")} for i in range(2 if page < 3 else 1)],
        }
        headers = {}
        if page < 3:
            next_url = f"https://ghes.example/api/v3/repos/o/r/compare/main...x?per_page=2&page={page + 1}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return httpx.Response(200, json=body, headers=headers)

    with counting_requests() as count:
        result = _scripted(handler).repo(1, "o", "r").compare("main", "x")
    assert result.commits == tuple(
        f"{p}{i}".ljust(40, "0") for p, n in ((1, 2), (2, 2), (3, 1)) for i in range(n)
    )
    assert (result.status, result.ahead_by, result.merge_base_sha) == ("ahead", 5, "b" * 40)
    assert count.total == 3 and len(seen) == 3 and "page=3" in seen[-1]


def test_a_pull_request_github_opened_before_a_502_is_found_not_opened_twice() -> None:
    calls: list[str] = []
    pull = {
        "number": 7,
        "html_url": "https://ghes.example/o/r/pull/7",
        "state": "open",
        "title": "Sync",
        "head": {"ref": "ghsync/p", "sha": "h" * 40},
        "base": {"ref": "trunk", "sha": "b" * 40},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "POST":
            return httpx.Response(502, json={"message": "Server Error"})  # ... but it was created
        assert request.url.params["head"] == "o:ghsync/p" and request.url.params["state"] == "open"
        return httpx.Response(200, json=[pull])

    pr = _scripted(handler).repo(1, "o", "r").create_pull("ghsync/p", "trunk", "Sync")
    assert pr.number == 7 and calls == ["POST", "GET"]  # the POST is never resent blindly


def test_content_addressed_posts_are_resent_after_a_5xx_other_posts_are_not() -> None:
    calls: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if sum(1 for c in calls if c == (request.method, request.url.path)) == 1:
            return httpx.Response(502, json={"message": "Server Error"})
        return httpx.Response(201, json={"sha": "a" * 40})

    repo = _scripted(handler).repo(1, "o", "r")
    assert repo.create_blob(b"x") == "a" * 40
    with pytest.raises(GitHubServerError):
        repo.create_ref("ghsync/p", "a" * 40)
    assert calls.count(("POST", "/api/v3/repos/o/r/git/blobs")) == 2
    assert calls.count(("POST", "/api/v3/repos/o/r/git/refs")) == 1


def test_a_repository_without_a_default_branch_is_an_error_not_main() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 1, "name": "r", "full_name": "o/r", "owner": {"login": "o"}})

    with pytest.raises(GitHubError, match="default_branch"):
        _scripted(handler).repo(1, "o", "r").get_repository()


def test_the_quota_is_shared_when_it_matters_not_on_every_response() -> None:
    old, now_rl = rl(4000), rl(3990)
    assert policy.should_share_quota(None, now_rl, shared_at=None, now=0.0, buffer=100)  # the first
    assert not policy.should_share_quota(old, now_rl, shared_at=10.0, now=11.0, buffer=100)
    assert policy.should_share_quota(old, now_rl, shared_at=10.0, now=15.0, buffer=100)  # 5 s later
    assert policy.should_share_quota(old, rl(150), shared_at=10.0, now=11.0, buffer=100)  # near the reserve
    assert policy.should_share_quota(old, rl(4999, reset_in=3600), shared_at=10.0, now=11.0, buffer=100)


def test_routes_are_filled_with_percent_encoded_values() -> None:
    from ghsync.adapters.github.client import _expand

    assert _expand(
        "/repos/{owner}/{repo}/git/ref/{ref}", {"owner": "o", "repo": "a b", "ref": "heads/f/x"}
    ) == ("/repos/o/a%20b/git/ref/heads/f/x")
    assert _expand("/repos/{owner}/{repo}", {"owner": "o/x", "repo": "r"}) == "/repos/o%2Fx/r"
    with pytest.raises(ValueError, match="repo"):
        _expand("/repos/{owner}/{repo}", {"owner": "o"})


def test_the_request_counter_is_scoped_to_its_block_and_its_context() -> None:
    from ghsync.ports.github import record_request

    record_request("POST")  # outside any block: counted nowhere, no error
    other: list[int] = []
    with counting_requests() as outer:
        record_request("GET")
        with counting_requests() as inner:
            for method in ("post", "PATCH", "PUT", "DELETE", "HEAD"):
                record_request(method)
        # another thread starts with a fresh context: its requests are not this block's
        thread = threading.Thread(target=lambda: other.append(_count_one()))
        thread.start()
        thread.join()
    assert (inner.total, inner.content_creating) == (5, 4)
    assert (outer.total, outer.content_creating) == (6, 4)
    assert other == [1]


def _count_one() -> int:
    from ghsync.ports.github import record_request

    with counting_requests() as count:
        record_request("GET")
    return count.total
