"""Issue 8, item 14: faults and delivery realism.

Connection resets (before and after the request took effect) and truncated bodies, every-nth and
seeded probabilistic faults, webhook modes filtered by event and hook, deliveries from several
threads, and redelivery for repository hooks (bodies checked against GitHub's schemas).
"""

from __future__ import annotations

import http.server
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Installed, api
from github_emulator.faults import Fault
from github_emulator.testing import WebhookReceiver, run_emulator
from support.github_schemas import validate_webhook


def _raw(installed: Installed) -> httpx.Client:
    return httpx.Client(
        base_url=installed.emu.url,
        headers={"Authorization": f"token {installed.token}"},
        trust_env=False,
        timeout=10,
    )


def test_reset_before_serving_has_no_effect(installed: Installed) -> None:
    emu, c = installed.emu, installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    emu.clear_requests()
    emu.add_fault(r"/git/refs$", method="POST", kind="reset")
    with _raw(installed) as raw, pytest.raises(httpx.TransportError):
        raw.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/lost", "sha": head})
    assert c.get("/repos/octo/hello/git/ref/heads/lost").status_code == 404
    (row, _) = emu.requests()
    assert (row["fault"], row["status"], row["installation_id"]) == ("reset", 0, installed.installation_id)


def test_reset_after_serving_took_effect(installed: Installed) -> None:
    emu, c = installed.emu, installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    emu.add_fault(r"/git/refs$", method="POST", kind="reset_after")
    with _raw(installed) as raw, pytest.raises(httpx.TransportError):
        raw.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/made", "sha": head})
    # The client never saw the 201, but the ref exists: a blind retry gets 422 "already exists".
    assert c.get("/repos/octo/hello/git/ref/heads/made").status_code == 200
    again = c.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/made", "sha": head})
    assert again.status_code == 422
    posts = [r for r in emu.requests() if r["method"] == "POST" and r["path"].endswith("/git/refs")]
    assert [(r["fault"], r["status"]) for r in posts] == [("reset_after", 201), (None, 422)]


def test_truncated_body(installed: Installed) -> None:
    emu = installed.emu
    emu.add_fault(r"^/repos/octo/hello$", kind="truncate")
    with _raw(installed) as raw:
        with pytest.raises(httpx.RemoteProtocolError):
            raw.get("/repos/octo/hello")
        assert raw.get("/repos/octo/hello").status_code == 200
    truncated = [r for r in emu.requests() if r["fault"] == "truncate"]
    assert len(truncated) == 1 and truncated[0]["status"] == 200


def test_every_nth_fault(installed: Installed) -> None:
    emu, c = installed.emu, installed.client
    emu.add_fault(r"^/repos/octo/hello$", status=502, every=3, count=2)
    assert [c.get("/repos/octo/hello").status_code for _ in range(8)] == [
        200,
        200,
        502,
        200,
        200,
        502,
        200,
        200,
    ]


def test_seeded_probabilistic_faults_are_reproducible(installed: Installed) -> None:
    emu, c = installed.emu, installed.client

    def run() -> list[int]:
        emu.clear_faults()
        emu.add_fault(r"^/repos/octo/hello$", status=503, probability=0.4, seed=42, count=100)
        return [c.get("/repos/octo/hello").status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    rng = random.Random(42)
    assert first == [503 if rng.random() < 0.4 else 200 for _ in range(12)]
    assert 200 in first and 503 in first


def test_fault_for_one_installation_only(installed: Installed) -> None:
    emu, c = installed.emu, installed.client
    emu.add_fault(r"^/repos/octo/hello$", status=500, installation_id=installed.installation_id + 999)
    assert c.get("/repos/octo/hello").status_code == 200
    emu.add_fault(r"^/repos/octo/hello$", status=500, installation_id=installed.installation_id)
    assert c.get("/repos/octo/hello").status_code == 500


def test_bad_fault_definitions_are_refused(installed: Installed) -> None:
    with pytest.raises(RuntimeError, match="422"):
        installed.emu.add_fault(".", kind="explode")
    with pytest.raises(ValueError, match="probability"):
        Fault(id=1, path_regex=".", count=1, probability=2.0)


def _hook(installed: Installed, url: str) -> int:
    created = installed.client.post(
        "/repos/octo/hello/hooks",
        json={"config": {"url": url, "content_type": "json", "secret": "h00k"}, "events": ["push", "create"]},
    )
    assert created.status_code == 201
    return int(created.json()["id"])


def _push_branch(installed: Installed, name: str) -> None:
    c = installed.client
    head = c.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    assert (
        c.post("/repos/octo/hello/git/refs", json={"ref": f"refs/heads/{name}", "sha": head}).status_code
        == 201
    )


def test_webhook_modes_filtered_by_event_and_hook_and_repo_hook_redelivery(installed: Installed) -> None:
    emu, rx = installed.emu, installed.receiver
    with WebhookReceiver() as repo_rx:
        hook_id = _hook(installed, repo_rx.url)
        repo_rx.wait_for(lambda rs: any(r.event == "ping" for r in rs))
        # Drop pushes only: the App still gets create, and the repository hook gets create.
        emu.set_webhook_mode("drop", events=["push"])
        _push_branch(installed, "one")
        emu.wait_for_deliveries()
        assert rx.events("create") and not rx.events("push")
        assert repo_rx.events("create") and not repo_rx.events("push")
        # Drop only the repository hook's deliveries: the App gets everything.
        emu.set_webhook_mode("drop", hook_ids=[hook_id])
        _push_branch(installed, "two")
        emu.wait_for_deliveries()
        assert len(rx.events("push")) == 1 and len(repo_rx.events("create")) == 1

        # Redeliver the repository hook's dropped push through the REST API.
        with api(emu, installed.token) as c:
            listed = c.get(f"/repos/octo/hello/hooks/{hook_id}/deliveries").json()
            dropped = next(d for d in listed if d["event"] == "push")
            detail = c.get(f"/repos/octo/hello/hooks/{hook_id}/deliveries/{dropped['id']}").json()
            assert detail["request"]["payload"]["ref"] == "refs/heads/two"
            again = c.post(f"/repos/octo/hello/hooks/{hook_id}/deliveries/{dropped['id']}/attempts")
            assert again.status_code == 202
            assert c.post(f"/repos/octo/hello/hooks/{hook_id}/deliveries/999999/attempts").status_code == 404
        (redelivered,) = repo_rx.wait_for(lambda rs: any(r.event == "push" for r in rs)) and repo_rx.events(
            "push"
        )
        assert redelivered.headers["x-github-delivery"] == dropped["guid"]
        assert redelivered.headers["x-github-hook-id"] == str(hook_id)
        assert "installation" not in redelivered.json  # repository hooks get no installation
        validate_webhook("push", redelivered.json)
        emu.set_webhook_mode("deliver")


class SlowReceiver:
    """Answers after ``delay`` seconds and records the most deliveries it held at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.events: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.active += 1
                    receiver.most = max(receiver.most, receiver.active)
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.active -= 1
                    receiver.events.append(self.headers.get("X-GitHub-Event", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow() -> Iterator[SlowReceiver]:
    receiver = SlowReceiver(0.15)
    yield receiver
    receiver.close()


@pytest.mark.parametrize("workers", [1, 4])
def test_deliveries_from_several_threads(tmp_path: Path, slow: SlowReceiver, workers: int) -> None:
    with run_emulator(tmp_path / "e", webhook_workers=workers) as emu:
        app = emu.create_app("threads", webhook_url=slow.url, events=["create", "push"])
        emu.create_repo("o", "r", files={"a": "a"})
        inst = emu.create_installation(app.id, "o", ["o/r"])
        with api(emu, emu.installation_token(app, inst)) as c:
            head = c.get("/repos/o/r/git/ref/heads/main").json()["object"]["sha"]
            for i in range(3):
                c.post("/repos/o/r/git/refs", json={"ref": f"refs/heads/b{i}", "sha": head})
        emu.wait_for_deliveries(lambda ds: sum(d["event"] in ("create", "push") for d in ds) == 6, timeout=20)
    if workers == 1:
        assert slow.most == 1  # one at a time, in order
        assert slow.events == ["ping", "installation", *["push", "create"] * 3]
    else:
        assert slow.most > 1  # several in flight at once: no order is promised
