"""Users by login: `GET /users/{username}`, people and the `<slug>[bot]` accounts Apps act as.

An App's commits name its bot as committer; a client learns the bot's id (for its noreply email,
`<id>+<slug>[bot]@users.noreply.github.com`) from here, as on GitHub:
https://docs.github.com/en/rest/users/users#get-a-user
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from github_emulator import payloads
from github_emulator.core import Emulator, GitHubError
from github_emulator.deps import emulator, json_response, urls

router = APIRouter()


@router.get("/users/{username}")
def get_user(username: str, request: Request, emu: Emulator = Depends(emulator)) -> Response:
    user = emu.store.user(username)
    if user is None and username.lower().endswith("[bot]"):
        slug = username[: -len("[bot]")].lower()
        app = next((a for a in emu.store.data.apps.values() if a.slug.lower() == slug), None)
        if app is not None:
            user = payloads.bot_user(app, urls(request))
    if user is None:
        raise GitHubError(404, "Not Found", "https://docs.github.com/rest/users/users#get-a-user")
    return json_response(payloads.public_user(user, urls(request)))
