"""Group commit: concurrent requests hand their items to one worker thread that handles them in batches.

The webhook endpoints use it so that many deliveries arriving together share one transaction (one
commit, one notification of the queue) instead of queueing one by one for the database's write lock.
While the worker handles a batch, new items wait; the next batch takes every item waiting (up to
`max_batch`). So under load each batch covers many items, and an item arriving at an idle service goes
alone at once: there is no timer and no added latency.

The thread starts with the first item and ends after `idle_seconds` without one, so an application that
is never shut down cleanly (a test client, say) leaves no thread behind. A request that stops waiting (its
client went away) does not stop its item: the work is done and its result dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ghsync.observability.logging import get_logger

log = get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

_Waiting = tuple[Item, "asyncio.Future[Result]", asyncio.AbstractEventLoop]
# A future, and its result or the exception `handle` raised.
_Settled = tuple["asyncio.Future[Result]", Result | None, Exception | None]


class GroupCommit(Generic[Item, Result]):
    """`await submit(item)` returns `handle(batch)`'s result for that item; `handle` runs in one thread.

    `handle` takes the items of a batch and returns one result per item, in order. If it raises, every
    item of the batch gets the exception. `after_batch`, if given, runs in the same thread once the
    batch's results are handed to the waiting requests: work the answers need not wait for.
    """

    def __init__(
        self,
        handle: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch: int = 128,
        idle_seconds: float = 5.0,
        name: str = "ghsync-group-commit",
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._handle = handle
        self._after_batch = after_batch
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._name = name
        self._waiting: list[_Waiting[Item, Result]] = []  # handed over, for the worker (under _cond)
        # Submitted in the current turn of each event loop, touched only by that loop's thread.
        self._arriving: dict[asyncio.AbstractEventLoop, list[_Waiting[Item, Result]]] = {}
        self._cond = threading.Condition()
        self._running = False

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        arriving = self._arriving.get(loop)
        if arriving is None:
            # The first item of this turn of the loop: hand the turn's items over once it ends, so the
            # worker is woken once for all the requests the loop read together, not once per request.
            arriving = self._arriving[loop] = []
            loop.call_soon(self._hand_over, loop)
        arriving.append((item, future, loop))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        arrived = self._arriving.pop(loop, [])
        with self._cond:
            self._waiting.extend(arrived)
            if self._running:
                self._cond.notify()
            else:
                self._running = True
                threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    self._cond.wait(self._idle_seconds)
                if not self._waiting:
                    self._running = False
                    return
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            self._run(batch)

    def _run(self, batch: list[_Waiting[Item, Result]]) -> None:
        futures = [future for _, future, _ in batch]
        settled: list[_Settled[Result]]
        try:
            results = self._handle([item for item, _, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            settled = [(future, result, None) for future, result in zip(futures, results, strict=True)]
        except Exception as exc:
            log.exception("group_commit_batch_failed", batch=len(batch))
            settled = [(future, None, exc) for future in futures]
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled[Result]]] = {}
        for (_, _, loop), outcome in zip(batch, settled, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, outcomes)  # one wake-up of each loop per batch
        if self._after_batch is not None:
            try:
                self._after_batch()  # while the loops answer the batch's requests
            except Exception:
                log.exception("group_commit_after_batch_failed", batch=len(batch))


def _settle(outcomes: list[_Settled[Result]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the request stopped waiting
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # None only alongside an error
