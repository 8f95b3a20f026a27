"""The API's contract: its OpenAPI document (valid 3.1, complete, in step with docs/api.md) and its
hardening (the 405's `Allow`, limits on every input, CORS only when configured, no stack traces)."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from ghsync.adapters.db import migrate
from ghsync.adapters.db.engine import make_engine
from ghsync.bootstrap import Container, build_container
from ghsync.config import load_settings
from ghsync.domain.paths import MAX_PATH_DEPTH
from ghsync.entrypoints.api.app import create_app
from ghsync.entrypoints.api.limits import MAX_FILES_PER_VERSION, MAX_MESSAGE_CHARS, MAX_PAGE_SIZE
from ghsync.entrypoints.api.openapi import ROUTE_ERRORS, operations

TOKEN = "contract-token"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BODY_LIMIT = 16 * 1024 * 1024


def _container(tmp_path: Path, **settings: Any) -> Container:
    database_url = f"sqlite:///{tmp_path / 'ghsync.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    return build_container(
        load_settings(
            {},
            ghsync_data_dir=tmp_path / "data",
            database_url=database_url,
            ghsync_api_tokens=[TOKEN],
            ghsync_max_request_body=BODY_LIMIT,
            **settings,
        )
    )


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    container = _container(tmp_path)
    yield container
    container.close()


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(
        create_app(container), headers={"Authorization": f"Bearer {TOKEN}"}, raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def document(api: TestClient) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


# --- the document ---------------------------------------------------------------------------------------


def test_the_document_validates_as_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any schema error, a dangling $ref included


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_resolves_and_no_schema_embeds_its_own_defs(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    refs = set(_refs(document))
    assert refs, "the document uses components"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert "$defs" not in json.dumps(document)
    body = document["paths"]["/v1/projects/{project_id}/versions"]["post"]["requestBody"]["content"]
    assert set(body) == {
        "application/json",
        "application/x-tar",
        "application/tar",
        "application/gzip",
        "application/x-gzip",
    }
    assert body["application/x-tar"]["schema"] == {"type": "string", "format": "binary"}


def test_every_route_documents_its_errors_with_the_error_schema_and_codes(document: dict[str, Any]) -> None:
    seen = set()
    for method, path, operation in operations(document):
        seen.add((method, path))
        errors = {
            status: answer
            for status, answer in operation["responses"].items()
            if int(status) >= 400 and (method, path, status) != ("GET", "/healthz", "503")  # Health's body
        }
        assert "500" in errors and "413" in errors, (method, path)
        for status, answer in errors.items():
            schema = answer["content"]["application/json"]["schema"]
            error = schema["properties"]["error"]
            assert schema["required"] == ["error"] and error["required"] == ["code", "message"]
            assert error["properties"]["code"]["enum"], (method, path, status)
        if operation.get("security"):
            assert errors["401"]["content"]["application/json"]["schema"]["properties"]["error"][
                "properties"
            ]["code"]["enum"] == ["unauthorized"]
    # Every route has its own entry, so a new route cannot go undocumented by accident.
    assert seen == set(ROUTE_ERRORS)


def test_codes_come_with_the_status_errors_py_gives_them(document: dict[str, Any]) -> None:
    link = document["paths"]["/v1/projects/{project_id}/github/link"]["post"]["responses"]

    def codes(status: str) -> set[str]:
        return set(
            link[status]["content"]["application/json"]["schema"]["properties"]["error"]["properties"][
                "code"
            ]["enum"]
        )

    assert {"app_not_installed", "missing_permission"} <= codes("403")
    assert "repository_not_found" in codes("404")
    assert "already_linked" in codes("409")
    assert {"github_rate_limited", "github_not_configured"} <= codes("503")
    assert "github_unavailable" in codes("502")


def test_the_webhook_receivers_document_githubs_headers_and_both_body_types(document: dict[str, Any]) -> None:
    for path in ("/v1/webhooks/github", "/v1/webhooks/github/{project_id}"):
        operation = document["paths"][path]["post"]
        headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        for name in ("X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"):
            assert headers[name]["required"] is True
        assert set(operation["requestBody"]["content"]) == {
            "application/json",
            "application/x-www-form-urlencoded",
        }
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "security" not in operation  # GitHub sends no bearer token


def test_the_schema_states_the_constraints_the_server_enforces(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    link = schemas["LinkRequest"]["properties"]
    assert re.fullmatch(link["owner"]["pattern"], "octo-org") and not re.fullmatch(
        link["owner"]["pattern"], "-x"
    )
    assert link["owner"]["maxLength"] == 39 and link["repo"]["maxLength"] == 100
    for name in ("site", ".github", "..."):
        assert re.fullmatch(link["repo"]["pattern"], name)
    for name in (".", "..", "a/b"):
        assert not re.fullmatch(link["repo"]["pattern"], name)
    path = schemas["FileIn"]["properties"]["path"]
    for good in ("a.txt", ".github/workflows/ci.yml", "über/naïve.md", "x.git"):
        assert re.fullmatch(path["pattern"], good), good
    for bad in ("/etc/passwd", "../x", "a//b", ".git/config", "a/.GIT/x", "git~1/x", "a\\b", "a\x00b", "a/"):
        assert not re.fullmatch(path["pattern"], bad), bad
    version = document["paths"]["/v1/projects/{project_id}/versions"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]
    assert version["files"]["maxItems"] == MAX_FILES_PER_VERSION
    assert version["message"]["maxLength"] == MAX_MESSAGE_CHARS
    resolve = schemas["ResolveIn"]["properties"]
    assert resolve["local_head"]["pattern"] == "^[0-9a-f]{40}$"
    listing = document["paths"]["/v1/projects"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, MAX_PAGE_SIZE)
    cursor = next(p for p in listing if p["name"] == "cursor")["schema"]
    assert "pattern" in json.dumps(cursor)


def _docs_table() -> dict[tuple[str, str], set[str]]:
    text = DOCS.read_text()
    section = text[text.index("### Routes and statuses") :]
    rows = re.findall(r"^\| `([A-Z]+) (\S+)` \| ([0-9, ]+) \|$", section, flags=re.MULTILINE)
    return {(method, path): {s.strip() for s in statuses.split(",")} for method, path, statuses in rows}


def test_docs_api_md_lists_the_same_routes_and_statuses_as_the_document(document: dict[str, Any]) -> None:
    in_document = {(m, p): set(op["responses"]) for m, p, op in operations(document)}
    assert _docs_table() == in_document
    # And every route the prose names exists (in its `{id}` spelling or the document's).
    prose = set(re.findall(r"`(GET|POST|PATCH|DELETE|PUT) (/[^`?\s]*)", DOCS.read_text()))
    templates = {re.sub(r"\{[^}]+\}", "{}", p) for _m, p in in_document}
    templates |= {"/openapi.json", "/docs"}  # FastAPI's own, outside the document
    for _method, path in prose:
        assert re.sub(r"\{[^}]+\}", "{}", path).rstrip("/") in templates or path.endswith("[/{projectId}]"), (
            path
        )


# --- hardening ------------------------------------------------------------------------------------------


def test_a_405_names_every_method_of_the_path_in_allow(api: TestClient) -> None:
    response = api.put("/v1/projects")
    _error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    # The most specific route names the resource: `versions/snapshot` is not `versions/{version_id}`.
    snapshot = api.put("/v1/projects/00000000-0000-0000-0000-000000000000/versions/snapshot")
    assert snapshot.status_code == 405 and snapshot.headers["Allow"] == "POST"
    files = api.delete("/v1/projects/00000000-0000-0000-0000-000000000000/versions/latest/files/a/b.txt")
    assert files.status_code == 405 and files.headers["Allow"] == "GET"


def test_a_body_over_the_limit_is_refused_on_any_route_declared_or_streamed(api: TestClient) -> None:
    big = b"x" * (BODY_LIMIT + 1)
    _error(
        api.post("/v1/projects", content=big, headers={"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams
        for _ in range(BODY_LIMIT // 4096 + 2):
            yield b"x" * 4096

    streamed = api.post(
        "/v1/projects/00000000-0000-0000-0000-000000000000/github/sync/reset", content=chunks()
    )
    _error(streamed, 413, "payload_too_large")
    assert api.get("/v1/projects").json()["items"] == []  # nothing was made


def _project(api: TestClient) -> str:
    return str(api.post("/v1/projects", json={"name": "site"}).json()["id"])


def test_files_per_version_paths_messages_and_pages_have_limits(api: TestClient) -> None:
    pid = _project(api)
    files = [{"path": f"f{i}", "content_base64": ""} for i in range(MAX_FILES_PER_VERSION + 1)]
    response = api.post(f"/v1/projects/{pid}/versions", json={"message": "m", "files": files})
    assert "files" in _error(response, 422, "invalid_request")

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for i in range(MAX_FILES_PER_VERSION + 1):
            tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    response = api.post(
        f"/v1/projects/{pid}/versions?message=m",
        content=archive.getvalue(),
        headers={"Content-Type": "application/x-tar"},
    )
    _error(response, 422, "too_many_files")

    deep = "/".join(["d"] * MAX_PATH_DEPTH) + "/f"
    response = api.post(
        f"/v1/projects/{pid}/versions", json={"message": "m", "files": [{"path": deep, "content_base64": ""}]}
    )
    assert "deep" in _error(response, 422, "invalid_path")
    long_path = "a/" + "b" * 4100
    response = api.post(
        f"/v1/projects/{pid}/versions",
        json={"message": "m", "files": [{"path": long_path, "content_base64": ""}]},
    )
    _error(response, 422, "invalid_path")

    response = api.post(
        f"/v1/projects/{pid}/versions",
        json={"message": "m" * (MAX_MESSAGE_CHARS + 1), "files": [{"path": "a", "content_base64": ""}]},
    )
    _error(response, 422, "invalid_request")
    response = api.post(
        f"/v1/projects/{pid}/versions?message={'m' * 1025}",
        content=b"",
        headers={"Content-Type": "application/x-tar"},
    )
    _error(response, 422, "invalid_request")

    for route in ("/v1/projects", f"/v1/projects/{pid}/versions", "/v1/admin/github/sync-operations"):
        _error(api.get(route, params={"limit": MAX_PAGE_SIZE + 1}), 422, "invalid_request")
        assert api.get(route, params={"limit": MAX_PAGE_SIZE}).status_code == 200
    assert api.get(f"/v1/projects/{pid}/versions").json()["items"] == []  # no refused version was made


def test_no_cors_headers_unless_origins_are_configured(api: TestClient, tmp_path: Path) -> None:
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    plain = api.get("/v1/projects", headers={"Origin": "https://app.example.com"})
    assert not [h for h in plain.headers if h.lower().startswith("access-control-")]
    refused = api.options("/v1/projects", headers=preflight)
    assert not [h for h in refused.headers if h.lower().startswith("access-control-")]

    container = _container(tmp_path / "cors", ghsync_cors_origins="https://app.example.com")
    try:
        with TestClient(create_app(container)) as client:
            allowed = client.options("/v1/projects", headers=preflight)
            assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
            other = client.options("/v1/projects", headers={**preflight, "Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        container.close()


def test_an_unexpected_error_answers_500_without_a_stack_trace(
    api: TestClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kw: Any) -> Any:
        raise RuntimeError("boom at /secret/path.py line 12")

    monkeypatch.setattr(container.projects, "list_projects", broken)
    response = api.get("/v1/projects")
    message = _error(response, 500, "internal_error")
    assert "Traceback" not in response.text and "boom" not in response.text and "line" not in message


def test_a_wrong_api_token_is_refused_and_the_right_one_accepted(api: TestClient) -> None:
    wrong = base64.b64encode(b"x").decode()
    _error(api.get("/v1/projects", headers={"Authorization": f"Bearer {wrong}"}), 401, "unauthorized")
    _error(api.get("/v1/projects", headers={"Authorization": ""}), 401, "unauthorized")
    assert api.get("/v1/projects").status_code == 200
