"""Issue 8, item 10: secondary rate limits enforced by the emulator, primary quota per installation.

The rules are pure (``github_emulator.ratelimits``) and tested on a fake clock; the served
behaviour is tested end to end with small configured limits, and each refusal body is validated
against GitHub's OpenAPI description.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from conftest import api
from github_emulator.ratelimits import (
    SecondaryLimits,
    TrafficState,
    installation_quota,
    is_content_creating,
)
from github_emulator.testing import EmulatorHandle, run_emulator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("repositories", "quota"),
    [(0, 5000), (20, 5000), (21, 5050), (100, 9000), (150, 11_500), (170, 12_500), (1000, 12_500)],
)
def test_installation_quota_follows_githubs_formula(repositories: int, quota: int) -> None:
    assert installation_quota(repositories) == quota


@pytest.mark.parametrize(
    ("method", "path", "creating"),
    [
        ("POST", "/repos/o/r/git/blobs", True),
        ("PATCH", "/repos/o/r/git/refs/heads/main", True),
        ("PUT", "/repos/o/r/contents/a.txt", True),
        ("DELETE", "/repos/o/r/git/refs/heads/x", True),
        ("GET", "/repos/o/r", False),
        ("POST", "/app/installations/7/access_tokens", False),
        ("POST", "/graphql", False),
        ("POST", "/app/hook/deliveries/12/attempts", False),
    ],
)
def test_what_counts_as_content_creation(method: str, path: str, creating: bool) -> None:
    assert is_content_creating(method, path) is creating


def test_content_creation_windows_per_minute_and_per_hour() -> None:
    clock = Clock()
    state = TrafficState(clock)
    limits = SecondaryLimits(content_per_minute=3, content_per_hour=5, max_concurrent=100)
    assert [state.admit("i:1", True, limits) is None for _ in range(3)] == [True, True, True]
    refused = state.admit("i:1", True, limits)
    assert refused is not None and refused.reason == "content_per_minute" and refused.retry_after == 61
    assert state.admit("i:1", False, limits) is None  # reads are not content creation
    assert state.admit("i:2", True, limits) is None  # counted per caller
    clock.now += 61
    assert state.admit("i:1", True, limits) is None
    assert state.admit("i:1", True, limits) is None
    refused = state.admit("i:1", True, limits)
    assert refused is not None and refused.reason == "content_per_hour"
    assert refused.retry_after == 3600 - 61 + 1
    clock.now += 3600
    assert state.admit("i:1", True, limits) is None


def test_concurrency_limit() -> None:
    state = TrafficState(Clock())
    limits = SecondaryLimits(max_concurrent=2)
    assert state.enter("k") == 1 and state.enter("k") == 2
    assert state.admit("k", False, limits) is None
    state.enter("k")
    refused = state.admit("k", False, limits)
    assert refused is not None and refused.reason == "concurrency"
    state.leave("k")
    assert state.admit("k", False, limits) is None


def _installed(emu: EmulatorHandle, repos: int = 1) -> tuple[int, str]:
    app = emu.create_app("limits")
    names = [f"o/r{i}" for i in range(repos)]
    emu.create_repo("o", "r0", files={"a.txt": "a\n"})
    for name in names[1:]:
        emu.create_repo("o", name.split("/")[1])
    inst = emu.create_installation(app.id, "o", names)
    return inst, emu.installation_token(app, inst)


@pytest.mark.parametrize(("status", "retry_after"), [(403, True), (429, False)])
def test_content_creation_limit_is_served(tmp_path: Path, status: int, retry_after: bool) -> None:
    with run_emulator(
        tmp_path / "e",
        secondary_rate_limits=True,
        content_creation_per_minute=3,
        secondary_limit_status=status,
        secondary_retry_after=retry_after,
    ) as emu:
        inst, token = _installed(emu)
        with api(emu, token) as c:
            codes = [c.post("/repos/o/r0/git/blobs", json={"content": f"{i}"}).status_code for i in range(4)]
            assert codes == [201, 201, 201, status]
            refused = c.post("/repos/o/r0/git/blobs", json={"content": "x"})
            assert refused.status_code == status
            assert refused.json()["message"].startswith("You have exceeded a secondary rate limit.")
            assert ("retry-after" in refused.headers) is retry_after
            if retry_after:
                assert 1 <= int(refused.headers["retry-after"]) <= 61
            # Not a primary limit: the quota is not spent, which is how clients tell them apart.
            assert int(refused.headers["x-ratelimit-remaining"]) > 0
            assert c.get("/repos/o/r0").status_code == 200  # reads still pass
        rows = [r for r in emu.requests() if r["fault"]]
        assert {r["fault"] for r in rows} == {"secondary_rate_limit:content_per_minute"}
        assert all(r["installation_id"] == inst for r in rows)


def test_secondary_limits_are_off_by_default(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e", content_creation_per_minute=1) as emu:
        _, token = _installed(emu)
        with api(emu, token) as c:
            assert [
                c.post("/repos/o/r0/git/blobs", json={"content": f"{i}"}).status_code for i in range(3)
            ] == [201] * 3


def test_too_many_concurrent_requests(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e", secondary_rate_limits=True, max_concurrent_requests=2) as emu:
        _, token = _installed(emu)
        # Hold requests open with latency so that four are in flight at once.
        emu.add_fault(r"^/repos/o/r0$", delay_ms=400, count=4)

        async def burst() -> list[int]:
            headers = {"Authorization": f"token {token}"}
            async with httpx.AsyncClient(base_url=emu.url, headers=headers, trust_env=False) as client:
                answers = await asyncio.gather(*(client.get("/repos/o/r0") for _ in range(4)))
            return sorted(a.status_code for a in answers)

        assert asyncio.run(burst()) == [200, 200, 403, 403]
        refusals = [r for r in emu.requests() if r["fault"] == "secondary_rate_limit:concurrency"]
        assert len(refusals) == 2


def test_primary_quota_per_installation_by_formula_and_override(tmp_path: Path) -> None:
    with run_emulator(tmp_path / "e") as emu:
        _, token = _installed(emu, repos=22)
        with api(emu, token) as c:
            first = c.get("/repos/o/r0")
            assert first.headers["x-ratelimit-limit"] == "5100"  # 5,000 + 50 x (22 - 20)
            overview = c.get("/rate_limit").json()
            assert overview["resources"]["core"]["limit"] == 5100
            assert overview["resources"]["graphql"]["limit"] == 5100
    with run_emulator(tmp_path / "f", rate_limit=7) as emu:
        _, token = _installed(emu, repos=22)
        with api(emu, token) as c:
            assert c.get("/repos/o/r0").headers["x-ratelimit-limit"] == "7"
