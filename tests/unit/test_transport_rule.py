"""The transport rule: which changes go through the Git Data API and which by git (table-driven)."""

from __future__ import annotations

import pytest

from ghsync.domain.models import FileMode
from ghsync.domain.outbound import (
    BlobFacts,
    ChangeShape,
    Transport,
    TransportThresholds,
    choose_transport,
    plan_writes,
)
from ghsync.domain.trees import TreeEntry

MIB = 1024 * 1024
RULE = TransportThresholds(
    min_files=100, min_inline_bytes=MIB, min_missing_blobs=2, min_missing_blob_bytes=MIB
)
API, GIT = Transport.GIT_DATA_API, Transport.GIT


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # small text changes stay on the Git Data API
        (ChangeShape(files=1, inline_bytes=100, missing_blobs=0, missing_blob_bytes=0), API),
        (ChangeShape(files=99, inline_bytes=MIB - 1, missing_blobs=0, missing_blob_bytes=0), API),
        # one binary blob GitHub lacks, under the byte threshold: one extra request, still the API
        (ChangeShape(files=3, inline_bytes=10, missing_blobs=1, missing_blob_bytes=MIB - 1), API),
        # each threshold alone, at its value, sends the change by git
        (ChangeShape(files=100, inline_bytes=0, missing_blobs=0, missing_blob_bytes=0), GIT),
        (ChangeShape(files=1, inline_bytes=MIB, missing_blobs=0, missing_blob_bytes=0), GIT),
        (ChangeShape(files=2, inline_bytes=0, missing_blobs=2, missing_blob_bytes=20), GIT),
        (ChangeShape(files=1, inline_bytes=0, missing_blobs=1, missing_blob_bytes=MIB), GIT),
        # an empty repository: only git can make the first commit
        (
            ChangeShape(
                files=1, inline_bytes=5, missing_blobs=0, missing_blob_bytes=0, repository_empty=True
            ),
            GIT,
        ),
        # a deletion-only change is a tree request however many paths: files count, bytes do not
        (ChangeShape(files=500, inline_bytes=0, missing_blobs=0, missing_blob_bytes=0), GIT),
    ],
)
def test_the_rule(shape: ChangeShape, expected: Transport) -> None:
    assert choose_transport(shape, RULE) is expected


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (ChangeShape(files=10_000, inline_bytes=50 * MIB, missing_blobs=300, missing_blob_bytes=MIB), API),
        # the Git Data API cannot reach an empty repository: git even when disabled, and the engine
        # refuses it when no git transport is configured
        (
            ChangeShape(
                files=1, inline_bytes=1, missing_blobs=0, missing_blob_bytes=0, repository_empty=True
            ),
            GIT,
        ),
    ],
)
def test_git_disabled_keeps_everything_else_on_the_api(shape: ChangeShape, expected: Transport) -> None:
    assert choose_transport(shape, TransportThresholds(enabled=False)) is expected


def test_the_shape_of_a_plan_counts_only_what_github_lacks() -> None:
    remote = {
        "keep.txt": TreeEntry("keep.txt", FileMode.REGULAR, "a" * 40),
        "gone.txt": TreeEntry("gone.txt", FileMode.REGULAR, "b" * 40),
    }
    local = {
        "keep.txt": remote["keep.txt"],
        "moved.txt": TreeEntry("moved.txt", FileMode.REGULAR, "b" * 40),  # a rename: GitHub has the blob
        "new.md": TreeEntry("new.md", FileMode.REGULAR, "c" * 40),
        "logo.png": TreeEntry("logo.png", FileMode.REGULAR, "d" * 40),
        "copy.png": TreeEntry("copy.png", FileMode.REGULAR, "d" * 40),  # the same blob, uploaded once
    }
    facts = {"c" * 40: BlobFacts(size=12, text=True), "d" * 40: BlobFacts(size=5000, text=False)}
    plan = plan_writes(remote, local, facts)
    shape = ChangeShape.of(plan)
    assert shape == ChangeShape(files=5, inline_bytes=12, missing_blobs=1, missing_blob_bytes=5000)
    assert choose_transport(shape, RULE) is API
    assert choose_transport(ChangeShape.of(plan, repository_empty=True), RULE) is GIT


def test_the_settings_carry_the_rule_s_defaults_and_reach_the_engine() -> None:
    from ghsync.bootstrap import engine_settings
    from ghsync.config import load_settings

    assert engine_settings(load_settings({})).git_transport == TransportThresholds()
    tuned = load_settings(
        {
            "GHSYNC_GIT_TRANSPORT_ENABLED": "false",
            "GHSYNC_GIT_TRANSPORT_MIN_FILES": "7",
            "GHSYNC_GIT_TRANSPORT_MIN_INLINE_BYTES": "8",
            "GHSYNC_GIT_TRANSPORT_MIN_MISSING_BLOBS": "9",
            "GHSYNC_GIT_TRANSPORT_MIN_MISSING_BLOB_BYTES": "10",
        }
    )
    assert engine_settings(tuned).git_transport == TransportThresholds(
        enabled=False, min_files=7, min_inline_bytes=8, min_missing_blobs=9, min_missing_blob_bytes=10
    )
