"""Issue 8, item 15: the request log that benchmarks and tests count with.

Every row carries the query string, the duration and the installation id (faulted and redirected
rows included); git smart HTTP operations are rows with their service and ref updates; and
``GET /_emulator/requests/summary`` counts per installation and route, and content creation.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from conftest import Installed
from github_emulator.testing import person_git_env


def _git(cwd: Path, *args: str) -> str:
    env = person_git_env(cwd)
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_rows_have_query_duration_route_and_installation_even_when_faulted(installed: Installed) -> None:
    emu, c, inst = installed.emu, installed.client, installed.installation_id
    emu.clear_requests()
    assert c.get("/repos/octo/hello/commits", params={"per_page": "1", "sha": "main"}).status_code == 200
    emu.add_fault(r"^/repos/octo/hello/branches$", status=502)
    assert c.get("/api/v3/repos/octo/hello/branches?per_page=5").status_code == 502
    rows = emu.requests()
    assert [(r["method"], r["path"], r["query"], r["status"]) for r in rows] == [
        ("GET", "/repos/octo/hello/commits", "per_page=1&sha=main", 200),
        ("GET", "/repos/octo/hello/branches", "per_page=5", 502),
    ]
    assert all(r["installation_id"] == inst for r in rows)
    assert all(isinstance(r["duration_ms"], float) and r["duration_ms"] > 0 for r in rows)
    assert rows[0]["route"] == "/repos/{owner}/{repo}/commits" and rows[0]["fault"] is None
    assert rows[1]["route"] == "/repos/{owner}/{repo}/branches" and rows[1]["fault"] == "status"
    assert [r["kind"] for r in rows] == ["rest", "rest"]


def test_redirected_and_unauthenticated_rows(installed: Installed) -> None:
    emu, c, inst = installed.emu, installed.client, installed.installation_id
    assert c.patch("/repos/octo/hello", json={"name": "hello2"}).status_code == 200
    emu.clear_requests()
    with httpx.Client(base_url=emu.url, trust_env=False, follow_redirects=False) as raw:
        moved = raw.get("/repos/octo/hello?x=1", headers={"Authorization": f"token {installed.token}"})
        assert moved.status_code == 301
        assert raw.get("/repos/octo/hello2", headers={"Authorization": "token nope"}).status_code == 401
    redirected, refused = emu.requests()
    assert (redirected["status"], redirected["installation_id"], redirected["query"]) == (301, inst, "x=1")
    assert (refused["status"], refused["installation_id"]) == (401, None)


def test_git_operations_are_logged_with_service_and_ref_updates(installed: Installed, tmp_path: Path) -> None:
    emu, inst = installed.emu, installed.installation_id
    emu.clear_requests()
    work = tmp_path / "w"
    _git(tmp_path, "clone", "-q", emu.git_url("octo", "hello", installed.token), str(work))
    before = _git(work, "rev-parse", "HEAD")
    (work / "n.txt").write_text("n\n")
    _git(work, "add", "n.txt")
    _git(work, "commit", "-q", "-m", "n")
    after = _git(work, "rev-parse", "HEAD")
    _git(work, "push", "-q", "origin", "main", "HEAD:refs/heads/topic")
    rows = [r for r in emu.requests() if r["kind"] == "git"]
    services = [(r["method"], r["service"], r["status"]) for r in rows]
    assert ("GET", "git-upload-pack", 200) in services  # info/refs?service=git-upload-pack
    assert ("POST", "git-upload-pack", 200) in services
    pushes = [r for r in rows if r["method"] == "POST" and r["service"] == "git-receive-pack"]
    assert len(pushes) == 1
    push = pushes[0]
    assert push["installation_id"] == inst and push["route"] == "/{owner}/{repo}.git/git-receive-pack"
    assert push["ref_updates"] == [
        {"ref": "refs/heads/main", "before": before, "after": after},
        {"ref": "refs/heads/topic", "before": "0" * 40, "after": after},
    ]
    assert all(r["ref_updates"] == [] for r in rows if r is not push)
    assert not any(r["content_creating"] for r in rows)  # git traffic is not REST content creation


def test_summary_counts_per_installation_and_route(installed: Installed) -> None:
    emu, c, inst = installed.emu, installed.client, installed.installation_id
    emu.clear_requests()
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    c.get("/repos/octo/hello/git/ref/heads/main")
    for name in ("a", "b"):
        assert (
            c.post("/repos/octo/hello/git/refs", json={"ref": f"refs/heads/{name}", "sha": head}).status_code
            == 201
        )
    assert c.delete("/repos/octo/hello/git/refs/heads/a").status_code == 204
    with httpx.Client(base_url=emu.url, trust_env=False) as anonymous:
        anonymous.get("/repos/octo/hello")
    summary = emu.requests_summary()
    assert summary["requests"] == 6 and summary["content_creating"] == 3 and summary["faulted"] == 0
    assert summary["by_kind"] == {"rest": 6}
    assert summary["routes"]["POST /repos/{owner}/{repo}/git/refs"] == {
        "requests": 2,
        "content_creating": 2,
        "faulted": 0,
    }
    assert summary["routes"]["GET /repos/{owner}/{repo}/git/ref/{ref}"]["requests"] == 2
    ours, anonymous_entry = summary["installations"]
    assert ours["installation_id"] == inst and ours["requests"] == 5 and ours["content_creating"] == 3
    assert ours["routes"]["DELETE /repos/{owner}/{repo}/git/refs/{ref}"]["content_creating"] == 1
    assert anonymous_entry["installation_id"] is None and anonymous_entry["requests"] == 1
