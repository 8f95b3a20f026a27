"""Benchmark (not a test): the CPU one delivery costs the webhook receiver's batch step
(`WebhookService.receive_many`: dedup, record, request the reconcile, commit), by batch size, on SQLite
and on PostgreSQL, in this process (no HTTP, no threads): the part of `bench/webhooks.py`'s figure that
group commit amortises, measured without the load client's noise.

Each delivery is the bench's signed-push payload (`bench/webhooks.py`), parsed, to a linked project; each
batch is one unit of work. CPU time is this process's (`time.process_time`); wall time includes the
database's own work (PostgreSQL's server runs in another process).

Writes bench/results/webhook_batches.json. Run: .venv/bin/python bench/webhook_batches.py (about a minute).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from _results import write_results
from webhooks import on_each_database, prepare_ghsync, push_payload

from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.domain.webhooks import parse_headers, parse_payload
from ghsync.observability.logging import configure_logging
from ghsync.services.webhooks import Delivery, WebhookService

RESULTS = Path(__file__).parent / "results" / "webhook_batches.json"
BATCH_SIZES = (1, 4, 16, 64)
DELIVERIES = 3200  # per batch size, after one batch of warm-up


def measure(database_url: str, data_dir: Path) -> list[dict[str, Any]]:
    prepare_ghsync(database_url, data_dir)
    engine = make_engine(database_url)
    service = WebhookService(SqlUnitOfWorkFactory(engine), delivery_ttl=timedelta(days=7))
    payload = parse_payload(push_payload())

    def delivery() -> Delivery:
        headers = {"x-github-event": "push", "x-github-delivery": str(uuid.uuid4()), "x-github-hook-id": "1"}
        return Delivery(parse_headers(headers), payload)

    rows = []
    for size in BATCH_SIZES:
        batches = [[delivery() for _ in range(size)] for _ in range(DELIVERIES // size + 1)]
        service.receive_many(batches.pop())  # warm-up: connections, compiled statements
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            results = service.receive_many(batch)
            assert all(getattr(r, "outcome", None) == "queued" for r in results), results
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n = len(batches) * size
        rows.append(
            {
                "batch": size,
                "deliveries": n,
                "cpu_us_per_delivery": round(cpu / n * 1e6, 1),
                "wall_us_per_delivery": round(wall / n * 1e6, 1),
            }
        )
    engine.dispose()
    return rows


def main() -> None:
    configure_logging("warning")  # one log line per delivery would be most of what is measured
    started = time.perf_counter()
    results = on_each_database(measure)
    for database, rows in results.items():
        for row in rows if isinstance(rows, list) else []:
            print(f"{database:10} batch {row['batch']:>3}: {row['cpu_us_per_delivery']:>7} us CPU, "
                  f"{row['wall_us_per_delivery']:>7} us wall per delivery")  # fmt: skip
        if isinstance(rows, str):
            print(f"{database:10} {rows}")
    total = time.perf_counter() - started
    write_results(
        RESULTS,
        total,
        results=results,
    )


if __name__ == "__main__":
    main()
