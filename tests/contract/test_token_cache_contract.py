"""The TokenCache contract, run against every adapter (in-memory; Redis when reachable).

What callers rely on: get/set with TTL, compare-and-delete on 401, and single-flight fetching:
N concurrent callers with a cold cache cause exactly one fetch (across processes for Redis).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from ghsync.adapters.github.token_cache import CachedToken, InMemoryTokenCache, RedisTokenCache, TokenCache

Factory = Callable[[], TokenCache]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_cache(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A factory of caches sharing one backing store (for Redis: separate clients, like processes)."""
    made: list[TokenCache] = []
    if request.param == "memory":
        shared = InMemoryTokenCache(lock_timeout=5)

        def factory() -> TokenCache:
            return shared
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex[:8]}:"

        def factory() -> TokenCache:
            cache = RedisTokenCache.from_url(url, prefix=prefix, lock_timeout=5)
            made.append(cache)
            return cache

    yield factory
    for cache in made:
        cache.close()


def far() -> float:
    return time.time() + 3600


def test_get_set_and_ttl(make_cache: Factory) -> None:
    cache = make_cache()
    assert cache.get("k") is None
    cache.set("k", CachedToken("ghs_a", far()), ttl=0.3)
    got = cache.get("k")
    assert got is not None and got.token == "ghs_a"
    time.sleep(0.45)
    assert cache.get("k") is None


def test_delete_only_if_the_token_is_still_the_one_that_failed(make_cache: Factory) -> None:
    cache = make_cache()
    cache.set("k", CachedToken("ghs_new", far()), ttl=60)
    assert cache.delete("k", only_if="ghs_old") is False
    assert cache.get("k") is not None
    assert cache.delete("k", only_if="ghs_new") is True
    assert cache.get("k") is None
    assert cache.delete("k") is False


def test_token_repr_hides_the_secret() -> None:
    assert "ghs_secret" not in repr(CachedToken("ghs_secret", 1.0))


def _storm(caches: list[TokenCache], callers: int) -> tuple[list[str], list[int]]:
    fetches: list[int] = []
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(callers)

    def fetch() -> CachedToken:
        with lock:
            fetches.append(1)
        time.sleep(0.2)  # a slow token request: everyone else arrives meanwhile
        return CachedToken(f"ghs_{len(fetches)}", far())

    def caller(i: int) -> None:
        start.wait()
        tok = caches[i % len(caches)].get_or_fetch("inst:1", fetch, ttl=3300)
        with lock:
            results.append(tok.token)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, fetches


def test_single_flight_in_one_process(make_cache: Factory) -> None:
    results, fetches = _storm([make_cache()], 50)
    assert len(fetches) == 1
    assert results == ["ghs_1"] * 50


def test_single_flight_across_instances(make_cache: Factory) -> None:
    """Two cache instances on one store (for Redis: two clients, as two processes would have)."""
    results, fetches = _storm([make_cache(), make_cache()], 40)
    assert len(fetches) == 1
    assert set(results) == {"ghs_1"}


def test_a_token_about_to_expire_is_refetched(make_cache: Factory) -> None:
    cache = make_cache()
    cache.set("k", CachedToken("ghs_old", time.time() + 30), ttl=60)
    tok = cache.get_or_fetch("k", lambda: CachedToken("ghs_new", far()), ttl=3300, min_validity=60)
    assert tok.token == "ghs_new"
    assert cache.get_or_fetch("k", lambda: CachedToken("ghs_other", far()), ttl=3300).token == "ghs_new"


def test_a_failed_fetch_releases_the_lock_and_caches_nothing(make_cache: Factory) -> None:
    cache = make_cache()

    def boom() -> CachedToken:
        raise RuntimeError("GitHub down")

    with pytest.raises(RuntimeError):
        cache.get_or_fetch("k", boom, ttl=3300)
    assert cache.get("k") is None
    started = time.monotonic()
    assert cache.get_or_fetch("k", lambda: CachedToken("ghs_ok", far()), ttl=3300).token == "ghs_ok"
    assert time.monotonic() - started < 1  # not waiting out a stale lock


@pytest.mark.redis
def test_a_dead_holders_lock_expires_and_its_late_release_frees_nothing(redis_url: str) -> None:
    """The cross-process fetch lock (redis-py's Lock): a process that died holding it blocks the others
    for at most the lock timeout, and its release after expiry cannot free the next holder's lock."""
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    dead, alive, third = (RedisTokenCache.from_url(redis_url, prefix=prefix) for _ in range(3))
    try:
        stale = dead._try_lock("inst:1", 0.2)
        assert stale is not None
        assert alive._try_lock("inst:1", 5) is None
        time.sleep(0.3)
        handle = alive._try_lock("inst:1", 5)
        assert handle is not None
        dead._unlock("inst:1", stale)  # too late: must not release `alive`'s lock
        assert third._try_lock("inst:1", 5) is None
        alive._unlock("inst:1", handle)
        assert third._try_lock("inst:1", 5) is not None
    finally:
        for cache in (dead, alive, third):
            cache.close()
