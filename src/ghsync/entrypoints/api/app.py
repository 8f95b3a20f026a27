"""The FastAPI application: routers, bearer-token auth, and errors as `{"error": {code, message}}`."""

from __future__ import annotations

import hmac
import re
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ghsync import __version__
from ghsync.bootstrap import Container
from ghsync.domain.errors import GhsyncError, Unauthorized
from ghsync.entrypoints.api import github, health, openapi, projects, sync, webhooks
from ghsync.entrypoints.api.limits import BodyLimit
from ghsync.entrypoints.api.responses import error_response, ghsync_error_response, unexpected_error_response
from ghsync.observability.logging import get_logger
from ghsync.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger(__name__)

_bearer = HTTPBearer(auto_error=False, description="One of GHSYNC_API_TOKENS")

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods the OpenAPI document lists for the path of `scope` (FastAPI routers are nested, so
    the document is the one flat view of every route)."""
    matching: list[tuple[int, set[str]]] = []
    for template, item in app.openapi().get("paths", {}).items():
        # `{path}` (files/{path:path}) spans segments; any other parameter is one segment.
        pattern = re.sub(r"\\\{path\\\}", ".+", re.escape(template))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        if re.fullmatch(pattern, scope["path"]):
            methods = {method.upper() for method in item if method in _METHODS}
            matching.append((template.count("{"), methods))
    # The most specific template names the resource: `/versions/snapshot`, not `/versions/{version_id}`.
    fewest = min((parameters for parameters, _ in matching), default=0)
    return sorted(set().union(*(methods for parameters, methods in matching if parameters == fewest)))


class Observe:
    """ASGI middleware: the request count and latency per route template and status (Prometheus).

    Plain ASGI rather than `@app.middleware("http")`, which runs each request in a task of its own and
    streams the body through it. (The webhook receivers record the same metrics themselves.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)


class GhsyncAPI(FastAPI):
    """FastAPI with the webhook receivers in front of all of it.

    FastAPI's own entry (its per-request telemetry check) and Starlette's outermost layers (its error
    middleware, the body-size middleware) come before any added middleware; deliveries skip them all.
    `WebhookReceiver` answers its own errors, so it needs none of them.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._receiver = webhooks.WebhookReceiver(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # what Starlette sets, and what the receivers' route functions read
        await self._receiver(scope, receive, send)


def create_app(container: Container) -> FastAPI:
    app = GhsyncAPI(
        title="ghsync",
        version=__version__,
        description="Two-way sync between a platform's projects and GitHub repositories.",
    )
    app.state.container = container

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> None:
        tokens = container.settings.ghsync_api_tokens
        if not tokens:
            raise Unauthorized("the API is closed: no GHSYNC_API_TOKENS are configured")
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("send `Authorization: Bearer <token>`")
        presented = credentials.credentials.encode()
        if not any(hmac.compare_digest(presented, token.encode()) for token in tokens):
            raise Unauthorized("invalid API token")

    # GitHub cannot send a bearer token: a delivery is authenticated by its signature instead. The two
    # receivers are served by `webhooks.WebhookReceiver`, in front of everything (`GhsyncAPI`).
    app.state.webhook_guard = webhooks.WebhookGuard.from_container(container)  # starts the /meta fetch
    app.state.webhook_batches = webhooks.delivery_batches(container)
    app.include_router(health.router)
    app.include_router(projects.router, dependencies=[Depends(require_token)])
    app.include_router(github.router, dependencies=[Depends(require_token)])
    app.include_router(github.admin_router, dependencies=[Depends(require_token)])
    app.include_router(sync.router, dependencies=[Depends(require_token)])
    app.include_router(webhooks.health_router, dependencies=[Depends(require_token)])

    @app.exception_handler(GhsyncError)
    async def _ghsync_error(_request: Request, exc: GhsyncError) -> JSONResponse:
        return ghsync_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(part) for part in error["loc"]], "message": error["msg"]} for error in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['message']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 requires `Allow` with every method the resource has
            # (https://www.rfc-editor.org/rfc/rfc9110#name-405-method-not-allowed); Starlette names only
            # the first route's, and FastAPI makes one route per method.
            response.headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(exc)

    app.add_middleware(Observe)

    # Outermost first: the body cap applies before anything reads a body; CORS only when asked for.
    app.add_middleware(BodyLimit, limit=container.settings.ghsync_max_request_body)
    if container.settings.ghsync_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(container.settings.ghsync_cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    openapi.install(app, documented=webhooks.router.routes)
    return app
