"""Row ids of the busy tables: UUID version 7 (RFC 9562), time-ordered so new rows append to the index."""

from __future__ import annotations

import time
import uuid

from ghsync.adapters.db.ids import uuid7


def test_an_id_is_a_version_7_rfc_uuid_holding_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    earlier = uuid7()
    time.sleep(0.002)
    later = uuid7()
    assert str(earlier) < str(later)
    assert earlier.bytes < later.bytes  # as a database's UUID or 16-byte column orders them


def test_ids_made_in_the_same_millisecond_are_still_distinct() -> None:
    made = [uuid7() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert {m.version for m in made} == {7}
