"""Pull requests: create, update, merge (merge/squash/rebase) and keeping them in step with pushes.

Rules follow https://docs.github.com/en/rest/pulls/pulls (405 when a PR cannot be merged,
409 when ``sha`` no longer matches the head).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pygit2

from github_emulator import gitrepo, payloads
from github_emulator.auth import Principal
from github_emulator.payloads import JSON, PullStats, Urls
from github_emulator.store import PullRecord, RepoRecord, UserRecord, now_iso

if TYPE_CHECKING:
    from github_emulator.core import Emulator

PULLS_DOCS = "https://docs.github.com/rest/pulls/pulls"
MERGE_DOCS = PULLS_DOCS + "#merge-a-pull-request"


def _err(status: int, message: str, doc: str = PULLS_DOCS, errors: list[JSON] | None = None) -> Exception:
    from github_emulator.core import GitHubError

    return GitHubError(status, message, doc, errors)


def stats(git: pygit2.Repository, pr: PullRecord) -> PullStats:
    base = gitrepo.resolve_commit(git, pr.base_sha)
    head = gitrepo.resolve_commit(git, pr.head_sha)
    if base is None or head is None:
        return PullStats(0, 0, 0, 0, None)
    mb = git.merge_base(base.id, head.id)
    commits = len(gitrepo.commits_between(git, pr.head_sha, [str(mb)] if mb else []))
    base_tree = git.get(mb).tree if mb else None  # type: ignore[union-attr]
    diff = gitrepo.tree_diff(base_tree, head.tree)
    additions = deletions = 0
    for patch in diff:
        if patch is None:
            continue
        _, add, dele = patch.line_stats
        additions += add
        deletions += dele
    mergeable = pr.mergeable if pr.state == "open" and _is_computed(pr) else None
    return PullStats(commits, additions, deletions, len(diff), mergeable)


# ---- mergeability, the test merge commit and refs/pull/N/* -----------------------------------
#
# GitHub computes mergeability in the background: "If the value is null, then GitHub has started
# a background job to compute the mergeability. After giving the job time to complete, resubmit
# the request." and "If mergeable is true, then merge_commit_sha will be the SHA of the test merge
# commit"; the job starts when a client asks for the pull request ("You need to explicitly request
# a pull request to trigger a test merge commit") (https://docs.github.com/rest/pulls/pulls#get-a-pull-request,
# https://docs.github.com/rest/guides/using-the-rest-api-to-interact-with-your-git-database#checking-mergeability-of-pull-requests).
# The emulator models the job deterministically: after a PR is opened or its head or base moves,
# every answer says null until a GET /pulls/{n}; that GET still answers null (the job has just
# started) and computes it; later answers carry the result. refs/pull/N/head follows the head
# branch and refs/pull/N/merge is the test merge commit while the PR is open and mergeable.


def _pair(pr: PullRecord) -> str:
    return f"{pr.base_sha}:{pr.head_sha}"


def _is_computed(pr: PullRecord) -> bool:
    return pr.mergeable_for == _pair(pr)


def set_pull_ref(emu: Emulator, repo: RepoRecord, name: str, sha: str | None) -> None:
    """Point (or with None remove) a ``refs/pull/...`` ref; no events, as on GitHub.

    Under the repository lock so a concurrent git push never sees it as part of its own update.
    """
    with emu.store.repo_lock(repo.id):
        git = emu.open_git(repo)
        if sha is None:
            if name in git.references:
                git.references.delete(name)
        else:
            git.references.create(name, pygit2.Oid(hex=sha), force=True)


def check_mergeability(emu: Emulator, repo: RepoRecord, pr: PullRecord) -> bool:
    """Run the mergeability job if it has not run for the PR's current base and head.

    Returns True when it ran now: the answer that started it still says ``mergeable: null``.
    """
    if pr.state != "open" or _is_computed(pr):
        return False
    git = emu.open_git(repo)
    base = gitrepo.resolve_commit(git, pr.base_sha)
    head = gitrepo.resolve_commit(git, pr.head_sha)
    if base is None or head is None:
        return False
    index = git.merge_commits(base.id, head.id)
    test_merge: str | None = None
    if not index.conflicts:
        tree = index.write_tree(git)
        committer = gitrepo.signature(*_committer())
        # GitHub's test merge commits read "Merge <head> into <base>".
        message = f"Merge {head.id} into {base.id}"
        test_merge = str(git.create_commit(None, committer, committer, message, tree, [base.id, head.id]))
    set_pull_ref(emu, repo, f"refs/pull/{pr.number}/merge", test_merge)
    with emu.store.lock:
        pr.mergeable = test_merge is not None
        pr.mergeable_for = _pair(pr)
        pr.merge_commit_sha = test_merge
        emu.store.save()
    return True


def pull_json(
    emu: Emulator, repo: RepoRecord, pr: PullRecord, urls: Urls, full: bool = True, just_started: bool = False
) -> JSON:
    """The PR as GitHub shows it; ``just_started``: the mergeability job began with this request."""
    owner = emu.account(repo.owner)
    author = emu.account(pr.user) if "[bot]" not in pr.user else _bot(emu, pr.user, urls)
    merged_by = None
    if pr.merged_by:
        merged_by = (
            emu.account(pr.merged_by) if "[bot]" not in pr.merged_by else _bot(emu, pr.merged_by, urls)
        )
    st = stats(emu.open_git(repo), pr) if full else None
    body = payloads.pull_request(pr, repo, owner, author, merged_by, st, urls)
    if pr.state == "open" and (just_started or not _is_computed(pr)):
        body["merge_commit_sha"] = None
        if full:
            body.update({"mergeable": None, "rebaseable": None, "mergeable_state": "unknown"})
    elif pr.state == "open" and pr.draft and full:
        # A draft's mergeable_state is "draft" (https://github.blog/2019-02-14-introducing-draft-pull-requests/).
        body["mergeable_state"] = "draft"
    return body


def _bot(emu: Emulator, login: str, urls: Urls) -> UserRecord:
    slug = login[: -len("[bot]")]
    for app in emu.store.data.apps.values():
        if app.slug == slug:
            return payloads.bot_user(app, urls)
    return emu.account(login)


def _fire(
    emu: Emulator,
    repo: RepoRecord,
    pr: PullRecord,
    action: str,
    actor: Principal,
    urls: Urls,
    extra: JSON | None = None,
) -> None:
    if action == "closed":
        # The test merge commit exists only while the PR is open (its removal on close is a
        # best guess at GitHub's housekeeping); refs/pull/N/head stays, as on GitHub.
        set_pull_ref(emu, repo, f"refs/pull/{pr.number}/merge", None)
    sender = payloads.simple_user(emu.actor_user(actor), urls)

    def build(_: bool) -> JSON:
        return payloads.pull_request_event(
            action,
            pull_json(emu, repo, pr, urls),
            payloads.webhook_repository(repo, emu.account(repo.owner), urls),
            sender,
            extra,
        )

    emu.emit(repo, "pull_request", action, build)


def create(emu: Emulator, repo: RepoRecord, body: JSON, actor: Principal, urls: Urls) -> PullRecord:
    title = body.get("title")
    head = body.get("head")
    base = body.get("base")
    missing = [f for f, v in (("head", head), ("base", base)) if not v]
    if missing or (not title and body.get("issue") is None):
        raise _err(
            422,
            "Validation Failed",
            PULLS_DOCS + "#create-a-pull-request",
            [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing or ["title"]],
        )
    assert isinstance(head, str) and isinstance(base, str)
    head_ref = head.split(":", 1)[1] if ":" in head else head
    git = emu.open_git(repo)
    head_sha = gitrepo.ref_target(git, f"refs/heads/{head_ref}")
    base_sha = gitrepo.ref_target(git, f"refs/heads/{base}")
    errors: list[JSON] = []
    if head_sha is None:
        errors.append({"resource": "PullRequest", "field": "head", "code": "invalid"})
    if base_sha is None:
        errors.append({"resource": "PullRequest", "field": "base", "code": "invalid"})
    if errors:
        raise _err(422, "Validation Failed", PULLS_DOCS + "#create-a-pull-request", errors)
    assert head_sha is not None and base_sha is not None
    for other in emu.pulls_for(repo):
        if other.state == "open" and other.head_ref == head_ref and other.base_ref == base:
            raise _err(
                422,
                "Validation Failed",
                PULLS_DOCS + "#create-a-pull-request",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {repo.owner}:{head_ref}.",
                    }
                ],
            )
    if gitrepo.is_ancestor(git, head_sha, base_sha):
        raise _err(
            422,
            "Validation Failed",
            PULLS_DOCS + "#create-a-pull-request",
            [
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {base} and {head_ref}",
                }
            ],
        )
    now = now_iso()
    with emu.store.lock:
        number = 1 + max((p.number for p in emu.pulls_for(repo)), default=0)
        pr = PullRecord(
            id=emu.store.new_id(),
            number=number,
            repo_id=repo.id,
            title=str(title),
            body=body.get("body"),
            user=emu.actor_user(actor).login,
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=base,
            base_sha=base_sha,
            draft=bool(body.get("draft", False)),
            maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
            created_at=now,
            updated_at=now,
        )
        emu.store.data.pulls[pr.id] = pr
        emu.store.save()
    set_pull_ref(emu, repo, f"refs/pull/{number}/head", head_sha)
    _fire(emu, repo, pr, "opened", actor, urls)
    return pr


def find(emu: Emulator, repo: RepoRecord, number: int) -> PullRecord:
    for pr in emu.pulls_for(repo):
        if pr.number == number:
            return pr
    from github_emulator.core import not_found

    raise not_found(PULLS_DOCS + "#get-a-pull-request")


def update(emu: Emulator, repo: RepoRecord, pr: PullRecord, body: JSON, actor: Principal, urls: Urls) -> None:
    changes: JSON = {}
    reopened = closed = False
    with emu.store.lock:
        if "title" in body and body["title"] != pr.title:
            changes["title"] = {"from": pr.title}
            pr.title = str(body["title"])
        if "body" in body and body["body"] != pr.body:
            changes["body"] = {"from": pr.body}
            pr.body = body["body"]
        if "base" in body and body["base"] != pr.base_ref:
            git = emu.open_git(repo)
            new_base = gitrepo.ref_target(git, f"refs/heads/{body['base']}")
            if new_base is None:
                raise _err(
                    422,
                    "Validation Failed",
                    PULLS_DOCS + "#update-a-pull-request",
                    [{"resource": "PullRequest", "field": "base", "code": "invalid"}],
                )
            changes["base"] = {"ref": {"from": pr.base_ref}, "sha": {"from": pr.base_sha}}
            pr.base_ref = str(body["base"])
            pr.base_sha = new_base
        if "maintainer_can_modify" in body:
            pr.maintainer_can_modify = bool(body["maintainer_can_modify"])
        state = body.get("state")
        if state not in (None, "open", "closed"):
            raise _err(
                422,
                "Validation Failed",
                PULLS_DOCS + "#update-a-pull-request",
                [{"resource": "PullRequest", "field": "state", "code": "invalid"}],
            )
        if state == "closed" and pr.state == "open":
            pr.state = "closed"
            pr.closed_at = now_iso()
            closed = True
        elif state == "open" and pr.state == "closed" and pr.merged_at is None:
            pr.state = "open"
            pr.closed_at = None
            pr.mergeable_for = None  # a reopened PR gets a new test merge commit
            reopened = True
        pr.updated_at = now_iso()
        emu.store.save()
    if changes:
        _fire(emu, repo, pr, "edited", actor, urls, {"changes": changes})
    if closed:
        _fire(emu, repo, pr, "closed", actor, urls)
    if reopened:
        _fire(emu, repo, pr, "reopened", actor, urls)


_NOT_ALLOWED = {
    "merge": ("allow_merge_commit", "Merge commits are not allowed on this repository."),
    "squash": ("allow_squash_merge", "Squash merges are not allowed on this repository."),
    "rebase": ("allow_rebase_merge", "Rebase merges are not allowed on this repository."),
}


def merge(emu: Emulator, repo: RepoRecord, pr: PullRecord, body: JSON, actor: Principal, urls: Urls) -> str:
    method = body.get("merge_method", "merge")
    if method not in _NOT_ALLOWED:
        raise _err(
            422,
            "Validation Failed",
            MERGE_DOCS,
            [{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}],
        )
    flag, message = _NOT_ALLOWED[method]
    if not getattr(repo, flag):
        raise _err(405, message, MERGE_DOCS)
    if pr.state != "open":
        raise _err(405, "Pull Request is not mergeable", MERGE_DOCS)
    if pr.draft:
        # GitHub's answer, as recorded in https://github.com/lindell/multi-gitter/issues/622.
        raise _err(405, "Pull Request is still a draft", MERGE_DOCS)
    if body.get("sha") and body["sha"] != pr.head_sha:
        raise _err(409, "Head branch was modified. Review and try the merge again.", MERGE_DOCS)
    rules = repo.protections.get(pr.base_ref)
    if rules is not None:
        # Protection still gates merges: required checks and reviews block them (405).
        contexts = list((rules.get("required_status_checks") or {}).get("contexts") or [])
        if contexts:
            raise _err(405, f'Required status check "{contexts[0]}" is expected.', MERGE_DOCS)
        reviews = rules.get("required_pull_request_reviews")
        if reviews is not None and int(reviews.get("required_approving_review_count", 1) or 0) > 0:
            count = int(reviews.get("required_approving_review_count", 1))
            raise _err(
                405,
                f"At least {count} approving review{'s are' if count > 1 else ' is'} required "
                "by reviewers with write access.",
                MERGE_DOCS,
            )
    actor_user = emu.actor_user(actor)
    with emu.store.repo_lock(repo.id):
        git = emu.open_git(repo)
        base_sha = gitrepo.ref_target(git, f"refs/heads/{pr.base_ref}")
        head_sha = gitrepo.ref_target(git, f"refs/heads/{pr.head_ref}") or pr.head_sha
        assert base_sha is not None
        base = git.get(base_sha)
        head = git.get(head_sha)
        assert isinstance(base, pygit2.Commit) and isinstance(head, pygit2.Commit)
        index = git.merge_commits(base.id, head.id)
        if index.conflicts:
            raise _err(405, "Pull Request is not mergeable", MERGE_DOCS)
        merged_tree = index.write_tree(git)
        author = gitrepo.signature(
            actor_user.login,
            actor_user.email or f"{actor_user.id}+{actor_user.login}@users.noreply.github.com",
        )
        committer = gitrepo.signature(*_committer())
        title = body.get("commit_title")
        msg = body.get("commit_message")
        if method == "merge":
            text = (
                (title or f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}")
                + "\n\n"
                + (msg if msg is not None else pr.title)
            )
            new = git.create_commit(None, author, committer, text, merged_tree, [base.id, head.id])
        elif method == "squash":
            text = (title or f"{pr.title} (#{pr.number})") + ("\n\n" + msg if msg else "")
            new = git.create_commit(None, author, committer, text, merged_tree, [base.id])
        else:
            mb = git.merge_base(base.id, head.id)
            tip = base
            for c in gitrepo.commits_between(git, head_sha, [str(mb)] if mb else []):
                ancestor = c.parents[0].tree if c.parents else git.get(git.TreeBuilder().write())
                idx = git.merge_trees(ancestor, tip.tree, c.tree)
                if idx.conflicts:
                    raise _err(405, "Pull Request is not mergeable", MERGE_DOCS)
                tree = idx.write_tree(git)
                oid = git.create_commit(None, c.author, committer, c.message, tree, [tip.id])
                tip_obj = git.get(oid)
                assert isinstance(tip_obj, pygit2.Commit)
                tip = tip_obj
            new = tip.id
        git.references.create(f"refs/heads/{pr.base_ref}", new, force=True)
        with emu.store.lock:
            pr.state = "closed"
            pr.merged_at = now_iso()
            pr.closed_at = pr.merged_at
            pr.updated_at = pr.merged_at
            pr.merge_commit_sha = str(new)
            pr.merged_by = actor_user.login
            pr.head_sha = head_sha
            emu.store.save()
    emu.on_refs_changed(repo, {f"refs/heads/{pr.base_ref}": (base_sha, str(new))}, actor, urls)
    _fire(emu, repo, pr, "closed", actor, urls)
    if repo.delete_branch_on_merge:
        # The head branch may already be gone.
        with contextlib.suppress(Exception):
            emu.update_ref(
                repo,
                f"refs/heads/{pr.head_ref}",
                None,
                force=True,
                actor=actor,
                urls=urls,
                skip_protection=True,
            )
    return str(new)


def _committer() -> tuple[str, str]:
    # Web-flow merges are committed by "GitHub <noreply@github.com>".
    return ("GitHub", "noreply@github.com")


def on_branch_moved(
    emu: Emulator,
    git: pygit2.Repository,
    repo: RepoRecord,
    branch: str,
    before: str,
    after: str,
    actor: Principal,
    urls: Urls,
) -> None:
    """A branch moved: PRs with it as head get ``synchronize`` (or close when it is deleted);
    PRs whose head is now contained in their base are marked merged, as GitHub does for a
    manual merge pushed to the base branch."""
    zero = gitrepo.ZERO_SHA
    for pr in emu.pulls_for(repo):
        if pr.state != "open":
            continue
        if pr.head_ref == branch:
            if after == zero:
                with emu.store.lock:
                    pr.state = "closed"
                    pr.closed_at = now_iso()
                    pr.updated_at = pr.closed_at
                    emu.store.save()
                _fire(emu, repo, pr, "closed", actor, urls)
                continue
            with emu.store.lock:
                pr.head_sha = after
                pr.updated_at = now_iso()
                emu.store.save()
            set_pull_ref(emu, repo, f"refs/pull/{pr.number}/head", after)
            _fire(emu, repo, pr, "synchronize", actor, urls, {"before": before, "after": after})
        elif pr.base_ref == branch and after == zero:
            # Deleting a PR's base branch closes it ("If you delete a base branch, the pull
            # requests based on it are closed", https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/proposing-changes-to-your-work-with-pull-requests/changing-the-base-branch-of-a-pull-request).
            with emu.store.lock:
                pr.state = "closed"
                pr.closed_at = now_iso()
                pr.updated_at = pr.closed_at
                emu.store.save()
            _fire(emu, repo, pr, "closed", actor, urls)
        elif pr.base_ref == branch and after != zero:
            with emu.store.lock:
                pr.base_sha = after
                emu.store.save()
            if gitrepo.is_ancestor(git, pr.head_sha, after):
                with emu.store.lock:
                    pr.state = "closed"
                    pr.merged_at = now_iso()
                    pr.closed_at = pr.merged_at
                    pr.updated_at = pr.merged_at
                    pr.merge_commit_sha = after
                    pr.merged_by = emu.actor_user(actor).login
                    emu.store.save()
                _fire(emu, repo, pr, "closed", actor, urls)
