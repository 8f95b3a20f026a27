"""The API's input limits in one place, and the middleware that caps every request body.

Each limit is documented in docs/api.md (#limits) and answered with a 4xx naming it. The request body
is capped for every route before a handler reads it: a declared `Content-Length` over the limit is
refused at once, and a body that streams past it is cut off while being read, so no more than the limit
is ever buffered (the webhook receivers keep their own, smaller, GITHUB_WEBHOOK_PAYLOAD_LIMIT).
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ghsync.domain.paths import MAX_PATH_BYTES, MAX_PATH_DEPTH, MAX_SEGMENT_BYTES
from ghsync.services.projects import MAX_PAGE_SIZE

__all__ = [
    "MAX_FILES_PER_VERSION",
    "MAX_MESSAGE_CHARS",
    "MAX_PAGE_SIZE",
    "MAX_PATH_BYTES",
    "MAX_PATH_CHARS",
    "MAX_PATH_DEPTH",
    "MAX_QUERY_MESSAGE_CHARS",
    "MAX_SEGMENT_BYTES",
    "BodyLimit",
]

# Files one version may write (JSON `files`, or the members of a tar upload), and paths it may delete.
# A bound on the work and memory of one request; larger imports go in several versions.
MAX_FILES_PER_VERSION = 10_000
# A commit message, in characters (the store refuses longer ones with `invalid_message`).
MAX_MESSAGE_CHARS = 65_536
# The same in a URL (a tar upload's `message` query parameter): percent-encoded UTF-8 takes up to 9 bytes
# a character, and HTTP servers refuse request lines past about 16 KiB (uvicorn's h11 does).
MAX_QUERY_MESSAGE_CHARS = 1_024
# The schema states path lengths in characters; a UTF-8 character is at most 4 bytes, so this many
# characters always fit MAX_PATH_BYTES.
MAX_PATH_CHARS = MAX_PATH_BYTES // 4


class BodyLimit:
    """ASGI middleware: 413 `payload_too_large` for a request body over `limit` bytes, on every route."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _refuse(send, f"the request body is {declared} bytes; the limit is {self.limit}")
            return
        received = 0
        overflowed = False

        async def capped_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    overflowed = True
                    raise HTTPException(413, f"the request body is over the limit of {self.limit} bytes")
            return message

        async def checked_send(message: Message) -> None:
            # However the app answered a body cut off mid-stream (FastAPI makes its own 400 of a body it
            # could not read), the client is told the truth: 413.
            if not overflowed:
                await send(message)
            elif message["type"] == "http.response.start":
                await _refuse(send, f"the request body is over the limit of {self.limit} bytes")

        await self.app(scope, capped_receive, checked_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"error": {"code": "payload_too_large", "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
