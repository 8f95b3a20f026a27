"""A bounded LRU of ETags and bodies for conditional GETs (polling reads of repositories, refs, branches).

A 304 answer to `If-None-Match` is not charged against the primary rate limit when the request is
authorized (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
Entries are keyed by installation and URL, not by token, so they survive the hourly token rotation
(an HTTP cache honouring `Vary: Authorization` would start cold after every new token).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

EtagKey = tuple[str, str, str]  # (installation or "app", URL with query, Accept)


@dataclass(frozen=True)
class EtagEntry:
    etag: str
    body: Any


class EtagCache:
    def __init__(self, max_entries: int = 2048) -> None:
        self._max = max_entries
        self._items: OrderedDict[EtagKey, EtagEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EtagKey) -> EtagEntry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, key: EtagKey, entry: EtagEntry) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def drop(self, key: EtagKey) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
