"""Issue 8, item 2: compare returns the newest 250 commits without paging, paginates in
chronological order with ``Link`` headers, counts every commit in ``total_commits``, lists at most
300 files on the first page only, and answers unrelated histories with GitHub's 404."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from round2_support import git

from conftest import api
from github_emulator.testing import run_emulator

R = "/repos/octo/long"
COMMITS = 260  # more than GitHub's 250 without paging
FILES = 310  # more than GitHub's 300


@dataclass
class History:
    gh: httpx.Client
    shas: list[str]  # the commits of main...long, oldest first


def _fast_import(work: Path) -> None:
    """``long`` gets COMMITS commits on top of ``main`` (the first adds FILES files); ``orphan``
    shares no history with them. One git process, so building it takes well under a second."""
    lines = ["reset refs/heads/long", "from refs/heads/main"]
    for n in range(COMMITS):
        lines += [
            "commit refs/heads/long",
            f"mark :{n + 1}",
            f"committer Mona <mona@example.com> {1700000000 + n} +0000",
        ]
        message = f"commit {n}"
        lines += [f"data {len(message)}", message]
        if n == 0:
            for f in range(FILES):
                content = f"file {f}\n"
                lines += [f"M 100644 inline many/f{f:03d}.txt", f"data {len(content)}", content.rstrip("\n")]
        else:
            content = f"{n}\n"
            lines += ["M 100644 inline counter.txt", f"data {len(content)}", content.rstrip("\n")]
    message = "orphan"
    lines += ["commit refs/heads/orphan", "committer Mona <mona@example.com> 1700000000 +0000"]
    lines += [f"data {len(message)}", message, "M 100644 inline other.txt", "data 1", "o"]
    git(work, "fast-import", "--quiet", stdin="\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    tmp = Path(tmp_path_factory.mktemp("compare"))
    with run_emulator(tmp / "emulator") as emu:
        user = emu.create_user("octo")
        emu.create_repo("octo", "long", files={"README.md": "# long\n"})
        url = emu.git_url("octo", "long", user.token, user="octo")
        work = tmp / "work"
        git(tmp, "clone", "-q", url, str(work))
        _fast_import(work)
        git(work, "push", "-q", "origin", "long", "orphan")
        shas = git(work, "rev-list", "--reverse", "main..long").stdout.split()
        assert len(shas) == COMMITS
        with api(emu, user.token) as gh:
            yield History(gh, shas)


def test_without_paging_the_newest_250_commits_and_the_true_total(history: History) -> None:
    answer = history.gh.get(f"{R}/compare/main...long")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["ahead_by"], body["total_commits"]) == ("ahead", COMMITS, COMMITS)
    assert [c["sha"] for c in body["commits"]] == history.shas[-250:]
    assert body["commits"][-1]["sha"] == history.shas[-1]  # the last is the most recent
    assert len(body["files"]) == 300
    assert "link" not in answer.headers


def test_paging_runs_in_chronological_order_with_link_headers(history: History) -> None:
    first = history.gh.get(f"{R}/compare/main...long", params={"per_page": 100})
    assert first.status_code == 200
    assert [c["sha"] for c in first.json()["commits"]] == history.shas[:100]
    assert first.json()["total_commits"] == COMMITS
    assert len(first.json()["files"]) == 300
    links = first.headers["link"]
    assert 'rel="next"' in links and "page=2" in links and 'rel="last"' in links and "page=3" in links

    seen: list[str] = []
    url: str | None = f"{R}/compare/main...long?per_page=100"
    pages = 0
    while url:
        page = history.gh.get(url)
        seen += [c["sha"] for c in page.json()["commits"]]
        if pages > 0:
            assert page.json()["files"] == []  # files only on the first page
        pages += 1
        url = page.links.get("next", {}).get("url")
    assert pages == 3
    assert seen == history.shas

    default = history.gh.get(f"{R}/compare/main...long", params={"page": 2})
    assert [c["sha"] for c in default.json()["commits"]] == history.shas[30:60]  # per_page 30


def test_unrelated_histories_answer_githubs_404(history: History) -> None:
    answer = history.gh.get(f"{R}/compare/main...orphan")
    assert answer.status_code == 404
    assert answer.json()["message"] == "No common ancestor between main and orphan."
    assert history.gh.get(f"{R}/compare/main...nope").json()["message"] == "Not Found"
