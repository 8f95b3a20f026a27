"""Version creation through the service: concurrent writers, and crash recovery of the index."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghsync.adapters.db.models import VersionRow
from ghsync.bootstrap import build_container
from ghsync.config import load_settings
from ghsync.domain.models import FileWrite

THREADS = 20


def test_twenty_threads_create_twenty_versions(tmp_path: Path, database_url: str) -> None:
    from ghsync.adapters.db import migrate
    from ghsync.adapters.db.engine import make_engine

    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    container = build_container(load_settings({}, ghsync_data_dir=tmp_path, database_url=database_url))
    try:
        project = container.projects.create_project("busy")
        barrier = threading.Barrier(THREADS)
        errors: list[BaseException] = []

        def write(index: int) -> None:
            try:
                barrier.wait()
                container.versions.create_version(
                    project.id,
                    message=f"writer {index}",
                    writes=[FileWrite(f"writers/{index}.txt", f"{index}\n".encode())],
                )
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        with Session(container.engine) as session:
            rows = list(
                session.scalars(
                    select(VersionRow)
                    .where(VersionRow.project_id == uuid.UUID(project.id))
                    .order_by(VersionRow.number)
                )
            )
        assert [row.number for row in rows] == list(range(1, THREADS + 1))
        assert {row.message for row in rows} == {f"writer {i}" for i in range(THREADS)}
        assert len({row.commit_sha for row in rows}) == THREADS
        files = {entry.path for entry in container.versions.list_files(project.id, "latest")[1]}
        assert files == {f"writers/{i}.txt" for i in range(THREADS)}
        assert all(isinstance(row.id, uuid.UUID) for row in rows)
    finally:
        container.close()


def test_a_version_committed_before_a_crash_is_indexed_at_start_up(tmp_path: Path, sqlite_url: str) -> None:
    from ghsync.adapters.db import migrate
    from ghsync.adapters.db.engine import make_engine

    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    engine.dispose()
    container = build_container(load_settings({}, ghsync_data_dir=tmp_path, database_url=sqlite_url))
    try:
        project = container.projects.create_project("crashy")
        container.versions.create_version(project.id, message="indexed", writes=[FileWrite("a", b"1")])
        # The process dies after the store's commit, before the row insert: only git has it.
        orphan = container.store.create_version(
            str(project.id), version_id=str(uuid.uuid4()), message="orphan", writes=[FileWrite("a", b"2")]
        )
        assert [v.number for v in container.versions.list_versions(project.id).items] == [1]

        assert container.versions.reindex_all() == 1

        latest = container.versions.resolve(project.id, "latest")
        assert (latest.number, latest.commit_sha, latest.message) == (2, orphan.commit_sha, "orphan")
        assert container.versions.reindex_all() == 0
    finally:
        container.close()
