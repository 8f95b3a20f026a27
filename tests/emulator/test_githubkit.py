"""Acceptance: githubkit with App installation auth reads a repo, writes blob/tree/commit, moves a ref."""

from __future__ import annotations

import pytest
from githubkit import AppInstallationAuthStrategy, GitHub
from githubkit.exception import RequestFailed

from github_emulator.testing import EmulatorHandle


def test_githubkit_app_installation_round_trip(emu: EmulatorHandle) -> None:
    app = emu.create_app("kit")
    emu.create_repo("octo", "kit", files={"README.md": "hello\n"})
    inst = emu.create_installation(app.id, "octo", ["octo/kit"])
    gh = GitHub(AppInstallationAuthStrategy(str(app.id), app.private_key, inst), base_url=emu.url)

    repo = gh.rest.repos.get("octo", "kit").parsed_data
    assert repo.full_name == "octo/kit" and repo.default_branch == "main"
    head = gh.rest.git.get_ref("octo", "kit", "heads/main").parsed_data
    base_commit = gh.rest.git.get_commit("octo", "kit", head.object_.sha).parsed_data

    blob = gh.rest.git.create_blob("octo", "kit", content="new file\n", encoding="utf-8").parsed_data
    tree = gh.rest.git.create_tree(
        "octo",
        "kit",
        base_tree=base_commit.tree.sha,
        tree=[{"path": "docs/new.md", "mode": "100644", "type": "blob", "sha": blob.sha}],
    ).parsed_data
    assert {e.path for e in tree.tree} == {"README.md", "docs"}
    commit = gh.rest.git.create_commit(
        "octo", "kit", message="Add docs", tree=tree.sha, parents=[head.object_.sha]
    ).parsed_data
    assert commit.parents[0].sha == head.object_.sha
    moved = gh.rest.git.update_ref("octo", "kit", "heads/main", sha=commit.sha, force=False).parsed_data
    assert moved.object_.sha == commit.sha

    # A non-fast-forward without force is refused with GitHub's 422.
    with pytest.raises(RequestFailed) as failed:
        gh.rest.git.update_ref("octo", "kit", "heads/main", sha=head.object_.sha, force=False)
    assert failed.value.response.status_code == 422
    assert failed.value.response.json()["message"] == "Update is not a fast forward"

    contents = gh.rest.repos.get_content("octo", "kit", "docs/new.md").parsed_data
    assert contents.sha == blob.sha  # type: ignore[union-attr]
    installation = gh.rest.apps.get_repo_installation  # needs the App JWT, checked elsewhere
    assert callable(installation)
    branch = gh.rest.repos.get_branch("octo", "kit", "main").parsed_data
    assert branch.commit.sha == commit.sha and branch.protected is False
