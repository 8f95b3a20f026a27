"""A linked project on the in-memory twins (fake GitHub, memory unit of work, GitStore), for the engine's
unit tests: `make_world(tmp_path, strategy, mode)` yields a project imported from a small repository."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.models import Author, FileWrite
from ghsync.domain.sync import ConflictStrategy
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import ReconcileService

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
ADA = Author("Ada", "ada@example.com")
BASE_TEXT = "one\ntwo\nthree\nfour\nfive\n"


@dataclass
class World:
    github: InMemoryGitHub
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    versions: VersionService
    engine: ReconcileService
    project: str
    installation: int

    def remote(self, branch: str = "trunk") -> dict[str, bytes]:
        repo = self.github.repo(self.installation, "octo", "site")
        head = self.github.head("octo", "site", branch)
        assert head is not None
        return {e.path: repo.get_blob(e.sha) for e in repo.get_tree(repo.get_commit(head).tree_sha)}

    def local(self) -> dict[str, bytes]:
        head = self.store.head(self.project)
        assert head is not None
        return {
            e.path: self.store.read_file(self.project, head, e.path)
            for e in self.store.list_files(self.project, head)
        }

    def edit_locally(self, files: dict[str, str]) -> None:
        self.versions.create_version(
            self.project,
            message="local edit",
            writes=[FileWrite(p, c.encode()) for p, c in files.items()],
            author=ADA,
        )

    def push_on_github(self, files: dict[str, str | None]) -> str:
        return self.github.push("octo", "site", "trunk", files)  # type: ignore[arg-type]

    def set_strategy(self, strategy: ConflictStrategy) -> None:
        with self.uow() as uow:
            project = uow.projects.get(self.project)
            assert project is not None and project.link is not None
            uow.projects.save_link(self.project, replace(project.link, strategy=strategy))
            uow.commit()

    def open_conflict(self) -> Any:
        with self.uow() as uow:
            return uow.conflicts.open_for(self.project)

    def last_operation(self) -> Any:
        with self.uow() as uow:
            return uow.operations.latest(self.project)


def make_world(tmp_path: Path, strategy: str, mode: str = "direct_commit") -> Iterator[World]:
    with InMemoryGitHub(tmp_path / "github") as github:
        installation = github.add_installation("octo", selection="all")
        github.add_repo("octo", "site", default_branch="trunk", files={"a.txt": BASE_TEXT, "b.txt": "b\n"})
        queue = InMemoryQueue()
        queue.register("reconcile", lambda args: None)
        uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
        store = GitStore(tmp_path / "projects", max_file_size=100 * 1024 * 1024)
        projects = ProjectService(uow, store)
        links = LinkService(uow, store, projects, github, SecretBox.from_setting([KEY]), queue)
        project = projects.create_project("site").id
        links.link(project, owner="octo", repo="site", sync_mode=mode, conflict_strategy=strategy)
        engine = ReconcileService(uow, store, github)
        engine.reconcile(project)  # import: the base pair
        yield World(github, uow, store, VersionService(uow, store, projects), engine, project, installation)
