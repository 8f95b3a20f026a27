"""Request and response bodies of the REST API (their shapes are a contract with the platform)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from ghsync.entrypoints.api.limits import (
    MAX_FILES_PER_VERSION,
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    MAX_PATH_DEPTH,
)


# The path rules of `domain/paths.py` as an ECMA-262 pattern (documented; the store enforces them, with
# `invalid_path`): segments of at most 63 characters (so at most 252 UTF-8 bytes), no control characters,
# backslashes or the code points HFS+ ignores, no `.`/`..` segment, no `.git` in any spelling.
def _path_pattern(also_excluded: str = "") -> str:
    segment = (
        r"(?!\.{1,2}(?:/|$))(?![gG][iI][tT]~1[. ]*(?:/|$))(?!\.[gG][iI][tT][. ]*(?:/|$))"
        r"[^\x00-\x1f\x7f-\x9f/\\\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff\ud800-\udfff"
        + also_excluded
        + "]{1,63}"
    )
    return rf"^{segment}(?:/{segment}){{0,{MAX_PATH_DEPTH - 1}}}$"


PATH_PATTERN = _path_pattern()
# In a URL the same, without `%` (a client that does not escape it would send another path).
URL_PATH_PATTERN = _path_pattern("%")
# What `base64.b64decode(validate=True)` accepts (documented; the route answers `invalid_base64`).
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# A commit message: something besides whitespace (it is stripped), no NUL (git cannot store it).
MESSAGE_PATTERN = r"^[^\x00]*[^\s\x00-\x20\x85][^\x00]*$"
# A project's name: stripped, then 1 to 255 characters, none a control character.
NAME_PATTERN = r"^[^\x00-\x1f]*[^\s\x00-\x20\x85][^\x00-\x1f]*$"
# The cursors this API returns: URL-safe base64 without padding.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{0,512}$"  # empty: the first page


def cursor_query() -> Any:
    """The `cursor` query parameter: a `next_cursor` this API returned."""
    # Documented, not checked by FastAPI: the service refuses any other cursor with `invalid_cursor`.
    return Query(
        json_schema_extra={"pattern": CURSOR_PATTERN},
        description="The `next_cursor` of the previous page (opaque; `invalid_cursor` for any other).",
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, object]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    # The pattern is documented; the service refuses other names with `invalid_name`.
    name: str = Field(min_length=1, max_length=255, json_schema_extra={"pattern": NAME_PATTERN})


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=255)


def path_field(**extra: Any) -> Any:
    # Documented, not checked here: the store refuses any other path with `invalid_path`, saying why.
    return Field(
        json_schema_extra={"minLength": 1, "maxLength": MAX_PATH_CHARS, "pattern": PATH_PATTERN}, **extra
    )


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    path: str = path_field()
    content_base64: str = Field(json_schema_extra={"pattern": BASE64_PATTERN})
    mode: Literal["100644", "100755", "120000"] = Field(
        default="100644", description="`120000`: a symlink; the content is its target, inside the project"
    )


RepoPath = Annotated[str, path_field()]


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=MESSAGE_PATTERN)
    files: list[FileIn] = Field(default_factory=list, max_length=MAX_FILES_PER_VERSION)
    delete: list[RepoPath] = Field(default_factory=list, max_length=MAX_FILES_PER_VERSION)
    replace_all: bool = False
    author: AuthorIn | None = None


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    message: str | None = Field(
        default=None, min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=MESSAGE_PATTERN
    )
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
