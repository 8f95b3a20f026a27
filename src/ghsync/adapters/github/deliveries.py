"""The App webhook's delivery log over REST (App JWT auth), for the delivery sweep.

`GET /app/hook/deliveries` lists attempts newest first, paged by a `cursor` that GitHub hands out in the
`Link: rel="next"` header (followed as given, never built); `POST /app/hook/deliveries/{id}/attempts`
asks for a redelivery (202). https://docs.github.com/en/rest/apps/webhooks
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ghsync.adapters.github.parsing import UnexpectedResponse
from ghsync.domain.redelivery import HookDelivery

if TYPE_CHECKING:
    from ghsync.adapters.github.client import GitHubAppClient

# Three days of a busy App's deliveries fit in 1,000 pages of 100.
MAX_PAGES = 1000


def parse_delivery(item: Mapping[str, Any]) -> HookDelivery:
    """One `hook-delivery-item` (GitHub's schema name) as a `HookDelivery`."""
    try:
        delivered = datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))
        if delivered.tzinfo is None:
            delivered = delivered.replace(tzinfo=UTC)
        return HookDelivery(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=delivered,
            status=str(item["status"]),
            status_code=int(item.get("status_code") or 0),
            event=str(item["event"]),
            redelivery=bool(item.get("redelivery")),
            action=item.get("action"),
            installation_id=item.get("installation_id"),
            repository_id=item.get("repository_id"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedResponse(f"unexpected hook delivery item: {exc}") from None


def list_hook_deliveries(client: GitHubAppClient, *, since: datetime | None = None) -> list[HookDelivery]:
    """Every attempt newest first, page by page, stopping once a page reaches back past `since`."""
    out: list[HookDelivery] = []
    for page in client.pages("GET", "/app/hook/deliveries", query={"per_page": 100}, max_pages=MAX_PAGES):
        items = [parse_delivery(i) for i in page.body] if isinstance(page.body, list) else []
        out.extend(items)
        if since is not None and items and items[-1].delivered_at < since:
            break
    return out


def redeliver_hook_delivery(client: GitHubAppClient, delivery_id: int) -> None:
    """Ask GitHub to send the delivery again. Not resent after a 5xx or a lost answer (the request may
    have been served: the next sweep sees the redelivery attempt and does not ask twice)."""
    client.request(
        "POST",
        "/app/hook/deliveries/{delivery_id}/attempts",
        params={"delivery_id": delivery_id},
        idempotent=False,
    )


__all__ = ["MAX_PAGES", "list_hook_deliveries", "parse_delivery", "redeliver_hook_delivery"]
