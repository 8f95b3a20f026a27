"""No job is lost when a worker process is killed with SIGKILL: the next worker runs its jobs again.

Workers run in subprocesses (the code below, through `python -c`) on a SQLite file and on PostgreSQL;
their handler logs to a file, so the test sees what each process did even after it is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.queue.embedded import EmbeddedQueue
from ghsync.ports.jobs import RECONCILE_TASK

TIMEOUT = 20.0

WORKER = r"""
import os, signal, sys, threading
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.queue.embedded import EmbeddedQueue, EmbeddedQueueSettings

url, log_path, mode = sys.argv[1:4]

def note(line):
    # fsync: the line must survive the SIGKILL that may follow right after.
    with open(log_path, "a") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())

def handler(args):
    note(f"start {os.getpid()} {args['project_id']}")
    if mode == "block":
        threading.Event().wait()  # until killed
    note(f"done {os.getpid()} {args['project_id']}")

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
settings = EmbeddedQueueSettings(
    threads=2, poll_interval=0.05, heartbeat_interval=0.2, stale_after=1.0, sweep_interval=0.2
)
note(f"ready {os.getpid()}")
queue = EmbeddedQueue(make_engine(url), settings=settings)
queue.register("reconcile", handler)
queue.run_worker(stop)
note(f"stopped {os.getpid()}")
"""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT}s waiting for: {what}")
        time.sleep(0.05)


class Workers:
    """Worker subprocesses of one test; whatever is still alive at the end is killed."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.log = tmp_path / "handler.log"
        self.log.touch()
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, mode: str) -> subprocess.Popen[bytes]:
        stderr = (self.tmp_path / f"worker-{len(self.processes)}.stderr").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, self.url, str(self.log), mode],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        self.processes.append(process)
        return process

    def lines(self, kind: str, process: subprocess.Popen[bytes]) -> list[str]:
        """The projects of the logged `kind` lines of one process."""
        found = []
        for line in self.log.read_text().splitlines():
            parts = line.split(" ")
            if parts[0] == kind and parts[1] == str(process.pid):
                found.append(parts[2])
        return found

    def stderr(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.tmp_path.glob("worker-*.stderr")))

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(TIMEOUT)


@pytest.fixture
def migrated(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_jobs_of_a_killed_worker_run_again(migrated: Engine, database_url: str, tmp_path: Path) -> None:
    producer = EmbeddedQueue(migrated)
    producer.register(RECONCILE_TASK, lambda args: None)
    workers = Workers(database_url, tmp_path)
    try:
        producer.request_reconcile("p1", "before-kill")
        producer.request_reconcile("p2", "before-kill")

        doomed = workers.start("block")
        wait_for(lambda: len(workers.lines("start", doomed)) == 2, "the first worker runs both jobs")
        producer.request_reconcile("p1", "during-run")  # queued behind the running p1 job
        assert producer.counts() == {"queued": 1, "running": 2, "succeeded": 0, "failed": 0}

        os.kill(doomed.pid, signal.SIGKILL)
        assert doomed.wait(TIMEOUT) == -signal.SIGKILL
        # The killed worker's jobs are still marked running: only a heartbeat timeout tells.
        assert producer.counts()["running"] == 2

        survivor = workers.start("complete")
        wait_for(lambda: len(workers.lines("done", survivor)) == 2, "the new worker finishes both jobs")
        wait_for(lambda: producer.counts()["succeeded"] == 2, "both jobs recorded as succeeded")

        # Each project ran once more; the request made while p1 was running joined its requeued job
        # (one queued job per project) rather than running a third time. Nothing is left over.
        assert sorted(workers.lines("done", survivor)) == ["p1", "p2"]
        assert producer.counts() == {"queued": 0, "running": 0, "succeeded": 2, "failed": 0}
        for job in producer.jobs():
            assert job.attempts == 2
            assert job.last_error is not None and "stopped heartbeating" in job.last_error

        survivor.send_signal(signal.SIGTERM)  # graceful stop
        assert survivor.wait(TIMEOUT) == 0, workers.stderr()
    except BaseException:
        print(workers.stderr())
        raise
    finally:
        workers.kill_all()
