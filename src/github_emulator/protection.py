"""Branch protection: which updates it refuses and why, in GitHub's words, for git pushes and REST.

Pure policy, shared by the REST ref updates (:meth:`Emulator.check_protection`) and the
pre-receive hook of every bare repository (written by :mod:`github_emulator.gitrepo`, which
imports this module), so a push and an API call are refused for the same reasons.

Rules follow "About protected branches"
(https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches):

* Required reviews and status checks, ``lock_branch`` and push ``restrictions`` bind everyone
  except repository administrators, unless ``enforce_admins`` is on ("By default, the
  restrictions of a branch protection rule don't apply to people with admin permissions to the
  repository"; "Do not allow bypassing the above settings").
* Force pushes and deletions are refused for everyone, administrators included, unless allowed
  (GitHub's settings page files them under "Rules applied to everyone including administrators").
* ``restrictions`` (users, teams, apps) lists who may push at all.

A rejected push prints every reason on one line after ``GH006``, and git shows
``(protected branch hook declined)``, as these recordings of GitHub's answers show::

    remote: error: GH006: Protected branch update failed for refs/heads/master.
    remote: error: Changes must be made through a pull request. Required status check "Build" is expected.
     ! [remote rejected] master -> master (protected branch hook declined)

(https://github.com/supportpal/github-gh-cli/issues/47; "Changes must be made through a pull
request. Cannot force-push to this branch" in https://github.com/opensearch-project/opensearch-py/issues/670;
'Required status check "cla-check" is expected. At least 1 approving review is required by
reviewers with write access.' in https://github.com/mlcommons/inference/pull/912; "6 of 6 required
status checks are expected." in https://github.com/kubeflow/pipelines/issues/4384). REST
force-updates of a protected branch answer "Cannot force-push to this protected branch"
(recorded in https://github.com/dependabot/dependabot-core/pull/1911). The texts for deletions,
``lock_branch`` and ``restrictions`` are best guesses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = dict[str, Any]

FORCE_PUSH_GIT = "Cannot force-push to this branch"
FORCE_PUSH_REST = "Cannot force-push to this protected branch"
DELETE = "Cannot delete this protected branch"
LOCKED = "Cannot update this protected ref."
THROUGH_PR = "Changes must be made through a pull request."
NOT_AUTHORIZED = (
    "You're not authorized to push to this branch. "
    "Visit https://docs.github.com/articles/about-protected-branches/ for more information."
)
DECLINED = b"protected branch hook declined"


@dataclass(frozen=True, slots=True)
class Pusher:
    """Who updates the branch: a person (``login``) or an App acting through an installation."""

    login: str | None = None
    app_slug: str | None = None
    admin: bool = False
    teams: tuple[str, ...] = field(default_factory=tuple)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, raw: str | None) -> Pusher:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            data.get("login"), data.get("app_slug"), bool(data.get("admin")), tuple(data.get("teams") or ())
        )


def _reviews(rules: JSON) -> tuple[bool, int]:
    reviews = rules.get("required_pull_request_reviews")
    if reviews is None:
        return False, 0
    return True, int(reviews.get("required_approving_review_count", 1) or 0)


def _checks_reason(rules: JSON) -> str | None:
    checks = rules.get("required_status_checks") or {}
    contexts = list(checks.get("contexts") or []) or [c.get("context") for c in checks.get("checks") or []]
    if not contexts:
        return None
    if len(contexts) == 1:
        return f'Required status check "{contexts[0]}" is expected.'
    return f"{len(contexts)} of {len(contexts)} required status checks are expected."


def _enabled(value: Any) -> bool:
    """A rule as PUT (``true``) or as GET shows it (``{"enabled": true}``)."""
    if isinstance(value, dict):
        return bool(value.get("enabled"))
    return bool(value)


def may_push(rules: JSON, pusher: Pusher) -> bool:
    """``restrictions``: only the listed users, teams and apps may push (None: everyone)."""
    restrictions = rules.get("restrictions")
    if restrictions is None:
        return True
    users = {str(u).lower() for u in restrictions.get("users") or []}
    teams = {str(t).lower() for t in restrictions.get("teams") or []}
    apps = {str(a).lower() for a in restrictions.get("apps") or []}
    if pusher.login is not None and pusher.login.lower() in users:
        return True
    if pusher.app_slug is not None and pusher.app_slug.lower() in apps:
        return True
    return any(t.lower() in teams for t in pusher.teams)


def refusals(rules: JSON, *, deleting: bool, forced: bool, pusher: Pusher, rest: bool = False) -> list[str]:
    """Every reason protection ``rules`` refuse this update, in GitHub's order (empty: allowed)."""
    bypass = pusher.admin and not _enabled(rules.get("enforce_admins"))
    if deleting:
        # Deletions bind administrators too.
        return [] if _enabled(rules.get("allow_deletions")) else [DELETE]
    reasons: list[str] = []
    if not bypass and not may_push(rules, pusher):
        return [NOT_AUTHORIZED]
    if not bypass:
        required, count = _reviews(rules)
        checks = _checks_reason(rules)
        # A push says "Changes must be made through a pull request." whatever the review count
        # (the 2023-2024 recordings); the REST answer names the count (the form also recorded in
        # 2021 for pushes), after the status checks.
        counted = rest and required and count > 0
        if required and not counted:
            reasons.append(THROUGH_PR)
        if checks:
            reasons.append(checks)
        if counted:
            plural = "s are" if count > 1 else " is"
            reasons.append(
                f"At least {count} approving review{plural} required by reviewers with write access."
            )
    if forced and not _enabled(rules.get("allow_force_pushes")):
        reasons.append(FORCE_PUSH_REST if rest else FORCE_PUSH_GIT)
    if not bypass and _enabled(rules.get("lock_branch")):
        reasons.append(LOCKED)
    return reasons


# ---- git's report-status: "(protected branch hook declined)" ---------------------------------


def _read_pkts(data: bytes) -> tuple[list[bytes | None], bytes]:
    """pkt-lines of ``data`` (None for a flush) and what follows them unparsed."""
    out: list[bytes | None] = []
    i = 0
    while i + 4 <= len(data):
        try:
            size = int(data[i : i + 4], 16)
        except ValueError:
            break
        if size == 0:
            out.append(None)
            i += 4
            continue
        if size < 4 or i + size > len(data):
            break
        out.append(data[i + 4 : i + size])
        i += size
    return out, data[i:]


def _pkt(payload: bytes | None) -> bytes:
    return b"0000" if payload is None else b"%04x" % (len(payload) + 4) + payload


def _rewrite_status(stream: bytes, refs: set[bytes]) -> bytes:
    pkts, rest = _read_pkts(stream)
    out = []
    for p in pkts:
        if p is not None and p.startswith(b"ng "):
            ref, _, reason = p[3:].rstrip(b"\n").partition(b" ")
            if ref in refs and reason == b"pre-receive hook declined":
                p = b"ng " + ref + b" " + DECLINED + b"\n"
        out.append(_pkt(p))
    return b"".join(out) + rest


def declined_by_protection(body: bytes) -> bytes:
    """Rewrite git's ``pre-receive hook declined`` to GitHub's ``protected branch hook declined``
    for the refs the hook refused with GH006 (refs refused for other reasons, such as GH001,
    keep git's text, as on GitHub)."""
    if b"GH006" not in body:
        return body
    pkts, rest = _read_pkts(body)
    sideband = any(p is not None and p[:1] in (b"\x01", b"\x02", b"\x03") for p in pkts)
    text = (
        b"".join(p[1:] for p in pkts if p is not None and p[:1] in (b"\x02", b"\x03")) if sideband else body
    )
    marker = b"GH006: Protected branch update failed for "
    refs = set()
    for line in text.splitlines():
        at = line.find(marker)
        if at >= 0:
            refs.add(line[at + len(marker) :].rstrip(b". \r\n"))
    if not refs:
        return body
    if not sideband:
        return _rewrite_status(body, refs)
    status = _rewrite_status(b"".join(p[1:] for p in pkts if p is not None and p[:1] == b"\x01"), refs)
    out: list[bytes] = []
    placed = False
    for p in pkts:
        if p is not None and p[:1] == b"\x01":
            if not placed:
                out += [_pkt(b"\x01" + status[i : i + 65515]) for i in range(0, len(status), 65515)]
                placed = True
            continue
        out.append(_pkt(p))
    return b"".join(out) + rest
