"""Notification senders: an httpx POST to the platform's GHSYNC_NOTIFY_URL, and an in-memory twin."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from ghsync.ports.notify import NotificationFailed


class HttpxNotificationSender:
    """POSTs each notification to one URL; anything but a 2xx answer is a failure (retried later)."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self._url = url
        # A short timeout: the delivery task must not sit on a platform that hangs.
        self._client = client or httpx.Client(timeout=timeout, trust_env=False)

    def post(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            response = self._client.post(self._url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            raise NotificationFailed(f"POST {self._url}: {exc!r}") from None
        if not 200 <= response.status_code < 300:
            raise NotificationFailed(f"POST {self._url} answered {response.status_code}")

    def close(self) -> None:
        self._client.close()


@dataclass
class InMemoryNotificationSender:
    """Keeps what it was sent; `fail_next` makes the next posts fail (a platform that is down)."""

    sent: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    fail_next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, body: bytes, headers: Mapping[str, str]) -> None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise NotificationFailed("the platform is down (in-memory sender told to fail)")
            self.sent.append((body, dict(headers)))

    def close(self) -> None:
        return None
