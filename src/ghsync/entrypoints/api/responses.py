"""The API's error answers, `{"error": {"code", "message"}}`, shared by the app's exception handlers and
the webhook receiver (which answers before the app's routing, so without those handlers)."""

from __future__ import annotations

import traceback

from fastapi.responses import JSONResponse

from ghsync.domain.errors import GhsyncError
from ghsync.entrypoints.api.errors import http_status
from ghsync.observability.logging import get_logger, scrub

log = get_logger(__name__)


def error_response(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def ghsync_error_response(exc: GhsyncError) -> JSONResponse:
    """A `GhsyncError` at the status `errors.py` gives its code (a 5xx is logged)."""
    status = http_status(exc)
    if status >= 500:
        log.error("request_failed", code=exc.code, error=exc.message)
    return error_response(status, exc.code, exc.message)


def unexpected_error_response(exc: BaseException) -> JSONResponse:
    """A bug: logged with its traceback as text, scrubbed of every known secret (never a renderer's view
    of the frames' locals, which hold the request's Authorization header and the settings), and answered
    500 without it."""
    trace = scrub("".join(traceback.format_exception(exc)))
    log.error("unhandled_error", error=scrub(repr(exc)), traceback=trace)
    return error_response(500, "internal_error", "internal error; see the service log")
