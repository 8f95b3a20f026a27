"""Conformance: ``POST /graphql`` against GitHub's published GraphQL schema (issue 8, item 11).

The emulator's own schema must be a part of GitHub's (``@octokit/graphql-schema``), field by field;
every query sent here is valid on GitHub's schema, and every response is re-executed through
GitHub's schema (``tests/support/github_graphql.py``), so a wrong type, a null where GitHub
promises a value, or a key that was not asked for fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest

from github_emulator.graphql_api import SCHEMA, query_cost
from github_emulator.testing import EmulatorHandle, run_emulator
from support.github_graphql import github_schema, validate_graphql_response, validate_query

POLL = """
query Heads {
  a: repository(owner: "octo", name: "one") { defaultBranchRef { name target { oid } } }
  b: repository(owner: "octo", name: "two") { defaultBranchRef { name target { oid } } }
  rateLimit { cost remaining resetAt }
}
"""


def _type_str(t: Any) -> str:
    return str(t)


def test_emulator_schema_is_part_of_githubs() -> None:
    github = github_schema()
    for name, ours in SCHEMA.type_map.items():
        if name.startswith("__") or name in ("String", "Boolean", "Int", "ID", "Float"):
            continue
        theirs = github.get_type(name)
        assert theirs is not None, f"GitHub's schema has no type {name}"
        assert type(theirs) is type(ours), name
        if isinstance(ours, graphql.GraphQLEnumType):
            assert set(ours.values) <= set(theirs.values), name  # type: ignore[attr-defined]
        if isinstance(ours, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType):
            assert isinstance(theirs, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
            assert {i.name for i in ours.interfaces} <= {i.name for i in theirs.interfaces}, name
            for field_name, field in ours.fields.items():
                assert field_name in theirs.fields, f"{name}.{field_name} is not GitHub's"
                github_field = theirs.fields[field_name]
                assert _type_str(field.type) == _type_str(github_field.type), f"{name}.{field_name}"
                for arg_name, arg in field.args.items():
                    github_arg = github_field.args[arg_name]
                    assert _type_str(arg.type) == _type_str(github_arg.type), (
                        f"{name}.{field_name}({arg_name})"
                    )
                    assert arg.default_value == github_arg.default_value, f"{name}.{field_name}({arg_name})"
                # Every required argument GitHub has, we have too.
                required = {a for a, v in github_field.args.items() if graphql.is_non_null_type(v.type)}
                assert required <= set(field.args), f"{name}.{field_name}"


def test_cost_follows_githubs_documented_example() -> None:
    # From "Rate limits and query limits for the GraphQL API" (calculating a rate limit score):
    # 1 request for repositories, 100 for issues, 50 x 100 for labels: 5,101 -> 51 points.
    example = """
    query {
      viewer {
        login
        repositories(first: 100) {
          edges { node { id
            issues(first: 50) { edges { node { id
              labels(first: 60) { edges { node { id name } } }
            } } }
          } }
        }
      }
    }
    """
    document = validate_query(example)
    cost = query_cost(document)
    assert (cost.requests, cost.cost) == (5101, 51)
    assert cost.nodes == 100 + 100 * 50 + 100 * 50 * 60
    # Without connections a query still costs one point; variables are read for first/last.
    assert query_cost(graphql.parse(POLL)).cost == 1
    with_vars = graphql.parse("query($n: Int!) { viewer { repositories(first: $n) { totalCount } } }")
    assert query_cost(with_vars, variables={"n": 30}).nodes == 30


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[tuple[EmulatorHandle, httpx.Client, int]]:
    with run_emulator(tmp_path / "e") as emu:
        app = emu.create_app("poller")
        emu.create_repo("octo", "one", files={"a.txt": "1\n"})
        emu.create_repo("octo", "two", files={"b.txt": "2\n"}, default_branch="trunk")
        emu.create_repo("octo", "empty")
        emu.create_repo("octo", "hidden", files={"c.txt": "3\n"})
        inst = emu.create_installation(app.id, "octo", ["octo/one", "octo/two", "octo/empty"])
        token = emu.installation_token(app, inst)
        headers = {"Authorization": f"bearer {token}"}
        with httpx.Client(base_url=emu.url, headers=headers, trust_env=False, timeout=30) as client:
            yield emu, client, inst


def _post(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    validate_query(query)
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    validate_graphql_response(query, body, variables)
    return body


def test_default_branch_heads_of_many_repositories_with_aliases(
    gh: tuple[EmulatorHandle, httpx.Client, int],
) -> None:
    _, client, _ = gh
    rest = {
        name: client.get(f"/repos/octo/{name}/git/ref/heads/{branch}").json()["object"]["sha"]
        for name, branch in (("one", "main"), ("two", "trunk"))
    }
    body = _post(client, POLL)
    assert "errors" not in body
    data = body["data"]
    assert data["a"]["defaultBranchRef"] == {"name": "main", "target": {"oid": rest["one"]}}
    assert data["b"]["defaultBranchRef"] == {"name": "trunk", "target": {"oid": rest["two"]}}
    assert data["rateLimit"]["cost"] == 1 and data["rateLimit"]["remaining"] == 4999


def test_points_are_a_separate_bucket_and_dry_run_is_free(
    gh: tuple[EmulatorHandle, httpx.Client, int],
) -> None:
    _, client, _ = gh
    core_before = int(client.get("/repos/octo/one").headers["x-ratelimit-remaining"])
    first = client.post("/graphql", json={"query": POLL})
    assert first.headers["x-ratelimit-resource"] == "graphql"
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert first.headers["x-ratelimit-remaining"] == "4999"
    second = _post(client, POLL)
    assert second["data"]["rateLimit"]["remaining"] == 4998
    dry = _post(client, "{ rateLimit(dryRun: true) { cost remaining used limit nodeCount } }")
    assert dry["data"]["rateLimit"] == {
        "cost": 1,
        "remaining": 4998,
        "used": 2,
        "limit": 5000,
        "nodeCount": 0,
    }
    overview = client.get("/rate_limit").json()["resources"]
    assert overview["graphql"]["used"] == 2
    assert overview["core"]["remaining"] == core_before  # GraphQL spent no REST quota


def test_missing_hidden_and_empty_repositories(gh: tuple[EmulatorHandle, httpx.Client, int]) -> None:
    _, client, _ = gh
    query = """
    {
      missing: repository(owner: "octo", name: "nope") { id }
      hidden: repository(owner: "octo", name: "hidden") { id }
      empty: repository(owner: "octo", name: "empty") { nameWithOwner isArchived defaultBranchRef { name } }
    }
    """
    body = _post(client, query)
    assert body["data"] == {
        "missing": None,
        "hidden": None,  # not installed: as good as missing, as on GitHub
        "empty": {"nameWithOwner": "octo/empty", "isArchived": False, "defaultBranchRef": None},
    }
    errors = sorted(body["errors"], key=lambda e: e["path"])
    assert [(e["type"], e["path"], e["message"]) for e in errors] == [
        ("NOT_FOUND", ["hidden"], "Could not resolve to a Repository with the name 'octo/hidden'."),
        ("NOT_FOUND", ["missing"], "Could not resolve to a Repository with the name 'octo/nope'."),
    ]
    assert all(e["locations"] for e in errors)


def test_fragments_variables_and_full_objects(gh: tuple[EmulatorHandle, httpx.Client, int]) -> None:
    _, client, _ = gh
    query = """
    query Repo($owner: String!, $name: String!) {
      repository(owner: $owner, name: $name) {
        __typename id databaseId name nameWithOwner isPrivate visibility url createdAt updatedAt pushedAt
        owner { __typename id login url }
        defaultBranchRef { ...head }
      }
    }
    fragment head on Ref {
      id name prefix
      target {
        __typename oid abbreviatedOid commitUrl
        ... on Commit { committedDate message messageHeadline url }
      }
    }
    """
    body = _post(client, query, {"owner": "octo", "name": "one"})
    repo = body["data"]["repository"]
    assert repo["owner"]["login"] == "octo" and repo["visibility"] == "PUBLIC"
    target = repo["defaultBranchRef"]["target"]
    assert target["__typename"] == "Commit" and target["abbreviatedOid"] == target["oid"][:7]


def test_errors_in_githubs_form(gh: tuple[EmulatorHandle, httpx.Client, int]) -> None:
    emu, client, _ = gh
    bad = client.post("/graphql", json={"query": '{ repository(owner: "octo", name: "one") { nope } }'})
    assert bad.status_code == 200
    (error,) = bad.json()["errors"]
    assert error["message"] == "Field 'nope' doesn't exist on type 'Repository'"
    assert error["extensions"] == {"code": "undefinedField", "typeName": "Repository", "fieldName": "nope"}
    assert "data" not in bad.json()
    assert client.post("/graphql", json={"query": "{ repository("}).json()["errors"][0]["locations"]
    assert client.post("/graphql", json={"variables": {}}).status_code == 400
    with httpx.Client(base_url=emu.url, trust_env=False) as anonymous:
        refused = anonymous.post("/graphql", json={"query": POLL})
    assert refused.status_code == 401
    assert refused.json()["message"] == "This endpoint requires you to be authenticated."
    kinds = {(r["path"], r["kind"]) for r in emu.requests()}
    assert ("/graphql", "graphql") in kinds


def test_exhausted_points(tmp_path: Path) -> None:
    query = '{ repository(owner: "octo", name: "one") { defaultBranchRef { name } } }'
    with run_emulator(tmp_path / "e", graphql_rate_limit=2) as emu:
        app = emu.create_app("poller")
        emu.create_repo("octo", "one", files={"a.txt": "1\n"})
        inst = emu.create_installation(app.id, "octo", ["octo/one"])
        token = emu.installation_token(app, inst)
        headers = {"Authorization": f"bearer {token}"}
        with httpx.Client(base_url=emu.url, headers=headers, trust_env=False) as c:
            answers = [c.post("/graphql", json={"query": query}) for _ in range(3)]
    assert [a.json().get("errors") for a in answers[:2]] == [None, None]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[2].status_code == 200
    assert answers[2].json() == {
        "errors": [
            {"type": "RATE_LIMITED", "message": f"API rate limit exceeded for installation ID {inst}."}
        ]
    }


def test_renamed_repositories_are_followed_unless_asked_not_to(
    gh: tuple[EmulatorHandle, httpx.Client, int],
) -> None:
    _, client, _ = gh
    assert client.patch("/repos/octo/one", json={"name": "uno"}).status_code == 200
    query = """
    {
      followed: repository(owner: "octo", name: "one") { nameWithOwner }
      strict: repository(owner: "octo", name: "one", followRenames: false) { nameWithOwner }
    }
    """
    body = _post(client, query)
    assert body["data"] == {"followed": {"nameWithOwner": "octo/uno"}, "strict": None}
    assert [e["path"] for e in body["errors"]] == [["strict"]]
    # GitHub Enterprise Server's endpoint answers the same.
    ghes = client.post("/api/graphql", json={"query": '{ repository(owner: "octo", name: "uno") { name } }'})
    assert ghes.json() == {"data": {"repository": {"name": "uno"}}}
