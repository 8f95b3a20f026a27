"""The installation-token cache port, its in-memory and Redis adapters, and single-flight fetching.

`TokenCache.get_or_fetch` is the one algorithm (shared by every adapter so they cannot drift):
N concurrent callers with a cold cache cause exactly one fetch. Inside a process a per-key lock
serialises callers; across processes the adapter's lock does (Redis: redis-py's `Lock`, which takes
it with `SET NX PX` and releases it only while its token still holds it), and callers that lose the
race poll the cache for the winner's token.
tests/contract/test_token_cache_contract.py runs one suite against both adapters.

Tokens are secrets: `CachedToken.__repr__` hides the value, and nothing here logs.
"""

from __future__ import annotations

import abc
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.exceptions import LockError

if TYPE_CHECKING:
    import redis
    from redis.lock import Lock


@dataclass(frozen=True)
class CachedToken:
    token: str = field(repr=False)
    expires_at: float  # epoch seconds (GitHub's `expires_at`); shared across processes, so wall clock

    def valid_for(self, now: float) -> float:
        return self.expires_at - now


class TokenCache(abc.ABC):
    """The port. Adapters implement five primitives; `get_or_fetch` is shared."""

    poll_interval: float = 0.05

    def __init__(self, *, lock_timeout: float = 30.0) -> None:
        self.lock_timeout = lock_timeout
        self._guard = threading.Lock()
        self._local: dict[str, threading.Lock] = {}

    @abc.abstractmethod
    def get(self, key: str) -> CachedToken | None:
        """The cached token, or None (absent or its TTL passed)."""

    @abc.abstractmethod
    def set(self, key: str, token: CachedToken, ttl: float) -> None:
        """Cache `token` for `ttl` seconds."""

    @abc.abstractmethod
    def delete(self, key: str, only_if: str | None = None) -> bool:
        """Drop the token; with `only_if`, only while the cached token is that one (so a caller whose
        old token got a 401 cannot drop the fresh one another caller just fetched). True if dropped."""

    @abc.abstractmethod
    def _try_lock(self, key: str, ttl: float) -> str | None:
        """Take the cross-process fetch lock of `key` for at most `ttl` s: a handle, or None if held."""

    @abc.abstractmethod
    def _unlock(self, key: str, handle: str) -> None:
        """Release the lock if `handle` still holds it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (adapters that hold some)."""

    def _local_lock(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._local.get(key)
            if lock is None:
                lock = self._local[key] = threading.Lock()
            return lock

    def get_or_fetch(
        self,
        key: str,
        fetch: Callable[[], CachedToken],
        *,
        ttl: float,
        min_validity: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> CachedToken:
        """The cached token if it is valid for `min_validity` more seconds; else fetch it, once.

        The cache entry lives min(`ttl`, expiry - `min_validity`), so a token is never handed out
        moments before GitHub expires it.
        """

        def usable(tok: CachedToken | None) -> CachedToken | None:
            return tok if tok is not None and tok.valid_for(clock()) > min_validity else None

        if (tok := usable(self.get(key))) is not None:
            return tok
        with self._local_lock(key):
            if (tok := usable(self.get(key))) is not None:
                return tok
            deadline = time.monotonic() + self.lock_timeout
            handle = self._try_lock(key, self.lock_timeout)
            while handle is None:
                if (tok := usable(self.get(key))) is not None:
                    return tok
                if time.monotonic() >= deadline:
                    break  # the holder is stuck or gone: fetching twice beats failing
                time.sleep(self.poll_interval)
                handle = self._try_lock(key, self.lock_timeout)
            try:
                if (tok := usable(self.get(key))) is not None:
                    return tok
                tok = fetch()
                lifetime = min(ttl, tok.valid_for(clock()) - min_validity)
                if lifetime > 0:
                    self.set(key, tok, lifetime)
                return tok
            finally:
                if handle is not None:
                    self._unlock(key, handle)


class InMemoryTokenCache(TokenCache):
    """One process's cache (the default without Redis); its lock is the per-key local lock."""

    def __init__(self, *, lock_timeout: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(lock_timeout=lock_timeout)
        self._clock = clock
        self._items: dict[str, tuple[CachedToken, float]] = {}
        self._items_lock = threading.Lock()

    def get(self, key: str) -> CachedToken | None:
        with self._items_lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[1] <= self._clock():
                del self._items[key]
                return None
            return item[0]

    def set(self, key: str, token: CachedToken, ttl: float) -> None:
        with self._items_lock:
            self._items[key] = (token, self._clock() + ttl)

    def delete(self, key: str, only_if: str | None = None) -> bool:
        with self._items_lock:
            item = self._items.get(key)
            if item is None or (only_if is not None and item[0].token != only_if):
                return False
            del self._items[key]
            return True

    def _try_lock(self, key: str, ttl: float) -> str | None:
        return "local"  # the per-key threading lock in get_or_fetch already serialises this process

    def _unlock(self, key: str, handle: str) -> None:
        return None


# KEYS[1] = token key, ARGV[1] = token string: delete only if the cached JSON holds that token.
_DELETE_IF_TOKEN = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, doc = pcall(cjson.decode, v)
if ok and doc['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenCache(TokenCache):
    """Shared by every ghsync process using the same Redis: one token fetch per installation per hour.

    Keys: `<prefix><key>` holds `{"token", "expires_at"}` with a TTL; `<prefix><key>:lock` is the
    fetch lock, a redis-py `Lock` (https://redis.readthedocs.io/en/stable/lock.html): it expires after
    `lock_timeout` if its holder dies, and is released only by its holder.
    """

    def __init__(
        self, client: redis.Redis[bytes], *, prefix: str = "ghsync:github:token:", lock_timeout: float = 30.0
    ) -> None:
        super().__init__(lock_timeout=lock_timeout)
        self._redis = client
        self._prefix = prefix
        self._held: dict[str, Lock] = {}
        self._held_guard = threading.Lock()
        self._delete_if_token = client.register_script(_DELETE_IF_TOKEN)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "ghsync:github:token:", lock_timeout: float = 30.0
    ) -> RedisTokenCache:
        import redis as redis_lib

        client: redis.Redis[bytes] = redis_lib.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=10
        )
        return cls(client, prefix=prefix, lock_timeout=lock_timeout)

    def get(self, key: str) -> CachedToken | None:
        raw = self._redis.get(self._prefix + key)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            return CachedToken(token=str(doc["token"]), expires_at=float(doc["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None

    def set(self, key: str, token: CachedToken, ttl: float) -> None:
        value = json.dumps({"token": token.token, "expires_at": token.expires_at})
        self._redis.set(self._prefix + key, value, px=max(1, int(ttl * 1000)))

    def delete(self, key: str, only_if: str | None = None) -> bool:
        if only_if is None:
            return bool(self._redis.delete(self._prefix + key))
        return bool(self._delete_if_token(keys=[self._prefix + key], args=[only_if]))

    def _try_lock(self, key: str, ttl: float) -> str | None:
        # Not blocking: get_or_fetch polls the cache for the winner's token while it waits.
        lock = self._redis.lock(self._prefix + key + ":lock", timeout=ttl, blocking=False, thread_local=False)
        if not lock.acquire(blocking=False):
            return None
        handle = secrets.token_hex(16)
        with self._held_guard:
            self._held[handle] = lock
        return handle

    def _unlock(self, key: str, handle: str) -> None:
        with self._held_guard:
            lock = self._held.pop(handle, None)
        if lock is None:
            return
        with contextlib.suppress(LockError):  # it expired (and maybe another process holds it now)
            lock.release()

    def close(self) -> None:
        self._redis.close()
