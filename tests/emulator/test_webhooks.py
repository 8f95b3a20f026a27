"""Webhooks: GitHub's signature vector, headers, ping, installation events, modes, deliveries API."""

from __future__ import annotations

from conftest import Installed, api
from github_emulator.testing import EmulatorHandle, ReceivedWebhook, WebhookReceiver
from github_emulator.webhooks import sign_sha256
from support.github_schemas import validate_webhook


def test_signature_matches_githubs_test_vector() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    assert (
        sign_sha256("It's a Secret to Everybody", b"Hello, World!")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_ping_and_installation_events(emu: EmulatorHandle, receiver: WebhookReceiver) -> None:
    app = emu.create_app("events", webhook_url=receiver.url, webhook_secret="x")
    emu.create_repo("octo", "a", files={"a": "a"})
    emu.create_repo("octo", "b", files={"b": "b"})
    inst = emu.create_installation(app.id, "octo", ["octo/a"])
    emu.change_installation(inst, add=["octo/b"], remove=["octo/a"])
    emu.delete_installation(inst)
    got = receiver.wait_for(lambda rs: len(rs) >= 5)
    # Deliveries come from several threads, so in any order, as GitHub's may.
    seen = sorted((r.event, (r.json or {}).get("action") or "") for r in got)
    assert seen == sorted(
        [
            ("ping", ""),
            ("installation", "created"),
            ("installation_repositories", "added"),
            ("installation_repositories", "removed"),
            ("installation", "deleted"),
        ]
    )
    ping = next(r for r in got if r.event == "ping")
    assert ping.json["hook"]["app_id"] == app.id
    for r in got:
        assert r.headers["x-github-hook-id"] == str(app.hook_id)
        validate_webhook(r.event, r.json)


def test_repository_hook_gets_ping_and_push(installed: Installed) -> None:
    with WebhookReceiver() as repo_rx:
        hook = installed.client.post(
            "/repos/octo/hello/hooks",
            json={"config": {"url": repo_rx.url, "secret": "r", "content_type": "json"}, "events": ["push"]},
        )
        assert hook.status_code == 201
        head = installed.client.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
        installed.client.post("/repos/octo/hello/git/refs", json={"ref": "refs/heads/x", "sha": head})
        got = repo_rx.wait_for(lambda rs: sorted(r.event for r in rs) == ["ping", "push"])
        push = next(r for r in got if r.event == "push")
        assert push.headers["x-github-hook-installation-target-type"] == "repository"
        assert "installation" not in push.json  # only App deliveries name the installation


def _one_push(installed: Installed, branch: str) -> None:
    head = installed.client.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"]
    installed.client.post("/repos/octo/hello/git/refs", json={"ref": f"refs/heads/{branch}", "sha": head})


def test_modes_drop_duplicate_reorder(installed: Installed) -> None:
    emu, rx = installed.emu, installed.receiver
    rx.wait_for(lambda rs: len(rs) >= 2)  # ping + installation
    start = len(rx.received)
    emu.set_webhook_mode("drop")
    _one_push(installed, "dropped")
    dropped = emu.wait_for_deliveries(lambda ds: any(d["status"] == "dropped by emulator" for d in ds))
    assert len(rx.received) == start

    emu.set_webhook_mode("duplicate")
    before = len(rx.received)
    installed.client.post(
        "/repos/octo/hello/git/refs",
        json={
            "ref": "refs/tags/v1",
            "sha": installed.client.get("/repos/octo/hello/git/ref/heads/main").json()["object"]["sha"],
        },
    )
    got = rx.wait_for(lambda rs: len([r for r in rs[before:] if r.event == "push"]) >= 2)
    pushes = [r for r in got[before:] if r.event == "push"]
    assert pushes[0].headers["x-github-delivery"] == pushes[1].headers["x-github-delivery"]

    emu.set_webhook_mode("reorder", delay_ms=2000)
    _one_push(installed, "r1")  # fires push then create

    # Only r1's deliveries: a duplicate of the tag's create above may still be on its way (it is, on a
    # loaded machine), and it says nothing about the order of these two.
    def r1(received: list[ReceivedWebhook]) -> list[ReceivedWebhook]:
        return [r for r in received if (r.json or {}).get("ref") in ("r1", "refs/heads/r1")]

    got = rx.wait_for(lambda rs: len(r1(rs)) >= 2)
    assert [r.event for r in r1(got)] == ["create", "push"]

    # Redelivery of the dropped push keeps its GUID and is marked as a redelivery.
    emu.set_webhook_mode("deliver")
    dropped_push = next(d for d in dropped if d["status"] == "dropped by emulator" and d["event"] == "push")
    with api(emu) as c:
        c.headers["Authorization"] = f"Bearer {emu.app_jwt(installed.app)}"
        listed = c.get("/app/hook/deliveries").json()
        assert dropped_push["id"] in [d["id"] for d in listed]
        assert c.post(f"/app/hook/deliveries/{dropped_push['id']}/attempts").status_code == 202
        got = rx.wait_for(lambda rs: any(r.headers["x-github-delivery"] == dropped_push["guid"] for r in rs))
        detail = c.get(f"/app/hook/deliveries/{dropped_push['id']}").json()
        assert detail["request"]["payload"]["ref"] == "refs/heads/dropped"
    redelivered = [d for d in emu.wait_for_deliveries() if d["guid"] == dropped_push["guid"]]
    assert [d["redelivery"] for d in redelivered] == [False, True]
    assert redelivered[1]["status_code"] == 200


def test_delay_mode_and_failed_receiver(installed: Installed) -> None:
    emu = installed.emu
    emu.set_webhook_mode("delay", delay_ms=300)
    installed.receiver.status = 500
    _one_push(installed, "late")
    ds = emu.wait_for_deliveries(lambda ds: any(d["event"] == "push" for d in ds))
    push = next(d for d in ds if d["event"] == "push")
    assert push["status_code"] == 500 and push["status"] == "Invalid HTTP Response: 500"
