"""The ``/_emulator/*`` control API (not GitHub's): set up state, inject faults, inspect traffic.

JSON in and out. These paths and fields are a public contract (issue 3, item 8); add, never
rename.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import payloads
from github_emulator.core import Emulator, GitHubError
from github_emulator.deps import emulator, json_response, urls
from github_emulator.faults import Fault
from github_emulator.store import DeliveryRecord

router = APIRouter(prefix="/_emulator")

_MODES = ("deliver", "drop", "duplicate", "delay", "reorder")


def _need(body: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in body:
            raise GitHubError(422, f"{key} is required")


@router.get("/health")
def health() -> Response:
    return json_response({"ok": True})


@router.post("/apps")
def create_app(
    request: Request, body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{slug, webhook_url?, webhook_secret?, name?, owner?, events?, permissions?}``."""
    _need(body, "slug")
    secret = body.get("webhook_secret") or secrets.token_hex(20)
    app = emu.create_app(
        str(body["slug"]),
        body.get("webhook_url"),
        secret,
        urls(request),
        name=body.get("name"),
        owner=body.get("owner"),
        events=body.get("events"),
        permissions=body.get("permissions"),
    )
    return json_response(
        {
            "id": app.id,
            "slug": app.slug,
            "client_id": app.client_id,
            "private_key": app.private_key_pem,
            "webhook_secret": app.webhook_secret,
            "webhook_url": app.webhook_url,
            "hook_id": app.hook_id,
        },
        status=201,
    )


@router.patch("/apps/{app_id}")
def update_app(
    app_id: int,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
) -> Response:
    """``{webhook_url?, webhook_secret?, webhook_active?}``; a new URL sends ``ping``."""
    app = emu.store.data.apps.get(app_id)
    if app is None:
        raise GitHubError(404, "Not Found")
    changes = {}
    if "webhook_url" in body:
        changes["url"] = body["webhook_url"]
    if "webhook_secret" in body:
        changes["secret"] = body["webhook_secret"]
    if "webhook_active" in body:
        app.webhook_active = bool(body["webhook_active"])
    emu.update_app_hook(app, urls(request), changes)
    return json_response(
        {"id": app.id, "slug": app.slug, "webhook_url": app.webhook_url, "webhook_secret": app.webhook_secret}
    )


@router.post("/users")
def create_user(
    body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{login, name?, email?}`` -> ``{login, id, token, email}`` (token for REST and git)."""
    _need(body, "login")
    user = emu.create_user(str(body["login"]), body.get("name"), body.get("email"))
    return json_response(
        {"login": user.login, "id": user.id, "token": user.token, "email": user.email}, status=201
    )


@router.post("/orgs")
def create_org(
    body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{login, name?}`` -> ``{login, id}``: an organisation (repositories it owns carry
    ``organization``, as GitHub's do)."""
    _need(body, "login")
    login = str(body["login"])
    with emu.store.lock:
        existing = emu.store.user(login)
        if existing is not None and existing.type != "Organization":
            raise GitHubError(422, f"{login} is a user")
        org = emu.store.ensure_account(login, kind="Organization")
        if body.get("name") is not None:
            org.name = str(body["name"])
        emu.store.save()
    return json_response({"login": org.login, "id": org.id}, status=201)


@router.post("/repos")
def create_repo(
    request: Request, body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{owner, name, default_branch? ("main"), private?, files? {path: text}, description?, auto_init?}``.

    With ``files`` (or ``auto_init``) the default branch gets one initial commit; otherwise the
    repository is empty (no branches), as a new GitHub repository without auto-init is.
    """
    _need(body, "owner", "name")
    repo = emu.create_repo(
        str(body["owner"]),
        str(body["name"]),
        str(body.get("default_branch") or "main"),
        bool(body.get("private", False)),
        body.get("files"),
        body.get("description"),
        bool(body.get("auto_init", False)),
    )
    u = urls(request)
    return json_response(
        payloads.full_repository(repo, emu.account(repo.owner), u, emu.repo_size(repo)), status=201
    )


@router.post("/installations")
def create_installation(
    request: Request, body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{app_id, account, repositories: ["owner/name", ...], repository_selection?}`` -> ``{id}``."""
    _need(body, "app_id", "account")
    inst = emu.create_installation(
        int(body["app_id"]),
        str(body["account"]),
        list(body.get("repositories") or []),
        urls(request),
        str(body.get("repository_selection") or "selected"),
    )
    return json_response({"id": inst.id, "app_id": inst.app_id, "account": inst.account}, status=201)


@router.patch("/installations/{installation_id}")
def change_installation(
    installation_id: int,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
) -> Response:
    """``{add?: ["owner/name"], remove?: [...]}``: fires ``installation_repositories``."""
    inst = emu.store.data.installations.get(installation_id)
    if inst is None:
        raise GitHubError(404, "Not Found")
    emu.change_installation_repos(
        inst, list(body.get("add") or []), list(body.get("remove") or []), urls(request)
    )
    return json_response(
        {"id": inst.id, "repositories": [emu.store.data.repos[i].full_name for i in inst.repository_ids]}
    )


@router.delete("/installations/{installation_id}")
def delete_installation(
    installation_id: int, request: Request, emu: Emulator = Depends(emulator)
) -> Response:
    inst = emu.store.data.installations.get(installation_id)
    if inst is None:
        raise GitHubError(404, "Not Found")
    emu.delete_installation(inst, urls(request))
    return Response(status_code=204)


@router.put("/installations/{installation_id}/suspended")
@router.delete("/installations/{installation_id}/suspended")
def suspend_installation(
    installation_id: int,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
) -> Response:
    """``{by?: login}``: suspend (PUT) or unsuspend (DELETE) as that user (default: the App's owner)."""
    from github_emulator.lifecycle import set_suspended

    inst = emu.store.data.installations.get(installation_id)
    if inst is None:
        raise GitHubError(404, "Not Found")
    set_suspended(emu, inst, request.method == "PUT", body.get("by"), urls(request))
    return Response(status_code=204)


@router.post("/tokens/expire")
def expire_tokens(
    body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{token?, installation_id?}``: expire matching tokens now -> ``{expired: n}``."""
    count = emu.expire_tokens(body.get("token"), body.get("installation_id"))
    return json_response({"expired": count})


@router.post("/faults")
def add_fault(
    body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{method?, path_regex, status?, headers?, body?, delay_ms?, count, kind?, every?,
    probability?, seed?, installation_id?}`` -> ``{id}``.

    Matches the request path without the ``/api/v3`` prefix (REST, GraphQL and git smart HTTP
    paths). ``kind`` is ``status`` (default; without ``status`` the fault only adds latency),
    ``reset``, ``reset_after`` or ``truncate`` (see :mod:`github_emulator.faults`). It fires on
    every ``every``-th matching request, or with ``probability`` from a generator seeded with
    ``seed``; ``count`` firings, then the fault is spent.
    """
    _need(body, "path_regex")
    with emu.runtime_lock:
        try:
            fault = Fault(
                id=len(emu.faults) + 1,
                path_regex=str(body["path_regex"]),
                count=int(body.get("count", 1)),
                method=body.get("method"),
                status=body.get("status"),
                headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
                body=body.get("body"),
                delay_ms=int(body.get("delay_ms") or 0),
                kind=str(body.get("kind") or "status"),
                every=int(body.get("every") or 1),
                probability=float(body.get("probability", 1.0)),
                seed=body.get("seed"),
                installation_id=body.get("installation_id"),
            )
        except (ValueError, re.error) as exc:
            raise GitHubError(422, str(exc)) from exc
        emu.faults.append(fault)
    return json_response({"id": fault.id}, status=201)


@router.get("/faults")
def list_faults(emu: Emulator = Depends(emulator)) -> Response:
    with emu.runtime_lock:
        return json_response([f.as_json() for f in emu.faults])


@router.delete("/faults")
def clear_faults(emu: Emulator = Depends(emulator)) -> Response:
    with emu.runtime_lock:
        emu.faults.clear()
    return Response(status_code=204)


@router.put("/webhooks")
def set_webhooks(
    body: dict[str, Any] = Body(default_factory=dict), emu: Emulator = Depends(emulator)
) -> Response:
    """``{mode: deliver|drop|duplicate|delay|reorder, delay_ms?, events?: [...], hook_ids?: [...]}``.

    With ``events`` and/or ``hook_ids`` the mode applies only to those deliveries.
    """
    mode = body.get("mode")
    if mode not in _MODES:
        raise GitHubError(422, f"mode must be one of {', '.join(_MODES)}")
    events = [str(e) for e in body.get("events") or []] or None
    hook_ids = [int(h) for h in body.get("hook_ids") or []] or None
    emu.set_webhook_mode(mode, int(body.get("delay_ms") or 0), events, hook_ids)
    return json_response(
        {"mode": mode, "delay_ms": int(body.get("delay_ms") or 0), "events": events, "hook_ids": hook_ids}
    )


@router.get("/webhooks")
def get_webhooks(emu: Emulator = Depends(emulator)) -> Response:
    return json_response(
        {"mode": emu.dispatcher.mode, "delay_ms": emu.dispatcher.delay_ms, "idle": emu.dispatcher.idle()}
    )


@router.get("/requests")
def list_requests(emu: Emulator = Depends(emulator)) -> Response:
    """Every REST, GraphQL and git smart HTTP request, in order (control requests are not listed).

    Rows: ``{method, path, query, status, installation_id, at, user, duration_ms, route, kind,
    content_creating, service, ref_updates, fault}`` (see ``core.RequestLogEntry``).
    """
    with emu.runtime_lock:
        items = [dict(e.__dict__) for e in emu.requests]
    return json_response(items)


@router.get("/requests/summary")
def summarize_requests(emu: Emulator = Depends(emulator)) -> Response:
    """Counts for benchmarks: totals, per installation, and per route (``"GET /repos/{owner}/{repo}"``)."""
    from github_emulator.requestlog import summarize

    with emu.runtime_lock:
        rows = list(emu.requests)
    return json_response(summarize(rows))


@router.delete("/requests")
def clear_requests(emu: Emulator = Depends(emulator)) -> Response:
    with emu.runtime_lock:
        emu.requests.clear()
    return Response(status_code=204)


def _delivery(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "guid": d.guid,
        "event": d.event,
        "action": d.action,
        "hook_id": d.hook_id,
        "target_type": d.target_type,
        "url": d.url,
        "status": d.status,
        "status_code": d.status_code,
        "redelivery": d.redelivery,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "delivered_at": d.delivered_at,
        "headers": dict(d.request_headers),
        "payload": json.loads(d.payload),
    }


@router.get("/deliveries")
def list_deliveries(emu: Emulator = Depends(emulator)) -> Response:
    """Every webhook delivery (oldest first) with its response status and the signed payload."""
    with emu.store.lock:
        items = [_delivery(d) for d in sorted(emu.store.data.deliveries.values(), key=lambda d: d.id)]
    return json_response(items)


@router.post("/reset")
def reset(emu: Emulator = Depends(emulator)) -> Response:
    """Forget everything: state, git repositories, faults, logs, webhook mode."""
    emu.reset()
    return Response(status_code=204)
