"""The one place that wires ghsync together: settings in, a container of ready services out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.adapters.db.uow import SqlUnitOfWorkFactory
from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig, InMemoryTokenCache, RedisTokenCache
from ghsync.adapters.github.git_transport import SmartHttpGitRemote, git_base_url
from ghsync.adapters.notify import HttpxNotificationSender
from ghsync.adapters.queue.embedded import EmbeddedQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.adapters.throttle import DatabaseThrottleState
from ghsync.config import Settings
from ghsync.domain.errors import ConfigError
from ghsync.domain.outbound import TransportThresholds
from ghsync.domain.plan import Guard
from ghsync.ports.jobs import RECONCILE_TASK, JobQueue
from ghsync.ports.throttle import ThrottleState
from ghsync.services.conflicts import ConflictService
from ghsync.services.delivery_sweep import SWEEP_TASK, DeliverySweep
from ghsync.services.link_settings import LinkSettings
from ghsync.services.linking import LinkService
from ghsync.services.notifications import NotificationService
from ghsync.services.pairs import PairRebuilder
from ghsync.services.polling import POLLING_TASK, PollingService
from ghsync.services.projects import ProjectService, VersionService
from ghsync.services.reconcile import EngineSettings, ReconcileService, relay_pending_requests
from ghsync.services.triggers import SyncTriggers
from ghsync.services.webhooks import AppLogins, HeldTells, WebhookService

# How often the outbox relay re-tells the queue of reconcile requests still pending (a crash between a
# request's commit and the queue, or a queue that was down, is healed within this many seconds).
OUTBOX_RELAY_SECONDS = 30.0
OUTBOX_RELAY_TASK = "outbox_relay"
PURGE_DELIVERIES_SECONDS = 3600.0
PURGE_DELIVERIES_TASK = "purge_webhook_deliveries"
NOTIFY_TASK = "deliver_notifications"
PURGE_NOTIFICATIONS_TASK = "purge_notifications"


@dataclass
class Container:
    settings: Settings
    engine: Engine
    uow: SqlUnitOfWorkFactory
    store: GitStore
    queue: EmbeddedQueue
    projects: ProjectService
    versions: VersionService
    reconciler: ReconcileService
    github: GitHubAppClient | None
    links: LinkService
    pairs: PairRebuilder | None
    triggers: SyncTriggers
    webhooks: WebhookService
    tells: HeldTells
    conflicts: ConflictService
    link_settings: LinkSettings
    notifications: NotificationService

    def close(self) -> None:
        if self.github is not None:
            self.github.close()
        self.notifications.close()
        self.engine.dispose()


def build_github_client(settings: Settings, throttle: ThrottleState | None = None) -> GitHubAppClient | None:
    """The App client, or None when no App is configured (linking then answers 503)."""
    if not settings.github_app_id or not settings.github_app_private_key:
        return None
    config = GitHubAppConfig(
        app_id=settings.github_app_id,
        private_key=settings.github_app_private_key,
        api_url=settings.github_api_url,
        token_cache_ttl=settings.github_token_cache_ttl,
        rate_limit_buffer=settings.github_rate_limit_buffer,
        min_write_interval=settings.github_write_interval,
    )
    # Tokens are shared by every process through Redis when it is configured.
    cache = (
        RedisTokenCache.from_url(f"redis://{settings.redis_host}:{settings.redis_port}/0")
        if settings.redis_host
        else InMemoryTokenCache()
    )
    return GitHubAppClient(config, cache, throttle=throttle)


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        max_file_size=settings.github_sync_max_file_size,
        warn_file_size=settings.github_sync_warn_file_size,
        tree_entry_limit=settings.github_sync_tree_size_limit,
        tree_size_bytes=settings.github_sync_tree_size_mb * 1024 * 1024,
        git_transport=TransportThresholds(
            enabled=settings.ghsync_git_transport_enabled,
            min_files=settings.ghsync_git_transport_min_files,
            min_inline_bytes=settings.ghsync_git_transport_min_inline_bytes,
            min_missing_blobs=settings.ghsync_git_transport_min_missing_blobs,
            min_missing_blob_bytes=settings.ghsync_git_transport_min_missing_blob_bytes,
        ),
        guard=Guard(
            share=settings.ghsync_sync_guard_share,
            min_files=settings.ghsync_sync_guard_min_files,
            max_files=settings.ghsync_sync_guard_max_files,
        ),
    )


def build_git_remote(
    settings: Settings, github: GitHubAppClient | None, store: GitStore
) -> SmartHttpGitRemote | None:
    """The git smart-HTTP transport over the App's installation tokens, or None (disabled, or no App)."""
    if github is None or not settings.ghsync_git_transport_enabled:
        return None
    return SmartHttpGitRemote(
        settings.ghsync_git_transport_url or git_base_url(settings.github_api_url),
        lambda project_id: store.project_dir(project_id) / ".git",
        github.installation_token,
        github.invalidate_installation_token,
    )


def register_tasks(queue: JobQueue, reconciler: ReconcileService, uow: SqlUnitOfWorkFactory) -> None:
    """The deployment's tasks: reconcile per project, and the outbox relay once per period."""

    def reconcile(args: Mapping[str, Any]) -> None:
        reconciler.reconcile(str(args["project_id"]))

    def relay(_period: datetime) -> None:
        relay_pending_requests(uow, queue.request_reconcile)

    queue.register(RECONCILE_TASK, reconcile)
    queue.periodic(OUTBOX_RELAY_TASK, OUTBOX_RELAY_SECONDS, relay)


def register_polling(
    queue: JobQueue, settings: Settings, uow: SqlUnitOfWorkFactory, github: GitHubAppClient | None
) -> PollingService | None:
    """The polling safety net (GITHUB_SYNC_POLLING_ENABLED): one slice of the projects per tick, every
    project once per GITHUB_SYNC_POLLING_INTERVAL; None when disabled or no App is configured."""
    if github is None or not settings.github_sync_polling_enabled:
        return None
    polling = PollingService(uow, github, interval_seconds=settings.polling_interval_seconds)

    def poll(period: datetime) -> None:
        polling.tick(period)

    queue.periodic(POLLING_TASK, polling.schedule.tick_seconds, poll)
    return polling


def register_delivery_sweep(
    queue: JobQueue, settings: Settings, uow: SqlUnitOfWorkFactory, github: GitHubAppClient | None
) -> DeliverySweep | None:
    """The delivery sweep every GHSYNC_DELIVERY_SWEEP_INTERVAL seconds (0: off; None without an App)."""
    if github is None or settings.ghsync_delivery_sweep_interval <= 0:
        return None
    sweep = DeliverySweep(uow, github, retention=timedelta(days=settings.ghsync_delivery_retention_days))

    def run(_period: datetime) -> None:
        sweep.sweep()

    queue.periodic(SWEEP_TASK, float(settings.ghsync_delivery_sweep_interval), run)
    return sweep


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
    queue = EmbeddedQueue(engine)
    # A committed reconcile request is told to the queue right after its commit (the webhook batch holds
    # its tells until its deliveries are answered: `HeldTells`).
    tells = HeldTells(queue.request_reconcile)
    uow = SqlUnitOfWorkFactory(engine, notify=tells)
    projects = ProjectService(uow, store)
    versions = VersionService(uow, store, projects)
    github = build_github_client(settings, DatabaseThrottleState(engine))
    reconciler = ReconcileService(
        uow, store, github, engine_settings(settings), build_git_remote(settings, github, store)
    )
    register_tasks(queue, reconciler, uow)
    secret_box = SecretBox.from_setting(settings.ghsync_encryption_keys)
    links = LinkService(uow, store, projects, github, secret_box, queue)
    triggers = SyncTriggers(uow, queue)
    pairs = PairRebuilder(uow, store, github) if github is not None else None
    webhooks = WebhookService(
        uow,
        delivery_ttl=timedelta(seconds=settings.github_delivery_ttl),
        secrets=secret_box,
        own_logins=AppLogins(github) if github is not None else frozenset(),
    )

    # Delivery ids are kept for GITHUB_DELIVERY_TTL (for dedup), then forgotten once an hour.
    def purge_deliveries(_period: datetime) -> None:
        webhooks.purge_expired()

    queue.periodic(PURGE_DELIVERIES_TASK, PURGE_DELIVERIES_SECONDS, purge_deliveries)
    register_polling(queue, settings, uow, github)
    register_delivery_sweep(queue, settings, uow, github)

    # Notifications are outbox rows; this task posts the due ones (GHSYNC_NOTIFY_URL), never a sync.
    sender = HttpxNotificationSender(settings.ghsync_notify_url) if settings.ghsync_notify_url else None
    notifications = NotificationService(uow, sender, settings.ghsync_notify_secret)

    def deliver_notifications(_period: datetime) -> None:
        notifications.deliver_due()

    def purge_notifications(_period: datetime) -> None:
        notifications.purge()

    queue.periodic(NOTIFY_TASK, settings.ghsync_notify_interval, deliver_notifications)
    queue.periodic(PURGE_NOTIFICATIONS_TASK, PURGE_DELIVERIES_SECONDS, purge_notifications)
    return Container(
        settings=settings,
        engine=engine,
        uow=uow,
        store=store,
        queue=queue,
        projects=projects,
        versions=versions,
        reconciler=reconciler,
        github=github,
        links=links,
        pairs=pairs,
        triggers=triggers,
        webhooks=webhooks,
        tells=tells,
        conflicts=ConflictService(uow, store, github),
        link_settings=LinkSettings(uow),
        notifications=notifications,
    )
