"""A worker killed with SIGKILL between any two GitHub API calls of a sync, then restarted, converges:
GitHub ends with exactly the local version's tree, each version committed once, and (protected mode)
exactly one PR.

Workers are processes (forked by the zygote below) running the real reconcile from `bootstrap` on a
shared SQLite file, against the emulator in this process. A worker counts the GitHub responses of its second
job and SIGKILLs itself right after the k-th one: every call before it took effect and was answered,
none after it was sent, and nothing of ours ran in between. Round k's worker is killed after call k of
one sync; round k+1's worker first recovers that job (the queue requeues a job whose heartbeat went
stale), then takes the next version's sync and dies after call k+1, until a sync makes fewer calls
than k: every gap between two calls of a sync has then been cut once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.models import Author, FileWrite
from github_emulator.testing import EmulatorHandle, run_emulator

TIMEOUT = 20.0
KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
PERMISSIONS = {"contents": "write", "pull_requests": "write", "metadata": "read"}
GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}

# A zygote: it imports ghsync once, then forks one worker per `spawn <kill_after> <json settings>` line
# on stdin and reports `pid <pid>` and, when a worker is reaped, `exit <pid> <status>`. Forking from a
# warm process keeps a round under a second or two; each worker is still a real process that SIGKILL ends.
ZYGOTE = r"""
import json, os, select, signal, sys, threading
import httpx
from ghsync.adapters.queue.embedded import EmbeddedQueue, EmbeddedQueueSettings
from ghsync.bootstrap import build_container
from ghsync.config import load_settings

log_path = None

def note(line):
    # fsync: the line must survive the SIGKILL that may follow right after.
    with open(log_path, "a") as log:
        log.write(f"{os.getpid()} {line}\n")
        log.flush()
        os.fsync(log.fileno())

def worker(kill_after, config):
    global log_path
    log_path = config.pop("log")
    state = {"job": 0, "calls": 0}
    send = httpx.HTTPTransport.handle_request

    def counted(transport, request):
        response = send(transport, request)
        if state["job"] == 2:
            state["calls"] += 1
            note(f"call {state['calls']} {request.method} {request.url.path} {response.status_code}")
            if state["calls"] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return response

    httpx.HTTPTransport.handle_request = counted
    container = build_container(load_settings({}, **config))
    queue = EmbeddedQueue(
        container.engine,
        settings=EmbeddedQueueSettings(
            threads=1, poll_interval=0.02, heartbeat_interval=0.1, stale_after=0.3, sweep_interval=0.05
        ),
    )

    def reconcile(args):
        state["job"] += 1
        state["calls"] = 0
        note(f"start {state['job']}")
        container.reconciler.reconcile(str(args["project_id"]))
        note(f"done {state['job']} {state['calls']}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    queue.register("reconcile", reconcile)
    queue.run_worker(stop)

children = set()
print("ready", flush=True)
while True:
    readable, _, _ = select.select([sys.stdin], [], [], 0.02)
    if readable:
        line = sys.stdin.readline()
        if not line:
            break
        child = os.fork()
        if child == 0:
            # The pipe is the zygote's protocol: the worker's logs go to stderr.
            os.dup2(2, 1)
            code = 1
            try:
                _, kill_after, config = line.split(" ", 2)
                worker(int(kill_after), json.loads(config))
                code = 0
            finally:
                os._exit(code)
        children.add(child)
        print(f"pid {child}", flush=True)
    for child in list(children):
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            children.discard(child)
            print(f"exit {child} {os.waitstatus_to_exitcode(status)}", flush=True)
for child in children:
    os.kill(child, signal.SIGKILL)
"""


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT}s waiting for {what}")
        time.sleep(0.05)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


class Zygote:
    """The zygote process (one per module) and what it reported."""

    def __init__(self, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.pids: queue.Queue[str] = queue.Queue()
        self.exits: dict[int, int] = {}
        self._lock = threading.Lock()
        self._ready = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, *rest = line.split()
            if kind == "exit":
                with self._lock:
                    self.exits[int(rest[0])] = int(rest[1])
            else:
                self.pids.put(rest[0] if rest else kind)

    def spawn(self, kill_after: int, config: dict[str, Any]) -> int:
        if not self._ready:
            assert self.pids.get(timeout=TIMEOUT) == "ready", self.stderr()
            self._ready = True
        assert self.process.stdin is not None
        self.process.stdin.write(f"spawn {kill_after} {json.dumps(config)}\n")
        self.process.stdin.flush()
        return int(self.pids.get(timeout=TIMEOUT))

    def exit_code(self, pid: int) -> int | None:
        """A worker's exit code (negative: the signal), None while it runs."""
        with self._lock:
            return self.exits.get(pid)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()  # the zygote SIGKILLs whatever workers are left, and exits
        self.process.wait(TIMEOUT)
        self.process.stdout.close()


class Workers:
    """The worker processes of one test; whatever is alive at the end is killed."""

    def __init__(self, zygote: Zygote, config: dict[str, Any], tmp_path: Path) -> None:
        self.zygote = zygote
        self.log = tmp_path / "worker.log"
        self.log.touch()
        self.config = {**config, "log": str(self.log)}
        self.live: set[int] = set()

    def start(self, kill_after: int) -> int:
        pid = self.zygote.spawn(kill_after, self.config)
        self.live.add(pid)
        return pid

    def exit_code(self, pid: int) -> int | None:
        return self.zygote.exit_code(pid)

    def wait(self, pid: int) -> int:
        wait_for(lambda: self.exit_code(pid) is not None, f"worker {pid} exits")
        found = self.exit_code(pid)
        assert found is not None
        return found

    def lines(self, pid: int, kind: str) -> list[list[str]]:
        rows = [line.split(" ") for line in self.log.read_text().splitlines()]
        return [row[2:] for row in rows if row[0] == str(pid) and row[1] == kind]

    def stderr(self) -> str:
        return self.zygote.stderr()

    def kill_all(self) -> None:
        for pid in self.live:
            if self.exit_code(pid) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    started = Zygote(tmp_path_factory.mktemp("zygote") / "stderr")
    yield started
    started.close()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(tmp_path / "emulator") as handle:
        yield handle


@pytest.mark.parametrize("mode", ["direct_commit", "protected_pr"])
def test_a_sync_killed_between_any_two_github_calls_converges_without_duplicates(
    mode: str, emu: EmulatorHandle, zygote: Zygote, tmp_path: Path
) -> None:
    app = emu.create_app("ghsync-test", permissions=PERMISSIONS)
    owner = emu.create_user("octo")
    emu.create_repo("octo", "site", default_branch="trunk", files={"index.html": "<h1>hello</h1>\n"})
    emu.create_installation(app.id, "octo", ["octo/site"])
    database_url = f"sqlite:///{tmp_path / 'ghsync.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    config = {
        "ghsync_data_dir": str(tmp_path / "data"),
        "database_url": database_url,
        "ghsync_encryption_keys": [KEY],
        "github_app_id": str(app.id),
        "github_app_private_key": app.private_key,
        "github_api_url": emu.url,
        "github_write_interval": 0,
    }
    workers = Workers(zygote, config, tmp_path)
    container = None
    try:
        container = build_container(load_settings({}, **config))  # the API side here, no worker
        pid = container.projects.create_project("site").id
        container.links.link(pid, owner="octo", repo="site", sync_mode=mode)
        worker = workers.start(kill_after=1)
        wait_for(lambda: workers.lines(worker, "done"), "the first reconcile (the import)")
        branch = "trunk" if mode == "direct_commit" else f"ghsync/{pid}"

        versions: list[str] = []
        kill_after = 1
        while True:
            number = len(versions) + 1
            version = container.versions.create_version(
                pid,
                message=f"Version {number}",
                writes=[
                    FileWrite(f"page-{number}.html", f"<p>{number}</p>\n".encode()),
                    FileWrite("index.html", f"<h1>v{number}</h1>\n".encode()),
                ],
                author=Author("Ada", "ada@example.com"),
            )
            versions.append(version.id)
            wait_for(
                lambda w=worker: workers.exit_code(w) is not None or len(workers.lines(w, "done")) == 2,
                f"worker {kill_after} dies or finishes version {number}",
            )
            if workers.exit_code(worker) is None:
                break  # this sync made fewer calls than kill_after: every gap has been cut
            assert workers.exit_code(worker) == -signal.SIGKILL, workers.stderr()
            assert len(workers.lines(worker, "call")) == kill_after
            kill_after += 1
            worker = workers.start(kill_after=kill_after)
            wait_for(
                lambda w=worker: workers.lines(w, "done"), f"the restarted worker recovers version {number}"
            )
            assert_converged(emu, owner.token, container, pid, branch, versions, mode)

        # The last sync finished before its kill point; every earlier point was cut in some sync. (A
        # sync's count varies a little: a fresh process reads the App's identity once, for example.)
        calls = int(workers.lines(worker, "done")[-1][1])
        assert calls < kill_after, calls
        assert kill_after > 5, kill_after  # at least the reads, the tree, the commit and the ref move
        assert_converged(emu, owner.token, container, pid, branch, versions, mode, tmp_path / "clone")
        os.kill(worker, signal.SIGTERM)
        assert workers.wait(worker) == 0, workers.stderr()
    except BaseException:
        print(workers.stderr())
        print(workers.log.read_text())
        raise
    finally:
        workers.kill_all()
        if container is not None:
            container.close()


def assert_converged(
    emu: EmulatorHandle,
    token: str,
    container: Container,
    pid: str,
    branch: str,
    versions: list[str],
    mode: str,
    clone_into: Path | None = None,
) -> None:
    """GitHub's branch holds the newest version's tree, each version is committed exactly once, and in
    protected mode there is exactly one PR; nothing waits in the outbox. With `clone_into`, the branch
    is also cloned over git and checked with `git fsck --strict` (the last round: its history holds
    every round's commits)."""
    with container.uow() as uow:
        assert uow.requests.pending(pid) == []
        latest = uow.versions.latest(pid)
    assert latest is not None and latest.id == versions[-1]
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"token {token}"}, trust_env=False) as gh:
        commits = gh.get("/repos/octo/site/commits", params={"sha": branch, "per_page": 100}).json()
        pulls = gh.get("/repos/octo/site/pulls", params={"state": "all"}).json()
    messages = [commit["commit"]["message"] for commit in commits]
    assert commits[0]["commit"]["tree"]["sha"] == latest.tree_sha
    assert len(commits) == 1 + len(versions)  # the repository's first commit, then one per version
    assert sorted(trailers(messages)) == sorted(versions), "a version was committed twice, or not at all"
    if mode == "direct_commit":
        assert pulls == []
    else:
        assert [(p["state"], p["head"]["ref"], p["base"]["ref"]) for p in pulls] == [
            ("open", branch, "trunk")
        ]
        assert pulls[0]["head"]["sha"] == commits[0]["sha"]
    if clone_into is not None:
        url = emu.git_url("octo", "site", token=token, user="octo")
        git(clone_into.parent, "clone", "--quiet", "--branch", branch, url, str(clone_into))
        git(clone_into, "fsck", "--strict", "--no-progress")
        assert git(clone_into, "rev-parse", "HEAD") == commits[0]["sha"]
        assert git(clone_into, "rev-parse", "HEAD^{tree}") == latest.tree_sha
        assert sorted(trailers(git(clone_into, "log", "--format=%B%x00").split("\x00"))) == sorted(versions)


def trailers(messages: list[str]) -> list[str]:
    """The Ghsync-Version trailers of the messages."""
    return [
        line.split(": ", 1)[1]
        for message in messages
        for line in message.splitlines()
        if line.startswith("Ghsync-Version: ")
    ]
