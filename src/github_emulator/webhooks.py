"""Webhook delivery: signing, GitHub's headers, a background sender and the delivery modes.

Headers and signing follow https://docs.github.com/en/webhooks/webhook-events-and-payloads
(delivery headers) and https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
(``X-Hub-Signature-256`` is the HMAC-SHA256 hex digest of the body, prefixed with ``sha256=``).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

import httpx

from github_emulator.store import DeliveryRecord, Store, now_iso

WebhookMode = Literal["deliver", "drop", "duplicate", "delay", "reorder"]
USER_AGENT = "GitHub-Hookshot/e1a5b7c"


def sign_sha256(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` for ``body`` (GitHub's test vector is in the tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_sha1(secret: str, body: bytes) -> str:
    """The legacy ``X-Hub-Signature`` GitHub still sends beside the SHA-256 one."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def delivery_headers(
    event: str,
    guid: str,
    hook_id: int,
    target_type: str,
    target_id: int,
    secret: str | None,
    body: bytes,
) -> dict[str, str]:
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-GitHub-Delivery": guid,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": str(hook_id),
        "X-GitHub-Hook-Installation-Target-ID": str(target_id),
        "X-GitHub-Hook-Installation-Target-Type": target_type,
    }
    if secret:
        headers["X-Hub-Signature"] = sign_sha1(secret, body)
        headers["X-Hub-Signature-256"] = sign_sha256(secret, body)
    return headers


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    delivery_id: int = field(compare=False)


class Dispatcher:
    """Sends recorded deliveries from ``workers`` background threads, honouring the mode.

    With one worker deliveries go out in order; with more, as from GitHub, in no promised order
    (https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks: "you
    should not expect to receive events in the order they occurred"). The mode applies to the
    deliveries whose event is in ``events`` and whose hook is in ``hook_ids`` (None: all).
    """

    def __init__(self, store: Store, timeout: float, workers: int = 1) -> None:
        self._store = store
        self._timeout = timeout
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._stop = False
        self.mode: WebhookMode = "deliver"
        self.delay_ms = 0
        self.events: frozenset[str] | None = None
        self.hook_ids: frozenset[int] | None = None
        self._held: int | None = None
        self._sent: set[int] = set()
        self._busy = 0
        self._client = httpx.Client(timeout=timeout, trust_env=False)
        self._threads = [
            threading.Thread(target=self._run, name=f"webhook-dispatcher-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def set_mode(
        self,
        mode: WebhookMode,
        delay_ms: int,
        events: list[str] | None = None,
        hook_ids: list[int] | None = None,
    ) -> None:
        with self._cond:
            self.mode = mode
            self.delay_ms = delay_ms
            self.events = frozenset(events) if events else None
            self.hook_ids = frozenset(hook_ids) if hook_ids else None
            self._cond.notify_all()

    def _mode_for(self, delivery_id: int) -> WebhookMode:
        if self.events is None and self.hook_ids is None:
            return self.mode
        with self._store.lock:
            record = self._store.data.deliveries.get(delivery_id)
        if record is None:
            return self.mode
        if self.events is not None and record.event not in self.events:
            return "deliver"
        if self.hook_ids is not None and record.hook_id not in self.hook_ids:
            return "deliver"
        return self.mode

    def enqueue(self, delivery_id: int, *, bypass_mode: bool = False) -> None:
        """Queue a recorded delivery; ``bypass_mode`` is for redeliveries (always sent)."""
        with self._cond:
            mode = "deliver" if bypass_mode else self._mode_for(delivery_id)
            now = time.monotonic()
            if mode == "drop":
                self._mark(delivery_id, status="dropped by emulator", code=0)
                return
            due = now + (self.delay_ms / 1000 if mode == "delay" else 0)
            if mode == "reorder":
                if self._held is None:
                    self._held = delivery_id
                    # Sent alone if nothing overtakes it within the hold window.
                    wait = (self.delay_ms or 300) / 1000
                    heapq.heappush(self._queue, _Job(now + wait, next(self._seq), -delivery_id))
                else:
                    held, self._held = self._held, None
                    heapq.heappush(self._queue, _Job(now, next(self._seq), delivery_id))
                    # A little later, so that with several workers the pair still arrives swapped.
                    heapq.heappush(self._queue, _Job(now + 0.1, next(self._seq), held))
                self._cond.notify_all()
                return
            heapq.heappush(self._queue, _Job(due, next(self._seq), delivery_id))
            if mode == "duplicate":
                heapq.heappush(self._queue, _Job(due, next(self._seq), delivery_id))
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and self._held is None and self._busy == 0

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._client.close()

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self._held = None
            # After a reset delivery ids start again: a remembered id would pass for a duplicate.
            self._sent.clear()

    def _run(self) -> None:
        sent = self._sent  # shared by the workers (under the condition's lock)
        while True:
            with self._cond:
                while not self._stop and (not self._queue or self._queue[0].due > time.monotonic()):
                    timeout = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stop:
                    return
                job = heapq.heappop(self._queue)
                delivery_id = job.delivery_id
                if delivery_id < 0:
                    # The reorder hold expired; send the held delivery if still held.
                    if self._held != -delivery_id:
                        continue
                    self._held = None
                    delivery_id = -delivery_id
                duplicate = delivery_id in sent
                sent.add(delivery_id)
                self._busy += 1
            try:
                self._send(delivery_id, duplicate)
            finally:
                with self._cond:
                    self._busy -= 1

    def _mark(self, delivery_id: int, status: str, code: int) -> None:
        with self._store.lock:
            record = self._store.data.deliveries.get(delivery_id)
            if record is not None:
                record.status = status
                record.status_code = code
                self._store.save()

    def _send(self, delivery_id: int, duplicate: bool) -> None:
        with self._store.lock:
            record = self._store.data.deliveries.get(delivery_id)
            if record is None:
                return
            if duplicate:
                # A duplicate is its own delivery record with the same GUID (as GitHub's
                # at-least-once delivery can produce).
                copy = record.model_copy(deep=True)
                copy.id = self._store.new_id()
                self._store.data.deliveries[copy.id] = copy
                record = copy
            url, headers, body = record.url, dict(record.request_headers), record.payload.encode()
        started = time.monotonic()
        try:
            response = self._client.post(url, content=body, headers=headers)
            code = response.status_code
            status = "OK" if 200 <= code < 300 else f"Invalid HTTP Response: {code}"
            resp_headers = dict(response.headers)
            resp_body: str | None = response.text
        except httpx.TimeoutException:
            code, status, resp_headers, resp_body = 0, "timed out", {}, None
        except httpx.HTTPError:
            code, status, resp_headers, resp_body = 0, "failed to connect to host", {}, None
        duration = round(time.monotonic() - started, 3)
        with self._store.lock:
            stored = self._store.data.deliveries.get(record.id)
            # After a reset an id can name a newer delivery: only this one's record is updated.
            if stored is not None and stored.guid == record.guid:
                stored.status = status
                stored.status_code = code
                stored.duration = duration
                stored.delivered_at = now_iso()
                stored.response_headers = resp_headers
                stored.response_body = resp_body
                self._store.save()


def make_delivery(
    store: Store,
    *,
    guid: str,
    event: str,
    action: str | None,
    hook_id: int,
    target_type: str,
    target_id: int,
    url: str,
    secret: str | None,
    body: bytes,
    installation_id: int | None,
    repository_id: int | None,
    redelivery: bool = False,
) -> DeliveryRecord:
    """Record a delivery (status ``pending``) and return it; the caller enqueues it."""
    headers = delivery_headers(event, guid, hook_id, target_type, target_id, secret, body)
    record = DeliveryRecord(
        id=store.new_id(),
        guid=guid,
        hook_id=hook_id,
        target_type=target_type,
        target_id=target_id,
        url=url,
        event=event,
        action=action,
        installation_id=installation_id,
        repository_id=repository_id,
        delivered_at=now_iso(),
        redelivery=redelivery,
        request_headers=headers,
        payload=body.decode(),
    )
    with store.lock:
        store.data.deliveries[record.id] = record
        store.save()
    return record
