"""Secrets at rest: AES-GCM envelopes bound to their row, with key ids and rotation."""

from __future__ import annotations

import base64
import os

import pytest

from ghsync.adapters.secrets import SecretBox, SecretError
from ghsync.domain.errors import ConfigError

OLD, NEW = ("old", os.urandom(32)), ("new", os.urandom(32))
CONTEXT = "projects/1/github_webhook_secret"


def test_round_trip_and_the_envelope_hides_the_secret() -> None:
    box = SecretBox([OLD])
    envelope = box.encrypt("hunter2", context=CONTEXT)
    assert envelope.startswith("v1:old:")
    assert "hunter2" not in envelope
    assert box.decrypt(envelope, context=CONTEXT) == "hunter2"
    assert box.encrypt("hunter2", context=CONTEXT) != envelope  # fresh nonce each time


def test_an_envelope_is_bound_to_its_row() -> None:
    box = SecretBox([OLD])
    envelope = box.encrypt("hunter2", context=CONTEXT)
    with pytest.raises(SecretError, match="another row"):
        box.decrypt(envelope, context="projects/2/github_webhook_secret")


def test_tampering_is_detected() -> None:
    box = SecretBox([OLD])
    envelope = box.encrypt("hunter2", context=CONTEXT)
    head, payload = envelope.rsplit(":", 1)
    raw = bytearray(base64.b64decode(payload))
    raw[len(raw) // 2] ^= 0x01  # one bit of the ciphertext (a base64 character can carry only padding bits)
    flipped = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SecretError):
        box.decrypt(f"{head}:{flipped}", context=CONTEXT)
    with pytest.raises(SecretError, match="not a ghsync secret"):
        box.decrypt("plain text", context=CONTEXT)


def test_rotation_re_encrypts_under_the_primary_key() -> None:
    envelope = SecretBox([OLD]).encrypt("hunter2", context=CONTEXT)
    keyring = SecretBox([NEW, OLD])
    assert keyring.needs_rotation(envelope)
    rotated = keyring.rotate(envelope, context=CONTEXT)
    assert keyring.key_id_of(rotated) == "new" and not keyring.needs_rotation(rotated)
    assert SecretBox([NEW]).decrypt(rotated, context=CONTEXT) == "hunter2"
    with pytest.raises(SecretError, match="not configured"):
        SecretBox([NEW]).decrypt(envelope, context=CONTEXT)


def test_no_keys_means_no_secrets_stored() -> None:
    with pytest.raises(ConfigError, match="GHSYNC_ENCRYPTION_KEYS"):
        SecretBox([]).encrypt("x", context=CONTEXT)
