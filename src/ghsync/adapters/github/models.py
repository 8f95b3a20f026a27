"""Small result types of the GitHub adapter (only the fields ghsync uses, parsed leniently)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    repository_selection: str  # "all" or "selected"
    suspended: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Installation:
        account = body.get("account") or {}
        return cls(
            id=int(body["id"]),
            account=str(account.get("login") or account.get("slug") or ""),
            permissions={str(k): str(v) for k, v in (body.get("permissions") or {}).items()},
            repository_selection=str(body.get("repository_selection") or "all"),
            suspended=body.get("suspended_at") is not None,
        )


@dataclass(frozen=True)
class Repository:
    id: int
    owner: str
    name: str
    full_name: str
    default_branch: str
    private: bool
    html_url: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Repository:
        return cls(
            id=int(body["id"]),
            owner=str((body.get("owner") or {}).get("login") or str(body["full_name"]).split("/")[0]),
            name=str(body["name"]),
            full_name=str(body["full_name"]),
            default_branch=str(body.get("default_branch") or "main"),
            private=bool(body.get("private", False)),
            html_url=str(body.get("html_url") or ""),
        )


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Branch:
        return cls(
            name=str(body["name"]),
            sha=str((body.get("commit") or {}).get("sha") or ""),
            protected=bool(body.get("protected", False)),
        )


@dataclass(frozen=True)
class RateLimitState:
    """The last `X-RateLimit-*` values seen for one installation (or the App itself)."""

    limit: int
    remaining: int
    reset_at: datetime
    used: int | None = None
    resource: str = "core"
    observed_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "used": self.used,
            "reset_at": self.reset_at.isoformat(),
            "resource": self.resource,
        }
