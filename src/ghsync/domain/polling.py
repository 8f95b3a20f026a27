"""The polling safety net's pure rules: which projects to check this tick, how to batch the reads, how many
reads the rate budget allows, and whether a head read from GitHub is drift worth a reconcile.

Polling exists because webhooks can be missed ("GitHub does not automatically redeliver failed
deliveries": https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries).
Every enabled linked project is checked once per polling interval; the checks are spread over the
interval in slices, so a deployment with thousands of projects sends a steady trickle of reads instead of
a burst. The heads are read in batches (one GraphQL query reads up to 100 repositories, about one point:
https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api), and a
tick never spends the share of an installation's quota kept for the syncs themselves.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# GitHub's GraphQL node limit allows far more, but 100 repositories per query keeps one query at the
# minimum cost of 1 point (the cost is the connections' requests / 100, at least 1) and small answers.
MAX_REPOSITORIES_PER_QUERY = 100
# The shortest pause between two polling ticks: shorter intervals are polled in one slice.
MIN_TICK_SECONDS = 30.0
# At most this many slices per interval (a 5-minute interval: ten ticks, 30 s apart).
MAX_SLICES = 10
# Polling leaves this share of an installation's remaining quota to the syncs (webhook-triggered work
# and people's triggers matter more than the safety net).
DEFAULT_RESERVE_FRACTION = 0.2

DRIFT_HEAD_MOVED = "head_moved"
DRIFT_DEFAULT_BRANCH = "default_branch_changed"


@dataclass(frozen=True, slots=True)
class RemoteHead:
    """A repository's default branch as GitHub reports it now; `branch` and `sha` are None for an
    empty repository (GraphQL's `defaultBranchRef` is null then)."""

    branch: str | None
    sha: str | None


@dataclass(frozen=True, slots=True)
class HeadsRead:
    """What one batched read of default-branch heads found, and what it cost.

    `heads` holds the repositories found (missing or inaccessible ones are absent); `points` is the
    GraphQL points spent (REST reads: requests), `remaining` and `limit` the bucket after the read
    (None when GitHub did not say).
    """

    heads: dict[tuple[str, str], RemoteHead]
    points: int = 0
    remaining: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class PollTarget:
    """One enabled linked project to check: where its repository is and what we last saw there."""

    project_id: str
    installation_id: int
    owner: str
    repo: str
    default_branch: str
    last_remote_sha: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.repo)


@dataclass(frozen=True, slots=True)
class Schedule:
    """How one polling interval is cut into ticks: `slices` ticks, `tick_seconds` apart."""

    interval_seconds: float
    slices: int

    @property
    def tick_seconds(self) -> float:
        return self.interval_seconds / self.slices

    def slice_index(self, period_start_epoch: float) -> int:
        """Which slice the tick starting at `period_start_epoch` (seconds since the epoch) polls."""
        return int(period_start_epoch // self.tick_seconds) % self.slices


def schedule_for(
    interval_seconds: float, *, min_tick: float = MIN_TICK_SECONDS, max_slices: int = MAX_SLICES
) -> Schedule:
    """Cut the interval into as many slices as fit `min_tick` apart, at most `max_slices`."""
    if interval_seconds <= 0:
        raise ValueError("the polling interval must be positive")
    slices = max(1, min(max_slices, math.floor(interval_seconds / min_tick)))
    return Schedule(interval_seconds, slices)


def slice_of(project_id: str, slices: int) -> int:
    """A project's slice: a stable hash (CRC-32, the same in every process) modulo the slice count."""
    return zlib.crc32(project_id.encode()) % slices


def due(targets: Iterable[PollTarget], slice_index: int, slices: int) -> list[PollTarget]:
    """The targets this tick checks: those whose slice it is. Each is checked once per interval."""
    return [t for t in targets if slice_of(t.project_id, slices) == slice_index]


def batches(
    targets: Sequence[PollTarget], size: int = MAX_REPOSITORIES_PER_QUERY
) -> list[tuple[int, list[PollTarget]]]:
    """Group targets by installation (a query runs with one installation's token) into chunks of at most
    `size` distinct repositories; several projects linked to one repository share its read."""
    if size < 1:
        raise ValueError("a batch holds at least one repository")
    by_installation: dict[int, dict[tuple[str, str], list[PollTarget]]] = {}
    for target in targets:
        by_installation.setdefault(target.installation_id, {}).setdefault(target.key, []).append(target)
    out: list[tuple[int, list[PollTarget]]] = []
    for installation_id in sorted(by_installation):
        repos = list(by_installation[installation_id].values())
        for start in range(0, len(repos), size):
            out.append((installation_id, [t for group in repos[start : start + size] for t in group]))
    return out


def affordable(
    wanted: int,
    *,
    remaining: int | None,
    reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
    limit: int | None = None,
) -> int:
    """How many of `wanted` one-point reads fit the budget: never below the reserve kept for syncs
    (`reserve_fraction` of the quota's `limit`, or of `remaining` when the limit is unknown).

    An unknown quota (`remaining` None: nothing read yet this hour) allows them all; the first answer
    tells the real figure.
    """
    if wanted <= 0:
        return 0
    if remaining is None:
        return wanted
    reserve = math.ceil(reserve_fraction * (limit if limit is not None else remaining))
    return max(0, min(wanted, remaining - reserve))


def drift(target: PollTarget, head: RemoteHead) -> str | None:
    """Why `head` calls for a reconcile, or None when GitHub is where we last saw it.

    Either the default branch's head is not the `last_remote_main_sha` we recorded (a push, a merge or a
    force-push we did not hear of), or the default branch itself was renamed or switched.
    """
    if head.branch is not None and head.branch != target.default_branch:
        return DRIFT_DEFAULT_BRANCH
    if head.sha != target.last_remote_sha:
        return DRIFT_HEAD_MOVED
    return None


__all__ = [
    "DEFAULT_RESERVE_FRACTION",
    "DRIFT_DEFAULT_BRANCH",
    "DRIFT_HEAD_MOVED",
    "MAX_REPOSITORIES_PER_QUERY",
    "MAX_SLICES",
    "MIN_TICK_SECONDS",
    "HeadsRead",
    "PollTarget",
    "RemoteHead",
    "Schedule",
    "affordable",
    "batches",
    "drift",
    "due",
    "schedule_for",
    "slice_of",
]
