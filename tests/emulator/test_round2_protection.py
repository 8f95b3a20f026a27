"""Issue 8, item 6: branch protection refuses pushes with GitHub's text (every reason, "(protected
branch hook declined)"), REST updates with GitHub's messages, enforces ``restrictions`` and
``enforce_admins``, and its GET object carries the fields GitHub sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from round2_support import (  # noqa: F401
    commit_files,
    git,
    head_of,
    module_emulator,
    module_receiver,
    shared_emu,
    shared_receiver,
)

from conftest import Installed, api
from github_emulator import protection

REPO = "octo/hello"
R = f"/repos/{REPO}"
GH006 = "GH006: Protected branch update failed for refs/heads/main."


def _protect(gh: httpx.Client, **rules: Any) -> None:
    body: dict[str, Any] = {
        "required_status_checks": None,
        "enforce_admins": None,
        "required_pull_request_reviews": None,
        "restrictions": None,
    }
    body.update(rules)
    answer = gh.put(f"{R}/branches/main/protection", json=body)
    assert answer.status_code == 200, answer.text


def _clone(
    installed: Installed, tmp_path: Path, token: str | None = None, user: str = "x-access-token"
) -> Path:
    work = tmp_path / f"work-{user}"
    url = installed.emu.git_url("octo", "hello", token or installed.token, user=user)
    git(tmp_path, "clone", "-q", url, str(work))
    return work


def _push(work: Path, *args: str) -> tuple[int, str]:
    done = git(work, "push", "origin", *args, check=False)
    return done.returncode, done.stderr


def _new_commit(work: Path, name: str) -> None:
    (work / name).write_text(f"{name}\n")
    git(work, "add", name)
    git(work, "commit", "-q", "-m", name)


def test_a_refused_push_lists_every_reason_and_says_protected_branch_hook_declined(
    installed: Installed, tmp_path: Path
) -> None:
    gh = installed.client
    _protect(
        gh,
        required_status_checks={"strict": False, "contexts": ["ci"]},
        required_pull_request_reviews={"required_approving_review_count": 0},
    )
    work = _clone(installed, tmp_path)
    _new_commit(work, "a.txt")
    code, err = _push(work, "main")
    assert code != 0
    assert f"remote: error: {GH006}" in err
    assert (
        'remote: error: Changes must be made through a pull request. Required status check "ci" is expected.'
        in err
    )
    assert "main -> main (protected branch hook declined)" in err
    # A force-push adds its own reason after the others.
    git(work, "reset", "-q", "--hard", "HEAD~1")
    git(work, "commit", "-q", "--amend", "-m", "rewritten")
    code, err = _push(work, "--force", "main")
    assert code != 0
    assert (
        'remote: error: Changes must be made through a pull request. Required status check "ci" is expected. '
        "Cannot force-push to this branch" in err
    )


def test_reviews_and_several_checks_read_as_on_github(installed: Installed, tmp_path: Path) -> None:
    gh = installed.client
    _protect(
        gh,
        required_status_checks={"strict": True, "contexts": ["build", "test"]},
        required_pull_request_reviews={"required_approving_review_count": 2},
    )
    work = _clone(installed, tmp_path)
    _new_commit(work, "b.txt")
    code, err = _push(work, "main")
    assert code != 0
    assert (
        "remote: error: Changes must be made through a pull request. "
        "2 of 2 required status checks are expected." in err
    )
    # Other branches of the same push are not protected and go through.
    code, err = _push(work, "main:refs/heads/free")
    assert code == 0, err


def test_rest_updates_get_githubs_messages(installed: Installed) -> None:
    gh = installed.client
    main = head_of(gh, REPO)
    side = commit_files(gh, REPO, main, {"side.txt": "s\n"}, "side\n")
    ahead = commit_files(gh, REPO, main, {"ahead.txt": "a\n"}, "ahead\n")
    _protect(gh)
    assert gh.patch(f"{R}/git/refs/heads/main", json={"sha": ahead}).status_code == 200
    forced = gh.patch(f"{R}/git/refs/heads/main", json={"sha": side, "force": True})
    assert (forced.status_code, forced.json()["message"]) == (
        422,
        "Cannot force-push to this protected branch",
    )
    deleted = gh.delete(f"{R}/git/refs/heads/main")
    assert deleted.status_code == 422
    _protect(
        gh,
        required_status_checks={"strict": False, "contexts": ["ci"]},
        required_pull_request_reviews={"required_approving_review_count": 1},
    )
    child = commit_files(gh, REPO, ahead, {"c.txt": "c\n"}, "child\n")
    refused = gh.patch(f"{R}/git/refs/heads/main", json={"sha": child})
    assert (refused.status_code, refused.json()["message"]) == (
        422,
        'Required status check "ci" is expected. '
        "At least 1 approving review is required by reviewers with write access.",
    )
    assert head_of(gh, REPO) == ahead


def test_enforce_admins_decides_whether_the_owner_bypasses(installed: Installed, tmp_path: Path) -> None:
    gh = installed.client
    owner = installed.emu.create_user("octo")
    _protect(gh, enforce_admins=False, required_pull_request_reviews={"required_approving_review_count": 1})
    work = _clone(installed, tmp_path, owner.token, user="octo")
    _new_commit(work, "admin.txt")
    code, err = _push(work, "main")
    assert code == 0, err  # the administrator bypasses reviews
    # ... but not the rules applied to everyone: no force-push.
    git(work, "commit", "-q", "--amend", "-m", "amended")
    code, err = _push(work, "--force", "main")
    assert code != 0 and "Cannot force-push to this branch" in err
    git(work, "fetch", "-q", "origin")
    git(work, "reset", "-q", "--hard", "origin/main")
    _protect(gh, enforce_admins=True, required_pull_request_reviews={"required_approving_review_count": 1})
    _new_commit(work, "admin2.txt")
    code, err = _push(work, "main")
    assert code != 0 and "Changes must be made through a pull request." in err
    with api(installed.emu, owner.token) as person:
        child = commit_files(person, REPO, head_of(gh, REPO), {"x.txt": "x\n"}, "x\n")
        assert person.patch(f"{R}/git/refs/heads/main", json={"sha": child}).status_code == 422


def test_restrictions_limit_who_may_push(installed: Installed, tmp_path: Path) -> None:
    gh = installed.client
    mona = installed.emu.create_user("mona")
    _protect(gh, restrictions={"users": ["mona"], "teams": [], "apps": []})
    app_work = _clone(installed, tmp_path)
    _new_commit(app_work, "app.txt")
    code, err = _push(app_work, "main")
    assert code != 0 and "You're not authorized to push to this branch." in err
    child = commit_files(gh, REPO, head_of(gh, REPO), {"rest.txt": "r\n"}, "rest\n")
    refused = gh.patch(f"{R}/git/refs/heads/main", json={"sha": child})
    assert refused.status_code == 422 and "not authorized" in refused.json()["message"]
    mona_work = _clone(installed, tmp_path, mona.token, user="mona")
    _new_commit(mona_work, "mona.txt")
    code, err = _push(mona_work, "main")
    assert code == 0, err
    # Listing the App lets its installation push.
    _protect(gh, restrictions={"users": [], "teams": [], "apps": [installed.app.slug]})
    assert (
        gh.patch(f"{R}/git/refs/heads/main", json={"sha": child, "force": True}).status_code == 422
    )  # forced
    git(app_work, "pull", "-q", "--rebase", "origin", "main")
    code, err = _push(app_work, "main")
    assert code == 0, err


def test_the_protection_object_carries_every_field(installed: Installed) -> None:
    gh = installed.client
    installed.emu.create_user("mona")
    _protect(
        gh,
        enforce_admins=True,
        required_status_checks={"strict": True, "contexts": ["ci"]},
        required_pull_request_reviews={
            "required_approving_review_count": 1,
            "dismissal_restrictions": {"users": ["mona"], "teams": []},
        },
        restrictions={"users": ["mona"], "teams": [], "apps": [installed.app.slug]},
        allow_force_pushes=True,
    )
    body = gh.get(f"{R}/branches/main/protection").json()
    url = f"{installed.emu.url}{R}/branches/main/protection"
    assert body["url"] == url
    assert body["required_status_checks"]["enforcement_level"] == "everyone"
    assert body["required_status_checks"]["contexts"] == ["ci"]
    restrictions = body["restrictions"]
    assert {k: restrictions[k] for k in ("url", "users_url", "teams_url", "apps_url")} == {
        "url": f"{url}/restrictions",
        "users_url": f"{url}/restrictions/users",
        "teams_url": f"{url}/restrictions/teams",
        "apps_url": f"{url}/restrictions/apps",
    }
    assert [u["login"] for u in restrictions["users"]] == ["mona"]
    assert [a["slug"] for a in restrictions["apps"]] == [installed.app.slug]
    assert [u["login"] for u in body["required_pull_request_reviews"]["dismissal_restrictions"]["users"]] == [
        "mona"
    ]
    for key in (
        "enforce_admins",
        "required_linear_history",
        "allow_force_pushes",
        "allow_deletions",
        "block_creations",
        "required_conversation_resolution",
        "lock_branch",
        "allow_fork_syncing",
        "required_signatures",
    ):
        assert isinstance(body[key]["enabled"], bool), key
    assert body["allow_force_pushes"]["enabled"] is True


def test_only_refs_refused_by_gh006_are_renamed() -> None:
    def pkt(data: bytes) -> bytes:
        return b"%04x" % (len(data) + 4) + data

    status = (
        pkt(b"unpack ok\n")
        + pkt(b"ng refs/heads/main pre-receive hook declined\n")
        + pkt(b"ng refs/heads/big pre-receive hook declined\n")
        + b"0000"
    )
    text = b"error: GH006: Protected branch update failed for refs/heads/main.\nerror: GH001: Large files.\n"
    body = pkt(b"\x02" + text) + pkt(b"\x01" + status) + b"0000"
    out = protection.declined_by_protection(body)
    assert b"ng refs/heads/main protected branch hook declined\n" in out
    assert b"ng refs/heads/big pre-receive hook declined\n" in out  # GH001 keeps git's text
    pkts, rest = protection._read_pkts(out)
    assert rest == b"" and pkts[-1] is None  # still well-formed pkt-lines
    # Without GH006 the stream is left alone.
    assert protection.declined_by_protection(status) == status


ADMIN = protection.Pusher(login="octo", admin=True)
PERSON = protection.Pusher(login="mona")
APP = protection.Pusher(app_slug="hello-app")
PR_RULE: dict[str, Any] = {"required_pull_request_reviews": {"required_approving_review_count": 1}}
CHECKS = {"required_status_checks": {"contexts": ["ci"]}}


@pytest.mark.parametrize(
    ("rules", "deleting", "forced", "pusher", "rest", "expected"),
    [
        pytest.param({}, False, False, PERSON, False, [], id="no-rules"),
        pytest.param({}, False, True, PERSON, False, [protection.FORCE_PUSH_GIT], id="force-git"),
        pytest.param({}, False, True, PERSON, True, [protection.FORCE_PUSH_REST], id="force-rest"),
        pytest.param({"allow_force_pushes": True}, False, True, PERSON, False, [], id="force-allowed"),
        pytest.param({}, True, False, PERSON, False, [protection.DELETE], id="delete"),
        pytest.param(
            {"allow_deletions": True, **PR_RULE}, True, False, PERSON, False, [], id="delete-allowed"
        ),
        pytest.param(
            {**PR_RULE, **CHECKS},
            False,
            False,
            PERSON,
            False,
            [protection.THROUGH_PR, 'Required status check "ci" is expected.'],
            id="pr-and-check-git",
        ),
        pytest.param(
            {**PR_RULE, **CHECKS},
            False,
            False,
            PERSON,
            True,
            [
                'Required status check "ci" is expected.',
                "At least 1 approving review is required by reviewers with write access.",
            ],
            id="rest-counts",
        ),
        pytest.param({**PR_RULE, **CHECKS}, False, False, ADMIN, False, [], id="admin-bypasses"),
        pytest.param(
            {**PR_RULE, "enforce_admins": True},
            False,
            False,
            ADMIN,
            False,
            [protection.THROUGH_PR],
            id="enforce-admins",
        ),
        pytest.param(
            {**PR_RULE}, False, True, ADMIN, False, [protection.FORCE_PUSH_GIT], id="admin-no-force"
        ),
        pytest.param(
            {"restrictions": {"users": ["mona"]}},
            False,
            False,
            APP,
            False,
            [protection.NOT_AUTHORIZED],
            id="restricted-app",
        ),
        pytest.param(
            {"restrictions": {"apps": ["hello-app"]}}, False, False, APP, False, [], id="listed-app"
        ),
        pytest.param(
            {"restrictions": {"users": []}}, False, False, ADMIN, False, [], id="admin-not-restricted"
        ),
        pytest.param(
            {"required_status_checks": {"contexts": ["a", "b", "c"]}},
            False,
            False,
            PERSON,
            False,
            ["3 of 3 required status checks are expected."],
            id="several-checks",
        ),
        pytest.param(
            {"lock_branch": {"enabled": True}},
            False,
            False,
            PERSON,
            False,
            [protection.LOCKED],
            id="locked-get-shape",
        ),
    ],
)
def test_refusals_table(
    rules: dict[str, Any],
    deleting: bool,
    forced: bool,
    pusher: protection.Pusher,
    rest: bool,
    expected: list[str],
) -> None:
    assert protection.refusals(rules, deleting=deleting, forced=forced, pusher=pusher, rest=rest) == expected


def test_pusher_round_trips_through_the_hook_environment() -> None:
    pusher = protection.Pusher(login="mona", app_slug=None, admin=True)
    assert protection.Pusher.from_env(pusher.to_env()) == pusher
    assert protection.Pusher.from_env(None) == protection.Pusher()
