"""The `GitRemote` port over git smart HTTP with pygit2: fetch GitHub's branch into a project's store and
push a commit built there, authenticated with the installation token as `x-access-token`.

GitHub documents that an App installation token authenticates git over HTTP with the user name
`x-access-token` (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation).
The token goes in an `Authorization: Basic` header on every request, so no request is spent on a 401
challenge; a 401 anyway (the token expired) drops it from the cache and retries once with a fresh one.

Requests: stateless smart HTTP is one `GET .../info/refs?service=...` (the ref advertisement) and one
`POST` to the service when there is something to send or receive
(https://git-scm.com/docs/http-protocol). They are counted for `counting_requests()`: the
advertisement once per transfer, the POST when libgit2 reports a pack arriving (fetch) or has passed
negotiation (push), and a request refused with 401; never as content-creating, since git pushes are not
REST requests. The contract suite holds these counts to the emulator's request log.

The project's store keeps one remote, `ghsync-github`, with `tagOpt = --no-tags`: GitHub's tags must
never be fetched into the store, whose `refs/tags/v<n>` name its versions.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygit2
from pygit2.enums import FetchPrune

from ghsync.domain.errors import (
    BranchProtected,
    GitHubConnectionError,
    GitHubError,
    GitHubForbidden,
    GitHubNotFound,
    GitHubServerError,
    GitHubUnauthorized,
    GitHubValidation,
    NotFastForward,
    RetryAt,
)
from ghsync.observability.logging import get_logger
from ghsync.ports.git_remote import TRACKING_PREFIX, RemoteRepo
from ghsync.ports.github import record_request

log = get_logger("ghsync.github.git")

REMOTE_NAME = "ghsync-github"
_PUSH_REF = "refs/ghsync/push/"
_ZERO = "0" * 40
# What GitHub's protected-branch hook says when it declines a push (GH006), and git's own word.
_PROTECTION_WORDS = ("gh006", "protected branch", "through a pull request")
# What receive-pack says when the ref moved under the push (its compare-and-swap on the old SHA failed).
_MOVED_WORDS = ("non-fast-forward", "fetch first", "failed to lock", "cannot lock", "stale info")
_HTTP_STATUS = re.compile(r"status code: (\d{3})")

TokenSource = Callable[[int], str]
TokenInvalidator = Callable[[int, str], None]


def git_base_url(api_url: str) -> str:
    """Where git is served for a REST base URL: github.com for api.github.com, the host itself for
    GitHub Enterprise Server (`https://HOST/api/v3`) and for the emulator."""
    url = api_url.rstrip("/")
    if url == "https://api.github.com":
        return "https://github.com"
    if url.endswith("/api/v3"):
        return url[: -len("/api/v3")]
    return url


class _Callbacks(pygit2.RemoteCallbacks):
    """Auth, request counting, and what the remote said about each ref."""

    def __init__(
        self, remote: RemoteRepo, token: TokenSource, invalidate: TokenInvalidator, expected: str | None
    ) -> None:
        super().__init__()
        self._remote = remote
        self._token_source = token
        self._invalidate = invalidate
        self._token = token(remote.installation_id)
        self._expected = expected
        self._challenged = False
        self.pack_moved = False
        self.rejected: dict[str, str] = {}
        self.remote_said: list[str] = []

    def custom_headers(self) -> list[str]:
        basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
        return [f"Authorization: Basic {basic}"]

    def credentials(self, url: str, username_from_url: str | None, allowed_types: object) -> pygit2.UserPass:
        # A 401 despite the header: the token expired or was revoked. One fresh token, then give up.
        record_request("GET")  # the refused request was sent
        if self._challenged:
            raise GitHubUnauthorized(f"git refused the installation token for {self._remote.full_name}")
        self._challenged = True
        self._invalidate(self._remote.installation_id, self._token)
        self._token = self._token_source(self._remote.installation_id)
        return pygit2.UserPass("x-access-token", self._token)

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if not self.pack_moved:
            self.pack_moved = True
            record_request("GET")  # the upload-pack POST whose answer is this pack

    def push_negotiation(self, updates: list[pygit2.remotes.PushUpdate]) -> None:
        for update in updates:
            current = str(update.src)
            if current != (self._expected or _ZERO):
                # GitHub moved since we read it: re-read and decide again, like the 422.
                raise NotFastForward(
                    f"{update.dst_refname} is at {current}, not at {self._expected or 'nothing'}",
                    status=422,
                )
        # Past negotiation libgit2 sends the receive-pack POST, even when GitHub has every object.
        self.pack_moved = True

    def push_transfer_progress(self, objects_pushed: int, total_objects: int, bytes_pushed: int) -> None:
        self.pack_moved = True

    def sideband_progress(self, string: str) -> None:
        self.remote_said.append(string)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.rejected[refname] = message


class SmartHttpGitRemote:
    """Fetch and push over git smart HTTP; `local_git_dir(project_id)` is the project's repository."""

    def __init__(
        self,
        base_url: str,
        local_git_dir: Callable[[str], Path],
        token: TokenSource,
        invalidate: TokenInvalidator,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("the git base URL must be http:// or https://")
        self._base = base_url.rstrip("/")
        self._local = local_git_dir
        self._token = token
        self._invalidate = invalidate
        self._lock = threading.Lock()  # the remote's config entry is written by one thread at a time

    def url(self, remote: RemoteRepo) -> str:
        return f"{self._base}/{remote.owner}/{remote.name}.git"

    def _remote(self, repo: pygit2.Repository, remote: RemoteRepo) -> pygit2.Remote:
        url = self.url(remote)
        with self._lock:
            if REMOTE_NAME not in repo.remotes.names():
                repo.remotes.create(REMOTE_NAME, url, f"+refs/heads/*:{TRACKING_PREFIX}*")
            elif repo.remotes[REMOTE_NAME].url != url:
                repo.remotes.set_url(REMOTE_NAME, url)  # the repository was renamed or transferred
            repo.config[f"remote.{REMOTE_NAME}.tagOpt"] = "--no-tags"
        return repo.remotes[REMOTE_NAME]

    def fetch(self, project_id: str, remote: RemoteRepo, branch: str) -> str | None:
        repo = pygit2.Repository(str(self._local(project_id)))
        callbacks = _Callbacks(remote, self._token, self._invalidate, None)
        tracking = TRACKING_PREFIX + branch
        record_request("GET")  # the ref advertisement
        try:
            # Forced locally only: the tracking ref follows GitHub, even after a force-push there.
            # PRUNE drops it when the branch is gone, so its absence afterwards means "no branch".
            # Full depth on purpose: a shallow fetch (depth 1) costs libgit2 one more POST (3 requests,
            # 7 for the sync: over the transport's goal of 6), while the full history is fetched once
            # per project (after an import over REST) and later fetches are thin.
            self._remote(repo, remote).fetch(
                [f"+refs/heads/{branch}:{tracking}"], callbacks=callbacks, prune=FetchPrune.PRUNE
            )
        except GitHubError:
            raise
        except (pygit2.GitError, OSError) as exc:
            raise _translate(exc, remote, "fetch") from None
        if tracking not in repo.references:
            return None
        return str(repo.references[tracking].target)

    def push(
        self, project_id: str, remote: RemoteRepo, branch: str, sha: str, *, expected: str | None
    ) -> None:
        repo = pygit2.Repository(str(self._local(project_id)))
        commit = repo.get(sha)
        if not isinstance(commit, pygit2.Commit):
            raise ValueError(f"{sha} is not a commit of project {project_id}'s store")
        if (
            expected is not None
            and expected != sha
            and not repo.descendant_of(commit.id, pygit2.Oid(hex=expected))
        ):
            raise NotFastForward(f"{sha} does not descend from {expected}; a push would rewrite history")
        # libgit2 pushes refs, not bare SHAs: a short-lived local ref names the commit.
        source = f"{_PUSH_REF}{branch}"
        repo.references.create(source, commit.id, force=True)
        callbacks = _Callbacks(remote, self._token, self._invalidate, expected)
        record_request("GET")  # the ref advertisement
        try:
            # No "+": never a forced update. The negotiation callback checks `expected`, libgit2 checks
            # the fast-forward, and receive-pack's compare-and-swap on the old SHA covers the race.
            self._remote(repo, remote).push([f"{source}:refs/heads/{branch}"], callbacks=callbacks)
        except GitHubError:
            raise
        except (pygit2.GitError, OSError) as exc:
            said = " ".join(callbacks.remote_said)
            if _protected(f"{exc} {said}"):
                raise BranchProtected(f"GitHub refused the push to {branch}: {said.strip() or exc}") from None
            raise _translate(exc, remote, "push") from None
        finally:
            if callbacks.pack_moved or callbacks.rejected:
                record_request("GET")  # the receive-pack POST (not a REST content-creating request)
            repo.references.delete(source)
        if callbacks.rejected:
            said = " ".join([*callbacks.rejected.values(), *callbacks.remote_said]).strip()
            refused = f"GitHub refused the push to {branch}: {said}"
            if _protected(said):
                raise BranchProtected(refused, status=422)
            if any(word in said.lower() for word in _MOVED_WORDS):
                raise NotFastForward(refused, status=422)
            # Anything else (a file GitHub refuses, a hook): reading again would not help.
            raise GitHubValidation(refused, status=422)
        # The store now knows where GitHub's branch is, as a fetch would have told it.
        repo.references.create(TRACKING_PREFIX + branch, commit.id, force=True)
        log.info("git.push", repository=remote.full_name, branch=branch, sha=sha, before=expected)


def _protected(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _PROTECTION_WORDS)


def _translate(exc: Exception, remote: RemoteRepo, what: str) -> GitHubError:
    """A libgit2 failure as the GitHub error the engine handles (libgit2 reports the HTTP status only in
    its message: "unexpected http status code: 502")."""
    text = str(exc)
    lowered = text.lower()
    where = f"git {what} of {remote.full_name}: {text}"
    if "non-fastforward" in lowered or "not present locally" in lowered or "fast-forward" in lowered:
        return NotFastForward(where, status=422)
    found = _HTTP_STATUS.search(lowered)
    status = int(found.group(1)) if found else None
    if status == 404:
        return GitHubNotFound(f"{where} (the repository is missing or hidden from the App)", status=404)
    if status == 401:
        return GitHubUnauthorized(where, status=401)
    if status == 429:
        # No Retry-After reaches us through libgit2: GitHub asks for at least a minute then
        # (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
        at = datetime.now(UTC) + timedelta(seconds=60)
        return RetryAt(at, where, kind="secondary", status=429)
    if status == 403:
        return GitHubForbidden(where, status=403)
    if status is not None and status >= 500:
        return GitHubServerError(where, status=status)
    return GitHubConnectionError(where)


__all__ = ["REMOTE_NAME", "SmartHttpGitRemote", "git_base_url"]
