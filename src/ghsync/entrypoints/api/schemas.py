"""Request and response bodies of the REST API (their shapes are a contract with the platform)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, object]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=255)


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    content_base64: str
    mode: Literal["100644", "100755", "120000"] = "100644"


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1)
    files: list[FileIn] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list)
    replace_all: bool = False
    author: AuthorIn | None = None


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str | None = None
    author: AuthorIn | None = None


class VersionOut(BaseModel):
    id: str
    number: int
    commit_sha: str
    tree_sha: str
    message: str
    source: Literal["local", "github"]
    author: AuthorIn | None
    created_at: datetime


class VersionCreated(VersionOut):
    warnings: list[str] = Field(default_factory=list)


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class SnapshotOut(BaseModel):
    created: bool
    version: VersionOut | None


class FileOut(BaseModel):
    path: str
    mode: str
    size: int
    sha: str


class FileList(BaseModel):
    version_id: str
    items: list[FileOut]


class FileDiffOut(BaseModel):
    status: Literal["added", "modified", "deleted", "renamed"]
    path: str
    old_path: str | None
    old_sha: str | None
    new_sha: str | None
    old_mode: str | None
    new_mode: str | None
    binary: bool
    insertions: int
    deletions: int


class DiffOut(BaseModel):
    from_version: str | None = Field(serialization_alias="from")
    to_version: str = Field(serialization_alias="to")
    files: list[FileDiffOut]
    files_changed: int
    insertions: int
    deletions: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    version: str
    jobs: dict[str, int]
