"""Validate GraphQL queries and responses against GitHub's published GraphQL schema.

The schema is ``tests/data/github/graphql-schema.graphql.gz``, GitHub's whole public schema as
``@octokit/graphql-schema`` publishes it (written by ``scripts/update_github_schemas.py``).

* :func:`validate_query` checks a query document against the schema (unknown fields, wrong
  arguments, missing required arguments...), as GitHub does before it runs anything.
* :func:`validate_graphql_response` checks that a response's ``data`` is what the schema allows for
  that query: it re-executes the query against the real schema with a resolver that reads the
  response itself (by response key, so aliases work), so every value is coerced through the
  schema's own types: a ``null`` in a non-null field, a wrong scalar, an unknown enum value, a
  missing field or an extra key all fail.

Erratum: the published SDL defines ``EnterpriseOwnerInfo.repositoryDeployKeySetting`` (and
``...Organizations``) twice, which graphql-core's SDL check rejects; the schema is built with
``assume_valid_sdl=True`` (the later, identical definition wins), as graphql-js consumers do.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path
from typing import Any

import graphql
from graphql import GraphQLResolveInfo, GraphQLSchema

from support.github_schemas import is_date_time, is_uri

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "github" / "graphql-schema.graphql.gz"


class GraphQLMismatch(AssertionError):
    """A query or a response does not match GitHub's published GraphQL schema."""


def _checked(name: str, ok: Any) -> Any:
    def serialize(value: Any) -> Any:
        if not ok(value):
            raise GraphQLMismatch(f"{value!r} is not a valid {name}")
        return value

    return serialize


_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# The custom scalars the schema declares with no rules of its own; their descriptions say what
# they are ("An ISO-8601 encoded UTC date string", "A Git object ID", "An RFC 3986, RFC 3987, and
# RFC 6570 (level 4) compliant URI string"), and GitHub's values follow those.
_SCALAR_CHECKS = {
    "DateTime": lambda v: isinstance(v, str) and is_date_time(v) and v.endswith("Z"),
    "GitObjectID": lambda v: isinstance(v, str) and _HEX40.match(v) is not None,
    "URI": lambda v: isinstance(v, str) and is_uri(v),
}


@functools.cache
def github_schema() -> GraphQLSchema:
    sdl = gzip.decompress(SCHEMA_PATH.read_bytes()).decode("utf-8")
    schema = graphql.build_schema(sdl, assume_valid_sdl=True)
    for name, ok in _SCALAR_CHECKS.items():
        scalar = schema.get_type(name)
        assert isinstance(scalar, graphql.GraphQLScalarType), name
        scalar.serialize = _checked(name, ok)  # type: ignore[method-assign]
    return schema


def validate_query(query: str) -> graphql.DocumentNode:
    """Parse ``query`` and validate it against GitHub's schema; return the document."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError as exc:
        raise GraphQLMismatch(f"query does not parse: {exc.message}") from exc
    errors = graphql.validate(github_schema(), document)
    if errors:
        raise GraphQLMismatch("query is invalid for GitHub's schema: " + "; ".join(e.message for e in errors))
    return document


def _read_response(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    key = info.path.key
    if not isinstance(source, dict) or key not in source:
        raise GraphQLMismatch(f"response lacks {'.'.join(str(k) for k in info.path.as_list())}")
    return source[key]


def _type_from_typename(value: Any, info: GraphQLResolveInfo, abstract: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("__typename"), str):
        return str(value["__typename"])
    # Without __typename, the only concrete type an abstract GitObject target can be in our
    # subset is a Commit (branches point at commits); anything else must say what it is.
    if getattr(abstract, "name", None) == "GitObject":
        return "Commit"
    return None


def _asked(
    selection: graphql.SelectionSetNode | None,
    fragments: dict[str, graphql.FragmentDefinitionNode],
    out: dict[str, list[graphql.SelectionSetNode]],
) -> dict[str, list[graphql.SelectionSetNode]]:
    """Response keys a selection set asks for (through fragments), with their sub-selections."""
    for node in selection.selections if selection else ():
        if isinstance(node, graphql.FieldNode):
            subs = out.setdefault(node.alias.value if node.alias else node.name.value, [])
            if node.selection_set is not None:
                subs.append(node.selection_set)
        elif isinstance(node, graphql.InlineFragmentNode):
            _asked(node.selection_set, fragments, out)
        elif isinstance(node, graphql.FragmentSpreadNode) and node.name.value in fragments:
            _asked(fragments[node.name.value].selection_set, fragments, out)
    return out


def _extra_keys(
    data: Any,
    selections: list[graphql.SelectionSetNode],
    fragments: dict[str, graphql.FragmentDefinitionNode],
    path: str,
) -> list[str]:
    """Keys in the response that the query did not ask for (the executor would ignore them)."""
    if isinstance(data, list):
        return [k for item in data for k in _extra_keys(item, selections, fragments, path)]
    if not isinstance(data, dict):
        return []
    asked: dict[str, list[graphql.SelectionSetNode]] = {}
    for selection in selections:
        _asked(selection, fragments, asked)
    out = [f"{path}.{k}" for k in data if k not in asked]
    for key, subs in asked.items():
        if key in data and subs:
            out += _extra_keys(data[key], subs, fragments, f"{path}.{key}")
    return out


def validate_graphql_response(
    query: str, body: dict[str, Any], variables: dict[str, Any] | None = None
) -> None:
    """Check a ``POST /graphql`` response body for ``query`` against GitHub's schema.

    ``data`` must be exactly what the schema produces for the query from those values; ``errors``
    (when present) must be a list of objects with a string ``message``, as the GraphQL spec says.
    """
    document = validate_query(query)
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        raise GraphQLMismatch(f"a GraphQL response has data and/or errors: {body!r}")
    for error in body.get("errors") or []:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            raise GraphQLMismatch(f"a GraphQL error has a string message: {error!r}")
    data = body.get("data")
    if data is None:
        return
    operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)
    }
    extra = [k for op in operations for k in _extra_keys(data, [op.selection_set], fragments, "data")]
    if extra:
        raise GraphQLMismatch(f"response has keys the query did not ask for: {extra}")
    result = graphql.execute_sync(
        github_schema(),
        document,
        root_value=data,
        variable_values=variables,
        field_resolver=_read_response,
        type_resolver=_type_from_typename,
    )
    # Fields that the emulator answered null *with* an error for (not found) are fine when the
    # schema lets them be null; the executor reproduces that null without an error.
    if result.errors:
        messages = "; ".join(e.message for e in result.errors)
        raise GraphQLMismatch(f"response does not fit the schema: {messages}")
    if result.data != data:
        raise GraphQLMismatch(f"response values are not what the schema yields: {data!r} != {result.data!r}")
