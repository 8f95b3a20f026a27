"""The events one push fires: ``push``, ``create`` and ``delete`` per ref, as GitHub sends them.

GitHub's rules (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push):

* ``commits`` are "all commits that are included in the compare between the before commit and the
  after commit", at most 2,048 ("The array includes a maximum of 2048 commits"; which 2,048 GitHub
  keeps is not documented: the emulator keeps the newest, so ``head_commit`` is always among them).
  For a new ref the compare is against everything the repository had before the push, so a
  commit already on another branch is not listed.
* Everything is computed from the refs as they were *before* the push: when several refs are
  pushed at once, each ref's commits are what that push brought, whatever the other refs of the
  same push now point at. ``distinct`` ("Whether this commit is distinct from any that have been
  pushed before") is false for a commit reachable from a ref before the push, or already listed
  as distinct for another ref of the same push.
* "Events will not be created if more than 5,000 branches are pushed at once. Events will not be
  created for tags when more than three tags are pushed at once." The ``create`` and ``delete``
  events say the same for tags ("This event will not occur when more than three tags are created
  at once", https://docs.github.com/en/webhooks/webhook-events-and-payloads#create and #delete).
  Pull requests still follow their branches.
* A commit's ``author`` and ``committer`` carry ``username`` when the email belongs to a GitHub
  account (the account's email, or its ``ID+login@users.noreply.github.com`` address).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pygit2

from github_emulator import gitrepo, payloads
from github_emulator.auth import Principal
from github_emulator.payloads import JSON, Urls
from github_emulator.store import RepoRecord, UserRecord

if TYPE_CHECKING:
    from github_emulator.core import Emulator

ZERO = gitrepo.ZERO_SHA
MAX_COMMITS = 2048
MAX_TAGS = 3
MAX_BRANCHES = 5000


def refs_before(after: Mapping[str, str], changes: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The repository's refs as they were before ``changes`` (ref -> (before, after)) applied."""
    refs = dict(after)
    for ref, (old, _) in changes.items():
        if old == ZERO:
            refs.pop(ref, None)
        else:
            refs[ref] = old
    return refs


def silenced_refs(changes: Mapping[str, tuple[str, str]]) -> set[str]:
    """Refs of this push GitHub sends no events for: all tags past three, all branches past 5,000."""
    tags = {r for r in changes if r.startswith("refs/tags/")}
    branches = {r for r in changes if r.startswith("refs/heads/")}
    silenced: set[str] = set()
    if len(tags) > MAX_TAGS:
        silenced |= tags
    if len(branches) > MAX_BRANCHES:
        silenced |= branches
    return silenced


def usernames(users: Mapping[str, UserRecord]) -> dict[str, str]:
    """email (lower-case) -> login, for every account the emulator knows."""
    out: dict[str, str] = {}
    for user in users.values():
        out[f"{user.id}+{user.login}@users.noreply.github.com".lower()] = user.login
        out[f"{user.login}@users.noreply.github.com".lower()] = user.login
        if user.email:
            out[user.email.lower()] = user.login
    return out


def _with_usernames(commit: JSON, logins: Mapping[str, str]) -> JSON:
    for role in ("author", "committer"):
        person = commit.get(role)
        if isinstance(person, dict) and isinstance(person.get("email"), str):
            login = logins.get(person["email"].lower())
            if login is not None:
                person["username"] = login
    return commit


def fire_ref_events(
    emu: Emulator, repo: RepoRecord, changes: Mapping[str, tuple[str, str]], actor: Principal, urls: Urls
) -> None:
    """push/create/delete events for every changed ref, then pull requests follow their branches."""
    git = emu.open_git(repo)
    before_refs = refs_before(gitrepo.list_refs(git), changes)
    silenced = silenced_refs(changes)
    actor_user = emu.actor_user(actor)
    sender = payloads.simple_user(actor_user, urls)
    with emu.store.lock:
        logins = usernames(emu.store.data.users)
    listed: set[str] = set()  # commits listed as distinct for an earlier ref of this push
    for ref in sorted(changes):
        before, after = changes[ref]
        if ref not in silenced:
            _fire_push(
                emu, git, repo, ref, before, after, before_refs, listed, logins, actor_user, sender, urls
            )
            _fire_create_or_delete(emu, repo, ref, before, after, sender, urls)
        if ref.startswith("refs/heads/"):
            from github_emulator import pulls

            pulls.on_branch_moved(emu, git, repo, ref[len("refs/heads/") :], before, after, actor, urls)


def _fire_push(
    emu: Emulator,
    git: pygit2.Repository,
    repo: RepoRecord,
    ref: str,
    before: str,
    after: str,
    before_refs: Mapping[str, str],
    listed: set[str],
    logins: Mapping[str, str],
    pusher: UserRecord,
    sender: JSON,
    urls: Urls,
) -> None:
    forced = before != ZERO and after != ZERO and not gitrepo.is_ancestor(git, before, after)
    commits: list[JSON] = []
    head: JSON | None = None
    if after != ZERO:
        others = [sha for name, sha in before_refs.items() if name != ref]
        pushed = gitrepo.commits_between(
            git, after, [before] if before != ZERO else list(before_refs.values())
        )
        # Commits no ref reached before the push: the only ones that can be distinct.
        unseen = {str(c.id) for c in gitrepo.commits_between(git, after, [*others, before])}
        distinct = {sha for sha in unseen if sha not in listed}
        for c in pushed[-MAX_COMMITS:]:
            item = payloads.push_commit(c, repo, urls, str(c.id) in distinct, _file_changes(git, c))
            commits.append(_with_usernames(item, logins))
        listed |= distinct
        head_sha = gitrepo.peel_to_commit(git, after)
        head_obj = git.get(head_sha) if head_sha else None
        if isinstance(head_obj, pygit2.Commit):
            item = payloads.push_commit(
                head_obj, repo, urls, str(head_obj.id) in distinct, _file_changes(git, head_obj)
            )
            head = _with_usernames(item, logins)
    web = f"{urls.web}/{repo.full_name}"
    if before != ZERO and after != ZERO:
        compare = f"{web}/compare/{before[:12]}...{after[:12]}"
    elif after != ZERO:
        compare = f"{web}/compare/{ref.split('/', 2)[-1]}"
    else:
        compare = f"{web}/commit/{before[:12]}"
    base_ref = None
    if before == ZERO and after != ZERO:
        for name, sha in sorted(gitrepo.list_refs(git).items()):
            if name != ref and sha == after and name.startswith("refs/heads/"):
                base_ref = name
                break
    owner = emu.account(repo.owner)

    def build(_: bool) -> JSON:
        return payloads.push_event(
            ref,
            before,
            after,
            forced,
            commits,
            head,
            payloads.webhook_repository(repo, owner, urls, push=True),
            pusher,
            sender,
            base_ref,
            compare,
        )

    emu.emit(repo, "push", None, build)


def _fire_create_or_delete(
    emu: Emulator, repo: RepoRecord, ref: str, before: str, after: str, sender: JSON, urls: Urls
) -> None:
    if not ref.startswith(("refs/heads/", "refs/tags/")) or ZERO not in (before, after):
        return
    kind = "branch" if ref.startswith("refs/heads/") else "tag"
    short = ref.split("/", 2)[-1]
    repo_json = payloads.webhook_repository(repo, emu.account(repo.owner), urls)
    if before == ZERO:
        emu.emit(
            repo,
            "create",
            None,
            lambda _: payloads.create_event(short, kind, repo_json, sender, repo.default_branch),
        )
    else:
        emu.emit(repo, "delete", None, lambda _: payloads.delete_event(short, kind, repo_json, sender))


def _file_changes(git: pygit2.Repository, c: pygit2.Commit) -> dict[str, list[str]]:
    """added/removed/modified paths of ``c`` against its first parent (push payload lists)."""
    parent_tree = c.parents[0].tree if c.parents else None
    diff = gitrepo.tree_diff(parent_tree, c.tree)
    out: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
    for delta in diff.deltas:
        if delta.status == pygit2.enums.DeltaStatus.ADDED:
            out["added"].append(delta.new_file.path)
        elif delta.status == pygit2.enums.DeltaStatus.DELETED:
            out["removed"].append(delta.old_file.path)
        else:
            out["modified"].append(delta.new_file.path)
    return out
