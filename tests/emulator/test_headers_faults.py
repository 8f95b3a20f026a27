"""Headers and limits: rate limit budget, ETag/304 (not charged), Link pagination, request ids,
the /api/v3 prefix, fault injection and the request log."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Installed, api
from github_emulator.testing import run_emulator


def test_rate_limit_etag_and_304(installed: Installed) -> None:
    c = installed.client
    first = c.get("/repos/octo/hello")
    assert first.headers["x-ratelimit-limit"] == "5000"
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert first.headers["x-github-request-id"]
    etag = first.headers["etag"]
    cached = c.get("/repos/octo/hello", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert int(cached.headers["x-ratelimit-remaining"]) == remaining  # 304s are free
    assert int(c.get("/repos/octo/hello").headers["x-ratelimit-remaining"]) == remaining - 1


def test_rate_limit_budget_exhausts(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e", rate_limit=3) as emu:
        app = emu.create_app("rl")
        emu.create_repo("o", "r", files={"a": "a"})
        inst = emu.create_installation(app.id, "o", ["o/r"])
        token = emu.installation_token(app, inst)
        with api(emu, token) as c:
            codes = [c.get("/repos/o/r").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 403]
            limited = c.get("/repos/o/r")
            assert limited.headers["x-ratelimit-remaining"] == "0"
            assert limited.json()["message"] == f"API rate limit exceeded for installation ID {inst}."


def test_link_pagination_and_api_v3_prefix(installed: Installed) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    for i in range(5):
        c.post("/repos/octo/hello/git/refs", json={"ref": f"refs/heads/b{i}", "sha": head})
    page1 = c.get("/api/v3/repos/octo/hello/branches?per_page=2")
    assert len(page1.json()) == 2
    assert 'rel="next"' in page1.headers["link"] and 'rel="last"' in page1.headers["link"]
    last = c.get("/repos/octo/hello/branches?per_page=2&page=3")
    assert [b["name"] for b in last.json()] == ["b4", "main"]  # six branches, pages of two
    assert 'rel="prev"' in last.headers["link"] and 'rel="next"' not in last.headers["link"]


def test_faults_and_request_log(installed: Installed) -> None:
    emu, c = installed.emu, installed.client
    emu.clear_requests()
    emu.add_fault(r"^/repos/octo/hello$", status=502, count=1)
    emu.add_fault(
        r"/git/refs",
        method="PATCH",
        status=403,
        body={"message": "You have exceeded a secondary rate limit."},
        headers={"Retry-After": "7"},
        count=1,
    )
    assert c.get("/repos/octo/hello").status_code == 502
    assert c.get("/repos/octo/hello").status_code == 200  # the fault was spent
    limited = c.patch("/repos/octo/hello/git/refs/heads/main", json={"sha": "0" * 40})
    assert limited.status_code == 403 and limited.headers["retry-after"] == "7"
    emu.add_fault(r"^/repos/octo/hello$", delay_ms=300, count=1)
    started = time.monotonic()
    assert c.get("/repos/octo/hello").status_code == 200
    assert time.monotonic() - started >= 0.3
    emu.add_fault(r".*", status=500, count=5)
    emu.clear_faults()
    assert c.get("/repos/octo/hello").status_code == 200
    log = emu.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/repos/octo/hello", 502),
        ("GET", "/repos/octo/hello", 200),
        ("PATCH", "/repos/octo/hello/git/refs/heads/main", 403),
        ("GET", "/repos/octo/hello", 200),
        ("GET", "/repos/octo/hello", 200),
    ]
    assert log[1]["installation_id"] == installed.installation_id


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e") as emu:
        user = emu.create_user("mona")
        emu.create_repo("mona", "keep", files={"k.txt": "k"})
    with run_emulator(tmp_path / "e") as emu, api(emu, user.token) as c:
        assert c.get("/repos/mona/keep/contents/k.txt").status_code == 200
        emu.reset()
        assert c.get("/repos/mona/keep").status_code == 401  # the user is gone too
