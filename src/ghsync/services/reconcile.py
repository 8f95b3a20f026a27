"""The reconcile use case: load a snapshot of both sides, `decide()`, execute the one action, record it.

`reconcile(project_id)` is what the jobs runner calls for every request (webhook, poll, API trigger,
retry). It is idempotent and level-triggered: it reads where both sides stand now, so running it twice,
or again after a crash at any point, reaches the same end state:

- Every GitHub write is a compare-and-swap (`update_ref` with `force: false`); when GitHub moved between
  our read and our write (`NotFastForward`), the snapshot is read again and decided again.
- Objects are content-addressed, so a repeated blob, tree or commit creation is harmless; the ref move
  is the one step that publishes, and a crash after it is healed by the next reconcile, which finds
  identical trees and records the pair.
- The local branch moves by compare-and-swap too (`commit_tree(expected_head=...)`).
- The outcome (operation row, pair, the plan's SHA columns, PR, conflict, audit, served requests) is one
  unit of work.

Outbound goes through the Git Data API: only what changed since GitHub's tree travels, text inline in
the tree request, binary blobs uploaded only when GitHub lacks them, then one commit and one ref update.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any

from ghsync.domain.decide import (
    Action,
    ActionKind,
    decide,
    held_for_confirmation,
    hold_after_force_push,
    superseded_pull_request,
    uses_pull_request,
)
from ghsync.domain.errors import (
    BranchProtected,
    ConcurrentUpdate,
    Conflict,
    GhsyncError,
    GitHubNotFound,
    GitHubValidation,
    InvalidInput,
    NotFastForward,
    NotFound,
    RetryLater,
)
from ghsync.domain.github import Branch, PullRequest, Repository
from ghsync.domain.link import (
    Head,
    Link,
    OpenConflict,
    OpenPullRequest,
    Project,
    SyncPair,
    SyncSnapshot,
    Tracking,
)
from ghsync.domain.models import Author, FileMode, FileWrite, VersionInfo
from ghsync.domain.operations import AuditEntry, ConflictRecord, SyncOperation
from ghsync.domain.outbound import (
    BlobFacts,
    ChangeShape,
    OutboundPlan,
    PlannedWrite,
    Transport,
    TransportThresholds,
    WriteKind,
    blob_facts,
    choose_transport,
    chunk_writes,
    find_blockers,
    inbound_by_git,
    outbound_message,
    plan_writes,
    pull_request_text,
    size_warnings,
)
from ghsync.domain.plan import Guard, PlannedChange, SyncPlan, needs_confirmation, tree_changes
from ghsync.domain.sync import ConflictStrategy, pr_branch_name
from ghsync.domain.trees import GitIdentity, TreeEdit, TreeEntry
from ghsync.observability.logging import get_logger
from ghsync.ports.git_remote import GitRemote, RemoteRepo
from ghsync.ports.github import GitHubApp, GitHubRepo, RequestCount, TreeWrite, counting_requests
from ghsync.ports.store import VersionStore
from ghsync.ports.uow import ReconcileNotifier, UnitOfWork, UnitOfWorkFactory
from ghsync.services.git_outbound import Parent, local_plan, push_version, transport_metadata
from ghsync.services.notifications import notify_outcome
from ghsync.services.projects import parse_project_id

log = get_logger(__name__)

GITHUB_COMMIT_TRAILER = "Ghsync-GitHub-Commit"
SYSTEM_AUTHOR = Author("ghsync", "ghsync@localhost")
MIB = 1024 * 1024


@dataclass(frozen=True)
class EngineSettings:
    """The limits the engine works within (from the GITHUB_SYNC_* settings)."""

    max_file_size: int = 100 * MIB
    warn_file_size: int = 50 * MIB
    tree_entry_limit: int = 7000  # GITHUB_SYNC_TREE_SIZE_LIMIT: entries per tree request
    tree_size_bytes: int = 7 * MIB  # GITHUB_SYNC_TREE_SIZE_MB: inline bytes per tree request
    inline_limit: int = MIB  # text files up to this size travel inline in the tree request
    max_decisions: int = 3  # how often GitHub may move under one reconcile before it is retried later
    retry_after: float = 5.0  # seconds until that retry
    # GHSYNC_GIT_TRANSPORT_*: from when on a change goes by git
    git_transport: TransportThresholds = field(default_factory=TransportThresholds)
    guard: Guard = field(default_factory=Guard)  # GHSYNC_SYNC_GUARD_*: when a sweeping change is held


@dataclass
class _Loaded:
    """What one reconcile read, besides the snapshot itself."""

    project: Project
    link: Link
    repo: GitHubRepo
    repository: Repository
    snapshot: SyncSnapshot
    pending: list[str]
    local_version: VersionInfo | None
    facts: dict[str, BlobFacts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    git_fetched: dict[str, str | None] = field(default_factory=dict)  # branches fetched over git
    confirmed: tuple[str | None, str | None] | None = None  # heads a person confirmed a held plan for
    closed_pr: PullRequest | None = None  # the project's PR, found closed (merged or not) on GitHub
    inbound_transport: str = "rest"  # how GitHub's tree came in (rest | git)
    merged_pair: SyncPair | None = None  # the pair a merged PR proves (its head is one of our trees)
    force_push: dict[str, Any] | None = None  # GitHub's history was rewritten: what was seen, what was kept
    # Trees flattened in this reconcile, by SHA: a SHA names its content, so one flattening (10,000
    # entries for a big import) serves the checks, the guard and the logged plan alike. Never mutated.
    flats: dict[str, dict[str, TreeEntry]] = field(default_factory=dict)


@dataclass
class _Outcome:
    """What an executed action leaves to record."""

    status: str = "success"
    operation_type: str | None = None  # when what happened differs from the action decided
    direction: str = "none"
    pair: SyncPair | None = None
    tracking: Tracking | None = None
    pull_request: OpenPullRequest | EllipsisType | None = ...  # ... = unchanged
    conflict: ConflictRecord | None = None
    resolve_conflict: bool = False
    github_commit: str | None = None
    github_message: str | None = None
    github_author: Author | None = None
    version: VersionInfo | None = None
    files_changed: int = 0
    conflict_files: int = 0
    insertions: int = 0
    deletions: int = 0
    error_code: str | None = None
    error_message: str | None = None
    audit: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Refused(Conflict):
    """A person's command that does not fit the state any more (stale heads, nothing to confirm): a 409
    that changes nothing and is not recorded as a failed sync."""

    code = "refused"


@dataclass(frozen=True)
class ResetResult:
    operation_id: str
    kept_ref: str | None  # what the side given up was kept as (pass it to `reset(restore=...)` to undo)


def _heads(loaded: _Loaded) -> tuple[str | None, str | None]:
    return loaded.snapshot.local.commit_sha, loaded.snapshot.github.commit_sha


_OUTBOUND_KINDS = (ActionKind.PUSH_DIRECT, ActionKind.PULL_REQUEST, ActionKind.FIRST_COMMIT)
_INBOUND_KINDS = (ActionKind.PULL_INBOUND, ActionKind.IMPORT)


class _TreesOf:
    """The trees of a project's versions, read newest first and only as far as a lookup needs (`in`):
    a long history is walked whole only for a tree that is none of them."""

    def __init__(self, versions: Iterator[VersionInfo]) -> None:
        self._versions = versions
        self._read: set[str] = set()

    def __contains__(self, tree_sha: object) -> bool:
        if tree_sha in self._read:
            return True
        for version in self._versions:
            self._read.add(version.tree_sha)
            if version.tree_sha == tree_sha:
                return True
        return False


def _transport_of(action: Action) -> str | None:
    kind = ActionKind(action.reason) if action.kind is ActionKind.HELD else action.kind
    if kind in _OUTBOUND_KINDS:
        return "git_data_api"
    if kind in _INBOUND_KINDS or kind is ActionKind.CONFLICT:
        return "rest"
    return None


class ReconcileService:
    """`reconcile(project_id)`: the one sync job. Without a GitHub App it records a no-op."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: VersionStore | None = None,
        github: GitHubApp | None = None,
        settings: EngineSettings | None = None,
        git: GitRemote | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._store = store
        self._github = github
        self._settings = settings or EngineSettings()
        self._git = git  # the git smart-HTTP transport; None: the Git Data API only
        self._now = clock
        self._identity: Author | None = None  # the App's bot account, read once

    # --- the job -------------------------------------------------------------------------------------

    def reconcile(self, project_id: str) -> str | None:
        """Bring the project and its repository in step; returns the operation's id (None: no project).

        An unknown (e.g. deleted) project is not an error: raising would only make the runner retry a
        job that can never succeed. A rate limit raises `RetryLater` (the runner reschedules the job);
        other failures are recorded as a failed operation and raised, so the runner retries with backoff.
        """
        try:
            key = parse_project_id(project_id)
        except GhsyncError:
            log.warning("reconcile_ignored", project_id=project_id, why="not a project id")
            return None
        return self._run(key, self._decide)

    def _run(
        self,
        key: str,
        choose: Callable[[_Loaded], Action],
        execute: Callable[[_Loaded, Action], _Outcome] | None = None,
    ) -> str | None:
        """Load, choose, execute, record; read and choose again when a compare-and-swap lost a race."""
        started = self._now()
        with counting_requests() as count:
            for attempt in range(self._settings.max_decisions):
                try:
                    loaded = self._load(key)
                    if loaded is None or isinstance(loaded, str):
                        if execute is not None:
                            raise Conflict(f"project {key} is not linked", code="not_linked")
                        return self._record_idle(key, started, loaded)
                    action = choose(loaded)
                    outcome = (execute or self._execute)(loaded, action)
                    self._after_pull_request_closed(loaded, outcome)
                except (NotFastForward, ConcurrentUpdate) as exc:
                    # One side moved between our read and our write: read and decide again.
                    log.info("sync_raced", project_id=key, attempt=attempt, error=str(exc))
                    continue
                except (RetryLater, Refused):
                    raise
                except GhsyncError as exc:
                    self._record_failure(key, started, exc, count, attempt)
                    raise
                return self._record(loaded, action, outcome, started, count, attempt)
        raise RetryLater(
            self._now() + timedelta(seconds=self._settings.retry_after),
            f"the project or GitHub kept moving during {self._settings.max_decisions} attempts",
        )

    def _decide(self, loaded: _Loaded) -> Action:
        """`decide()`, then the blast-radius guard on what the action would delete or overwrite."""
        action = decide(loaded.snapshot)
        if loaded.confirmed == _heads(loaded):
            return action  # a person confirmed exactly this plan
        action = hold_after_force_push(
            action,
            force_pushed=loaded.force_push is not None,
            hold_force_pushes=loaded.link.hold_force_pushes,
        )
        if action.kind is ActionKind.HELD:  # `decide` itself never holds
            return action
        held = self._held_plan(loaded, action)
        if held is not None:
            return held
        return action

    # --- the API's questions and commands ----------------------------------------------------------

    def plan(self, project_id: str) -> SyncPlan:
        """What the next reconcile would do, without doing it (reads GitHub, writes nothing)."""
        key = parse_project_id(project_id)
        loaded = self._load(key, planning=True)
        if loaded is None:
            raise NotFound(f"project {key} not found")
        if isinstance(loaded, str):
            raise Refused(f"project {key} cannot sync: {loaded}", code=loaded)
        action = self._decide(loaded)
        snapshot = loaded.snapshot
        changes = self._planned_changes(loaded, action)
        transport, expected = _transport_of(action), self._expected_requests(loaded, action, changes)
        kind = ActionKind(action.reason) if action.kind is ActionKind.HELD else action.kind
        if kind is ActionKind.FIRST_COMMIT or (
            kind in _OUTBOUND_KINDS
            and loaded.local_version is not None
            and snapshot.github.tree_sha is not None
            and self._transport(loaded, snapshot.github.tree_sha, loaded.local_version)[0] is Transport.GIT
        ):
            # By git: the commit is built here and pushed; the fetch of GitHub's head only when the store
            # lacks it (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
            head = snapshot.github.commit_sha
            fetch = head is not None and not self._store_has(loaded, head)
            transport, expected = "git", {"total": 4 + (2 if fetch else 0), "content_creating": 0}
        return SyncPlan(
            action=action.kind.value,
            reason=action.reason,
            local_head=snapshot.local.commit_sha,
            github_head=snapshot.github.commit_sha,
            base_local=snapshot.base.local_commit_sha if snapshot.base else None,
            base_github=snapshot.base.github_commit_sha if snapshot.base else None,
            changes=changes,
            transport=transport,
            expected_requests=expected,
            held=action.kind is ActionKind.HELD,
            blockers=tuple(b.message for b in action.blockers),
        )

    def confirm(self, project_id: str, *, local_head: str | None, github_head: str | None) -> str:
        """Apply the held plan for exactly these heads; `Refused` (409) if either side moved since."""
        key = parse_project_id(project_id)

        def choose(loaded: _Loaded) -> Action:
            if _heads(loaded) != (local_head, github_head):
                raise Refused(
                    "the project or GitHub moved since the plan was held; read the plan again",
                    code="plan_moved",
                )
            if self._latest_held(loaded) != (local_head, github_head):
                raise Refused("no plan is held for these heads", code="nothing_held")
            loaded.confirmed = (local_head, github_head)
            return decide(loaded.snapshot)

        operation_id = self._run(key, choose, self._execute)
        assert operation_id is not None
        return operation_id

    def resolve_conflict(
        self,
        project_id: str,
        *,
        local_head: str | None,
        github_head: str | None,
        strategy: ConflictStrategy | None = None,
        files: Sequence[FileWrite] = (),
        deletes: Sequence[str] = (),
    ) -> str:
        """Settle the open conflict by a strategy, or with the files a person merged (the conflict UI).

        Refused (409) when there is no open conflict, or when either side moved since it was read
        (`local_head` and `github_head` are the heads the person saw)."""
        key = parse_project_id(project_id)
        if (strategy is None) == (not files and not deletes):
            raise InvalidInput("give either a strategy or the merged files", code="invalid_resolution")

        def choose(loaded: _Loaded) -> Action:
            conflict = loaded.snapshot.open_conflict
            if conflict is None:
                raise Refused("the project has no open conflict", code="no_open_conflict")
            if _heads(loaded) != (local_head, github_head) or _heads(loaded) != (
                conflict.local_commit_sha,
                conflict.github_commit_sha,
            ):
                raise Refused(
                    "the conflict moved on (new commits on either side since it was read); read it again",
                    code="conflict_moved",
                )
            if strategy is not None:
                loaded.link = replace(loaded.link, strategy=strategy)
                loaded.snapshot = replace(loaded.snapshot, link=loaded.link)
            return Action(ActionKind.RESOLVE, strategy.value if strategy else "merged_files")

        def execute(loaded: _Loaded, action: Action) -> _Outcome:
            if strategy is not None:
                return self._conflict(loaded, action)
            return self._apply_user_merge(loaded, files, deletes)

        operation_id = self._run(key, choose, execute)
        assert operation_id is not None
        return operation_id

    def reset(self, project_id: str, *, adopt: str | None = None, restore: str | None = None) -> ResetResult:
        """The way out of any stuck state: adopt GitHub's or the local side, or restore a state an earlier
        reset kept. The side given up is kept first (a backup ref in the local store), so a later
        `reset(restore=<ref>)` brings it back."""
        key = parse_project_id(project_id)
        if (adopt is None) == (restore is None) or adopt not in (None, "github", "local"):
            raise InvalidInput('give "adopt": "github" or "local", or "restore": <ref>', code="invalid_reset")
        kept: list[str] = []

        def choose(loaded: _Loaded) -> Action:
            return Action(ActionKind.RESET, adopt or "restore")

        def execute(loaded: _Loaded, action: Action) -> _Outcome:
            outcome = self._reset(loaded, adopt, restore, kept)
            outcome.resolve_conflict = loaded.snapshot.open_conflict is not None
            outcome.metadata["kept"] = list(kept)
            outcome.audit = f"github.reset_{action.reason}"
            return outcome

        operation_id = self._run(key, choose, execute)
        assert operation_id is not None
        return ResetResult(operation_id=operation_id, kept_ref=kept[-1] if kept else None)

    # --- load ----------------------------------------------------------------------------------------

    def _load(self, key: str, *, planning: bool = False) -> _Loaded | str | None:
        """Both sides as they stand, read; `planning` (a dry run) writes nothing, not even a backup ref."""
        with self._uow() as uow:
            project = uow.projects.get(key)
            if project is None:
                return None
            if project.link is None:
                return "not_linked"
            if self._github is None or self._store is None:
                return "github_not_configured"
            link = project.link
            base = uow.pairs.latest(key, link.repository_id)
            conflict = uow.conflicts.open_for(key)
            pending = [r.id for r in uow.requests.pending(key)]
        store, github = self._store, self._github
        local_sha = store.head(key)
        local_version = store.get_version(key, local_sha) if local_sha else None
        local = Head(local_sha, local_version.tree_sha if local_version else None)

        repo = github.repo(link.installation_id, link.owner, link.repo)
        # The default branch is read on every reconcile, never assumed, and a rename is followed.
        repository = repo.get_repository()
        link = replace(
            link, owner=repository.owner, repo=repository.name, default_branch=repository.default_branch
        )
        repo = github.repo(link.installation_id, link.owner, link.repo)
        branch = repo.get_branch(link.default_branch)
        remote = self._head_of(repo, branch, base)

        open_pr, pr_head, closed_pr = None, None, None
        in_pr_mode = uses_pull_request(link.mode, link.protected or bool(branch and branch.protected))
        if in_pr_mode or project.pull_request is not None:
            pr_branch = repo.get_branch(pr_branch_name(key))
            pr_head = self._head_of(repo, pr_branch, None) if pr_branch else None
            if project.pull_request is not None:
                pull = repo.get_pull(project.pull_request.number)
                open_pr, closed_pr = (pull, None) if pull.state == "open" else (None, pull)
            else:
                open_pr = repo.find_open_pull(pr_branch_name(key), link.default_branch)
        merged_pair, rejected_tree = None, None
        if closed_pr is not None:
            closed_tree = (
                pr_head.tree_sha
                if pr_head is not None and pr_head.commit_sha == closed_pr.head_sha and pr_head.tree_sha
                else repo.get_commit(closed_pr.head_sha).tree_sha
            )
            if closed_pr.merged:
                # Our PR was merged: its head holds one of our versions' trees, so the two are a pair,
                # and GitHub's new head (the merge) is then simply an inbound change.
                merged = next((v for v in store.iter_versions(key) if v.tree_sha == closed_tree), None)
                if merged is not None:
                    merged_pair = SyncPair(
                        merged.id, merged.commit_sha, closed_pr.head_sha, closed_tree, link.repository_id
                    )
                    base = merged_pair
            else:
                rejected_tree = closed_tree  # closed without merging: outbound changes rejected
        pr_edited_base, pr_contains_github = None, False
        if open_pr is not None and pr_head is not None and pr_head.commit_sha and pr_head.tree_sha:
            pr_edited_base = self._edited_pr_base(repo, key, pr_head.commit_sha, pr_head.tree_sha)
            github_moved = remote.commit_sha is not None and (
                base is None or remote.commit_sha != base.github_commit_sha
            )
            if github_moved and pr_head.tree_sha == local.tree_sha and remote.commit_sha:
                # Did the PR branch already merge GitHub's current head (a conflict settled onto it)?
                try:
                    status = repo.compare(remote.commit_sha, pr_head.commit_sha).status
                except GitHubNotFound:  # unrelated histories (GitHub's 404 "No common ancestor")
                    status = "diverged"
                pr_contains_github = status in ("ahead", "identical")

        loaded = _Loaded(
            project=project,
            link=link,
            repo=repo,
            repository=repository,
            snapshot=SyncSnapshot(
                link=link,
                base=base,
                local=local,
                github=remote,
                github_protected=bool(branch and branch.protected),
                open_pr=open_pr,
                pr_head=pr_head,
                rejected_tree=rejected_tree,
                pr_edited_base=pr_edited_base,
                pr_contains_github=pr_contains_github,
                open_conflict=(
                    OpenConflict(
                        conflict.id or "",
                        conflict.local_commit_sha,
                        conflict.github_commit_sha,
                        conflict.paths,
                        conflict.strategy,
                    )
                    if conflict
                    else None
                ),
            ),
            pending=pending,
            local_version=local_version,
            closed_pr=closed_pr,
            merged_pair=merged_pair,
        )
        # A force-push on the default branch: the head we last saw there is no longer an ancestor of
        # GitHub's head (compare says `diverged` or `behind`, or the commit is gone: 404). The local side
        # is kept under refs/ghsync/backup/force-push/... before anything is decided, then the decision
        # is the usual one (GitHub's tree against the base pair's): nothing is lost either way.
        # https://docs.github.com/en/rest/commits/commits#compare-two-commits
        seen = project.tracking.last_remote_main_sha
        if seen is not None and remote.commit_sha is not None and seen != remote.commit_sha:
            try:
                relation = repo.compare(seen, remote.commit_sha).status
            except GitHubNotFound:
                relation = "missing"
            if relation in ("diverged", "behind", "missing"):
                keep = local.commit_sha is not None and not planning
                kept = self._keep_local_side(loaded, "force-push") if keep else None
                loaded.force_push = {
                    "previous_github_head": seen,
                    "github_head": remote.commit_sha,
                    "relation": relation,
                    "kept_local_ref": kept,
                }
                log.warning("reconcile.force_push_detected", project_id=key, **loaded.force_push)
        self._check_outbound(loaded)
        return loaded

    def _edited_pr_base(self, repo: GitHubRepo, key: str, head: str, head_tree: str) -> str | None:
        """When the PR branch's head is not one of our trees, a person committed on it: the tree of ours
        their commits sit on (walking first parents back, a few commits at most), else None."""
        store = self._store
        assert store is not None
        ours = _TreesOf(store.iter_versions(key))  # the PR branch holds a recent one: a few commits read
        if head_tree in ours:
            return None
        sha: str | None = head
        for _ in range(20):
            if sha is None:
                break
            commit = repo.get_commit(sha)
            if commit.tree_sha in ours:
                return commit.tree_sha
            sha = commit.parents[0] if commit.parents else None
        return None  # not built on anything of ours: treat the branch as ours to update

    def _head_of(self, repo: GitHubRepo, branch: Branch | None, base: SyncPair | None) -> Head:
        if branch is None:
            return Head(None, None)
        if base is not None and branch.sha == base.github_commit_sha:
            return Head(branch.sha, base.tree_sha)  # known: no request
        return Head(branch.sha, repo.get_commit(branch.sha).tree_sha)

    def _check_outbound(self, loaded: _Loaded) -> None:
        """Read the facts of every local blob GitHub's tree may lack, and what GitHub would refuse."""
        snapshot, store, key = loaded.snapshot, self._store, loaded.project.id
        assert store is not None
        if snapshot.local.tree_sha is None or snapshot.local.tree_sha == snapshot.github.tree_sha:
            return
        since = snapshot.base.tree_sha if snapshot.base else None
        if snapshot.github.tree_sha is None:
            since = None
        local_flat = self._flat(loaded, snapshot.local.tree_sha)
        since_flat = self._flat(loaded, since)
        known = {entry.sha for entry in since_flat.values()}
        changed: list[tuple[str, BlobFacts]] = []
        for path, entry in local_flat.items():
            if entry.sha in known:
                continue
            facts = loaded.facts.get(entry.sha)
            if facts is None:
                facts = loaded.facts[entry.sha] = blob_facts(store.read_blob(key, entry.sha))
            changed.append((path, facts))
        attributes = local_flat.get(".gitattributes")
        blockers = find_blockers(
            changed,
            max_file_size=self._settings.max_file_size,
            gitattributes=store.read_blob(key, attributes.sha).decode("utf-8", "replace")
            if attributes
            else None,
        )
        loaded.warnings = size_warnings(changed, self._settings.warn_file_size)
        loaded.snapshot = replace(snapshot, blockers=blockers)

    # --- execute -------------------------------------------------------------------------------------

    def _execute(self, loaded: _Loaded, action: Action) -> _Outcome:
        kind = action.kind
        if kind is ActionKind.NOTHING or kind is ActionKind.AWAIT_RESOLUTION:
            return _Outcome()
        if kind is ActionKind.BLOCKED:
            first = action.blockers[0] if action.blockers else None
            return _Outcome(
                status="failed" if action.blockers else "cancelled",
                error_code=first.code if first else action.reason,
                error_message="; ".join(b.message for b in action.blockers) or f"sync is {action.reason}",
                metadata={
                    "blockers": [
                        {"code": b.code, "path": b.path, "message": b.message} for b in action.blockers
                    ]
                },
            )
        if kind is ActionKind.HELD:
            return _Outcome(
                status="held",
                metadata={
                    "held": {
                        "would": action.reason,
                        "why": action.blockers[0].message if action.blockers else "",
                    }
                },
            )
        if kind is ActionKind.RECORD_PAIR:
            return self._record_pair_outcome(loaded)
        if kind is ActionKind.PUSH_DIRECT:
            return self._push_direct(loaded)
        if kind is ActionKind.PULL_REQUEST:
            return self._pull_request(loaded)
        if kind in (ActionKind.IMPORT, ActionKind.PULL_INBOUND):
            return self._pull_inbound(loaded)
        if kind is ActionKind.PULL_PR_EDITS:
            return self._pull_pr_edits(loaded, action)
        if kind is ActionKind.FIRST_COMMIT:
            return self._first_commit(loaded)
        if kind is ActionKind.CONFLICT:
            return self._conflict(loaded, action)
        raise AssertionError(f"unhandled action {kind}")  # pragma: no cover

    def _record_pair_outcome(self, loaded: _Loaded) -> _Outcome:
        snapshot, version = loaded.snapshot, loaded.local_version
        assert version is not None and snapshot.github.commit_sha and snapshot.local.tree_sha
        pair = SyncPair(
            version.id,
            version.commit_sha,
            snapshot.github.commit_sha,
            snapshot.local.tree_sha,
            loaded.link.repository_id,
        )
        tracking = replace(
            loaded.project.tracking,
            last_remote_main_sha=snapshot.github.commit_sha,
            last_synced_main_sha=snapshot.github.commit_sha,
            last_github_sync_at=self._now(),
        )
        outcome = _Outcome(pair=pair, tracking=tracking, resolve_conflict=snapshot.open_conflict is not None)
        # A direct commit that landed before a crash: its PR is closed on this rerun instead.
        self._close_superseded_pull(loaded, snapshot.github.commit_sha, outcome)
        return outcome

    def _push_direct(self, loaded: _Loaded, version: VersionInfo | None = None) -> _Outcome:
        """A commit of `version` (default: the local head) on top of GitHub's head, then the ref."""
        snapshot = loaded.snapshot
        version = version or loaded.local_version
        assert version is not None and snapshot.github.commit_sha and snapshot.github.tree_sha
        default = loaded.link.default_branch
        transport, plan = self._transport(loaded, snapshot.github.tree_sha, version)
        try:
            if transport is Transport.GIT:
                commit = self._push_via_git(
                    loaded,
                    version,
                    branch=default,
                    parents=[Parent(snapshot.github.commit_sha, default)],
                    expected=snapshot.github.commit_sha,
                )
            else:
                commit, plan = self._write_commit(
                    loaded,
                    on_tree=snapshot.github.tree_sha,
                    parent=snapshot.github.commit_sha,
                    version=version,
                )
                loaded.repo.update_ref(default, commit)
        except BranchProtected:
            # GitHub's refusal is the truth about protection: take the PR path now.
            loaded.snapshot = replace(snapshot, github_protected=True)
            routed = self._pull_request(loaded, version)
            routed.operation_type = ActionKind.PULL_REQUEST.value  # what happened, not what was planned
            routed.metadata["routed_by"] = "branch_protected"
            return routed
        outcome = self._outbound_outcome(loaded, plan, commit, version)
        outcome.metadata.update(transport_metadata(transport, plan, loaded.git_fetched))
        outcome.pair = SyncPair(
            version.id, version.commit_sha, commit, version.tree_sha, loaded.link.repository_id
        )
        self._close_superseded_pull(loaded, commit, outcome)
        outcome.tracking = replace(
            loaded.project.tracking,
            last_remote_main_sha=commit,
            last_synced_main_sha=commit,
            last_github_sync_at=self._now(),
        )
        outcome.resolve_conflict = snapshot.open_conflict is not None
        outcome.audit = "github.push"
        return outcome

    def _pull_request(
        self, loaded: _Loaded, version: VersionInfo | None = None, *, merge_parent: str | None = None
    ) -> _Outcome:
        """Put `version` (default: the local head) on the project's PR branch and open or update the PR.

        With `merge_parent` (GitHub's head, after a conflict was settled) the branch's new commit is a
        merge of it, so the PR merges cleanly into the default branch as it is now.
        """
        snapshot, repo, link = loaded.snapshot, loaded.repo, loaded.link
        version = version or loaded.local_version
        assert version is not None and snapshot.github.commit_sha and snapshot.github.tree_sha
        branch = pr_branch_name(loaded.project.id)
        pr_head = snapshot.pr_head
        plan = OutboundPlan(())
        transport = Transport.GIT_DATA_API  # nothing is sent when the branch already holds the tree
        extra = (
            (merge_parent,)
            if merge_parent and merge_parent != (pr_head.commit_sha if pr_head else None)
            else ()
        )
        if pr_head is not None and pr_head.tree_sha == version.tree_sha and not extra:
            head = pr_head.commit_sha  # the branch already holds the local tree (the PR was closed)
            assert head is not None
        elif pr_head is not None:
            assert pr_head.commit_sha and pr_head.tree_sha
            transport, plan = self._transport(loaded, pr_head.tree_sha, version)
            if transport is Transport.GIT:
                head = self._push_via_git(
                    loaded,
                    version,
                    branch=branch,
                    parents=[
                        Parent(pr_head.commit_sha, branch),
                        *(Parent(sha, link.default_branch) for sha in extra),
                    ],
                    expected=pr_head.commit_sha,
                )
            else:
                head, plan = self._write_commit(
                    loaded,
                    on_tree=pr_head.tree_sha,
                    parent=pr_head.commit_sha,
                    version=version,
                    extra_parents=extra,
                )
                repo.update_ref(branch, head)  # never forced: a person's commits on the branch stay
        else:
            transport, plan = self._transport(loaded, snapshot.github.tree_sha, version)
            if transport is Transport.GIT:
                # Pushed with `expected=None`: a branch that appeared meanwhile is NotFastForward.
                head = self._push_via_git(
                    loaded,
                    version,
                    branch=branch,
                    parents=[Parent(snapshot.github.commit_sha, link.default_branch)],
                    expected=None,
                )
            else:
                head, plan = self._write_commit(
                    loaded,
                    on_tree=snapshot.github.tree_sha,
                    parent=snapshot.github.commit_sha,
                    version=version,
                )
                try:
                    repo.create_ref(branch, head)
                except GitHubValidation as exc:
                    raise NotFastForward(
                        f"the PR branch {branch} appeared meanwhile: {exc.message}"
                    ) from None
        text = self._pull_request_text(loaded, version)
        pull = snapshot.open_pr or repo.find_open_pull(branch, link.default_branch)
        if pull is None:
            pull = repo.create_pull(branch, link.default_branch, text.title, text.body)
        else:
            pull = repo.update_pull(pull.number, body=text.body)
        outcome = self._outbound_outcome(loaded, plan, head, version)
        outcome.metadata.update(transport_metadata(transport, plan, loaded.git_fetched))
        outcome.pull_request = OpenPullRequest(pull.number, pull.url)
        outcome.tracking = replace(
            loaded.project.tracking,
            last_remote_main_sha=snapshot.github.commit_sha,
            last_outbound_base_sha=snapshot.github.commit_sha,
            last_github_sync_at=self._now(),
        )
        outcome.metadata["pull_request"] = {"number": pull.number, "url": pull.url, "branch": branch}
        outcome.audit = "github.pull_request"
        return outcome

    def _pull_request_text(self, loaded: _Loaded, version: VersionInfo) -> Any:
        store, key = self._store, loaded.project.id
        assert store is not None
        base_number = 0
        if loaded.snapshot.base is not None:
            with self._uow() as uow:
                base_version = uow.versions.get(key, loaded.snapshot.base.version_id)
            base_number = base_version.number if base_version else 0
        versions = [
            (v.number, v.message)
            for v in store.versions_after(key, base_number)
            if v.number <= version.number
        ]
        since = loaded.snapshot.github.tree_sha
        changes = store.tree_delta(
            key, since if since and store.has_objects(key, [since]) else None, version.tree_sha
        )
        return pull_request_text(loaded.project.name, versions, [(c.status.value, c.path) for c in changes])

    def _first_commit(self, loaded: _Loaded) -> _Outcome:
        """The empty repository's first commit: the local head's tree on no parent, pushed over git to
        the default branch (the Git Data API answers 409 in an empty repository)."""
        version = loaded.local_version
        assert version is not None
        if self._git is None:
            raise InvalidInput(
                f"{loaded.link.full_name} is empty: GitHub's Git Data API refuses empty repositories, and "
                "the git transport that makes the first commit is not configured "
                "(GHSYNC_GIT_TRANSPORT_ENABLED)",
                code="repository_empty",
            )
        commit = self._push_via_git(
            loaded, version, branch=loaded.link.default_branch, parents=[], expected=None
        )
        plan = self._local_plan(loaded, None, version)
        outcome = self._outbound_outcome(loaded, plan, commit, version)
        outcome.metadata.update(transport_metadata(Transport.GIT, plan, loaded.git_fetched))
        outcome.pair = SyncPair(
            version.id, version.commit_sha, commit, version.tree_sha, loaded.link.repository_id
        )
        outcome.tracking = replace(
            loaded.project.tracking,
            last_remote_main_sha=commit,
            last_synced_main_sha=commit,
            last_github_sync_at=self._now(),
        )
        outcome.resolve_conflict = loaded.snapshot.open_conflict is not None
        outcome.audit = "github.push"
        return outcome

    def _local_plan(self, loaded: _Loaded, on_tree: str | None, version: VersionInfo) -> OutboundPlan:
        store = self._store
        assert store is not None
        return local_plan(
            store,
            loaded.project.id,
            github_tree=on_tree,
            fallback_tree=loaded.snapshot.base.tree_sha if loaded.snapshot.base else None,
            version=version,
            facts=loaded.facts,
            inline_limit=self._settings.inline_limit,
        )

    def _transport(
        self, loaded: _Loaded, on_tree: str, version: VersionInfo
    ) -> tuple[Transport, OutboundPlan]:
        """The transport for putting `version` on top of GitHub's tree `on_tree`, by the pure rule over the
        change's shape (planned from the store, no request); the plan is what the Git Data API would send."""
        plan = self._local_plan(loaded, on_tree, version)
        thresholds = self._settings.git_transport
        if self._git is None:
            thresholds = replace(thresholds, enabled=False)
        return choose_transport(ChangeShape.of(plan), thresholds), plan

    def _push_via_git(
        self,
        loaded: _Loaded,
        version: VersionInfo,
        *,
        branch: str,
        parents: Sequence[Parent],
        expected: str | None,
    ) -> str:
        """Build the version's commit in the local store on `parents` (GitHub's heads, fetched first when
        the store lacks them) and push it to `branch` without force; returns the commit's SHA.

        A push GitHub refuses as non-fast-forward (or a parent that moved while we fetched) raises
        `NotFastForward`, so `reconcile` reads and decides again, as after the Git Data API's 422; a
        protection refusal raises `BranchProtected`, and `_push_direct` takes the PR path.
        """
        store, git, link = self._store, self._git, loaded.link
        assert store is not None and git is not None
        return push_version(
            store,
            git,
            loaded.project.id,
            RemoteRepo(link.installation_id, link.owner, link.repo),
            version,
            branch=branch,
            parents=parents,
            expected=expected,
            when=self._now(),
            fetched=loaded.git_fetched,
            committer=self._committer(),
        )

    def _write_commit(
        self,
        loaded: _Loaded,
        *,
        on_tree: str,
        parent: str,
        version: VersionInfo,
        extra_parents: Sequence[str] = (),
    ) -> tuple[str, OutboundPlan]:
        """Create on GitHub a commit of the version's tree on top of `parent` (whose tree is `on_tree`),
        merging `extra_parents`; returns its SHA and the plan that built it. No ref moves here."""
        store, repo, key = self._store, loaded.repo, loaded.project.id
        assert store is not None
        remote_flat = self._remote_flat(loaded, on_tree)
        local_flat = self._flat(loaded, version.tree_sha)
        missing = {e.sha for e in local_flat.values()} - {e.sha for e in remote_flat.values()}
        for sha in missing - set(loaded.facts):
            loaded.facts[sha] = blob_facts(store.read_blob(key, sha))
        plan = plan_writes(remote_flat, local_flat, loaded.facts, inline_limit=self._settings.inline_limit)
        tree = on_tree
        for upload in plan.uploads:
            created = repo.create_blob(store.read_blob(key, upload.sha or ""))
            if created != upload.sha:
                raise GhsyncError(f"GitHub stored blob {upload.sha} as {created}", code="sha_mismatch")
        for chunk in chunk_writes(
            plan.writes, max_entries=self._settings.tree_entry_limit, max_bytes=self._settings.tree_size_bytes
        ):
            tree = self._create_tree(loaded, tree, chunk)
        if tree != version.tree_sha:
            # Never publish a tree that is not the version's: the pair would be a lie.
            raise GhsyncError(
                f"GitHub built tree {tree}, not the version's {version.tree_sha}; nothing was published",
                code="tree_mismatch",
            )
        commit = repo.create_commit(
            tree,
            [parent, *extra_parents],
            outbound_message(version.message, version.id),
            author=version.author,
            committer=self._committer(),
        )
        return commit.sha, plan

    def _committer(self) -> Author:
        """Our commits' committer is the App (the author is the version's): its bot account."""
        assert self._github is not None
        if self._identity is None:
            self._identity = self._github.app_identity()
        return self._identity

    def _create_tree(self, loaded: _Loaded, base_tree: str, chunk: Sequence[PlannedWrite]) -> str:
        """One tree request; a chunk GitHub finds too large is split in halves and retried."""
        store, key = self._store, loaded.project.id
        assert store is not None
        entries: list[TreeWrite] = []
        for write in chunk:
            if write.kind is WriteKind.DELETE:
                entries.append(TreeWrite.delete(write.path))
            elif write.kind is WriteKind.INLINE:
                text = store.read_blob(key, write.sha or "").decode("utf-8")
                entries.append(TreeWrite.text(write.path, text, write.mode))
            else:
                entries.append(TreeWrite.blob(write.path, write.sha or "", write.mode))
        try:
            return loaded.repo.create_tree(base_tree, entries)
        except GitHubValidation as exc:
            # GitHub answers 422 "... request timed out ... input was too large" for oversized trees.
            if "too large" not in exc.message.lower() or len(chunk) < 2:
                raise
            half = len(chunk) // 2
            return self._create_tree(loaded, self._create_tree(loaded, base_tree, chunk[:half]), chunk[half:])

    def _remote_flat(self, loaded: _Loaded, tree_sha: str) -> dict[str, TreeEntry]:
        """GitHub's tree by path: from the store when we have it (it is one of ours), else read once."""
        store, key = self._store, loaded.project.id
        assert store is not None
        if tree_sha in loaded.flats or store.has_objects(key, [tree_sha]):
            return self._flat(loaded, tree_sha)
        flat = loaded.flats[tree_sha] = {entry.path: entry for entry in loaded.repo.get_tree(tree_sha)}
        return flat

    def _flat(self, loaded: _Loaded, tree_sha: str | None) -> dict[str, TreeEntry]:
        """A tree of the local store by path ({} for none), flattened once per reconcile."""
        if tree_sha is None:
            return {}
        flat = loaded.flats.get(tree_sha)
        if flat is None:
            assert self._store is not None
            flat = loaded.flats[tree_sha] = self._store.flat_tree(loaded.project.id, tree_sha)
        return flat

    def _outbound_outcome(
        self, loaded: _Loaded, plan: OutboundPlan, commit: str, version: VersionInfo
    ) -> _Outcome:
        store, key = self._store, loaded.project.id
        assert store is not None
        since = loaded.snapshot.base.local_commit_sha if loaded.snapshot.base else None
        stats = store.diff_stats(key, since, version.commit_sha)
        return _Outcome(
            direction="to_github",
            github_commit=commit,
            github_message=outbound_message(version.message, version.id),
            github_author=version.author,
            version=version,
            files_changed=stats.files,
            insertions=stats.insertions,
            deletions=stats.deletions,
            metadata={
                "transport": "git_data_api",
                "tree_entries": len(plan.writes),
                "blobs_uploaded": len(plan.uploads),
                "inline_bytes": plan.inline_bytes,
                "warnings": loaded.warnings,
            },
        )

    def _fetch_github_tree(self, loaded: _Loaded) -> tuple[str, int]:
        """Bring GitHub's head tree into the store: only the blobs the store lacks travel, over REST or, for
        a first import or many missing blobs, one git fetch. Returns the tree's SHA (GitHub's, checked)
        and how many blobs came by REST (0 by git; the operation's metadata says which transport)."""
        store, repo, key, snapshot = self._store, loaded.repo, loaded.project.id, loaded.snapshot
        assert store is not None and snapshot.github.tree_sha
        if store.has_objects(key, [snapshot.github.tree_sha]):
            return snapshot.github.tree_sha, 0
        thresholds = self._settings.git_transport
        if self._git is not None and inbound_by_git(
            importing=snapshot.local.empty, missing_blobs=0, thresholds=thresholds
        ):
            return self._fetch_by_git(loaded), 0
        entries = repo.get_tree(snapshot.github.tree_sha)
        missing = sorted({e.sha for e in entries} - store.has_objects(key, {e.sha for e in entries}))
        if self._git is not None and inbound_by_git(
            importing=False, missing_blobs=len(missing), thresholds=thresholds
        ):
            return self._fetch_by_git(loaded), 0
        tree = self._store_tree(loaded, snapshot.github.tree_sha, entries, missing)
        loaded.inbound_transport = "rest"
        return tree, len(missing)

    def _fetch_by_git(self, loaded: _Loaded) -> str:
        """One git fetch of the default branch; GitHub having moved since it was read is a race."""
        store, git, link, snapshot = self._store, self._git, loaded.link, loaded.snapshot
        assert store is not None and git is not None
        head = git.fetch(
            loaded.project.id, RemoteRepo(link.installation_id, link.owner, link.repo), link.default_branch
        )
        loaded.git_fetched[link.default_branch] = head
        if head is None or head != snapshot.github.commit_sha:
            raise NotFastForward(
                f"GitHub's {link.default_branch} moved to {head} while it was read", status=422
            )
        tree = store.tree_sha(loaded.project.id, head)
        # Paths are checked like REST's: the fetched tree is rebuilt from its entries (same SHA or refused).
        entries = list(self._flat(loaded, tree).values())
        if store.write_tree(loaded.project.id, entries) != tree:
            raise InvalidInput(
                f"GitHub's tree {tree} holds entries ghsync cannot store", code="unsupported_tree"
            )
        loaded.inbound_transport = "git"
        return tree

    def _commit_local(
        self,
        loaded: _Loaded,
        tree: str,
        *,
        message: str,
        author: Author,
        source: str,
        trailers: dict[str, str],
    ) -> VersionInfo:
        """A new local version of `tree` on top of the local head (compare-and-swap), checked out."""
        store, key, local = self._store, loaded.project.id, loaded.snapshot.local
        assert store is not None
        version = store.commit_tree(
            key,
            tree_sha=tree,
            parents=[local.commit_sha] if local.commit_sha else [],
            message=message,
            author=author,
            version_id=str(uuid.uuid4()),
            expected_head=local.commit_sha,
            source="github" if source == "github" else "local",
            trailers=trailers,
        )
        store.checkout(key, version.commit_sha)
        return version

    def _pull_inbound(self, loaded: _Loaded) -> _Outcome:
        """Apply GitHub's head as one new local version: only the blobs the store lacks travel."""
        store, repo, key, snapshot = self._store, loaded.repo, loaded.project.id, loaded.snapshot
        assert store is not None and snapshot.github.commit_sha
        tree, fetched = self._fetch_github_tree(loaded)
        commit = repo.get_commit(snapshot.github.commit_sha)
        version = self._commit_local(
            loaded,
            tree,
            message=commit.message.strip() or f"GitHub commit {commit.sha[:12]}",
            author=commit.author,
            source="github",
            trailers={GITHUB_COMMIT_TRAILER: commit.sha},
        )
        stats = store.diff_stats(key, snapshot.local.commit_sha, version.commit_sha)
        return _Outcome(
            direction="from_github",
            pair=SyncPair(version.id, version.commit_sha, commit.sha, tree, loaded.link.repository_id),
            tracking=self._synced(loaded, commit.sha),
            github_commit=commit.sha,
            github_message=commit.message,
            github_author=commit.author,
            version=version,
            files_changed=stats.files,
            insertions=stats.insertions,
            deletions=stats.deletions,
            resolve_conflict=snapshot.open_conflict is not None,
            audit="github.pull",
            metadata={"transport": loaded.inbound_transport, "blobs_fetched": fetched},
        )

    def _pull_pr_edits(self, loaded: _Loaded, action: Action) -> _Outcome:
        """A person committed on our PR branch: merge their edits into the local side (three-way, from the
        tree of ours they built on), as one new version; then the PR carries the merge. An unclean merge
        is a conflict: nothing is applied or written over."""
        store, key, snapshot, repo = self._store, loaded.project.id, loaded.snapshot, loaded.repo
        pr_head, base_tree = snapshot.pr_head, snapshot.pr_edited_base
        assert store is not None and pr_head is not None and pr_head.commit_sha and pr_head.tree_sha
        assert loaded.local_version is not None
        pr_tree = self._fetch_tree_rest(loaded, pr_head.tree_sha)
        merge = store.merge_trees(key, base_tree, snapshot.local.tree_sha, pr_tree)
        if not merge.clean or merge.tree_sha is None:
            files = [{"path": c.path, "kind": c.kind.value} for c in merge.conflicts]
            record = self._conflict_record(loaded, files, status="open", resolution=None)
            # The heads stay both sides' (so the project waits on it); the PR branch's head is in details.
            record = replace(record, details={"files": files, "pull_request_branch": pr_head.commit_sha})
            return _Outcome(
                conflict=record,
                conflict_files=len(files) or 1,
                audit="github.conflict",
                metadata={"reason": action.reason, "pull_request_branch": pr_head.commit_sha},
            )
        commit = repo.get_commit(pr_head.commit_sha)
        version = loaded.local_version
        if merge.tree_sha != version.tree_sha:
            subject = (commit.message.strip().splitlines() or [commit.sha[:12]])[0][:100]
            version = self._commit_local(
                loaded,
                merge.tree_sha,
                message=f"Edits made on the pull request branch ({subject})",
                author=commit.author,
                source="github",
                trailers={GITHUB_COMMIT_TRAILER: commit.sha},
            )
        outcome = _Outcome(
            direction="from_github",
            github_commit=commit.sha,
            github_message=commit.message,
            github_author=commit.author,
            version=version,
            audit="github.pull_request_edits",
            metadata={"pull_request_branch": pr_head.commit_sha, "merged": merge.tree_sha != pr_tree},
        )
        if merge.tree_sha != pr_tree:  # the local side had changes too: the PR gets the merge
            pushed = self._pull_request(loaded, version)
            pushed.direction, pushed.audit = "from_github", outcome.audit
            pushed.metadata.update(outcome.metadata)
            return pushed
        return outcome

    def _fetch_tree_rest(self, loaded: _Loaded, tree_sha: str) -> str:
        """Bring any GitHub tree into the store over REST (only the blobs it lacks); its SHA, checked."""
        store, repo, key = self._store, loaded.repo, loaded.project.id
        assert store is not None
        if store.has_objects(key, [tree_sha]):
            return tree_sha
        entries = repo.get_tree(tree_sha)
        missing = sorted({e.sha for e in entries} - store.has_objects(key, {e.sha for e in entries}))
        return self._store_tree(loaded, tree_sha, entries, missing)

    def _store_tree(
        self, loaded: _Loaded, tree_sha: str, entries: Sequence[TreeEntry], missing: Sequence[str]
    ) -> str:
        """Fetch the `missing` blobs over REST and write GitHub's tree `tree_sha` from its `entries` (every
        path validated by the store); the SHA must come out as GitHub's."""
        store, repo, key = self._store, loaded.repo, loaded.project.id
        assert store is not None
        for sha in missing:
            (written,) = store.write_blobs(key, [repo.get_blob(sha)])
            if written != sha:
                raise GhsyncError(f"GitHub's blob {sha} hashed to {written} here", code="sha_mismatch")
        tree = store.write_tree(key, entries)  # validates every path: nothing escapes the project
        if tree != tree_sha:
            raise InvalidInput(
                f"GitHub's tree {tree_sha} holds entries ghsync cannot store (submodules?); "
                f"it rebuilt as {tree}",
                code="unsupported_tree",
            )
        return tree

    def _synced(self, loaded: _Loaded, github_sha: str) -> Tracking:
        return replace(
            loaded.project.tracking,
            last_remote_main_sha=github_sha,
            last_synced_main_sha=github_sha,
            last_github_sync_at=self._now(),
        )

    # --- conflicts -----------------------------------------------------------------------------------

    def _conflict(self, loaded: _Loaded, action: Action) -> _Outcome:
        """Both sides changed since the base: merge per file, then settle by the project's strategy.

        `auto_merge` applies a clean three-way merge (tree and text), else falls back to `manual`;
        `github_wins` takes GitHub's tree as a new version; `local_wins` makes a new GitHub commit of the
        local tree on top of GitHub's head (no force-push: GitHub's history stays); `manual` records the
        conflict and waits. Whatever is overwritten stays reachable: a local version (tagged, plus a backup
        ref), or a GitHub commit in the default branch's history.
        """
        store, key, snapshot = self._store, loaded.project.id, loaded.snapshot
        assert store is not None and snapshot.local.tree_sha and snapshot.github.commit_sha
        github_tree, fetched = self._fetch_github_tree(loaded)
        # GitHub's side stays reachable here whatever a person does on GitHub next (a force-push).
        kept_github = self._keep_github_side(loaded, github_tree, "conflict")
        base_tree = snapshot.base.tree_sha if snapshot.base else None
        merge = store.merge_trees(key, base_tree, snapshot.local.tree_sha, github_tree)
        files = [{"path": c.path, "kind": c.kind.value} for c in merge.conflicts]
        strategy = loaded.link.strategy
        details: dict[str, Any] = {
            "reason": action.reason,
            "strategy": strategy.value,
            "files": files,
            "clean_merge": merge.clean,
            "blobs_fetched": fetched,
            "kept_github": kept_github,
        }
        if strategy is ConflictStrategy.AUTO_MERGE and merge.clean and merge.tree_sha:
            outcome = self._apply_merge(loaded, merge.tree_sha)
        elif strategy is ConflictStrategy.GITHUB_WINS:
            outcome = self._github_wins(loaded, github_tree)
        elif strategy is ConflictStrategy.LOCAL_WINS:
            outcome = self._local_wins(loaded)
        else:
            if strategy is ConflictStrategy.AUTO_MERGE:
                details["fell_back_to"] = "manual"
            return self._manual(loaded, action, details, files)
        outcome.conflict = self._conflict_record(loaded, files, status="resolved", resolution=strategy.value)
        outcome.conflict_files = len(files) or 1
        outcome.resolve_conflict = snapshot.open_conflict is not None
        outcome.metadata["conflict"] = details
        return outcome

    def _conflict_record(
        self, loaded: _Loaded, files: list[dict[str, str]], *, status: str, resolution: str | None
    ) -> ConflictRecord:
        snapshot, base = loaded.snapshot, loaded.snapshot.base
        return ConflictRecord(
            project_id=loaded.project.id,
            status="resolved" if status == "resolved" else "open",
            base_local_commit_sha=base.local_commit_sha if base else None,
            base_github_commit_sha=base.github_commit_sha if base else None,
            local_commit_sha=snapshot.local.commit_sha,
            github_commit_sha=snapshot.github.commit_sha,
            paths=tuple(f["path"] for f in files),
            strategy=loaded.link.strategy.value,
            resolution=resolution,
            details={"files": files},
            resolved_at=self._now() if status == "resolved" else None,
        )

    def _manual(
        self, loaded: _Loaded, action: Action, details: dict[str, Any], files: list[dict[str, str]]
    ) -> _Outcome:
        snapshot = loaded.snapshot
        return _Outcome(
            conflict=self._conflict_record(loaded, files, status="open", resolution=None),
            conflict_files=len(files) or 1,
            resolve_conflict=snapshot.open_conflict is not None,  # superseded by this one
            audit="github.conflict",
            metadata={"reason": action.reason, "conflict": details},
        )

    def _keep_github_side(self, loaded: _Loaded, tree: str, why: str) -> str:
        """Keep GitHub's tree `tree` reachable in the local store, under a backup ref.

        The commit is deterministic (fixed time, GitHub's SHA in the message), so keeping the same GitHub
        state twice reuses one ref."""
        store, sha = self._store, loaded.snapshot.github.commit_sha
        assert store is not None and sha
        identity = GitIdentity(SYSTEM_AUTHOR.name, SYSTEM_AUTHOR.email, datetime(1970, 1, 1, tzinfo=UTC))
        commit = store.write_commit(
            loaded.project.id,
            tree_sha=tree,
            parents=[],
            message=f"GitHub's {sha}, kept by ghsync ({why})\n",
            author=identity,
            committer=identity,
        )
        return store.keep_ref(loaded.project.id, f"{why}/github-{sha[:12]}", commit)

    def _keep_local_side(self, loaded: _Loaded, why: str) -> str:
        """Keep the local head reachable under a backup ref named for it, as `_keep_github_side` does:
        keeping the same commit again (every reconcile while a force-push holds the project, or the
        rerun after a crash) reuses its ref."""
        store, local = self._store, loaded.snapshot.local
        assert store is not None and local.commit_sha
        return store.keep_ref(loaded.project.id, f"{why}/local-{local.commit_sha[:12]}", local.commit_sha)

    def _github_wins(self, loaded: _Loaded, github_tree: str, *, keep: bool = True) -> _Outcome:
        """GitHub's tree becomes a new local version; the local side stays a tagged version (and a ref)."""
        snapshot = loaded.snapshot
        assert snapshot.github.commit_sha
        kept = self._keep_local_side(loaded, "github-wins") if keep else None
        commit = loaded.repo.get_commit(snapshot.github.commit_sha)
        version = self._commit_local(
            loaded,
            github_tree,
            message=f"Take GitHub's {commit.sha[:12]} over local changes (conflict strategy github_wins)",
            author=commit.author,
            source="github",
            trailers={GITHUB_COMMIT_TRAILER: commit.sha},
        )
        return _Outcome(
            direction="from_github",
            pair=SyncPair(version.id, version.commit_sha, commit.sha, github_tree, loaded.link.repository_id),
            tracking=self._synced(loaded, commit.sha),
            github_commit=commit.sha,
            github_message=commit.message,
            github_author=commit.author,
            version=version,
            audit="github.conflict_github_wins",
            metadata={"kept_local": kept},
        )

    def _local_wins(self, loaded: _Loaded) -> _Outcome:
        """The local tree as a new GitHub commit on top of GitHub's head (direct), or on the PR branch as a
        merge of GitHub's head (PR modes). GitHub's history stays: nothing is force-pushed."""
        snapshot = loaded.snapshot
        protected = snapshot.github_protected or loaded.link.protected
        if uses_pull_request(loaded.link.mode, protected):
            return self._pull_request(loaded, merge_parent=snapshot.github.commit_sha)
        if loaded.link.allow_force_push and snapshot.base is not None:
            return self._force_local(loaded)
        return self._push_direct(loaded)

    def _force_local(self, loaded: _Loaded) -> _Outcome:
        """`local_wins` with the operator's force-push opt-in: GitHub's branch is rewritten to the local
        version on top of the last synced commit. The overwritten head is kept first, on a backup branch
        on GitHub (`ghsync/backup/<sha>`) and under a backup ref here, and the forced update is
        audit-logged with both SHAs."""
        snapshot, repo, link, version = loaded.snapshot, loaded.repo, loaded.link, loaded.local_version
        base = snapshot.base
        assert base is not None and version is not None and snapshot.github.commit_sha
        overwritten = snapshot.github.commit_sha
        backup = f"ghsync/backup/{overwritten[:12]}"
        with contextlib.suppress(GitHubValidation):  # kept already by an earlier attempt
            repo.create_ref(backup, overwritten)
        commit, plan = self._write_commit(
            loaded, on_tree=base.tree_sha, parent=base.github_commit_sha, version=version
        )
        repo.force_update_ref(link.default_branch, commit)
        outcome = self._outbound_outcome(loaded, plan, commit, version)
        outcome.pair = SyncPair(version.id, version.commit_sha, commit, version.tree_sha, link.repository_id)
        outcome.tracking = self._synced(loaded, commit)
        outcome.audit = "github.force_push"
        outcome.metadata["forced"] = {"overwritten": overwritten, "backup_branch": backup, "new": commit}
        log.warning("github_force_push", project_id=loaded.project.id, overwritten=overwritten, new=commit)
        return outcome

    def _apply_merge(
        self,
        loaded: _Loaded,
        merged_tree: str,
        *,
        message: str | None = None,
        version: VersionInfo | None = None,
    ) -> _Outcome:
        """Settle on `merged_tree`: one local version of it (unless local already holds it), then the tree on
        GitHub on top of its head (direct) or on the PR branch as a merge of GitHub's head (PR modes)."""
        snapshot = loaded.snapshot
        assert snapshot.github.commit_sha
        version = version or loaded.local_version
        assert version is not None
        if merged_tree != version.tree_sha:
            version = self._commit_local(
                loaded,
                merged_tree,
                message=message
                or f"Merge GitHub's {snapshot.github.commit_sha[:12]} (conflict strategy auto_merge)",
                author=SYSTEM_AUTHOR,
                source="local",
                trailers={GITHUB_COMMIT_TRAILER: snapshot.github.commit_sha},
            )
        if merged_tree == snapshot.github.tree_sha:
            # GitHub already holds the merge (it had all of ours): pair, no GitHub commit.
            return _Outcome(
                direction="from_github",
                pair=SyncPair(
                    version.id,
                    version.commit_sha,
                    snapshot.github.commit_sha,
                    merged_tree,
                    loaded.link.repository_id,
                ),
                tracking=self._synced(loaded, snapshot.github.commit_sha),
                version=version,
                audit="github.conflict_merged",
            )
        protected = snapshot.github_protected or loaded.link.protected
        if uses_pull_request(loaded.link.mode, protected):
            outcome = self._pull_request(loaded, version, merge_parent=snapshot.github.commit_sha)
        else:
            outcome = self._push_direct(loaded, version)
        outcome.audit = "github.conflict_merged"
        return outcome

    def _close_superseded_pull(self, loaded: _Loaded, commit: str, outcome: _Outcome) -> None:
        """Our PR, left open from when the branch refused direct commits (hybrid while protected, or a
        mode since changed), once the default branch holds the local tree (`commit`): closed, saying why.

        Called after a direct commit, and when recording a pair (the rerun of a direct commit a crash
        interrupted); `superseded_pull_request` decides. Its branch is kept, so nothing on it can be
        lost, and a person may still reopen the PR.
        """
        pull = loaded.snapshot.open_pr
        if pull is None or not superseded_pull_request(loaded.snapshot, github_holds_local=True):
            return
        branch = loaded.link.default_branch
        note = (
            f"Superseded: ghsync committed these changes directly to `{branch}` as {commit}, since the "
            "branch accepts direct commits again. This pull request is closed; its branch is kept."
        )
        loaded.repo.update_pull(pull.number, body=note, state="closed")
        outcome.pull_request = None
        outcome.metadata["pull_request_superseded"] = {"number": pull.number, "by": commit}

    def _after_pull_request_closed(self, loaded: _Loaded, outcome: _Outcome) -> None:
        """Our PR merged: delete its branch (GitHub keeps the commits in the default branch's history).
        Closed without merging: keep the branch and say so; the next local version opens a fresh PR."""
        pull = loaded.closed_pr
        if pull is None:
            return
        if not pull.merged:
            outcome.metadata["pull_request_rejected"] = {"number": pull.number, "url": pull.url}
            return
        branch = pr_branch_name(loaded.project.id)
        # It may be gone already (GitHub's "automatically delete head branches", or a person).
        with contextlib.suppress(GitHubValidation, GitHubNotFound):
            loaded.repo.delete_ref(branch)
        outcome.metadata["pull_request_merged"] = {"number": pull.number, "branch_deleted": branch}

    # --- the blast-radius guard, plans, resolutions, resets ---------------------------------------

    def _plan_summary(self, loaded: _Loaded, action: Action) -> dict[str, Any]:
        """The plan the dry run shows, logged with the operation (from the store only: no request)."""
        tree = loaded.snapshot.github.tree_sha
        if tree is not None and not self._store_has(loaded, tree):
            return {"changes": None, "why": "GitHub's tree was not read"}
        try:
            changes = self._planned_changes(loaded, action)
        except GhsyncError:
            return {"changes": None, "why": "the trees could not be read"}
        counts: dict[str, int] = {}
        for change in changes:
            key = f"{change.direction}.{change.status}"
            counts[key] = counts.get(key, 0) + 1
        return {
            "counts": counts,
            "changes": [[c.direction, c.status, c.path] for c in changes[:100]],
            "truncated": len(changes) > 100,
        }

    def _store_has(self, loaded: _Loaded, sha: str) -> bool:
        assert self._store is not None
        return bool(self._store.has_objects(loaded.project.id, [sha]))

    def _held_plan(self, loaded: _Loaded, action: Action) -> Action | None:
        """Hold an action that would delete or overwrite most of the receiving side's files."""
        snapshot = loaded.snapshot
        strategy = loaded.link.strategy
        if action.kind is ActionKind.PUSH_DIRECT or (
            action.kind is ActionKind.CONFLICT and strategy is ConflictStrategy.LOCAL_WINS
        ):
            receiving, side = self._remote_flat(loaded, snapshot.github.tree_sha or ""), "GitHub"
            new = self._flat(loaded, snapshot.local.tree_sha)
        elif action.kind is ActionKind.PULL_INBOUND or (
            action.kind is ActionKind.CONFLICT and strategy is ConflictStrategy.GITHUB_WINS
        ):
            receiving, side = self._flat(loaded, snapshot.local.tree_sha), "the project"
            new = self._remote_flat(loaded, snapshot.github.tree_sha or "")
        else:
            return None
        changes = tree_changes(receiving, new, "to_github")
        if not needs_confirmation(receiving, changes, self._settings.guard):
            return None
        hit = sum(1 for c in changes if c.status != "added" and c.path in receiving)
        message = (
            f"this sync would delete or overwrite {hit} of the {len(receiving)} files of {side}; it is held "
            "until confirmed (POST .../github/sync/confirm with the heads of GET .../github/sync/plan)"
        )
        return held_for_confirmation(action, message)

    def _latest_held(self, loaded: _Loaded) -> tuple[str | None, str | None] | None:
        with self._uow() as uow:
            held = uow.operations.recent(limit=1, project_id=loaded.project.id, status="held")
        if not held:
            return None
        heads = held[0].metadata.get("heads_before") or {}
        return heads.get("local"), heads.get("github")

    def _planned_changes(self, loaded: _Loaded, action: Action) -> tuple[PlannedChange, ...]:
        snapshot = loaded.snapshot
        kind = ActionKind(action.reason) if action.kind is ActionKind.HELD else action.kind
        local = self._flat(loaded, snapshot.local.tree_sha)
        remote = self._remote_flat(loaded, snapshot.github.tree_sha) if snapshot.github.tree_sha else {}
        if kind in _OUTBOUND_KINDS:
            return tree_changes(remote, local, "to_github")
        if kind in _INBOUND_KINDS:
            return tree_changes(local, remote, "from_github")
        if kind is ActionKind.CONFLICT:
            base = self._flat(loaded, snapshot.base.tree_sha) if snapshot.base else {}
            return tree_changes(base, local, "to_github") + tree_changes(base, remote, "from_github")
        return ()

    def _expected_requests(
        self, loaded: _Loaded, action: Action, changes: tuple[PlannedChange, ...]
    ) -> dict[str, int]:
        """The GitHub requests executing `action` would make (the plan's estimate, reads included)."""
        kind = ActionKind(action.reason) if action.kind is ActionKind.HELD else action.kind
        if kind in _OUTBOUND_KINDS:
            store, key, snapshot = self._store, loaded.project.id, loaded.snapshot
            assert store is not None
            remote = self._remote_flat(loaded, snapshot.github.tree_sha) if snapshot.github.tree_sha else {}
            local = self._flat(loaded, snapshot.local.tree_sha)
            missing = {e.sha for e in local.values()} - {e.sha for e in remote.values()}
            facts = {sha: loaded.facts.get(sha) or blob_facts(store.read_blob(key, sha)) for sha in missing}
            plan = plan_writes(remote, local, facts, inline_limit=self._settings.inline_limit)
            chunks = len(
                chunk_writes(
                    plan.writes,
                    max_entries=self._settings.tree_entry_limit,
                    max_bytes=self._settings.tree_size_bytes,
                )
            )
            writes = len(plan.uploads) + chunks + 2  # blobs, trees, the commit, the ref
            if kind is ActionKind.PULL_REQUEST:
                writes += 1  # the PR created or updated
            return {"total": writes, "content_creating": writes}
        if kind in _INBOUND_KINDS or kind is ActionKind.CONFLICT:
            fetched = sum(1 for c in changes if c.direction == "from_github" and c.status != "deleted")
            reads = 2 + fetched  # the tree, the blobs the store lacks (at most), the commit
            return {"total": reads, "content_creating": 0}
        return {"total": 0, "content_creating": 0}

    def _apply_user_merge(
        self, loaded: _Loaded, files: Sequence[FileWrite], deletes: Sequence[str]
    ) -> _Outcome:
        """A person's merge: GitHub's tree, plus the local changes outside the conflict, plus the files the
        person resolved; one local version, then outbound on top of GitHub's head (or on the PR)."""
        store, key, snapshot = self._store, loaded.project.id, loaded.snapshot
        assert store is not None and snapshot.local.tree_sha and snapshot.github.commit_sha
        conflict = snapshot.open_conflict
        assert conflict is not None
        github_tree, _fetched = self._fetch_github_tree(loaded)
        resolved = {f.path for f in files} | set(deletes)
        unresolved = sorted(set(conflict.paths) - resolved)
        if unresolved:
            raise Refused(
                f"the merged files leave conflicts unresolved: {', '.join(unresolved)}",
                code="unresolved_paths",
            )
        edits: list[TreeEdit] = []
        base_tree = snapshot.base.tree_sha if snapshot.base else None
        for change in store.tree_delta(key, base_tree, snapshot.local.tree_sha):
            if change.path in resolved or (change.old_path and change.old_path in resolved):
                continue
            if change.old_path and change.old_path != change.path:
                edits.append(TreeEdit(change.old_path, None))
            edits.append(TreeEdit(change.path, change.new_sha, change.new_mode or FileMode.REGULAR))
        shas = store.write_blobs(key, [f.content for f in files])
        edits += [TreeEdit(f.path, sha, f.mode) for f, sha in zip(files, shas, strict=True)]
        edits += [TreeEdit(path, None) for path in deletes]
        merged = store.build_tree(key, github_tree, edits)
        outcome = self._apply_merge(loaded, merged, message="Resolve the conflict with GitHub (merged files)")
        outcome.conflict = self._conflict_record(
            loaded,
            [{"path": p, "kind": "resolved"} for p in conflict.paths],
            status="resolved",
            resolution="merged_files",
        )
        outcome.resolve_conflict = True
        return outcome

    def _reset(self, loaded: _Loaded, adopt: str | None, restore: str | None, kept: list[str]) -> _Outcome:
        store, key, snapshot = self._store, loaded.project.id, loaded.snapshot
        assert store is not None
        stamp = self._now().strftime("%Y%m%dT%H%M%SZ")
        if adopt == "github":
            if snapshot.github.commit_sha is None:
                raise Refused("GitHub's branch has no commit to adopt", code="repository_empty")
            if snapshot.local.commit_sha:
                kept.append(store.keep_ref(key, f"reset/{stamp}-local", snapshot.local.commit_sha))
            tree, _ = self._fetch_github_tree(loaded)
            if tree == snapshot.local.tree_sha and loaded.local_version is not None:
                return self._record_pair_outcome(loaded)
            return self._github_wins(loaded, tree, keep=False)
        # Adopt the local side, or a state an earlier reset kept: GitHub's current tree is kept first.
        if snapshot.github.commit_sha is not None:
            tree, _ = self._fetch_github_tree(loaded)
            kept.append(self._keep_github_side(loaded, tree, f"reset/{stamp}"))
        version = loaded.local_version
        if restore is not None:
            refs = store.list_refs(key, restore)
            if restore not in refs:
                raise Refused(f"{restore} is not a ref a reset kept", code="unknown_ref")
            tree = store.tree_sha(key, refs[restore])
            if snapshot.local.commit_sha:
                kept.append(store.keep_ref(key, f"reset/{stamp}-local", snapshot.local.commit_sha))
            if tree != snapshot.local.tree_sha:
                version = self._commit_local(
                    loaded,
                    tree,
                    message=f"Restore {restore} (reset)",
                    author=SYSTEM_AUTHOR,
                    source="local",
                    trailers={},
                )
        if version is None:
            raise Refused("the project has no version to adopt", code="project_empty")
        if snapshot.github.commit_sha is None:
            loaded.local_version = version
            return self._first_commit(loaded)
        return self._apply_merge(loaded, version.tree_sha, message=None, version=version)

    # --- record --------------------------------------------------------------------------------------

    def _record(
        self,
        loaded: _Loaded,
        action: Action,
        outcome: _Outcome,
        started: datetime,
        count: RequestCount,
        attempt: int,
    ) -> str:
        key, snapshot = loaded.project.id, loaded.snapshot
        with self._uow() as uow:
            if loaded.link != loaded.project.link:
                self._follow_link(uow, loaded)
            # Every version the store has joins the table before a pair names it: the ones this run made
            # (inbound, merges, resets) and any an earlier, failed run made but never recorded.
            if self._store is not None:
                uow.versions.add_all(key, self._store.versions_after(key, uow.versions.max_number(key)))
            if loaded.merged_pair is not None:
                uow.pairs.add(key, loaded.merged_pair)
            if outcome.pair is not None:
                uow.pairs.add(key, outcome.pair)
            if outcome.tracking is not None:
                uow.projects.set_tracking(key, outcome.tracking)
            if outcome.pull_request is not ...:
                uow.projects.set_pull_request(key, outcome.pull_request)
            elif loaded.closed_pr is not None and loaded.closed_pr.merged:
                uow.projects.set_pull_request(key, None)  # merged on GitHub: the next change opens a new PR
            if outcome.resolve_conflict and snapshot.open_conflict is not None:
                uow.conflicts.resolve(snapshot.open_conflict.id, resolution="superseded", at=self._now())
            if outcome.conflict is not None:
                uow.conflicts.add(outcome.conflict)
            version = outcome.version or loaded.local_version
            previous = uow.operations.latest(key)  # notifications tell transitions, not repeats
            operation_id = uow.operations.add(
                SyncOperation(
                    project_id=key,
                    operation_type=outcome.operation_type or action.kind.value,
                    status=outcome.status,  # type: ignore[arg-type]
                    direction=outcome.direction,  # type: ignore[arg-type]
                    github_commit_sha=outcome.github_commit or snapshot.github.commit_sha,
                    github_commit_message=outcome.github_message,
                    github_author_name=outcome.github_author.name if outcome.github_author else None,
                    github_author_email=outcome.github_author.email if outcome.github_author else None,
                    local_version_id=version.id if version else None,
                    local_commit_sha=version.commit_sha if version else None,
                    files_changed=outcome.files_changed,
                    insertions=outcome.insertions,
                    deletions=outcome.deletions,
                    conflicts_detected=outcome.conflict_files,
                    error_code=outcome.error_code,
                    error_message=outcome.error_message,
                    retry_count=attempt,
                    started_at=started,
                    completed_at=self._now(),
                    metadata={
                        **outcome.metadata,
                        "decision": {"action": action.kind.value, "reason": action.reason},
                        "plan": self._plan_summary(loaded, action),
                        "mode": loaded.link.mode.value,
                        "heads_before": {
                            "local": snapshot.local.commit_sha,
                            "github": snapshot.github.commit_sha,
                        },
                        "requests": {"total": count.total, "content_creating": count.content_creating},
                        **({"force_push": loaded.force_push} if loaded.force_push else {}),
                    },
                )
            )
            if outcome.audit:
                uow.audit.add(
                    AuditEntry(
                        "ghsync",
                        outcome.audit,
                        key,
                        {
                            "operation_id": operation_id,
                            "github_commit": outcome.github_commit,
                            **(
                                {"forced": outcome.metadata["forced"]} if "forced" in outcome.metadata else {}
                            ),
                        },
                    )
                )
            notify_outcome(
                uow,
                key,
                operation_id,
                previous,
                status=outcome.status,
                heads={"local": snapshot.local.commit_sha, "github": snapshot.github.commit_sha},
                now=self._now(),
                conflict=outcome.conflict,
                conflict_resolved=outcome.resolve_conflict and snapshot.open_conflict is not None,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                details=outcome.metadata.get("held"),
            )
            uow.requests.mark_served(key, loaded.pending, operation_id)
            uow.commit()
        log.info(
            "reconcile",
            project_id=key,
            action=action.kind.value,
            reason=action.reason,
            status=outcome.status,
            local=snapshot.local.commit_sha,
            github_before=snapshot.github.commit_sha,
            github_after=outcome.github_commit,
            requests=count.total,
            content_creating=count.content_creating,
            operation_id=operation_id,
        )
        return operation_id

    def _follow_link(self, uow: UnitOfWork, loaded: _Loaded) -> None:
        current = uow.projects.get(loaded.project.id)
        if current is None or current.link is None or current.link.repository_id != loaded.link.repository_id:
            return
        followed = replace(
            current.link,
            owner=loaded.link.owner,
            repo=loaded.link.repo,
            default_branch=loaded.link.default_branch,
        )
        if followed != current.link:
            uow.projects.save_link(loaded.project.id, followed)
            uow.audit.add(
                AuditEntry(
                    "ghsync",
                    "github.link_followed",
                    loaded.project.id,
                    {
                        "owner": followed.owner,
                        "repo": followed.repo,
                        "default_branch": followed.default_branch,
                    },
                )
            )

    def _record_idle(self, key: str, started: datetime, why: str | None) -> str | None:
        """No project (None), or nothing to sync with: record a no-op that serves the pending requests."""
        with self._uow() as uow:
            if uow.projects.get(key) is None:
                log.info("reconcile_ignored", project_id=key, why="unknown project")
                return None
            pending = uow.requests.pending(key)
            operation_id = uow.operations.add(
                SyncOperation(
                    project_id=key,
                    operation_type="reconcile",
                    status="success",
                    direction="none",
                    started_at=started,
                    completed_at=self._now(),
                    metadata={"noop": True, "why": why, "reasons": sorted({r.reason for r in pending})},
                )
            )
            uow.requests.mark_served(key, [r.id for r in pending], operation_id)
            uow.commit()
        log.info("reconcile_noop", project_id=key, why=why, requests=len(pending), operation_id=operation_id)
        return operation_id

    def _record_failure(
        self, key: str, started: datetime, error: GhsyncError, count: RequestCount, attempt: int
    ) -> None:
        with self._uow() as uow:
            if uow.projects.get(key) is None:
                return
            pending = uow.requests.pending(key)
            previous = uow.operations.latest(key)
            operation_id = uow.operations.add(
                SyncOperation(
                    project_id=key,
                    operation_type="reconcile",
                    status="failed",
                    direction="none",
                    error_code=error.code,
                    error_message=error.message[:2000],
                    retry_count=attempt,
                    started_at=started,
                    completed_at=self._now(),
                    metadata={"requests": {"total": count.total, "content_creating": count.content_creating}},
                )
            )
            notify_outcome(
                uow,
                key,
                operation_id,
                previous,
                status="failed",
                heads={},
                now=self._now(),
                error_code=error.code,
                error_message=error.message[:2000],
            )
            uow.requests.mark_served(key, [r.id for r in pending], operation_id)
            uow.commit()
        log.warning(
            "reconcile_failed",
            project_id=key,
            code=error.code,
            error=error.message,
            operation_id=operation_id,
        )


def relay_pending_requests(uow: UnitOfWorkFactory, notify: ReconcileNotifier) -> int:
    """Tell the queue again of every project with pending requests (after a crash between a commit and
    the queue, or a queue that was down); returns how many projects. Queued reconciles coalesce, so
    telling twice costs nothing."""
    with uow() as work:
        project_ids = work.requests.pending_projects()
    for project_id in project_ids:
        notify(project_id)
    return len(project_ids)
