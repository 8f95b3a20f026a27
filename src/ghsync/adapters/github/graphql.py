"""GraphQL reads for the polling safety net: many repositories' default-branch heads in one query.

One query with an alias per repository reads up to 100 heads for about one point, from GraphQL's own
hourly bucket (https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api),
instead of one REST request per repository. `rateLimit { cost limit remaining resetAt }` rides along, so
every answer says what it cost and what is left.

The query is built here and parsed by pure functions (`heads_query`, `parse_heads`), sent through the
App client's request path (tokens, retries, throttling, logs) by `default_branch_heads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ghsync.domain.errors import GitHubError, RetryAt
from ghsync.domain.polling import MAX_REPOSITORIES_PER_QUERY, HeadsRead, RemoteHead

if TYPE_CHECKING:
    from ghsync.adapters.github.client import GitHubAppClient

_REPO_FIELDS = "defaultBranchRef { name target { oid } }"


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint beside a REST base: `https://api.github.com/graphql`, and on Enterprise
    Server `https://HOST/api/graphql` beside `https://HOST/api/v3`
    (https://docs.github.com/en/enterprise-server@latest/graphql/guides/forming-calls-with-graphql)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def heads_query(repos: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The query and its variables: alias `rN` reads repository N (names go in as variables, never
    spliced into the text)."""
    if not repos:
        raise ValueError("no repositories to read")
    if len(repos) > MAX_REPOSITORIES_PER_QUERY:
        raise ValueError(f"at most {MAX_REPOSITORIES_PER_QUERY} repositories per query")
    params = ", ".join(f"$o{i}: String!, $n{i}: String!" for i in range(len(repos)))
    fields = " ".join(
        f"r{i}: repository(owner: $o{i}, name: $n{i}) {{ {_REPO_FIELDS} }}" for i in range(len(repos))
    )
    text = f"query PollHeads({params}) {{ {fields} rateLimit {{ cost limit remaining resetAt }} }}"
    variables: dict[str, str] = {}
    for i, (owner, name) in enumerate(repos):
        variables[f"o{i}"] = owner
        variables[f"n{i}"] = name
    return text, variables


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_heads(repos: Sequence[tuple[str, str]], body: Any) -> HeadsRead:
    """The heads in a `heads_query` answer.

    GitHub answers 200 even for errors, listing them in `errors`: a repository that is missing or not
    installed is `null` with a `NOT_FOUND` error (left out of the heads); spent points are a
    `RATE_LIMITED` error (`RetryAt` the bucket's reset); anything else without data is a `GitHubError`.
    """
    if not isinstance(body, Mapping):
        raise GitHubError("GraphQL answered something that is not a JSON object", route="/graphql")
    data = body.get("data")
    errors = body.get("errors") or []
    rate = data.get("rateLimit") if isinstance(data, Mapping) else None
    reset_at = _parse_time(rate.get("resetAt")) if isinstance(rate, Mapping) else None
    for error in errors:
        if isinstance(error, Mapping) and error.get("type") == "RATE_LIMITED":
            raise RetryAt(
                reset_at or datetime.now().astimezone(),
                str(error.get("message") or "GraphQL rate limit exceeded"),
                kind="primary",
                method="POST",
                route="/graphql",
            )
    if not isinstance(data, Mapping):
        messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, Mapping))
        raise GitHubError(f"GraphQL query failed: {messages or 'no data'}", method="POST", route="/graphql")
    heads: dict[tuple[str, str], RemoteHead] = {}
    for i, key in enumerate(repos):
        node = data.get(f"r{i}")
        if not isinstance(node, Mapping):
            continue  # NOT_FOUND: deleted, renamed beyond GitHub's redirect, or not installed
        ref = node.get("defaultBranchRef")
        if not isinstance(ref, Mapping):
            heads[key] = RemoteHead(branch=None, sha=None)  # an empty repository
            continue
        target = ref.get("target")
        oid = target.get("oid") if isinstance(target, Mapping) else None
        heads[key] = RemoteHead(branch=str(ref["name"]), sha=str(oid) if oid else None)
    points = int(rate.get("cost") or 0) if isinstance(rate, Mapping) else 0
    remaining = rate.get("remaining") if isinstance(rate, Mapping) else None
    limit = rate.get("limit") if isinstance(rate, Mapping) else None
    return HeadsRead(
        heads=heads,
        points=points,
        remaining=int(remaining) if isinstance(remaining, int) else None,
        limit=int(limit) if isinstance(limit, int) else None,
    )


def default_branch_heads(
    client: GitHubAppClient, installation_id: int, repos: Sequence[tuple[str, str]]
) -> HeadsRead:
    """Read the heads of `repos` through `installation_id`: one query per 100 repositories."""
    unique = list(dict.fromkeys(repos))
    heads: dict[tuple[str, str], RemoteHead] = {}
    points = 0
    remaining: int | None = None
    limit: int | None = None
    for start in range(0, len(unique), MAX_REPOSITORIES_PER_QUERY):
        chunk = unique[start : start + MAX_REPOSITORIES_PER_QUERY]
        text, variables = heads_query(chunk)
        response = client.request(
            "POST",
            "/graphql",
            installation_id=installation_id,
            json={"query": text, "variables": variables},
            url=graphql_url(client.config.api_url),
            idempotent=True,  # a query changes nothing: safe to resend after a 5xx or a lost answer
            read_only=True,
        )
        read = parse_heads(chunk, response.body)
        heads.update(read.heads)
        points += read.points
        remaining, limit = read.remaining, read.limit
    return HeadsRead(heads=heads, points=points, remaining=remaining, limit=limit)


__all__ = ["default_branch_heads", "graphql_url", "heads_query", "parse_heads"]
