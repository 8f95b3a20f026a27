"""The REST API end to end in-process: every endpoint's success and error paths."""

from __future__ import annotations

import base64
import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghsync.adapters.db.models import VersionRow
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.entrypoints.api.app import create_app

TOKEN = "test-token"


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.fixture
def container(tmp_path: Path, database_url: str) -> Iterator[Container]:
    from ghsync.adapters.db import migrate
    from ghsync.adapters.db.engine import make_engine

    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = load_settings(
        {},
        ghsync_data_dir=tmp_path / "data",
        database_url=database_url,
        ghsync_api_tokens=[TOKEN],
        github_sync_max_file_size=1024 * 1024,
        github_sync_warn_file_size=512 * 1024,
    )
    container = build_container(settings)
    yield container
    container.close()


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def project(api: TestClient) -> dict[str, Any]:
    response = api.post("/v1/projects", json={"name": "site"})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def create_version(api: TestClient, pid: str, **body: Any) -> Any:
    body.setdefault("message", "change")
    return api.post(f"/v1/projects/{pid}/versions", json=body)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


# --- auth -------------------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_401(container: Container) -> None:
    with TestClient(create_app(container)) as anonymous:
        assert_error(anonymous.get("/v1/projects"), 401, "unauthorized")
        wrong = anonymous.get("/v1/projects", headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "unauthorized")
        basic = anonymous.get("/v1/projects", headers={"Authorization": "Basic eDp5"})
        assert_error(basic, 401, "unauthorized")
        assert anonymous.get("/healthz").status_code == 200  # health needs no token


def test_health_metrics_and_openapi(api: TestClient) -> None:
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert "ghsync_http_requests_total" in api.get("/metrics").text
    spec = api.get("/openapi.json").json()
    assert "/v1/projects/{project_id}/versions" in spec["paths"]
    assert api.get("/docs").status_code == 200


# --- projects ---------------------------------------------------------------------------------


def test_create_get_and_list_projects(api: TestClient) -> None:
    created = [api.post("/v1/projects", json={"name": f"p{i}"}).json() for i in range(3)]
    assert set(created[0]) >= {"id", "name", "created_at"}
    assert api.get(f"/v1/projects/{created[0]['id']}").json()["name"] == "p0"

    first = api.get("/v1/projects", params={"limit": 2}).json()
    assert [p["name"] for p in first["items"]] == ["p2", "p1"]
    second = api.get("/v1/projects", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [p["name"] for p in second["items"]] == ["p0"]
    assert second["next_cursor"] is None


def test_project_errors(api: TestClient) -> None:
    assert_error(api.get(f"/v1/projects/{uuid.uuid4()}"), 404, "not_found")
    assert_error(api.get("/v1/projects/not-a-uuid"), 404, "not_found")
    assert_error(api.post("/v1/projects", json={}), 422, "invalid_request")
    assert_error(api.post("/v1/projects", json={"name": ""}), 422, "invalid_request")
    assert_error(api.post("/v1/projects", json={"name": "x", "extra": 1}), 422, "invalid_request")
    assert_error(api.post("/v1/projects", json={"name": "a\x01b"}), 422, "invalid_name")
    assert_error(api.get("/v1/projects", params={"cursor": "garbage!"}), 422, "invalid_cursor")
    assert_error(api.get("/v1/projects", params={"limit": 0}), 422, "invalid_request")


# --- versions ---------------------------------------------------------------------------------


def test_create_version_and_read_files_byte_exact(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    binary = bytes(range(256)) * 8
    response = create_version(
        api,
        pid,
        message="first",
        files=[
            {"path": "README.md", "content_base64": b64("hello\n")},
            {"path": "bin/run", "content_base64": b64("#!/bin/sh\n"), "mode": "100755"},
            {"path": "img/logo.bin", "content_base64": b64(binary)},
        ],
        author={"name": "Ada", "email": "ada@example.com"},
    )
    assert response.status_code == 201, response.text
    version = response.json()
    assert set(version) >= {"id", "number", "commit_sha", "message", "created_at"}
    assert version["number"] == 1 and version["message"] == "first"
    assert len(version["commit_sha"]) == 40

    files = api.get(f"/v1/projects/{pid}/versions/{version['id']}/files").json()["items"]
    by_path = {f["path"]: f for f in files}
    assert set(by_path) == {"README.md", "bin/run", "img/logo.bin"}
    assert by_path["bin/run"]["mode"] == "100755"
    assert by_path["img/logo.bin"]["size"] == len(binary)
    assert len(by_path["README.md"]["sha"]) == 40

    raw = api.get(f"/v1/projects/{pid}/versions/latest/files/img/logo.bin")
    assert raw.status_code == 200 and raw.content == binary
    assert api.get(f"/v1/projects/{pid}/versions/{version['id']}/files/README.md").content == b"hello\n"


def test_partial_updates_deletes_and_replace_all(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    create_version(
        api, pid, files=[{"path": p, "content_base64": b64(p)} for p in ("a.txt", "b.txt", "c.txt")]
    )
    second = create_version(
        api, pid, files=[{"path": "a.txt", "content_base64": b64("A")}], delete=["b.txt"]
    ).json()
    paths = {f["path"] for f in api.get(f"/v1/projects/{pid}/versions/latest/files").json()["items"]}
    assert paths == {"a.txt", "c.txt"}  # files not listed stay as they are
    assert second["number"] == 2

    create_version(api, pid, files=[{"path": "only.txt", "content_base64": b64("x")}], replace_all=True)
    paths = {f["path"] for f in api.get(f"/v1/projects/{pid}/versions/latest/files").json()["items"]}
    assert paths == {"only.txt"}


def test_list_versions_newest_first_with_pagination(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    for i in range(3):
        create_version(api, pid, message=f"v{i + 1}", files=[{"path": "f", "content_base64": b64(str(i))}])
    page = api.get(f"/v1/projects/{pid}/versions", params={"limit": 2}).json()
    assert [v["number"] for v in page["items"]] == [3, 2]
    assert all(v["source"] == "local" for v in page["items"])
    assert set(page["items"][0]) >= {"id", "number", "commit_sha", "message", "source", "created_at"}
    rest = api.get(f"/v1/projects/{pid}/versions", params={"cursor": page["next_cursor"]}).json()
    assert [v["number"] for v in rest["items"]] == [1] and rest["next_cursor"] is None
    latest = api.get(f"/v1/projects/{pid}/versions/latest").json()
    assert latest["number"] == 3


def test_tar_upload_creates_a_version(api: TestClient, project: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data, mode in (("index.html", b"<h1>hi</h1>", 0o644), ("run.sh", b"#!/bin/sh\n", 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("home.html")
        link.type, link.linkname = tarfile.SYMTYPE, "index.html"
        archive.addfile(link)
    response = api.post(
        f"/v1/projects/{project['id']}/versions",
        params={"message": "from tar"},
        content=buffer.getvalue(),
        headers={"Content-Type": "application/gzip"},
    )
    assert response.status_code == 201, response.text
    files = {
        f["path"]: f for f in api.get(f"/v1/projects/{project['id']}/versions/latest/files").json()["items"]
    }
    assert files["run.sh"]["mode"] == "100755"
    assert files["home.html"]["mode"] == "120000"
    assert files["index.html"]["mode"] == "100644"


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "/etc/passwd", "a/../../b", ".git/config", "sub/.git/hooks/x", "a\x00b", "a\\b", ""],
)
def test_unsafe_paths_are_refused_and_change_nothing(
    api: TestClient, project: dict[str, Any], container: Container, path: str
) -> None:
    pid = project["id"]
    create_version(api, pid, files=[{"path": "keep.txt", "content_base64": b64("keep")}])
    response = create_version(api, pid, files=[{"path": path, "content_base64": b64("evil")}])
    assert_error(response, 422, "invalid_path")
    versions = api.get(f"/v1/projects/{pid}/versions").json()["items"]
    assert len(versions) == 1
    assert not (container.settings.ghsync_data_dir / "escape.txt").exists()


def test_symlinks_that_escape_are_refused(api: TestClient, project: dict[str, Any]) -> None:
    response = create_version(
        api,
        project["id"],
        files=[{"path": "link", "content_base64": b64("../../../etc/passwd"), "mode": "120000"}],
    )
    assert_error(response, 422, "invalid_path")
    absolute = create_version(
        api, project["id"], files=[{"path": "link", "content_base64": b64("/etc/passwd"), "mode": "120000"}]
    )
    assert_error(absolute, 422, "invalid_path")


def test_version_input_errors(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    bad_b64 = create_version(api, pid, files=[{"path": "a", "content_base64": "***"}])
    assert "a" in assert_error(bad_b64, 422, "invalid_base64")["message"]
    too_big = create_version(
        api, pid, files=[{"path": "big", "content_base64": b64(b"x" * (1024 * 1024 + 1))}]
    )
    assert_error(too_big, 413, "file_too_large")
    warned = create_version(
        api, pid, files=[{"path": "large.bin", "content_base64": b64(b"x" * (600 * 1024))}]
    )
    assert warned.status_code == 201
    assert len(warned.json()["warnings"]) == 1 and "large.bin" in warned.json()["warnings"][0]
    assert_error(create_version(api, pid, message=""), 422, "invalid_request")
    assert_error(
        create_version(api, pid, files=[{"path": "a", "content_base64": "", "mode": "777"}]),
        422,
        "invalid_request",
    )
    assert_error(create_version(api, str(uuid.uuid4()), files=[]), 404, "not_found")
    assert_error(
        api.post(f"/v1/projects/{pid}/versions", content=b"{", headers={"Content-Type": "application/json"}),
        422,
        "invalid_request",
    )
    assert_error(
        api.post(f"/v1/projects/{pid}/versions", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(
        api.post(
            f"/v1/projects/{pid}/versions",
            params={"message": "m"},
            content=b"not a tar",
            headers={"Content-Type": "application/x-tar"},
        ),
        422,
        "invalid_archive",
    )
    assert [v["message"] for v in api.get(f"/v1/projects/{pid}/versions").json()["items"]] == ["change"]


def test_read_errors(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    assert_error(api.get(f"/v1/projects/{pid}/versions/latest/files"), 404, "not_found")
    create_version(api, pid, files=[{"path": "a", "content_base64": b64("a")}])
    assert_error(api.get(f"/v1/projects/{pid}/versions/{uuid.uuid4()}/files"), 404, "not_found")
    assert_error(api.get(f"/v1/projects/{pid}/versions/nope/files"), 404, "not_found")
    assert_error(api.get(f"/v1/projects/{pid}/versions/latest/files/missing.txt"), 404, "not_found")


def test_diff_between_versions(api: TestClient, project: dict[str, Any]) -> None:
    pid = project["id"]
    body = "line\n" * 20
    v1 = create_version(
        api,
        pid,
        files=[
            {"path": "keep.txt", "content_base64": b64("one\ntwo\n")},
            {"path": "old/name.txt", "content_base64": b64(body)},
            {"path": "gone.txt", "content_base64": b64("bye\n")},
            {"path": "data.bin", "content_base64": b64(b"\x00\x01\x02")},
        ],
    ).json()
    v2 = create_version(
        api,
        pid,
        files=[
            {"path": "keep.txt", "content_base64": b64("one\n2\nthree\n")},
            {"path": "new/name.txt", "content_base64": b64(body)},
            {"path": "added.txt", "content_base64": b64("hi\n")},
            {"path": "data.bin", "content_base64": b64(b"\x00\x01\x03")},
        ],
        delete=["old/name.txt", "gone.txt"],
    ).json()
    diff = api.get(f"/v1/projects/{pid}/diff", params={"from": v1["id"], "to": v2["id"]}).json()
    assert diff["from"] == v1["id"] and diff["to"] == v2["id"]
    by_path = {f["path"]: f for f in diff["files"]}
    assert by_path["keep.txt"]["status"] == "modified"
    assert (by_path["keep.txt"]["insertions"], by_path["keep.txt"]["deletions"]) == (2, 1)
    assert by_path["new/name.txt"]["status"] == "renamed"
    assert by_path["new/name.txt"]["old_path"] == "old/name.txt"
    assert by_path["added.txt"]["status"] == "added" and by_path["added.txt"]["old_sha"] is None
    assert by_path["gone.txt"]["status"] == "deleted" and by_path["gone.txt"]["new_sha"] is None
    assert by_path["data.bin"]["binary"] is True

    since_empty = api.get(f"/v1/projects/{pid}/diff", params={"to": v1["id"]}).json()
    assert {f["status"] for f in since_empty["files"]} == {"added"}
    assert_error(api.get(f"/v1/projects/{pid}/diff", params={"from": "nope"}), 404, "not_found")


def test_snapshot_of_the_working_directory(
    api: TestClient, project: dict[str, Any], container: Container
) -> None:
    pid = project["id"]
    create_version(api, pid, files=[{"path": "page.html", "content_base64": b64("v1")}])
    unchanged = api.post(f"/v1/projects/{pid}/versions/snapshot", json={})
    assert unchanged.status_code == 200 and unchanged.json() == {"created": False, "version": None}

    workdir = container.settings.ghsync_data_dir / "projects" / pid
    (workdir / "page.html").write_text("edited by hand")
    (workdir / "new.css").write_text("body {}")
    created = api.post(f"/v1/projects/{pid}/versions/snapshot", json={"message": "hand edits"})
    assert created.status_code == 201
    assert created.json()["created"] is True and created.json()["version"]["number"] == 2
    assert api.get(f"/v1/projects/{pid}/versions/latest/files/page.html").content == b"edited by hand"


def test_every_version_is_indexed_in_the_database(
    api: TestClient, project: dict[str, Any], container: Container
) -> None:
    pid = project["id"]
    for i in range(3):
        create_version(api, pid, files=[{"path": "f", "content_base64": b64(str(i))}])
    with Session(container.engine) as session:
        count = session.scalar(
            select(func.count()).select_from(VersionRow).where(VersionRow.project_id == uuid.UUID(pid))
        )
    assert count == 3


def test_unknown_routes_answer_json_errors(api: TestClient) -> None:
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.delete("/v1/projects"), 405, "method_not_allowed")


def test_health_is_degraded_when_the_database_is_unreachable(container: Container) -> None:
    from ghsync.adapters.db.engine import make_engine

    healthy_engine = container.engine
    container.engine = make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    try:
        with TestClient(create_app(container)) as client:
            response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert response.json()["database"].startswith("unreachable")
    finally:
        container.engine.dispose()
        container.engine = healthy_engine
