"""The secrets port: seal secrets at rest (webhook secrets), bound to the row they belong to.

The adapter is `ghsync.adapters.secrets.SecretBox` (AES-256-GCM, versioned envelope with the key id).
"""

from __future__ import annotations

from typing import Protocol


class SecretSealer(Protocol):
    @property
    def configured(self) -> bool:
        """Whether a key is set (GHSYNC_ENCRYPTION_KEYS); without one nothing can be sealed."""

    def encrypt(self, plaintext: str, *, context: str) -> str: ...

    def decrypt(self, envelope: str, *, context: str) -> str: ...

    def needs_rotation(self, envelope: str) -> bool:
        """Whether the envelope is sealed under a key other than the primary one."""

    def rotate(self, envelope: str, *, context: str) -> str: ...
