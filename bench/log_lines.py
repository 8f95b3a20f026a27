"""Benchmark (not a test): what one log line costs as the secrets the process must keep out of the log
grow in number.

Every log line is searched for every secret remembered (observability/logging.py). A process remembers
each installation token (one an hour per installation, eight spellings each) and each App JWT; the bench
remembers SPELLINGS[i] spellings of token-like secrets, live, then times a delivery's log line (median of
ROUNDS batches of LINES lines, rendered to /dev/null), and the first line after one more token is
remembered (which compiles the search again).

Writes bench/results/log_lines.json. Run: .venv/bin/python bench/log_lines.py (seconds).
"""

from __future__ import annotations

import io
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import structlog
from _results import write_results

from ghsync.observability.logging import configure_logging, known_secrets, remember_secret

RESULTS = Path(__file__).parent / "results" / "log_lines.json"
SPELLINGS = (0, 1_600, 20_000)  # none; a hundred installations' live tokens; far more than ever live
LINES = 200
ROUNDS = 5


def remember_a_token() -> None:
    value = f"ghs_{secrets.token_urlsafe(27)}"
    try:
        remember_secret(value, f"x-access-token:{value}", expires_at=time.time() + 3600)
    except TypeError:  # a build from before tokens expired from memory (to compare with)
        remember_secret(value, f"x-access-token:{value}")


def log_line(log: Any) -> None:
    log.info("webhook_received", delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958", github_event="push",
             action=None, outcome="queued", projects=["0b0e7d5e-3c1a-4f3e-9a57-6f8f1f2b9c11"],
             requests=["5f0c8a52-6e0b-4c1f-9d1e-2f4a9b7c3d10"])  # fmt: skip


def main() -> None:
    started = time.perf_counter()
    configure_logging("info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()))  # rendered, unkept
    log = structlog.get_logger("bench")
    rows = []
    for wanted in SPELLINGS:
        while len(known_secrets()) < wanted:
            remember_a_token()
        log_line(log)  # compiles what was remembered
        per_line = []
        for _ in range(ROUNDS):
            began = time.perf_counter()
            for _ in range(LINES):
                log_line(log)
            per_line.append((time.perf_counter() - began) / LINES)
        remember_a_token()
        began = time.perf_counter()
        log_line(log)
        after_a_new_token = time.perf_counter() - began
        row = {
            "spellings": len(known_secrets()),
            "us_per_line": round(statistics.median(per_line) * 1e6, 1),
            "first_line_after_a_new_token_ms": round(after_a_new_token * 1000, 2),
        }
        print(f"{row['spellings']:>7} spellings: {row['us_per_line']:>9} us a line; the first after a new "
              f"token {row['first_line_after_a_new_token_ms']} ms")  # fmt: skip
        rows.append(row)
    write_results(RESULTS, time.perf_counter() - started, rows=rows)


if __name__ == "__main__":
    main()
