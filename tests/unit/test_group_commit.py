"""Group commit: items submitted while a batch runs go together in the next one, each gets its own result,
a failing batch fails only its own items, and the worker thread ends when idle and comes back."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ghsync.entrypoints.api.group_commit import GroupCommit


class Recorder:
    """A `handle` that records its batches; the first batch waits until `release` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, batch: list[int]) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(batch)
        self.started.set()
        self.release.wait(10)
        return [f"done {item}" for item in batch]


async def _until(condition: threading.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, condition.wait, 10)


def test_items_arriving_during_a_batch_are_handled_together_in_the_next() -> None:
    handle = Recorder()
    group: GroupCommit[int, str] = GroupCommit(handle)

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(group.submit(0))
        await _until(handle.started)  # the worker is busy with [0]
        rest = [asyncio.ensure_future(group.submit(n)) for n in range(1, 6)]
        await asyncio.sleep(0.05)
        handle.release.set()
        return await asyncio.gather(first, *rest)

    results = asyncio.run(scenario())

    assert results == [f"done {n}" for n in range(6)]
    assert handle.batches == [[0], [1, 2, 3, 4, 5]]
    assert handle.threads == {"ghsync-group-commit"}


def test_batches_are_capped_at_max_batch() -> None:
    handle = Recorder()
    group: GroupCommit[int, str] = GroupCommit(handle, max_batch=2)

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(group.submit(0))
        await _until(handle.started)
        rest = [asyncio.ensure_future(group.submit(n)) for n in range(1, 6)]
        await asyncio.sleep(0.05)
        handle.release.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [f"done {n}" for n in range(6)]
    assert handle.batches == [[0], [1, 2], [3, 4], [5]]


def test_a_batch_that_raises_fails_its_own_items_only() -> None:
    calls: list[list[int]] = []

    def handle(batch: list[int]) -> list[int]:
        calls.append(batch)
        if 13 in batch:
            raise RuntimeError("unlucky batch")
        return [item * 2 for item in batch]

    group: GroupCommit[int, int] = GroupCommit(handle)

    async def scenario() -> tuple[int, BaseException | int]:
        doomed = await asyncio.gather(group.submit(13), return_exceptions=True)
        return await group.submit(21), doomed[0]

    fine, doomed = asyncio.run(scenario())

    assert fine == 42
    assert isinstance(doomed, RuntimeError) and str(doomed) == "unlucky batch"


def test_a_handle_that_returns_too_few_results_fails_the_batch() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda batch: batch[:-1])

    with pytest.raises(RuntimeError, match="0 results for a batch of 1"):
        asyncio.run(group.submit(1))


def test_the_worker_ends_when_idle_and_starts_again_for_the_next_item() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda batch: batch, idle_seconds=0.05, name="idle-test")

    assert asyncio.run(group.submit(1)) == 1
    for _ in range(100):  # the thread ends about 0.05 s after its last batch
        if not any(t.name == "idle-test" for t in threading.enumerate()):
            break
        threading.Event().wait(0.02)
    assert not any(t.name == "idle-test" for t in threading.enumerate())
    assert asyncio.run(group.submit(2)) == 2  # and a new one takes the next item


def test_a_waiter_that_gives_up_does_not_stop_the_item_or_the_others() -> None:
    handle = Recorder()
    group: GroupCommit[int, str] = GroupCommit(handle)

    async def scenario() -> str:
        impatient = asyncio.ensure_future(group.submit(0))
        await _until(handle.started)
        impatient.cancel()  # the client went away
        patient = asyncio.ensure_future(group.submit(1))
        handle.release.set()
        return await patient

    assert asyncio.run(scenario()) == "done 1"
    assert handle.batches == [[0], [1]]  # the abandoned item was still handled


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(lambda batch: batch, max_batch=0)


def test_after_batch_runs_in_the_worker_once_a_batchs_requests_may_be_answered() -> None:
    answered = threading.Event()
    seen: list[tuple[str, bool]] = []

    def after_batch() -> None:
        # The request is answered while this runs: it does not wait for it.
        seen.append((threading.current_thread().name, answered.wait(10)))
        if len(seen) == 1:
            raise RuntimeError("a failing after_batch is logged; the worker goes on")

    group: GroupCommit[int, int] = GroupCommit(lambda batch: [n * 2 for n in batch], after_batch=after_batch)

    async def scenario() -> list[int]:
        results = []
        for n in (1, 2):
            results.append(await group.submit(n))
            answered.set()
            deadline = time.monotonic() + 10
            while len(seen) < n and time.monotonic() < deadline:  # until this batch's after_batch ran
                await asyncio.sleep(0.01)
            answered.clear()
        return results

    assert asyncio.run(scenario()) == [2, 4]
    assert seen == [("ghsync-group-commit", True), ("ghsync-group-commit", True)]
