"""Secrets at rest: AES-256-GCM envelopes with a key id, bound to the row they belong to.

An envelope is `v1:<key id>:<base64(nonce || ciphertext+tag)>`. The *context* (for example
`projects/<id>/github_webhook_secret`) is authenticated as associated data, so an envelope copied into
another row or column does not decrypt. Keys come from GHSYNC_ENCRYPTION_KEYS; the first one encrypts,
all of them decrypt, and `rotate` re-encrypts an envelope under the first (primary) key.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ghsync.domain.errors import ConfigError, GhsyncError
from ghsync.observability.logging import remember_secret

VERSION = "v1"
NONCE_BYTES = 12


class SecretError(GhsyncError):
    """An envelope could not be opened: unknown key id, tampering, or the wrong row."""

    code = "secret_unreadable"


class SecretBox:
    """Encrypts and decrypts secrets with a keyring whose first key is the primary."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        for key_id, key in keys:
            if len(key) != 32:
                raise ConfigError(f"encryption key {key_id!r} must be 32 bytes")
            if ":" in key_id:
                raise ConfigError(f"encryption key id {key_id!r} must not contain ':'")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self._primary = keys[0][0] if keys else None

    @classmethod
    def from_setting(cls, entries: Sequence[str]) -> SecretBox:
        """Build from GHSYNC_ENCRYPTION_KEYS entries (`key_id:base64`), already validated by config."""
        keys = []
        for entry in entries:
            key_id, _, encoded = entry.partition(":")
            keys.append((key_id, base64.b64decode(encoded)))
        return cls(keys)

    @property
    def configured(self) -> bool:
        return self._primary is not None

    def encrypt(self, plaintext: str, *, context: str) -> str:
        if self._primary is None:
            raise ConfigError("GHSYNC_ENCRYPTION_KEYS must be set to store secrets")
        remember_secret(plaintext)  # a sealed value is a secret: never to be logged
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext.encode(), context.encode())
        payload = base64.b64encode(nonce + sealed).decode()
        return f"{VERSION}:{self._primary}:{payload}"

    def decrypt(self, envelope: str, *, context: str) -> str:
        _, key_id, payload = self._split(envelope)
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretError(f"secret was encrypted with key {key_id!r}, which is not configured")
        try:
            raw = base64.b64decode(payload, validate=True)
            plaintext = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (binascii.Error, InvalidTag, ValueError):
            raise SecretError("secret does not open: tampered, or it belongs to another row") from None
        opened = plaintext.decode()
        remember_secret(opened)
        return opened

    def key_id_of(self, envelope: str) -> str:
        return self._split(envelope)[1]

    def needs_rotation(self, envelope: str) -> bool:
        return self.key_id_of(envelope) != self._primary

    def rotate(self, envelope: str, *, context: str) -> str:
        """Re-encrypt under the primary key (unchanged if it already is)."""
        if not self.needs_rotation(envelope):
            return envelope
        return self.encrypt(self.decrypt(envelope, context=context), context=context)

    @staticmethod
    def _split(envelope: str) -> tuple[str, str, str]:
        parts = envelope.split(":", 2)
        if len(parts) != 3 or parts[0] != VERSION:
            raise SecretError("not a ghsync secret envelope")
        return parts[0], parts[1], parts[2]
