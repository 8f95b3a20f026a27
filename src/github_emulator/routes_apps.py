"""REST routes for GitHub Apps: the app, installations, access tokens, the app's hook and deliveries.

https://docs.github.com/rest/apps/apps and https://docs.github.com/rest/apps/webhooks
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import payloads
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError, not_found
from github_emulator.deps import emulator, json_response, paginate, principal, repo_access, require_app, urls
from github_emulator.store import AppRecord, InstallationRecord

router = APIRouter()

APPS_DOCS = "https://docs.github.com/rest/apps/apps"


def _app(emu: Emulator, who: Principal) -> AppRecord:
    app = emu.store.data.apps.get(who.app_id or -1)
    if app is None:
        raise GitHubError(401, "Integration not found")
    return app


def _inst_json(emu: Emulator, inst: InstallationRecord, request: Request) -> payloads.JSON:
    app = emu.store.data.apps[inst.app_id]
    return payloads.installation(inst, app, emu.account(inst.account), urls(request))


@router.get("/app")
def get_app(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(principal)
) -> Response:
    if who.kind not in ("app", "installation"):
        raise GitHubError(401, "A JSON web token could not be decoded", APPS_DOCS)
    app = _app(emu, who)
    body = payloads.integration(app, emu.account(app.owner), urls(request))
    body["installations_count"] = sum(1 for i in emu.store.data.installations.values() if i.app_id == app.id)
    return json_response(body)


@router.get("/app/installations")
def list_installations(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(require_app)
) -> Response:
    app = _app(emu, who)
    items = [
        _inst_json(emu, i, request)
        for i in sorted(emu.store.data.installations.values(), key=lambda i: i.id)
        if i.app_id == app.id
    ]
    chunk, headers = paginate(request, items)
    return json_response(chunk, headers=headers)


def _installation(emu: Emulator, who: Principal, installation_id: int) -> InstallationRecord:
    inst = emu.store.data.installations.get(installation_id)
    if inst is None or inst.app_id != who.app_id:
        raise not_found(APPS_DOCS + "#get-an-installation-for-the-authenticated-app")
    return inst


@router.get("/app/installations/{installation_id}")
def get_installation(
    installation_id: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    return json_response(_inst_json(emu, _installation(emu, who, installation_id), request))


@router.delete("/app/installations/{installation_id}")
def delete_installation(
    installation_id: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    inst = _installation(emu, who, installation_id)
    emu.delete_installation(inst, urls(request))
    return Response(status_code=204)


@router.post("/app/installations/{installation_id}/access_tokens")
def create_token(
    installation_id: int,
    request: Request,
    body: dict[str, Any] | None = Body(default=None),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    """Tokens expire after the configured TTL (GitHub: 1 hour)."""
    inst = _installation(emu, who, installation_id)
    body = body or {}
    record = emu.issue_installation_token(
        inst, body.get("repositories"), body.get("repository_ids"), body.get("permissions")
    )
    u = urls(request)
    repos = None
    if record.repository_ids is not None:
        repos = [
            payloads.repository(emu.store.data.repos[i], emu.account(emu.store.data.repos[i].owner), u)
            for i in record.repository_ids
        ]
    assert record.expires_at is not None
    return json_response(
        payloads.installation_token(
            record.token, record.expires_at, record.permissions, inst.repository_selection, repos
        ),
        status=201,
    )


@router.get("/repos/{owner}/{repo}/installation")
def repo_installation(
    owner: str,
    repo: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    r = emu.store.find_repo(owner, repo)
    inst = emu.store.installation_for_repo(r.id) if r is not None else None
    if inst is None or inst.app_id != who.app_id:
        raise not_found(APPS_DOCS + "#get-a-repository-installation-for-the-authenticated-app")
    return json_response(_inst_json(emu, inst, request))


@router.get("/installation/repositories")
def installation_repositories(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(principal)
) -> Response:
    if who.kind != "installation":
        raise GitHubError(
            403,
            "You must authenticate with an installation access token in order to list "
            "repositories for an installation.",
        )
    inst = emu.store.data.installations[who.installation_id or -1]
    ids = inst.repository_ids
    if who.token is not None and who.token.repository_ids is not None:
        ids = [i for i in ids if i in who.token.repository_ids]
    u = urls(request)
    repos = [
        payloads.repository(emu.store.data.repos[i], emu.account(emu.store.data.repos[i].owner), u)
        for i in ids
        if i in emu.store.data.repos
    ]
    chunk, headers = paginate(request, repos)
    return json_response(
        {"total_count": len(repos), "repository_selection": inst.repository_selection, "repositories": chunk},
        headers=headers,
    )


@router.delete("/installation/token")
def revoke_token(emu: Emulator = Depends(emulator), who: Principal = Depends(principal)) -> Response:
    if who.kind != "installation" or who.token is None:
        raise GitHubError(401, "Bad credentials")
    emu.expire_tokens(who.token.token, None)
    return Response(status_code=204)


# ---- the app's webhook -----------------------------------------------------------------------


@router.get("/app/hook/config")
def get_hook_config(emu: Emulator = Depends(emulator), who: Principal = Depends(require_app)) -> Response:
    app = _app(emu, who)
    return json_response(payloads.hook_config(app.webhook_url, app.webhook_secret))


@router.patch("/app/hook/config")
def patch_hook_config(
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    """Setting a new URL sends ``ping``, as GitHub does."""
    app = emu.update_app_hook(_app(emu, who), urls(request), body)
    return json_response(payloads.hook_config(app.webhook_url, app.webhook_secret))


@router.get("/app/hook/deliveries")
def list_deliveries(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(require_app)
) -> Response:
    """Newest first; ``per_page`` and ``cursor`` (the last id seen) page through them."""
    app = _app(emu, who)
    items = sorted(
        (d for d in emu.store.data.deliveries.values() if d.hook_id == app.hook_id),
        key=lambda d: d.id,
        reverse=True,
    )
    cursor = request.query_params.get("cursor")
    if cursor and cursor.isdigit():
        items = [d for d in items if d.id < int(cursor)]
    try:
        per_page = max(1, min(100, int(request.query_params.get("per_page", 30))))
    except ValueError:
        per_page = 30
    chunk = items[:per_page]
    headers = {}
    if len(items) > per_page:
        base = str(request.url.replace(query=""))
        headers["Link"] = f'<{base}?per_page={per_page}&cursor={chunk[-1].id}>; rel="next"'
    return json_response([payloads.delivery_item(d) for d in chunk], headers=headers)


@router.get("/app/hook/deliveries/{delivery_id}")
def get_delivery(
    delivery_id: int, emu: Emulator = Depends(emulator), who: Principal = Depends(require_app)
) -> Response:
    app = _app(emu, who)
    d = emu.store.data.deliveries.get(delivery_id)
    if d is None or d.hook_id != app.hook_id:
        raise not_found("https://docs.github.com/rest/apps/webhooks#get-a-delivery-for-an-app-webhook")
    return json_response(payloads.delivery_detail(d))


@router.post("/app/hook/deliveries/{delivery_id}/attempts")
def redeliver(
    delivery_id: int, emu: Emulator = Depends(emulator), who: Principal = Depends(require_app)
) -> Response:
    """202; the redelivery keeps the original ``X-GitHub-Delivery`` GUID."""
    app = _app(emu, who)
    d = emu.store.data.deliveries.get(delivery_id)
    if d is None or d.hook_id != app.hook_id:
        raise not_found("https://docs.github.com/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook")
    emu.redeliver(delivery_id)
    return json_response({}, status=202)


@router.get("/repos/{owner}/{repo}/collaborators/{username}/permission")
def collaborator_permission(
    owner: str,
    repo: str,
    username: str,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    r = repo_access(emu, who, owner, repo)
    user = emu.account(username)
    permission = "admin" if user.login == r.owner else "write"
    return json_response(payloads.collaborator_permission(user, permission, urls(request)))
