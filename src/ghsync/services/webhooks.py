"""Receiving a GitHub webhook delivery: dedup, record and request a reconcile (or update a link) in one
unit of work; and the health of a project's hook.

The receiver never syncs and never calls GitHub: the engine is level-triggered, so a delivery only says
"look again" (`uow.request_reconcile(project, "webhook:<event>")`) and the reconcile decides from where
both sides stand. Recording the delivery and its requests commit together, so a crash between them
loses neither. Deliveries are deduplicated by `X-GitHub-Delivery`: GitHub reuses the id when it
redelivers (https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks),
so a redelivery of one that succeeded is acknowledged and changes nothing, while one whose processing
failed (recorded `failed`) is processed again.

Concurrent deliveries are received together (`receive_many`, group commit): one unit of work records a
whole batch of them with a read of their projects, one insert of the deliveries and one of the reconcile
requests, so the commit and the queue's notification are paid once per batch rather than per delivery.
The deliveries that change a link (`repository`, `installation`, `installation_repositories`: rare, and
audited one by one) and any batch that fails are received one at a time, each in its own unit of work,
so one bad delivery never fails its neighbours.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from ghsync.domain.errors import GhsyncError, InvalidInput, NotFound
from ghsync.domain.link import Project
from ghsync.domain.operations import AuditEntry, DeliveryStatus, WebhookDelivery
from ghsync.domain.webhooks import (
    ChangeDefaultBranch,
    DeliveryHeaders,
    DisableCause,
    DisableSync,
    FollowRepository,
    Ignore,
    Ping,
    Reconcile,
    WebhookAction,
    applied,
    github_id,
    route,
    targets_of,
)
from ghsync.observability.logging import get_logger
from ghsync.ports.github import GitHubApp
from ghsync.ports.secrets import SecretSealer
from ghsync.ports.uow import ReconcileNotifier, UnitOfWork, UnitOfWorkFactory
from ghsync.services.linking import webhook_secret_context
from ghsync.services.projects import parse_project_id

log = get_logger(__name__)

ACTOR = "github"  # who the audit log says changed a link when a delivery did
SYNC_DISABLED = "github.sync_disabled"
SYNC_ENABLED = "github.sync_enabled"
LINK_FOLLOWED = "github.link_followed"
DEFAULT_BRANCH_CHANGED = "github.default_branch_changed"
# How many of a project's deliveries the health view reads (its window of "recent failures").
HEALTH_WINDOW = 50
# How long an opened repository-hook secret is reused, and for how many projects at most.
HOOK_SECRET_SECONDS = 60.0
HOOK_SECRETS_KEPT = 4096
_CAUSES: frozenset[str] = frozenset(get_args(DisableCause))
# The events that may change a link (routing's FollowRepository, ChangeDefaultBranch, DisableSync,
# EnableSync): received one at a time. Every other event only requests reconciles or is ignored.
LINK_EVENTS = frozenset({"repository", "installation", "installation_repositories"})


class AppLogins:
    """The App's bot login (`<slug>[bot]`), read from GitHub once, in a background thread.

    The receiver never calls GitHub on the request path, so until the read succeeds (or after it failed,
    until the next try a minute later) the answer is empty: our own pushes to a pull request then wake a
    reconcile that finds nothing to do, which is harmless (the engine is level-triggered).
    """

    RETRY_SECONDS = 60.0

    def __init__(self, github: GitHubApp, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._github = github
        self._clock = clock
        self._logins: frozenset[str] | None = None
        self._tried_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> frozenset[str]:
        with self._lock:
            if self._logins is not None:
                return self._logins
            if self._clock() - self._tried_at < self.RETRY_SECONDS:
                return frozenset()
            self._tried_at = self._clock()
        threading.Thread(target=self.read, name="ghsync-app-login", daemon=True).start()
        return frozenset()

    def read(self) -> None:
        """Read the login now, in the caller's thread (a failure is logged and tried again later)."""
        try:
            login = self._github.app_identity().name  # `<slug>[bot]`
        except Exception as exc:
            log.warning("app_login_unknown", error=repr(exc))
            return
        with self._lock:
            self._logins = frozenset({login})


class HeldTells:
    """The queue's notifier (a `ReconcileNotifier`), whose calls a thread may hold back and send later.

    The webhook batch holds them while it records its deliveries (`holding`) and sends them once the
    deliveries are answered (`release`): telling the queue is a read (on PostgreSQL, a round trip or two)
    that is no part of the answer, and a tell that never comes loses nothing, since the outbox relay tells
    the queue of every request still pending. Calls made outside `holding`, and on other threads, go
    straight through.
    """

    def __init__(self, notify: ReconcileNotifier) -> None:
        self._notify = notify
        self._local = threading.local()

    def __call__(self, project_id: str) -> None:
        held: list[str] | None = getattr(self._local, "held", None)
        if held is None:
            self._notify(project_id)
        elif project_id not in held:
            held.append(project_id)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold this thread's tells until `release` (which the block's end does not do)."""
        held: list[str] = []
        self._local.held = held
        try:
            yield
        finally:
            self._local.held = None
            self._local.pending = [*getattr(self._local, "pending", []), *held]

    def release(self) -> None:
        """Send the tells this thread held; one that fails is logged, and the relay sends it later."""
        pending: list[str] = getattr(self._local, "pending", [])
        self._local.pending = []
        for project_id in dict.fromkeys(pending):
            try:
                self._notify(project_id)
            except Exception:
                log.exception("queue_tell_failed", project_id=project_id)


class WebhookNotConfigured(GhsyncError):
    """A webhook secret is needed and not configured (GITHUB_WEBHOOK_SECRET, GHSYNC_ENCRYPTION_KEYS)."""

    code = "webhook_not_configured"


Outcome = Literal["queued", "processed", "ignored", "duplicate"]


def reconcile_reason(event: str) -> str:
    """The outbox reason of a delivery's reconcile request."""
    return f"webhook:{event}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified delivery: its headers, its payload, and the project of a repository hook (None for
    the App's hook, whose deliveries name their repositories)."""

    headers: DeliveryHeaders
    payload: Mapping[str, Any]
    project_id: str | None = None


@dataclass(frozen=True)
class ProjectOutcome:
    """What one delivery did to one project."""

    project_id: str
    action: WebhookAction
    request_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """The answer to a delivery: `duplicate` (seen and not failed: nothing changed), `queued` (a
    reconcile was requested), `processed` (a ping, or a link updated without a reconcile), `ignored`."""

    delivery_id: str
    event: str
    outcome: Outcome
    projects: tuple[ProjectOutcome, ...] = ()

    @property
    def request_ids(self) -> tuple[str, ...]:
        return tuple(p.request_id for p in self.projects if p.request_id is not None)


@dataclass(frozen=True)
class HookHealth:
    """GET /v1/webhooks/github/{projectId}/health: the last delivery, the last ping, recent failures."""

    project_id: str
    healthy: bool
    last_delivery: WebhookDelivery | None
    last_ping: WebhookDelivery | None
    recent_failures: tuple[WebhookDelivery, ...]
    sync_enabled: bool
    sync_disabled_by: str | None


class WebhookService:
    """The webhook use cases over the unit of work; no GitHub client, by design."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        delivery_ttl: timedelta,
        secrets: SecretSealer | None = None,
        own_logins: frozenset[str] | Callable[[], frozenset[str]] = frozenset(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._ttl = delivery_ttl
        self._secrets = secrets
        self._monotonic = monotonic
        self._opened: OrderedDict[str, tuple[float, str]] = OrderedDict()  # project -> (opened at, secret)
        self._opened_lock = threading.Lock()
        # The accounts ghsync pushes as (its App's bot): fixed, or read when known (`AppLogins`).
        fixed = own_logins
        self._own_logins: Callable[[], frozenset[str]] = fixed if callable(fixed) else (lambda: fixed)
        self._now = clock

    # --- the repository hook's secret -------------------------------------------------------------------

    def hook_secret(self, project_id: str) -> str:
        """The secret of a project's repository hook, read and opened from its sealed envelope (and
        remembered for `remembered_hook_secret`).

        An unknown or unlinked project, or one without a secret, is `NotFound`: the route answers 404
        before reading the body, and nothing is recorded.
        """
        key = _hook_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
        if project is None or project.link is None or project.webhook_secret is None:
            with self._opened_lock:
                self._opened.pop(project_id, None)
            raise NotFound(f"project {project_id} has no repository webhook", code="project_not_found")
        if self._secrets is None or not self._secrets.configured:
            raise WebhookNotConfigured(
                "GHSYNC_ENCRYPTION_KEYS must be set to open the project's webhook secret"
            )
        secret = self._secrets.decrypt(project.webhook_secret, context=webhook_secret_context(key))
        with self._opened_lock:
            self._opened[project_id] = (self._monotonic(), secret)
            self._opened.move_to_end(project_id)
            while len(self._opened) > HOOK_SECRETS_KEPT:
                self._opened.popitem(last=False)
        return secret

    def remembered_hook_secret(self, project_id: str) -> str | None:
        """The project's hook secret as `hook_secret` opened it in the last `HOOK_SECRET_SECONDS`, without
        reading the database (None when there is none).

        It lets a project's stream of deliveries skip a read and a decryption each. A secret changed since
        (the project relinked) fails a delivery's signature: the route then opens the secret again. A
        project unlinked since is found so by the delivery's own unit of work, which records the delivery
        and does nothing else.
        """
        with self._opened_lock:
            opened = self._opened.get(project_id)
            if opened is None:
                return None
            if self._monotonic() - opened[0] >= HOOK_SECRET_SECONDS:
                del self._opened[project_id]
                return None
            return opened[1]

    def purge_expired(self) -> int:
        """Forget deliveries past GITHUB_DELIVERY_TTL (a periodic task); returns how many."""
        with self._uow() as uow:
            purged = uow.deliveries.purge_expired(self._now())
            uow.commit()
        return purged

    # --- receive ---------------------------------------------------------------------------------------

    def receive(
        self,
        headers: DeliveryHeaders,
        payload: Mapping[str, Any],
        *,
        project_id: str | None = None,
    ) -> Receipt:
        """Dedup, record and act on one verified delivery, in one unit of work.

        `project_id` is set for a repository hook (`POST /v1/webhooks/github/{projectId}`), whose secret
        proved the delivery is that project's; the App's hook finds its projects by repository id or
        installation id. If processing fails the delivery is recorded `failed` (so a redelivery is
        processed again) and the error is raised.
        """
        result = self.receive_many([Delivery(headers, payload, project_id)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def receive_many(self, deliveries: Sequence[Delivery]) -> list[Receipt | Exception]:
        """`receive` for a batch of concurrent deliveries: a receipt or the error of each, in order.

        The deliveries that only request reconciles (or are ignored) share one unit of work; if it fails,
        each is received again alone, so the error reaches only the deliveries it belongs to. Concurrent
        deliveries have no order (GitHub does not promise one), so doing the shared ones first is as
        right as any other order.
        """
        results: dict[int, Receipt | Exception] = {}
        checked: list[Delivery] = []
        for index, delivery in enumerate(deliveries):
            if delivery.project_id is None:
                checked.append(delivery)
                continue
            try:  # a repository hook's project id that is not a UUID: no such project (404)
                checked.append(replace(delivery, project_id=_hook_project_id(delivery.project_id)))
            except (NotFound, InvalidInput) as exc:
                results[index] = exc  # nothing is recorded
                checked.append(delivery)
        deliveries = checked
        together = [
            index
            for index, delivery in enumerate(deliveries)
            if index not in results and delivery.headers.event not in LINK_EVENTS
        ]
        if together:
            try:
                with self._uow() as uow:
                    shared = self._receive_together(uow, [deliveries[i] for i in together])
                    uow.commit()
                results.update(zip(together, shared, strict=True))
            except Exception as exc:
                if len(together) == 1:  # its own failure: no second try (GitHub's redelivery is that)
                    delivery = deliveries[together[0]]
                    self._record_failure(delivery.headers, delivery.payload, delivery.project_id, exc)
                    results[together[0]] = exc
                else:
                    log.warning("webhook_batch_failed", deliveries=len(together), error=repr(exc))
        for index, delivery in enumerate(deliveries):
            if index not in results:
                results[index] = self._receive_alone(delivery)
        receipts = [results[index] for index in range(len(deliveries))]
        for delivery, result in zip(deliveries, receipts, strict=True):
            if isinstance(result, Receipt):
                log.info(
                    "webhook_received",
                    delivery_id=result.delivery_id,
                    github_event=result.event,
                    action=delivery.payload.get("action"),
                    outcome=result.outcome,
                    projects=[p.project_id for p in result.projects],
                    requests=list(result.request_ids),
                )
        return receipts

    def _receive_alone(self, delivery: Delivery) -> Receipt | Exception:
        """One delivery in its own unit of work; a failure is recorded `failed` and returned."""
        headers, payload, project_id = delivery.headers, delivery.payload, delivery.project_id
        try:
            with self._uow() as uow:
                receipt = self._receive(uow, headers, payload, project_id)
                if receipt.outcome != "duplicate":
                    uow.commit()
        except (NotFound, InvalidInput) as exc:
            return exc  # the caller's mistake (an unknown project): nothing is recorded
        except Exception as exc:
            self._record_failure(headers, payload, project_id, exc)
            return exc
        return receipt

    def _receive_together(self, uow: UnitOfWork, deliveries: Sequence[Delivery]) -> list[Receipt | Exception]:
        """Deliveries that only request reconciles or are ignored, in `uow`: one read of their projects,
        one insert of the deliveries, one of the requests."""
        # The App's hook names repositories; a repository hook's delivery is its project's.
        named = [
            () if d.project_id is not None else targets_of(d.headers.event, d.payload).repository_ids
            for d in deliveries
        ]
        by_repository: dict[int, list[Project]] = {}
        for project in uow.projects.by_repositories({r for ids in named for r in ids}):
            assert project.link is not None  # only linked projects have a repository
            by_repository.setdefault(project.link.repository_id, []).append(project)
        results: list[Receipt | Exception | None] = [None] * len(deliveries)
        planned: list[tuple[int, WebhookDelivery, list[tuple[str, WebhookAction]]]] = []
        seen: set[str] = set()
        for index, delivery in enumerate(deliveries):
            headers = delivery.headers
            if headers.delivery_id in seen:  # the same delivery twice at once is one delivery
                results[index] = Receipt(headers.delivery_id, headers.event, "duplicate")
                continue
            if delivery.project_id is not None:
                hooked = uow.projects.get(delivery.project_id)
                if hooked is None:
                    results[index] = NotFound(
                        f"project {delivery.project_id} does not exist", code="project_not_found"
                    )
                    continue
                projects = [hooked] if hooked.link is not None else []
            else:
                found = [p for r in named[index] for p in by_repository.get(r, [])]
                projects = sorted(found, key=lambda p: p.id) if len(found) > 1 else found
            actions = [(p.id, self._route(delivery, p)) for p in projects if p.link is not None]
            status = _outcome_of_actions([a for _, a in actions], headers.event)
            seen.add(headers.delivery_id)
            planned.append(
                (
                    index,
                    self._delivery(headers, delivery.payload, delivery.project_id, projects, status),
                    actions,
                )
            )
        recorded = uow.deliveries.record_all([row for _, row, _ in planned])
        wanted = [
            (project_id, reconcile_reason(deliveries[index].headers.event))
            for index, row, actions in planned
            if row.delivery_id in recorded
            for project_id, action in actions
            if isinstance(action, Reconcile)
        ]
        requests = iter(uow.request_reconciles(wanted))
        for index, row, actions in planned:
            if row.delivery_id not in recorded:
                results[index] = Receipt(row.delivery_id, row.event, "duplicate")
                continue
            outcomes = tuple(
                ProjectOutcome(
                    project_id, action, next(requests).id if isinstance(action, Reconcile) else None
                )
                for project_id, action in actions
            )
            results[index] = Receipt(row.delivery_id, row.event, row.status, outcomes)  # type: ignore[arg-type]
        return [r for r in results if r is not None]

    def _route(self, delivery: Delivery, project: Project) -> WebhookAction:
        assert project.link is not None
        action = route(delivery.headers.event, delivery.payload, project.link, own_logins=self._own_logins())
        if not isinstance(action, (Reconcile, Ignore, Ping)):
            # Only LINK_EVENTS change links; if routing ever grows another, the batch fails and every
            # delivery of it is received alone, by the path that applies link changes.
            raise RuntimeError(f"{delivery.headers.event} changes a link: it cannot be received in a batch")
        return action

    def _receive(
        self, uow: UnitOfWork, headers: DeliveryHeaders, payload: Mapping[str, Any], project_id: str | None
    ) -> Receipt:
        projects = self._projects_of(uow, headers.event, payload, project_id)
        if not uow.deliveries.record(self._delivery(headers, payload, project_id, projects, "received")):
            return Receipt(headers.delivery_id, headers.event, "duplicate")
        outcomes = tuple(
            self._apply(
                uow,
                project,
                route(headers.event, payload, project.link, own_logins=self._own_logins()),
                headers,
            )
            for project in projects
            if project.link is not None
        )
        outcome = _outcome_of(outcomes, headers.event)
        uow.deliveries.set_status(headers.delivery_id, outcome)
        return Receipt(headers.delivery_id, headers.event, outcome, outcomes)

    def _projects_of(
        self, uow: UnitOfWork, event: str, payload: Mapping[str, Any], project_id: str | None
    ) -> list[Project]:
        if project_id is not None:
            project = uow.projects.get(project_id)
            if project is None:
                raise NotFound(f"project {project_id} does not exist", code="project_not_found")
            return [project] if project.link is not None else []
        targets = targets_of(event, payload)
        found: dict[str, Project] = {}
        for repository_id in targets.repository_ids:
            found.update((p.id, p) for p in uow.projects.by_repository(repository_id))
        if targets.installation_id is not None:
            found.update((p.id, p) for p in uow.projects.by_installation(targets.installation_id))
        return [found[key] for key in sorted(found)]

    def _delivery(
        self,
        headers: DeliveryHeaders,
        payload: Mapping[str, Any],
        project_id: str | None,
        projects: Sequence[Project],
        status: DeliveryStatus,
    ) -> WebhookDelivery:
        installation = payload.get("installation")
        installation_id = installation.get("id") if isinstance(installation, Mapping) else None
        action = payload.get("action")
        now = self._now()
        return WebhookDelivery(
            delivery_id=headers.delivery_id,
            event=headers.event,
            status=status,
            expires_at=now + self._ttl,
            action=action[:64] if isinstance(action, str) else None,
            # The table keeps one project per delivery: the hook's, else the first one it concerned.
            project_id=project_id or (projects[0].id if projects else None),
            installation_id=github_id(installation_id),
            received_at=now,
        )

    def _apply(
        self, uow: UnitOfWork, project: Project, action: WebhookAction, headers: DeliveryHeaders
    ) -> ProjectOutcome:
        link = project.link
        assert link is not None  # only linked projects are routed
        if isinstance(action, (Ignore, Ping)):
            return ProjectOutcome(project.id, action)
        if isinstance(action, Reconcile):
            request = uow.request_reconcile(project.id, reconcile_reason(headers.event))
            return ProjectOutcome(project.id, action, request.id)
        disabled_by = _disabled_by(uow, project.id)
        changed = applied(link, action, disabled_by=disabled_by)
        if changed == link:
            return ProjectOutcome(project.id, Ignore("the link already says so"))
        uow.projects.save_link(project.id, changed)
        details: dict[str, Any] = {"delivery_id": headers.delivery_id, "event": headers.event}
        if isinstance(action, FollowRepository):
            audit_action = LINK_FOLLOWED
            details |= {
                "before": {"owner": link.owner, "repo": link.repo},
                "after": {"owner": changed.owner, "repo": changed.repo},
            }
        elif isinstance(action, ChangeDefaultBranch):
            audit_action = DEFAULT_BRANCH_CHANGED
            details |= {"before": link.default_branch, "after": changed.default_branch}
        elif isinstance(action, DisableSync):
            audit_action = SYNC_DISABLED
            details |= {"cause": action.cause}
        else:
            audit_action = SYNC_ENABLED
            details |= {"cause": action.after}
        uow.audit.add(AuditEntry(ACTOR, audit_action, project.id, details))
        request_id = None
        if changed.enabled:
            # A followed rename, a new default branch or access come back: look again from where both
            # sides stand (the reconcile re-reads the repository from the API).
            request_id = uow.request_reconcile(project.id, reconcile_reason(headers.event)).id
        return ProjectOutcome(project.id, action, request_id)

    def _record_failure(
        self, headers: DeliveryHeaders, payload: Mapping[str, Any], project_id: str | None, error: Exception
    ) -> None:
        log.error(
            "webhook_failed", delivery_id=headers.delivery_id, github_event=headers.event, error=repr(error)
        )
        try:
            with self._uow() as uow:
                # A project id that does not exist must not be written (the hook's project is not a key).
                known = project_id if project_id and uow.projects.get(project_id) else None
                projects = [] if project_id else self._projects_of(uow, headers.event, payload, None)
                uow.deliveries.record(self._delivery(headers, payload, known, projects, "failed"))
                uow.commit()
        except Exception as exc:  # the original error is what the caller must see
            log.error("webhook_failure_not_recorded", delivery_id=headers.delivery_id, error=repr(exc))

    # --- health ----------------------------------------------------------------------------------------

    def health(self, project_id: str) -> HookHealth:
        """The hook is healthy when its newest delivery did not fail (a ping counts)."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
            if project is None:
                raise NotFound(f"project {project_id} does not exist", code="project_not_found")
            recent = uow.deliveries.recent(key, limit=HEALTH_WINDOW)
            pings = uow.deliveries.recent(key, limit=1, event="ping")
            disabled_by = _disabled_by(uow, key) if project.link and not project.link.enabled else None
        return HookHealth(
            project_id=key,
            healthy=bool(recent) and recent[0].status != "failed",
            last_delivery=recent[0] if recent else None,
            last_ping=pings[0] if pings else None,
            recent_failures=tuple(d for d in recent if d.status == "failed"),
            sync_enabled=project.link is not None and project.link.enabled,
            sync_disabled_by=disabled_by,
        )


def _hook_project_id(raw: str) -> str:
    """The project of a repository hook's URL; one that cannot exist is `project_not_found` (404)."""
    try:
        return parse_project_id(raw)
    except NotFound:
        raise NotFound(f"project {raw[:80]!r} does not exist", code="project_not_found") from None


def _outcome_of_actions(
    actions: Sequence[WebhookAction], event: str
) -> Literal["queued", "processed", "ignored"]:
    """`queued` if an action asks for a reconcile, `processed` for a ping or a link change, else `ignored`."""
    if any(isinstance(a, Reconcile) for a in actions):
        return "queued"
    if event == "ping" or any(not isinstance(a, Ignore) for a in actions):
        return "processed"
    return "ignored"


def _outcome_of(outcomes: Sequence[ProjectOutcome], event: str) -> Literal["queued", "processed", "ignored"]:
    """`queued` when a reconcile was requested, `processed` for a ping or a link changed, else `ignored`."""
    if any(o.request_id is not None for o in outcomes):
        return "queued"  # a link change requests one too (the action is not a `Reconcile`)
    return _outcome_of_actions([o.action for o in outcomes], event)


def _disabled_by(uow: UnitOfWork, project_id: str) -> DisableCause | None:
    """Why a delivery last stopped this project's sync, if the newest enable/disable was a delivery's."""
    for entry in uow.audit.for_project(project_id, limit=HEALTH_WINDOW):
        if entry.action == SYNC_ENABLED:
            return None
        if entry.action == SYNC_DISABLED:
            cause = entry.details.get("cause")
            return cause if isinstance(cause, str) and cause in _CAUSES else None  # type: ignore[return-value]
    return None
