"""The ASGI application: routers plus the GitHub-wide behaviour every response shares.

The outer middleware does what GitHub does for every request: serve under ``/`` and the
Enterprise Server prefix ``/api/v3``, redirect renamed repositories, authenticate, count the
per-installation rate limit, add ``ETag``/``304``, ``X-RateLimit-*`` and ``X-GitHub-Request-Id``,
apply scripted faults, and log the request for ``GET /_emulator/requests``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from github_emulator import payloads, traffic
from github_emulator.auth import AuthError, Principal, principal_from_header
from github_emulator.config import EmulatorConfig
from github_emulator.core import Emulator, GitHubError

RATE_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
_REPO_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)(/.*)?$")
_REPO_BY_ID = re.compile(r"^/repositories/(\d+)(/.*)?$")
_GIT_PATH = re.compile(r"^/([^/_][^/]*)/([^/]+?)\.git(/.*)?$")


def _is_git(path: str) -> bool:
    return _GIT_PATH.match(path) is not None


class GitHubMiddleware:
    """Pure ASGI middleware (streams git traffic through untouched, buffers API responses)."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emu = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        path: str = scope["path"]
        v3 = path == "/api/v3" or path.startswith("/api/v3/")
        if v3:
            path = path[len("/api/v3") :] or "/"
            scope["path"] = path
            scope["raw_path"] = scope.get("raw_path", b"")[len(b"/api/v3") :] or b"/"
        request_id = (
            f"{uuid.uuid4().hex[:4].upper()}:{uuid.uuid4().hex[:6].upper()}:{uuid.uuid4().hex[:8].upper()}"
        )
        method: str = scope["method"]
        if path.startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        base_headers = {"X-GitHub-Request-Id": request_id}

        # Faults, secondary limits and the request log are the outer layer's (traffic.py).
        if _is_git(path):
            await self.app(scope, receive, _add_headers(send, base_headers))
            return

        # Renamed repositories: /repositories/{id}/... is served as the repo's current name;
        # the old /repos/{owner}/{old} answers 301 (GET) or 307 (others) to it
        # (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#follow-redirects).
        by_id = _REPO_BY_ID.match(path)
        if by_id:
            repo = self.emu.store.data.repos.get(int(by_id.group(1)))
            if repo is not None:
                path = f"/repos/{repo.full_name}{by_id.group(2) or ''}"
                scope["path"] = path
                scope["raw_path"] = path.encode()
        m = _REPO_PATH.match(path)
        if m and self.emu.store.find_repo(m.group(1), m.group(2)) is None:
            moved = self.emu.store.redirected_repo(m.group(1), m.group(2))
            if moved is not None:
                host = headers.get("host", "localhost")
                scheme = scope.get("scheme", "http")
                prefix = "/api/v3" if v3 else ""
                location = f"{scheme}://{host}{prefix}/repositories/{moved.id}{m.group(3) or ''}"
                qs = scope.get("query_string", b"").decode()
                if qs:
                    location += "?" + qs
                status = 301 if method in ("GET", "HEAD") else 307
                await _send_simple(
                    send,
                    status,
                    json.dumps(payloads.moved_permanently(location)).encode(),
                    {
                        **base_headers,
                        **self._early_rate_headers(headers, scope),
                        "Location": location,
                        "Content-Type": "application/json; charset=utf-8",
                    },
                )
                return

        remote = (scope.get("client") or ("unknown", 0))[0]
        try:
            who = principal_from_header(
                headers.get("authorization"),
                self.emu.store,
                self.emu.config.max_jwt_lifetime_seconds,
                str(remote),
            )
        except AuthError as exc:
            body = payloads.error_body(exc.message, 401, exc.documentation_url)
            # A failed authentication is counted against the client's anonymous budget.
            anon = Principal(kind="anonymous", remote=str(remote))
            await _send_simple(
                send,
                401,
                json.dumps(body).encode(),
                {
                    **base_headers,
                    **_rate_headers(*self._charge(anon)),
                    "Content-Type": "application/json; charset=utf-8",
                },
            )
            return
        scope.setdefault("state", {})
        scope["state"]["principal"] = who

        limit, remaining, reset, used = self._rate_status(who)
        # GET /rate_limit is free; POST /graphql is charged in points to its own bucket by the
        # route, which also sends that bucket's headers (graphql.py).
        graphql = path in ("/graphql", "/api/graphql")
        charged = path != "/rate_limit" and not graphql
        if charged and remaining <= 0:
            message = (
                f"API rate limit exceeded for installation ID {who.installation_id}."
                if who.kind == "installation"
                else f"API rate limit exceeded for {who.user_login or who.remote}."
            )
            hdrs = {
                **base_headers,
                **_rate_headers(limit, 0, reset, used),
                "Content-Type": "application/json; charset=utf-8",
            }
            await _send_simple(
                send, 403, json.dumps(payloads.error_body(message, 403, RATE_DOCS)).encode(), hdrs
            )
            return

        status, resp_headers, body_bytes = await _capture(self.app, scope, receive)
        extra: dict[str, str] = dict(base_headers)
        if method == "GET" and status == 200:
            etag = 'W/"' + hashlib.sha256(body_bytes).hexdigest()[:32] + '"'
            extra["ETag"] = etag
            inm = headers.get("if-none-match")
            if (inm and etag in [t.strip() for t in inm.split(",")]) or inm == "*":
                # Conditional requests answered 304 are not charged
                # (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
                status, body_bytes = 304, b""
                resp_headers = [
                    (k, v) for k, v in resp_headers if k.lower() not in (b"content-type", b"content-length")
                ]
        if charged and status != 304:
            limit, remaining, reset, used = self._charge(who)
        if not graphql:
            extra.update(_rate_headers(limit, remaining, reset, used))
        extra["X-GitHub-Media-Type"] = "github.v3; format=json"
        extra["X-GitHub-Api-Version-Selected"] = "2022-11-28"
        out = [(k, v) for k, v in resp_headers if k.lower() != b"content-length"]
        out += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        out.append((b"content-length", str(len(body_bytes)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body_bytes})

    def _early_rate_headers(self, headers: dict[str, str], scope: Scope) -> dict[str, str]:
        """Rate-limit headers for answers given before the request reaches a route."""
        remote = str((scope.get("client") or ("unknown", 0))[0])
        try:
            who = principal_from_header(
                headers.get("authorization"),
                self.emu.store,
                self.emu.config.max_jwt_lifetime_seconds,
                remote,
            )
        except AuthError:
            who = Principal(kind="anonymous", remote=remote)
        return _rate_headers(*self._rate_status(who))

    def _rate_status(self, who: Principal) -> tuple[int, int, int, int]:
        # Quotas per installation by GitHub's formula (traffic.quota_for).
        return traffic.rate_status(self.emu, who)

    def _charge(self, who: Principal) -> tuple[int, int, int, int]:
        return traffic.charge(self.emu, who, "core", 1)


def _rate_headers(limit: int, remaining: int, reset: int, used: int) -> dict[str, str]:
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Used": str(used),
        "X-RateLimit-Resource": "core",
    }


async def _send_simple(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def _add_headers(send: Send, extra: dict[str, str]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers", [])) + [
                (k.lower().encode(), v.encode()) for k, v in extra.items()
            ]
        await send(message)

    return wrapped


async def _capture(
    app: ASGIApp, scope: Scope, receive: Receive
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def create_app(config: EmulatorConfig, emulator: Emulator | None = None) -> FastAPI:
    """Build the emulator's ASGI app for ``config`` (state is loaded from ``config.data_dir``)."""
    from github_emulator import control, routes_apps, routes_git, routes_pulls, routes_repos, smart_http

    emu = emulator or Emulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        emu.close()

    app = FastAPI(title="GitHub emulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.emulator = emu

    @app.exception_handler(GitHubError)
    async def github_error(_: Request, exc: GitHubError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        # GitHub answers unparsable JSON with 400 "Problems parsing JSON", bad fields with 422.
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            body = payloads.error_body("Problems parsing JSON", 400)
            return JSONResponse(body, status_code=400)
        return JSONResponse(payloads.error_body("Invalid request.", 422), status_code=422)

    app.include_router(control.router)
    app.include_router(routes_apps.router)
    app.include_router(routes_git.router)
    app.include_router(routes_pulls.router)
    app.include_router(routes_repos.router)
    from github_emulator import routes_users

    app.include_router(routes_users.router)
    from github_emulator import routes_contents

    app.include_router(routes_contents.router)
    app.include_router(smart_http.router)
    from github_emulator import graphql_api, hook_deliveries, lifecycle, meta

    app.include_router(graphql_api.router)
    app.include_router(meta.router)
    app.include_router(lifecycle.router)
    app.include_router(hook_deliveries.router)
    from github_emulator import archives

    app.include_router(archives.router)

    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def fallback(rest: str) -> Response:
        return JSONResponse(payloads.error_body("Not Found", 404), status_code=404)

    # Inside Starlette's error handling, outside the routers and GitHubError handler.
    app.add_middleware(GitHubMiddleware, emulator=emu)
    # The traffic layer (request log, faults, secondary limits) wraps even Starlette's error
    # handling, so that a fault can reset the connection itself (see traffic.py).
    build_stack = app.build_middleware_stack

    def build_with_traffic() -> ASGIApp:
        return traffic.TrafficMiddleware(build_stack(), emu, app.router.routes)

    app.build_middleware_stack = build_with_traffic  # type: ignore[method-assign]
    return app
