"""Polling and the delivery sweep on the SQL unit of work (SQLite and PostgreSQL): every linked project is
read across pages, drift becomes committed `polling` outbox rows with their audit, and the sweep's audit
rows (App-wide ones with no project too) are stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.domain.link import Link, Project, Tracking
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.services.delivery_sweep import ACTION_REQUESTED, DeliverySweep
from ghsync.services.polling import POLLING_REASON, PollingService

PROJECTS = 520  # more than one page (500) of projects


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[InMemoryGitHub]:
    with InMemoryGitHub(tmp_path / "github") as github:
        yield github


def test_polling_reads_every_page_of_projects_and_commits_its_requests(
    engine: Engine, hub: InMemoryGitHub
) -> None:
    installation = hub.add_installation("octo", selection="all")
    repos = [hub.add_repo("octo", f"r{i}", files={"a": f"{i}\n"}) for i in range(4)]
    uow = SqlUnitOfWorkFactory(engine)
    ids: list[str] = []
    with uow() as tx:
        for i in range(PROJECTS):
            repo = repos[i % len(repos)]
            pid = str(uuid.uuid4())
            tx.projects.add(Project(id=pid, name=f"p{i}", created_at=datetime.now(UTC)))
            link = Link(pid, "octo", repo.name, repo.id, installation, "main", False,
                        SyncMode.DIRECT_COMMIT, ConflictStrategy.MANUAL, i % 7 != 6)  # fmt: skip
            head = hub.head("octo", repo.name, "main")
            tx.projects.link(pid, link, webhook_secret="", tracking=Tracking(last_remote_main_sha=head))
            ids.append(pid)
        tx.commit()
    polling = PollingService(uow, hub, interval_seconds=300)
    enabled = [pid for i, pid in enumerate(ids) if i % 7 != 6]
    assert sorted(t.project_id for t in polling.targets()) == sorted(enabled)

    hub.push("octo", "r1", "main", {"b": "moved\n"})
    report = polling.poll_all()

    moved = sorted(pid for i, pid in enumerate(ids) if i % 4 == 1 and i % 7 != 6)
    assert sorted(report.requested) == moved and report.graphql_queries == 1
    with uow() as tx:
        assert all([r.reason for r in tx.requests.pending(pid)] == [POLLING_REASON] for pid in moved)
        audit = tx.audit.for_project(moved[0], limit=5)
    assert audit[0].action == "github.drift_detected" and audit[0].details["why"] == "head_moved"
    assert polling.poll_all().already_pending == report.requested


def test_the_sweeps_audit_rows_are_stored(engine: Engine, hub: InMemoryGitHub) -> None:
    uow = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    hub.record_hook_delivery("app-wide", "installation", status_code=502, at=now - timedelta(minutes=1))
    report = DeliverySweep(uow, hub).sweep()
    assert report.requested == ["app-wide"]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT action, project_id FROM audit_log").all()
    assert [(row[0], row[1]) for row in rows] == [(ACTION_REQUESTED, None)]
