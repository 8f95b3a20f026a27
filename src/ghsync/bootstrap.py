"""The one place that wires ghsync together: settings in, a container of ready services out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.queue.embedded import EmbeddedQueue
from ghsync.adapters.store.git_store import GitStore
from ghsync.config import Settings
from ghsync.domain.errors import ConfigError
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import record_noop_reconcile


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: GitStore
    queue: EmbeddedQueue
    projects: ProjectService
    versions: VersionService

    def close(self) -> None:
        self.engine.dispose()


def build_container(settings: Settings, *, require_migrated: bool = True) -> Container:
    """Build every service from the settings; refuses an un-migrated database when asked to."""
    engine = make_engine(settings.effective_database_url)
    if require_migrated and not migrate.is_up_to_date(engine):
        current = migrate.current_revision(engine) or "empty"
        engine.dispose()
        raise ConfigError(
            f"the database is not migrated (at {current}, head is {migrate.head_revision()}): "
            "run `ghsync migrate` first"
        )
    store = GitStore(
        settings.ghsync_data_dir / "projects", max_file_size=settings.github_sync_max_file_size
    )
    queue = EmbeddedQueue(
        engine, reconcile_handler=lambda project_id, reasons: record_noop_reconcile(
            engine, project_id, reasons
        )
    )
    projects = ProjectService(engine, store)
    versions = VersionService(engine, store, projects, queue)
    return Container(settings, engine, store, queue, projects, versions)
