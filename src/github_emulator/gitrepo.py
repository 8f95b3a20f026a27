"""Object-level git work on the bare repositories behind emulated repos (pygit2, no checkouts)."""

from __future__ import annotations

import json
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pygit2

ZERO_SHA = "0" * 40

# The pre-receive hook enforces branch protection on git pushes the way GitHub's does
# (https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches).
# It reads the rules the emulator writes to PROTECTION_FILE, so it needs no access to the server.
PROTECTION_FILE = "ghemu-protection.json"

_PRE_RECEIVE = """#!{python}
# Written by github_emulator: enforces branch protection on pushes like GitHub's GH006 hook,
# with the policy of github_emulator.protection (the same one the REST API applies).
import json, os, subprocess, sys
sys.path.insert(0, {package_root!r})
from github_emulator.filesizes import check_push
from github_emulator.protection import Pusher, refusals
ZERO = "0" * 40
# git (not pygit2) so the pushed objects, still in the quarantine directory, are visible.
def is_ancestor(old, new):
    return subprocess.run(["git", "merge-base", "--is-ancestor", old, new]).returncode == 0
try:
    rules = json.load(open({rules!r}))
except FileNotFoundError:
    rules = {{}}
pusher = Pusher.from_env(os.environ.get("GHEMU_PUSHER"))
updates = [tuple(line.split()) for line in sys.stdin if line.strip()]
# GH001 first: a file over 100 MiB refuses the whole push (github_emulator.filesizes).
failed = not check_push(updates, sys.stderr.write)
for old, new, ref in updates:
    if not ref.startswith("refs/heads/"):
        continue
    rule = rules.get(ref[len("refs/heads/"):])
    if rule is None:
        continue
    forced = old != ZERO and new != ZERO and old != new and not is_ancestor(old, new)
    reasons = refusals(rule, deleting=new == ZERO, forced=forced, pusher=pusher)
    if reasons:
        failed = True
        sys.stderr.write("error: GH006: Protected branch update failed for %s.\\n" % ref)
        sys.stderr.write("error: %s\\n" % " ".join(reasons))
sys.exit(1 if failed else 0)
"""


def init_bare(path: Path, default_branch: str) -> pygit2.Repository:
    repo = pygit2.init_repository(str(path), bare=True, initial_head=default_branch)
    hook = path / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    package_root = str(Path(__file__).resolve().parent.parent)
    hook.write_text(
        _PRE_RECEIVE.format(
            python=sys.executable, rules=str(path / PROTECTION_FILE), package_root=package_root
        )
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    # http-backend refuses pushes unless receive-pack is enabled; we authenticate ourselves.
    repo.config["http.receivepack"] = True
    repo.config["http.uploadpack"] = True
    # refs/pull/* belong to GitHub: a push to them is refused with git's "deny updating a hidden
    # ref", which is GitHub's answer too (https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/reviewing-changes-in-pull-requests/checking-out-pull-requests-locally
    # fetches them; pushing them is not possible).
    repo.config["receive.hideRefs"] = "refs/pull"
    return repo


def write_protection_rules(path: Path, rules: dict[str, dict[str, object]]) -> None:
    (path / PROTECTION_FILE).write_text(json.dumps(rules))


def signature(name: str, email: str, when: float | None = None, offset: int = 0) -> pygit2.Signature:
    return pygit2.Signature(name, email, int(when if when is not None else time.time()), offset)


@dataclass(frozen=True, slots=True)
class TreeChange:
    """One path change for :func:`build_tree`: ``sha`` None with ``delete`` means remove."""

    path: str
    mode: int
    sha: str | None
    delete: bool = False


class MissingPathError(Exception):
    """A tree change deletes a path that does not exist in the base tree."""


def _insert(
    repo: pygit2.Repository, base: pygit2.Tree | None, parts: list[str], change: TreeChange
) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    name = parts[0]
    existing = base[name] if base is not None and name in base else None
    if len(parts) == 1:
        if change.delete:
            if existing is None:
                raise MissingPathError(change.path)
            builder.remove(name)
        else:
            assert change.sha is not None
            builder.insert(name, pygit2.Oid(hex=change.sha), change.mode)
    else:
        sub = existing if isinstance(existing, pygit2.Tree) else None
        if sub is None and change.delete:
            raise MissingPathError(change.path)
        new_sub = _insert(repo, sub, parts[1:], change)
        if new_sub is None:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_sub, pygit2.GIT_FILEMODE_TREE)
    if len(builder) == 0:
        return None
    return builder.write()


def build_tree(repo: pygit2.Repository, base: pygit2.Tree | None, changes: list[TreeChange]) -> str:
    """Apply ``changes`` on top of ``base`` and return the new tree's SHA (empty dirs vanish)."""
    tree = base
    oid: pygit2.Oid | None = base.id if base is not None else None
    for change in changes:
        parts = [p for p in change.path.split("/") if p]
        oid = _insert(repo, tree, parts, change)
        if oid is None:
            oid = repo.TreeBuilder().write()
        obj = repo.get(oid)
        assert isinstance(obj, pygit2.Tree)
        tree = obj
    if oid is None:
        oid = repo.TreeBuilder().write()
    return str(oid)


def commit_files(
    repo: pygit2.Repository,
    files: dict[str, str],
    message: str,
    parents: list[str],
    author: pygit2.Signature,
    base_tree: pygit2.Tree | None = None,
) -> str:
    changes = [
        TreeChange(path, pygit2.GIT_FILEMODE_BLOB, str(repo.create_blob(text.encode())))
        for path, text in files.items()
    ]
    tree = build_tree(repo, base_tree, changes)
    oid = repo.create_commit(
        None, author, author, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=p) for p in parents]
    )
    return str(oid)


def resolve_commit(repo: pygit2.Repository, ref_or_sha: str) -> pygit2.Commit | None:
    """Resolve a branch, tag, full ref or (abbreviated) SHA to a commit, as GitHub's ``{ref}`` does."""
    candidates = [ref_or_sha, f"refs/heads/{ref_or_sha}", f"refs/tags/{ref_or_sha}"]
    for name in candidates:
        if name.startswith("refs/") and name in repo.references:
            target = repo.references[name].peel(pygit2.Commit)
            return target if isinstance(target, pygit2.Commit) else None
    try:
        obj = repo.revparse_single(ref_or_sha)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    try:
        peeled = obj.peel(pygit2.Commit)
    except (pygit2.GitError, ValueError):
        return None
    return peeled if isinstance(peeled, pygit2.Commit) else None


def get_object(repo: pygit2.Repository, sha: str) -> pygit2.Object | None:
    if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha.lower()):
        return None
    try:
        return repo.get(sha)
    except (ValueError, KeyError):
        return None


def ref_target(repo: pygit2.Repository, name: str) -> str | None:
    if name not in repo.references:
        return None
    ref = repo.references[name]
    return str(ref.resolve().target)


def list_refs(repo: pygit2.Repository) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in repo.references:
        if name == "HEAD":
            continue
        target = ref_target(repo, name)
        if target is not None:
            out[name] = target
    return out


def has_no_refs(repo: pygit2.Repository) -> bool:
    """GitHub's "empty repository": no branch or tag yet (loose objects such as blobs don't count).

    libgit2's ``is_empty`` is not this: it is False once HEAD names an unborn branch other than
    its configured initial one (e.g. ``trunk``), and repositories here are born that way.
    """
    return not list_refs(repo)


def peel_to_commit(repo: pygit2.Repository, sha: str) -> str | None:
    """The commit an object names: itself, or what an annotated tag (chain) points at; else None."""
    obj = repo.get(sha)
    while isinstance(obj, pygit2.Tag):
        obj = repo.get(obj.target)
    return str(obj.id) if isinstance(obj, pygit2.Commit) else None


def is_ancestor(repo: pygit2.Repository, old: str, new: str) -> bool:
    """True when ``new`` contains ``old`` (a fast-forward from old to new); tags are peeled."""
    if old == new:
        return True
    old_commit, new_commit = peel_to_commit(repo, old), peel_to_commit(repo, new)
    if old_commit is None or new_commit is None:
        return False
    if old_commit == new_commit:
        return True
    return bool(repo.descendant_of(pygit2.Oid(hex=new_commit), pygit2.Oid(hex=old_commit)))


def commits_between(
    repo: pygit2.Repository, tip: str, hide: list[str], limit: int | None = None
) -> list[pygit2.Commit]:
    """Commits reachable from ``tip`` but not from ``hide``, oldest first (as GitHub lists them).

    Annotated tags are peeled to their commits; objects that are no commits are skipped.
    """
    tip_commit = peel_to_commit(repo, tip)
    if tip_commit is None:
        return []
    walker = repo.walk(pygit2.Oid(hex=tip_commit), pygit2.enums.SortMode.TOPOLOGICAL)
    for sha in hide:
        hidden = peel_to_commit(repo, sha) if sha and sha != ZERO_SHA else None
        if hidden is not None:
            walker.hide(pygit2.Oid(hex=hidden))
    commits = list(walker)
    commits.reverse()
    if limit is not None:
        commits = commits[:limit]
    return commits


def tree_diff(old: pygit2.Tree | None, new: pygit2.Tree) -> pygit2.Diff:
    """Diff from ``old`` (None: the empty tree) to ``new``."""
    if old is None:
        return new.diff_to_tree(swap=True)
    return old.diff_to_tree(new)


def walk_tree(
    repo: pygit2.Repository, tree: pygit2.Tree, prefix: str = ""
) -> list[tuple[str, pygit2.Object, int]]:
    """All entries of ``tree`` recursively as (path, object, filemode), parents before children."""
    out: list[tuple[str, pygit2.Object, int]] = []
    for entry in tree:
        path = f"{prefix}{entry.name}"
        obj = repo.get(entry.id)
        assert obj is not None
        out.append((path, obj, entry.filemode))
        if isinstance(obj, pygit2.Tree):
            out.extend(walk_tree(repo, obj, path + "/"))
    return out
