"""The GraphQL validator catches what GitHub's schema forbids (so the conformance suite can fail)."""

from __future__ import annotations

import pytest

from support.github_graphql import GraphQLMismatch, validate_graphql_response, validate_query

QUERY = '{ r: repository(owner: "o", name: "n") { defaultBranchRef { name target { oid } } } }'
OID = "a" * 40


def good() -> dict[str, object]:
    return {"data": {"r": {"defaultBranchRef": {"name": "main", "target": {"oid": OID}}}}}


def test_a_good_response_passes() -> None:
    validate_graphql_response(QUERY, good())
    validate_graphql_response(QUERY, {"data": {"r": None}, "errors": [{"message": "Could not resolve"}]})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"data": {"r": {"defaultBranchRef": {"name": None, "target": {"oid": OID}}}}}, "non-nullable"),
        ({"data": {"r": {"defaultBranchRef": {"name": "main", "target": {"oid": "abc"}}}}}, "GitObjectID"),
        (
            {"data": {"r": {"defaultBranchRef": {"name": "main", "target": {"oid": OID, "x": 1}}}}},
            "did not ask",
        ),
        ({"data": {"r": {"defaultBranchRef": {"target": {"oid": OID}}}}}, "lacks"),
        ({"data": {"r": {"defaultBranchRef": {"name": 5, "target": {"oid": OID}}}}}, "not what the schema"),
        ({"errors": [{"msg": "x"}]}, "string message"),
        ({}, "data and/or errors"),
    ],
)
def test_bad_responses_fail(body: dict[str, object], reason: str) -> None:
    with pytest.raises(GraphQLMismatch, match=reason):
        validate_graphql_response(QUERY, body)


def test_queries_are_checked_against_githubs_schema() -> None:
    validate_query("{ rateLimit { cost remaining resetAt } }")
    with pytest.raises(GraphQLMismatch, match="Cannot query field"):
        validate_query('{ repository(owner: "o", name: "n") { defaultBranch } }')
    with pytest.raises(GraphQLMismatch, match="argument"):
        validate_query('{ repository(owner: "o") { id } }')
