"""Unit tests for the GitHub schema validator itself: it must accept good bodies and reject bad ones."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from support.github_schemas import (
    DATA_DIR,
    SchemaMismatch,
    _translate_openapi_schema,
    find_operation,
    iter_documented,
    validate_httpx_response,
    validate_request,
    validate_response,
    validate_webhook,
)

SHA = "7638417db6d59f3c431d3e1f261cc637155684cd"
API = "https://api.github.com/repos/octo/hello"


def git_ref(ref: str = "refs/heads/feature/x") -> dict[str, Any]:
    return {
        "ref": ref,
        "node_id": "MDM6UmVmcmVmcy9oZWFkcy9mZWF0dXJlQQ==",
        "url": f"{API}/git/{ref}",
        "object": {"type": "commit", "sha": SHA, "url": f"{API}/git/commits/{SHA}"},
    }


def content_file() -> dict[str, Any]:
    return {
        "type": "file",
        "encoding": "base64",
        "size": 5,
        "name": "README.md",
        "path": "README.md",
        "content": "aGVsbG8=\n",
        "sha": SHA,
        "url": f"{API}/contents/README.md",
        "git_url": f"{API}/git/blobs/{SHA}",
        "html_url": "https://github.com/octo/hello/blob/main/README.md",
        "download_url": "https://raw.githubusercontent.com/octo/hello/main/README.md",
        "_links": {
            "git": f"{API}/git/blobs/{SHA}",
            "self": f"{API}/contents/README.md",
            "html": "https://github.com/octo/hello/blob/main/README.md",
        },
    }


def ping_payload() -> dict[str, Any]:
    return {
        "zen": "Design for failure.",
        "hook_id": 1,
        "hook": {
            "type": "App",
            "id": 1,
            "name": "web",
            "active": True,
            "events": ["push"],
            "config": {
                "content_type": "json",
                "insecure_ssl": "0",
                "url": "http://127.0.0.1:9/hook",
            },
            "updated_at": "2024-01-01T00:00:00Z",
            "created_at": "2024-01-01T00:00:00Z",
            "app_id": 1,
            "deliveries_url": "https://api.github.com/app/hook/deliveries",
        },
    }


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/repos/o/r", "repos/get"),
        ("GET", "/api/v3/repos/o/r", "repos/get"),
        ("GET", "/repos/o/r/git/ref/heads/feature/x", "git/get-ref"),
        ("GET", "/repos/o/r/git/ref/heads%2Ffeature%2Fx", "git/get-ref"),
        ("PATCH", "/api/v3/repos/o/r/git/refs/heads/feature/x", "git/update-ref"),
        ("DELETE", "/repos/o/r/git/refs/tags/v1.0", "git/delete-ref"),
        ("POST", "/repos/o/r/git/refs", "git/create-ref"),
        ("GET", "/repos/o/r/git/matching-refs/heads/feat", "git/list-matching-refs"),
        ("GET", "/repos/o/r/branches/feature/x", "repos/get-branch"),
        ("PUT", "/repos/o/r/branches/feature/x/protection", "repos/update-branch-protection"),
        ("GET", "/repos/o/r/compare/main...feature/x", "repos/compare-commits"),
        ("GET", "/repos/o/r/contents/docs/a.md?ref=main", "repos/get-content"),
        ("GET", "/repos/o/r/git/trees/main?recursive=1", "git/get-tree"),
        ("PUT", "/repos/o/r/pulls/7/merge", "pulls/merge"),
        ("POST", "/app/installations/3/access_tokens", "apps/create-installation-access-token"),
        ("GET", "http://127.0.0.1:8000/api/v3/repos/o/r/installation", "apps/get-repo-installation"),
        ("GET", "/", "meta/root"),
        ("GET", "/repositories/42", "repos/get"),
        ("PATCH", "/api/v3/repositories/42/git/refs/heads/x", "git/update-ref"),
    ],
)
def test_find_operation(method: str, path: str, operation_id: str) -> None:
    assert find_operation(method, path).operation_id == operation_id


def test_unknown_path_and_wrong_method_are_reported() -> None:
    with pytest.raises(SchemaMismatch, match="no operation"):
        find_operation("GET", "/repos/o/r/issues")
    with pytest.raises(SchemaMismatch, match="documents no POST"):
        find_operation("POST", "/repos/o/r")


# ---------------------------------------------------------------- responses


def test_good_git_ref_passes_and_reports_what_it_checked() -> None:
    checked = validate_response("GET", "/repos/o/r/git/ref/heads/feature/x", 200, git_ref())
    assert checked.operation_id == "git/get-ref"
    assert checked.schema.endswith("/responses/200/content/application~1json/schema")


def test_bad_git_ref_fails_with_the_json_path() -> None:
    body = git_ref()
    body["object"]["sha"] = "abc"  # minLength 40
    del body["node_id"]
    with pytest.raises(SchemaMismatch) as info:
        validate_response("GET", "/repos/o/r/git/ref/heads/feature/x", 200, body)
    text = str(info.value)
    assert "git/get-ref" in text
    assert "'node_id' is a required property" in text
    assert "$.object.sha" in text


def test_raw_bytes_bodies_are_parsed() -> None:
    raw = json.dumps(git_ref()).encode()
    validate_response("POST", "/repos/o/r/git/refs", 201, raw)
    with pytest.raises(SchemaMismatch, match="not JSON"):
        validate_response("POST", "/repos/o/r/git/refs", 201, b"<html>")


def test_formats_are_checked() -> None:
    body = git_ref()
    body["url"] = "not a uri"
    with pytest.raises(SchemaMismatch, match="uri"):
        validate_response("GET", "/repos/o/r/git/ref/heads/main", 200, body)


def test_no_body_statuses() -> None:
    validate_response("DELETE", "/repos/o/r/git/refs/heads/x", 204, b"")
    validate_response("GET", "/repos/o/r", 304, None)  # undocumented 304: still no body
    with pytest.raises(SchemaMismatch, match="documents no body"):
        validate_response("DELETE", "/repos/o/r/git/refs/heads/x", 204, {"message": "gone"})
    with pytest.raises(SchemaMismatch, match="expected a JSON body"):
        validate_response("GET", "/repos/o/r/git/ref/heads/x", 200, b"")


def test_documented_and_generic_errors() -> None:
    validate_response("GET", "/repos/o/r/git/ref/heads/x", 404, {"message": "Not Found"})
    body = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    checked = validate_response("GET", "/repos/o/r", 401, body)
    assert checked.schema == "/components/schemas/basic-error"
    with pytest.raises(SchemaMismatch, match=r'\$.message: 404 fails type="string"'):
        validate_response("GET", "/repos/o/r", 404, {"message": 404})
    # 422 on update-ref is GitHub's validation-error: message and documentation_url required.
    with pytest.raises(SchemaMismatch, match="'documentation_url' is a required property"):
        validate_response(
            "PATCH", "/repos/o/r/git/refs/heads/x", 422, {"message": "Update is not a fast forward"}
        )


def test_error_documented_without_content_allows_the_generic_error_body() -> None:
    validate_response("GET", "/repos/o/r/pulls/1/merge", 404, b"")
    validate_response("GET", "/repos/o/r/pulls/1/merge", 404, {"message": "Not Found"})
    validate_response("DELETE", "/repos/o/r/git/refs/heads/main", 422, b"")
    with pytest.raises(SchemaMismatch):
        validate_response("GET", "/repos/o/r/pulls/1/merge", 404, {"message": 1})


def test_undocumented_success_status_fails() -> None:
    with pytest.raises(SchemaMismatch, match="status 200 is not documented"):
        validate_response("POST", "/repos/o/r/git/refs", 200, git_ref())


def test_discriminator_picks_the_branch() -> None:
    # content-file and content-symlink overlap; plain oneOf would reject a file as ambiguous.
    validate_response("GET", "/repos/o/r/contents/README.md", 200, content_file())
    bad = content_file()
    del bad["encoding"]
    with pytest.raises(SchemaMismatch):
        validate_response("GET", "/repos/o/r/contents/README.md", 200, bad)


def test_httpx_response() -> None:
    request = httpx.Request("GET", "http://emulator/api/v3/repos/o/r/git/ref/heads%2Ffeature%2Fx")
    response = httpx.Response(200, json=git_ref(), request=request)
    assert validate_httpx_response(response).operation_id == "git/get-ref"
    bad = httpx.Response(200, json={"ref": 1}, request=request)
    with pytest.raises(SchemaMismatch):
        validate_httpx_response(bad)


def test_request_bodies() -> None:
    validate_request("POST", "/repos/o/r/git/refs", {"ref": "refs/heads/x", "sha": SHA})
    with pytest.raises(SchemaMismatch, match="'sha' is a required property"):
        validate_request("POST", "/repos/o/r/git/refs", {"ref": "refs/heads/x"})


# ---------------------------------------------------------------- OpenAPI 3.0 translation


def test_nullable_translation() -> None:
    assert _translate_openapi_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert _translate_openapi_schema({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert _translate_openapi_schema({"description": "d", "allOf": [{"$ref": "#/x"}], "nullable": True}) == {
        "description": "d",
        "anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}],
    }
    # a property *named* "nullable" is not the keyword
    schema = {"type": "object", "properties": {"nullable": {"type": "boolean"}}}
    assert _translate_openapi_schema(schema) == schema


# ---------------------------------------------------------------- webhooks


def test_good_ping_passes() -> None:
    assert validate_webhook("ping", ping_payload()) == "ping$event"
    assert validate_webhook("ping", json.dumps(ping_payload()).encode()) == "ping$event"


def test_bad_ping_fails() -> None:
    payload = ping_payload()
    payload["hook"]["config"]["insecure_ssl"] = 0  # GitHub sends the string "0"
    payload["hook"]["surprise"] = True  # additionalProperties: false
    with pytest.raises(SchemaMismatch) as info:
        validate_webhook("ping", payload)
    assert "$.hook.config.insecure_ssl" in str(info.value)
    assert "surprise" in str(info.value)


def test_webhook_action_selection() -> None:
    with pytest.raises(SchemaMismatch, match="no 'action'"):
        validate_webhook("pull_request", {"number": 1})
    with pytest.raises(SchemaMismatch, match=r"pull_request\$opened"):
        validate_webhook("pull_request", {"action": "opened"})
    with pytest.raises(SchemaMismatch, match="no schema"):
        validate_webhook("pull_request", {"action": "teleported"})


# ---------------------------------------------------------------- data files


def test_trimmed_files_match_sources_manifest() -> None:
    sources = json.loads((DATA_DIR / "sources.json").read_text())
    assert sorted(sources["operations"]) == list(iter_documented("operations"))
    assert sorted(sources["webhooks"]) == list(iter_documented("webhooks"))
    assert (DATA_DIR / "LICENSE-octokit.md").read_text().count("Permission is hereby granted") == 3


def test_errata_are_applied() -> None:
    # App hooks carry no url/ping_url (see ERRATA); a repository hook's ping still validates.
    payload = ping_payload()
    assert "url" not in payload["hook"]
    validate_webhook("ping", payload)
    account = {"login": "octo", "id": 1, "type": "User"}
    with pytest.raises(SchemaMismatch, match="account"):
        # still held to simple-user (missing fields), not to simple-user AND enterprise
        validate_response("GET", "/app/installations", 200, [{"account": account}])
