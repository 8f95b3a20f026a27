"""Validate HTTP responses and webhook payloads against GitHub's official published descriptions.

The descriptions are the trimmed copies in ``tests/data/github/`` written by
``scripts/update_github_schemas.py`` from ``@octokit/openapi`` (``api.github.com.json``, OpenAPI
3.0.3) and ``@octokit/webhooks-schemas`` (JSON Schema draft-07).

* :func:`validate_response` finds the operation for a concrete request path (OpenAPI path templates,
  multi-segment parameters such as ``{ref}`` = ``heads/feature/x``, the ``/api/v3`` prefix of
  GitHub Enterprise Server, query strings), picks the response for the status code, and validates the
  body with ``jsonschema`` (OpenAPI 3.0 ``nullable`` and ``discriminator`` translated to JSON Schema).
* :func:`validate_httpx_response` does the same for an ``httpx.Response``.
* :func:`validate_request` validates a request body against the operation's ``requestBody``.
* :func:`validate_webhook` validates a payload against the schema of its event and ``action``.

A short list of :data:`ERRATA` corrects places where a published description contradicts itself
or GitHub's own description; each is checked against the upstream text and explained.

Every mismatch raises :class:`SchemaMismatch` (an ``AssertionError``) naming the operation, status,
schema and each failing JSON path.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "github"
OPENAPI_PATH = DATA_DIR / "openapi-trimmed.json"
WEBHOOKS_PATH = DATA_DIR / "webhooks-trimmed.json"
OPENAPI_URI = "urn:ghsync:github-openapi"
WEBHOOKS_URI = "urn:ghsync:github-webhooks"
# Paths GitHub Enterprise Server serves the REST API under, besides the root.
API_PREFIXES = ("/api/v3",)
# GitHub's generic error body, used for error statuses an operation does not list (e.g. 401 for a
# bad token, 403/429 rate limits, 5xx, or a 301 for a renamed repository), as GitHub documents in
# "Troubleshooting the REST API" / "Client errors". ``basic-error`` is in every trimmed description.
GENERIC_ERROR_POINTER = "/components/schemas/basic-error"
NO_BODY_STATUSES = frozenset({204, 205, 304})
MAX_REPORTED_ERRORS = 15


class SchemaMismatch(AssertionError):
    """A body does not match GitHub's published schema (or no schema applies to it)."""


@dataclass(frozen=True)
class Checked:
    """What a successful validation checked against."""

    operation_id: str
    method: str
    template: str
    status: int
    schema: str  # JSON pointer into the description (or "<no body>")


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    loose_pattern: re.Pattern[str]
    literal_length: int
    param_count: int


# --------------------------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema (2020-12)
# --------------------------------------------------------------------------------------------


def _translate_openapi_schema(node: Any) -> Any:
    """Return a copy of ``node`` with OpenAPI 3.0 schema extensions made JSON-Schema-compatible.

    * ``nullable: true`` -> ``type: [T, "null"]`` (and ``null`` added to an ``enum``), or
      ``anyOf: [{...}, {"type": "null"}]`` when there is no ``type`` (``$ref``/``allOf``/...).
    * ``oneOf`` + ``discriminator.mapping`` -> the branch named by the discriminator property must
      match (OpenAPI semantics), so bodies valid under two overlapping branches are not rejected.
    """
    if isinstance(node, list):
        return [_translate_openapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {key: _translate_openapi_schema(value) for key, value in node.items()}

    discriminator = out.get("discriminator")
    if (
        isinstance(discriminator, dict)
        and isinstance(discriminator.get("propertyName"), str)
        and isinstance(out.get("oneOf"), list)
        and discriminator.get("mapping")
    ):
        prop = discriminator["propertyName"]
        branches = out.pop("oneOf")
        rules = [
            {
                "if": {
                    "type": "object",
                    "properties": {prop: {"const": value}},
                    "required": [prop],
                },
                "then": {"$ref": target},
            }
            for value, target in discriminator["mapping"].items()
        ]
        out["anyOf"] = branches
        out["allOf"] = [*out.get("allOf", []), *rules]

    if out.get("nullable") is True:
        del out["nullable"]
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            if "null" not in types:
                out["type"] = [*types, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            inner = {k: v for k, v in out.items() if k not in ("description", "title")}
            kept = {k: v for k, v in out.items() if k in ("description", "title")}
            out = {**kept, "anyOf": [inner, {"type": "null"}]}
    return out


# --------------------------------------------------------------------------------------------
# Formats, checked strictly (jsonschema checks only the formats it has a checker for, and its own
# ``email`` check is just "contains @"): RFC 3339 ``date-time``, RFC 3986 ``uri`` (absolute, every
# character from the grammar, percent-escapes well formed, a valid authority), and an RFC 5321
# mailbox for ``email`` (dot-atom local part, a domain of LDH labels). GitHub's values pass all
# three; these need no extra packages.
# --------------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def is_date_time(value: object) -> bool:
    """RFC 3339 section 5.6 ``date-time`` (a leap second :60 is allowed, as the RFC does)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if not match:
        return False
    second = int(match.group(6))
    try:
        datetime.fromisoformat(value[:17] + "00" + value[19:].upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    offset = match.group(8)
    if offset not in ("Z", "z") and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
        return False
    return second <= 60


# RFC 3986 section 2 and appendix A.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")
_USERINFO = re.compile(rf"^(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*$")
_REG_NAME = re.compile(rf"^(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*$")
_IP_LITERAL = re.compile(r"^\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]$")
_PATH = re.compile(rf"^(?:{_PCHAR}|/)*$")
_QUERY_OR_FRAGMENT = re.compile(rf"^(?:{_PCHAR}|[/?])*$")


def is_uri(value: object) -> bool:
    """An absolute RFC 3986 URI: ``scheme ":" hier-part [ "?" query ] [ "#" fragment ]``."""
    if not isinstance(value, str):
        return True
    scheme, colon, rest = value.partition(":")
    if not colon or not _SCHEME.match(scheme):
        return False
    rest, hash_, fragment = rest.partition("#")
    if hash_ and not _QUERY_OR_FRAGMENT.match(fragment):
        return False
    rest, question, query = rest.partition("?")
    if question and not _QUERY_OR_FRAGMENT.match(query):
        return False
    path = rest
    if rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        path = slash + tail
        userinfo, at, hostport = authority.rpartition("@")
        if at and not _USERINFO.match(userinfo):
            return False
        host, port = hostport, ""
        if not hostport.startswith("[") or "]:" in hostport:
            head, sep, maybe_port = hostport.rpartition(":")
            if sep:
                host, port = head, maybe_port
        if port and not port.isdigit():
            return False
        if not (_IP_LITERAL.match(host) if host.startswith("[") else _REG_NAME.match(host)):
            return False
    elif path.startswith("//"):
        return False
    return _PATH.match(path) is not None


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_LOCAL_PART = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$")


def is_email(value: object) -> bool:
    """An RFC 5321 mailbox ``local@domain`` (dot-atom local part; no quoted or IP forms)."""
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    if not at or not local or len(local) > 64 or len(domain) > 255:
        return False
    labels = domain.split(".")
    return bool(_LOCAL_PART.match(local)) and len(labels) >= 2 and all(_LABEL.match(x) for x in labels)


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date-time")(is_date_time)
FORMAT_CHECKER.checks("uri")(is_uri)
FORMAT_CHECKER.checks("email")(is_email)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Errata: places where a published description contradicts itself or GitHub's other description.
# Each one checks that the upstream text is still what it corrects (so an upstream fix, or a
# change, fails loudly here instead of silently), and says why.
# --------------------------------------------------------------------------------------------

ERRATA: dict[str, str] = {
    "openapi: apps/list-installations account": (
        "the inlined 200 schema of GET /app/installations says account is allOf [simple-user, "
        "enterprise] (no user or organization satisfies both); the `installation` component, "
        "used by GET /app/installations/{id} in the same description, says anyOf. Use anyOf."
    ),
    "webhooks: ping hook url/ping_url": (
        "webhooks-schemas requires hook.url and hook.ping_url in ping$event, but App hooks have "
        "neither; GitHub's own description (api.github.com.json x-webhooks `ping`, "
        "webhook-ping's hook) requires only id, type, name, active, events, config, created_at "
        "and updated_at. Follow GitHub's."
    ),
}


def _apply_openapi_errata(doc: dict[str, Any]) -> None:
    op = doc["paths"].get("/app/installations", {}).get("get")
    if op is not None:
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        account = schema["items"]["properties"]["account"]
        titles = [branch.get("title") for branch in account.get("allOf", [])]
        if titles != ["Simple User", "Enterprise"]:
            raise RuntimeError(f"erratum 'apps/list-installations account' is stale: {titles}")
        account["anyOf"] = account.pop("allOf")


def _apply_webhook_errata(doc: dict[str, Any]) -> None:
    ping = doc["definitions"].get("ping$event")
    if ping is not None:
        required = ping["properties"]["hook"]["required"]
        if "url" not in required or "ping_url" not in required:
            raise RuntimeError(f"erratum 'ping hook url/ping_url' is stale: {required}")
        required[:] = [name for name in required if name not in ("url", "ping_url")]


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The trimmed OpenAPI description (errata applied) translated to JSON Schema 2020-12."""
    raw = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    _apply_openapi_errata(raw)
    translated: dict[str, Any] = _translate_openapi_schema(raw)
    return translated


@functools.cache
def webhooks_document() -> dict[str, Any]:
    """The trimmed webhook schemas (JSON Schema draft-07, errata applied)."""
    doc: dict[str, Any] = json.loads(WEBHOOKS_PATH.read_text(encoding="utf-8"))
    _apply_webhook_errata(doc)
    return doc


@functools.cache
def _openapi_registry() -> Registry[Any]:
    resource: Resource[Any] = DRAFT202012.create_resource(openapi_document())
    registry: Registry[Any] = Registry().with_resource(OPENAPI_URI, resource)
    return registry


@functools.cache
def _webhooks_registry() -> Registry[Any]:
    # Each definition carries "$schema": draft-07; the document itself is draft-07 too.
    resource: Resource[Any] = DRAFT7.create_resource(webhooks_document())
    registry: Registry[Any] = Registry().with_resource(WEBHOOKS_URI, resource)
    return registry


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(*tokens: str) -> str:
    return "".join("/" + _escape(token) for token in tokens)


def _resolve_local(doc: Mapping[str, Any], node: Any) -> tuple[Any, str | None]:
    """Follow a local ``$ref`` (responses, parameters...) once; return (target, its pointer)."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref: str = node["$ref"]
        target: Any = doc
        for token in ref.removeprefix("#/").split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        return target, ref.removeprefix("#")
    return node, None


@functools.cache
def _routes() -> tuple[_Route, ...]:
    doc = openapi_document()
    routes: list[_Route] = []
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or not isinstance(op, dict):
                continue
            multi: set[str] = set()
            for param in [*item.get("parameters", []), *op.get("parameters", [])]:
                param, _ = _resolve_local(doc, param)
                if param.get("in") == "path" and param.get("x-multi-segment"):
                    multi.add(param["name"])
            routes.append(
                _Route(
                    method=method.upper(),
                    template=template,
                    operation_id=op["operationId"],
                    pattern=_template_regex(template, multi, loose=False),
                    loose_pattern=_template_regex(template, multi, loose=True),
                    literal_length=len(re.sub(r"\{[^}]+\}", "", template)),
                    param_count=template.count("{"),
                )
            )
    return tuple(routes)


# Parameters that are always a single path segment, even in the loose pass.
_SINGLE_SEGMENT = frozenset({"owner", "repo", "org", "username"})


def _template_regex(template: str, multi: set[str], *, loose: bool) -> re.Pattern[str]:
    out = ["^"]
    pos = 0
    for match in re.finditer(r"\{([^}]+)\}", template):
        out.append(re.escape(template[pos : match.start()]))
        name = match.group(1)
        spans = name in multi or (loose and name not in _SINGLE_SEGMENT)
        # In the loose pass a multi-segment parameter may be empty (``/contents/`` = the root).
        out.append(("(.*?)" if loose and name in multi else "(.+?)") if spans else "([^/]+)")
        pos = match.end()
    out.append(re.escape(template[pos:]))
    out.append("$")
    return re.compile("".join(out))


# GitHub serves every ``/repos/{owner}/{repo}/...`` route under ``/repositories/{id}/...`` too
# (the target of its 301s for renamed repositories); the description documents only the former.
_BY_ID = re.compile(r"^/repositories/(\d+)(?=/|$)")


def _normalise_path(path: str) -> str:
    parts = urlsplit(path)
    result = parts.path if (parts.scheme or parts.netloc) else path.split("?", 1)[0]
    for prefix in API_PREFIXES:
        if result == prefix or result.startswith(prefix + "/"):
            result = result[len(prefix) :] or "/"
    return _BY_ID.sub(r"/repos/_by_id/\1", result)


def find_operation(method: str, path: str) -> _Route:
    """The operation serving ``method path`` (a concrete request path or URL)."""
    concrete = _normalise_path(path)
    method = method.upper()
    for loose in (False, True):
        matches = [
            route for route in _routes() if (route.loose_pattern if loose else route.pattern).match(concrete)
        ]
        same_method = [route for route in matches if route.method == method]
        if same_method:
            same_method.sort(key=lambda r: (-r.literal_length, r.param_count))
            return same_method[0]
        if matches:
            known = sorted({route.method for route in matches})
            raise SchemaMismatch(
                f"{method} {path}: GitHub documents no {method} for {matches[0].template} "
                f"(documented: {', '.join(known)})"
            )
    raise SchemaMismatch(
        f"{method} {path}: no operation in tests/data/github/openapi-trimmed.json matches "
        f"(add its operationId to OPERATIONS in scripts/update_github_schemas.py and re-run)"
    )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_NO_BODY = object()


def _parse_body(body: Any) -> Any:
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8")
    if isinstance(body, str):
        if not body.strip():
            return _NO_BODY
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise SchemaMismatch(f"body is not JSON ({exc}): {body[:200]!r}") from None
    if body is None:
        return _NO_BODY
    return body


def _json_path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(error: ValidationError) -> str:
    if error.validator in ("oneOf", "anyOf"):
        return f"{_short(error.instance)} is not valid under any {error.validator} branch"
    if error.validator in ("type", "enum", "const", "format", "minLength", "maxLength"):
        return f"{_short(error.instance)} fails {error.validator}={_short(error.validator_value)}"
    return error.message if len(error.message) <= 300 else error.message[:297] + "..."


def _leaves(error: ValidationError) -> list[ValidationError]:
    if not error.context:
        return [error]
    return [leaf for child in error.context for leaf in _leaves(child)]


def _is_null_branch(error: ValidationError) -> bool:
    return error.validator == "type" and error.validator_value in ("null", ["null"])


def _describe(error: ValidationError) -> str:
    text = f"{_json_path(error)}: {_message(error)}"
    if error.context:
        # Leaf failures of every branch, minus the uninteresting "is not null" of nullable fields.
        leaves = [leaf for leaf in _leaves(error) if not _is_null_branch(leaf)] or _leaves(error)
        for leaf in leaves[:6]:
            text += f"\n      branch failure: {_json_path(leaf)}: {_message(leaf)}"
        if len(leaves) > 6:
            text += f"\n      ... and {len(leaves) - 6} more branch failures"
    return text


def _errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[ValidationError]:
    return sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])


def _report(header: str, errors: list[ValidationError], instance: Any) -> SchemaMismatch:
    lines = [header, f"  {len(errors)} error(s):"]
    lines += [f"  - {_describe(error)}" for error in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        lines.append(f"  ... and {len(errors) - MAX_REPORTED_ERRORS} more")
    snippet = json.dumps(instance, default=str)
    lines.append(f"  body: {snippet[:500]}{'...' if len(snippet) > 500 else ''}")
    return SchemaMismatch("\n".join(lines))


@functools.cache
def _openapi_validator(pointer: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"{OPENAPI_URI}#{quote(pointer, safe='/~')}"}
    cls = jsonschema.Draft202012Validator
    return cls(schema, registry=_openapi_registry(), format_checker=FORMAT_CHECKER)


@functools.cache
def _webhook_validator(definition: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"{WEBHOOKS_URI}#{quote(_pointer('definitions', definition), safe='/~')}"}
    cls = jsonschema.Draft7Validator
    return cls(schema, registry=_webhooks_registry(), format_checker=FORMAT_CHECKER)


def _pick_media(content: Mapping[str, Any]) -> str | None:
    if "application/json" in content:
        return "application/json"
    for media, value in content.items():
        if "json" in media and "schema" in value:
            return media
    return None


def response_schema_pointer(method: str, path: str, status: int) -> tuple[_Route, str | None]:
    """(operation, JSON pointer of the response body schema) for a request; ``None`` = no body."""
    route = find_operation(method, path)
    doc = openapi_document()
    op_pointer = ("paths", route.template, route.method.lower())
    responses = doc["paths"][route.template][route.method.lower()]["responses"]
    key = str(status) if str(status) in responses else None
    if key is None and f"{str(status)[0]}XX" in responses:
        key = f"{str(status)[0]}XX"
    if key is None and "default" in responses:
        key = "default"
    if key is None:
        if status in NO_BODY_STATUSES:
            return route, None
        if status >= 300:
            return route, GENERIC_ERROR_POINTER
        raise SchemaMismatch(
            f"{route.method} {path} ({route.operation_id}): status {status} is not documented "
            f"(documented: {', '.join(sorted(responses))})"
        )
    response, ref_pointer = _resolve_local(doc, responses[key])
    base = (
        tuple(t.replace("~1", "/").replace("~0", "~") for t in ref_pointer.split("/")[1:])
        if ref_pointer
        else (*op_pointer, "responses", key)
    )
    content = response.get("content") or {}
    media = _pick_media(content)
    if media is None:
        return route, None
    return route, _pointer(*base, "content", media, "schema")


def validate_response(method: str, path: str, status: int, body: Any) -> Checked:
    """Validate a response body against GitHub's schema for ``method path`` and ``status``.

    ``path`` is the concrete request path or URL (``/api/v3`` prefix and query string allowed).
    ``body`` is the raw body (``bytes``/``str``, empty meaning no body) or already-parsed JSON
    (``None`` meaning no body). Statuses the operation does not list are held to GitHub's generic
    error body (``basic-error``) when >= 300, and to "no body" for 204/304; an error status listed
    without content may have no body or the generic error body.
    """
    route, pointer = response_schema_pointer(method, path, status)
    instance = _parse_body(body)
    where = f"{route.method} {path} -> {status} ({route.operation_id})"
    if pointer is None and instance is not _NO_BODY and status >= 400:
        # An error status documented without content (e.g. check-if-merged's 404, delete-ref's
        # 422): the description is silent about the body, and GitHub sends its generic error.
        pointer = GENERIC_ERROR_POINTER
    if pointer is None:
        if instance is not _NO_BODY:
            snippet = json.dumps(instance, default=str)[:300]
            raise SchemaMismatch(f"{where}: GitHub documents no body, got {snippet}")
        return Checked(route.operation_id, route.method, route.template, status, "<no body>")
    if instance is _NO_BODY:
        raise SchemaMismatch(f"{where}: expected a JSON body ({pointer}), got none")
    errors = _errors(_openapi_validator(pointer), instance)
    if errors:
        raise _report(f"{where} does not match schema {pointer}", errors, instance)
    return Checked(route.operation_id, route.method, route.template, status, pointer)


def validate_httpx_response(response: httpx.Response) -> Checked:
    """:func:`validate_response` for an ``httpx.Response`` (its request's method and raw path)."""
    request = response.request
    raw_path = request.url.raw_path.decode("ascii")
    return validate_response(request.method, raw_path, response.status_code, response.content)


def validate_request(method: str, path: str, body: Any) -> Checked:
    """Validate a request body against the operation's documented ``requestBody`` schema."""
    route = find_operation(method, path)
    doc = openapi_document()
    op = doc["paths"][route.template][route.method.lower()]
    instance = _parse_body(body)
    where = f"request {route.method} {path} ({route.operation_id})"
    request_body = op.get("requestBody")
    if request_body is None:
        if instance is not _NO_BODY:
            raise SchemaMismatch(f"{where}: GitHub documents no request body")
        return Checked(route.operation_id, route.method, route.template, 0, "<no body>")
    request_body, ref_pointer = _resolve_local(doc, request_body)
    if instance is _NO_BODY:
        if request_body.get("required"):
            raise SchemaMismatch(f"{where}: a request body is required")
        return Checked(route.operation_id, route.method, route.template, 0, "<no body>")
    media = _pick_media(request_body.get("content") or {})
    if media is None:
        raise SchemaMismatch(f"{where}: no JSON request body documented")
    base = (
        tuple(t.replace("~1", "/").replace("~0", "~") for t in ref_pointer.split("/")[1:])
        if ref_pointer
        else ("paths", route.template, route.method.lower(), "requestBody")
    )
    pointer = _pointer(*base, "content", media, "schema")
    errors = _errors(_openapi_validator(pointer), instance)
    if errors:
        raise _report(f"{where} does not match schema {pointer}", errors, instance)
    return Checked(route.operation_id, route.method, route.template, 0, pointer)


def webhook_definition(event: str, payload: Mapping[str, Any]) -> str:
    """The webhooks-schemas definition name for an event (``push$event``, ``pull_request$opened``)."""
    definitions = webhooks_document()["definitions"]
    if f"{event}$event" in definitions:
        return f"{event}$event"
    action = payload.get("action")
    if not isinstance(action, str):
        known = sorted(name for name in definitions if name.startswith(f"{event}$"))
        if known:
            raise SchemaMismatch(
                f"webhook {event!r}: payload has no 'action' but GitHub's schemas are per action "
                f"({', '.join(known)})"
            )
    else:
        name = f"{event}${action}"
        if name in definitions:
            return name
    raise SchemaMismatch(
        f"webhook {event!r} action {action!r}: no schema in tests/data/github/webhooks-trimmed.json "
        "(add it to WEBHOOKS in scripts/update_github_schemas.py and re-run if GitHub has one)"
    )


def validate_webhook(event: str, payload: Any) -> str:
    """Validate a webhook payload (``X-GitHub-Event`` name and body); return the definition used."""
    instance = _parse_body(payload)
    if not isinstance(instance, dict):
        raise SchemaMismatch(f"webhook {event!r}: payload is not a JSON object: {instance!r:.200}")
    name = webhook_definition(event, instance)
    errors = _errors(_webhook_validator(name), instance)
    if errors:
        raise _report(f"webhook {event!r} does not match schema {name}", errors, instance)
    return name


def iter_documented(kind: str = "operations") -> Iterator[str]:
    """operationIds (``kind="operations"``) or webhook definitions (``"webhooks"``) available."""
    if kind == "operations":
        yield from sorted({route.operation_id for route in _routes()})
    else:
        yield from sorted(name for name in webhooks_document()["definitions"] if "$" in name)
