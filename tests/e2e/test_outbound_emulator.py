"""Outbound sync end to end: local versions become GitHub commits and pull requests in the emulator.

The engine is wired as the worker wires it (the real `GitHubAppClient` over loopback HTTP, SQLite,
`GitStore`), and the emulator plays GitHub: one per module, a repository per test. These tests prove
over HTTP what tests/unit/test_reconcile_engine.py proves on the in-memory twins, and every test ends
with a `git clone` of the repository holding exactly the expected tree, with `git fsck --strict` clean.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from outbound_support import TRANSPORTS, Outbound, outbound_world

from github_emulator.testing import run_emulator

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\x00\xff\r\n\x1a"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbound]:
    tmp = tmp_path_factory.mktemp("outbound")
    with run_emulator(tmp / "emulator") as emu, outbound_world(tmp, emu) as world:
        yield world


@pytest.fixture(autouse=True)
def _no_faults_left(world: Outbound) -> Iterator[None]:
    yield
    world.emu.clear_faults()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- one version, one commit -----------------------------------------------------------------------------


def test_a_multi_file_version_is_one_commit_holding_every_file(world: Outbound, transport: str) -> None:
    project, repo = world.linked({"index.html": "<h1>old</h1>\n", "css/site.css": "body {}\n"})
    before = world.head(repo, "main")
    assert before is not None
    files = {f"pages/{n:02}.md": f"# Page {n}\n".encode() for n in range(12)}
    files["index.html"] = b"<h1>new</h1>\n"
    version = world.write(project, files, message="Twelve pages")
    world.engine(transport).reconcile(project)

    after = world.head(repo, "main")
    assert after is not None and world.commits_between(repo, before, after) == [after]
    commit = world.commit(repo, after)
    assert [p["sha"] for p in commit["parents"]] == [before]  # on top of GitHub's head: no force
    assert commit["message"] == f"Twelve pages\n\nGhsync-Version: {version}\n"
    assert (commit["author"]["name"], commit["author"]["email"]) == ("Ada Lovelace", "ada@example.com")
    operation = world.last_operation(project)
    assert (operation.operation_type, operation.status, operation.github_commit_sha) == (
        "push_direct",
        "success",
        after,
    )
    assert operation.metadata["transport"] == transport
    world.assert_github_holds(project, repo, "main")
    # Our own commit coming back is a no-op.
    world.engine(transport).reconcile(project)
    assert world.last_operation(project).operation_type == "nothing"
    assert world.head(repo, "main") == after
