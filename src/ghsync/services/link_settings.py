"""Changing a linked project's sync settings (mode, conflict strategy, enabled, force-push policy).

One unit of work saves the link, writes the audit row and requests a reconcile: a changed strategy
gives an open conflict a new try (`domain/decide.py`: a conflict waits only under the strategy it was
recorded with), a changed mode may route the next change through a PR, and re-enabling catches up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ghsync.domain.errors import Conflict, NotFound
from ghsync.domain.link import Link
from ghsync.domain.operations import AuditEntry
from ghsync.domain.sync import parse_conflict_strategy, parse_sync_mode
from ghsync.observability.logging import get_logger
from ghsync.ports.uow import UnitOfWorkFactory
from ghsync.services.notifications import notify_disabled
from ghsync.services.projects import parse_project_id

log = get_logger(__name__)

SETTINGS_REASON = "settings_changed"


def changed_link(
    link: Link,
    *,
    sync_mode: str | None,
    conflict_strategy: str | None,
    enabled: bool | None,
    allow_force_push: bool | None = None,
    hold_force_pushes: bool | None = None,
) -> tuple[Link, dict[str, Any]]:
    """The link with the given settings applied, and {setting: {"from", "to"}} for those that changed."""
    updated = replace(
        link,
        mode=parse_sync_mode(sync_mode) if sync_mode is not None else link.mode,
        strategy=parse_conflict_strategy(conflict_strategy)
        if conflict_strategy is not None
        else link.strategy,
        enabled=link.enabled if enabled is None else enabled,
        allow_force_push=link.allow_force_push if allow_force_push is None else allow_force_push,
        hold_force_pushes=link.hold_force_pushes if hold_force_pushes is None else hold_force_pushes,
    )
    changes: dict[str, Any] = {}
    for name, before, after in (
        ("sync_mode", link.mode.value, updated.mode.value),
        ("conflict_strategy", link.strategy.value, updated.strategy.value),
        ("enabled", link.enabled, updated.enabled),
        ("allow_force_push", link.allow_force_push, updated.allow_force_push),
        ("hold_force_pushes", link.hold_force_pushes, updated.hold_force_pushes),
    ):
        if before != after:
            changes[name] = {"from": before, "to": after}
    return updated, changes


class LinkSettings:
    """`update()`: PATCH /v1/projects/{id}/github."""

    def __init__(
        self, uow: UnitOfWorkFactory, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._uow = uow
        self._now = clock

    def update(
        self,
        project_id: str,
        *,
        sync_mode: str | None = None,
        conflict_strategy: str | None = None,
        enabled: bool | None = None,
        allow_force_push: bool | None = None,
        hold_force_pushes: bool | None = None,
        actor: str = "api",
    ) -> dict[str, Any]:
        """Apply the settings given (None: unchanged); returns what changed. Nothing changed: no writes."""
        key = parse_project_id(project_id)
        with self._uow() as uow:
            project = uow.projects.get(key)
            if project is None:
                raise NotFound(f"project {key} not found")
            if project.link is None:
                raise Conflict("project is not linked to a GitHub repository", code="not_linked")
            updated, changes = changed_link(
                project.link,
                sync_mode=sync_mode,
                conflict_strategy=conflict_strategy,
                enabled=enabled,
                allow_force_push=allow_force_push,
                hold_force_pushes=hold_force_pushes,
            )
            if not changes:
                return changes
            uow.projects.save_link(key, updated)
            uow.audit.add(AuditEntry(actor, "github.settings", key, changes))
            if updated.enabled:
                # A disabled project is not reconciled; re-enabling requests the catch-up.
                uow.request_reconcile(key, SETTINGS_REASON)
            elif "enabled" in changes:
                notify_disabled(uow, key, actor, self._now())
            uow.commit()
        log.info("link_settings_changed", project_id=key, changes=changes, actor=actor)
        return changes
