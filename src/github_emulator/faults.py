"""Scripted faults: which requests fail, and how (an error status, latency, a reset, a cut body).

A :class:`Fault` matches requests by method, path and (optionally) installation, fires on every
``every``-th match, or with probability ``probability`` from its own seeded random generator (so a
run is reproducible), at most ``count`` times. What it does is its ``kind``:

* ``status``: answer ``status`` with ``body``/``headers`` instead of serving the request (without a
  ``status``, only ``delay_ms`` of latency is added and the request is served);
* ``reset``: reset the TCP connection before the request is served (the client sees a connection
  reset and the request had no effect);
* ``reset_after``: serve the request, then reset the connection instead of answering (the request
  took effect, the client cannot know: the case idempotent retries exist for);
* ``truncate``: serve the request and send its headers and the first half of its body, then close
  the connection (the client sees a body shorter than ``Content-Length``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "reset", "reset_after", "truncate"]
FAULT_KINDS: tuple[str, ...] = ("status", "reset", "reset_after", "truncate")


@dataclass
class Fault:
    """A scripted failure for requests matching ``method``/``path_regex`` (``count`` times)."""

    id: int
    path_regex: str
    count: int
    method: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_ms: int = 0
    kind: str = "status"
    every: int = 1
    probability: float = 1.0
    seed: int | None = None
    installation_id: int | None = None
    seen: int = 0
    fired: int = 0
    _rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if self.every < 1:
            raise ValueError("every must be at least 1")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        re.compile(self.path_regex)
        self._rng = random.Random(self.seed)

    def matches(self, method: str, path: str, installation_id: int | None = None) -> bool:
        """Whether the request is one this fault is about (whether it fires is :meth:`take`)."""
        if self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.installation_id is not None and self.installation_id != installation_id:
            return False
        return re.search(self.path_regex, path) is not None

    def take(self, method: str, path: str, installation_id: int | None = None) -> bool:
        """Count a matching request and say whether the fault fires for it (spending one)."""
        if not self.matches(method, path, installation_id):
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        if self.probability < 1.0:
            assert self._rng is not None
            if self._rng.random() >= self.probability:
                return False
        self.count -= 1
        self.fired += 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def take_fault(faults: list[Fault], method: str, path: str, installation_id: int | None) -> Fault | None:
    """The first fault that fires for this request (the caller holds the lock on ``faults``)."""
    for fault in faults:
        if fault.take(method, path, installation_id):
            return fault
    return None
