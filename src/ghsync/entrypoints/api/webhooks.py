"""The webhook endpoints: GitHub's deliveries in (App hook and repository hooks), and a hook's health.

GitHub cannot send a bearer token, so the signature is the authentication: `X-Hub-Signature-256` is
checked over the raw body before anything else is read from it. Then: dedup, record, request, 202.
Concurrent deliveries are received together (`group_commit`): one transaction records a batch. Nothing on
the request path calls GitHub (GitHub expects an answer within 10 seconds:
https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks#respond-within-10-seconds).

The body is read as a stream and refused (413) as soon as it passes GITHUB_WEBHOOK_PAYLOAD_LIMIT, so no
more than the limit is ever buffered (GitHub caps payloads at 25 MB:
https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap).

Optional hardening: deliveries only from GitHub's `hooks` ranges of `GET /meta`
(GITHUB_SYNC_IP_ALLOWLISTING_ENABLED; fetched off the request path and refreshed hourly), and a token
bucket per source address (GHSYNC_WEBHOOK_RATE_LIMIT, GHSYNC_WEBHOOK_RATE_BURST).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
import msgspec
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ghsync.bootstrap import Container
from ghsync.domain.errors import GhsyncError
from ghsync.domain.operations import WebhookDelivery
from ghsync.domain.webhooks import (
    Bucket,
    InvalidSignature,
    MalformedDelivery,
    Network,
    address_allowed,
    hook_networks,
    take_token,
    verify_delivery,
)
from ghsync.entrypoints.api.deps import container_of
from ghsync.entrypoints.api.group_commit import GroupCommit
from ghsync.entrypoints.api.responses import error_response, ghsync_error_response, unexpected_error_response
from ghsync.observability.logging import get_logger
from ghsync.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS
from ghsync.services.webhooks import Delivery, HookHealth, Receipt, WebhookNotConfigured

log = get_logger(__name__)

APP_HOOK_PATH = "/v1/webhooks/github"
REPOSITORY_HOOK_PATH = APP_HOOK_PATH + "/{project_id}"
# The two receivers' routes: in the OpenAPI document, not in the app's router; `WebhookReceiver` calls
# their functions itself (see there why).
router = APIRouter(prefix=APP_HOOK_PATH, tags=["webhooks"])
health_router = APIRouter(prefix=APP_HOOK_PATH, tags=["webhooks"])

# How long GitHub's `hooks` ranges are trusted before they are fetched again (GitHub changes them rarely
# and asks integrators to refresh: https://docs.github.com/en/rest/meta/meta#get-github-meta-information).
META_REFRESH_SECONDS = 3600.0
RETRY_FAILED_META_SECONDS = 5.0
# Source addresses whose buckets are remembered; the least recently seen are forgotten beyond this.
MAX_TRACKED_SOURCES = 10_000


class PayloadTooLarge(GhsyncError):
    code = "payload_too_large"


class SourceRefused(GhsyncError):
    code = "webhook_source_refused"


class AllowlistUnavailable(GhsyncError):
    code = "webhook_allowlist_unavailable"


# --- hardening ------------------------------------------------------------------------------------------


MetaFetcher = Callable[[], Mapping[str, Any]]


def meta_fetcher(api_url: str) -> MetaFetcher:
    """`GET /meta` of GitHub (or GitHub Enterprise Server, or the emulator); it needs no authentication."""

    def fetch() -> Mapping[str, Any]:
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            response = client.get(f"{api_url}/meta", headers={"Accept": "application/vnd.github+json"})
            response.raise_for_status()
            body = response.json()
        if not isinstance(body, dict):
            raise ValueError("GET /meta did not return an object")
        return body

    return fetch


class HookAllowlist:
    """GitHub's `hooks` ranges, cached; refreshed in a background thread, never on the request path.

    Until the first fetch succeeds nothing is allowed (fail closed): GitHub records the failed
    deliveries and they can be redelivered.
    """

    def __init__(self, fetch: MetaFetcher, *, refresh_seconds: float = META_REFRESH_SECONDS) -> None:
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._networks: tuple[Network, ...] | None = None
        self._fetched_at = float("-inf")
        self._failed_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing = False

    @property
    def loaded(self) -> bool:
        with self._lock:
            return self._networks is not None

    def refresh(self) -> None:
        """Fetch the ranges now (in the caller's thread); a failure keeps the previous ranges."""
        try:
            networks = hook_networks(self._fetch())
        except Exception as exc:
            log.warning("webhook_allowlist_refresh_failed", error=repr(exc))
            with self._lock:
                self._refreshing, self._failed_at = False, time.monotonic()
            return
        with self._lock:
            self._networks, self._fetched_at, self._refreshing = networks, time.monotonic(), False
        log.info("webhook_allowlist_refreshed", ranges=len(networks))

    def refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self.refresh, name="ghsync-meta-refresh", daemon=True).start()

    def check(self, address: str | None) -> None:
        """Raise unless `address` is in the cached ranges; starts a refresh when they are stale."""
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self._refresh_seconds
            # After a failed fetch, wait a little before the next one rather than ask on every delivery.
            backing_off = now - self._failed_at < RETRY_FAILED_META_SECONDS
            networks = self._networks
        if stale and not backing_off:
            self.refresh_in_background()
        if networks is None:
            raise AllowlistUnavailable("GitHub's webhook address ranges are not loaded yet; retry shortly")
        if not address_allowed(address, networks):
            raise SourceRefused(f"{address} is not among GitHub's webhook address ranges (GET /meta `hooks`)")


class SourceRateLimiter:
    """A token bucket per source address (in this process), least recently seen sources forgotten."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def wait_for(self, source: str) -> float:
        """0 when `source` may send now, else the seconds until it may."""
        if self._rate <= 0:
            return 0.0
        with self._lock:
            bucket, wait = take_token(
                self._buckets.get(source), self._clock(), rate=self._rate, burst=self._burst
            )
            self._buckets[source] = bucket
            self._buckets.move_to_end(source)
            while len(self._buckets) > MAX_TRACKED_SOURCES:
                self._buckets.popitem(last=False)
        return wait


class WebhookGuard:
    """What a delivery passes before its body is read: the source address and its rate."""

    def __init__(self, allowlist: HookAllowlist | None, limiter: SourceRateLimiter) -> None:
        self.allowlist = allowlist
        self.limiter = limiter

    @classmethod
    def from_container(cls, container: Container) -> WebhookGuard:
        settings = container.settings
        allowlist = None
        if settings.github_sync_ip_allowlisting_enabled:
            allowlist = HookAllowlist(meta_fetcher(settings.github_api_url))
            allowlist.refresh_in_background()
        limiter = SourceRateLimiter(settings.ghsync_webhook_rate_limit, settings.ghsync_webhook_rate_burst)
        return cls(allowlist, limiter)

    def admit(self, source: str | None) -> Response | None:
        """None to go on, else the refusal to answer a delivery from address `source` with."""
        wait = self.limiter.wait_for(source or "unknown")
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            return _error(
                429, "webhook_rate_limited", "too many webhook requests from this source", retry_after
            )
        if self.allowlist is not None:
            try:
                self.allowlist.check(source)
            except GhsyncError as exc:
                log.warning("webhook_source_refused", source=source, code=exc.code)
                return _error(403 if isinstance(exc, SourceRefused) else 503, exc.code, exc.message)
        return None


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> JSONResponse:
    response = error_response(status, code, message)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


# --- the body ---------------------------------------------------------------------------------------------


async def read_capped_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The raw body, refused as soon as it passes `limit` bytes (413): never more than that is held.

    `declared` is the request's Content-Length, if it sent one: a larger one is refused before reading.
    """
    if declared is not None:
        if not declared.isdigit():
            raise MalformedDelivery("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the payload is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the payload is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# --- the endpoints ------------------------------------------------------------------------------------------


class DeliveryAnswer(BaseModel):
    delivery_id: str
    event: str
    outcome: str
    projects: list[str]
    requests: list[str]


def _answer(receipt: Receipt) -> Response:
    body = {  # DeliveryAnswer's fields (the OpenAPI document's), without a model on the hot path
        "delivery_id": receipt.delivery_id,
        "event": receipt.event,
        "outcome": receipt.outcome,
        "projects": [p.project_id for p in receipt.projects],
        "requests": list(receipt.request_ids),
    }
    # A ping is answered 200 (it is fully handled); everything else is accepted for later work.
    status = 200 if receipt.event == "ping" else 202
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def delivery_batches(container: Container) -> GroupCommit[Delivery, Receipt | Exception]:
    """The app's group commit of deliveries: concurrent ones are received in one unit of work, and the
    queue is told of their reconciles once they are answered."""
    tells = container.tells

    def receive(batch: list[Delivery]) -> list[Receipt | Exception]:
        # `container.webhooks` is read per batch, not bound now: the service may be replaced after the
        # app is made (tests do).
        with tells.holding():
            return container.webhooks.receive_many(batch)

    return GroupCommit(receive, name="ghsync-webhooks", after_batch=tells.release)


def _headers_of(scope: Scope) -> dict[str, str]:
    """The request's headers by name; ASGI gives them lower-cased. The first of a repeated one counts
    (as Starlette's `Headers.get`)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


async def receive_delivery(request: Request, project_id: str | None) -> Response:
    """A delivery to the App's hook (`project_id` None) or a project's repository hook, answered.

    Admit the source, open the secret, read the capped body, verify it, then hand it to the batch: every
    refusal is answered as the app's exception handlers would (`responses.py`).
    """
    state, scope = request.app.state, request.scope
    try:
        client = scope.get("client")
        guard: WebhookGuard = state.webhook_guard
        refused = guard.admit(client[0] if client else None)
        if refused is not None:
            return refused
        container: Container = state.container
        settings = container.settings
        remembered: str | None = None  # a repository hook's secret, as opened for an earlier delivery
        if project_id is None:
            if not settings.github_webhook_secret:
                raise WebhookNotConfigured(
                    "GITHUB_WEBHOOK_SECRET is not set: the App's webhook cannot be verified"
                )
            secret = settings.github_webhook_secret
        else:
            remembered = container.webhooks.remembered_hook_secret(project_id)
            if remembered is None:  # read and opened in a thread: the database is not the event loop's
                secret = await run_in_threadpool(container.webhooks.hook_secret, project_id)
            else:
                secret = remembered
        headers = _headers_of(scope)
        # The API's own cap on every body (GHSYNC_MAX_REQUEST_BODY) holds here too, whichever is smaller.
        limit = min(settings.github_webhook_payload_limit, settings.ghsync_max_request_body)
        body = await read_capped_body(request.receive, headers.get("content-length"), limit)
        try:
            delivery_headers, payload = verify_delivery(secret, body, headers)
        except InvalidSignature:
            if project_id is None or remembered is None:
                raise
            # The secret may have changed since it was remembered (the project relinked): open it again.
            reopened = await run_in_threadpool(container.webhooks.hook_secret, project_id)
            delivery_headers, payload = verify_delivery(reopened, body, headers)
        batches: GroupCommit[Delivery, Receipt | Exception] = state.webhook_batches
        result = await batches.submit(Delivery(delivery_headers, payload, project_id))
        if isinstance(result, GhsyncError):
            raise result
        if isinstance(result, Exception):
            # Recorded as failed by the service (and logged there): GitHub shows the delivery failed, and
            # its redelivery is processed again.
            return _error(
                500, "webhook_processing_failed", "the delivery could not be processed; redeliver it"
            )
        return _answer(result)
    except ClientDisconnect:
        # The sender went away before the whole body came (GitHub gives up after 10 seconds): not a bug,
        # nothing was recorded, and GitHub shows the delivery failed, so it can be redelivered.
        log.info("webhook_client_disconnected", path=scope.get("path"))
        return error_response(400, "client_disconnected", "the client left before sending the whole body")
    except GhsyncError as exc:
        return ghsync_error_response(exc)
    except Exception as exc:
        return unexpected_error_response(exc)


@router.post(
    "",
    status_code=202,
    response_model=DeliveryAnswer,
    responses={200: {"description": "a ping"}, 401: {}, 413: {}, 400: {}},
)
async def app_hook(request: Request) -> Response:
    """The GitHub App's webhook (secret GITHUB_WEBHOOK_SECRET): every installation's deliveries."""
    return await receive_delivery(request, None)


@router.post(
    "/{project_id}",
    status_code=202,
    response_model=DeliveryAnswer,
    responses={200: {"description": "a ping"}, 401: {}, 404: {}, 413: {}, 400: {}},
)
async def repository_hook(project_id: str, request: Request) -> Response:
    """A repository webhook of one project, verified with the project's own (sealed) secret."""
    return await receive_delivery(request, project_id)


class DeliveryOut(BaseModel):
    delivery_id: str
    event: str
    action: str | None
    status: str
    received_at: datetime | None


class HookHealthOut(BaseModel):
    project_id: str
    healthy: bool
    last_delivery: DeliveryOut | None
    last_ping: DeliveryOut | None
    recent_failures: list[DeliveryOut]
    sync_enabled: bool
    sync_disabled_by: str | None


def _delivery_out(delivery: WebhookDelivery | None) -> DeliveryOut | None:
    if delivery is None:
        return None
    return DeliveryOut(
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        action=delivery.action,
        status=delivery.status,
        received_at=delivery.received_at,
    )


@health_router.get("/{project_id}/health", response_model=HookHealthOut)
def hook_health(project_id: str, request: Request) -> HookHealthOut:
    """The project's hook: the last delivery, the last ping, recent failures, and whether sync is on."""
    health: HookHealth = container_of(request).webhooks.health(project_id)
    failures = [_delivery_out(d) for d in health.recent_failures]
    return HookHealthOut(
        project_id=health.project_id,
        healthy=health.healthy,
        last_delivery=_delivery_out(health.last_delivery),
        last_ping=_delivery_out(health.last_ping),
        recent_failures=[f for f in failures if f is not None],
        sync_enabled=health.sync_enabled,
        sync_disabled_by=health.sync_disabled_by,
    )


# --- serving the receivers ------------------------------------------------------------------------------


class WebhookReceiver:
    """ASGI: the two receivers (`POST /v1/webhooks/github[/{project_id}]`), served in front of the whole
    app (`GhsyncAPI`); every other request goes to `app`.

    Deliveries are the API's busiest path (GitHub sends one for every push and pull request of every
    installation), and FastAPI's per-request telemetry check, route matching, dependency resolution and
    middleware stack cost more CPU than the delivery's own work (verify, parse, the batch's share of one
    commit): `bench/webhooks.py` measured the receiver at about half the CPU per delivery once served
    here. The answers are the app's: errors as its exception handlers give them (`responses.py`), 405
    with `Allow: POST` for another method, and the same request metrics. FastAPI still documents both
    operations (`router`); the receiver calls their functions itself. `scope["app"]` must be the app, as
    Starlette sets it for its own routes (`GhsyncAPI` does).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], Any] = {}  # the metrics' children, looked up once
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path == APP_HOOK_PATH:
            template, project_id = APP_HOOK_PATH, None
        elif path.startswith(APP_HOOK_PATH + "/") and "/" not in path[len(APP_HOOK_PATH) + 1 :]:
            template, project_id = REPOSITORY_HOOK_PATH, path[len(APP_HOOK_PATH) + 1 :]
        else:
            await self.app(scope, receive, send)
            return
        if project_id == "":  # `/v1/webhooks/github/`: no such resource; the app answers it
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        if method != "POST":
            # RFC 9110: a 405 lists the methods the resource has
            # (https://www.rfc-editor.org/rfc/rfc9110#name-405-method-not-allowed).
            response: Response = error_response(405, "method_not_allowed", "Method Not Allowed")
            response.headers["Allow"] = "POST"
        elif project_id is None:
            response = await app_hook(Request(scope, receive))
        else:
            response = await repository_hook(project_id, Request(scope, receive))
        await response(scope, receive, send)
        self._observe(method, template, response.status_code, time.perf_counter() - started)

    def _observe(self, method: str, template: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, template, status))
        if counter is None:
            counter = self._counters[(method, template, status)] = HTTP_REQUESTS.labels(
                method, template, str(status)
            )
        latency = self._latencies.get((method, template))
        if latency is None:
            latency = self._latencies[(method, template)] = HTTP_LATENCY.labels(method, template)
        counter.inc()
        latency.observe(seconds)
