"""The OpenAPI document ghsync serves: FastAPI's, completed so that it describes the API exactly.

FastAPI documents the success answers and a generic 422. This module adds, to every operation, each
error status it can answer with the one error schema (`{"error": {"code", "message"}}`) and, per
status, the `code` values that may come with it. The codes are listed once per route (`ROUTE_ERRORS`,
plus what the route's shape implies: a bearer token, parameters or a body); their statuses are never
written here but read from `errors.py`'s tables, so the document and the answers cannot disagree.

It also hoists schemas that a route embedded with their own `$defs` into `components` (no dangling
`$ref`), documents the webhook receivers' headers and bodies, and the `Allow` header of a 405
(RFC 9110, section 15.5.6: https://www.rfc-editor.org/rfc/rfc9110#name-405-method-not-allowed).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from ghsync.domain.errors import (
    AppNotInstalled,
    ConcurrentUpdate,
    Conflict,
    FileTooLarge,
    GhsyncError,
    InvalidInput,
    InvalidPath,
    NotFound,
    RepositoryNotFound,
    Unauthorized,
)
from ghsync.entrypoints.api.errors import status_for

# One documented error: the class a route raises and the code it carries.
ErrorSpec = tuple[type[BaseException], str]


def err(cls: type[GhsyncError], code: str | None = None) -> ErrorSpec:
    return (cls, code or cls.code)


# --- what every route's shape implies -----------------------------------------------------------------

UNAUTHORIZED = err(Unauthorized)
INVALID_REQUEST = err(InvalidInput, "invalid_request")  # the schema refused the request (FastAPI's check)
BAD_REQUEST = err(GhsyncError, "bad_request")  # a body that does not parse as its media type
PAYLOAD_TOO_LARGE = err(GhsyncError, "payload_too_large")  # over GHSYNC_MAX_REQUEST_BODY, on every route
INTERNAL = err(GhsyncError, "internal_error")  # a bug: the message never carries a stack trace

# --- per route --------------------------------------------------------------------------------------

_NOT_FOUND = err(NotFound)
_CURSOR = (err(InvalidInput, "invalid_cursor"), err(InvalidInput, "invalid_limit"))
_NOT_LINKED = err(Conflict, "not_linked")
_RATE_LIMITED = err(GhsyncError, "github_rate_limited")
_NOT_CONFIGURED = err(GhsyncError, "github_not_configured")
_GITHUB = (
    err(GhsyncError, "github_unavailable"),
    _RATE_LIMITED,
    err(GhsyncError, "github_not_configured"),
    err(AppNotInstalled),
    err(RepositoryNotFound),
    err(GhsyncError, "missing_permission"),
)
_FILES = (
    err(InvalidPath),
    err(InvalidInput, "invalid_base64"),
    err(InvalidInput, "duplicate_path"),
    err(InvalidInput, "path_conflict"),
    err(InvalidInput, "no_such_path"),
    err(InvalidInput, "too_many_files"),
    err(FileTooLarge),
)
_WRITE = (
    err(InvalidInput, "invalid_message"),
    err(InvalidInput, "invalid_author"),
    err(InvalidInput, "no_changes"),
    err(ConcurrentUpdate),
    err(Conflict, "workdir_conflict"),
)
_WEBHOOK = (
    err(InvalidInput, "malformed_delivery"),
    err(InvalidInput, "missing_webhook_header"),
    err(Unauthorized, "invalid_signature"),
    err(GhsyncError, "webhook_source_refused"),
    err(GhsyncError, "webhook_rate_limited"),
    err(GhsyncError, "webhook_allowlist_unavailable"),
    err(GhsyncError, "webhook_processing_failed"),
)

ROUTE_ERRORS: dict[tuple[str, str], tuple[ErrorSpec, ...]] = {
    ("GET", "/healthz"): (),
    ("GET", "/metrics"): (),
    ("POST", "/v1/projects"): (err(InvalidInput, "invalid_name"),),
    ("GET", "/v1/projects"): _CURSOR,
    ("GET", "/v1/projects/{project_id}"): (_NOT_FOUND,),
    ("POST", "/v1/projects/{project_id}/versions"): (
        _NOT_FOUND,
        *_FILES,
        *_WRITE,
        err(InvalidInput, "invalid_archive"),
        err(GhsyncError, "unsupported_media_type"),
    ),
    ("GET", "/v1/projects/{project_id}/versions"): (_NOT_FOUND, *_CURSOR),
    ("POST", "/v1/projects/{project_id}/versions/snapshot"): (
        _NOT_FOUND,
        *_WRITE,
        err(InvalidPath),
        err(FileTooLarge),
    ),
    ("GET", "/v1/projects/{project_id}/versions/{version_id}"): (_NOT_FOUND,),
    ("GET", "/v1/projects/{project_id}/versions/{version_id}/files"): (_NOT_FOUND,),
    ("GET", "/v1/projects/{project_id}/versions/{version_id}/files/{path}"): (_NOT_FOUND, err(InvalidPath)),
    ("GET", "/v1/projects/{project_id}/diff"): (_NOT_FOUND,),
    ("POST", "/v1/projects/{project_id}/github/link"): (
        _NOT_FOUND,
        *_GITHUB,
        err(Conflict, "already_linked"),
        err(InvalidInput, "invalid_repository"),
        err(InvalidInput, "invalid_sync_mode"),
        err(InvalidInput, "invalid_conflict_strategy"),
    ),
    ("DELETE", "/v1/projects/{project_id}/github/unlink"): (_NOT_FOUND, _NOT_LINKED),
    ("GET", "/v1/projects/{project_id}/github/status"): (_NOT_FOUND,),
    ("POST", "/v1/projects/{project_id}/github/sync/trigger"): (
        _NOT_FOUND,
        _NOT_LINKED,
        err(Conflict, "sync_disabled"),
    ),
    ("GET", "/v1/projects/{project_id}/github/sync/requests/{request_id}"): (_NOT_FOUND,),
    ("GET", "/v1/admin/github/sync-operations"): (
        _NOT_FOUND,  # `project_id` names no project
        *_CURSOR,
        err(InvalidInput, "invalid_status"),
    ),
    ("GET", "/v1/admin/github/sync-status"): (),
    ("POST", "/v1/admin/github/retry-failed-syncs"): (),
    ("GET", "/v1/projects/{project_id}/github/conflict"): (
        _NOT_FOUND,
        err(NotFound, "no_open_conflict"),
        _RATE_LIMITED,
    ),
    ("POST", "/v1/projects/{project_id}/github/sync/resolve-conflict"): (
        _NOT_FOUND,
        _NOT_LINKED,
        err(Conflict, "conflict_moved"),
        err(Conflict, "no_open_conflict"),
        err(Conflict, "unresolved_paths"),
        err(InvalidInput, "invalid_resolution"),
        err(InvalidPath),
        err(InvalidInput, "invalid_base64"),
        _RATE_LIMITED,
    ),
    ("GET", "/v1/projects/{project_id}/github/sync/plan"): (
        _NOT_FOUND,
        _NOT_LINKED,
        err(Conflict, "github_not_configured"),
        _RATE_LIMITED,
    ),
    ("POST", "/v1/projects/{project_id}/github/sync/confirm"): (
        _NOT_FOUND,
        _NOT_LINKED,
        err(Conflict, "plan_moved"),
        err(Conflict, "nothing_held"),
        _RATE_LIMITED,
    ),
    ("POST", "/v1/projects/{project_id}/github/sync/reset"): (
        _NOT_FOUND,
        _NOT_LINKED,
        err(Conflict, "unknown_ref"),
        err(Conflict, "repository_empty"),
        err(Conflict, "project_empty"),
        err(InvalidInput, "invalid_reset"),
        _RATE_LIMITED,
    ),
    ("PATCH", "/v1/projects/{project_id}/github"): (_NOT_FOUND, _NOT_LINKED),
    ("POST", "/v1/webhooks/github"): (*_WEBHOOK, err(GhsyncError, "webhook_not_configured")),
    ("POST", "/v1/webhooks/github/{project_id}"): (*_WEBHOOK, err(NotFound, "project_not_found")),
    ("GET", "/v1/webhooks/github/{project_id}/health"): (_NOT_FOUND, err(NotFound, "project_not_found")),
}

# The headers GitHub sends with every delivery:
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
WEBHOOK_HEADERS: tuple[tuple[str, bool, dict[str, Any], str], ...] = (
    (
        "X-Hub-Signature-256",
        True,
        {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
        "HMAC-SHA256 of the raw body with the webhook's secret, hex: the delivery's authentication "
        "(https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).",
    ),
    (
        "X-GitHub-Event",
        True,
        {"type": "string", "pattern": "^[a-z][a-z_]{0,63}$"},
        "The event that triggered the delivery (`push`, `ping`, ...).",
    ),
    (
        "X-GitHub-Delivery",
        True,
        {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"},
        "A GUID identifying the delivery (redeliveries keep it): the deduplication key.",
    ),
    ("X-GitHub-Hook-ID", False, {"type": "string", "pattern": "^[0-9]{1,20}$"}, "The webhook's id."),
    (
        "X-GitHub-Hook-Installation-Target-ID",
        False,
        {"type": "string", "pattern": "^[0-9]{1,20}$"},
        "The id of the resource the webhook is on.",
    ),
    (
        "X-GitHub-Hook-Installation-Target-Type",
        False,
        {"type": "string", "maxLength": 64},
        "The type of that resource (`integration`, `repository`).",
    ),
    ("User-Agent", False, {"type": "string", "maxLength": 256}, "`GitHub-Hookshot/<id>`."),
)

WEBHOOK_BODY: dict[str, Any] = {
    "required": True,
    "description": "The event's payload, exactly as GitHub sent it (the signature covers these bytes).",
    "content": {
        "application/json": {"schema": {"type": "object", "additionalProperties": True}},
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {"payload": {"type": "string", "description": "the payload as JSON"}},
                "required": ["payload"],
            }
        },
    },
}

ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    502: "GitHub failed",
    503: "Unavailable; retry later",
}

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def one_of(
    first: dict[str, Any], second: dict[str, Any], *, present: str, then_present: str | None = None
) -> dict[str, Any]:
    """A model's `json_schema_extra` for "either this or that": `first` has field `present` set (not
    null), `second` has `then_present` set when given."""
    first, second = copy.deepcopy(first), copy.deepcopy(second)
    first.setdefault("properties", {})[present] = {"not": {"type": "null"}}
    if then_present is not None:
        second.setdefault("properties", {})[then_present] = {"not": {"type": "null"}}
    return {"oneOf": [first, second]}


def error_schema(codes: Iterable[str]) -> dict[str, Any]:
    """`{"error": {"code", "message"}}` with `code` one of `codes` (`details` only on a schema refusal)."""
    listed = sorted(set(codes))
    detail: dict[str, Any] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "enum": listed},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "message"],
                    "properties": {
                        "loc": {"type": "array", "items": {"type": "string"}},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
    return {"type": "object", "required": ["error"], "properties": {"error": detail}}


def operation_errors(
    method: str, path: str, operation: dict[str, Any], *, webhook: bool = False
) -> dict[int, set[str]]:
    """Status -> codes for one operation: its own (ROUTE_ERRORS) and those its shape implies.

    A webhook receiver validates nothing with a schema (its body is verified, then parsed, by hand).
    """
    specs: list[ErrorSpec] = [*ROUTE_ERRORS.get((method.upper(), path), ()), PAYLOAD_TOO_LARGE, INTERNAL]
    if operation.get("security"):
        specs.append(UNAUTHORIZED)
    if not webhook and (operation.get("parameters") or operation.get("requestBody")):
        specs.append(INVALID_REQUEST)
    if not webhook and operation.get("requestBody"):
        specs.append(BAD_REQUEST)
    by_status: dict[int, set[str]] = defaultdict(set)
    for cls, code in specs:
        by_status[status_for(cls, code)].add(code)
    return dict(by_status)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                yield method.upper(), path, operation


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move embedded `$defs` into components/schemas and point their `$ref`s there."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            schemas.setdefault(name, _hoist_defs(definition, schemas))
        for key, value in list(node.items()):
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                node[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
            else:
                node[key] = _hoist_defs(value, schemas)
    elif isinstance(node, list):
        return [_hoist_defs(item, schemas) for item in node]
    return node


def _webhook_operation(operation: dict[str, Any]) -> None:
    parameters = [p for p in operation.get("parameters", []) if p.get("in") != "header"]
    for name, required, schema, description in WEBHOOK_HEADERS:
        parameters.append(
            {"name": name, "in": "header", "required": required, "schema": schema, "description": description}
        )
    operation["parameters"] = parameters
    operation["requestBody"] = copy.deepcopy(WEBHOOK_BODY)
    operation.setdefault("responses", {}).setdefault("200", {})["description"] = (
        "A `ping`: the hook is healthy"
    )
    rate_limited = operation["responses"].get("429")
    if rate_limited is not None:
        rate_limited["headers"] = {
            "Retry-After": {
                "description": "Seconds until this source may send again",
                "schema": {"type": "integer"},
            }
        }


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastAPI's) with every error answer, no dangling `$ref`, and the webhooks' headers."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    document["paths"] = _hoist_defs(document.get("paths", {}), schemas)
    for method, path, operation in operations(document):
        webhook = method == "POST" and "webhooks" in operation.get("tags", [])
        responses: dict[str, Any] = operation.setdefault("responses", {})
        responses.pop("422", None)  # FastAPI's HTTPValidationError: ours replaces it (or none is answered)
        for status, codes in sorted(operation_errors(method, path, operation, webhook=webhook).items()):
            responses[str(status)] = {
                "description": ERROR_DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_schema(codes)}},
            }
        if webhook:
            _webhook_operation(operation)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    document.setdefault("info", {})["description"] = (
        document["info"].get("description", "")
        + '\n\nEvery error answers `{"error": {"code", "message"}}`; each operation lists its codes per'
        " status. A method a path does not have answers 405 `method_not_allowed` with `Allow` listing the"
        " methods it has (RFC 9110)."
    )
    return document


def install(app: FastAPI, *, documented: Sequence[BaseRoute] = ()) -> None:
    """Serve the completed document at /openapi.json (built once, on first request). `documented` are
    operations served outside the router (the webhook receivers), described by their FastAPI routes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            base = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=[*documented, *app.routes],
            )
            app.openapi_schema = complete(base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
