"""The one place that wires ghsync together: settings in, a container of ready services out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig, InMemoryTokenCache, RedisTokenCache
from ghsync.adapters.queue.embedded import EmbeddedQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.config import Settings
from ghsync.domain.errors import ConfigError
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import NoopReconciler


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: GitStore
    queue: EmbeddedQueue
    projects: ProjectService
    versions: VersionService
    github: GitHubAppClient | None
    links: LinkService

    def close(self) -> None:
        if self.github is not None:
            self.github.close()
        self.engine.dispose()


def build_github_client(settings: Settings) -> GitHubAppClient | None:
    """The App client, or None when no App is configured (linking then answers 503)."""
    if not settings.github_app_id or not settings.github_app_private_key:
        return None
    config = GitHubAppConfig(
        app_id=settings.github_app_id,
        private_key=settings.github_app_private_key,
        api_url=settings.github_api_url,
        token_cache_ttl=settings.github_token_cache_ttl,
        rate_limit_buffer=settings.github_rate_limit_buffer,
    )
    # Tokens are shared by every process through Redis when it is configured.
    cache = (
        RedisTokenCache.from_url(f"redis://{settings.redis_host}:{settings.redis_port}/0")
        if settings.redis_host
        else InMemoryTokenCache()
    )
    return GitHubAppClient(config, cache)


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
    store = GitStore(settings.ghsync_data_dir / "projects", max_file_size=settings.github_sync_max_file_size)
    queue = EmbeddedQueue(engine, reconcile_handler=NoopReconciler(engine))
    projects = ProjectService(engine, store)
    versions = VersionService(engine, store, projects, queue)
    github = build_github_client(settings)
    secret_box = SecretBox.from_setting(settings.ghsync_encryption_keys)
    links = LinkService(engine, store, projects, github, secret_box, queue)
    return Container(settings, engine, store, queue, projects, versions, github, links)
