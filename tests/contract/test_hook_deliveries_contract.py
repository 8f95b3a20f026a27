"""The `AppHookDeliveries` port's contract, against the real client over the emulator and against the
in-memory fake: the App webhook's attempts are listed newest first across pages, and a redelivery is a
new attempt with the same GUID and `redelivery: true`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.github.memory import InMemoryGitHub
from ghsync.domain.errors import GitHubNotFound
from ghsync.domain.redelivery import HookDelivery
from ghsync.ports.github import AppHookDeliveries
from github_emulator.testing import WebhookReceiver, run_emulator


@dataclass
class Side:
    port: AppHookDeliveries
    fail_events: Callable[[int], None]  # make `n` deliveries that the receiver refuses (500)
    heal: Callable[[], None]  # the receiver answers 2xx from now on
    settle: Callable[[], None]  # wait until every attempt was made


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


@pytest.fixture(params=["emulator", "fake"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "fake":
        with InMemoryGitHub(tmp_path / "fake") as hub:

            def fail(n: int) -> None:
                for i in range(n):
                    hub.record_hook_delivery(f"guid-{i}", "installation", status_code=500, action="created")

            def heal() -> None:
                hub.hook_receiver = lambda d: 200

            hub.hook_receiver = lambda d: 500
            yield Side(hub, fail, heal, lambda: None)
        return
    with WebhookReceiver(status=500) as receiver, run_emulator(tmp_path / "emu") as emu:
        app = emu.create_app("ghsync-sweep", webhook_url=receiver.url, webhook_secret="s3cret")
        config = GitHubAppConfig(
            app_id=app.id, private_key=app.private_key, api_url=emu.url, retry_base_delay=0.01
        )
        made = iter(range(1000))

        def fail_emu(n: int) -> None:
            for _ in range(n):  # each installation fires installation.created to the App's hook
                account = f"acct{next(made)}"
                emu.create_repo(account, "site", files={"a": "a\n"})
                emu.create_installation(app.id, account, [f"{account}/site"])

        def heal_emu() -> None:
            receiver.status = 200

        def settle_emu() -> None:
            emu.wait_for_deliveries(lambda ds: all(d["status"] != "pending" for d in ds))

        with GitHubAppClient(config) as client:
            yield Side(client, fail_emu, heal_emu, settle_emu)


def failed(items: list[HookDelivery]) -> list[HookDelivery]:
    return [d for d in items if not d.ok]


def test_failed_deliveries_are_listed_and_a_redelivery_keeps_the_guid(side: Side) -> None:
    side.fail_events(2)
    side.settle()
    listed = side.port.list_hook_deliveries()
    assert [d.id for d in listed] == sorted((d.id for d in listed), reverse=True)  # newest first
    refused = [d for d in failed(listed) if d.event == "installation"]
    assert len(refused) == 2 and all(d.status_code == 500 and not d.redelivery for d in refused)
    assert all(d.status != "OK" for d in refused)

    side.heal()
    side.port.redeliver_hook_delivery(refused[0].id)
    side.settle()
    again = [d for d in side.port.list_hook_deliveries() if d.guid == refused[0].guid]
    assert len(again) == 2
    newest = again[0]
    assert newest.redelivery and newest.ok and newest.status_code == 200 and newest.id > refused[0].id
    assert newest.event == refused[0].event and newest.action == refused[0].action


def test_since_stops_paging_and_an_unknown_delivery_is_not_found(side: Side) -> None:
    side.fail_events(1)
    side.settle()
    everything = side.port.list_hook_deliveries()
    newest = everything[0]
    recent = side.port.list_hook_deliveries(since=newest.delivered_at - timedelta(seconds=1))
    assert recent[0] == newest
    with pytest.raises(GitHubNotFound):
        side.port.redeliver_hook_delivery(999_999_999)
