"""GitHub webhook deliveries without I/O: the signature check, the headers, the payload, and the routing.

A delivery only ever records itself and requests a reconcile (the engine is level-triggered and decides
from where both sides stand), or updates a link (a rename, an archive, an installation removed). This
module decides which, from the event, its action, its payload and the project's link; the service
(`ghsync.services.webhooks`) executes the decision in one unit of work.

GitHub's pages behind the rules:
- headers: https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
- signatures: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
- events and their payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs

import msgspec

from ghsync.domain.errors import InvalidInput, Unauthorized
from ghsync.domain.link import Link
from ghsync.domain.sync import pr_branch_name

EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
SIGNATURE_HEADER = "x-hub-signature-256"
LEGACY_SIGNATURE_HEADER = "x-hub-signature"
HOOK_ID_HEADER = "x-github-hook-id"
TARGET_TYPE_HEADER = "x-github-hook-installation-target-type"
TARGET_ID_HEADER = "x-github-hook-installation-target-id"

# GitHub's delivery ids are GUIDs; the dedup table keeps up to 64 characters of them.
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Event names are lower-case words joined by underscores (`push`, `installation_repositories`).
_EVENT = re.compile(r"^[a-z][a-z_]{0,63}$")
_SIGNATURE = re.compile(r"^sha256=[0-9a-f]{64}$")


class InvalidSignature(Unauthorized):
    """The delivery's `X-Hub-Signature-256` is missing or does not match the secret."""

    code = "invalid_signature"


class MalformedDelivery(InvalidInput):
    """A header is missing or invalid, or the body is not a JSON object."""

    code = "malformed_delivery"


# --- signatures ------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` GitHub sends: `sha256=` and the HMAC-SHA256 hex digest of the raw body,
    keyed with the webhook's secret (validating-webhook-deliveries)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise `InvalidSignature` unless `X-Hub-Signature-256` is the signature of exactly `body`.

    Compared in constant time (`hmac.compare_digest`), as GitHub asks, so the comparison leaks nothing
    of the expected value. The legacy SHA-1 `X-Hub-Signature` alone is refused: GitHub keeps it only for
    compatibility and recommends the SHA-256 one (validating-webhook-deliveries).
    """
    _check_signature(secret, body, _lowered(headers))


def _check_signature(secret: str, body: bytes, lowered: Mapping[str, str]) -> None:
    presented = lowered.get(SIGNATURE_HEADER)
    if presented is None:
        if LEGACY_SIGNATURE_HEADER in lowered:
            raise InvalidSignature("only X-Hub-Signature (SHA-1) was sent; X-Hub-Signature-256 is required")
        raise InvalidSignature(
            "X-Hub-Signature-256 is missing: set the webhook's secret so GitHub signs deliveries"
        )
    expected = sign(secret, body)
    if not _SIGNATURE.match(presented) or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise InvalidSignature("X-Hub-Signature-256 does not match the body and the webhook's secret")


# --- headers and payload ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryHeaders:
    """What GitHub says about a delivery in its headers (delivery-headers)."""

    event: str
    delivery_id: str
    hook_id: int | None = None
    target_type: str | None = None  # `integration` for an App's hook, `repository` for a repository's
    target_id: int | None = None


def parse_headers(headers: Mapping[str, str]) -> DeliveryHeaders:
    """Read `X-GitHub-Event`, `X-GitHub-Delivery` and the hook headers; raise `MalformedDelivery`."""
    return _parse_headers(_lowered(headers))


def _parse_headers(lowered: Mapping[str, str]) -> DeliveryHeaders:
    event = lowered.get(EVENT_HEADER)
    if not event:
        raise MalformedDelivery("the X-GitHub-Event header is missing", code="missing_webhook_header")
    if not _EVENT.match(event):
        raise MalformedDelivery(f"X-GitHub-Event {event[:80]!r} is not an event name")
    delivery_id = lowered.get(DELIVERY_HEADER)
    if not delivery_id:
        raise MalformedDelivery("the X-GitHub-Delivery header is missing", code="missing_webhook_header")
    if not _DELIVERY_ID.match(delivery_id):
        raise MalformedDelivery(f"X-GitHub-Delivery {delivery_id[:80]!r} is not a delivery id")
    return DeliveryHeaders(
        event=event,
        delivery_id=delivery_id,
        hook_id=_int_header(lowered, HOOK_ID_HEADER),
        target_type=lowered.get(TARGET_TYPE_HEADER) or None,
        target_id=_int_header(lowered, TARGET_ID_HEADER),
    )


class _Read(msgspec.Struct):
    """The members of a payload that ghsync reads: routing's (`route`, `targets_of`) and the delivery's
    record (`action`, `installation`). The routing table's test routes every payload both whole and as
    `parse_payload` reads it, so a rule that reads a member missing here fails there."""

    action: Any = msgspec.UNSET
    ref: Any = msgspec.UNSET
    deleted: Any = msgspec.UNSET
    repository: Any = msgspec.UNSET
    pull_request: Any = msgspec.UNSET
    sender: Any = msgspec.UNSET
    installation: Any = msgspec.UNSET
    changes: Any = msgspec.UNSET
    repositories_added: Any = msgspec.UNSET
    repositories_removed: Any = msgspec.UNSET


_READ_MEMBERS = _Read.__struct_fields__
_READ_PAYLOAD = msgspec.json.Decoder(_Read)


def parse_payload(body: bytes, content_type: str | None = None) -> dict[str, Any]:
    """The members ghsync reads of a delivery's payload (a JSON object), sent as JSON or, for a
    repository hook set to `application/x-www-form-urlencoded`, as the form field `payload`
    (webhook-events-and-payloads).

    The whole body is checked to be JSON (RFC 8259, strictly: no NaN, no byte-order mark, no lone
    surrogate), but the members nobody reads are never built: a push's `commits` and `head_commit`,
    most of its size, cost neither memory nor the collector's time (msgspec skips them as it parses).
    """
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    raw: bytes | str = body
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise MalformedDelivery("the form body could not be parsed") from None
        if len(fields.get("payload", [])) != 1:
            raise MalformedDelivery("a form-encoded delivery must carry one `payload` field")
        raw = fields["payload"][0]
    try:
        read = _READ_PAYLOAD.decode(raw)
    except msgspec.ValidationError:  # valid JSON, but not an object
        raise MalformedDelivery("the payload must be a JSON object") from None
    except msgspec.DecodeError as exc:  # invalid UTF-8 included
        raise MalformedDelivery(f"the payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedDelivery("the payload is not valid JSON: it is nested too deeply") from None
    return {name: value for name in _READ_MEMBERS if (value := getattr(read, name)) is not msgspec.UNSET}


def verify_delivery(
    secret: str, body: bytes, headers: Mapping[str, str]
) -> tuple[DeliveryHeaders, dict[str, Any]]:
    """What a delivery passes before anything acts on it: its signature over the raw body first, then
    its headers and payload (the headers' names lower-cased once for both). Raises a `GhsyncError` (a
    4xx) for anything else."""
    lowered = _lowered(headers)
    _check_signature(secret, body, lowered)
    return _parse_headers(lowered), parse_payload(body, lowered.get("content-type"))


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or github_id(int(value)) is None:
        raise MalformedDelivery(f"the {name} header must be a number (a positive 64-bit id)")
    return int(value)


# --- routing -----------------------------------------------------------------------------------------------

DisableCause = Literal[
    "repository_archived",
    "repository_deleted",
    "installation_deleted",
    "installation_suspended",
    "repository_removed",
]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Request a reconcile of the project; `why` says what in the delivery called for it."""

    why: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Record the delivery and do nothing else."""

    why: str


@dataclass(frozen=True, slots=True)
class Ping:
    """GitHub's check that the hook works: answer 200 and mark the hook healthy."""


@dataclass(frozen=True, slots=True)
class FollowRepository:
    """The repository was renamed or transferred: store its new owner and name, then reconcile."""

    owner: str
    repo: str


@dataclass(frozen=True, slots=True)
class ChangeDefaultBranch:
    """The default branch changed: store it, then reconcile (which re-reads it from the API anyway)."""

    branch: str


@dataclass(frozen=True, slots=True)
class DisableSync:
    """Access to the repository is gone or paused: sync stops, with the cause as its status."""

    cause: DisableCause


@dataclass(frozen=True, slots=True)
class EnableSync:
    """Access came back: sync resumes, but only if `after` is why it stopped (not a person's choice)."""

    after: DisableCause


WebhookAction = Reconcile | Ignore | Ping | FollowRepository | ChangeDefaultBranch | DisableSync | EnableSync


@dataclass(frozen=True, slots=True)
class Targets:
    """Which linked projects a delivery to the App's hook concerns: by repository id or installation id."""

    repository_ids: tuple[int, ...] = ()
    installation_id: int | None = None


def targets_of(event: str, payload: Mapping[str, Any]) -> Targets:
    """Repositories are named by id, which survives renames and transfers."""
    if event == "installation":
        # installation: its `installation` object is the App's installation (created, deleted, suspend,
        # unsuspend, new_permissions_accepted).
        return Targets(installation_id=_int(payload, "installation", "id"))
    if event == "installation_repositories":
        ids = [
            _int(r, "id")
            for key in ("repositories_added", "repositories_removed")
            for r in _list(payload, key)
        ]
        return Targets(repository_ids=tuple(sorted({i for i in ids if i is not None})))
    repository_id = _int(payload, "repository", "id")
    return Targets(repository_ids=(repository_id,) if repository_id is not None else ())


def route(
    event: str,
    payload: Mapping[str, Any],
    link: Link,
    *,
    own_logins: frozenset[str] = frozenset(),
) -> WebhookAction:
    """What one delivery means for one linked project. Unknown events and actions are ignored.

    `own_logins` are the accounts ghsync pushes as (its App's bot, `<slug>[bot]`): their PR pushes are
    our own and need no reconcile (one would be a no-op anyway, the engine being level-triggered).
    """
    action = payload.get("action")
    if event == "ping":
        return Ping()
    if event in ("installation", "installation_repositories"):
        return _route_installation(event, action, payload, link)
    repository_id = _int(payload, "repository", "id")
    if repository_id is not None and repository_id != link.repository_id:
        return Ignore("the delivery is about another repository")
    if event == "repository":
        return _route_repository(action, payload, link)
    if not link.enabled:
        return Ignore("sync is disabled for this project")
    if event == "push":
        return _route_push(payload, link)
    if event == "pull_request":
        return _route_pull_request(action, payload, link, own_logins)
    return Ignore(f"the {event} event does not concern sync")


def _route_push(payload: Mapping[str, Any], link: Link) -> WebhookAction:
    # push: `ref` is the full ref pushed; `repository.default_branch` is the default branch as it is now
    # (https://docs.github.com/en/webhooks/webhook-events-and-payloads#push), fresher than the link's.
    ref = payload.get("ref")
    if not isinstance(ref, str):
        return Ignore("the push names no ref")
    if ref.startswith("refs/tags/"):
        return Ignore(f"a tag was pushed ({ref})")
    default_branch = _str(payload, "repository", "default_branch") or link.default_branch
    if ref != f"refs/heads/{default_branch}":
        return Ignore(f"{ref} is not the default branch")
    if payload.get("deleted") is True:
        return Ignore("the default branch was deleted")  # GitHub refuses that; nothing to bring in
    return Reconcile("push to the default branch")


def _route_pull_request(
    action: object, payload: Mapping[str, Any], link: Link, own_logins: frozenset[str]
) -> WebhookAction:
    # pull_request: `closed` with `pull_request.merged` true is a merge; `synchronize` is a push to the
    # head branch (https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request).
    head_ref = _str(payload, "pull_request", "head", "ref")
    head_repo = _int(payload, "pull_request", "head", "repo", "id")
    if head_ref != pr_branch_name(link.project_id) or (
        head_repo is not None and head_repo != link.repository_id
    ):
        return Ignore("not this project's pull request")
    if action == "closed":
        merged = _get(payload, "pull_request", "merged") is True
        return Reconcile("our pull request was merged" if merged else "our pull request was closed")
    if action == "synchronize":
        sender = _str(payload, "sender", "login")
        if sender is not None and sender in own_logins:
            return Ignore("our own push to the pull request")
        return Reconcile("a person pushed to our pull request")
    return Ignore(f"pull_request {action} does not concern sync")


def _route_repository(action: object, payload: Mapping[str, Any], link: Link) -> WebhookAction:
    # repository: renamed, transferred, edited (`changes.default_branch.from` when the default branch
    # changed), archived, unarchived, deleted
    # (https://docs.github.com/en/webhooks/webhook-events-and-payloads#repository).
    if action in ("renamed", "transferred"):
        owner, name = _str(payload, "repository", "owner", "login"), _str(payload, "repository", "name")
        if owner is None or name is None:
            return Ignore(f"repository {action} without the new owner and name")
        if (owner, name) == (link.owner, link.repo):
            return Ignore("the link already names this repository")
        return FollowRepository(owner, name)
    if action == "edited":
        if _get(payload, "changes", "default_branch") is None:
            return Ignore("the edit did not change the default branch")
        branch = _str(payload, "repository", "default_branch")
        if branch is None:
            return Ignore("the edit names no default branch")
        return ChangeDefaultBranch(branch)
    if action == "archived":
        return DisableSync("repository_archived")
    if action == "unarchived":
        return EnableSync("repository_archived")
    if action == "deleted":
        return DisableSync("repository_deleted")
    return Ignore(f"repository {action} does not concern sync")


def _route_installation(event: str, action: object, payload: Mapping[str, Any], link: Link) -> WebhookAction:
    # installation: deleted, suspend, unsuspend (https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation);
    # installation_repositories: added, removed, with `repositories_added` / `repositories_removed`
    # (https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation_repositories).
    if _int(payload, "installation", "id") != link.installation_id:
        return Ignore("the delivery is about another installation")
    if event == "installation":
        if action == "deleted":
            return DisableSync("installation_deleted")
        if action == "suspend":
            return DisableSync("installation_suspended")
        if action == "unsuspend":
            return EnableSync("installation_suspended")
        return Ignore(f"installation {action} does not concern sync")
    key = {"removed": "repositories_removed", "added": "repositories_added"}.get(str(action))
    if key is None:
        return Ignore(f"installation_repositories {action} does not concern sync")
    if link.repository_id not in {_int(r, "id") for r in _list(payload, key)}:
        return Ignore("the repository is not among those changed")
    return DisableSync("repository_removed") if action == "removed" else EnableSync("repository_removed")


def applied(link: Link, action: WebhookAction, *, disabled_by: DisableCause | None) -> Link:
    """The link after a link-changing action; `disabled_by` is why sync was last stopped by a delivery
    (None when it was not, e.g. a person turned it off: then no delivery turns it back on)."""
    if isinstance(action, FollowRepository):
        return replace(link, owner=action.owner, repo=action.repo)
    if isinstance(action, ChangeDefaultBranch):
        return replace(link, default_branch=action.branch)
    if isinstance(action, DisableSync):
        return replace(link, enabled=False)
    if isinstance(action, EnableSync) and not link.enabled and disabled_by == action.after:
        return replace(link, enabled=True)
    return link


# --- reading untrusted payloads ----------------------------------------------------------------------------


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


# GitHub's ids are positive 64-bit integers; anything else names nothing (and would not fit a BIGINT).
MAX_ID = 2**63 - 1


def github_id(value: Any) -> int | None:
    """`value` if it can be a GitHub id (a positive 64-bit integer), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def _int(data: Any, *keys: str) -> int | None:
    return github_id(_get(data, *keys) if isinstance(data, Mapping) else None)


def _str(data: Mapping[str, Any], *keys: str) -> str | None:
    value = _get(data, *keys)
    return value if isinstance(value, str) and value else None


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


# --- hardening: where deliveries may come from, and how fast ----------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def hook_networks(meta: Mapping[str, Any]) -> tuple[Network, ...]:
    """The `hooks` CIDRs of `GET /meta`: the addresses GitHub sends webhooks from
    (https://docs.github.com/en/rest/meta/meta#get-github-meta-information; GitHub asks to refresh them,
    as they change: https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-githubs-ip-addresses)."""
    hooks = meta.get("hooks")
    if not isinstance(hooks, list) or not hooks:
        raise ValueError("GET /meta returned no `hooks` ranges")
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in hooks if isinstance(cidr, str))


def address_allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether `address` (the peer's IP) lies in one of `networks`; an unparsable address never does."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip.version == net.version and ip in net for net in networks)


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `tokens` left at monotonic time `at`."""

    tokens: float
    at: float


def take_token(bucket: Bucket | None, now: float, *, rate: float, burst: float) -> tuple[Bucket, float]:
    """Spend one token of a source's bucket (refilled at `rate` per second up to `burst`).

    Returns the new bucket and 0 when the request may pass, else how many seconds until it could.
    """
    refilled = burst if bucket is None else bucket.tokens + max(0.0, now - bucket.at) * rate
    tokens = min(burst, refilled)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate
