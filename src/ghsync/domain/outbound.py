"""Outbound planning: which entries a GitHub tree request carries, in how many chunks, what GitHub would
refuse, and the commit and pull-request texts (pure, no I/O).

Only what changed travels: the plan compares GitHub's current tree with the local one by blob SHA. A
blob GitHub already has (in its tree, say a rename) is referenced by SHA; text goes inline as the tree
entry's `content` (no blob request); other blobs are uploaded first. Deletions are `sha: null`.
https://docs.github.com/en/rest/git/trees#create-a-tree
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ghsync.domain.link import Blocker
from ghsync.domain.models import FileMode
from ghsync.domain.trees import FlatTree

MIB = 1024 * 1024

# GitHub refuses files over 100 MiB and warns over 50 MiB:
# https://docs.github.com/en/repositories/working-with-files/managing-large-files/about-large-files-on-github
GITHUB_HARD_LIMIT = 100 * MIB

# A Git LFS pointer file starts with this line: https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_SIZE = 1024  # the spec's pointers are well under 200 bytes

# git's own binary heuristic: a NUL in the first 8000 bytes.
_BINARY_SNIFF = 8000

TRAILER_VERSION = "Ghsync-Version"


class WriteKind(StrEnum):
    DELETE = "delete"  # sha: null
    REFERENCE = "reference"  # GitHub has the blob: refer to it by SHA
    INLINE = "inline"  # text sent as the entry's content
    UPLOAD = "upload"  # a blob request first, then refer to it


@dataclass(frozen=True, slots=True)
class BlobFacts:
    """What planning needs to know of a local blob (read once by the engine)."""

    size: int
    text: bool  # valid UTF-8 without NUL: can travel inline
    lfs_pointer: bool = False


def blob_facts(content: bytes) -> BlobFacts:
    head = content[:_BINARY_SNIFF]
    text = b"\x00" not in head
    if text:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            text = False
    lfs = len(content) <= LFS_POINTER_MAX_SIZE and content.startswith(LFS_POINTER_PREFIX)
    return BlobFacts(size=len(content), text=text, lfs_pointer=lfs)


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One entry of a tree request. `size` is what it adds to the request body (inline text bytes)."""

    path: str
    kind: WriteKind
    mode: FileMode = FileMode.REGULAR
    sha: str | None = None  # the blob (None for a deletion)
    size: int = 0


@dataclass(frozen=True, slots=True)
class OutboundPlan:
    writes: tuple[PlannedWrite, ...]

    @property
    def uploads(self) -> tuple[PlannedWrite, ...]:
        return tuple(w for w in self.writes if w.kind is WriteKind.UPLOAD)

    @property
    def inline_bytes(self) -> int:
        return sum(w.size for w in self.writes if w.kind is WriteKind.INLINE)

    @property
    def upload_bytes(self) -> int:
        return sum(w.size for w in self.uploads)


def plan_writes(
    remote: FlatTree,
    local: FlatTree,
    facts: Mapping[str, BlobFacts],
    *,
    inline_limit: int = MIB,
) -> OutboundPlan:
    """The entries that turn GitHub's tree `remote` into `local`: deletions first, then by path.

    `facts` holds every local blob that GitHub's tree lacks, by SHA. Text up to `inline_limit` bytes goes
    inline; anything else GitHub lacks is uploaded (each distinct blob once).
    """
    have = {entry.sha for entry in remote.values()}
    writes: list[PlannedWrite] = []
    uploaded: set[str] = set()
    for path in sorted(set(remote) | set(local)):
        old, new = remote.get(path), local.get(path)
        if new is None:
            writes.append(PlannedWrite(path, WriteKind.DELETE))
            continue
        if old is not None and (old.sha, old.mode) == (new.sha, new.mode):
            continue
        if new.sha in have or new.sha in uploaded:
            writes.append(PlannedWrite(path, WriteKind.REFERENCE, new.mode, new.sha))
            continue
        fact = facts[new.sha]
        if fact.text and fact.size <= inline_limit:
            writes.append(PlannedWrite(path, WriteKind.INLINE, new.mode, new.sha, fact.size))
        else:
            uploaded.add(new.sha)
            writes.append(PlannedWrite(path, WriteKind.UPLOAD, new.mode, new.sha, fact.size))
    # Deletions first: a file replacing a directory (or the reverse) must not meet the old entries still
    # there, and GitHub applies a tree request's entries in order (the emulator answers 422
    # "GitRPC::BadObjectState" otherwise; the docs do not say, so order them for either reading).
    writes.sort(key=lambda w: (w.kind is not WriteKind.DELETE, w.path))
    return OutboundPlan(tuple(writes))


def chunk_writes(
    writes: Sequence[PlannedWrite], *, max_entries: int, max_bytes: int
) -> list[list[PlannedWrite]]:
    """Split a tree request so that no chunk has more than `max_entries` entries or `max_bytes` of inline
    content (GITHUB_SYNC_TREE_SIZE_LIMIT, GITHUB_SYNC_TREE_SIZE_MB); chunks chain through `base_tree`.

    One entry bigger than `max_bytes` gets a chunk of its own (it cannot be split).
    """
    if max_entries < 1 or max_bytes < 1:
        raise ValueError("chunk limits must be positive")
    chunks: list[list[PlannedWrite]] = []
    current: list[PlannedWrite] = []
    size = 0
    for write in writes:
        if current and (len(current) >= max_entries or size + write.size > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(write)
        size += write.size
    if current:
        chunks.append(current)
    return chunks


def find_blockers(
    changed: Iterable[tuple[str, BlobFacts]],
    *,
    max_file_size: int,
    gitattributes: str | None = None,
) -> tuple[Blocker, ...]:
    """What GitHub would refuse in a change: files over the limit, LFS pointers and LFS filters.

    ghsync moves plain git objects only; GitHub stores LFS content apart (and we serve none), so a
    pointer would reach GitHub as a dangling reference.
    https://docs.github.com/en/repositories/working-with-files/managing-large-files/about-git-large-file-storage
    """
    limit = min(max_file_size, GITHUB_HARD_LIMIT)
    blockers: list[Blocker] = []
    for path, fact in sorted(changed):
        if fact.size > limit:
            blockers.append(
                Blocker(
                    "file_too_large",
                    f"{path} is {fact.size / MIB:.1f} MiB; GitHub refuses files over {limit / MIB:.0f} MiB. "
                    "Remove it from the project or keep it out of the repository, then create a new version.",
                    path,
                )
            )
        elif fact.lfs_pointer:
            blockers.append(
                Blocker(
                    "lfs_pointer",
                    f"{path} is a Git LFS pointer; ghsync syncs file contents, not LFS objects. Store the "
                    "file itself in the project (it is synced as a regular file), then create a new version.",
                    path,
                )
            )
    if gitattributes and any("filter=lfs" in line.split("#", 1)[0] for line in gitattributes.splitlines()):
        blockers.append(
            Blocker(
                "lfs_filter",
                ".gitattributes routes files through the Git LFS filter, which ghsync does not run. Remove "
                "the `filter=lfs` attributes (files then sync as regular files), then create a new version.",
                ".gitattributes",
            )
        )
    return tuple(blockers)


def size_warnings(changed: Iterable[tuple[str, BlobFacts]], warn_size: int) -> list[str]:
    """A warning per file over `warn_size` (GitHub warns about files over 50 MiB), for the operation row."""
    return [
        f"{path} is {fact.size / MIB:.1f} MiB; GitHub warns about files over {warn_size / MIB:.0f} MiB"
        for path, fact in sorted(changed)
        if fact.size > warn_size
    ]


def outbound_message(message: str, version_id: str) -> str:
    """The GitHub commit message: the version's, ending with the trailer that maps it back to the version,
    so the sync pairs can be rebuilt from history alone."""
    return f"{message.rstrip()}\n\n{TRAILER_VERSION}: {version_id}\n"


def version_of_message(message: str) -> str | None:
    """The version id a commit message's `Ghsync-Version` trailer names, if any (the last one wins)."""
    found = None
    for line in message.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key == TRAILER_VERSION and value.strip():
            found = value.strip()
    return found


@dataclass(frozen=True, slots=True)
class PullRequestText:
    title: str
    body: str


def pull_request_text(
    project_name: str, versions: Sequence[tuple[int, str]], paths: Sequence[tuple[str, str]]
) -> PullRequestText:
    """The PR's title and body: the versions it carries (number, first line of message) and the changed
    files (status, path), capped so the body stays well under GitHub's 65,536-character limit."""
    lines = [f"Changes made in **{project_name}**, synced by ghsync.", "", "### Versions", ""]
    for number, message in versions[-50:]:
        first = message.strip().splitlines()[0] if message.strip() else ""
        lines.append(f"- v{number}: {first[:200]}")
    if len(versions) > 50:
        lines.append(f"- ... and {len(versions) - 50} earlier versions")
    lines += ["", f"### Files ({len(paths)})", ""]
    for status, path in paths[:300]:
        lines.append(f"- {status}: `{path[:300]}`")
    if len(paths) > 300:
        lines.append(f"- ... and {len(paths) - 300} more")
    return PullRequestText(title=f"ghsync: changes from {project_name}"[:256], body="\n".join(lines) + "\n")


# ---- the transport rule ----------------------------------------------------------------------------


class Transport(StrEnum):
    """How a change reaches GitHub."""

    GIT_DATA_API = "git_data_api"  # REST: blobs GitHub lacks, tree(s), one commit, PATCH of the ref
    GIT = "git"  # git smart HTTP: the commit built locally, one fetch (when needed) and one push


@dataclass(frozen=True, slots=True)
class ChangeShape:
    """What a change would cost on the Git Data API: the tree entries it writes, the text bytes that go
    inline, and the blobs GitHub lacks (each one a content-creating request, base64 in JSON)."""

    files: int
    inline_bytes: int
    missing_blobs: int
    missing_blob_bytes: int
    repository_empty: bool = False

    @classmethod
    def of(cls, plan: OutboundPlan, *, repository_empty: bool = False) -> ChangeShape:
        return cls(
            files=len(plan.writes),
            inline_bytes=plan.inline_bytes,
            missing_blobs=len(plan.uploads),
            missing_blob_bytes=plan.upload_bytes,
            repository_empty=repository_empty,
        )


@dataclass(frozen=True, slots=True)
class TransportThresholds:
    """From when on a change goes by git (the GHSYNC_GIT_TRANSPORT_* settings); any one reached is enough.

    The Git Data API sends 3 content-creating requests (tree, commit, ref) plus one per blob GitHub
    lacks, and GitHub asks for a second between such requests
    (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api); git
    moves any number of objects in one pack, none of its requests counted against the content-creation
    limit (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits).

    The defaults come from bench/outbound.py (figures of one run against the emulator on 2 cores,
    2026-12-01, client unpaced; "paced" adds production's second between writes):
    - Git costs 4 requests (6 when GitHub's head must be fetched first), 0 content-creating, and 1-4 s
      of wall time for 1 to 1,000 files, almost all of it the server's push handling (a raw `git push`
      of the same change took 1.3-3.1 s in the same run).
    - Text on the Git Data API costs 5 requests (3 writes) whatever N: 0.2-0.3 s for 1-10 files, 1.0 s
      (3.0 s paced) for 100, 5.2 s (7.2 s paced) for 1,000 files of 170 KB inline, against 2.9 s
      by git. So from 100 files git is no slower even paced, and far cheaper in writes: `min_files`
      100. The tree request's time grows with its inline bytes; `min_inline_bytes` 256 KiB is just
      above what the 1,000-file case sent, where git was already 1.8x faster.
    - Binary files: each blob GitHub lacks is one more write: 5 blobs made 8 writes (7.6 s paced),
      50 made 53 (57 s paced), 500 made 503 (34 s unpaced, and past GitHub's 80 writes a minute),
      against 2-4 s and 0 writes by git. One blob costs one request more than a text change, about
      even with git's push (which may need a fetch after an import over REST): `min_missing_blobs` 2.
    - `min_missing_blob_bytes` is not measured by the bench: 1 MiB, the Git Data API's inline limit,
      since a blob travels there base64-encoded in JSON (4/3 of its size) where git sends it deflated.
    """

    enabled: bool = True
    min_files: int = 100
    min_inline_bytes: int = 256 * 1024
    min_missing_blobs: int = 2
    min_missing_blob_bytes: int = 1024 * 1024


def choose_transport(shape: ChangeShape, thresholds: TransportThresholds) -> Transport:
    """The transport for one change (pure).

    An empty repository takes git whatever the shape: the Git Data API answers 409 "Git Repository is
    empty." there (https://docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database).
    Without git (disabled) everything else goes through the Git Data API.
    """
    if shape.repository_empty:
        return Transport.GIT
    if not thresholds.enabled:
        return Transport.GIT_DATA_API
    if (
        shape.files >= thresholds.min_files
        or shape.inline_bytes >= thresholds.min_inline_bytes
        or shape.missing_blobs >= thresholds.min_missing_blobs
        or shape.missing_blob_bytes >= thresholds.min_missing_blob_bytes
    ):
        return Transport.GIT
    return Transport.GIT_DATA_API


def inbound_by_git(*, importing: bool, missing_blobs: int, thresholds: TransportThresholds) -> bool:
    """Whether GitHub's new head comes in by a git fetch rather than REST (one request per blob).

    A first import always goes by git (the whole repository in one pack); otherwise git from the number
    of blobs the store lacks that makes REST's per-blob requests the costlier way (the same
    `min_missing_blobs` as outbound: a fetch costs 2 requests, REST one per blob).
    """
    if not thresholds.enabled:
        return False
    return importing or missing_blobs >= max(2, thresholds.min_missing_blobs)
