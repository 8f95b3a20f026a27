"""Routes for projects, their versions, files and diffs."""

from __future__ import annotations

import base64
import binascii
import io
import tarfile
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ghsync.domain.errors import InvalidInput
from ghsync.domain.limits import large_file_warnings
from ghsync.domain.link import Project
from ghsync.domain.models import Author, FileDiff, FileMode, FileWrite, VersionInfo
from ghsync.entrypoints.api.deps import container_of
from ghsync.entrypoints.api.limits import (
    MAX_FILES_PER_VERSION,
    MAX_PAGE_SIZE,
    MAX_PATH_CHARS,
    MAX_QUERY_MESSAGE_CHARS,
)
from ghsync.entrypoints.api.schemas import (
    MESSAGE_PATTERN,
    URL_PATH_PATTERN,
    AuthorIn,
    DiffOut,
    FileDiffOut,
    FileList,
    FileOut,
    ProjectCreate,
    ProjectOut,
    ProjectPage,
    SnapshotCreate,
    SnapshotOut,
    VersionCreate,
    VersionCreated,
    VersionOut,
    VersionPage,
    cursor_query,
)
from ghsync.services.projects import parse_project_id

router = APIRouter(prefix="/v1/projects", tags=["projects"])

TAR_TYPES = ("application/x-tar", "application/tar", "application/gzip", "application/x-gzip")


def project_out(project: Project) -> ProjectOut:
    return ProjectOut(id=project.id, name=project.name, created_at=project.created_at)


def version_out(version: VersionInfo) -> VersionOut:
    author = (
        AuthorIn(name=version.author.name, email=version.author.email)
        if version.author.name and version.author.email
        else None
    )
    return VersionOut(
        id=version.id,
        number=version.number,
        commit_sha=version.commit_sha,
        tree_sha=version.tree_sha,
        message=version.message,
        source=version.source,
        author=author,
        created_at=version.created_at,
    )


@router.post("", status_code=201, response_model=ProjectOut)
def create_project(body: ProjectCreate, request: Request) -> ProjectOut:
    return project_out(container_of(request).projects.create_project(body.name))


@router.get("", response_model=ProjectPage)
def list_projects(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, cursor_query()] = None,
) -> ProjectPage:
    page = container_of(request).projects.list_projects(limit=limit, cursor=cursor)
    return ProjectPage(items=[project_out(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: str, request: Request) -> ProjectOut:
    container = container_of(request)
    return project_out(container.projects.get_project(parse_project_id(project_id)))


_VERSION_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "JSON with base64 contents, or a tar (optionally gzipped) of files; a tar upload "
        "passes `message` (and `replace_all`) as query parameters.",
        "content": {
            "application/json": {"schema": VersionCreate.model_json_schema()},
            **{media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in TAR_TYPES},
        },
    }
}


@router.post(
    "/{project_id}/versions",
    status_code=201,
    response_model=VersionCreated,
    openapi_extra=_VERSION_BODY_DOC,
)
async def create_version(
    project_id: str,
    request: Request,
    message: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY_MESSAGE_CHARS,
            pattern=MESSAGE_PATTERN,
            description="The commit message of a tar upload (a JSON body carries its own, longer).",
        ),
    ] = None,
    replace_all: bool = False,
) -> VersionCreated:
    """Create a version from files: JSON with base64 contents, or a tar upload.

    `warnings` lists files over GITHUB_SYNC_WARN_FILE_SIZE (stored, but GitHub warns about them).
    """
    container = container_of(request)
    pid = parse_project_id(project_id)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    author: Author | None = None
    deletes: list[str] = []
    if content_type in TAR_TYPES:
        if not message:
            raise InvalidInput("a tar upload needs the `message` query parameter", code="invalid_message")
        writes = await run_in_threadpool(files_from_tar, raw)
    elif content_type in ("application/json", ""):
        try:
            body = VersionCreate.model_validate_json(raw)
        except ValidationError as exc:
            # The same answer as a JSON body FastAPI validates itself (the app's handler formats it).
            raise RequestValidationError(exc.errors()) from None
        message, replace_all, deletes = body.message, body.replace_all, body.delete
        writes = [_decode_file(f.path, f.content_base64, f.mode) for f in body.files]
        author = Author(body.author.name, body.author.email) if body.author else None
    else:
        raise InvalidInput(
            f"unsupported content type {content_type!r}: send application/json or application/x-tar",
            code="unsupported_media_type",
        )
    row = await run_in_threadpool(
        container.versions.create_version,
        pid,
        message=message,
        writes=writes,
        deletes=deletes,
        replace_all=replace_all,
        author=author,
    )
    warnings = large_file_warnings(writes, container.settings.github_sync_warn_file_size)
    return VersionCreated(**version_out(row).model_dump(), warnings=warnings)


def _decode_file(path: str, content_base64: str, mode: str) -> FileWrite:
    try:
        content = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{path}: content_base64 is not valid base64", code="invalid_base64") from None
    return FileWrite(path=path, content=content, mode=FileMode(mode))


def files_from_tar(raw: bytes) -> list[FileWrite]:
    """Regular files and symlinks of a tar archive; anything else (hard links, devices) is refused."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
            writes: list[FileWrite] = []
            for member in archive:
                if member.isdir():
                    continue
                if len(writes) == MAX_FILES_PER_VERSION:
                    raise InvalidInput(
                        f"the archive has more than {MAX_FILES_PER_VERSION} files", code="too_many_files"
                    )
                writes.append(_tar_member(archive, member))
            return writes
    except tarfile.TarError as exc:
        raise InvalidInput(f"not a readable tar archive: {exc}", code="invalid_archive") from None


def _tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> FileWrite:
    name = member.name.removeprefix("./")
    if member.issym():
        return FileWrite(name, member.linkname.encode(), FileMode.SYMLINK)
    if member.isfile():
        extracted = archive.extractfile(member)
        assert extracted is not None
        mode = FileMode.EXECUTABLE if member.mode & 0o111 else FileMode.REGULAR
        return FileWrite(name, extracted.read(), mode)
    raise InvalidInput(
        f"{name}: only regular files and symlinks are accepted in an archive", code="invalid_archive"
    )


@router.post("/{project_id}/versions/snapshot", response_model=SnapshotOut)
def snapshot(
    project_id: str, request: Request, response: Response, body: SnapshotCreate | None = None
) -> SnapshotOut:
    """Commit the project's working directory as it is; 201 when it changed, 200 when not."""
    container = container_of(request)
    body = body or SnapshotCreate()
    author = Author(body.author.name, body.author.email) if body.author else None
    row = container.versions.snapshot(parse_project_id(project_id), message=body.message, author=author)
    response.status_code = 201 if row else 200
    return SnapshotOut(created=row is not None, version=version_out(row) if row else None)


@router.get("/{project_id}/versions", response_model=VersionPage)
def list_versions(
    project_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, cursor_query()] = None,
) -> VersionPage:
    page = container_of(request).versions.list_versions(
        parse_project_id(project_id), limit=limit, cursor=cursor
    )
    return VersionPage(items=[version_out(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/{project_id}/versions/{version_id}", response_model=VersionOut)
def get_version(project_id: str, version_id: str, request: Request) -> VersionOut:
    """A version by id, or `latest`."""
    return version_out(container_of(request).versions.resolve(parse_project_id(project_id), version_id))


@router.get("/{project_id}/versions/{version_id}/files", response_model=FileList)
def list_files(project_id: str, version_id: str, request: Request) -> FileList:
    versions = container_of(request).versions
    pid = parse_project_id(project_id)
    version, entries = versions.list_files(pid, version_id)
    return FileList(
        version_id=str(version.id),
        items=[FileOut(path=e.path, mode=e.mode.value, size=e.size, sha=e.sha) for e in entries],
    )


@router.get(
    "/{project_id}/versions/{version_id}/files/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_file(
    project_id: str,
    version_id: str,
    path: Annotated[
        str,
        Path(json_schema_extra={"minLength": 1, "maxLength": MAX_PATH_CHARS, "pattern": URL_PATH_PATTERN}),
    ],
    request: Request,
) -> Response:
    """The raw bytes of one file (a symlink's bytes are its target)."""
    content = container_of(request).versions.read_file(parse_project_id(project_id), version_id, path)
    return Response(content=content, media_type="application/octet-stream")


@router.get("/{project_id}/diff", response_model=DiffOut, response_model_by_alias=True)
def diff(
    project_id: str,
    request: Request,
    to: str = "latest",
    from_: Annotated[str | None, Query(alias="from")] = None,
) -> DiffOut:
    """What changed between two versions (`from` omitted: since the empty project)."""
    from_version, to_version, files = container_of(request).versions.diff(
        parse_project_id(project_id), from_, to
    )
    return DiffOut(
        from_version=str(from_version.id) if from_version else None,
        to_version=str(to_version.id),
        files=[_diff_out(f) for f in files],
        files_changed=len(files),
        insertions=sum(f.insertions for f in files),
        deletions=sum(f.deletions for f in files),
    )


def _diff_out(change: FileDiff) -> FileDiffOut:
    return FileDiffOut(
        status=change.status,
        path=change.path,
        old_path=change.old_path,
        old_sha=change.old_sha,
        new_sha=change.new_sha,
        old_mode=change.old_mode.value if change.old_mode else None,
        new_mode=change.new_mode.value if change.new_mode else None,
        binary=change.binary,
        insertions=change.insertions,
        deletions=change.deletions,
    )
