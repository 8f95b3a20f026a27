"""Summaries of the request log (``GET /_emulator/requests/summary``), for benchmarks and tests.

Pure: rows in, counts out. A route is ``"<METHOD> <template>"`` (``"PATCH
/repos/{owner}/{repo}/git/refs/{ref}"``), or ``"<METHOD> <path>"`` for a request no route served.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from github_emulator.core import RequestLogEntry


def route_key(row: RequestLogEntry) -> str:
    return f"{row.method} {row.route or row.path}"


def _counts() -> dict[str, int]:
    return {"requests": 0, "content_creating": 0, "faulted": 0}


def _add(counts: dict[str, int], row: RequestLogEntry) -> None:
    counts["requests"] += 1
    counts["content_creating"] += int(row.content_creating)
    counts["faulted"] += int(row.fault is not None and row.fault != "latency")


def summarize(rows: Iterable[RequestLogEntry]) -> dict[str, Any]:
    """``{requests, content_creating, faulted, by_kind, routes, installations: [...]}``.

    ``installations`` holds one entry per installation id (``null`` for requests made without
    an installation token), each with its own totals and ``routes``.
    """
    total = _counts()
    by_kind: dict[str, int] = {}
    routes: dict[str, dict[str, int]] = {}
    per_installation: dict[int | None, dict[str, Any]] = {}
    for row in rows:
        _add(total, row)
        by_kind[row.kind] = by_kind.get(row.kind, 0) + 1
        key = route_key(row)
        _add(routes.setdefault(key, _counts()), row)
        entry = per_installation.setdefault(
            row.installation_id, {"installation_id": row.installation_id, **_counts(), "routes": {}}
        )
        _add(entry, row)
        _add(entry["routes"].setdefault(key, _counts()), row)
    installations = sorted(
        per_installation.values(), key=lambda e: (e["installation_id"] is None, e["installation_id"] or 0)
    )
    return {
        **total,
        "by_kind": by_kind,
        "routes": dict(sorted(routes.items())),
        "installations": installations,
    }
