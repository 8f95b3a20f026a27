"""``POST /graphql``: the subset of GitHub's GraphQL API that polling many repositories needs.

Served: ``repository(owner:, name:, followRenames:)`` with ``id``, ``databaseId``, ``name``,
``nameWithOwner``, ``owner { id login url }``, ``isArchived``, ``isPrivate``, ``visibility``,
``url``, ``createdAt``, ``updatedAt``, ``pushedAt`` and ``defaultBranchRef { id name prefix target
{ oid abbreviatedOid commitUrl ... on Commit { committedDate message messageHeadline url } } }``,
and ``rateLimit(dryRun:) { cost limit nodeCount remaining resetAt used }``; aliases, fragments,
variables and ``__typename`` work, as graphql-core executes the query against :data:`SCHEMA_SDL`,
a copy of the relevant part of GitHub's published schema (the tests check it is one, field by
field and argument by argument, against ``@octokit/graphql-schema``).

GitHub's rules (https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api):
a query's cost is the number of requests its connections need (each connection's ``first``/
``last`` times those of the connections around it), divided by 100 and rounded, at least 1;
points come from a separate hourly bucket (installations: the REST formula); ``rateLimit``
reports the cost and what is left after it; ``dryRun: true`` reports without charging.
Authentication is required (https://docs.github.com/en/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import graphql
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from graphql import GraphQLResolveInfo

from github_emulator import gitrepo, payloads, traffic
from github_emulator.auth import Principal
from github_emulator.core import Emulator, GitHubError
from github_emulator.deps import emulator, json_response, principal, repo_access, urls
from github_emulator.payloads import JSON, Urls
from github_emulator.store import RepoRecord, iso_from_epoch

router = APIRouter()

GRAPHQL_DOCS = "https://docs.github.com/graphql"
AUTH_DOCS = "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"

# Copied from GitHub's public schema (types, fields, arguments and defaults as published; the
# descriptions are left out). Extend it only with more of GitHub's own definitions.
SCHEMA_SDL = """
scalar DateTime
scalar GitObjectID
scalar URI

interface Node {
  id: ID!
}

interface RepositoryOwner {
  id: ID!
  login: String!
  url: URI!
}

interface GitObject {
  abbreviatedOid: String!
  commitUrl: URI!
  id: ID!
  oid: GitObjectID!
  repository: Repository!
}

enum RepositoryVisibility {
  INTERNAL
  PRIVATE
  PUBLIC
}

type Query {
  rateLimit(dryRun: Boolean = false): RateLimit
  repository(followRenames: Boolean = true, name: String!, owner: String!): Repository
}

type RateLimit {
  cost: Int!
  limit: Int!
  nodeCount: Int!
  remaining: Int!
  resetAt: DateTime!
  used: Int!
}

type Repository implements Node {
  createdAt: DateTime!
  databaseId: Int
  defaultBranchRef: Ref
  id: ID!
  isArchived: Boolean!
  isPrivate: Boolean!
  name: String!
  nameWithOwner: String!
  owner: RepositoryOwner!
  pushedAt: DateTime
  updatedAt: DateTime!
  url: URI!
  visibility: RepositoryVisibility!
}

type Ref implements Node {
  id: ID!
  name: String!
  prefix: String!
  repository: Repository!
  target: GitObject
}

type Commit implements GitObject & Node {
  abbreviatedOid: String!
  commitUrl: URI!
  committedDate: DateTime!
  id: ID!
  message: String!
  messageHeadline: String!
  oid: GitObjectID!
  repository: Repository!
  url: URI!
}

type User implements Node & RepositoryOwner {
  id: ID!
  login: String!
  url: URI!
}

type Organization implements Node & RepositoryOwner {
  id: ID!
  login: String!
  url: URI!
}
"""

SCHEMA = graphql.build_schema(SCHEMA_SDL)


# ---- cost (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryCost:
    requests: int  # requests the connections need, as GitHub counts them
    cost: int  # points: requests / 100, rounded, at least 1
    nodes: int  # nodes the connections may return (GitHub's limit: 500,000)


def _page_size(field: graphql.FieldNode, variables: dict[str, Any]) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value in ("first", "last"):
            value = graphql.value_from_ast_untyped(arg.value, variables)
            return int(value) if isinstance(value, int) else None
    return None


def query_cost(
    document: graphql.DocumentNode, operation_name: str | None = None, variables: dict[str, Any] | None = None
) -> QueryCost:
    """GitHub's cost of the operation: "add up the number of requests needed to fulfill each
    unique connection in the call", assuming every request reaches its ``first``/``last``;
    divide by 100 and round to the nearest whole number (at least 1)."""
    variables = variables or {}
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    operation = next(
        (op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)),
        None,
    )
    requests = 0
    nodes = 0

    def walk(selection_set: graphql.SelectionSetNode | None, multiplier: int, seen: frozenset[str]) -> None:
        nonlocal requests, nodes
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, graphql.FieldNode):
                size = _page_size(node, variables)
                if size is None:
                    walk(node.selection_set, multiplier, seen)
                else:
                    requests += multiplier
                    nodes += multiplier * size
                    walk(node.selection_set, multiplier * size, seen)
            elif isinstance(node, graphql.InlineFragmentNode):
                walk(node.selection_set, multiplier, seen)
            elif isinstance(node, graphql.FragmentSpreadNode) and node.name.value not in seen:
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, multiplier, seen | {node.name.value})

    if operation is not None:
        walk(operation.selection_set, 1, frozenset())
    # Python's round() is banker's rounding; GitHub rounds half up.
    return QueryCost(requests, max(1, int(requests / 100 + 0.5)), nodes)


def uses_dry_run(document: graphql.DocumentNode, variables: dict[str, Any]) -> bool:
    """Whether the query asks ``rateLimit(dryRun: true)`` (then no points are charged)."""
    found = False

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            nonlocal found
            if node.name.value == "rateLimit":
                for arg in node.arguments or ():
                    if arg.name.value == "dryRun" and graphql.value_from_ast_untyped(arg.value, variables):
                        found = True

    graphql.visit(document, Visitor())
    return found


# ---- resolvers -----------------------------------------------------------------------------------


class NotFoundError(Exception):
    """GitHub answers a missing (or hidden) object with ``data: null`` there and a NOT_FOUND error."""


@dataclass
class Context:
    emu: Emulator
    who: Principal
    urls: Urls
    rate: JSON


def _commit(git_sha: str, repo: RepoRecord, git: Any, u: Urls, repo_obj: JSON) -> JSON | None:
    commit = git.get(git_sha)
    if commit is None:
        return None
    web = f"{u.web}/{repo.full_name}"
    message: str = commit.message
    return {
        "__typename": "Commit",
        "id": payloads.sha_node_id("Commit", repo.id, git_sha),
        "oid": git_sha,
        "abbreviatedOid": git_sha[:7],
        "commitUrl": f"{web}/commit/{git_sha}",
        "url": f"{web}/commit/{git_sha}",
        "committedDate": iso_from_epoch(commit.committer.time),
        "message": message,
        "messageHeadline": message.split("\n", 1)[0],
        "repository": repo_obj,
    }


def repository_object(emu: Emulator, repo: RepoRecord, u: Urls) -> JSON:
    owner = emu.account(repo.owner)
    kind = "Organization" if owner.type == "Organization" else "User"
    obj: JSON = {
        "__typename": "Repository",
        "id": payloads.node_id("Repository", repo.id),
        "databaseId": repo.id,
        "name": repo.name,
        "nameWithOwner": repo.full_name,
        "owner": {
            "__typename": kind,
            "id": payloads.node_id(kind, owner.id),
            "login": owner.login,
            "url": f"{u.web}/{owner.login}",
        },
        "isArchived": repo.archived,
        "isPrivate": repo.private,
        "visibility": "PRIVATE" if repo.private else "PUBLIC",
        "url": f"{u.web}/{repo.full_name}",
        "createdAt": repo.created_at,
        "updatedAt": repo.updated_at,
        "pushedAt": repo.pushed_at,
        "defaultBranchRef": None,
    }
    git = emu.open_git(repo)
    sha = gitrepo.ref_target(git, f"refs/heads/{repo.default_branch}")
    if sha is not None:
        # An empty repository has no default branch ref yet (GitHub: null).
        ref_id = base64.b64encode(f"Ref:{repo.id}:refs/heads/{repo.default_branch}".encode()).decode()
        obj["defaultBranchRef"] = {
            "__typename": "Ref",
            "id": ref_id,
            "name": repo.default_branch,
            "prefix": "refs/heads/",
            "repository": obj,
            "target": _commit(sha, repo, git, u, obj),
        }
    return obj


def _resolve_repository(
    _: Any, info: GraphQLResolveInfo, owner: str, name: str, followRenames: bool = True
) -> JSON:
    ctx: Context = info.context
    found: RepoRecord | None = None
    candidates = [(owner, name)]
    if followRenames:
        moved = ctx.emu.store.redirected_repo(owner, name)
        if moved is not None:
            candidates.append((moved.owner, moved.name))
    for o, n in candidates:
        try:
            found = repo_access(ctx.emu, ctx.who, o, n)
            break
        except GitHubError:
            continue
    if found is None:
        raise NotFoundError(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    return repository_object(ctx.emu, found, ctx.urls)


def _resolve_rate_limit(_: Any, info: GraphQLResolveInfo, dryRun: bool = False) -> JSON:
    ctx: Context = info.context
    return ctx.rate


SCHEMA.query_type.fields["repository"].resolve = _resolve_repository  # type: ignore[union-attr]
SCHEMA.query_type.fields["rateLimit"].resolve = _resolve_rate_limit  # type: ignore[union-attr]


def _type_of(value: Any, *_: Any) -> str | None:
    return value.get("__typename") if isinstance(value, dict) else None


# ---- errors in GitHub's form -------------------------------------------------------------------

_UNDEFINED_FIELD = re.compile(r"^Cannot query field '([^']+)' on type '([^']+)'\.")


def _format_error(error: graphql.GraphQLError) -> JSON:
    out: JSON = dict(error.formatted)
    if isinstance(error.original_error, NotFoundError):
        # GitHub's shape for objects that cannot be resolved: a top-level "type".
        return {"type": "NOT_FOUND", **out}
    undefined = _UNDEFINED_FIELD.match(error.message)
    if undefined:
        field, type_name = undefined.groups()
        out["message"] = f"Field '{field}' doesn't exist on type '{type_name}'"
        out["extensions"] = {"code": "undefinedField", "typeName": type_name, "fieldName": field}
    return out


def _errors(errors: list[graphql.GraphQLError]) -> list[JSON]:
    return [_format_error(e) for e in errors]


# ---- the endpoint --------------------------------------------------------------------------------


@router.post("/graphql")
@router.post("/api/graphql")  # GitHub Enterprise Server's path
async def post_graphql(
    request: Request, emu: Emulator = Depends(emulator), who: Principal = Depends(principal)
) -> Response:
    if who.kind == "anonymous":
        return json_response(
            payloads.error_body("This endpoint requires you to be authenticated.", 401, AUTH_DOCS), 401
        )
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        # Best guess at GitHub's text for a body without a query string.
        return json_response(
            payloads.error_body(
                "A query attribute must be specified and must be a string.", 400, GRAPHQL_DOCS
            ),
            400,
        )
    variables = body.get("variables") or {}
    operation_name = body.get("operationName")
    limit, remaining, reset, used = traffic.rate_status(emu, who, "graphql")
    try:
        document = graphql.parse(body["query"])
    except graphql.GraphQLError as exc:
        return _answer({"errors": _errors([exc])}, (limit, remaining, reset, used))
    problems = graphql.validate(SCHEMA, document)
    if problems:
        return _answer({"errors": _errors(problems)}, (limit, remaining, reset, used))
    cost = query_cost(document, operation_name, variables if isinstance(variables, dict) else {})
    dry_run = uses_dry_run(document, variables if isinstance(variables, dict) else {})
    if not dry_run:
        if remaining < cost.cost:
            label = (
                f"installation ID {who.installation_id}"
                if who.kind == "installation"
                else f"user {who.user_login}"
            )
            # GitHub answers an exhausted GraphQL quota with a RATE_LIMITED error (its exact
            # text here is a best guess modelled on the REST message).
            return _answer(
                {"errors": [{"type": "RATE_LIMITED", "message": f"API rate limit exceeded for {label}."}]},
                (limit, remaining, reset, used),
            )
        limit, remaining, reset, used = traffic.charge(emu, who, "graphql", cost.cost)
    rate = {
        "cost": cost.cost,
        "limit": limit,
        "nodeCount": cost.nodes,
        "remaining": remaining,
        "resetAt": iso_from_epoch(reset),
        "used": used,
    }
    result = graphql.execute(
        SCHEMA,
        document,
        context_value=Context(emu, who, urls(request), rate),
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=operation_name,
        type_resolver=_type_of,
    )
    if not isinstance(result, graphql.ExecutionResult):
        result = await result
    out: JSON = {"data": result.data}
    if result.errors:
        out["errors"] = _errors(list(result.errors))
    return _answer(out, (limit, remaining, reset, used))


def _answer(body: JSON, rate: tuple[int, int, int, int]) -> Response:
    # GitHub answers GraphQL errors (parse, validation, not found) with 200 and an errors list.
    return json_response(body, 200, traffic.rate_headers(*rate, resource="graphql"))
