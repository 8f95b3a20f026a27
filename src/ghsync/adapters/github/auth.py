"""GitHub App authentication: the App JWT (RS256) and installation tokens through a `TokenCache`.

- JWT: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
  (`iss` = App id, `iat` 60 s in the past against clock drift, `exp` at most 10 minutes after).
- Installation tokens: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
  (they expire after one hour; we reuse one for `token_cache_ttl`, 55 minutes by default).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

from ghsync.adapters.github.token_cache import CachedToken, TokenCache
from ghsync.observability.logging import remember_secret

JWT_LIFETIME = 600  # GitHub's maximum
JWT_BACKDATE = 60


def load_private_key(value: str) -> str:
    """PEM text (also with literal `\\n` as env files often have) or a path to a PEM file -> PEM text.

    Raises ValueError without echoing the value (it may be the key itself).
    """
    text = value.strip()
    if "-----BEGIN" in text:
        text = text.replace("\\n", "\n").strip()
    else:
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(
                f"the GitHub App private key is neither PEM text nor a readable file ({exc.strerror})"
            ) from None
    try:
        serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the GitHub App private key is not a valid unencrypted PEM private key") from None
    return text + "\n"


class AppJwt:
    """Signs App JWTs, reusing one until a minute before it expires."""

    def __init__(
        self, app_id: int | str, private_key: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._app_id = str(app_id)
        self._key = load_private_key(private_key)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[str, float] | None = None

    def __repr__(self) -> str:
        return f"AppJwt(app_id={self._app_id!r})"

    def token(self) -> str:
        now = self._clock()
        with self._lock:
            if self._cached is not None and self._cached[1] - 60 > now:
                return self._cached[0]
            iat = int(now) - JWT_BACKDATE
            exp = iat + JWT_LIFETIME
            encoded = jwt.encode({"iss": self._app_id, "iat": iat, "exp": exp}, self._key, algorithm="RS256")
            remember_secret(encoded, expires_at=exp)
            self._cached = (encoded, float(exp))
            return encoded

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None


def parse_expires_at(value: str | None, fallback: float) -> float:
    if not value:
        return fallback
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return fallback


class InstallationTokens:
    """Installation tokens through a `TokenCache`: single-flight fetch, drop-on-401."""

    def __init__(
        self,
        *,
        app_id: int | str,
        api_url: str,
        cache: TokenCache,
        fetch: Callable[[int], CachedToken],
        ttl: float,
        min_validity: float = 60.0,
    ) -> None:
        # The key names the GitHub (by URL hash) and the App, so one Redis can serve several.
        host = hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:12]
        self._prefix = f"{host}:{app_id}:"
        self._cache = cache
        self._fetch = fetch
        self._ttl = ttl
        self._min_validity = min_validity

    def key(self, installation_id: int) -> str:
        return f"{self._prefix}{installation_id}"

    def token(self, installation_id: int) -> str:
        cached = self._cache.get_or_fetch(
            self.key(installation_id),
            lambda: self._fetch(installation_id),
            ttl=self._ttl,
            min_validity=self._min_validity,
        )
        return cached.token

    def invalidate(self, installation_id: int, token: str) -> None:
        """Drop `token` (it got a 401) unless another caller already replaced it."""
        self._cache.delete(self.key(installation_id), only_if=token)
