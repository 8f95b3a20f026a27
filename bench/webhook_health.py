"""Benchmark (not a test): how long `GET /v1/webhooks/github/{projectId}/health` takes to read a project's
recent deliveries when the dedup table holds a week of a busy installation's deliveries.

The table keeps every delivery for `GITHUB_DELIVERY_TTL` (7 days by default): 1,000 repositories with 30
pushes a day each are 210,000 rows. The bench fills it with DELIVERIES rows over PROJECTS projects (one
ping per project, early), then times `WebhookService.health` for one project (the median of ROUNDS), on
SQLite and on PostgreSQL, and prints the plan of its query.

Writes bench/results/webhook_health.json. Run: .venv/bin/python bench/webhook_health.py (about a minute).
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _results import write_results
from sqlalchemy import text
from webhooks import on_each_database

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.link import Link, Tracking
from ghsync.domain.operations import WebhookDelivery
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.services.projects import ProjectService
from ghsync.services.webhooks import WebhookService

RESULTS = Path(__file__).parent / "results" / "webhook_health.json"
PROJECTS = 1000
DELIVERIES = 210_000
ROUNDS = 20
TTL = timedelta(days=7)


def fill(uow: SqlUnitOfWorkFactory, data_dir: Path) -> list[str]:
    """PROJECTS linked projects and DELIVERIES deliveries over the last week, spread at random."""
    projects = ProjectService(uow, GitStore(data_dir, max_file_size=1 << 20))
    ids = [projects.create_project(f"site-{i}").id for i in range(PROJECTS)]
    with uow() as tx:
        for i, pid in enumerate(ids):
            link = Link(pid, "octo", f"site-{i}", 1000 + i, 77, "main", False, SyncMode.DIRECT_COMMIT,
                        ConflictStrategy.MANUAL, True)  # fmt: skip
            tx.projects.link(pid, link, webhook_secret="", tracking=Tracking())
        tx.commit()
    rng = random.Random(1)
    now = datetime.now(UTC)
    start = now - TTL
    rows = [
        WebhookDelivery(
            str(uuid.uuid4()), "ping", "processed", start + TTL, project_id=pid, received_at=start
        )
        for pid in ids
    ]
    for i in range(DELIVERIES - PROJECTS):
        at = start + (now - start) * (i / DELIVERIES)
        project = rng.choice(ids)
        rows.append(WebhookDelivery(str(uuid.uuid4()), "push", "queued", at + TTL, project_id=project,
                                    installation_id=77, received_at=at))  # fmt: skip
    for first in range(0, len(rows), 10_000):
        with uow() as tx:
            tx.deliveries.record_all(rows[first : first + 10_000])
            tx.commit()
    return ids


def measure(database_url: str, data_dir: Path) -> dict[str, Any]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    uow = SqlUnitOfWorkFactory(engine)
    ids = fill(uow, data_dir)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    service = WebhookService(uow, delivery_ttl=TTL)
    project = ids[len(ids) // 2]
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        health = service.health(project)
        seconds.append(time.perf_counter() - started)
    assert health.last_delivery is not None and health.last_ping is not None
    query = (
        "SELECT delivery_id FROM webhook_deliveries WHERE project_id = :p "
        "ORDER BY received_at DESC, delivery_id DESC LIMIT 50"
    )
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    key = uuid.UUID(project).hex if engine.dialect.name == "sqlite" else project
    with engine.connect() as connection:
        plan = [
            " ".join(str(c) for c in row) for row in connection.execute(text(explain + query), {"p": key})
        ]
    engine.dispose()
    return {
        "deliveries": DELIVERIES,
        "projects": PROJECTS,
        "health_ms_median": round(statistics.median(seconds) * 1000, 2),
        "health_ms_max": round(max(seconds) * 1000, 2),
        "plan": plan,
    }


def main() -> None:
    started = time.perf_counter()
    results = on_each_database(measure)
    for database, row in results.items():
        if isinstance(row, str):
            print(f"{database:10} {row}")
            continue
        plan = " | ".join(row["plan"])
        print(f"{database:10} health over {row['deliveries']:,} deliveries: median "
              f"{row['health_ms_median']} ms, max {row['health_ms_max']} ms; plan: {plan}")  # fmt: skip
    write_results(RESULTS, time.perf_counter() - started, results=results)


if __name__ == "__main__":
    main()
