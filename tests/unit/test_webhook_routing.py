"""The pure webhook rules: GitHub's signature test vector, header and payload parsing, and the routing
table (event, action, payload, link) -> what to do."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ghsync.domain.link import Link
from ghsync.domain.sync import ConflictStrategy, SyncMode
from ghsync.domain.webhooks import (
    Bucket,
    ChangeDefaultBranch,
    DeliveryHeaders,
    DisableSync,
    EnableSync,
    FollowRepository,
    Ignore,
    InvalidSignature,
    MalformedDelivery,
    Ping,
    Reconcile,
    Targets,
    WebhookAction,
    address_allowed,
    applied,
    check_signature,
    hook_networks,
    parse_headers,
    parse_payload,
    route,
    sign,
    take_token,
    targets_of,
    verify_delivery,
)

PROJECT = "0b0e7d5e-3c1a-4f3e-9a57-6f8f1f2b9c11"
LINK = Link(
    project_id=PROJECT,
    owner="octo",
    repo="site",
    repository_id=42,
    installation_id=7,
    default_branch="trunk",
    protected=False,
    mode=SyncMode.PROTECTED_PR,
    strategy=ConflictStrategy.MANUAL,
    enabled=True,
)

# --- signatures ----------------------------------------------------------------------------------------

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_published_test_vector() -> None:
    assert sign(GITHUB_SECRET, GITHUB_PAYLOAD) == GITHUB_SIGNATURE
    check_signature(GITHUB_SECRET, GITHUB_PAYLOAD, {"X-Hub-Signature-256": GITHUB_SIGNATURE})


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE}, b"Hello, World!\n", "does not match"),  # one byte more
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE.upper()}, GITHUB_PAYLOAD, "does not match"),
        ({"X-Hub-Signature-256": GITHUB_SIGNATURE[:-1]}, GITHUB_PAYLOAD, "does not match"),
        ({"X-Hub-Signature-256": "sha1=" + GITHUB_SIGNATURE[7:]}, GITHUB_PAYLOAD, "does not match"),
        ({"X-Hub-Signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"}, GITHUB_PAYLOAD, "SHA-1"),
        ({}, GITHUB_PAYLOAD, "missing"),
    ],
    ids=["body-changed", "upper-case", "truncated", "wrong-algorithm-prefix", "sha1-alone", "no-signature"],
)
def test_a_signature_that_does_not_match_is_refused(
    headers: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(InvalidSignature, match=message) as caught:
        check_signature(GITHUB_SECRET, body, headers)
    assert caught.value.code == "invalid_signature"


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(InvalidSignature):
        check_signature("another secret", GITHUB_PAYLOAD, {"x-hub-signature-256": GITHUB_SIGNATURE})


# --- headers and payloads ------------------------------------------------------------------------------


def test_a_delivery_is_verified_then_read_whatever_its_headers_case() -> None:
    body = b'{"zen": "Keep it logically awesome.", "repository": {"id": 42}}'
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d1", "Content-Type": "application/json"}
    signed = {**headers, "X-Hub-Signature-256": sign(GITHUB_SECRET, body)}
    assert verify_delivery(GITHUB_SECRET, body, signed) == (
        DeliveryHeaders("ping", "d1"),
        {"repository": {"id": 42}},  # what ghsync reads of it
    )
    with pytest.raises(InvalidSignature):
        verify_delivery("another secret", body, signed)
    with pytest.raises(InvalidSignature):  # checked before the (here missing) headers are read
        verify_delivery(GITHUB_SECRET, body, {"X-Hub-Signature-256": "sha256=" + "0" * 64})
    with pytest.raises(MalformedDelivery, match="X-GitHub-Event"):
        verify_delivery(GITHUB_SECRET, body, {"X-Hub-Signature-256": sign(GITHUB_SECRET, body)})


def test_headers_are_read_whatever_their_case() -> None:
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "x-github-hook-installation-target-id": "79929171",
    }
    assert parse_headers(headers) == DeliveryHeaders(
        event="push",
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        hook_id=292430182,
        target_type="integration",
        target_id=79929171,
    )
    assert parse_headers({"x-github-event": "ping", "x-github-delivery": "d1"}) == DeliveryHeaders(
        "ping", "d1"
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-GitHub-Delivery": "d1"}, "X-GitHub-Event header is missing"),
        ({"X-GitHub-Event": "push"}, "X-GitHub-Delivery header is missing"),
        ({"X-GitHub-Event": "Push!", "X-GitHub-Delivery": "d1"}, "not an event name"),
        ({"X-GitHub-Event": "push", "X-GitHub-Delivery": "x" * 65}, "not a delivery id"),
        ({"X-GitHub-Event": "push", "X-GitHub-Delivery": "../etc"}, "not a delivery id"),
        (
            {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d1", "X-GitHub-Hook-ID": "abc"},
            "must be a number",
        ),
    ],
)
def test_missing_or_invalid_headers_are_malformed(headers: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedDelivery, match=message):
        parse_headers(headers)


def test_a_payload_is_a_json_object_sent_as_json_or_as_a_form() -> None:
    payload = {"action": "created", "installation": {"id": 7}, "repository": {"id": 42, "name": "site"}}
    assert parse_payload(json.dumps(payload).encode()) == payload
    assert parse_payload(json.dumps(payload).encode(), "application/json; charset=utf-8") == payload
    form = urlencode({"payload": json.dumps(payload)}).encode()
    assert parse_payload(form, "application/x-www-form-urlencoded") == payload


def test_only_the_members_ghsync_reads_are_built() -> None:
    commits = [{"id": "a" * 40, "added": ["x"] * 100}] * 50  # most of a real push's size
    payload = {"ref": "refs/heads/main", "commits": commits, "head_commit": commits[0], "zen": None}
    assert parse_payload(json.dumps(payload).encode()) == {"ref": "refs/heads/main"}
    # A member's value is kept whole and as sent, null included (routing tells it from an absent one).
    assert parse_payload(b'{"action": null, "changes": {"a": [1, {"b": 2.5}]}}') == {
        "action": None,
        "changes": {"a": [1, {"b": 2.5}]},
    }


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b"", None, "not valid JSON"),
        (b"other=1", "application/x-www-form-urlencoded", "one `payload` field"),
        (b"payload=%7Bbad", "application/x-www-form-urlencoded", "not valid JSON"),
        # Strict RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259): no NaN, no byte-order mark, no lone
        # surrogate (the json module took all three).
        (b'{"a": NaN}', None, "not valid JSON"),
        (b"\xef\xbb\xbf{}", None, "not valid JSON"),
        (b'{"a": "\\ud800"}', None, "not valid JSON"),
        # The members nobody reads are checked all the same.
        (b'{"ref": "refs/heads/main", "commits": [1, 2,]}', None, "not valid JSON"),
        (b'{"commits": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "nested too deeply"),
        (b'{"ref": "refs/heads/main"} trailing', None, "not valid JSON"),
        (b'{"ref": "\xff"}', None, "not valid JSON"),
    ],
)
def test_a_payload_that_is_not_a_json_object_is_malformed(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(MalformedDelivery, match=message):
        parse_payload(body, content_type)


# --- targets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("push", {"repository": {"id": 42}}, Targets(repository_ids=(42,))),
        ("pull_request", {"repository": {"id": 42}}, Targets(repository_ids=(42,))),
        (
            "installation",
            {"installation": {"id": 7}, "repositories": [{"id": 42}]},
            Targets(installation_id=7),
        ),
        (
            "installation_repositories",
            {"repositories_added": [{"id": 43}], "repositories_removed": [{"id": 42}, {"id": "x"}]},
            Targets(repository_ids=(42, 43)),
        ),
        ("ping", {"zen": "Design for failure.", "hook_id": 1}, Targets()),
        ("push", {"repository": {"id": "42"}}, Targets()),  # an id must be a number
    ],
)
def test_the_projects_a_delivery_concerns_are_named_by_id(
    event: str, payload: dict[str, Any], expected: Targets
) -> None:
    assert targets_of(event, payload) == expected


# --- routing -------------------------------------------------------------------------------------------


def _push(ref: str, **extra: Any) -> dict[str, Any]:
    return {"ref": ref, "repository": {"id": 42, "default_branch": "trunk"}, **extra}


def _pull(action: str, head: str = f"ghsync/{PROJECT}", **extra: Any) -> dict[str, Any]:
    pull = {"head": {"ref": head, "repo": {"id": 42}}, "merged": extra.pop("merged", False)}
    return {"action": action, "repository": {"id": 42}, "pull_request": pull, **extra}


def _repository(action: str, **extra: Any) -> dict[str, Any]:
    repository = {"id": 42, "name": "site", "owner": {"login": "octo"}, "default_branch": "trunk"}
    repository.update(extra.pop("repository", {}))
    return {"action": action, "repository": repository, **extra}


def _installation(action: str, installation_id: int = 7) -> dict[str, Any]:
    return {"action": action, "installation": {"id": installation_id}}


def _repositories(action: str, ids: list[int], installation_id: int = 7) -> dict[str, Any]:
    return {
        "action": action,
        "installation": {"id": installation_id},
        f"repositories_{action}": [{"id": i, "full_name": f"octo/r{i}"} for i in ids],
    }


ROUTES: list[tuple[str, str, dict[str, Any], WebhookAction]] = [
    # push: https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
    ("default branch", "push", _push("refs/heads/trunk"), Reconcile("push to the default branch")),
    ("forced", "push", _push("refs/heads/trunk", forced=True), Reconcile("push to the default branch")),
    (
        "other branch",
        "push",
        _push("refs/heads/feature"),
        Ignore("refs/heads/feature is not the default branch"),
    ),
    (
        "our PR branch",
        "push",
        _push(f"refs/heads/ghsync/{PROJECT}"),
        Ignore(f"refs/heads/ghsync/{PROJECT} is not the default branch"),
    ),
    ("tag", "push", _push("refs/tags/v1"), Ignore("a tag was pushed (refs/tags/v1)")),
    (
        "renamed default in payload",
        "push",
        {"ref": "refs/heads/main", "repository": {"id": 42, "default_branch": "main"}},
        Reconcile("push to the default branch"),
    ),
    (
        "no default in payload: the link's",
        "push",
        {"ref": "refs/heads/trunk", "repository": {"id": 42}},
        Reconcile("push to the default branch"),
    ),
    (
        "default deleted",
        "push",
        _push("refs/heads/trunk", deleted=True),
        Ignore("the default branch was deleted"),
    ),
    ("no ref", "push", {"repository": {"id": 42}}, Ignore("the push names no ref")),
    (
        "another repository",
        "push",
        {"ref": "refs/heads/trunk", "repository": {"id": 99}},
        Ignore("the delivery is about another repository"),
    ),
    # pull_request: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request
    ("our PR merged", "pull_request", _pull("closed", merged=True), Reconcile("our pull request was merged")),
    ("our PR closed", "pull_request", _pull("closed"), Reconcile("our pull request was closed")),
    (
        "a person pushed to our PR",
        "pull_request",
        _pull("synchronize", sender={"login": "octo", "type": "User"}),
        Reconcile("a person pushed to our pull request"),
    ),
    (
        "our own push to our PR",
        "pull_request",
        _pull("synchronize", sender={"login": "ghsync[bot]", "type": "Bot"}),
        Ignore("our own push to the pull request"),
    ),
    ("opened", "pull_request", _pull("opened"), Ignore("pull_request opened does not concern sync")),
    (
        "someone else's PR",
        "pull_request",
        _pull("closed", head="feature", merged=True),
        Ignore("not this project's pull request"),
    ),
    (
        "another project's PR",
        "pull_request",
        _pull("closed", head="ghsync/11111111-2222-3333-4444-555555555555", merged=True),
        Ignore("not this project's pull request"),
    ),
    # repository: https://docs.github.com/en/webhooks/webhook-events-and-payloads#repository
    (
        "renamed",
        "repository",
        _repository("renamed", repository={"name": "web"}),
        FollowRepository("octo", "web"),
    ),
    (
        "transferred",
        "repository",
        _repository("transferred", repository={"owner": {"login": "acme"}}),
        FollowRepository("acme", "site"),
    ),
    (
        "renamed, already followed",
        "repository",
        _repository("renamed"),
        Ignore("the link already names this repository"),
    ),
    (
        "default branch edited",
        "repository",
        _repository(
            "edited", repository={"default_branch": "main"}, changes={"default_branch": {"from": "trunk"}}
        ),
        ChangeDefaultBranch("main"),
    ),
    (
        "description edited",
        "repository",
        _repository("edited", changes={"description": {"from": ""}}),
        Ignore("the edit did not change the default branch"),
    ),
    ("archived", "repository", _repository("archived"), DisableSync("repository_archived")),
    ("unarchived", "repository", _repository("unarchived"), EnableSync("repository_archived")),
    ("deleted", "repository", _repository("deleted"), DisableSync("repository_deleted")),
    (
        "privatized",
        "repository",
        _repository("privatized"),
        Ignore("repository privatized does not concern sync"),
    ),
    # installation: https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation
    ("installation deleted", "installation", _installation("deleted"), DisableSync("installation_deleted")),
    (
        "installation suspended",
        "installation",
        _installation("suspend"),
        DisableSync("installation_suspended"),
    ),
    (
        "installation unsuspended",
        "installation",
        _installation("unsuspend"),
        EnableSync("installation_suspended"),
    ),
    (
        "installation created",
        "installation",
        _installation("created"),
        Ignore("installation created does not concern sync"),
    ),
    (
        "another installation",
        "installation",
        _installation("deleted", 8),
        Ignore("the delivery is about another installation"),
    ),
    # installation_repositories: https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation_repositories
    (
        "repository removed",
        "installation_repositories",
        _repositories("removed", [41, 42]),
        DisableSync("repository_removed"),
    ),
    (
        "repository added",
        "installation_repositories",
        _repositories("added", [42]),
        EnableSync("repository_removed"),
    ),
    (
        "other repositories removed",
        "installation_repositories",
        _repositories("removed", [41]),
        Ignore("the repository is not among those changed"),
    ),
    # ping: https://docs.github.com/en/webhooks/webhook-events-and-payloads#ping
    ("ping", "ping", {"zen": "Speak like a human.", "hook_id": 1}, Ping()),
    # anything else
    (
        "unknown event",
        "star",
        {"action": "created", "repository": {"id": 42}},
        Ignore("the star event does not concern sync"),
    ),
    (
        "issues",
        "issues",
        {"action": "opened", "repository": {"id": 42}},
        Ignore("the issues event does not concern sync"),
    ),
]


@pytest.mark.parametrize(("case", "event", "payload", "expected"), ROUTES, ids=[r[0] for r in ROUTES])
def test_routing(case: str, event: str, payload: dict[str, Any], expected: WebhookAction) -> None:
    assert route(event, payload, LINK, own_logins=frozenset({"ghsync[bot]"})) == expected
    # The receiver routes what `parse_payload` reads of the body: it must decide the same.
    read = parse_payload(json.dumps(payload).encode())
    assert route(event, read, LINK, own_logins=frozenset({"ghsync[bot]"})) == expected
    assert targets_of(event, read) == targets_of(event, payload)


EXAMPLES = Path(__file__).parents[1] / "data" / "github" / "examples.json"


@pytest.mark.parametrize("kind", sorted(json.loads(EXAMPLES.read_text())["webhooks"]))
def test_githubs_recorded_payloads_route_the_same_from_what_is_read_of_them(kind: str) -> None:
    """GitHub's recorded deliveries (@octokit/webhooks-examples), each to a link of its own repository and
    installation: routed whole and as `parse_payload` reads them, they are one decision."""
    payload = json.loads(EXAMPLES.read_text())["webhooks"][kind]
    event = kind.split("$")[0]
    repository = payload.get("repository") or {}
    installation = payload.get("installation") or {}
    link = replace(
        LINK,
        repository_id=repository.get("id", 42),
        installation_id=installation.get("id", 7),
        default_branch=repository.get("default_branch", "main"),
    )
    read = parse_payload(json.dumps(payload).encode())
    assert set(read) <= set(payload)
    assert route(event, read, link) == route(event, payload, link)
    assert targets_of(event, read) == targets_of(event, payload)


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("push", _push("refs/heads/trunk"), Ignore("sync is disabled for this project")),
        ("pull_request", _pull("closed", merged=True), Ignore("sync is disabled for this project")),
        # Link changes still apply to a disabled project, so the link stays true and access can come back.
        ("repository", _repository("renamed", repository={"name": "web"}), FollowRepository("octo", "web")),
        ("repository", _repository("unarchived"), EnableSync("repository_archived")),
        ("installation", _installation("unsuspend"), EnableSync("installation_suspended")),
    ],
)
def test_a_disabled_project_only_follows_link_changes(
    event: str, payload: dict[str, Any], expected: WebhookAction
) -> None:
    assert route(event, payload, replace(LINK, enabled=False)) == expected


def test_without_own_logins_every_pr_push_requests_a_reconcile() -> None:
    payload = _pull("synchronize", sender={"login": "ghsync[bot]", "type": "Bot"})
    assert route("pull_request", payload, LINK) == Reconcile("a person pushed to our pull request")


# --- applying a link change ----------------------------------------------------------------------------


def test_link_changes_are_applied() -> None:
    assert applied(LINK, FollowRepository("acme", "web"), disabled_by=None) == replace(
        LINK, owner="acme", repo="web"
    )
    assert applied(LINK, ChangeDefaultBranch("main"), disabled_by=None) == replace(
        LINK, default_branch="main"
    )
    assert applied(LINK, DisableSync("installation_suspended"), disabled_by=None) == replace(
        LINK, enabled=False
    )
    assert applied(LINK, Reconcile("x"), disabled_by=None) == LINK


@pytest.mark.parametrize(
    ("disabled_by", "action", "enabled"),
    [
        ("installation_suspended", EnableSync("installation_suspended"), True),
        ("repository_archived", EnableSync("repository_archived"), True),
        ("repository_removed", EnableSync("repository_removed"), True),
        # Access returning for another reason than the one that stopped sync changes nothing...
        ("repository_archived", EnableSync("installation_suspended"), False),
        # ...nor does it undo a person's choice to turn sync off.
        (None, EnableSync("installation_suspended"), False),
    ],
)
def test_sync_is_re_enabled_only_when_the_same_cause_is_lifted(
    disabled_by: Any, action: EnableSync, enabled: bool
) -> None:
    disabled = replace(LINK, enabled=False)
    assert applied(disabled, action, disabled_by=disabled_by).enabled is enabled


# --- hardening -----------------------------------------------------------------------------------------


def test_the_hooks_ranges_of_meta_are_read_and_matched() -> None:
    # The shape of GET /meta (https://docs.github.com/en/rest/meta/meta#get-github-meta-information).
    networks = hook_networks(
        {"hooks": ["192.30.252.0/22", "185.199.108.0/22", "2a0a:a440::/29"], "git": ["x"]}
    )
    assert address_allowed("192.30.252.1", networks)
    assert address_allowed("185.199.111.255", networks)
    assert address_allowed("2a0a:a440::1", networks)
    assert address_allowed("::ffff:192.30.252.7", networks)  # an IPv4 peer on a dual-stack socket
    assert not address_allowed("192.30.256.1", networks)  # not an address
    assert not address_allowed("10.0.0.1", networks)
    assert not address_allowed("2001:db8::1", networks)
    assert not address_allowed(None, networks)
    assert not address_allowed("testclient", networks)


@pytest.mark.parametrize("meta", [{}, {"hooks": []}, {"hooks": "192.30.252.0/22"}])
def test_meta_without_hooks_ranges_is_refused(meta: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no `hooks` ranges"):
        hook_networks(meta)


def test_a_source_spends_its_burst_then_waits_for_the_refill() -> None:
    bucket = None
    for _ in range(3):
        bucket, wait = take_token(bucket, 100.0, rate=2.0, burst=3.0)
        assert wait == 0.0
    bucket, wait = take_token(bucket, 100.0, rate=2.0, burst=3.0)
    assert wait == pytest.approx(0.5)  # one token at 2 per second
    bucket, wait = take_token(bucket, 100.5, rate=2.0, burst=3.0)
    assert wait == 0.0
    # A long quiet spell refills up to the burst, not beyond it.
    bucket, _ = take_token(bucket, 1000.0, rate=2.0, burst=3.0)
    assert bucket == Bucket(2.0, 1000.0)


@pytest.mark.parametrize("value", [0, -1, 2**63, 2**70, True, "1", 1.0])
def test_an_id_that_cannot_be_github_s_names_nothing(value: object) -> None:
    """GitHub's ids are positive 64-bit integers; a bigger one must not reach a BIGINT column (the fuzz
    test found a 2**70 installation id answering 500)."""
    from ghsync.domain.webhooks import github_id, targets_of

    assert github_id(value) is None
    payload = {"repository": {"id": value}, "installation": {"id": value}}
    assert targets_of("push", payload).repository_ids == ()
    assert github_id(2**63 - 1) == 2**63 - 1
