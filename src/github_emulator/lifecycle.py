"""Repository and installation lifecycle: archiving, transfer, suspending an installation.

* Archived repositories are read-only: every write answers 403 "Repository was archived so is
  read-only." (the one write allowed is unarchiving, ``PATCH {"archived": false}``), pushes are
  refused, and ``repository`` ``archived``/``unarchived`` events are sent
  (https://docs.github.com/en/repositories/archiving-a-github-repository/archiving-repositories,
  https://docs.github.com/en/webhooks/webhook-events-and-payloads#repository).
* ``POST /repos/{owner}/{repo}/transfer`` moves a repository to another account at once (GitHub
  answers 202 and finishes in the background), the old name redirects, and a ``repository``
  ``transferred`` event is sent (https://docs.github.com/en/rest/repos/repos#transfer-a-repository).
* ``PUT``/``DELETE /app/installations/{id}/suspended`` suspend and unsuspend an installation: while
  suspended, no token can be created and existing tokens are refused, no events reach the App
  except ``installation`` ``suspend``/``unsuspend`` themselves
  (https://docs.github.com/en/rest/apps/apps#suspend-an-app-installation: "blocks the app from
  accessing the account's resources ... the app's access to the GitHub API or webhook events is
  blocked for that account").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from github_emulator import payloads
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError
from github_emulator.deps import emulator, json_response, repo_access, require_app, require_auth, urls
from github_emulator.payloads import JSON, Urls
from github_emulator.store import InstallationRecord, RepoRecord, now_iso

router = APIRouter()

ARCHIVED_MESSAGE = "Repository was archived so is read-only."
ARCHIVED_DOCS = "https://docs.github.com/repositories/archiving-a-github-repository/archiving-repositories"
# GitHub's text for a suspended installation is not documented; a best guess.
SUSPENDED_MESSAGE = "This installation has been suspended"
SUSPEND_DOCS = "https://docs.github.com/rest/apps/apps#suspend-an-app-installation"
TRANSFER_DOCS = "https://docs.github.com/rest/repos/repos#transfer-a-repository"


def archived_error() -> GitHubError:
    return GitHubError(403, ARCHIVED_MESSAGE, ARCHIVED_DOCS)


def archive_action(was: bool, now: bool) -> str | None:
    """The ``repository`` event action for a change of ``archived`` (None when unchanged)."""
    if was == now:
        return None
    return "archived" if now else "unarchived"


def installation_suspended(emu: Emulator, installation_id: int | None) -> bool:
    with emu.store.lock:
        inst = emu.store.data.installations.get(installation_id or -1)
        return inst is not None and inst.suspended_at is not None


# ---- transfer ------------------------------------------------------------------------------------


def transfer_repo(
    emu: Emulator, repo: RepoRecord, new_owner: str, new_name: str | None, actor: Principal, u: Urls
) -> None:
    name = new_name or repo.name
    with emu.store.lock:
        existing = emu.store.find_repo(new_owner, name)
        if existing is not None and existing.id != repo.id:
            raise GitHubError(
                422,
                "Validation Failed",
                TRANSFER_DOCS,
                [
                    {
                        "resource": "Repository",
                        "code": "custom",
                        "field": "name",
                        "message": f"{new_owner} already has a repository named {name}",
                    }
                ],
            )
        old_owner = emu.store.ensure_account(repo.owner)
        target = emu.store.ensure_account(new_owner)
        # The old name redirects to the repository, as after a rename
        # (https://docs.github.com/en/repositories/creating-and-managing-repositories/transferring-a-repository).
        emu.store.data.redirects[repo.full_name.lower()] = repo.id
        repo.owner = target.login
        repo.name = name
        repo.updated_at = now_iso()
        emu.store.save()
    from_key = "organization" if old_owner.type == "Organization" else "user"
    changes: JSON = {"owner": {"from": {from_key: payloads.simple_user(old_owner, u)}}}
    emu.fire_repo_event(repo, "transferred", changes, actor, u)


@router.post("/repos/{owner}/{repo}/transfer")
def transfer(
    owner: str,
    repo: str,
    request: Request,
    body: dict[str, Any] = Body(default_factory=dict),
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_auth),
) -> Response:
    r = repo_access(emu, who, owner, repo, write=True)
    new_owner = body.get("new_owner")
    if not isinstance(new_owner, str) or not new_owner:
        raise GitHubError(422, 'Invalid request.\n\n"new_owner" wasn\'t supplied.', TRANSFER_DOCS)
    new_name = body.get("new_name")
    u = urls(request)
    transfer_repo(emu, r, new_owner, str(new_name) if new_name else None, who, u)
    minimal = payloads.repository(r, emu.account(r.owner), u, emu.repo_size(r))
    return json_response(minimal, 202)


# ---- suspension ----------------------------------------------------------------------------------


def set_suspended(
    emu: Emulator, inst: InstallationRecord, suspend: bool, by_login: str | None, u: Urls
) -> None:
    """Suspend or unsuspend ``inst`` and tell the App (``installation`` suspend/unsuspend)."""
    with emu.store.lock:
        if (inst.suspended_at is not None) == suspend:
            return  # already so: GitHub sends nothing either
        app = emu.store.data.apps[inst.app_id]
        by = emu.store.ensure_account(by_login or app.owner)
        if suspend:
            inst.suspended_at = now_iso()
            inst.suspended_by = payloads.simple_user(by, u)
        else:
            inst.suspended_at = None
            inst.suspended_by = None
        inst.updated_at = now_iso()
        acct = emu.store.ensure_account(inst.account)
        repos = [emu.store.data.repos[i] for i in inst.repository_ids if i in emu.store.data.repos]
        emu.store.save()
    action = "suspend" if suspend else "unsuspend"
    event = payloads.installation_event(
        action, payloads.installation(inst, app, acct, u), repos, payloads.simple_user(by, u)
    )
    emu._deliver_to_app(app, "installation", action, event, inst.id, None)


def _own_installation(emu: Emulator, who: Principal, installation_id: int) -> InstallationRecord:
    with emu.store.lock:
        inst = emu.store.data.installations.get(installation_id)
    if inst is None or inst.app_id != who.app_id:
        raise GitHubError(404, "Not Found", SUSPEND_DOCS)
    return inst


@router.put("/app/installations/{installation_id}/suspended")
def suspend(
    installation_id: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    set_suspended(emu, _own_installation(emu, who, installation_id), True, None, urls(request))
    return Response(status_code=204)


@router.delete("/app/installations/{installation_id}/suspended")
def unsuspend(
    installation_id: int,
    request: Request,
    emu: Emulator = Depends(emulator),
    who: Principal = Depends(require_app),
) -> Response:
    set_suspended(emu, _own_installation(emu, who, installation_id), False, None, urls(request))
    return Response(status_code=204)
