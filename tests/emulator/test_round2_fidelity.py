"""Issue 8, item 9: the objects the emulator sends carry the fields GitHub's own examples carry.

Each object is compared, field by field and recursively, with the matching example from GitHub's
OpenAPI description (``components/examples``) or with a payload recorded from GitHub
(``@octokit/webhooks-examples``), both kept in ``tests/data/github/examples.json`` by
``scripts/update_github_schemas.py``. A field GitHub sends that the emulator leaves out fails the
test unless :data:`NOT_SENT` lists it with the reason. (Schema validation, strict formats
included, is done by the ``api`` client and ``validate_webhook`` as everywhere else.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import api
from github_emulator.testing import EmulatorHandle, WebhookReceiver, run_emulator
from support.github_schemas import DATA_DIR, validate_webhook

EXAMPLES: dict[str, Any] = json.loads((DATA_DIR / "examples.json").read_text())

# Fields of GitHub's examples the emulator does not send, with why ("<object>:<path>").
NOT_SENT: dict[str, str] = {
    "installation-token:repositories": "listed only for a token restricted to some repositories",
    "full-repository:organization": "only for an organisation's repository (checked on one)",
    "full-repository:template_repository": "only for a repository made from a template",
    "full-repository:parent": "only for a fork (forks are not emulated)",
    "full-repository:source": "only for a fork (forks are not emulated)",
    "full-repository:org:template_repository": "only for a repository made from a template",
    "full-repository:org:parent": "only for a fork (forks are not emulated)",
    "full-repository:org:source": "only for a fork (forks are not emulated)",
    "minimal-repository:template_repository": "only for a repository made from a template",
    "branch-protection:restrictions": "only when push restrictions are set (GitHub omits it)",
    "branch-protection:required_pull_request_reviews.dismissal_restrictions": "only when set",
    "api-overview:ssh_key_fingerprints.SHA256_RSA": "no SSH (git is served over HTTP only)",
    "api-overview:ssh_key_fingerprints.SHA256_DSA": "no SSH",
    "api-overview:ssh_key_fingerprints.SHA256_ECDSA": "no SSH",
    "api-overview:ssh_key_fingerprints.SHA256_ED25519": "no SSH",
    "hook-delivery:response.headers.content-type": "the receiver's own answer (the test's sends none)",
    "repository$renamed:organization": "the renamed repository is a user's (organization checked on edited)",
}
# Keys whose members depend on the case, not on fidelity: an App's permissions are its own, and
# a delivery's payload is whatever event it carried.
OPEN_ENDED = frozenset({"permissions", "payload"})


def missing_fields(example: Any, ours: Any, path: str = "") -> list[str]:
    """Paths present in ``example`` but absent from ``ours`` (lists: their first items compared;
    header names compared without case; :data:`OPEN_ENDED` members not compared)."""
    if isinstance(example, dict) and isinstance(ours, dict):
        last = path.rsplit(".", 1)[-1]
        if last in OPEN_ENDED:
            return []
        if last == "headers":
            ours = {k.lower(): v for k, v in ours.items()}
            example = {k.lower(): v for k, v in example.items()}
        out = [f"{path}.{k}".lstrip(".") for k in example if k not in ours]
        for key, value in example.items():
            if key in ours and ours[key] is not None:
                out += missing_fields(value, ours[key], f"{path}.{key}")
        return out
    if isinstance(example, list) and isinstance(ours, list) and example and ours:
        return missing_fields(example[0], ours[0], f"{path}[]")
    return []


def test_missing_fields_reports_nested_paths() -> None:
    assert missing_fields({"a": 1, "b": {"c": 1, "d": [{"e": 1}]}}, {"b": {"d": [{}]}}) == [
        "a",
        "b.c",
        "b.d[].e",
    ]


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every object kind, fetched from an emulator exercised once (module-scoped: it is slow)."""
    data = Path(tmp_path_factory.mktemp("fidelity"))
    with WebhookReceiver() as rx, run_emulator(data / "e", webhook_workers=1) as emu:
        yield _collect(emu, rx)


def _collect(emu: EmulatorHandle, rx: WebhookReceiver) -> dict[str, Any]:
    found: dict[str, Any] = {}
    app = emu.create_app("fidelity", webhook_url=rx.url, webhook_secret="s")
    user = emu.create_user("octocat", name="The Octocat", email="octocat@github.com")
    emu.create_org("octo-org", name="Octo Org")
    emu.create_repo("octocat", "hello", files={"README.md": "hi\n"}, description="demo")
    emu.create_repo("octo-org", "team", files={"a.txt": "a\n"})
    emu.create_repo("octocat", "movable", files={"m.txt": "m\n"})
    inst = emu.create_installation(app.id, "octocat", ["octocat/hello", "octocat/movable"])
    org_inst = emu.create_installation(app.id, "octo-org", ["octo-org/team"])
    jwt_headers = {"Authorization": f"Bearer {emu.app_jwt(app)}"}
    with api(emu) as anonymous, api(emu, user.token) as person:
        found["integration"] = anonymous.get("/app", headers=jwt_headers).json()
        found["installation"] = anonymous.get(f"/app/installations/{inst}", headers=jwt_headers).json()
        token = anonymous.post(f"/app/installations/{inst}/access_tokens", headers=jwt_headers).json()
        found["installation-token"] = token
        found["private-user"] = person.get("/user").json()
        found["api-overview"] = anonymous.get("/meta").json()
        found["full-repository:org"] = person.get("/repos/octo-org/team").json()
    with api(emu, emu.installation_token(app, org_inst)) as org:
        org.patch("/repos/octo-org/team", json={"description": "an organisation's"})
    with api(emu, token["token"]) as c:
        repo = c.get("/repos/octocat/hello").json()
        found["full-repository"] = repo
        found["simple-user"] = repo["owner"]
        sha = c.get("/repos/octocat/hello/git/ref/heads/main").json()["object"]["sha"]
        found["git-ref"] = c.get("/repos/octocat/hello/git/ref/heads/main").json()
        found["git-commit"] = c.get(f"/repos/octocat/hello/git/commits/{sha}").json()
        found["commit"] = c.get(f"/repos/octocat/hello/commits/{sha}").json()
        c.put(
            "/repos/octocat/hello/branches/main/protection",
            json={
                "required_status_checks": {"strict": True, "contexts": ["ci"]},
                "enforce_admins": True,
                "required_pull_request_reviews": {"required_approving_review_count": 1},
                "restrictions": None,
            },
        )
        found["branch-protection"] = c.get("/repos/octocat/hello/branches/main/protection").json()
        found["branch-get"] = c.get("/repos/octocat/hello/branches/main").json()
        c.delete("/repos/octocat/hello/branches/main/protection")
        found["hook"] = c.post(
            "/repos/octocat/hello/hooks",
            json={"config": {"url": rx.url, "content_type": "json"}, "events": ["push"]},
        ).json()
        found["minimal-repository"] = c.post(
            "/repos/octocat/movable/transfer", json={"new_owner": "octo-org"}
        ).json()
        c.patch("/repos/octocat/hello", json={"description": "changed"})
        c.patch("/repos/octocat/hello", json={"name": "hello2"})
        c.post("/repos/octocat/hello2/git/refs", json={"ref": "refs/heads/topic", "sha": sha})
        c.delete("/repos/octocat/hello2/git/refs/heads/topic")
        c.post("/repos/octocat/hello2/git/refs", json={"ref": "refs/heads/feature", "sha": sha})
        tree = c.post(
            "/repos/octocat/hello2/git/trees",
            json={
                "base_tree": found["git-commit"]["tree"]["sha"],
                "tree": [{"path": "f.txt", "mode": "100644", "type": "blob", "content": "f\n"}],
            },
        ).json()
        commit = c.post(
            "/repos/octocat/hello2/git/commits", json={"message": "f", "tree": tree["sha"], "parents": [sha]}
        ).json()
        c.patch("/repos/octocat/hello2/git/refs/heads/feature", json={"sha": commit["sha"]})
        c.post("/repos/octocat/hello2/pulls", json={"title": "F", "head": "feature", "base": "main"})
    with api(emu) as anonymous:
        deliveries = anonymous.get("/app/hook/deliveries", headers=jwt_headers).json()
        found["hook-delivery"] = anonymous.get(
            f"/app/hook/deliveries/{deliveries[0]['id']}", headers=jwt_headers
        ).json()
    emu.suspend_installation(inst)
    settled = emu.wait_for_deliveries(
        lambda ds: any(d["event"] == "installation" and d["action"] == "suspend" for d in ds)
    )
    for d in settled:
        name = f"{d['event']}${d['action'] or 'event'}"
        # The recorded ping is a repository hook's; the others are App deliveries.
        if (d["hook_id"] == app.hook_id) != (name == "ping$event"):
            found.setdefault(name, d["payload"])
    return found


OPENAPI_PAIRS = [
    ("simple-user", "simple-user"),
    ("private-user", "private-user"),
    ("integration", "integration"),
    ("installation", "installation"),
    ("installation-token", "installation-token"),
    ("full-repository", "full-repository"),
    ("full-repository:org", "full-repository"),
    ("minimal-repository", "minimal-repository"),
    ("branch-get", "branch-get"),
    ("branch-protection", "branch-protection"),
    ("git-ref", "git-ref"),
    ("git-commit", "git-commit"),
    ("commit", "commit"),
    ("hook", "hook"),
    ("hook-delivery", "hook-delivery"),
    ("api-overview", "api-overview"),
]


@pytest.mark.parametrize(("ours", "example"), OPENAPI_PAIRS)
def test_rest_objects_carry_the_fields_of_githubs_examples(
    objects: dict[str, Any], ours: str, example: str
) -> None:
    gaps = [
        p
        for p in missing_fields(EXAMPLES["openapi"][example], objects[ours])
        if f"{ours}:{p}" not in NOT_SENT
    ]
    assert not gaps, f"{ours} lacks fields GitHub's example {example!r} has: {gaps}"


@pytest.mark.parametrize("name", sorted(EXAMPLES["webhooks"]))
def test_webhook_payloads_carry_the_fields_of_recorded_ones(objects: dict[str, Any], name: str) -> None:
    assert name in objects, f"no {name} delivery recorded; have {sorted(k for k in objects if '$' in k)}"
    event = name.split("$", 1)[0]
    validate_webhook(event, objects[name])
    gaps = [
        p for p in missing_fields(EXAMPLES["webhooks"][name], objects[name]) if f"{name}:{p}" not in NOT_SENT
    ]
    assert not gaps, f"{name} lacks fields GitHub's recorded payload has: {gaps}"
