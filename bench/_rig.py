"""What bench/inbound.py and bench/outbound.py share: the emulator with an App installed on `octo/seed`,
ghsync's services over in-memory state and a local store, linked to it through that App, and `git` run
as a person would."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ghsync.adapters.github import GitHubAppClient, GitHubAppConfig
from ghsync.adapters.github.git_transport import SmartHttpGitRemote, git_base_url
from ghsync.adapters.memory_uow import MemoryUnitOfWorkFactory
from ghsync.adapters.queue.memory import InMemoryQueue
from ghsync.adapters.secrets import SecretBox
from ghsync.adapters.store.git_store import GitStore
from ghsync.domain.outbound import TransportThresholds
from ghsync.services.linking import LinkService
from ghsync.services.projects import ProjectService
from ghsync.services.reconcile import EngineSettings, ReconcileService
from github_emulator.testing import EmulatorHandle, person_git_env, run_emulator

MIB = 1024 * 1024
R = TypeVar("R", bound="Services")


def git(cwd: Path, *args: str) -> str:
    """`git *args` in `cwd` as Mona, with `cwd` as HOME so that no user's configuration is read."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=person_git_env(cwd), capture_output=True, text=True, check=True
    )
    return done.stdout


@dataclass
class Services:
    """ghsync's services, linked to the emulator (`emu`) through the App's `installation`."""

    tmp: Path
    emu: EmulatorHandle
    client: GitHubAppClient
    installation: int
    uow: MemoryUnitOfWorkFactory
    store: GitStore
    projects: ProjectService
    links: LinkService
    remote: SmartHttpGitRemote

    def engine_with(self, git_transport: TransportThresholds) -> ReconcileService:
        """The reconcile engine, with the rule choosing the git transport set to `git_transport`."""
        settings = EngineSettings(git_transport=git_transport)
        return ReconcileService(self.uow, self.store, self.client, settings, self.remote)

    def add_repo(self, name: str, files: dict[str, str]) -> None:
        """A repository `octo/<name>` with `files` on `trunk`, added to the App's installation."""
        self.emu.create_repo("octo", name, default_branch="trunk", files=files)
        self.emu.change_installation(self.installation, add=[f"octo/{name}"])


@contextmanager
def services(tmp: Path, app_slug: str, rig: type[R], **app: Any) -> Iterator[R]:
    """The emulator (its data under `tmp`) and ghsync's services on it, as a `rig` (the bench's own
    subclass of `Services`). `app` goes to the emulator's `create_app`."""
    with run_emulator(tmp / "emu") as emu:
        created = emu.create_app(app_slug, **app)
        emu.create_repo("octo", "seed", default_branch="trunk", files={"README.md": "seed\n"})
        installation = emu.create_installation(created.id, "octo", ["octo/seed"])
        config = GitHubAppConfig(
            app_id=created.id, private_key=created.private_key, api_url=emu.url, min_write_interval=0.0
        )
        with GitHubAppClient(config) as client:
            queue = InMemoryQueue()
            queue.register("reconcile", lambda args: None)
            uow = MemoryUnitOfWorkFactory(notify=queue.request_reconcile)
            store = GitStore(tmp / "projects", max_file_size=100 * MIB)
            projects = ProjectService(uow, store)
            key = "k1:" + base64.b64encode(os.urandom(32)).decode()
            links = LinkService(uow, store, projects, client, SecretBox.from_setting([key]), queue)
            remote = SmartHttpGitRemote(
                git_base_url(emu.url),
                lambda project_id: store.project_dir(project_id) / ".git",
                client.installation_token,
                client.invalidate_installation_token,
            )
            yield rig(tmp, emu, client, installation, uow, store, projects, links, remote)
