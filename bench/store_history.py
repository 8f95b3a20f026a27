"""Benchmark (not a test): what reading a long history costs the local store, whole (`list_versions`)
and lazily (`iter_versions`, stopped at the version looked for).

Every reconcile of a project with an open pull request asks whether the PR branch holds one of the
project's versions; the branch nearly always holds a recent one. The bench writes a history of VERSIONS
versions (with git fast-import, each commit carrying ghsync's trailers), then times, median of ROUNDS:
the whole list; finding the newest version's tree lazily; finding the oldest's (the worst case, the
whole history read).

Writes bench/results/store_history.json. Run: .venv/bin/python bench/store_history.py (seconds).
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _results import write_results

from ghsync.adapters.store.git_store import GitStore
from ghsync.ports.store import VersionStore

RESULTS = Path(__file__).parent / "results" / "store_history.json"
VERSIONS = 30_000
ROUNDS = 5


def write_history(store: GitStore, project_id: str) -> None:
    """VERSIONS commits on the project's branch, numbered by their trailers as the store numbers them."""
    workdir = store.project_dir(project_id)
    ref = subprocess.run(
        ["git", "symbolic-ref", "HEAD"], cwd=workdir, capture_output=True, text=True, check=True
    ).stdout.strip()
    stream = []
    for n in range(1, VERSIONS + 1):
        message = (
            f"Change {n}\n\nGhsync-Version: {uuid.uuid4()}\nGhsync-Source: local\nGhsync-Number: {n}\n"
        ).encode()
        content = f"version {n}\n".encode()
        stream.append(
            b"commit %s\ncommitter Ada <ada@example.com> %d +0000\n" % (ref.encode(), 1_700_000_000 + n)
        )
        stream.append(
            b"data %d\n%s\nM 100644 inline f.txt\ndata %d\n%s\n"
            % (len(message), message, len(content), content)
        )
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(stream), cwd=workdir, check=True)


def median_ms(work: Callable[[], object]) -> float:
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return round(statistics.median(seconds) * 1000, 2)


def find(store: VersionStore, project_id: str, tree_sha: str) -> None:
    assert any(version.tree_sha == tree_sha for version in store.iter_versions(project_id))


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = GitStore(Path(tmp), max_file_size=1 << 20)
        project_id = str(uuid.uuid4())
        store.init_project(project_id)
        write_history(store, project_id)
        versions = store.list_versions(project_id)
        assert len(versions) == VERSIONS and versions[0].number == VERSIONS
        newest, oldest = versions[0].tree_sha, versions[-1].tree_sha
        figures = {
            "versions": VERSIONS,
            "list_versions_ms": median_ms(lambda: store.list_versions(project_id)),
            "iter_versions_to_the_newest_ms": median_ms(lambda: find(store, project_id, newest)),
            "iter_versions_to_the_oldest_ms": median_ms(lambda: find(store, project_id, oldest)),
        }
    for name, value in figures.items():
        print(f"{name:32} {value}")
    write_results(RESULTS, time.perf_counter() - started, **figures)


if __name__ == "__main__":
    main()
