"""The outermost layer of the emulator's ASGI app: the request log, faults and secondary limits.

It sees every request (REST, GraphQL and git smart HTTP; not the ``/_emulator`` control API) before
anything else does and writes one request-log row for each, whatever became of it: served,
refused by a limit, faulted, redirected. It sits outside Starlette's error handling so that a
``reset`` or ``truncate`` fault can reach the TCP connection itself (uvicorn's ``send`` is bound to
the connection's cycle object, which holds the transport).

Primary quotas live here too (:func:`quota_for`), shared by the REST middleware, ``GET
/rate_limit`` and ``POST /graphql``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from github_emulator import payloads
from github_emulator.auth import AuthError, Principal, principal_from_header
from github_emulator.core import Emulator, RequestLogEntry
from github_emulator.faults import Fault, take_fault
from github_emulator.lifecycle import SUSPEND_DOCS, SUSPENDED_MESSAGE, installation_suspended
from github_emulator.ratelimits import (
    SECONDARY_DOCS,
    SECONDARY_MESSAGE,
    SecondaryLimits,
    installation_quota,
    is_content_creating,
)
from github_emulator.store import now_iso

_GIT_PATH = re.compile(r"^/([^/_][^/]*)/([^/]+?)\.git(/.*)?$")
_CONVERTER = re.compile(r":[a-z]+}")
GRAPHQL_PATHS = ("/graphql", "/api/graphql")  # github.com's, and Enterprise Server's
USER_QUOTA = 5000  # a personal token's requests an hour (the REST rate-limits page)


def quota_for(emu: Emulator, who: Principal, resource: str = "core") -> int:
    """The hourly quota of ``who`` for ``resource`` (``core`` or ``graphql``).

    Installations follow GitHub's formula on their repository count unless the config overrides
    it (``rate_limit`` for REST, ``graphql_rate_limit`` for GraphQL; ``rate_limit`` also sets user
    tokens' quota, as it always has). Anonymous clients get ``anonymous_rate_limit`` (GraphQL
    needs authentication, so they have no GraphQL quota).
    """
    cfg = emu.config
    if who.kind == "anonymous":
        return cfg.anonymous_rate_limit if resource == "core" else 0
    override = cfg.graphql_rate_limit if resource == "graphql" else cfg.rate_limit
    if override is not None:
        return override
    if who.kind == "installation":
        with emu.store.lock:
            inst = emu.store.data.installations.get(who.installation_id or -1)
            count = len(inst.repository_ids) if inst is not None else 0
        return installation_quota(count)
    return USER_QUOTA


def bucket_key(who: Principal, resource: str) -> str:
    return who.rate_key if resource == "core" else f"{who.rate_key}:{resource}"


def rate_status(emu: Emulator, who: Principal, resource: str = "core") -> tuple[int, int, int, int]:
    """(limit, remaining, reset epoch, used) for ``who``'s ``resource`` bucket, not charging."""
    limit = quota_for(emu, who, resource)
    now = time.time()
    key = bucket_key(who, resource)
    with emu.runtime_lock:
        reset, used = emu.rate.get(key, (now + 3600, 0))
        if reset <= now:
            reset, used = now + 3600, 0
            emu.rate[key] = (reset, used)
    return limit, max(0, limit - used), int(reset), used


def charge(emu: Emulator, who: Principal, resource: str, points: int) -> tuple[int, int, int, int]:
    """Charge ``points`` to ``who``'s ``resource`` bucket; returns its status afterwards."""
    limit = quota_for(emu, who, resource)
    now = time.time()
    key = bucket_key(who, resource)
    with emu.runtime_lock:
        reset, used = emu.rate.get(key, (now + 3600, 0))
        if reset <= now:
            reset, used = now + 3600, 0
        used += points
        emu.rate[key] = (reset, used)
    return limit, max(0, limit - used), int(reset), used


def rate_headers(limit: int, remaining: int, reset: int, used: int, resource: str = "core") -> dict[str, str]:
    # https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Used": str(used),
        "X-RateLimit-Resource": resource,
    }


def new_request_id() -> str:
    """``X-GitHub-Request-Id``'s shape (``ABCD:123456:12345678``)."""
    return f"{uuid.uuid4().hex[:4].upper()}:{uuid.uuid4().hex[:6].upper()}:{uuid.uuid4().hex[:8].upper()}"


def _transport(send: Send) -> asyncio.Transport | None:
    """The TCP transport behind uvicorn's ``send`` (None under another server). Checked by what it
    does, not by class: uvloop's transports are not `asyncio.Transport` subclasses."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if all(callable(getattr(transport, name, None)) for name in ("abort", "close", "get_extra_info")):
        return transport
    return None


def _gone(send: Send) -> None:
    """Tell uvicorn the client is gone, so it does not log "returned without a response"; the
    app then returns at once (without yielding, so the request's log row is written before the
    client can send anything else)."""
    cycle = getattr(send, "__self__", None)
    if cycle is not None and hasattr(cycle, "disconnected"):
        cycle.disconnected = True


async def _reset(send: Send) -> None:
    transport = _transport(send)
    if transport is None:
        raise ConnectionResetError("emulator fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN: a real reset.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    _gone(send)


async def _truncate(send: Send, start: Message, body: bytes) -> None:
    transport = _transport(send)
    if transport is None:
        raise ConnectionResetError("emulator fault: truncated body")
    await send(start)
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    transport.close()  # flushes what was sent, then FIN: the client sees a short body
    _gone(send)


async def _plain(send: Send, status: int, text: str) -> None:
    raw = text.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _strip_prefix(path: str) -> str:
    if path == "/api/v3" or path.startswith("/api/v3/"):
        return path[len("/api/v3") :] or "/"
    return path


def git_service(path: str, query: str) -> str | None:
    """``git-upload-pack`` / ``git-receive-pack`` for a smart HTTP request (None otherwise)."""
    match = _GIT_PATH.match(path)
    if match is None:
        return None
    rest = match.group(3) or ""
    for part in query.split("&"):
        if part.startswith("service="):
            return part[len("service=") :]
    tail = rest.rsplit("/", 1)[-1]
    return tail if tail.startswith("git-") else None


def _flatten(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes themselves (FastAPI wraps each included router in one lazy route)."""
    out: list[BaseRoute] = []
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        out.extend(_flatten(inner) if isinstance(inner, list) else [route])
    return out


class TrafficMiddleware:
    """Request log, scripted faults, concurrency and secondary rate limits (outermost layer)."""

    def __init__(self, app: ASGIApp, emulator: Emulator, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.emu = emulator
        self.routes = routes
        self._route_cache: dict[tuple[str, str], str | None] = {}

    def route_of(self, method: str, path: str) -> str | None:
        """The route template serving ``method path`` (``/repos/{owner}/{repo}/git/refs``)."""
        cache_key = (method, path)
        if cache_key in self._route_cache:
            return self._route_cache[cache_key]
        found: str | None = None
        probe: Scope = {"type": "http", "path": path, "method": method, "root_path": "", "path_params": {}}
        for route in _flatten(self.routes):
            match, _ = route.matches(probe)
            template = getattr(route, "path", None)
            if match == Match.FULL and isinstance(template, str) and template != "/{rest:path}":
                found = _CONVERTER.sub("}", template)
                break
        if len(self._route_cache) < 10_000:
            self._route_cache[cache_key] = found
        return found

    def _caller(self, headers: dict[str, str], scope: Scope) -> Principal | None:
        remote = str((scope.get("client") or ("unknown", 0))[0])
        try:
            return principal_from_header(
                headers.get("authorization"), self.emu.store, self.emu.config.max_jwt_lifetime_seconds, remote
            )
        except AuthError:
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _strip_prefix(scope["path"])
        if path.startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        who = self._caller(headers, scope)
        service = git_service(path, query)
        kind = "git" if _GIT_PATH.match(path) else ("graphql" if path in GRAPHQL_PATHS else "rest")
        if kind == "git":
            route: str | None = "/{owner}/{repo}.git/" + path.rsplit(".git/", 1)[-1]
        else:
            route = self.route_of(method, path)
        row = RequestLogEntry(
            method,
            path,
            0,
            who.installation_id if who else None,
            now_iso(),
            who.user_login if who else None,
            query=query,
            route=route,
            kind=kind,
            content_creating=kind == "rest" and is_content_creating(method, path),
            service=service,
        )
        state = scope.setdefault("state", {})
        key = who.rate_key if who else f"unauthenticated:{(scope.get('client') or ('unknown', 0))[0]}"
        self.emu.traffic.enter(key)
        try:
            await self._serve(scope, receive, send, row, who, key, state)
        finally:
            self.emu.traffic.leave(key)
            row.duration_ms = round((time.monotonic() - started) * 1000, 3)
            updates = state.get("ref_updates")
            if updates:
                row.ref_updates = [
                    {"ref": r, "before": b, "after": a} for r, (b, a) in sorted(updates.items())
                ]
            with self.emu.runtime_lock:
                self.emu.requests.append(row)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        row: RequestLogEntry,
        who: Principal | None,
        key: str,
        state: dict[str, Any],
    ) -> None:
        cfg = self.emu.config
        request_id = new_request_id()
        if (
            who is not None
            and who.kind == "installation"
            and installation_suspended(self.emu, who.installation_id)
        ):
            # A suspended installation's tokens are refused everywhere (lifecycle.py).
            row.status, row.fault = 403, "suspended"
            if row.kind == "git":
                await _plain(send, 403, SUSPENDED_MESSAGE + "\n")
            else:
                body = payloads.error_body(SUSPENDED_MESSAGE, 403, SUSPEND_DOCS)
                await self._answer(send, 403, body, who, request_id, {})
            return
        if cfg.secondary_rate_limits and row.kind != "git":
            limits = SecondaryLimits(
                cfg.content_creation_per_minute, cfg.content_creation_per_hour, cfg.max_concurrent_requests
            )
            refusal = self.emu.traffic.admit(key, row.content_creating, limits)
            if refusal is not None:
                row.fault = f"secondary_rate_limit:{refusal.reason}"
                extra = {"Retry-After": str(refusal.retry_after)} if cfg.secondary_retry_after else {}
                body = payloads.error_body(
                    SECONDARY_MESSAGE.format(request_id=request_id),
                    cfg.secondary_limit_status,
                    SECONDARY_DOCS,
                )
                row.status = cfg.secondary_limit_status
                await self._answer(send, row.status, body, who, request_id, extra)
                return

        with self.emu.runtime_lock:
            fault = take_fault(self.emu.faults, scope["method"], row.path, row.installation_id)
        if fault is not None:
            row.fault = fault.kind if fault.status is not None or fault.kind != "status" else "latency"
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault.kind == "reset":
                await _reset(send)
                return
            if fault.kind == "status" and fault.status is not None:
                row.status = fault.status
                await self._answer(
                    send, fault.status, _fault_body(fault), who, request_id, fault.headers, raw_body=True
                )
                return

        capture = fault is not None and fault.kind in ("reset_after", "truncate")
        start: Message | None = None
        chunks: list[bytes] = []

        async def recording_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                row.status = int(message["status"])
                if capture:
                    start = message
                    return
            elif capture and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                return
            await send(message)

        await self.app(scope, receive, recording_send)
        if fault is not None and fault.kind == "reset_after":
            await _reset(send)
        elif fault is not None and fault.kind == "truncate" and start is not None:
            await _truncate(send, start, b"".join(chunks))

    async def _answer(
        self,
        send: Send,
        status: int,
        body: Any,
        who: Principal | None,
        request_id: str,
        headers: dict[str, str],
        *,
        raw_body: bool = False,
    ) -> None:
        """Answer without serving: JSON body, rate-limit headers (not charged), a request id."""
        raw = body.encode() if raw_body and isinstance(body, str) else json.dumps(body).encode()
        status_of = rate_status(self.emu, who) if who is not None else rate_status(self.emu, _ANON)
        out = {
            "X-GitHub-Request-Id": request_id,
            **rate_headers(*status_of),
            "Content-Type": "application/json; charset=utf-8",
            **headers,
            "Content-Length": str(len(raw)),
        }
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in out.items()],
            }
        )
        await send({"type": "http.response.body", "body": raw})


_ANON = Principal(kind="anonymous")


def _fault_body(fault: Fault) -> Any:
    if fault.body is not None:
        return fault.body
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(fault.status or 500).phrase
    except ValueError:
        phrase = "Error"
    return payloads.error_body(phrase, fault.status or 500)
