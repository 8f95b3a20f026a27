"""A repository webhook's deliveries: list, get, and redeliver (as the App hook's are).

https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook,
#get-a-delivery-for-a-repository-webhook and #redeliver-a-delivery-for-a-repository-webhook: newest
first, paged by ``per_page`` and ``cursor``; a redelivery is sent again with the same
``X-GitHub-Delivery`` GUID and ``redelivery: true``, answered 202.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from github_emulator import payloads
from github_emulator.auth import Principal
from github_emulator.core import Emulator, not_found
from github_emulator.deps import emulator, json_response, principal, repo_access
from github_emulator.store import DeliveryRecord, HookRecord

router = APIRouter()

DOCS = "https://docs.github.com/rest/repos/webhooks"


def _hook(emu: Emulator, who: Principal, owner: str, repo: str, hook_id: int) -> HookRecord:
    r = repo_access(emu, who, owner, repo)
    with emu.store.lock:
        hook = emu.store.data.hooks.get(hook_id)
    if hook is None or hook.repo_id != r.id:
        raise not_found(DOCS + "#get-a-repository-webhook")
    return hook


def _delivery(emu: Emulator, hook: HookRecord, delivery_id: int) -> DeliveryRecord:
    with emu.store.lock:
        d = emu.store.data.deliveries.get(delivery_id)
    if d is None or d.hook_id != hook.id:
        raise not_found(DOCS + "#get-a-delivery-for-a-repository-webhook")
    return d


@router.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries")
def list_hook_deliveries(
    owner: str,
    repo: str,
    hook_id: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    hook = _hook(emu, who, owner, repo, hook_id)
    with emu.store.lock:
        items = sorted(
            (d for d in emu.store.data.deliveries.values() if d.hook_id == hook.id), key=lambda d: -d.id
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


@router.get("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}")
def get_hook_delivery(
    owner: str,
    repo: str,
    hook_id: int,
    delivery_id: int,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    hook = _hook(emu, who, owner, repo, hook_id)
    return json_response(payloads.delivery_detail(_delivery(emu, hook, delivery_id)))


@router.post("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts")
def redeliver_hook_delivery(
    owner: str,
    repo: str,
    hook_id: int,
    delivery_id: int,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(principal),
) -> Response:
    hook = _hook(emu, who, owner, repo, hook_id)
    emu.redeliver(_delivery(emu, hook, delivery_id).id)
    return json_response({}, status=202)
